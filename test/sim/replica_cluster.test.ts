// A replica whose copies live on two boards (docs/volumes.md, "Copies on two boards"), in one process on the cluster
// clock: clusters/pair.json with 16 MiB copies. Board a presents rep (copy 0 its disk rep-a, copy 1 board b's rep-b,
// reached over the fabric). Proves that a write answered through a is on both boards' disks; that with b powered
// off writes go on degraded (answered once copy 0 has them, never lost); that b's return copies back only the logged
// regions; and that then both copies are byte-identical and every answered write reads back.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "../../host/cluster/cluster.ts";
import { loadClusterFile } from "../../host/cluster/cluster_file.ts";
import type { LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import { ROOT } from "../../host/root.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { firmwareModule } from "../support/board.ts";
import { Initiator, seeded } from "../support/iscsi_initiator.ts";

const TARGET = "iqn.2026-12.org.wasm-iop:pair";
const BLOCK = 512;
const METADATA_BYTES = 1 << 20; // each copy's first MiB: superblock and write-intent log (docs/volumes.md)
const DATA_BYTES = 16 * (1 << 20) - METADATA_BYTES; // 16 MiB copies here
const CHUNK_BLOCKS = 128; // 64 KiB chunks: one region each on a volume this small
const dir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-cluster-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let cluster: Cluster;
const lines: string[] = [];
let isid = 0x1800;

function initiator(timeoutNs = 2_000_000_000): Initiator {
  const a = cluster.board("a");
  isid += 1;
  const i = new Initiator(a, a.network as LoopbackBackend, { targetName: TARGET, isid, initiatorName: `iqn.2026-12.org.wasm-iop:rep-${isid}`, timeoutNs, stepNs: 200_000 });
  i.login();
  i.clearUnitAttention(0);
  return i;
}

function copyData(board: string, disk: string): Uint8Array {
  const out = new Uint8Array(DATA_BYTES);
  cluster.board(board).disk(disk)!.read(METADATA_BYTES, out);
  return out;
}

const lastVolumeLine = (): string => lines.filter((l) => l.startsWith("a/host: volume index=0")).at(-1) ?? "";

function runUntil(done: () => boolean, limitNs: number): void {
  const end = cluster.clock.nowNs + limitNs;
  while (!done() && cluster.clock.nowNs < end) cluster.runUntil(cluster.clock.nowNs + 10_000_000);
}

beforeAll(() => {
  for (const side of ["a", "b"]) {
    const board = JSON.parse(readFileSync(join(ROOT, `clusters/pair/${side}.json`), "utf8"));
    // File disks (a memory disk is blank after a power cycle): 16 MiB copies instead of 64.
    for (const d of board.disks) if (d.sizeMiB === 64) d.sizeMiB = 16;
    writeFileSync(join(dir, `${side}.json`), JSON.stringify(board));
  }
  const file = JSON.parse(readFileSync(join(ROOT, "clusters/pair.json"), "utf8"));
  for (const b of file.boards) b.file = `${b.name}.json`;
  writeFileSync(join(dir, "pair.json"), JSON.stringify(file));
  cluster = new Cluster({
    cluster: loadClusterFile(join(dir, "pair.json")),
    firmware: firmwareModule(FIRMWARE_PATH),
    boardOptions: (name) => ({ dataDir: join(dir, name), onConsole: (p, _fd, line) => lines.push(`${name}/${p}: ${line}`) }),
  });
  expect(cluster.powerOn()).toBe(true);
  runUntil(() => lines.filter((l) => l.includes("tts: serving")).length >= 2 && lastVolumeLine() !== "", 60_000_000_000);
  cluster.runUntil(cluster.clock.nowNs + 20_000_000);
}, 120_000);

describe("a replica with a copy on each of two boards", () => {
  it("boots optimal with copy 1 on board b", () => {
    expect(lines.some((l) => l.startsWith("a/host: inventory volume index=0 name=rep type=replica") && l.includes("copies=current,current"))).toBe(true);
    expect(lastVolumeLine()).toContain("state=optimal");
  });

  it("a write answered through a is on both boards' disks", () => {
    const data = seeded("both", 96 * BLOCK);
    initiator().write(0, 1000, data);
    expect(copyData("a", "rep-a").subarray(1000 * BLOCK, 1096 * BLOCK)).toEqual(data);
    expect(copyData("b", "rep-b").subarray(1000 * BLOCK, 1096 * BLOCK)).toEqual(data);
  });

  it("b off: writes go on degraded; b on: only the logged regions are copied back, then both copies are identical", () => {
    const shadow = new Map<number, Uint8Array>(); // lba -> what an answered write put there
    const i = initiator(60_000_000_000);
    const write = (lba: number, label: string) => {
      const data = seeded(label, 16 * BLOCK);
      i.write(0, lba, data);
      shadow.set(lba, data);
    };
    write(2000, "before-off");
    cluster.board("b").powerOff();
    // The first write after b went away waits for copy 1 to be given up (its parts time out), then is answered from
    // copy 0 alone; the rest are answered at once.
    // The failover time docs/volumes.md gives ("Limits": a copy on another board that answers nothing for 5 s is
    // failed): the first write is answered within 6 s of board time, every later one within 1 s.
    const tookNs: number[] = [];
    for (let k = 0; k < 6; k++) {
      const startNs = cluster.clock.nowNs;
      write(CHUNK_BLOCKS * (20 + 7 * k), `off-${k}`);
      tookNs.push(cluster.clock.nowNs - startNs);
    }
    expect(tookNs[0]).toBeLessThan(6_000_000_000);
    for (const ns of tookNs.slice(1)) expect(ns).toBeLessThan(1_000_000_000);
    expect(lastVolumeLine()).toContain("state=degraded");
    expect(lastVolumeLine()).toContain("copies=current,failed");
    const failedAtNs = cluster.clock.nowNs;
    // Reads come from the current copy meanwhile.
    for (const [lba, data] of shadow) expect(i.read(0, lba, 16)).toEqual(data);

    expect(cluster.board("b").powerOn()).toBe(true);
    runUntil(() => lastVolumeLine().includes("state=optimal"), 120_000_000_000);
    expect(lastVolumeLine()).toContain("copies=current,current");
    const copying = lines.find((l) => l.startsWith("a/host: volumes: copying") && l.includes("from copy 0 to copy 1"));
    expect(copying).toBeDefined();
    const regions = Number(/copying (\d+) regions/.exec(copying!)![1]);
    // Only the logged regions: the six written while b was off, and at most the one written just before (its bit
    // is cleared after a quiet second, if both copies were current then); not the whole copy.
    expect(regions).toBeGreaterThanOrEqual(6);
    expect(regions).toBeLessThanOrEqual(7);
    expect(DATA_BYTES / (CHUNK_BLOCKS * BLOCK)).toBeGreaterThan(200);
    expect(cluster.clock.nowNs - failedAtNs).toBeLessThan(60_000_000_000);

    const copy0 = copyData("a", "rep-a");
    const copy1 = copyData("b", "rep-b");
    expect(Buffer.compare(copy0, copy1)).toBe(0);
    for (const [lba, data] of shadow) {
      expect(copy1.subarray(lba * BLOCK, lba * BLOCK + data.length)).toEqual(data);
      expect(initiator().read(0, lba, 16)).toEqual(data);
    }
  }, 300_000);
});

describe("a replica across two boards: board a restarts while b is off", () => {
  it("loads rep degraded once b's copy is given up, serves from copy 0, and copies the logged regions when b is back", () => {
    cluster.board("b").powerOff();
    const mark = lines.length;
    expect(cluster.board("a").reset()).toBe(true);
    const bootNs = cluster.clock.nowNs;
    runUntil(() => lines.slice(mark).some((l) => l.startsWith("a/host: tts: serving")), 120_000_000_000);
    const servedAfterNs = cluster.clock.nowNs - bootNs;
    process.stderr.write(`a served again ${(servedAfterNs / 1e9).toFixed(1)} s of board time after its reset\n`);
    const after = lines.slice(mark).filter((l) => l.startsWith("a/host: volume index=0")).at(-1) ?? "";
    expect(after).toContain("state=degraded");
    expect(after).toContain("copies=current,failed");
    expect(servedAfterNs).toBeLessThan(8_000_000_000); // b answered nothing for 5 s: its copy failed, then a serves (20 s before)
    const data = seeded("a-restarted", 32 * BLOCK);
    const i = initiator(60_000_000_000);
    i.write(0, 5000, data);
    expect(cluster.board("b").powerOn()).toBe(true);
    runUntil(() => lastVolumeLine().includes("state=optimal"), 120_000_000_000);
    const copying = lines.slice(mark).find((l) => l.startsWith("a/host: volumes: copying"));
    expect(copying).toBeDefined();
    expect(Number(/copying (\d+) regions/.exec(copying!)![1])).toBeLessThan(10);
    expect(Buffer.compare(copyData("a", "rep-a"), copyData("b", "rep-b"))).toBe(0);
    expect(initiator().read(0, 5000, 32)).toEqual(data);
  }, 300_000);
});

describe("a replica across two boards with a hot spare on board a", () => {
  it("b off: the spare on a takes copy 1's place and gets the whole volume; b back on is no copy any more", () => {
    const spareDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-spare-"));
    try {
      for (const side of ["a", "b"]) {
        const board = JSON.parse(readFileSync(join(ROOT, `clusters/pair/${side}.json`), "utf8"));
        for (const d of board.disks) if (d.sizeMiB === 64) d.sizeMiB = 16;
        if (side === "a") {
          board.disks.push({ name: "spare-a", sizeMiB: 16, blockSize: 512, physicalBlockSize: 4096, backend: "file", image: "spare-a.img" });
          board.processors[0].pci[0].disks.push("spare-a");
          board.volumes[0].spares = ["spare-a"];
        }
        writeFileSync(join(spareDir, `${side}.json`), JSON.stringify(board));
      }
      const file = JSON.parse(readFileSync(join(ROOT, "clusters/pair.json"), "utf8"));
      for (const b of file.boards) b.file = `${b.name}.json`;
      writeFileSync(join(spareDir, "pair.json"), JSON.stringify(file));
      const spareLines: string[] = [];
      const c = new Cluster({
        cluster: loadClusterFile(join(spareDir, "pair.json")),
        firmware: firmwareModule(FIRMWARE_PATH),
        boardOptions: (name) => ({ dataDir: join(spareDir, name), onConsole: (p, _fd, line) => spareLines.push(`${name}/${p}: ${line}`) }),
      });
      const last = () => spareLines.filter((l) => l.startsWith("a/host: volume index=0")).at(-1) ?? "";
      const until = (done: () => boolean, limitNs: number) => {
        const end = c.clock.nowNs + limitNs;
        while (!done() && c.clock.nowNs < end) c.runUntil(c.clock.nowNs + 10_000_000);
      };
      expect(c.powerOn()).toBe(true);
      until(() => spareLines.filter((l) => l.includes("tts: serving")).length >= 2 && last().includes("state=optimal"), 60_000_000_000);
      const a = c.board("a");
      const i = new Initiator(a, a.network as LoopbackBackend, { targetName: TARGET, isid: 0x1900, initiatorName: "iqn.2026-12.org.wasm-iop:rep-spare", timeoutNs: 60_000_000_000, stepNs: 200_000 });
      i.login();
      i.clearUnitAttention(0);
      const before = seeded("spare-before", 64 * BLOCK);
      i.write(0, 3000, before);
      c.board("b").powerOff();
      const during = seeded("spare-during", 64 * BLOCK);
      i.write(0, 9000, during);
      until(() => last().includes("state=optimal"), 120_000_000_000);
      const log = spareLines.join("\n");
      expect(log).toMatch(/a\/host: volumes: a spare takes copy 1 of volume 0; the whole volume is copied to it/);
      expect(Number(/copying (\d+) regions of volume 0 from copy 0 to copy 1/.exec(log)![1])).toBe(DATA_BYTES / (CHUNK_BLOCKS * BLOCK));
      const area = (disk: string) => { const out = new Uint8Array(DATA_BYTES); c.board("a").disk(disk)!.read(METADATA_BYTES, out); return out; };
      expect(Buffer.compare(area("rep-a"), area("spare-a"))).toBe(0);
      expect(area("spare-a").subarray(9000 * BLOCK, 9064 * BLOCK)).toEqual(during);
      const resyncs = spareLines.filter((l) => /copying \d+ regions/.test(l)).length;
      expect(c.board("b").powerOn()).toBe(true);
      c.runUntil(c.clock.nowNs + 5_000_000_000);
      expect(spareLines.filter((l) => /copying \d+ regions/.test(l)).length).toBe(resyncs); // b's disk is not probed again
      expect(last()).toContain("copies=current,current");
      expect(i.read(0, 3000, 64)).toEqual(before);
      expect(i.read(0, 9000, 64)).toEqual(during);
    } finally {
      rmSync(spareDir, { recursive: true, force: true });
    }
  }, 300_000);
});

