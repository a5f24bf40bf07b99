// Reads the cluster records of the board's configuration ROM (docs/cluster.md, "The routing table"; the walk is
// assembly/board/config_rom.ts) into the routing table (routing_table.ts). Little-endian, in this order:
//   ClusterBegin   0x40  |0 format u16|2 flags u16 (bit 0: redirect)|4 version u32|8 this board's id u16|10 - u16|12 - u32|
//   ClusterBoard   0x41  |0 id u16|2 - u16|4 the board's name (1..31 bytes)|               one per board, in table order
//   ClusterPortal  0x42  |0 board id u16|2 - u16|4 "address:port"|                          after its board's record
//   ClusterVolume  0x43  |0 volume u32|4 pageBlocks u32|8 pageCount u32|12 owners u8 (ClusterOwners)|13 - u8|
//                        |14 round robin's first board id u16 (0 for explicit owners)|
//   ClusterOwners  0x44  |0 volume u32|4 first page u32|8 board id u16 per page, up to 124|   explicit owners, in page order
//   ClusterEnd     0x4f  empty: the table is complete
// The numbers are the host's too (host/bus/cluster_rom.ts; test/unit/cluster/shared_constants.test.ts compares them).
// A ROM without cluster records leaves the board a single board. Anything inconsistent (an unknown board id, a
// record out of order, a page without an owner, no ClusterEnd, this board not among the boards) drops the whole table,
// with one console line naming the record: a board must never serve from a routing table it only half read.
import { ConfigRomReader } from "../board/config_rom";
import { line } from "../kernel/console";
import {
  CLUSTER_FORMAT, CLUSTER_NONE, ClusterOwners, RoutingTable, routingTable, routingTableActivate, routingTablesReserve, routingTableStage,
} from "./routing_table";

export enum ClusterRecord {
  Begin = 0x40,
  Board = 0x41,
  Portal = 0x42,
  Volume = 0x43,
  Owners = 0x44,
  End = 0x4f,
}

export const CLUSTER_BEGIN_BYTES: u32 = 16;
export const CLUSTER_VOLUME_BYTES: u32 = 16;
export const CLUSTER_FLAG_REDIRECT: u32 = 1; // ClusterBegin flags bit 0
export const CLUSTER_OWNERS_PER_RECORD_MAX: u32 = 124; // (256 - 8) / 2

/** Boot: loads the ROM's cluster records into the active routing table. True when this board is in a cluster. */
export function clusterConfigure(romBase: u64): bool {
  const probe = new ConfigRomReader(romBase, "cluster");
  if (!probe.present || !hasClusterRecords(probe)) return false;
  const rom = new ConfigRomReader(romBase, "cluster");
  routingTablesReserve();
  const t = routingTableStage();
  let thisId: u32 = 0;
  let begun = false;
  let ended = false;
  let refused = false;
  while (rom.next() && !refused && !ended) {
    const type = rom.type;
    if (type < <u32>ClusterRecord.Begin || type > <u32>ClusterRecord.End) continue; // another reader's record
    const value = rom.value;
    const length = rom.lengthBytes;
    if (!begun && type != <u32>ClusterRecord.Begin) { refused = refuse("a record before ClusterBegin", type); break; }
    switch (<i32>type) {
      case ClusterRecord.Begin: {
        if (begun || length != CLUSTER_BEGIN_BYTES) { refused = refuse("a second or malformed ClusterBegin", type); break; }
        const format = <u32>load<u16>(value);
        if (format != CLUSTER_FORMAT) {
          line().s("cluster: routing table format ").u32(format).s(" is not this firmware's ").u32(CLUSTER_FORMAT)
            .s("; the cluster section is ignored and the board runs alone").err();
          return false;
        }
        t.format = format;
        t.redirect = (<u32>load<u16>(value, 2) & CLUSTER_FLAG_REDIRECT) != 0;
        t.version = load<u32>(value, 4);
        thisId = <u32>load<u16>(value, 8);
        begun = true;
        if (t.version == 0) refused = refuse("version 0", type);
        break;
      }
      case ClusterRecord.Board: {
        if (length < 5 || t.volumeCount > 0 || t.boardAdd(<u32>load<u16>(value), value + 4, length - 4) == CLUSTER_NONE) refused = refuse("a bad, duplicate or late ClusterBoard", type);
        break;
      }
      case ClusterRecord.Portal: {
        const b = length < 5 ? CLUSTER_NONE : t.boardIndexOfId(<u32>load<u16>(value));
        if (b == CLUSTER_NONE || !t.portalAdd(b, value + 4, length - 4)) refused = refuse("a ClusterPortal of no board, or too many", type);
        break;
      }
      case ClusterRecord.Volume: refused = !volume(t, value, length); break;
      case ClusterRecord.Owners: refused = !owners(t, value, length); break;
      case ClusterRecord.End: ended = true; break;
      default: refused = refuse("an unknown cluster record", type); break;
    }
  }
  if (!begun) return false; // no cluster records: a single board
  if (!refused && !ended) refused = refuse("no ClusterEnd", 0);
  if (refused) return false;
  t.thisBoard = t.boardIndexOfId(thisId);
  t.present = true;
  if (!t.complete()) {
    t.present = false;
    refuse("this board not among the boards, or a page without an owner", <u32>ClusterRecord.End);
    return false;
  }
  const activated = routingTableActivate(t.version);
  assert(activated, "clusterConfigure: the boot table activates");
  const a = routingTable();
  line().s("cluster: routing table version ").u32(a.version).s(", ").u32(a.boardCount).s(" boards, ")
    .u32(a.volumeCount).s(" partitioned volumes").out();
  return true;
}

