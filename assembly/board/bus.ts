// The board ABI's `board` module: bus transactions, and nothing else (docs/board-abi.md).
// Addresses are bus addresses on this processor's local bus; PCI config space is the ECAM window in that space.
// ABI 2 passes every address and value as 32-bit halves (low first): a JavaScript board gets numbers, where an i64
// would arrive as a BigInt made on the heap at every access. The functions below keep the 64-bit view for callers.

@external("board", "bus_read8") declare function boardBusRead8(addressLow: u32, addressHigh: u32): u32;
@external("board", "bus_read16") declare function boardBusRead16(addressLow: u32, addressHigh: u32): u32;
@external("board", "bus_read32") declare function boardBusRead32(addressLow: u32, addressHigh: u32): u32;
@external("board", "bus_read64") declare function boardBusRead64(addressLow: u32, addressHigh: u32): u32;
@external("board", "bus_read64_high") declare function boardBusRead64High(): u32;
@external("board", "bus_write8") declare function boardBusWrite8(addressLow: u32, addressHigh: u32, value: u32): void;
@external("board", "bus_write16") declare function boardBusWrite16(addressLow: u32, addressHigh: u32, value: u32): void;
@external("board", "bus_write32") declare function boardBusWrite32(addressLow: u32, addressHigh: u32, value: u32): void;
@external("board", "bus_write64")
declare function boardBusWrite64(addressLow: u32, addressHigh: u32, valueLow: u32, valueHigh: u32): void;

@inline export function busRead8(addr: u64): u32 { return boardBusRead8(<u32>addr, <u32>(addr >> 32)); }
@inline export function busRead16(addr: u64): u32 { return boardBusRead16(<u32>addr, <u32>(addr >> 32)); }
@inline export function busRead32(addr: u64): u32 { return boardBusRead32(<u32>addr, <u32>(addr >> 32)); }
/** One 64-bit access: bus_read64 answers the low half, and bus_read64_high (no access) the high half of that value. */
@inline export function busRead64(addr: u64): u64 {
  const low = boardBusRead64(<u32>addr, <u32>(addr >> 32));
  return (<u64>boardBusRead64High() << 32) | <u64>low;
}
@inline export function busWrite8(addr: u64, value: u32): void { boardBusWrite8(<u32>addr, <u32>(addr >> 32), value); }
@inline export function busWrite16(addr: u64, value: u32): void { boardBusWrite16(<u32>addr, <u32>(addr >> 32), value); }
@inline export function busWrite32(addr: u64, value: u32): void { boardBusWrite32(<u32>addr, <u32>(addr >> 32), value); }
@inline export function busWrite64(addr: u64, value: u64): void {
  boardBusWrite64(<u32>addr, <u32>(addr >> 32), <u32>value, <u32>(value >> 32));
}
