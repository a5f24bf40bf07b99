// A replica with a copy on another board (docs/volumes.md, "Copies on two boards"): clusters/pair.json resolves board
// a's copy "b:rep-b" to board b's host processor's disk, and the configuration ROM carries it as a VolumeRemoteDisk
// record (board id, disk index, geometry); every misuse is one line naming the file and the field.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadBoardFile } from "../../../host/board/load.ts";
import { CONFIG_REMOTE_DISK_BYTES, encodeConfigRom, VolumeRecord } from "../../../host/bus/config_rom.ts";
import { loadClusterFile } from "../../../host/cluster/cluster_file.ts";
import { ROOT } from "../../../host/root.ts";

const dir = mkdtempSync(join(tmpdir(), "wasm-iop-pair-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const read = (path: string): Record<string, any> => JSON.parse(readFileSync(join(ROOT, path), "utf8"));

// Writes a copy of the pair with `edit` applied to (cluster, a, b), and loads it.
function pairWith(edit: (cluster: Record<string, any>, a: Record<string, any>, b: Record<string, any>) => void): () => unknown {
  const cluster = read("clusters/pair.json");
  const a = read("clusters/pair/a.json");
  const b = read("clusters/pair/b.json");
  edit(cluster, a, b);
  cluster.boards[0].file = "a.json";
  cluster.boards[1].file = "b.json";
  writeFileSync(join(dir, "a.json"), JSON.stringify(a));
  writeFileSync(join(dir, "b.json"), JSON.stringify(b));
  writeFileSync(join(dir, "pair.json"), JSON.stringify(cluster));
  return () => loadClusterFile(join(dir, "pair.json"));
}

// The ROM's records, as [type, value].
function romRecords(rom: Uint8Array): [number, Uint8Array][] {
  const view = new DataView(rom.buffer, rom.byteOffset);
  const out: [number, Uint8Array][] = [];
  let at = 16;
  for (let i = 0; i < view.getUint16(6, true); i++) {
    const length = view.getUint16(at + 2, true);
    out.push([view.getUint16(at, true), rom.slice(at + 4, at + 4 + length)]);
    at += 4 + Math.ceil(length / 4) * 4;
  }
  return out;
}

describe("a replica copy on another board", () => {
  it("resolves b:rep-b to board b's host disk 0 and writes a VolumeRemoteDisk record", () => {
    const pair = loadClusterFile(join(ROOT, "clusters/pair.json"));
    const a = pair.boards[0]!.spec;
    expect(a.remoteDisks).toEqual([{ name: "b:rep-b", board: "b", boardId: 2, index: 0, disk: expect.objectContaining({ name: "rep-b", sizeMiB: 64, blockSize: 512 }) }]);
    expect(pair.boards[1]!.spec.remoteDisks).toBeUndefined();
    const records = romRecords(encodeConfigRom(a));
    const remote = records.filter(([type]) => type === VolumeRecord.VolumeRemoteDisk);
    expect(remote).toHaveLength(1);
    const value = new DataView(remote[0]![1].buffer);
    expect(remote[0]![1].length).toBe(CONFIG_REMOTE_DISK_BYTES);
    expect([value.getUint32(0, true), value.getUint16(4, true), value.getUint8(6), value.getBigUint64(8, true), value.getUint32(16, true)])
      .toEqual([0, 2, 3, 131072n, 512]);
    // Copy 0 stays a VolumeDisk record of a's host, before it.
    const types = records.map(([type]) => type);
    expect(types.indexOf(VolumeRecord.VolumeDisk)).toBeLessThan(types.indexOf(VolumeRecord.VolumeRemoteDisk));
  });

  it("refuses a remote copy outside a cluster file, as copy 0, on no board, off b's host, or served by b too", () => {
    expect(() => loadBoardFile(join(ROOT, "clusters/pair/a.json"))).toThrow(/a\.json: volumes\[0\]\.copies\[1\]: expected a disk of this board: a copy on another board \("BOARD:DISK"\) needs a cluster file/);
    expect(pairWith((_c, a) => { a.volumes[0].copies = ["b:rep-b", "rep-a"]; })).toThrow(/boards\[0\] \(a\.json\): volumes\[0\]\.copies\[0\]: expected a disk of this board \(copy 0/);
    expect(pairWith((_c, a) => { a.volumes[0].copies[1] = "z:rep-b"; })).toThrow(/volumes\[0\]\.copies\[1\]: expected "BOARD:DISK" with BOARD another board of the cluster \("b"\), got "z:rep-b"/);
    expect(pairWith((_c, a) => { a.volumes[0].copies[1] = "a:rep-a"; })).toThrow(/copies\[1\]: expected "BOARD:DISK" with BOARD another board/);
    expect(pairWith((_c, a) => { a.volumes[0].copies[1] = "b:nope"; })).toThrow(/copies\[1\]: expected a disk of board b \(its disks: rep-b, b0\), got "b:nope"/);
    expect(pairWith((_c, _a, b) => {
      b.processors.push({ name: "sp1", role: "storage", ramMiB: 32, pci: [{ slot: 1, model: "virtio-scsi", disks: ["rep-b"] }] });
      b.processors[0].pci[0].disks = ["b0"];
      b.processors[0].pci.unshift({ slot: 1, model: "iop-bridge", processor: "sp1" });
    })).toThrow(/copies\[1\]: expected a disk on board b's host processor host \(the fabric reaches its RTA only\), not on sp1/);
    expect(pairWith((_c, _a, b) => { delete b.volumes; delete b.targets; })).toThrow(/boards\[1\] \(b\.json\): volumes\[0\]: expected no volume over disk "rep-b": it holds board a's replica copy b:rep-b/);
    expect(pairWith((_c, a) => { a.disks[0].sizeMiB = 1; })).toThrow(/volumes\[0\]\.members\[0\]: expected a disk larger than 1 MiB/);
  });
});
