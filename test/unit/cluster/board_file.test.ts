// The board file's `cluster` section (docs/cluster.md, "The routing table"): what the loader accepts, that every
// mistake is one line naming the file and the field, and the configuration ROM records the host encodes from it
// (host/bus/cluster_rom.ts), read back here as the firmware reads them (assembly/cluster/config_rom.ts).
import { describe, expect, it } from "vitest";
import { BoardFileError, parseBoard } from "../../../host/board/load.ts";
import { encodeConfigRom } from "../../../host/bus/config_rom.ts";
import { CLUSTER_FLAG_REDIRECT, CLUSTER_OWNERS_PER_RECORD_MAX, ClusterOwners, ClusterRecord } from "../../../host/bus/cluster_rom.ts";

// Two 16 MiB disks as volumes 0 and 1: 32768 blocks each.
function board(cluster: unknown): unknown {
  const disks = ["d0", "d1"].map((name) => ({ name, sizeMiB: 16, blockSize: 512, backend: "memory" }));
  const processors = [{ name: "host", role: "host", ramMiB: 64, pci: [{ slot: 3, model: "virtio-scsi", disks: ["d0", "d1"] }] }];
  return { name: "a", processors, disks, cluster };
}

const twoBoards = [
  { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 3260 }] },
  { id: 7, name: "b", portals: [{ host: "127.0.0.1", port: 3261 }, { host: "::1", port: 3261 }] },
];

function cluster(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { version: 3, board: "a", boards: twoBoards, volumes: [{ volume: "d1", pageBlocks: 4096, pageCount: 8, owners: { roundRobinFrom: "b" } }], ...overrides };
}

function refusal(section: unknown): string {
  try {
    parseBoard(board(section), "a.json");
  } catch (error) {
    expect(error).toBeInstanceOf(BoardFileError);
    const message = (error as Error).message;
    expect(message.includes("\n")).toBe(false); // one line
    return message;
  }
  throw new Error("the board was accepted");
}

// The records of the ROM of `spec`, in order: [type, value].
function clusterRecordsOf(rom: Uint8Array): [number, DataView][] {
  const view = new DataView(rom.buffer);
  const out: [number, DataView][] = [];
  for (let at = 16; at < view.getUint32(8, true);) {
    const type = view.getUint16(at, true);
    const lengthBytes = view.getUint16(at + 2, true);
    if (type >= 0x40 && type <= 0x4f) out.push([type, new DataView(rom.buffer, at + 4, lengthBytes)]);
    at += 4 + Math.ceil(lengthBytes / 4) * 4;
  }
  return out;
}

const text = (v: DataView, from: number) => new TextDecoder().decode(new Uint8Array(v.buffer, v.byteOffset + from, v.byteLength - from));

