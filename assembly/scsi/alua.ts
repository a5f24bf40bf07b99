// Where a logical unit's data lives, told the standard way on a board of a cluster (docs/cluster.md, "ALUA and
// referrals"): ALUA target port groups (SPC-4, Asymmetric logical unit access; REPORT TARGET PORT GROUPS) and SBC-3
// referrals (REPORT REFERRALS, the Referrals VPD page), read from the active routing table (cluster/routing_table.ts).
// A multipath initiator can so send each request to the board that owns its page; any other board serves it too, by
// proxy, so every board's port group is active for every page, optimized only on the owner.
//
// Names (docs/cluster.md, "Names on the wire"): a board's target port group is its id; the relative target port
// identifier of local target port p (one per target and NIC port, target_port.ts) on board id is (id << 4) | p.
// Every board of a cluster presents the same targets in the same order, so another board's ports are named alike,
// for as many NIC ports as the routing table gives it portals. A board's ports of all its NIC ports are one target
// port group: they reach the same board, so they share its access state for every block.
// A single board has no routing table: no ALUA (TPGS 00b in INQUIRY), and these commands are not in its command table
// (cdb.ts, commandFind): they are refused as before.
//
// A partitioned volume's port groups are all in the LBA dependent state (SPC-4, 4h): the state of a group depends on
// the block, and REPORT REFERRALS tells it per user data segment (a page of the routing table). An ordinary volume of
// a board of a cluster lives on that board alone: one group, this board's, active/optimized.
import { CLUSTER_NONE, routingTable } from "../cluster/routing_table";
import { volumeAt } from "../volumes/volume";
import { putBe16, putBe32, putBe64 } from "./cdb";
import { DATA_IN_BYTES_MAX } from "./limits";
import { TARGET_PORTS_MAX, targetLunsKnown, targetPortNicPort, targetPortPresents, targetPortsPerNicPort } from "./target_luns";
import { TARGET_PORT_LOCAL_MAX, targetPortNicPortsMax } from "./target_port";

export const ALUA_PORT_BITS: u32 = 4; // (board id << 4) | the target's port: 4095 boards × 15 ports in 16 bits
export const ALUA_STATE_ACTIVE_OPTIMIZED: u32 = 0x0;
export const ALUA_STATE_ACTIVE_NON_OPTIMIZED: u32 = 0x1;
export const ALUA_STATE_LBA_DEPENDENT: u32 = 0x4;
// SPC-4, target port group descriptor byte 1: LBD_SUP (4), AN_SUP (1), AO_SUP (0): the states these groups take.
const SUPPORTED_LBA_DEPENDENT: u32 = 0x10 | 0x02 | 0x01;
const SUPPORTED_ACTIVE: u32 = 0x02 | 0x01;
const TPG_DESCRIPTOR_BYTES: u32 = 8;
const PORT_DESCRIPTOR_BYTES: u32 = 4;
const REFERRAL_DESCRIPTOR_BYTES: u32 = 20; // before its target port group descriptors (4 bytes each)
const REFERRALS_LIST_BYTES_MAX: u32 = 0xffff; // USER DATA SEGMENT REFERRAL DESCRIPTOR LENGTH is 16 bits
export const REFERRALS_FAILED: u32 = 0xffff_ffff; // REPORT REFERRALS' LBA is past the last block

/** Is this board in a cluster (ALUA and referrals reported)? */
export function aluaOn(): bool { return routingTable().present; }

/**
 * The relative target port identifier of local target port `port` (1-based) on the wire. Ports from 16 up are not
 * iSCSI target ports (NBD's nexus goes through 100h) and keep their number.
 */
export function relativeTargetPort(port: u32): u32 {
  const table = routingTable();
  if (!table.present || port >= (1 << ALUA_PORT_BITS)) return port;
  return (table.boardId(table.thisBoard) << ALUA_PORT_BITS) | port;
}

/**
 * The local target port (1-based) a relative target port identifier from the wire names on this board, or 0 (the
 * reserved identifier: no port here) for another board's port or an identifier out of range.
 */
export function localTargetPort(relative: u32): u32 {
  const table = routingTable();
  if (!table.present) return relative;
  if (relative >> ALUA_PORT_BITS != table.boardId(table.thisBoard)) return 0;
  return relative & ((1 << ALUA_PORT_BITS) - 1);
}

/** This board's target port group (its board id); only on a board of a cluster. */
export function targetPortGroup(): u32 {
  const table = routingTable();
  assert(table.present, "targetPortGroup: a board of a cluster");
  return table.boardId(table.thisBoard);
}

