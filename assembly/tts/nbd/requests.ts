// What the NBD server keeps per task record it holds: the request's fields and its reply's header, in page buffers
// reserved at boot (a table of this size in boot objects would crowd the host's 2 MiB reserve).
//
// Record, 128 bytes, little-endian: |0 reply header area, 64 bytes (the longest reply header: a block status chunk)|
// |64 cookie u64|72 offset u64|80 cursor u64 (TRIM, WRITE_ZEROES: bytes done)|88 length u32|92 error u32 (the reply's;
// 0 none)|96 unmapBlocks u32 (TRIM: this piece's blocks)|100 flags u16|102 type u8|103 step u8|104 retries u8|.
import { BUFFER_CLASS_PAGE } from "../../config";
import { bufferPool, bufferReserve } from "../../kernel/buffers";
import { POOL_NONE } from "../../kernel/pool";
import { SCSI_TASKS_MAX } from "../../scsi/tasks";

export const REPLY_AREA_BYTES: u32 = 64;
const RECORD_BYTES: u32 = 128;
const PAGE_BYTES: u32 = 4096;
const PER_PAGE: u32 = PAGE_BYTES / RECORD_BYTES;
const PAGES: u32 = SCSI_TASKS_MAX / PER_PAGE;
const AT_COOKIE: usize = 64;
const AT_OFFSET: usize = 72;
const AT_CURSOR: usize = 80;
const AT_LENGTH: usize = 88;
const AT_ERROR: usize = 92;
const AT_UNMAP_BLOCKS: usize = 96;
const AT_FLAGS: usize = 100;
const AT_TYPE: usize = 102;
const AT_STEP: usize = 103;
const AT_RETRIES: usize = 104;
if (SCSI_TASKS_MAX % PER_PAGE != 0) ERROR("nbd: request records fill whole pages");

export class NbdRequests {
  private readonly pages: StaticArray<u32> = new StaticArray<u32>(PAGES);

  /** Boot: reserves the pages. */
  boot(): void {
    assert(bufferPool(BUFFER_CLASS_PAGE).slotBytes == PAGE_BYTES, "nbd: request records are laid out in 4 KiB pages");
    for (let i: u32 = 0; i < PAGES; i++) {
      unchecked(this.pages[i] = bufferReserve(BUFFER_CLASS_PAGE));
      assert(unchecked(this.pages[i]) != POOL_NONE, "nbd: request pages at boot");
    }
  }

  private at(t: u32): usize {
    assert(t < SCSI_TASKS_MAX, "nbd: record index out of range");
    return bufferPool(BUFFER_CLASS_PAGE).address(unchecked(this.pages[t / PER_PAGE])) + <usize>((t % PER_PAGE) * RECORD_BYTES);
  }

  /** Record t's reply header area (REPLY_AREA_BYTES). */
  reply(t: u32): usize { return this.at(t); }

  /** A new request in record t: its fields, cursor, step, retries and error at zero. */
  begin(t: u32, cookie: u64, offset: u64, length: u32, type: u32, flags: u32): void {
    const r = this.at(t);
    memory.fill(r + AT_COOKIE, 0, RECORD_BYTES - <u32>AT_COOKIE);
    store<u64>(r + AT_COOKIE, cookie);
    store<u64>(r + AT_OFFSET, offset);
    store<u32>(r + AT_LENGTH, length);
    store<u8>(r + AT_TYPE, <u8>type);
    store<u16>(r + AT_FLAGS, <u16>flags);
  }

  /** Record `to` takes over record `from`'s request (a retry or the next step on a fresh record); its error cleared. */
  move(from: u32, to: u32): void {
    if (from != to) memory.copy(this.at(to) + AT_COOKIE, this.at(from) + AT_COOKIE, RECORD_BYTES - <u32>AT_COOKIE);
    store<u32>(this.at(to) + AT_ERROR, 0);
  }

  cookie(t: u32): u64 { return load<u64>(this.at(t) + AT_COOKIE); }
  offset(t: u32): u64 { return load<u64>(this.at(t) + AT_OFFSET); }
  cursor(t: u32): u64 { return load<u64>(this.at(t) + AT_CURSOR); }
  setCursor(t: u32, bytes: u64): void { store<u64>(this.at(t) + AT_CURSOR, bytes); }
  length(t: u32): u32 { return load<u32>(this.at(t) + AT_LENGTH); }
  error(t: u32): u32 { return load<u32>(this.at(t) + AT_ERROR); }
  setError(t: u32, error: u32): void { store<u32>(this.at(t) + AT_ERROR, error); }
  unmapBlocks(t: u32): u32 { return load<u32>(this.at(t) + AT_UNMAP_BLOCKS); }
  setUnmapBlocks(t: u32, blocks: u32): void { store<u32>(this.at(t) + AT_UNMAP_BLOCKS, blocks); }
  flags(t: u32): u32 { return <u32>load<u16>(this.at(t) + AT_FLAGS); }
  type(t: u32): u32 { return <u32>load<u8>(this.at(t) + AT_TYPE); }
  step(t: u32): u32 { return <u32>load<u8>(this.at(t) + AT_STEP); }
  setStep(t: u32, step: u32): void { store<u8>(this.at(t) + AT_STEP, <u8>step); }
  retries(t: u32): u32 { return <u32>load<u8>(this.at(t) + AT_RETRIES); }
  setRetries(t: u32, count: u32): void { store<u8>(this.at(t) + AT_RETRIES, <u8>count); }
}
