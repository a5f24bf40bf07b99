// Builds the firmware images with the AssemblyScript compiler: release (build/firmware.wasm), debug with names and
// a source map (build/firmware.debug.wasm), and the test build (build/firmware.test.wasm: the same kernel plus the
// exports test/firmware/harness.ts adds for vitest). Rebuilds only what is missing or older than its sources.
import { readdirSync, readFileSync, statSync, mkdirSync, existsSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "../../host/root.ts";

export { ROOT };
export const FIRMWARE_PATH = join(ROOT, "build/firmware.wasm");
export const FIRMWARE_DEBUG_PATH = join(ROOT, "build/firmware.debug.wasm");
export const FIRMWARE_TEST_PATH = join(ROOT, "build/firmware.test.wasm");
export const FIRMWARE_FUZZ_PATH = join(ROOT, "build/firmware.fuzz.wasm");

/** package.json's version: the firmware's too (a test keeps assembly/config.ts equal to it). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
}

export type FirmwareTarget = "release" | "debug" | "test" | "fuzz";

interface TargetPlan {
  entry: string;
  out: string;
  args: string[];
  sources: string[]; // directories and files whose changes make the output stale
  /** Rewrites the compiled binary before it is written (the fuzzing build's coverage counters). */
  post?: (binary: Uint8Array) => Promise<Uint8Array>;
}

const PLANS: Record<FirmwareTarget, TargetPlan> = {
  release: { entry: "assembly/index.ts", out: FIRMWARE_PATH, args: ["--target", "release"], sources: ["assembly", "asconfig.json"] },
  debug: { entry: "assembly/index.ts", out: FIRMWARE_DEBUG_PATH, args: ["--target", "debug"], sources: ["assembly", "asconfig.json"] },
  // The test build is optimized lightly: the tests want a quick build, the asserts and the names.
  test: {
    entry: "test/firmware/harness.ts",
    out: FIRMWARE_TEST_PATH,
    args: ["--target", "test"],
    sources: ["assembly", "test/firmware", "tools/fuzz/firmware/xor_requester.ts", "asconfig.json"],
  },
  // The fuzzing build: the release options and exports, two read-only probes for the leak oracle, then coverage
  // counters injected with binaryen (tools/fuzz/instrument.ts). Built on demand by `wasm-iop fuzz`, not by default.
  fuzz: {
    entry: "tools/fuzz/firmware/entry.ts",
    out: FIRMWARE_FUZZ_PATH,
    args: ["--target", "release", "--textFile", "build/firmware.fuzz.wat"],
    sources: ["assembly", "tools/fuzz/firmware", "tools/fuzz/instrument.ts", "asconfig.json"],
    post: async (binary) => (await import("../fuzz/instrument.ts")).instrument(binary).binary,
  },
};

function newestMtimeMs(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, entry)));
  return newest;
}

export function isStale(target: FirmwareTarget): boolean {
  const plan = PLANS[target];
  if (!existsSync(plan.out)) return true;
  const built = statSync(plan.out).mtimeMs;
  return plan.sources.some((source) => newestMtimeMs(join(ROOT, source)) > built);
}

/**
 * asc's arguments for `target`. asc resolves its entry, its config, and the output files against its `--baseDir`
 * (the working directory when absent: the API's options object has no baseDir), so they name the package root, and
 * a build started from any directory (`wasm-iop run` outside the repository, with a stale image) finds its files.
 */
export function ascArguments(target: FirmwareTarget): string[] {
  const plan = PLANS[target];
  return [plan.entry, "--config", "asconfig.json", "--baseDir", ROOT, ...plan.args, "--outFile", relative(ROOT, plan.out)];
}

/** Compiles `targets` (release, debug and test by default; fuzz on demand) if stale, or always with `force`. Throws with the compiler's output. */
export async function buildFirmware(targets: FirmwareTarget[] = ["release", "debug", "test"], force = false): Promise<string[]> {
  const stale = targets.filter((target) => force || isStale(target));
  if (stale.length === 0) return [];
  // Loading the compiler takes seconds: only when there is something to build.
  const asc = await import("assemblyscript/asc");
  mkdirSync(join(ROOT, "build"), { recursive: true });
  const built: string[] = [];
  for (const target of stale) {
    const plan = PLANS[target];
    let output = "";
    const sink = { write: (chunk: string | Uint8Array) => { output += chunk.toString(); return true; } };
    const { error } = await asc.main(ascArguments(target), { stdout: sink as never, stderr: sink as never } as never);
    if (error) throw new Error(`firmware build (${target}) failed:\n${output || error.message}`);
    if (plan.post !== undefined) writeFileSync(plan.out, await plan.post(readFileSync(plan.out)));
    built.push(relative(ROOT, plan.out));
  }
  return built;
}
