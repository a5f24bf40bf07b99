// Builds the trace-driven board in C (tools/trace_board/native/) with CMake into build/trace-board/, on the native
// board's runtime port (boards/native/src/runtime.h and its port). Incremental: CMake rebuilds what changed.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../../host/root.ts";

const run = promisify(execFile);

export const NATIVE_TRACE_BOARD_SOURCE = join(ROOT, "tools/trace_board/native");
export const NATIVE_TRACE_BOARD_PATH = join(ROOT, "build/trace-board/iop-trace-board");
/** The runtime port the C board is built on; absent until the native board is in the tree. */
export const RUNTIME_PORT_HEADER = join(ROOT, "boards/native/src/runtime.h");

/** Why the C trace-driven board cannot be built here, or undefined when it can. */
export function nativeTraceBoardMissing(): string | undefined {
  if (!existsSync(RUNTIME_PORT_HEADER)) return "no runtime port: boards/native/src/runtime.h is not in this tree";
  return undefined;
}

/** Configures (once) and builds the C trace-driven board; resolves to its path. Throws with CMake's output. */
export async function buildNativeTraceBoard(): Promise<string> {
  const missing = nativeTraceBoardMissing();
  if (missing !== undefined) throw new Error(missing);
  const buildDir = join(ROOT, "build/trace-board");
  try {
    if (!existsSync(join(buildDir, "CMakeCache.txt"))) await run("cmake", ["-S", NATIVE_TRACE_BOARD_SOURCE, "-B", buildDir, "-DCMAKE_BUILD_TYPE=Release"]);
    await run("cmake", ["--build", buildDir]);
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`building the C trace-driven board failed:\n${stdout ?? ""}${stderr ?? ""}`);
  }
  return NATIVE_TRACE_BOARD_PATH;
}
