// `wasm-iop simulate --cluster clusters/trio.json` on fixed seeds (docs/simulation.md, "A cluster"): the three boards
// of the example cluster in one run, one initiator per board with sessions on two boards, the random workload on the
// partitioned volume (hot blocks straddling the end of page 0, so hot commands split between boards a and b) under
// every fault, the fabric's and the boards' included. The shadow must hold (no wrong read, every acknowledged block
// on its page owner's disk after the run, no hang); a seed run twice gives the same trace hash; and a run with a disk
// that drops writes must fail, or the checks prove nothing.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { UsageError } from "../../tools/cli/command.ts";
import { simulateCommand } from "../../tools/cli/simulate.ts";
import { CLUSTER_FAULT_KINDS, FAULT_KINDS_ALL } from "../../tools/simulate/faults.ts";
import { passed, simulate } from "../../tools/simulate/simulation.ts";

const TRIO = join(ROOT, "clusters/trio.json");

describe("wasm-iop simulate --cluster", () => {
  it("seed 1, every fault at one in 10 commands: every kind injected, nothing lost or wrong, no hang; the same trace again", () => {
    const options = { seed: 1, ops: 2000, faults: [...FAULT_KINDS_ALL], cluster: TRIO, faultEveryOps: 10 };
    const result = simulate(options);
    expect(result.failures, `replay with: wasm-iop simulate --cluster clusters/trio.json --seed 1 --ops 2000 --faults all --trace seed-1.jsonl --verbose`).toEqual([]);
    expect(passed(result)).toBe(true);
    expect(result.opsGood + result.opsFailed).toBe(2000);
    for (const kind of [...CLUSTER_FAULT_KINDS, "dma", "timeout", "reset", "conn-drop"] as const) expect(result.faultsByKind[kind], kind).toBeGreaterThan(0);
    expect(result.faultsByKind["mu-drop"] + result.faultsByKind["mu-dup"]).toBe(0); // trio's boards have no messaging units
    expect(result.opsFailed).toBeGreaterThan(0); // partitions and power cuts fail commands, visibly
    const again = simulate(options);
    expect(again.traceHash).toBe(result.traceHash);
    expect(again).toEqual(result);
    const other = simulate({ ...options, seed: 2, ops: 300 });
    expect(other.traceHash).not.toBe(result.traceHash);
  }, 300_000);

  it("with ports without a window (--rdma: data by RDMA through bounce buffers, as over TCP): nothing lost or wrong", () => {
    const result = simulate({ seed: 3, ops: 1000, faults: [...FAULT_KINDS_ALL], cluster: TRIO, faultEveryOps: 10, rdma: true });
    expect(result.failures, "replay with: wasm-iop simulate --cluster clusters/trio.json --rdma --seed 3 --ops 1000 --faults all --trace seed-3.jsonl --verbose").toEqual([]);
    expect(passed(result)).toBe(true);
    const windowed = simulate({ seed: 3, ops: 1000, faults: [...FAULT_KINDS_ALL], cluster: TRIO, faultEveryOps: 10 });
    expect(windowed.traceHash).not.toBe(result.traceHash); // another data path, not the same run
  }, 300_000);

  it("fails a run whose disks drop acknowledged writes", () => {
    const result = simulate({ seed: 2, ops: 1500, faults: ["lie", "link-drop", "link-down"], cluster: TRIO });
    expect(passed(result)).toBe(false);
    expect(result.lostWrites + result.wrongReads).toBeGreaterThan(0);
  }, 300_000);

  it("refuses --cluster with a board, NBD, a recording or a capture, and a cluster file that does not load, naming it", async () => {
    for (const extra of [["--board", "volumes"], ["--nbd", "1"], ["--record", "x.rec"], ["--pcap", "x.pcap"]]) {
      await expect(simulateCommand.run(["--cluster", TRIO, ...extra])).rejects.toThrow(/--cluster runs the boards of its file/);
    }
    await expect(simulateCommand.run(["--rdma"])).rejects.toThrow(/--rdma takes --cluster/);
    const missing = join(ROOT, "clusters/no-such.json");
    await expect(simulateCommand.run(["--cluster", missing])).rejects.toThrow(UsageError);
    await expect(simulateCommand.run(["--cluster", missing])).rejects.toThrow(/no-such\.json/);
  });
});
