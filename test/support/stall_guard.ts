// A vitest setup file (vitest.config.ts, setupFiles): names the test that blocks its worker's event loop too long.
//
// Why: vitest's worker talks to the main process over an RPC (birpc) whose every call has a fixed 60 s timeout that
// no option changes. A test that keeps its worker's event loop busy synchronously for longer than that (a long
// spawnSync/execFileSync, a simulation loop run to completion without yielding) lets the timer of a pending call
// ("onTaskUpdate") fire before its reply is read: every test passes, yet the run ends with an unhandled
// "[vitest-worker]: Timeout calling ..." error and exits 1, and nothing names the test. On a quiet machine such a
// test may stay under 60 s; under load it does not. So this file measures, per test, the longest stretch with no
// turn of the event loop, and
//   - fails the test (or, for a stretch outside tests, the file's hooks) when it exceeds STALL_LIMIT_MS;
//   - with WASM_IOP_STALL_REPORT=<seconds>, prints every stretch over that many seconds (to find the next offender).
// A heartbeat timer records when the loop last turned; a stretch still under way when a test ends counts too (a
// test that blocks and then returns may end before the heartbeat runs again).
import { afterAll, afterEach, beforeEach } from "vitest";
import { TIME_SCALE } from "./time.ts";

/** The fixed timeout of vitest's worker RPC (not configurable in vitest 3). */
const RPC_TIMEOUT_MS = 60_000;
/** The limit: 20 s on a quiet machine, scaled like every limit, but always well under the RPC's unscaled 60 s (a
 * stretch longer than that breaks the run however loaded the machine is). */
export const STALL_LIMIT_MS = Math.min(20_000 * TIME_SCALE, RPC_TIMEOUT_MS * 0.75);
const REPORT_MS = process.env.WASM_IOP_STALL_REPORT !== undefined ? Number(process.env.WASM_IOP_STALL_REPORT) * 1000 : Infinity;
const BEAT_MS = 50;

let lastBeat = performance.now();
let longest = 0; // the longest stretch since the current test (or the stretch between tests) began
const heartbeat = setInterval(() => note(performance.now()), BEAT_MS);
heartbeat.unref();

/** Records the stretch from the last beat to `now` and counts `now` as a beat. */
function note(now: number): void {
  longest = Math.max(longest, now - lastBeat - BEAT_MS);
  lastBeat = now;
}

const seconds = (ms: number) => (ms / 1000).toFixed(1);
const outside: { where: string; ms: number }[] = [];

/** Ends a measured stretch: returns its longest stall and starts a new one. */
function take(): number {
  note(performance.now());
  const ms = longest;
  longest = 0;
  return ms;
}

beforeEach((context) => {
  const ms = take(); // file collection, beforeAll hooks, the previous test's afterEach hooks
  if (ms > STALL_LIMIT_MS || ms > REPORT_MS) outside.push({ where: `before "${context.task.name}"`, ms });
});

afterEach((context) => {
  const ms = take();
  const where = `${context.task.file?.name ?? "?"} > ${context.task.name}`;
  if (ms > REPORT_MS) process.stderr.write(`stall-guard: ${where}: event loop blocked ${seconds(ms)} s\n`);
  if (ms > STALL_LIMIT_MS) {
    throw new Error(`this test blocked its worker's event loop for ${seconds(ms)} s at a stretch (limit ${seconds(STALL_LIMIT_MS)} s, test/support/stall_guard.ts): ` +
      `vitest's worker RPC times out after ${RPC_TIMEOUT_MS / 1000} s and the run fails; use async child processes and yield in long loops`);
  }
});

afterAll((suite) => {
  const ms = take();
  if (ms > STALL_LIMIT_MS || ms > REPORT_MS) outside.push({ where: "after the last test", ms });
  const file = "filepath" in suite ? String(suite.filepath) : suite.name;
  for (const o of outside) if (o.ms > REPORT_MS) process.stderr.write(`stall-guard: ${file} (${o.where}, outside a test): event loop blocked ${seconds(o.ms)} s\n`);
  const over = outside.filter((o) => o.ms > STALL_LIMIT_MS);
  outside.length = 0;
  if (over.length > 0) {
    throw new Error(`hooks or module code of this file blocked its worker's event loop for ${over.map((o) => `${seconds(o.ms)} s (${o.where})`).join(", ")} ` +
      `(limit ${seconds(STALL_LIMIT_MS)} s, test/support/stall_guard.ts)`);
  }
});
