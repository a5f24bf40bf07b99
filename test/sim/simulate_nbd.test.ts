// `wasm-iop simulate --nbd`: NBD sessions (a connection per LUN's export) beside the four iSCSI sessions, the same
// random workload and shadow model, every fault kind injected. No acknowledged write may be lost, no read may return
// data no write could have left, nothing may hang, and no processor may stop unless a fault stopped it. Seed 1 at
// these settings panicked the host before NBD writes stopped being retried once their payload was taken.
import { describe, expect, it } from "vitest";
import { FAULT_KINDS_ALL } from "../../tools/simulate/faults.ts";
import { passed, simulate } from "../../tools/simulate/simulation.ts";

describe("wasm-iop simulate with NBD sessions", () => {
  it.each([1, 2])("seed %i: 1500 commands over iSCSI and NBD under every fault kind lose nothing", (seed) => {
    const result = simulate({ seed, ops: 1500, faults: FAULT_KINDS_ALL, faultEveryOps: 20, nbdSessions: 2 });
    expect(result.failures, `replay with: wasm-iop simulate --seed ${seed} --ops 1500 --nbd 2 --verbose`).toEqual([]);
    expect(passed(result)).toBe(true);
    expect(result.opsGood + result.opsFailed).toBe(1500);
    expect(result.logins).toBeGreaterThanOrEqual(6); // 4 iSCSI logins and 2 NBD handshakes at least
    expect(result.faultsInjected).toBeGreaterThan(40);
  });

  it("replays a seed with NBD sessions exactly", () => {
    const first = simulate({ seed: 31, ops: 300, faults: FAULT_KINDS_ALL, faultEveryOps: 15, nbdSessions: 1 });
    const again = simulate({ seed: 31, ops: 300, faults: FAULT_KINDS_ALL, faultEveryOps: 15, nbdSessions: 1 });
    expect(again).toEqual(first);
  });
});
