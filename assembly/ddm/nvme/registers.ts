// The NVMe controller registers in BAR 0 as the driver sees them (NVMe 1.4 §3.1), and the fields it reads from them.
// CAP, 8 B: |15:0 MQES|16 CQR|18:17 AMS|31:24 TO (500 ms)|35:32 DSTRD|36 NSSRS|44:37 CSS|51:48 MPSMIN|55:52 MPSMAX|
// CC:  |0 EN|6:4 CSS|10:7 MPS|13:11 AMS|15:14 SHN|19:16 IOSQES|23:20 IOCQES|
// CSTS: |0 RDY|1 CFS|3:2 SHST|   AQA: |11:0 ASQS|27:16 ACQS| (0-based)
// Doorbells from 0x1000, (4 << DSTRD) bytes apart: SQ y's tail at 2y, CQ y's head at 2y + 1.
import { busRead32, busRead64, busWrite32, busWrite64 } from "../../board/bus";

export const REG_CAP: u64 = 0x00;
export const REG_VS: u64 = 0x08;
export const REG_CC: u64 = 0x14;
export const REG_CSTS: u64 = 0x1c;
export const REG_AQA: u64 = 0x24;
export const REG_ASQ: u64 = 0x28;
export const REG_ACQ: u64 = 0x30;
export const REG_DOORBELLS: u64 = 0x1000;

export const CC_EN: u32 = 1;
const CC_IOSQES_SHIFT: u32 = 16;
const CC_IOCQES_SHIFT: u32 = 20;
export const SQ_ENTRY_BYTES: u32 = 64;
export const CQ_ENTRY_BYTES: u32 = 16;
/** CC for the NVM command set, 4 KiB pages, round robin, 64-byte SQ and 16-byte CQ entries, enabled. */
export const CC_ENABLE: u32 = CC_EN | (6 << CC_IOSQES_SHIFT) | (4 << CC_IOCQES_SHIFT);
export const CSTS_RDY: u32 = 1;
export const CSTS_CFS: u32 = 1 << 1;
export const CSTS_ALL_ONES: u32 = 0xffff_ffff; // a master abort: no device answers

@inline export function capQueueEntriesMax(cap: u64): u32 { return <u32>(cap & 0xffff) + 1; }
@inline export function capTimeoutNs(cap: u64): u64 { return ((cap >> 24) & 0xff) * 500_000_000; }
@inline export function capDoorbellStrideBytes(cap: u64): u32 { return (<u32>4) << <u32>((cap >> 32) & 0xf); }
@inline export function capNvmCommandSet(cap: u64): bool { return ((cap >> 37) & 1) != 0; }
@inline export function capPageBytesMin(cap: u64): u64 { return (<u64>4096) << ((cap >> 48) & 0xf); }
@inline export function capContiguousRequired(cap: u64): bool { return ((cap >> 16) & 1) != 0; }

/** BAR 0 of one controller. */
export class NvmeRegisters {
  constructor(readonly base: u64, readonly sizeBytes: u64) {}

  read32(register: u64): u32 { return busRead32(this.base + register); }
  read64(register: u64): u64 { return busRead64(this.base + register); }
  write32(register: u64, value: u32): void { busWrite32(this.base + register, value); }
  write64(register: u64, value: u64): void { busWrite64(this.base + register, value); }

  /** The bus address of doorbell `index` (2y: SQ y tail, 2y + 1: CQ y head). */
  doorbell(index: u32, strideBytes: u32): u64 { return this.base + REG_DOORBELLS + <u64>index * <u64>strideBytes; }

  ring(doorbell: u64, value: u32): void { busWrite32(doorbell, value); }
}
