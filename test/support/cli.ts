// Runs the wasm-iop CLI as a user would, as a child process, and collects its output.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../../tools/build/firmware.ts";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function startCli(args: string[], cwd = ROOT): { child: ChildProcess; result: Promise<CliResult>; output: () => string } {
  const child = spawn(process.execPath, [join(ROOT, "bin/wasm-iop.js"), ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const result = new Promise<CliResult>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { child, result, output: () => stdout + stderr };
}

export function runCli(args: string[], cwd = ROOT): Promise<CliResult> {
  return startCli(args, cwd).result;
}

/** Resolves once the output matches `pattern`, or rejects after `timeoutMs` with what was printed. The default is
 * generous (a liveness bound, not a speed check): on a loaded 2-core machine tsx alone takes 20-30 s to start a CLI. */
export async function waitForOutput(output: () => string, pattern: RegExp, timeoutMs = 45_000): Promise<void> {
  const start = Date.now();
  while (!pattern.test(output())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${pattern}; output so far:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
