// Remote completions by tunneled interrupt (docs/cluster.md, "Tunneled completions"): in the three-board cluster of
// cluster_proxy.test.ts, board b reads a page board a owns. a's fabric task SENDs the reply and then raises b's
// tunneled vector; b holds the reply until that vector fires. Checked here: when b's port raises the tunneled vector,
// the data a's controller put into b's buffers is already in b's memory; with every tunneled interrupt from a to b
// lost, b never completes the read with the reply alone (it fails visibly once the CTA gives up); and a tunneled
// interrupt that is lost once, or delivered twice, is survived: the read completes GOOD with the right data. Twice: with
// the ports' windows (a's controller DMAs into b's buffers) and without (a's RTA moves the data by RDMA WRITE).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "../../host/cluster/cluster.ts";
import { loadClusterFile } from "../../host/cluster/cluster_file.ts";
import { FabricOpcode } from "../../host/devices/cluster_port.ts";
import type { LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import type { FabricEndpoint, FabricPacket } from "../../host/fabric/fabric.ts";
import { ROOT } from "../../host/root.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { firmwareModule } from "../support/board.ts";
import { Initiator, InitiatorError, seeded } from "../support/iscsi_initiator.ts";

const PAGE_BLOCKS = 256; // page 0 on a, 1 on b, 2 on c, ...
const TARGET = "iqn.2026-12.org.wasm-iop:trio";
const A = 1;
const B = 2;
const dir = mkdtempSync(join(tmpdir(), "wasm-iop-tunnel-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let cluster: Cluster;
let lines: string[] = [];
let isid = 0x600;

function initiator(board: string, timeoutNs = 200_000_000): Initiator {
  const b = cluster.board(board);
  isid += 1;
  const i = new Initiator(b, b.network as LoopbackBackend, { targetName: TARGET, isid, initiatorName: `iqn.2026-12.org.wasm-iop:tunnel-${isid}`, timeoutNs });
  i.login();
  i.clearUnitAttention(0);
  return i;
}

type Send = (sender: FabricEndpoint, link: number, packet: FabricPacket) => boolean;
const isInterrupt = (packet: FabricPacket, source: number, destination: number): boolean => {
  const body = packet.body as { kind?: string; opcode?: number };
  return packet.source === source && packet.destination === destination && body.kind === "request" && body.opcode === FabricOpcode.Interrupt;
};

// Runs `body` with the fabric's send replaced: `filter` sees each tunneled interrupt from a to b and says what to do.
function withInterrupts(filter: (n: number) => "pass" | "drop" | "duplicate", body: () => void): number {
  const fabric = cluster.fabric;
  const send: Send = fabric.send.bind(fabric);
  let count = 0;
  fabric.send = (sender, link, packet) => {
    if (!isInterrupt(packet, A, B)) return send(sender, link, packet);
    const what = filter(count++);
    if (what === "drop") return sender.links[link]?.up === true; // on its way, never arrives
    if (what === "duplicate") fabric.inject({ kind: "duplicate-next", count: 1 });
    return send(sender, link, packet);
  };
  try {
    body();
  } finally {
    fabric.send = send;
  }
  return count;
}

function boot(window: boolean): void {
  const sub = join(dir, window ? "window" : "rdma");
  lines = [];
  const node = JSON.parse(readFileSync(join(ROOT, "boards/cluster-node.json"), "utf8"));
  node.disks[0] = { name: "pv0", sizeMiB: 4, blockSize: 512, backend: "memory" };
  mkdirSync(sub, { recursive: true });
  writeFileSync(join(sub, "node.json"), JSON.stringify(node));
  const file = JSON.parse(readFileSync(join(ROOT, "clusters/trio.json"), "utf8"));
  for (const b of file.boards) b.file = "node.json";
  file.volumes[0] = { volume: "pv0", pageBlocks: PAGE_BLOCKS, pageCount: 32, owners: { roundRobinFrom: "a" } };
  writeFileSync(join(sub, "trio.json"), JSON.stringify(file));
  cluster = new Cluster({
    cluster: loadClusterFile(join(sub, "trio.json")),
    firmware: firmwareModule(FIRMWARE_PATH),
    window,
    boardOptions: (name) => ({ dataDir: join(sub, name), onConsole: (p, _fd, line) => lines.push(`${name}/${p}: ${line}`) }),
  });
  expect(cluster.powerOn()).toBe(true);
  for (let i = 0; i < 400 && lines.filter((l) => l.includes("tts: serving")).length < 3; i++) cluster.runUntil(cluster.clock.nowNs + 5_000_000);
  cluster.runUntil(cluster.clock.nowNs + 20_000_000); // the hellos
}

// Writes `tag`'s blocks to page 0 through its owner a (nothing of them passes through b) and returns them.
function onA(tag: string, lba: number, blocks: number): Uint8Array {
  const data = seeded(tag, blocks * 512);
  initiator("a").write(0, lba, data);
  return data;
}

const bMemoryHolds = (needle: Uint8Array): boolean => {
  const host = cluster.board("b").processors[0]!;
  return Buffer.from(host.memory.buffer, 0, host.ramBytes).indexOf(needle) >= 0;
};

describe.each([
  { window: true, name: "through the ports' windows" },
  { window: false, name: "by RDMA (ports without a window)" },
])("remote completions by tunneled interrupt, data $name", ({ window }) => {
  beforeAll(() => boot(window), 120_000);
  afterAll(() => cluster.powerOff());

  it("raises b's tunneled vector only once the data a's controller moved is in b's memory", () => {
    const data = onA("visible", 16, 8);
    const block = data.subarray(3 * 512, 4 * 512);
    expect(bMemoryHolds(block)).toBe(false);
    const port = cluster.board("b").clusterPorts[0]! as unknown as { signal(vector: number): void };
    const signal = port.signal.bind(port);
    const seen: boolean[] = [];
    port.signal = (vector) => {
      if (vector >= 1) seen.push(bMemoryHolds(block)); // a tunneled vector: the data must be there already
      signal(vector);
    };
    const reader = initiator("b");
    try {
      expect(reader.read(0, 16, 8)).toEqual(data);
    } finally {
      delete (port as Partial<typeof port>).signal; // the prototype's again
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((held) => held)).toBe(true);
  });

  it("never completes a remote read with the reply alone: with a's interrupts to b lost it fails visibly, then works", () => {
    const data = onA("lost-all", 40, 4);
    const reader = initiator("b", 8_000_000_000);
    let failed = false;
    const sent = withInterrupts(() => "drop", () => {
      try {
        reader.read(0, 40, 4);
      } catch (error) {
        if (!(error instanceof InitiatorError)) throw error;
        failed = true;
      }
    });
    expect(sent).toBeGreaterThan(1); // the reply came again with the CTA's retransmissions, each with its interrupt
    expect(failed).toBe(true);
    expect(initiator("b").read(0, 40, 4)).toEqual(data);
  });

  it("survives a tunneled interrupt lost once, or delivered twice (the port's sequence numbers drop the copy)", () => {
    const data = onA("once", 64, 4);
    const sent = withInterrupts((n) => (n === 0 ? "drop" : "pass"), () => {
      expect(initiator("b", 2_000_000_000).read(0, 64, 4)).toEqual(data);
    });
    expect(sent).toBeGreaterThan(1);
    const duplicatesBefore = cluster.board("b").clusterPorts[0]!.stats.duplicates;
    const again = onA("twice", 80, 4);
    withInterrupts(() => "duplicate", () => {
      expect(initiator("b", 2_000_000_000).read(0, 80, 4)).toEqual(again);
    });
    expect(cluster.board("b").clusterPorts[0]!.stats.duplicates).toBeGreaterThan(duplicatesBefore);
  });
});
