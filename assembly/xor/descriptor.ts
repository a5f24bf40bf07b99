// The XOR engine's descriptor (docs/hardware.md, "xor-engine"), 96 bytes, 32-aligned, in this processor's RAM.
// Little-endian, as the engine reads it over the bus:
// |0 next u64 (0 ends)|8 destination u64|16 byteCount u32|20 control u32|24 sourceCount u32|28 status u32|
// |32 source[0] u64| … |88 source[7] u64|
// The engine writes only the status word; everything else is the driver's, rewritten whole before each submission.

export const XOR_DESC_BYTES: u32 = 96;
export const XOR_DESC_ALIGN_BYTES: u32 = 32;
export const XOR_SOURCES_MAX: u32 = 8;
export const XOR_BYTE_COUNT_MAX: u32 = 1 << 20;
export const XOR_ADDRESS_ALIGN_BYTES: u32 = 8;

export const XOR_CONTROL_XOR: u32 = 1 << 0; // write the XOR of the sources to the destination
export const XOR_CONTROL_ZERO_CHECK: u32 = 1 << 1; // report in the status whether that XOR is all zeros
export const XOR_CONTROL_INTERRUPT: u32 = 1 << 2; // the cause's descriptor-done bit when this one completes
export const XOR_DESC_STATUS_DONE: u32 = 1 << 0;
export const XOR_DESC_STATUS_ZERO: u32 = 1 << 1; // the result was all zeros (only with ZERO_CHECK)
export const XOR_DESC_STATUS_ERROR: u32 = 1 << 2; // bits 8-15: the error code
export const XOR_DESC_STATUS_CODE_SHIFT: u32 = 8;

@inline export function xorDescNext(desc: usize): u64 { return load<u64>(desc, 0); }
@inline export function xorDescSetNext(desc: usize, next: u64): void { store<u64>(desc, next, 0); }
@inline export function xorDescDestination(desc: usize): u64 { return load<u64>(desc, 8); }
@inline export function xorDescSetDestination(desc: usize, address: u64): void { store<u64>(desc, address, 8); }
@inline export function xorDescByteCount(desc: usize): u32 { return load<u32>(desc, 16); }
@inline export function xorDescSetByteCount(desc: usize, byteCount: u32): void { store<u32>(desc, byteCount, 16); }
@inline export function xorDescControl(desc: usize): u32 { return load<u32>(desc, 20); }
@inline export function xorDescSetControl(desc: usize, control: u32): void { store<u32>(desc, control, 20); }
@inline export function xorDescSourceCount(desc: usize): u32 { return load<u32>(desc, 24); }
@inline export function xorDescSetSourceCount(desc: usize, count: u32): void { store<u32>(desc, count, 24); }
/** Written by the engine: read it once, through an atomic load, since the device writes it beside us. */
@inline export function xorDescStatus(desc: usize): u32 { return atomic.load<u32>(desc, 28); }
@inline export function xorDescSetStatus(desc: usize, status: u32): void { atomic.store<u32>(desc, status, 28); }
@inline export function xorDescSource(desc: usize, index: u32): u64 { return load<u64>(desc + 32 + <usize>index * 8); }
@inline export function xorDescSetSource(desc: usize, index: u32, address: u64): void { store<u64>(desc + 32 + <usize>index * 8, address); }
