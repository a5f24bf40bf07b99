// Time limits in tests are liveness bounds, never speed checks: a test waits for an event (a line printed, a port
// answering), and the limit only stops a test that would otherwise hang. Each limit is written for a quiet 2-core
// machine with room to spare (2-3x what the test takes there) and multiplied by TIME_SCALE, which vitest.config.ts
// measures once at the start from how much CPU the machine gives a spinning loop (loadFactor below). A busy machine
// thus makes the suite slower, not red. WASM_IOP_TEST_TIME_SCALE overrides the measurement.

/** Wall time over CPU time of a busy loop of `sampleMs`: 1 on an idle core, about 2 with two hogs per core. */
export function loadFactor(sampleMs = 200): number {
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  let x = 0;
  while (performance.now() - wall0 < sampleMs) for (let i = 0; i < 100_000; i++) x = (x * 31 + i) | 0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return x === 0.5 ? 0 : (performance.now() - wall0) / Math.max(cpuMs, 1); // x keeps the loop from being optimized away
}

const SCALE_MAX = 8;

/** The multiplier for every time limit: the load factor measured once, at least 1, at most SCALE_MAX. */
export function timeScaleFor(factor: number): number {
  return Math.min(SCALE_MAX, Math.max(1, Math.round(factor * 10) / 10));
}

export const TIME_SCALE: number = Number(process.env.WASM_IOP_TEST_TIME_SCALE ?? "1");

/** A time limit of `quietMs` on a quiet machine, scaled for this one. */
export function scaled(quietMs: number): number {
  return Math.round(quietMs * TIME_SCALE);
}

/** Resolves once `condition()` holds (checked every 20 ms), or rejects after `quietMs`, scaled, naming `what`. For
 * state that has no event to wait on, such as a line reaching a log the test reads. */
export async function until(condition: () => boolean, what: string, quietMs = 10_000): Promise<void> {
  const deadline = Date.now() + scaled(quietMs);
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${scaled(quietMs)} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Lets the worker's event loop turn (timers, I/O, vitest's RPC) once, for a test that runs long synchronous steps:
 * one run of a property, one slice of a simulation. A stretch of over a minute without a turn breaks the run
 * (test/support/stall_guard.ts). */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** For a long synchronous loop in a test: returns a function to await at each step, which gives the event loop a
 * turn once `everyMs` of wall time passed since the last one (and otherwise costs a resolved promise). */
export function turnEvery(everyMs = 50): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < everyMs) return;
    await turn();
    last = performance.now();
  };
}
