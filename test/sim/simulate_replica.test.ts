// `wasm-iop simulate --board replica`: a replica volume (LUN 3; copy 0 on sp1's virtio-scsi disk, copy 1 on sp2's
// NVMe disk) beside three disk LUNs, written by four iSCSI sessions and two NBD sessions at once, under every fault
// kind, with the member fault failing a copy mid-run: restored with what it held (the logged regions copied back), or
// both copies out (the volume fails, its I/O fails visibly, the stale copy comes back first and must not serve, then
// the one that failed last serves again and the other is copied to). No acknowledged write may be lost, no read may
// return data no write could have left, nothing may hang, and the replica must be optimal again after the run.
// Seeds 1 (one copy out and back) and 5 (both copies out) at these settings; the campaign's figures are in
// docs/simulation.md.
import { describe, expect, it } from "vitest";
import { FAULT_KINDS_ALL } from "../../tools/simulate/faults.ts";
import { passed, simulate } from "../../tools/simulate/simulation.ts";

describe("wasm-iop simulate on the replica board", () => {
  it.each([[1, 1], [5, 2]])("seed %i: 1500 commands over iSCSI and NBD, %i copies failed mid-run, lose nothing and end optimal", (seed, pulls) => {
    const console: string[] = [];
    const result = simulate({ seed, ops: 1500, faults: FAULT_KINDS_ALL, board: "replica", nbdSessions: 2, onConsole: (line) => console.push(line) });
    expect(result.failures, `replay with: wasm-iop simulate --seed ${seed} --ops 1500 --board replica --nbd 2 --verbose`).toEqual([]);
    expect(passed(result)).toBe(true);
    expect(result.opsGood + result.opsFailed).toBe(1500);
    expect(result.memberPulls).toBe(pulls);
    expect(result.volumes.find((l) => l.includes("name=rep"))).toMatch(/state=optimal copies=current,current/);
    const text = console.join("\n");
    expect(text).toMatch(/copying \d+ regions of volume 3 from copy \d to copy \d/);
    expect(text).toMatch(/volumes: volume 3 resynchronized/);
    if (pulls === 2) {
      expect(text).toMatch(/state=failed copies=failed,failed/);
      expect(text).toMatch(/it failed last and holds every answered write: it serves/);
      expect(result.opsFailed).toBeGreaterThan(100); // the replica's I/O while both copies were out
    }
  });

  it("replays a replica seed exactly", () => {
    const first = simulate({ seed: 7, ops: 400, faults: FAULT_KINDS_ALL, faultEveryOps: 15, board: "replica", nbdSessions: 1 });
    const again = simulate({ seed: 7, ops: 400, faults: FAULT_KINDS_ALL, faultEveryOps: 15, board: "replica", nbdSessions: 1 });
    expect(again).toEqual(first);
  });
});