// A first walk: does the ROM have any cluster record? (A single board carves nothing for the table.)
function hasClusterRecords(rom: ConfigRomReader): bool {
  while (rom.next()) if (rom.type >= <u32>ClusterRecord.Begin && rom.type <= <u32>ClusterRecord.End) return true;
  return false;
}

function volume(t: RoutingTable, value: usize, length: u32): bool {
  if (length != CLUSTER_VOLUME_BYTES || t.boardCount == 0) return bad("a malformed or early ClusterVolume", <u32>ClusterRecord.Volume);
  const v = t.volumeAdd(load<u32>(value), load<u32>(value, 4), load<u32>(value, 8));
  if (v == CLUSTER_NONE) return bad("a ClusterVolume out of range or repeated", <u32>ClusterRecord.Volume);
  const mode = <u32>load<u8>(value, 12);
  if (mode == <u32>ClusterOwners.RoundRobin) {
    const start = t.boardIndexOfId(<u32>load<u16>(value, 14));
    if (start == CLUSTER_NONE) return bad("a round robin from no board", <u32>ClusterRecord.Volume);
    t.ownersRoundRobin(v, start);
  } else if (mode != <u32>ClusterOwners.Explicit) return bad("an unknown owners mode", <u32>ClusterRecord.Volume);
  return true;
}

function owners(t: RoutingTable, value: usize, length: u32): bool {
  const v = length < 10 || (length & 1) != 0 ? CLUSTER_NONE : t.volumeSlot(load<u32>(value));
  if (v == CLUSTER_NONE) return bad("ClusterOwners of no volume, or malformed", <u32>ClusterRecord.Owners);
  const first = load<u32>(value, 4);
  const count = (length - 8) / 2;
  if (count > CLUSTER_OWNERS_PER_RECORD_MAX || <u64>first + <u64>count > <u64>t.pageCount(v)) return bad("ClusterOwners past the last page", <u32>ClusterRecord.Owners);
  for (let i: u32 = 0; i < count; i++) {
    const b = t.boardIndexOfId(<u32>load<u16>(value + 8 + <usize>i * 2));
    if (b == CLUSTER_NONE) return bad("a page owned by no board of the table", <u32>ClusterRecord.Owners);
    t.ownerSet(v, first + i, b);
  }
  return true;
}

// One console line naming the record and what is wrong with it; true (the table is refused).
function refuse(what: string, type: u32): bool {
  line().s("cluster: configuration ROM refused at record ").hex(<u64>type, 2).s(": ").s(what)
    .s("; the board runs alone").err();
  return true;
}

// refuse() for the record helpers, which answer whether the record was good: false.
function bad(what: string, type: u32): bool {
  refuse(what, type);
  return false;
}
