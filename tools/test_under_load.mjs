// `npm run test:load`: the whole suite with two CPU hogs beside it, as on a laptop that is busy with other work.
// The suite must get slower, never red: its waits are on events and its time limits scale with the machine
// (test/support/time.ts). Extra arguments go to vitest (`npm run test:load -- test/unit/cli`).
import { spawn } from "node:child_process";

const HOGS = 2;
const hogs = Array.from({ length: HOGS }, () => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
process.stderr.write(`test:load: ${HOGS} CPU hogs running (pids ${hogs.map((h) => h.pid).join(", ")})\n`);
const stopHogs = () => hogs.forEach((hog) => hog.kill("SIGKILL"));
process.on("exit", stopHogs);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

const t0 = Date.now();
const vitest = spawn(process.execPath, ["node_modules/vitest/vitest.mjs", "run", ...process.argv.slice(2)], { stdio: "inherit" });
vitest.on("exit", (code, signal) => {
  stopHogs();
  process.stderr.write(`test:load: vitest ${signal ?? `exited ${code}`} after ${((Date.now() - t0) / 1000).toFixed(0)} s with ${HOGS} CPU hogs beside it\n`);
  process.exit(code ?? 1);
});
