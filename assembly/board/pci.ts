// PCI enumeration through ECAM, done once at boot: every function on bus 0 is found, its BARs sized and placed in
// the PCI memory window, memory space and bus mastering turned on. Drivers and the UMA read the resulting table.
// PCI Local Bus 3.0, "Configuration Space"; the BAR sizing protocol: write all ones, read back ~(size-1).
import { busRead16, busRead32, busRead8, busWrite16, busWrite32 } from "./bus";

export const PCI_FUNCTIONS_MAX: u32 = 32;
export const PCI_BARS: u32 = 6;
export const CAP_MSIX: u32 = 0x11;
export const CAP_VENDOR: u32 = 0x09;
const CFG_COMMAND: u32 = 0x04;
const CFG_STATUS: u32 = 0x06;
const CFG_BAR0: u32 = 0x10;
const CFG_CAPABILITIES: u32 = 0x34;
const COMMAND_MEMORY: u32 = 1 << 1;
const COMMAND_BUS_MASTER: u32 = 1 << 2;
const STATUS_CAPABILITIES: u32 = 1 << 4;
const VENDOR_NONE: u32 = 0xffff;
const CAPABILITY_WALK_MAX: u32 = 48; // 192 bytes of capabilities at 4 bytes each: a list longer than that loops

// MSI-X capability (PCI Local Bus 3.0, "MSI-X Capability and Table Structure"), offsets from the capability:
// |0 Capability ID|1 Next Pointer|2-3 Message Control|4-7 Table Offset/Table BIR|8-11 PBA Offset/PBA BIR|
const MSIX_MESSAGE_CONTROL: u32 = 0x02; // le16
const MSIX_TABLE_OFFSET_BIR: u32 = 0x04; // le32: the table's offset in its BAR (8-byte aligned) | the BAR's index
const MSIX_CONTROL_TABLE_SIZE: u32 = 0x7ff; // Table Size: the table's entries - 1
const MSIX_CONTROL_FUNCTION_MASK: u32 = 1 << 14;
const MSIX_CONTROL_ENABLE: u32 = 1 << 15;
const MSIX_TABLE_BIR: u32 = 0x7; // the BAR Indicator Register, the low 3 bits of Table Offset/Table BIR
// MSI-X table entry, 16 bytes, in the BAR: |0 Message Address|4 Message Upper Address|8 Message Data|12 Vector Control|
const MSIX_ENTRY_BYTES: u32 = 16;
const MSIX_ENTRY_MESSAGE_ADDRESS: u64 = 0;
const MSIX_ENTRY_MESSAGE_UPPER_ADDRESS: u64 = 4;
const MSIX_ENTRY_MESSAGE_DATA: u64 = 8;
const MSIX_ENTRY_VECTOR_CONTROL: u64 = 12;

export class PciFunctionInfo {
  device: u32 = 0;
  vendorId: u32 = 0;
  deviceId: u32 = 0;
  classCode: u32 = 0; // base class << 16 | subclass << 8 | prog-if
  revision: u32 = 0;
  configBase: u64 = 0; // ECAM address of its config space
  readonly barAddress: StaticArray<u64> = new StaticArray<u64>(PCI_BARS);
  readonly barSize: StaticArray<u64> = new StaticArray<u64>(PCI_BARS);
  claimed: bool = false; // a driver or the UMA took it

  read8(register: u32): u32 { return busRead8(this.configBase + register); }
  read16(register: u32): u32 { return busRead16(this.configBase + register); }
  read32(register: u32): u32 { return busRead32(this.configBase + register); }
  write16(register: u32, value: u32): void { busWrite16(this.configBase + register, value); }
  write32(register: u32, value: u32): void { busWrite32(this.configBase + register, value); }

  /** The offset of the first capability with `id` after `after` (0: from the start), or 0 if none. Bounded walk. */
  capabilityFind(id: u32, after: u32 = 0): u32 {
    if ((this.read16(CFG_STATUS) & STATUS_CAPABILITIES) == 0) return 0;
    let offset = after == 0 ? this.read8(CFG_CAPABILITIES) & 0xfc : this.read8(after + 1) & 0xfc;
    for (let steps: u32 = 0; offset != 0 && steps < CAPABILITY_WALK_MAX; steps++) {
      if (offset < 0x40) return 0; // points into the header: a broken list
      if (this.read8(offset) == id) return offset;
      offset = this.read8(offset + 1) & 0xfc;
    }
    return 0;
  }
}

const table = new StaticArray<PciFunctionInfo | null>(PCI_FUNCTIONS_MAX);
let functionCount: u32 = 0;
let windowNext: u64 = 0;
let windowEnd: u64 = 0;
let windowExhausted: u32 = 0;

/**
 * Finds the functions on bus 0 (function 0 of each device) and places their BARs. Boot only.
 * Returns how many were found; a BAR that does not fit the window is left unplaced (and counted).
 */
