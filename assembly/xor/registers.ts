// The XOR engine's PCI identity and BAR 0 registers (docs/hardware.md, "xor-engine"), as the driver sees them.
// The host model (host/devices/xor_engine.ts) defines the same values; test/unit/xor/shared_constants.test.ts keeps
// the two equal.

export const XOR_VENDOR_ID: u32 = 0x1234;
export const XOR_DEVICE_ID: u32 = 0x11a5;
export const XOR_BAR_REGISTERS: u32 = 0;
export const XOR_VECTOR_COUNT: u32 = 1; // MSI-X vector 0: the interrupt cause gained a bit

// BAR 0, all 32 bits.
export const XOR_CTRL: u64 = 0x00; // W: bit 0 start, bit 1 reset
export const XOR_STATUS: u64 = 0x04; // RO: bit 0 busy, bit 1 the last chain stopped on a fault
export const XOR_DESC_BASE_LO: u64 = 0x08; // the first descriptor of the chain start walks
export const XOR_DESC_BASE_HI: u64 = 0x0c;
export const XOR_INT_CAUSE: u64 = 0x10; // RW1C: bit 0 descriptor done, bit 1 chain end, bit 2 error
export const XOR_ERROR: u64 = 0x14; // RO: the fault's code (XorError in the host model)
export const XOR_ERROR_DESC_LO: u64 = 0x18; // RO: the descriptor that faulted
export const XOR_ERROR_DESC_HI: u64 = 0x1c;

export const XOR_CTRL_START: u32 = 1 << 0;
export const XOR_CTRL_RESET: u32 = 1 << 1;
export const XOR_STATUS_BUSY: u32 = 1 << 0;
export const XOR_STATUS_ERROR: u32 = 1 << 1;
