// The logical units each target port presents (its transport's LUN map), for REPORT LUNS and for where REGISTER AND
// MOVE may move a reservation: the transport tells the SCSI target once it serves (ScsiTargetLuns). A port it never
// told about (the test build's probes) presents every volume as LUN n = volume n. Each port also says which NIC port
// it is reached through and how many targets the board presents (target_port.ts), so that ALUA can name the ports of
// every NIC port of every board (alua.ts).
import { carve } from "../kernel/carve";
import { SCSI_LUN_WRITE_PROTECTED } from "./interface";

export const TARGET_PORTS_MAX: u32 = 16;
export const TARGET_PORT_LUNS_MAX: u32 = 16;
const UNKNOWN: u32 = 0xffff_ffff;
// Port: |0 count u32 (UNKNOWN: never told)|4 lun[TARGET_PORT_LUNS_MAX] u16|4 + 2 × LUNS volume[TARGET_PORT_LUNS_MAX] u16|
// A volume entry has VOLUME_READ_ONLY set when its LUN is read-only (the board file's readOnly). Read and written
// only through the port accessors below.
const AT_COUNT: usize = 0;
const AT_LUNS: usize = 4;
const AT_VOLUMES: usize = AT_LUNS + TARGET_PORT_LUNS_MAX * 2;
const PORT_BYTES: u32 = AT_VOLUMES + TARGET_PORT_LUNS_MAX * 2;
@inline function portCount(at: usize): u32 { return load<u32>(at, AT_COUNT); }
@inline function portLun(at: usize, i: u32): u32 { return <u32>load<u16>(at + AT_LUNS + <usize>i * 2); }
@inline function portVolume(at: usize, i: u32): u32 { return <u32>load<u16>(at + AT_VOLUMES + <usize>i * 2); }
@inline function portSetCount(at: usize, count: u32): void { store<u32>(at, count, AT_COUNT); }
@inline function portSetLun(at: usize, i: u32, lun: u32): void { store<u16>(at + AT_LUNS + <usize>i * 2, <u16>lun); }
@inline function portSetVolume(at: usize, i: u32, volume: u32): void { store<u16>(at + AT_VOLUMES + <usize>i * 2, <u16>volume); }
const VOLUME_READ_ONLY: u16 = 0x8000;
const VOLUME_MASK: u32 = 0x7fff;
let anyKnown = false; // a transport told about some port: ports it did not name do not exist

let targetCount: u32 = 0; // the targets the transport presents: ports per NIC port (0: never told)

let ports: usize = 0;
let nicPorts: usize = 0; // u32 per port: the NIC port (0-based) it is reached through

@inline function portAt(port: u32): usize { return ports + <usize>port * PORT_BYTES; }
@inline function nicPortAt(port: u32): usize { return nicPorts + <usize>port * 4; }

export function targetLunsInit(): void {
  ports = carve(TARGET_PORTS_MAX * PORT_BYTES, 4);
  nicPorts = carve(TARGET_PORTS_MAX * 4, 4);
  for (let p: u32 = 0; p < TARGET_PORTS_MAX; p++) portSetCount(portAt(p), UNKNOWN);
}

/**
 * Port `port`, reached through NIC port `nicPort` on a board presenting `targets` targets, presents the `count` LUN
 * numbers (u32 each) at `luns`, in order, mapping the volumes at `volumes` (u32 each, SCSI_LUN_WRITE_PROTECTED set
 * for a read-only LUN). Ports out of range are ignored.
 */
export function targetLunsSet(port: u32, count: u32, luns: usize, volumes: usize, nicPort: u32, targets: u32): void {
  if (port >= TARGET_PORTS_MAX) return;
  store<u32>(nicPortAt(port), nicPort);
  targetCount = targets;
  const at = portAt(port);
  const n = min(count, TARGET_PORT_LUNS_MAX);
  portSetCount(at, n);
  for (let i: u32 = 0; i < n; i++) {
    portSetLun(at, i, load<u32>(luns + <usize>i * 4));
    const volume = load<u32>(volumes + <usize>i * 4);
    const readOnly = (volume & SCSI_LUN_WRITE_PROTECTED) != 0 ? VOLUME_READ_ONLY : 0;
    portSetVolume(at, i, <u16>min(volume & ~SCSI_LUN_WRITE_PROTECTED, VOLUME_MASK) | readOnly);
  }
  anyKnown = true;
}

/**
 * True when target port `port` (its relative target port identifier) exists and presents volume `volume` through
 * one of its LUNs. Without a transport's map (the test build's probes), every port from 1 presents every volume.
 */
export function targetPortPresents(port: u32, volume: u32): bool {
  if (port == 0) return false; // SPC-4: relative target port identifier 0 is reserved
  if (!anyKnown) return true;
  const count = targetLunsCount(port);
  if (count == UNKNOWN) return false;
  const at = portAt(port);
  for (let i: u32 = 0; i < count; i++) if ((portVolume(at, i) & VOLUME_MASK) == volume) return true;
  return false;
}

/**
 * True when target port `port` presents volume `volume` through a LUN that is not read-only: an initiator there may
 * write it (EXTENDED COPY's destination goes through this, not only through the unit the command came to). Without
 * a transport's map (the test build's probes), every port from 1 presents every volume writable.
 */
export function targetPortWritable(port: u32, volume: u32): bool {
  if (!anyKnown) return true;
  if (port == 0) return false;
  const count = targetLunsCount(port);
  if (count == UNKNOWN) return false;
  const at = portAt(port);
  for (let i: u32 = 0; i < count; i++) if (portVolume(at, i) == volume) return true; // VOLUME_READ_ONLY clear
  return false;
}

/** How many LUNs `port` presents, or -1 (as u32) when its transport never said. */
export function targetLunsCount(port: u32): u32 {
  return port < TARGET_PORTS_MAX ? portCount(portAt(port)) : UNKNOWN;
}

export function targetLunsKnown(port: u32): bool { return targetLunsCount(port) != UNKNOWN; }

export function targetLunAt(port: u32, i: u32): u32 {
  assert(port < TARGET_PORTS_MAX && i < targetLunsCount(port), "target LUN out of range");
  return portLun(portAt(port), i);
}

/** The NIC port (0-based) port `port` is reached through; 0 for a port the transport never told about. */
export function targetPortNicPort(port: u32): u32 {
  return port < TARGET_PORTS_MAX && targetLunsKnown(port) ? load<u32>(nicPortAt(port)) : 0;
}

/** How many targets the transport presents (the ports of one NIC port); 0 when it never told. */
export function targetPortsPerNicPort(): u32 { return targetCount; }

// ScsiTargetLuns' e: |0-31 NIC port|32-63 the board's target count|.
export function targetLunsMsgE(nicPort: u32, targets: u32): u64 { return (<u64>targets << 32) | <u64>nicPort; }
/** ScsiTargetLuns: the NIC port its target port is reached through. */
export function targetLunsMsgNicPort(e: u64): u32 { return <u32>(e & 0xffff_ffff); }
/** ScsiTargetLuns: how many targets the board presents. */
export function targetLunsMsgTargetCount(e: u64): u32 { return <u32>(e >> 32); }
