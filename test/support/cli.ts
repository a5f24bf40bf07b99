// Runs the wasm-iop CLI as a user would, as a child process (bin/wasm-iop.js, which runs the compiled code in dist/),
// and collects its output.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../../host/root.ts";
import { scaled } from "./time.ts";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface StartedCli {
  child: ChildProcess;
  result: Promise<CliResult>;
  output: () => string; // stdout and stderr so far
  /** Resolves once stdout + stderr match `pattern` (checked on every chunk that arrives), or rejects when the CLI
   * exits first or after `quietMs` (a liveness bound for a quiet machine, scaled for this one) with what it printed. */
  waitFor: (pattern: RegExp, quietMs?: number) => Promise<void>;
}

const WAIT_QUIET_MS = 30_000;

export function startCli(args: string[], cwd = ROOT): StartedCli {
  const child = spawn(process.execPath, [join(ROOT, "bin/wasm-iop.js"), ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const result = new Promise<CliResult>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  const output = () => stdout + stderr;
  const waitFor = (pattern: RegExp, quietMs = WAIT_QUIET_MS) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(output())) return;
        finish();
        resolve();
      };
      const exited = () => {
        finish();
        reject(new Error(`the CLI exited before printing ${pattern}; output:\n${output()}`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no ${pattern} after ${scaled(quietMs)} ms; output so far:\n${output()}`));
      }, scaled(quietMs));
      const finish = () => {
        clearTimeout(timer);
        child.stdout!.off("data", check);
        child.stderr!.off("data", check);
        child.off("close", exited);
      };
      child.stdout!.on("data", check);
      child.stderr!.on("data", check);
      child.on("close", exited);
      check();
    });
  return { child, result, output, waitFor };
}

export function runCli(args: string[], cwd = ROOT): Promise<CliResult> {
  return startCli(args, cwd).result;
}