export function pciEnumerate(ecamBase: u64, windowBase: u64, windowSize: u64): u32 {
  windowNext = windowBase;
  windowEnd = windowBase + windowSize;
  for (let device: u32 = 0; device < 32 && functionCount < PCI_FUNCTIONS_MAX; device++) {
    const configBase = ecamBase + ((<u64>device) << 15);
    const vendor = busRead16(configBase);
    if (vendor == VENDOR_NONE || vendor == 0) continue;
    const info = new PciFunctionInfo();
    info.device = device;
    info.configBase = configBase;
    info.vendorId = vendor;
    info.deviceId = info.read16(2);
    const classRevision = info.read32(8);
    info.revision = classRevision & 0xff;
    info.classCode = classRevision >>> 8;
    placeBars(info);
    info.write16(CFG_COMMAND, info.read16(CFG_COMMAND) | COMMAND_MEMORY | COMMAND_BUS_MASTER);
    unchecked(table[functionCount] = info);
    functionCount += 1;
  }
  return functionCount;
}

function placeBars(info: PciFunctionInfo): void {
  for (let index: u32 = 0; index < PCI_BARS; index++) {
    const register = CFG_BAR0 + index * 4;
    const original = info.read32(register);
    if ((original & 1) != 0) continue; // I/O space: not used on this board
    const is64 = (original & 0b110) == 0b100;
    info.write32(register, 0xffff_ffff);
    let mask: u64 = <u64>(info.read32(register) & 0xffff_fff0);
    if (is64 && index + 1 < PCI_BARS) {
      info.write32(register + 4, 0xffff_ffff);
      mask |= (<u64>info.read32(register + 4)) << 32;
    } else {
      mask |= 0xffff_ffff_0000_0000;
    }
    if ((mask & 0xffff_fff0) == 0 && (mask >> 32) == 0xffff_ffff) {
      info.write32(register, 0);
      if (is64) index += 1;
      continue; // not implemented
    }
    const size = ~mask + 1;
    const address = (windowNext + size - 1) & ~(size - 1); // naturally aligned
    if (size == 0 || address + size > windowEnd) {
      windowExhausted += 1;
      info.write32(register, 0);
      if (is64) { info.write32(register + 4, 0); index += 1; }
      continue;
    }
    windowNext = address + size;
    info.write32(register, <u32>address);
    if (is64) info.write32(register + 4, <u32>(address >> 32));
    unchecked(info.barAddress[index] = address);
    unchecked(info.barSize[index] = size);
    if (is64) index += 1;
  }
}

export function pciFunctionCount(): u32 { return functionCount; }

export function pciFunctionAt(index: u32): PciFunctionInfo {
  assert(index < functionCount, "PCI function index out of range");
  return unchecked(table[index])!;
}

/** BARs that did not fit the window at enumeration. */
export function pciWindowExhausted(): u32 { return windowExhausted; }

/**
 * Points MSI-X vectors 0..count-1 of `info` at the processor's MSI address with data `vectorBase + v`, unmasks
 * them and enables MSI-X. Returns false if the function has no MSI-X, too few vectors, or its table BAR is unplaced.
 */
export function msixEnable(info: PciFunctionInfo, msiAddress: u64, vectorBase: u32, count: u32): bool {
  const cap = info.capabilityFind(CAP_MSIX);
  if (cap == 0) return false;
  const control = info.read16(cap + MSIX_MESSAGE_CONTROL);
  if ((control & MSIX_CONTROL_TABLE_SIZE) + 1 < count) return false;
  const tableWord = info.read32(cap + MSIX_TABLE_OFFSET_BIR);
  const bar = tableWord & MSIX_TABLE_BIR;
  if (bar >= PCI_BARS || unchecked(info.barAddress[bar]) == 0) return false;
  const tableAddress = unchecked(info.barAddress[bar]) + (tableWord & ~MSIX_TABLE_BIR);
  for (let v: u32 = 0; v < count; v++) {
    const entry = tableAddress + <u64>(v * MSIX_ENTRY_BYTES);
    busWrite32(entry + MSIX_ENTRY_MESSAGE_ADDRESS, <u32>msiAddress);
    busWrite32(entry + MSIX_ENTRY_MESSAGE_UPPER_ADDRESS, <u32>(msiAddress >> 32));
    busWrite32(entry + MSIX_ENTRY_MESSAGE_DATA, vectorBase + v);
    busWrite32(entry + MSIX_ENTRY_VECTOR_CONTROL, 0); // Mask Bit clear: the vector may signal
  }
  info.write16(cap + MSIX_MESSAGE_CONTROL, (control & ~MSIX_CONTROL_FUNCTION_MASK) | MSIX_CONTROL_ENABLE);
  return true;
}