/** The routing table's slot of `volume` when it is partitioned (referrals supported), else CLUSTER_NONE. */
export function referralsSlot(volume: u32): u32 {
  const table = routingTable();
  return table.present ? table.volumeSlot(volume) : CLUSTER_NONE;
}

// The ports of board `b` (an index of the routing table) presenting `volume`: for each of its NIC ports (its portals
// in the table), the ports of the targets presenting the volume there, numbered as this board numbers its own
// (target_port.ts): this board's ports of its first NIC port whose LUN map names the volume, q, and q + n × (the
// targets) through NIC port n. When the transport told none (the test build's probes), the nexus's own `port`.
// Writes each port's local number; answers the count.
function portsOf(b: u32, volume: u32, port: u32, out: StaticArray<u32>): u32 {
  const targets = targetPortsPerNicPort();
  const nicPorts: u32 = targets == 0 ? 1 : min<u32>(routingTable().portalCount(b), targetPortNicPortsMax(targets));
  let count: u32 = 0;
  for (let n: u32 = 0; n < nicPorts; n++) {
    for (let q: u32 = 1; q < TARGET_PORTS_MAX && count < <u32>out.length; q++) {
      if (!targetLunsKnown(q) || targetPortNicPort(q) != 0 || !targetPortPresents(q, volume)) continue;
      const local = q + n * targets;
      if (local <= TARGET_PORT_LOCAL_MAX) { unchecked(out[count] = local); count += 1; }
    }
  }
  if (count == 0) { unchecked(out[0] = port); count = 1; }
  return count;
}
const ports = new StaticArray<u32>(TARGET_PORTS_MAX);

/**
 * SPC-4, REPORT TARGET PORT GROUPS parameter data for `volume` through local port `port`: |0-3 RETURN DATA LENGTH|,
 * with `extended` |4 FORMAT TYPE 001b|5 IMPLICIT TRANSITION TIME|6-7 -|, then one descriptor per group:
 * |0 PREF,ASYMMETRIC ACCESS STATE|1 T_SUP,O_SUP,-,LBD_SUP,U_SUP,S_SUP,AN_SUP,AO_SUP|2-3 TARGET PORT GROUP|4 -|5 STATUS
 * CODE|6 -|7 TARGET PORT COUNT| and |0-1 -|2-3 RELATIVE TARGET PORT IDENTIFIER| per port. Its length; the groups that
 * do not fit DATA_IN_BYTES_MAX are counted in RETURN DATA LENGTH but left out (the initiator asks with more room).
 */
export function reportTargetPortGroups(at: usize, volume: u32, port: u32, extended: bool): u32 {
  const table = routingTable();
  assert(table.present, "reportTargetPortGroups: a board of a cluster");
  const header: u32 = extended ? 8 : 4;
  memory.fill(at, 0, header);
  if (extended) store<u8>(at + 4, 0x10); // FORMAT TYPE 001b; IMPLICIT TRANSITION TIME 0: transitions are immediate
  const partitioned = table.volumeSlot(volume) != CLUSTER_NONE;
  let length = header;
  let total: u32 = 0;
  for (let b: u32 = 0; b < table.boardCount; b++) {
    if (!partitioned && b != table.thisBoard) continue; // an ordinary volume is on this board only
    const portCount = portsOf(b, volume, port, ports);
    const bytes = TPG_DESCRIPTOR_BYTES + portCount * PORT_DESCRIPTOR_BYTES;
    total += bytes;
    if (length + bytes > DATA_IN_BYTES_MAX) continue;
    const d = at + length;
    memory.fill(d, 0, bytes);
    store<u8>(d, <u8>(partitioned ? ALUA_STATE_LBA_DEPENDENT : ALUA_STATE_ACTIVE_OPTIMIZED));
    store<u8>(d + 1, <u8>(partitioned ? SUPPORTED_LBA_DEPENDENT : SUPPORTED_ACTIVE));
    const id = table.boardId(b);
    putBe16(d + 2, id);
    store<u8>(d + 7, <u8>portCount);
    for (let i: u32 = 0; i < portCount; i++) putBe16(d + TPG_DESCRIPTOR_BYTES + i * PORT_DESCRIPTOR_BYTES + 2, (id << ALUA_PORT_BITS) | unchecked(ports[i]));
    length += bytes;
  }
  putBe32(at, total + header - 4);
  return length;
}

