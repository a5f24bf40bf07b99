// The board ABI's `board` module: bus transactions, and nothing else (docs/board-abi.md).
// Addresses are bus addresses on this processor's local bus; PCI config space is the ECAM window in that space.

@external("board", "bus_read8") export declare function busRead8(addr: u64): u32;
@external("board", "bus_read16") export declare function busRead16(addr: u64): u32;
@external("board", "bus_read32") export declare function busRead32(addr: u64): u32;
@external("board", "bus_read64") export declare function busRead64(addr: u64): u64;
@external("board", "bus_write8") export declare function busWrite8(addr: u64, value: u32): void;
@external("board", "bus_write16") export declare function busWrite16(addr: u64, value: u32): void;
@external("board", "bus_write32") export declare function busWrite32(addr: u64, value: u32): void;
@external("board", "bus_write64") export declare function busWrite64(addr: u64, value: u64): void;
