// The limits the target advertises (Block Limits VPD page) and keeps. Transfer limits are in bytes so they hold for
// every block size; the largest transfer also depends on how many large buffers the processor has.
import { BUFFER_CLASS_LARGE } from "../config";
import { bufferPool } from "../kernel/buffers";

export const TRANSFER_BYTES_LIMIT: u32 = 1 << 20; // one command's data, at most
export const COMPARE_AND_WRITE_BLOCKS_MAX: u32 = 32; // MAXIMUM COMPARE AND WRITE LENGTH
export const UNMAP_BYTES_MAX: u32 = 32 << 20; // MAXIMUM UNMAP LBA COUNT, in bytes: the disks' own limit
export const UNMAP_DESCRIPTORS_MAX: u32 = 64; // SBC-4 Basic Provisioning asks for at least 64
// MAXIMUM WRITE SAME LENGTH, in bytes (not above the unmap limit). Below 65536 blocks of 512 bytes: initiators that
// see 65536 or more check a WRITE SAME of that many blocks by first writing them in one command, beyond the transfer limit.
export const WRITE_SAME_BYTES_MAX: u32 = 16 << 20;
export const OPTIMAL_GRANULARITY_BYTES: u32 = 4096;
// WRITE ATOMIC (16): MAXIMUM ATOMIC TRANSFER LENGTH in bytes (never above the transfer limit), and the ATOMIC ALIGNMENT
// and ATOMIC TRANSFER LENGTH GRANULARITY in blocks. An atomic write is one write service to the CTA, never split.
export const ATOMIC_TRANSFER_BYTES_MAX: u32 = 256 << 10;
export const ATOMIC_ALIGNMENT_BLOCKS: u32 = 1;
export const ATOMIC_GRANULARITY_BLOCKS: u32 = 1;
export const PARAMETER_LIST_BYTES_MAX: u32 = 65536; // one large buffer: UNMAP and MODE SELECT lists
export const DATA_IN_BYTES_MAX: u32 = 4096; // parameter data the target builds (INQUIRY, MODE SENSE, …): one page
export const SERVICES_IN_FLIGHT_MAX: u32 = 64; // ServiceIo requests at the CTA at once (it has 128 slots)

let transferBytesMax: u32 = TRANSFER_BYTES_LIMIT;

/** Sizes the largest transfer so one command's area (twice it, for VERIFY with BYTCHK) takes at most half the large pool. */
export function limitsInit(): void {
  const pool = bufferPool(BUFFER_CLASS_LARGE);
  const quarterBytes = <u64>(pool.capacity / 4) * pool.slotBytes;
  transferBytesMax = <u32>max(min(quarterBytes, <u64>TRANSFER_BYTES_LIMIT), <u64>pool.slotBytes);
}

/** MAXIMUM ATOMIC TRANSFER LENGTH in bytes: WRITE ATOMIC beyond it is refused. */
export function limitAtomicBytes(): u32 { return min(ATOMIC_TRANSFER_BYTES_MAX, transferBytesMax); }

/** MAXIMUM TRANSFER LENGTH in bytes: READ, WRITE, VERIFY and WRITE AND VERIFY beyond it are refused. */
export function limitTransferBytes(): u32 { return transferBytesMax; }
