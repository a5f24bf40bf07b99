// The board's NVRAM card (docs/hardware.md, "nvram"): a PCI function whose BAR 2 is a battery-backed array, found by
// walking the PCI enumeration as the other drivers find their functions. A store to the array is non-volatile when
// the bus write returns; SYNC returns once every earlier store is durable. No interrupt: every access is a bus read
// or write, so a caller that stored a record and wrote SYNC knows it is durable when the call returns.
// BAR 0 registers (32-bit): |0x00 ID "NVRM"|0x04 SIZE (bytes of the array)|0x08 SYNC (W)|.
import { busRead32, busRead64, busWrite32, busWrite64 } from "./bus";
import { PCI_BARS, pciFunctionAt, pciFunctionCount } from "./pci";
import { line } from "../kernel/console";

export const NVRAM_VENDOR_ID: u32 = 0x1234;
export const NVRAM_DEVICE_ID: u32 = 0x11c0;
const NVRAM_ID: u32 = 0x4d52_564e; // "NVRM"
const NVRAM_BAR_REGISTERS: u32 = 0;
const NVRAM_BAR_ARRAY: u32 = 2;
const NVRAM_REG_ID: u64 = 0x00;
const NVRAM_REG_SIZE: u64 = 0x04;
const NVRAM_REG_SYNC: u64 = 0x08;

let registers: u64 = 0;
let array: u64 = 0;
let sizeBytes: u32 = 0;

/**
 * Boot, after pciEnumerate: claims the first unclaimed NVRAM card. False (with a console line when a card was found
 * but cannot be used) when the board has none usable: then nothing survives a power cycle.
 */
export function nvramBoot(): bool {
  assert(NVRAM_BAR_ARRAY < PCI_BARS);
  const count = pciFunctionCount();
  for (let i: u32 = 0; i < count; i++) {
    const f = pciFunctionAt(i);
    if (f.claimed || f.vendorId != NVRAM_VENDOR_ID || f.deviceId != NVRAM_DEVICE_ID) continue;
    const regs = unchecked(f.barAddress[NVRAM_BAR_REGISTERS]);
    const base = unchecked(f.barAddress[NVRAM_BAR_ARRAY]);
    if (regs == 0 || base == 0) {
      line().s("nvram: card in slot ").u32(f.device).s(": a BAR is not placed").err();
      continue;
    }
    if (busRead32(regs + NVRAM_REG_ID) != NVRAM_ID) {
      line().s("nvram: card in slot ").u32(f.device).s(": its ID register does not read NVRM").err();
      continue;
    }
    const size = busRead32(regs + NVRAM_REG_SIZE);
    if (<u64>size > unchecked(f.barSize[NVRAM_BAR_ARRAY]) || size % 8 != 0) {
      line().s("nvram: card in slot ").u32(f.device).s(": SIZE ").u32(size).s(" does not fit its BAR").err();
      continue;
    }
    f.claimed = true;
    registers = regs;
    array = base;
    sizeBytes = size;
    return true;
  }
  return false;
}

/** The array's bytes (0: no NVRAM). */
export function nvramSizeBytes(): u32 { return sizeBytes; }

/** The 8 bytes at `offset` of the array (8-aligned, inside it). */
export function nvramRead64(offset: u32): u64 {
  assert(offset % 8 == 0 && offset + 8 <= sizeBytes, "nvram: read outside the array");
  return busRead64(array + <u64>offset);
}

/** Stores 8 bytes at `offset` of the array (8-aligned, inside it): non-volatile when this returns. */
export function nvramWrite64(offset: u32, value: u64): void {
  assert(offset % 8 == 0 && offset + 8 <= sizeBytes, "nvram: write outside the array");
  busWrite64(array + <u64>offset, value);
}

/** Returns once every earlier store is durable. */
export function nvramSync(): void {
  assert(registers != 0, "nvram: sync without a card");
  busWrite32(registers + NVRAM_REG_SYNC, 1);
}
