// The configuration ROM's cluster records (docs/cluster.md, "The routing table"): the board file's `cluster` section
// as the firmware reads it (assembly/cluster/config_rom.ts, whose ClusterRecord and constants
// test/unit/cluster/shared_constants.test.ts matches one for one with these). Little-endian, in this order:
//   ClusterBegin, a ClusterBoard per board each followed by its ClusterPortal records, a ClusterVolume per partitioned
//   volume (explicit owners: followed by its ClusterOwners records), ClusterEnd.
import { type ClusterSpec, clusterPageOwners } from "../board/cluster_spec.ts";

export enum ClusterRecord {
  Begin = 0x40, // |0 format u16|2 flags u16 (CLUSTER_FLAG_REDIRECT)|4 version u32|8 this board's id u16|10 - u16|12 - u32|
  Board = 0x41, // |0 id u16|2 - u16|4 name (1..31 bytes)|
  Portal = 0x42, // |0 board id u16|2 - u16|4 "address:port"| (the portal group tag is the board id)
  Volume = 0x43, // |0 volume u32|4 pageBlocks u32|8 pageCount u32|12 owners u8 (ClusterOwners)|13 - u8|14 round robin's first board id u16|
  Owners = 0x44, // |0 volume u32|4 first page u32|8 board id u16 per page, at most CLUSTER_OWNERS_PER_RECORD_MAX|
  End = 0x4f, // empty: the table is complete
}

/** A ClusterVolume record's owners byte. */
export enum ClusterOwners {
  Explicit = 0,
  RoundRobin = 1,
}

export const CLUSTER_FORMAT = 1;
export const CLUSTER_BEGIN_BYTES = 16;
export const CLUSTER_VOLUME_BYTES = 16;
export const CLUSTER_FLAG_REDIRECT = 1;
export const CLUSTER_OWNERS_PER_RECORD_MAX = 124;

export type ClusterRomRecord = { type: ClusterRecord; value: Uint8Array };

/** The records of `cluster`, in the order above; [] for a board without a cluster section. */
export function clusterRecords(cluster: ClusterSpec | undefined): ClusterRomRecord[] {
  if (cluster === undefined) return [];
  const idOf = new Map(cluster.boards.map((b) => [b.name, b.id]));
  const records: ClusterRomRecord[] = [];
  const begin = new DataView(new ArrayBuffer(CLUSTER_BEGIN_BYTES));
  begin.setUint16(0, CLUSTER_FORMAT, true);
  begin.setUint16(2, cluster.redirect ? CLUSTER_FLAG_REDIRECT : 0, true);
  begin.setUint32(4, cluster.version, true);
  begin.setUint16(8, idOf.get(cluster.board)!, true);
  records.push({ type: ClusterRecord.Begin, value: new Uint8Array(begin.buffer) });
  for (const board of cluster.boards) {
    records.push({ type: ClusterRecord.Board, value: withId(board.id, board.name) });
    for (const portal of board.portals) {
      const text = portal.host.includes(":") ? `[${portal.host}]:${portal.port}` : `${portal.host}:${portal.port}`;
      records.push({ type: ClusterRecord.Portal, value: withId(board.id, text) });
    }
  }
  for (const volume of cluster.volumes) {
    const value = new DataView(new ArrayBuffer(CLUSTER_VOLUME_BYTES));
    value.setUint32(0, volume.volume, true);
    value.setUint32(4, volume.pageBlocks, true);
    value.setUint32(8, volume.pageCount, true);
    value.setUint8(12, volume.owners.kind === "explicit" ? ClusterOwners.Explicit : ClusterOwners.RoundRobin);
    value.setUint16(14, volume.owners.kind === "explicit" ? 0 : idOf.get(volume.owners.from)!, true);
    records.push({ type: ClusterRecord.Volume, value: new Uint8Array(value.buffer) });
    if (volume.owners.kind !== "explicit") continue;
    const owners = clusterPageOwners(cluster, volume);
    for (let first = 0; first < owners.length; first += CLUSTER_OWNERS_PER_RECORD_MAX) {
      const part = owners.slice(first, first + CLUSTER_OWNERS_PER_RECORD_MAX);
      const bytes = new DataView(new ArrayBuffer(8 + part.length * 2));
      bytes.setUint32(0, volume.volume, true);
      bytes.setUint32(4, first, true);
      part.forEach((name, i) => bytes.setUint16(8 + i * 2, idOf.get(name)!, true));
      records.push({ type: ClusterRecord.Owners, value: new Uint8Array(bytes.buffer) });
    }
  }
  records.push({ type: ClusterRecord.End, value: new Uint8Array(0) });
  return records;
}

// |0 id u16|2 - u16|4 text|
function withId(id: number, text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const value = new Uint8Array(4 + bytes.length);
  new DataView(value.buffer).setUint16(0, id, true);
  value.set(bytes, 4);
  return value;
}
