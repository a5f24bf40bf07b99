// Before any test file runs: compiles dist/ (the CLI the tests spawn) and builds the firmware images, each only if
// it is missing or older than its sources.
import { ensureCompiled } from "../tools/build/js.mjs";
import { buildFirmware } from "../tools/build/firmware.ts";

export default async function setup(): Promise<void> {
  await ensureCompiled();
  const built = await buildFirmware();
  if (built.length > 0) process.stdout.write(`built ${built.join(", ")}\n`);
}
