// The portals this board names to initiators (RFC 7143, TargetAddress: "domainname[:port][,portal-group-tag]"): on a
// single board its own portal with portal group tag 1; on a board of a cluster, for a target that presents a
// partitioned volume, every board's portals in the routing table's order, each with its board's id as the portal
// group tag (docs/cluster.md, "Names on the wire"). Every board of a cluster so gives the same SendTargets answer for
// such a target, and a login redirect names a portal the same way. A target of ordinary volumes only lives on this
// board (another board's volumes of the same number are other data): its addresses are this board's portals.
//
// On a board of a cluster each of its portals (NIC ports) is a portal group of its own, so that an initiator's
// connections through two NIC ports are two SCSI target ports (RFC 7143, SCSI Port Names: the target name and the
// portal group tag), told apart by their relative target port identifiers (scsi/target_port.ts): the tag of board
// id's NIC port n is id + n × PORTAL_GROUP_TAG_NIC_PORT_STRIDE, the first keeping the board id.
import { CLUSTER_BOARD_ID_MAX, CLUSTER_NONE, CLUSTER_PORTALS_PER_BOARD_MAX, routingTable } from "../../cluster/routing_table";
import { SCSI_LUN_WRITE_PROTECTED } from "../../scsi/interface";
import { targetPortNicPortsMax } from "../../scsi/target_port";
import { TargetConfig, targetConfigCount } from "./config";
import { TextWriter } from "./keys";

export const PORTAL_GROUP_TAG_SINGLE: u32 = 1; // a single board's one portal group
export const PORTAL_GROUP_TAG_NIC_PORT_STRIDE: u32 = CLUSTER_BOARD_ID_MAX + 1;
// RFC 7143, TargetPortalGroupTag: 16 bits.
if ((CLUSTER_PORTALS_PER_BOARD_MAX - 1) * PORTAL_GROUP_TAG_NIC_PORT_STRIDE + CLUSTER_BOARD_ID_MAX > 0xffff) ERROR("portal group tags fit 16 bits");

/** The portal group tag of board `b`'s (a routing table index) NIC port `nicPort`, on a board of a cluster. */
export function portalGroupTagOf(b: u32, nicPort: u32): u32 {
  return routingTable().boardId(b) + nicPort * PORTAL_GROUP_TAG_NIC_PORT_STRIDE;
}

/** The portal group tag of this board's NIC port `nicPort`: portalGroupTagOf in a cluster, else PORTAL_GROUP_TAG_SINGLE. */
export function portalGroupTag(nicPort: u32): u32 {
  const table = routingTable();
  return table.present ? portalGroupTagOf(table.thisBoard, nicPort) : PORTAL_GROUP_TAG_SINGLE;
}

/** How many of this board's NIC ports are portal groups with target ports of their own: 1 on a single board. */
export function nicPortCount(): u32 {
  const table = routingTable();
  if (!table.present) return 1;
  return min(table.portalCount(table.thisBoard), targetPortNicPortsMax(targetConfigCount()));
}

/**
 * The NIC port (0-based) of a connection that came in on the NIC's iSCSI portal `portal`: the portal itself on a
 * board of a cluster (the NIC's iSCSI portals are this board's portals of the routing table, in order), 0 on a
 * single board (one portal group) and for a portal past nicPortCount (a board file the host refuses).
 */
export function nicPortOf(portal: u32): u32 {
  return portal < nicPortCount() ? portal : 0;
}

/** Does target `t` present a partitioned volume of the routing table (so every board of the cluster presents it)? */
export function targetSpansCluster(t: TargetConfig): bool {
  const table = routingTable();
  if (!table.present) return false;
  for (let i: u32 = 0; i < t.lunCount; i++) {
    if (table.volumeSlot(unchecked(t.volumes[i]) & ~SCSI_LUN_WRITE_PROTECTED) != CLUSTER_NONE) return true;
  }
  return false;
}

/**
 * How many TargetAddress values target `t` has: every board's portals for a target spanning the cluster, this
 * board's portals for another target of a board of a cluster, else the one local portal.
 */
export function portalAddressCount(t: TargetConfig): u32 {
  const table = routingTable();
  if (!table.present) return 1;
  if (!targetSpansCluster(t)) return table.portalCount(table.thisBoard);
  let count: u32 = 0;
  for (let b: u32 = 0; b < table.boardCount; b++) count += table.portalCount(b);
  return count;
}

/**
 * Appends "TargetAddress=<address:port>,<tag>" and its NUL for address `k` (< portalAddressCount(t)) of target `t`.
 * `local` is the single board's "address:port,1" text (`localBytes`), used when the board is not in a cluster.
 */
export function portalAddressWrite(out: TextWriter, t: TargetConfig, k: u32, local: usize, localBytes: u32): void {
  const table = routingTable();
  if (!table.present) {
    assert(k == 0, "portalAddressWrite: a single board has one address");
    out.s("TargetAddress=").bytes(local, localBytes).end();
    return;
  }
  if (!targetSpansCluster(t)) {
    portalWrite(out, table.thisBoard, k);
    return;
  }
  let left = k;
  for (let b: u32 = 0; b < table.boardCount; b++) {
    const count = table.portalCount(b);
    if (left < count) {
      portalWrite(out, b, left);
      return;
    }
    left -= count;
  }
  assert(false, "portalAddressWrite: address index out of range");
}

/** Appends "TargetAddress=<address:port>,<tag>" and its NUL for portal `p` of board `b` of the routing table. */
export function portalWrite(out: TextWriter, b: u32, p: u32): void {
  const table = routingTable();
  out.s("TargetAddress=").bytes(table.portal(b, p), table.portalLength(b, p)).s(",").u64(<u64>portalGroupTagOf(b, p)).end();
}