describe("board file: the cluster section", () => {
  it("is absent on a single board, and its fields get their defaults", () => {
    expect(parseBoard(board(undefined), "a.json").cluster).toBeUndefined();
    const spec = parseBoard(board(cluster()), "a.json").cluster!;
    expect(spec.redirect).toBe(false);
    expect(spec.volumes[0]).toEqual({ volume: 1, pageBlocks: 4096, pageCount: 8, owners: { kind: "roundRobin", from: "b" } });
    expect(parseBoard(board(cluster({ volumes: undefined })), "a.json").cluster!.volumes).toEqual([]);
  });

  it("a board's targets × portals fit its 15 target ports (one per target and NIC port), each board of the table alike", () => {
    const targets = (n: number) => Array.from({ length: n }, (_, t) => ({ name: `iqn.2026-12.org.example:t${t}`, luns: ["d1"] }));
    const portals = (n: number) => Array.from({ length: n }, (_, p) => ({ host: "127.0.0.1", port: 3300 + p }));
    const withTargets = (n: number, b: number) => ({ ...(board(cluster({ boards: [twoBoards[0], { ...twoBoards[1], portals: portals(b) }] })) as object), targets: targets(n) });
    expect(parseBoard(withTargets(5, 3), "a.json").cluster!.boards[1]!.portals.length).toBe(3); // 15 ports
    expect(() => parseBoard(withTargets(4, 4), "a.json")).toThrow("a.json: cluster.boards[1].portals: expected at most 3 portals: each is a target port of each of the 4 targets, and a board has 15, got 4 portals");
  });

  it("each mistake is one line naming the file and the field", () => {
    expect(refusal(cluster({ board: "c" }))).toBe('a.json: cluster.board: expected the name of one of cluster.boards ("a", "b"), got "c"');
    expect(refusal(cluster({ boards: [twoBoards[0], { ...twoBoards[1], id: 1 }] }))).toBe("a.json: cluster.boards[1].id: expected an id not already used by cluster.boards[0], got 1");
    expect(refusal(cluster({ boards: [twoBoards[0], { ...twoBoards[1], name: "a" }] }))).toBe('a.json: cluster.boards[1].name: expected a name not already used by cluster.boards[0], got "a"');
    expect(refusal(cluster({ boards: [{ ...twoBoards[0], id: 0 }] }))).toMatch(/^a\.json: cluster\.boards\[0\]\.id: expected a board id from 1 to 4095, got 0$/);
    expect(refusal(cluster({ version: 0 }))).toMatch(/^a\.json: cluster\.version: expected a routing table version/);
    expect(refusal(cluster({ boards: [{ ...twoBoards[0], portals: [] }] }))).toMatch(/^a\.json: cluster\.boards\[0\]\.portals: expected an array of 1 to 4 portals/);
    const volume = { volume: "d1", pageBlocks: 4096, pageCount: 8 };
    expect(refusal(cluster({ volumes: [{ ...volume, volume: "nope", owners: { roundRobinFrom: "a" } }] })))
      .toBe('a.json: cluster.volumes[0].volume: expected the name of a volume of this board ("d0", "d1"), got "nope"');
    expect(refusal(cluster({ volumes: [{ ...volume, pageCount: 7, owners: { roundRobinFrom: "a" } }] })))
      .toBe("a.json: cluster.volumes[0].pageCount: expected pages covering the volume's 32768 blocks (at least 8 of 4096 blocks), got 7");
    expect(refusal(cluster({ volumes: [{ ...volume, owners: ["a", "b"] }] }))).toBe("a.json: cluster.volumes[0].owners: expected one board name per page (8), got 2 names");
    expect(refusal(cluster({ volumes: [{ ...volume, owners: ["a", "b", "a", "b", "a", "x", "a", "b"] }] })))
      .toBe('a.json: cluster.volumes[0].owners[5]: expected the name of one of cluster.boards ("a", "b"), got "x"');
    expect(refusal(cluster({ volumes: [{ ...volume, owners: { roundRobinFrom: "z" } }] })))
      .toBe('a.json: cluster.volumes[0].owners.roundRobinFrom: expected the name of one of cluster.boards ("a", "b"), got "z"');
    expect(refusal(cluster({ volumes: [{ ...volume, owners: { roundRobinFrom: "a" } }, { ...volume, volume: 1, owners: { roundRobinFrom: "a" } }] })))
      .toBe("a.json: cluster.volumes[1].volume: expected a volume not already partitioned by cluster.volumes[0], got 1");
    expect(refusal(cluster({ leader: "a" }))).toMatch(/^a\.json: cluster\.leader: unknown field/);
  });

  it("encodes ClusterBegin, the boards and their portals, round-robin volumes, then ClusterEnd", () => {
    const spec = parseBoard(board(cluster({ redirect: true })), "a.json");
    const records = clusterRecordsOf(encodeConfigRom(spec));
    expect(records.map(([type]) => type)).toEqual([ClusterRecord.Begin, ClusterRecord.Board, ClusterRecord.Portal, ClusterRecord.Board,
      ClusterRecord.Portal, ClusterRecord.Portal, ClusterRecord.Volume, ClusterRecord.End]);
    const begin = records[0]![1];
    expect([begin.byteLength, begin.getUint16(0, true), begin.getUint16(2, true), begin.getUint32(4, true), begin.getUint16(8, true)])
      .toEqual([16, 1, CLUSTER_FLAG_REDIRECT, 3, 1]);
    expect([records[3]![1].getUint16(0, true), text(records[3]![1], 4)]).toEqual([7, "b"]);
    expect([records[5]![1].getUint16(0, true), text(records[5]![1], 4)]).toEqual([7, "[::1]:3261"]);
    const volume = records[6]![1];
    expect([volume.getUint32(0, true), volume.getUint32(4, true), volume.getUint32(8, true), volume.getUint8(12), volume.getUint16(14, true)])
      .toEqual([1, 4096, 8, ClusterOwners.RoundRobin, 7]);
    expect(records[7]![1].byteLength).toBe(0);
  });

  it("explicit owners go in Owners records of at most 124 pages each, by board id", () => {
    const owners = Array.from({ length: 300 }, (_, p) => (p % 3 === 0 ? "b" : "a"));
    const spec = parseBoard(board(cluster({ volumes: [{ volume: 0, pageBlocks: 128, pageCount: 300, owners }] })), "a.json");
    const parts = clusterRecordsOf(encodeConfigRom(spec)).filter(([type]) => type === ClusterRecord.Owners).map(([, v]) => v);
    expect(parts.map((v) => [v.getUint32(0, true), v.getUint32(4, true), (v.byteLength - 8) / 2])).toEqual([[0, 0, CLUSTER_OWNERS_PER_RECORD_MAX], [0, 124, 124], [0, 248, 52]]);
    const ids = parts.flatMap((v) => Array.from({ length: (v.byteLength - 8) / 2 }, (_, i) => v.getUint16(8 + i * 2, true)));
    expect(ids).toEqual(owners.map((name) => (name === "b" ? 7 : 1)));
  });
});
