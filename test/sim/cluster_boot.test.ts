// The example cluster (clusters/trio.json) in one process: three boards on one virtual clock, their cluster ports on
// one fabric at their board ids. Proves that every board boots with the routing table of the cluster file, that the
// ports are where the table says, and that the same seeds give the same trace hashes (the cluster is deterministic).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Cluster } from "../../host/cluster/cluster.ts";
import { loadClusterFile } from "../../host/cluster/cluster_file.ts";
import { ROOT } from "../../host/root.ts";
import { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { firmwareModule } from "../support/board.ts";

const dirs: string[] = [];
afterAll(() => { for (const dir of dirs) rmSync(dir, { recursive: true, force: true }); });

function bootTrio(): { cluster: Cluster; lines: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "wasm-iop-trio-"));
  dirs.push(dir);
  const lines: string[] = [];
  const cluster = new Cluster({
    cluster: loadClusterFile(join(ROOT, "clusters/trio.json")),
    firmware: firmwareModule(FIRMWARE_PATH),
    boardOptions: (name) => ({ dataDir: join(dir, name), trace: new Trace({ enabled: true }), onConsole: (processor, _fd, line) => lines.push(`${name}/${processor}: ${line}`) }),
  });
  expect(cluster.powerOn()).toBe(true);
  cluster.runUntil(50_000_000);
  return { cluster, lines };
}

describe("the example cluster in one process", () => {
  it("boots three boards on one clock, each with the cluster file's routing table and a cluster port at its id", () => {
    const { cluster, lines } = bootTrio();
    for (const name of ["a", "b", "c"]) expect(lines).toContain(`${name}/host: cluster: routing table version 1, 3 boards, 1 partitioned volumes`);
    expect(cluster.boards.map((b) => b.clock)).toEqual([cluster.clock, cluster.clock, cluster.clock]);
    expect(cluster.boards.map((b) => b.clusterPorts.map((p) => p.fabricAddress))).toEqual([[1], [2], [3]]);
    expect(cluster.fabric.addresses()).toEqual([1, 2, 3]);
    cluster.powerOff();
  });

  it("replays: the same cluster file and seeds give the same trace hash on every board", () => {
    const first = bootTrio().cluster;
    const second = bootTrio().cluster;
    expect(first.boards.map((b) => b.trace.digest())).toEqual(second.boards.map((b) => b.trace.digest()));
    expect(new Set(first.boards.map((b) => b.trace.digest())).size).toBe(3); // three different boards
    first.powerOff();
    second.powerOff();
  });
});