/**
 * SBC-3, REPORT REFERRALS parameter data for `volume` from the user data segment holding `lba` (one page of the
 * routing table: every segment is a page, the last one running to the last block), only that one with `oneSegment`:
 * |0-1 -|2-3 USER DATA SEGMENT REFERRAL DESCRIPTOR LENGTH| then per segment |0-2 -|3 NUMBER OF TARGET PORT GROUP
 * DESCRIPTORS|4-11 FIRST USER DATA SEGMENT LBA|12-19 LAST USER DATA SEGMENT LBA| and per board |0 ASYMMETRIC ACCESS
 * STATE|1 -|2-3 TARGET PORT GROUP|: the owner active/optimized, every other board active/non-optimized. As many
 * segments as fit DATA_IN_BYTES_MAX (and the 16-bit length); the initiator asks again from the next LBA. An ordinary
 * volume is one segment, this board's. REFERRALS_FAILED when `lba` is past the last block.
 */
export function reportReferrals(at: usize, volume: u32, lba: u64, oneSegment: bool): u32 {
  const table = routingTable();
  assert(table.present, "reportReferrals: a board of a cluster");
  const blocks = volumeAt(volume).blockCount;
  if (lba >= blocks) return REFERRALS_FAILED;
  const slot = table.volumeSlot(volume);
  memory.fill(at, 0, 4);
  let length: u32 = 4;
  if (slot == CLUSTER_NONE) {
    length += referral(at + length, 0, blocks - 1, table.thisBoard, true);
    putBe16(at + 2, length - 4);
    return length;
  }
  const pageBlocks = <u64>table.pageBlocks(slot);
  const last = table.pageCount(slot) - 1;
  const descriptorBytes = REFERRAL_DESCRIPTOR_BYTES + table.boardCount * 4;
  const room = min(DATA_IN_BYTES_MAX, REFERRALS_LIST_BYTES_MAX + 4);
  let page = <u32>min(lba / pageBlocks, <u64>last);
  for (; page <= last && length + descriptorBytes <= room; page++) {
    const first = <u64>page * pageBlocks;
    const end = page == last ? blocks - 1 : min(first + pageBlocks, blocks) - 1;
    length += referral(at + length, first, end, table.owner(slot, page), false);
    if (oneSegment || end == blocks - 1) break;
  }
  putBe16(at + 2, length - 4);
  return length;
}

// One user data segment referral descriptor, [first, last], `owner` (a board index) active/optimized; with `alone`
// only the owner's group is listed. Its length.
function referral(d: usize, first: u64, last: u64, owner: u32, alone: bool): u32 {
  const table = routingTable();
  const count = alone ? 1 : table.boardCount;
  memory.fill(d, 0, REFERRAL_DESCRIPTOR_BYTES + count * 4);
  store<u8>(d + 3, <u8>count);
  putBe64(d + 4, first);
  putBe64(d + 12, last);
  let g = d + REFERRAL_DESCRIPTOR_BYTES;
  for (let b: u32 = 0; b < table.boardCount; b++) {
    if (alone && b != owner) continue;
    store<u8>(g, <u8>(b == owner ? ALUA_STATE_ACTIVE_OPTIMIZED : ALUA_STATE_ACTIVE_NON_OPTIMIZED));
    putBe16(g + 2, table.boardId(b));
    g += 4;
  }
  return REFERRAL_DESCRIPTOR_BYTES + count * 4;
}

/**
 * SBC-3, Referrals VPD page (B3h) after its header: |0-3 -|4-7 USER DATA SEGMENT SIZE|8-11 USER DATA SEGMENT
 * MULTIPLIER|: a segment is a page of `pageBlocks`; multiplier 0: the segments are listed one by one, not a
 * repeating pattern. Its length (12).
 */
export function referralsPage(at: usize, slot: u32): u32 {
  memory.fill(at, 0, 12);
  putBe32(at + 4, routingTable().pageBlocks(slot));
  return 12;
}

/**
 * SPC-4, Extended INQUIRY Data VPD page (86h) after its header, 60 bytes: only R_SUP (byte 4 here, byte 8 of the
 * page, bit 4) is claimed, for a volume with referrals: no protection information, no task attribute or cache
 * claims beyond what the standard INQUIRY data says. Its length.
 */
export function extendedInquiryPage(at: usize, referrals: bool): u32 {
  memory.fill(at, 0, 0x3c);
  if (referrals) store<u8>(at + 4, 0x10); // R_SUP
  return 0x3c;
}
