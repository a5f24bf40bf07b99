// Before any test file runs: compiles dist/ (the CLI the tests spawn) and builds the firmware images, each only if
// it is missing or older than its sources. The fuzzing image too: built inside a test file, its compile and
// instrumentation held that worker's event loop for 56 s at load 12 (the stall guard's limit is 45 s), and two fuzz
// test files could write it at once.
import { ensureCompiled } from "../tools/build/js.mjs";
import { buildFirmware } from "../tools/build/firmware.ts";

export default async function setup(): Promise<void> {
  // vitest.config.ts measured it: say it, so a slow run's log shows how much room its limits had.
  process.stdout.write(`time limits x${process.env.WASM_IOP_TEST_TIME_SCALE} (the machine's load when the suite started; test/support/time.ts)\n`);
  await ensureCompiled();
  const built = await buildFirmware(["release", "debug", "test", "fuzz"]);
  if (built.length > 0) process.stdout.write(`built ${built.join(", ")}\n`);
}
