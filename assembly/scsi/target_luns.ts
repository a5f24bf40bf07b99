// The logical units each target port presents (its transport's LUN map), for REPORT LUNS: the transport tells the
// SCSI target once it serves (ScsiTargetLuns). A port it never told about (the test build's probes) presents every
// volume as LUN n = volume n.
import { carve } from "../kernel/carve";

export const TARGET_PORTS_MAX: u32 = 16;
export const TARGET_PORT_LUNS_MAX: u32 = 16;
const UNKNOWN: u32 = 0xffff_ffff;
// Port: |0 count u32 (UNKNOWN: never told)|4 lun[TARGET_PORT_LUNS_MAX] u16|
const PORT_BYTES: u32 = 4 + TARGET_PORT_LUNS_MAX * 2;

let ports: usize = 0;

export function targetLunsInit(): void {
  ports = carve(TARGET_PORTS_MAX * PORT_BYTES, 4);
  for (let p: u32 = 0; p < TARGET_PORTS_MAX; p++) store<u32>(ports + <usize>p * PORT_BYTES, UNKNOWN);
}

/** Port `port` presents the `count` LUN numbers (u32 each) at `luns`, in order. Ports out of range are ignored. */
export function targetLunsSet(port: u32, count: u32, luns: usize): void {
  if (port >= TARGET_PORTS_MAX) return;
  const at = ports + <usize>port * PORT_BYTES;
  const n = min(count, TARGET_PORT_LUNS_MAX);
  store<u32>(at, n);
  for (let i: u32 = 0; i < n; i++) store<u16>(at + 4 + i * 2, <u16>load<u32>(luns + <usize>i * 4));
}

/** How many LUNs `port` presents, or -1 (as u32) when its transport never said. */
export function targetLunsCount(port: u32): u32 {
  return port < TARGET_PORTS_MAX ? load<u32>(ports + <usize>port * PORT_BYTES) : UNKNOWN;
}

export function targetLunsKnown(port: u32): bool { return targetLunsCount(port) != UNKNOWN; }

export function targetLunAt(port: u32, i: u32): u32 {
  assert(port < TARGET_PORTS_MAX && i < targetLunsCount(port), "target LUN out of range");
  return load<u16>(ports + <usize>port * PORT_BYTES + 4 + i * 2);
}
