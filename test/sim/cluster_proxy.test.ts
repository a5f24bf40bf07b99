// Proxy I/O in one process on the board clock (docs/cluster.md, "Proxy I/O"): three boards of one cluster file (a
// 4 MiB memory disk each, partitioned in 32 pages of 256 blocks, round robin from a), an initiator on board a's NIC
// and one on board c's. Proves that a write spanning pages of all three boards through a reads back identical through
// c; that with board b's link 0 down and packets dropped the bond fails over and the retransmissions carry the I/O;
// that with both of b's links down a command for b's pages fails visibly (never GOOD with data that is not there),
// and succeeds again once a link is back; and that after board b resets, its pages are served again, with the data
// written before the reset. Twice: with the ports' windows (revision 1, the controller's DMA reaches the requester's
// buffers at once) and without (revision 2, as over TCP: the RTA moves the data by RDMA through its own buffers).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "../../host/cluster/cluster.ts";
import { loadClusterFile } from "../../host/cluster/cluster_file.ts";
import type { LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import { ROOT } from "../../host/root.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { firmwareModule } from "../support/board.ts";
import { Initiator, InitiatorError, seeded } from "../support/iscsi_initiator.ts";

const PAGE_BLOCKS = 256;
const TARGET = "iqn.2026-12.org.wasm-iop:trio";
const dir = mkdtempSync(join(tmpdir(), "wasm-iop-proxy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let cluster: Cluster;
let lines: string[] = [];
let isid = 0x700;

function initiator(board: string, timeoutNs = 200_000_000): Initiator {
  const b = cluster.board(board);
  isid += 1;
  const i = new Initiator(b, b.network as LoopbackBackend, { targetName: TARGET, isid, initiatorName: `iqn.2026-12.org.wasm-iop:proxy-${isid}`, timeoutNs });
  i.login();
  i.clearUnitAttention(0); // the power-on unit attention every new nexus gets first
  return i;
}
const owner = (lba: number): string => ["a", "b", "c"][Math.floor(lba / PAGE_BLOCKS) % 3]!;

function boot(window: boolean, sub: string): void {
  lines = [];
  const node = JSON.parse(readFileSync(join(ROOT, "boards/cluster-node.json"), "utf8"));
  node.disks[0] = { name: "pv0", sizeMiB: 4, blockSize: 512, backend: "memory" };
  mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, sub, "node.json"), JSON.stringify(node));
  const file = JSON.parse(readFileSync(join(ROOT, "clusters/trio.json"), "utf8"));
  for (const b of file.boards) b.file = "node.json";
  file.volumes[0] = { volume: "pv0", pageBlocks: PAGE_BLOCKS, pageCount: 32, owners: { roundRobinFrom: "a" } };
  writeFileSync(join(dir, sub, "trio.json"), JSON.stringify(file));
  cluster = new Cluster({
    window,
    cluster: loadClusterFile(join(dir, sub, "trio.json")),
    firmware: firmwareModule(FIRMWARE_PATH),
    boardOptions: (name) => ({ dataDir: join(dir, sub, name), onConsole: (p, _fd, line) => lines.push(`${name}/${p}: ${line}`) }),
  });
  expect(cluster.powerOn()).toBe(true);
  for (let i = 0; i < 400 && lines.filter((l) => l.includes("tts: serving")).length < 3; i++) cluster.runUntil(cluster.clock.nowNs + 5_000_000);
  cluster.runUntil(cluster.clock.nowNs + 20_000_000); // the hellos
}

describe.each([
  { window: true, name: "through the ports' windows" },
  { window: false, name: "by RDMA through bounce buffers (ports without a window, as over TCP)" },
])("proxy I/O on the board clock, $name", ({ window }) => {
  beforeAll(() => boot(window, window ? "window" : "rdma"), 120_000);

  it("a write spanning all three boards' pages through a reads back identical through c", () => {
    const data = seeded("span", 5 * PAGE_BLOCKS * 512); // pages 1-5 from the middle of page 0: a, b, c, a, b, c
    const a = initiator("a");
    a.write(0, PAGE_BLOCKS / 2, data);
    expect(initiator("c").read(0, PAGE_BLOCKS / 2, 5 * PAGE_BLOCKS)).toEqual(data);
    const owners = new Set(Array.from({ length: 5 }, (_, k) => owner(PAGE_BLOCKS / 2 + k * PAGE_BLOCKS)));
    expect([...owners].sort()).toEqual(["a", "b", "c"]);
    const port = cluster.board("b").clusterPorts[0]!;
    if (window) expect(port.revision).toBe(1);
    else {
      expect(port.revision).toBe(2);
      expect(port.stats.bytesOut + port.stats.bytesIn).toBeGreaterThan(0); // peers' RDMAs reached b's buffers
      expect(cluster.fabric.stats.windowAccesses).toBe(0);
    }
    // Each page lies on its owner's disk: b's page 1 on b, not on a.
    const page1 = data.subarray(PAGE_BLOCKS / 2 * 512, (PAGE_BLOCKS / 2 + PAGE_BLOCKS) * 512);
    const diskOf = (board: string) => cluster.board(board).disk("pv0")!;
    const read = (board: string) => { const out = new Uint8Array(page1.length); diskOf(board).read(PAGE_BLOCKS * 512, out); return out; };
    expect(read("b")).toEqual(page1);
    expect(read("a")).not.toEqual(page1);
  });

  it("fails over when b's link 0 drops, and retransmits what the fabric dropped", () => {
    cluster.fabric.setLink(2, 0, false);
    cluster.fabric.inject({ kind: "drop-next", count: 3 });
    const data = seeded("failover", 2 * PAGE_BLOCKS * 512);
    const a = initiator("a", 2_000_000_000);
    a.write(0, PAGE_BLOCKS * 4, data); // pages 4 (b) and 5 (c)
    expect(a.read(0, PAGE_BLOCKS * 4, 2 * PAGE_BLOCKS)).toEqual(data);
    expect(cluster.board("b").clusterPorts[0]!.stats.failovers).toBeGreaterThan(0);
    expect(cluster.fabric.stats.dropped).toBe(3);
    cluster.fabric.setLink(2, 0, true);
  });

  it("with both of b's links down a command for b's pages fails visibly, and works once a link is back", () => {
    const data = seeded("down", PAGE_BLOCKS * 512);
    const a = initiator("a", 20_000_000_000);
    cluster.fabric.setLink(2, 0, false);
    cluster.fabric.setLink(2, 1, false);
    expect(() => a.write(0, PAGE_BLOCKS * 7, data)).toThrow(InitiatorError); // page 7: b's
    cluster.fabric.setLink(2, 1, true);
    const again = initiator("a", 2_000_000_000);
    again.write(0, PAGE_BLOCKS * 7, data);
    expect(again.read(0, PAGE_BLOCKS * 7, PAGE_BLOCKS)).toEqual(data);
    cluster.fabric.setLink(2, 0, true);
  });

  it("after board b resets, a serves b's pages again, with what was written before", () => {
    const before = initiator("c").read(0, 0, 8 * PAGE_BLOCKS);
    expect(cluster.board("b").reset()).toBe(true);
    for (let i = 0; i < 400 && lines.filter((l) => l.startsWith("b/host: tts: serving")).length < 2; i++) cluster.runUntil(cluster.clock.nowNs + 5_000_000);
    cluster.runUntil(cluster.clock.nowNs + 20_000_000);
    const a = initiator("a", 2_000_000_000);
    expect(a.read(0, 0, 8 * PAGE_BLOCKS)).toEqual(before);
    const data = seeded("after-reset", PAGE_BLOCKS * 512);
    a.write(0, PAGE_BLOCKS * 10, data); // page 10: b's
    expect(initiator("c").read(0, PAGE_BLOCKS * 10, PAGE_BLOCKS)).toEqual(data);
  });
});
