// `wasm-iop simulate --cluster clusters/trio.json` on fixed seeds (docs/simulation.md, "A cluster"): the three boards
// of the example cluster in one run, one initiator per board with sessions on two boards, the random workload on the
// partitioned volume (hot blocks straddling the end of page 0, so hot commands split between boards a and b) under
// every fault, the fabric's and the boards' included. The shadow must hold (no wrong read, every acknowledged block
// on its page owner's disk after the run, no hang); a seed run twice gives the same trace hash; and a run with a disk
// that drops writes must fail, or the checks prove nothing. The same cluster with 128 KiB pages puts most commands
// across two boards' pages, of every pair of boards.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { UsageError } from "../../tools/cli/command.ts";
import { simulateCommand } from "../../tools/cli/simulate.ts";
import { CLUSTER_FAULT_KINDS, FAULT_KINDS_ALL } from "../../tools/simulate/faults.ts";
import { passed, simulate } from "../../tools/simulate/simulation.ts";

const TRIO = join(ROOT, "clusters/trio.json");
const dir = mkdtempSync(join(tmpdir(), "wasm-iop-simulate-cluster-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// trio with small pages: a 4 MiB pv0 in 32 pages of 256 blocks (128 KiB), round robin from a, so most commands of
// the workload (1-256 blocks anywhere) span two pages, of any two neighbouring boards (a-b, b-c, c-a), not only the
// hot blocks' a-b.
function trioSmallPages(): string {
  const node = JSON.parse(readFileSync(join(ROOT, "boards/cluster-node.json"), "utf8"));
  node.disks[0] = { ...node.disks[0], sizeMiB: 4 };
  writeFileSync(join(dir, "node.json"), JSON.stringify(node));
  const file = JSON.parse(readFileSync(TRIO, "utf8"));
  for (const b of file.boards) b.file = "node.json";
  file.volumes[0] = { volume: "pv0", pageBlocks: 256, pageCount: 32, owners: { roundRobinFrom: "a" } };
  writeFileSync(join(dir, "trio-small-pages.json"), JSON.stringify(file));
  return join(dir, "trio-small-pages.json");
}

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

  // What test/sim/cluster_faults.test.ts (retired) checked, with the shared shadow: commands through every board across
  // the pages of every other board, under drops, duplicates, links down, partitions, power cuts and resets. That test
  // found the restarted requester's transactions answered from its last life (assembly/rta/rta.ts forgetPeer,
  // docs/cluster.md "A board that starts again").
  it("small pages (commands across every pair of boards), every fault at one in 10 commands: nothing lost or wrong", () => {
    const cluster = trioSmallPages();
    const result = simulate({ seed: 4, ops: 1500, faults: [...FAULT_KINDS_ALL], cluster, faultEveryOps: 10 });
    expect(result.failures, "replay with the cluster file of trioSmallPages(): wasm-iop simulate --cluster FILE --seed 4 --ops 1500 --faults all --verbose").toEqual([]);
    expect(passed(result)).toBe(true);
    expect(result.opsGood).toBeGreaterThan(1000);
    for (const kind of CLUSTER_FAULT_KINDS) expect(result.faultsByKind[kind], kind).toBeGreaterThan(0);
    const lying = simulate({ seed: 4, ops: 1500, faults: ["lie", "link-drop", "board-off"], cluster });
    expect(passed(lying), "the checks see lost writes on this cluster too").toBe(false);
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
