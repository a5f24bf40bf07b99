// How the SCSI target ports of a board are numbered (docs/cluster.md, "Names on the wire"). A target port is what an
// I_T nexus goes through (SAM-5); for iSCSI it is the target's name with a portal group tag (RFC 7143, SCSI Port
// Names). On a single board every target has one portal group, so target port p is the target's index + 1. On a
// board of a cluster each NIC port (each of the board's iSCSI portals, in the routing table's order) is a portal group
// of its own, so that the connections of one multipath disk through different NIC ports are different paths with
// different relative target port identifiers: the port of target t (0-based index) through NIC port n is
// n × (the board's target count) + t + 1, the first NIC port's ports keeping the single board's numbers. Every board
// of a cluster presents the same targets in the same order, so another board's ports are numbered alike, up to its
// own count of NIC ports. Local ports are 1..TARGET_PORT_LOCAL_MAX (4 bits of the relative target port identifier,
// scsi/alua.ts); the cluster file's check refuses a board whose targets × portals would not fit.
export const TARGET_PORT_LOCAL_MAX: u32 = 15;
export const TARGET_PORT_NONE: u32 = 0; // SPC-4: relative target port identifier 0 is reserved

/**
 * The local target port of target `target` (0-based) through NIC port `nicPort` (0-based) on a board presenting
 * `targetCount` targets, or TARGET_PORT_NONE when it would not fit 4 bits (a board file the host refuses).
 */
export function targetPortOf(nicPort: u32, target: u32, targetCount: u32): u32 {
  assert(target < targetCount, "targetPortOf: target index");
  const port = <u64>nicPort * <u64>targetCount + <u64>target + 1;
  return port <= <u64>TARGET_PORT_LOCAL_MAX ? <u32>port : TARGET_PORT_NONE;
}

/** How many NIC ports of a board presenting `targetCount` targets have target ports that fit (at least 1). */
export function targetPortNicPortsMax(targetCount: u32): u32 {
  return targetCount == 0 ? 1 : max<u32>(1, TARGET_PORT_LOCAL_MAX / targetCount);
}
