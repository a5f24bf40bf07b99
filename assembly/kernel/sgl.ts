// Scatter-gather lists: fixed blocks of SGL_SEGMENTS_PER_BLOCK segments, chained for longer lists.
// A list is named by its head block's index. Head-only header fields keep totals so append and sums are O(1).
// Block: |0 next u16|2 count u16|4 tail u16|6 blockCount u16|8 segmentCount u32|12 -|16 totalBytes u64|24 -|
//        |32 segment[0] |0 address u64|8 lengthBytes u32|12 flags u32| … segment[SGL_SEGMENTS_PER_BLOCK-1]
import { SGL_BLOCK_BYTES, SGL_BLOCK_HEADER_BYTES, SGL_SEGMENT_BYTES, SGL_SEGMENTS_PER_BLOCK } from "../config";
import { Pool, POOL_NONE } from "./pool";

export const SGL_NONE: u32 = POOL_NONE;

// A block's header fields, as drawn above (next, count: every block; tail, blockCount, segmentCount, totalBytes: the
// head's); read and written only through the accessors below.
const AT_NEXT: usize = 0;
const AT_COUNT: usize = 2;
const AT_TAIL: usize = 4;
const AT_BLOCK_COUNT: usize = 6;
const AT_SEGMENT_COUNT: usize = 8;
const AT_TOTAL_BYTES: usize = 16;
if (AT_TOTAL_BYTES + 8 + 8 != SGL_BLOCK_HEADER_BYTES) ERROR("SGL block header: totalBytes and the unused tail end the header");
@inline function blockNext(block: usize): u32 { return <u32>load<u16>(block, AT_NEXT); }
@inline function blockSegments(block: usize): u32 { return <u32>load<u16>(block, AT_COUNT); }
@inline function headTail(head: usize): u32 { return <u32>load<u16>(head, AT_TAIL); }
@inline function headBlockCount(head: usize): u32 { return <u32>load<u16>(head, AT_BLOCK_COUNT); }
@inline function headSegmentCount(head: usize): u32 { return load<u32>(head, AT_SEGMENT_COUNT); }
@inline function headTotalBytes(head: usize): u64 { return load<u64>(head, AT_TOTAL_BYTES); }
@inline function blockSetNext(block: usize, next: u32): void { store<u16>(block, <u16>next, AT_NEXT); }
@inline function blockSetSegments(block: usize, count: u32): void { store<u16>(block, <u16>count, AT_COUNT); }
@inline function headSetTail(head: usize, tail: u32): void { store<u16>(head, <u16>tail, AT_TAIL); }
@inline function headSetBlockCount(head: usize, count: u32): void { store<u16>(head, <u16>count, AT_BLOCK_COUNT); }
@inline function headSetSegmentCount(head: usize, count: u32): void { store<u32>(head, count, AT_SEGMENT_COUNT); }
@inline function headSetTotalBytes(head: usize, bytes: u64): void { store<u64>(head, bytes, AT_TOTAL_BYTES); }

// A segment (segment() gives its address): |0 address u64|8 lengthBytes u32|12 flags u32|; every reader of a list's
// segments goes through these.
const SEGMENT_AT_ADDRESS: usize = 0;
const SEGMENT_AT_LENGTH_BYTES: usize = 8;
const SEGMENT_AT_FLAGS: usize = 12;
if (SEGMENT_AT_FLAGS + 4 != SGL_SEGMENT_BYTES) ERROR("SGL segment: flags end the segment");
@inline export function sglSegmentAddress(segment: usize): u64 { return load<u64>(segment, SEGMENT_AT_ADDRESS); }
@inline export function sglSegmentLengthBytes(segment: usize): u32 { return load<u32>(segment, SEGMENT_AT_LENGTH_BYTES); }
@inline export function sglSegmentFlags(segment: usize): u32 { return load<u32>(segment, SEGMENT_AT_FLAGS); }
@inline function segmentSet(segment: usize, address: u64, lengthBytes: u32, flags: u32): void {
  store<u64>(segment, address, SEGMENT_AT_ADDRESS);
  store<u32>(segment, lengthBytes, SEGMENT_AT_LENGTH_BYTES);
  store<u32>(segment, flags, SEGMENT_AT_FLAGS);
}

enum RangeAction {
  CopyIn = 0, // flat memory into the list
  CopyOut = 1, // the list into flat memory
  Zero = 2,
  Append = 3, // the runs as segments of another list
}

export class SglStore {
  readonly blocks: Pool;

  constructor(blockCount: u32) {
    this.blocks = new Pool("sgl", blockCount, SGL_BLOCK_BYTES, 16);
  }

  /** A new empty list, or SGL_NONE when no block is free. */
  create(): u32 {
    const head = this.blocks.acquire();
    if (head == SGL_NONE) return SGL_NONE;
    const block = this.blocks.address(head);
    memory.fill(block, 0, SGL_BLOCK_HEADER_BYTES);
    blockSetNext(block, SGL_NONE);
    headSetTail(block, head);
    headSetBlockCount(block, 1);
    return head;
  }

  /** Adds a segment; false (list unchanged) when a new block was needed and none is free. */
  append(sgl: u32, address: u64, lengthBytes: u32, flags: u32 = 0): bool {
    assert(lengthBytes > 0, "SGL segments are not empty");
    const head = this.blocks.address(sgl);
    let tail = headTail(head);
    let tailBlock = this.blocks.address(tail);
    let count = blockSegments(tailBlock);
    if (count == SGL_SEGMENTS_PER_BLOCK) {
      const next = this.blocks.acquire();
      if (next == SGL_NONE) return false;
      blockSetNext(tailBlock, next);
      tail = next;
      tailBlock = this.blocks.address(next);
      memory.fill(tailBlock, 0, SGL_BLOCK_HEADER_BYTES);
      blockSetNext(tailBlock, SGL_NONE);
      headSetTail(head, next);
      headSetBlockCount(head, headBlockCount(head) + 1);
      count = 0;
    }
    const segment = tailBlock + SGL_BLOCK_HEADER_BYTES + <usize>count * SGL_SEGMENT_BYTES;
    segmentSet(segment, address, lengthBytes, flags);
    blockSetSegments(tailBlock, count + 1);
    headSetSegmentCount(head, headSegmentCount(head) + 1);
    headSetTotalBytes(head, headTotalBytes(head) + lengthBytes);
    return true;
  }

  segmentCount(sgl: u32): u32 { return headSegmentCount(this.blocks.address(sgl)); }

  totalBytes(sgl: u32): u64 { return headTotalBytes(this.blocks.address(sgl)); }

  blockCount(sgl: u32): u32 { return headBlockCount(this.blocks.address(sgl)); }

  /** The address of segment `index`'s record (|0 address|8 lengthBytes|12 flags|). Walks the chain: O(index/8). */
  segment(sgl: u32, index: u32): usize {
    assert(index < this.segmentCount(sgl), "SGL segment index out of range");
    let block = sgl;
    let skip = index / SGL_SEGMENTS_PER_BLOCK;
    while (skip > 0) {
      block = blockNext(this.blocks.address(block));
      assert(block != SGL_NONE, "SGL chain shorter than its count");
      skip -= 1;
    }
    return this.blocks.address(block) + SGL_BLOCK_HEADER_BYTES + <usize>(index % SGL_SEGMENTS_PER_BLOCK) * SGL_SEGMENT_BYTES;
  }

  /**
   * Copies `lengthBytes` between the list, from `offsetBytes` into it, and the flat memory at `flat`: into the list
   * when `intoList`, out of it otherwise. Only for lists over this processor's own RAM (a bus address is then its
   * memory address).
   */
  copyFlat(sgl: u32, offsetBytes: u64, flat: usize, lengthBytes: u64, intoList: bool): void {
    this.eachRun(sgl, offsetBytes, lengthBytes, intoList ? RangeAction.CopyIn : RangeAction.CopyOut, <u64>flat);
  }

  /**
   * Appends to `target` the bytes [offsetBytes, offsetBytes + lengthBytes) of `source`, as segments over the same
   * memory (a slice: no copy). False when a block was needed and none is free (then `target` holds part of it).
   */
  appendRange(target: u32, source: u32, offsetBytes: u64, lengthBytes: u64): bool {
    return this.eachRun(source, offsetBytes, lengthBytes, RangeAction.Append, <u64>target);
  }

  /** Zeroes `lengthBytes` of the list from `offsetBytes` (a list over this processor's own RAM). */
  zeroRange(sgl: u32, offsetBytes: u64, lengthBytes: u64): void {
    this.eachRun(sgl, offsetBytes, lengthBytes, RangeAction.Zero, 0);
  }

  // Applies `action` to each run of the list's [offsetBytes, offsetBytes + lengthBytes), in order; `argument` is the
  // flat memory (copies, advanced run by run) or the target list (Append). Walks from the first segment:
  // O(segments). False when an Append found no free block.
  private eachRun(sgl: u32, offsetBytes: u64, lengthBytes: u64, action: RangeAction, argument: u64): bool {
    assert(offsetBytes + lengthBytes <= this.totalBytes(sgl), "SGL range past the list");
    let skip = offsetBytes;
    let done: u64 = 0;
    const count = this.segmentCount(sgl);
    for (let i: u32 = 0; i < count && done < lengthBytes; i++) {
      const segment = this.segment(sgl, i);
      const segmentBytes = <u64>sglSegmentLengthBytes(segment);
      if (skip >= segmentBytes) { skip -= segmentBytes; continue; }
      const run = min(segmentBytes - skip, lengthBytes - done);
      const address = sglSegmentAddress(segment) + skip;
      switch (<i32>action) {
        case RangeAction.CopyIn: memory.copy(<usize>address, <usize>(argument + done), <usize>run); break;
        case RangeAction.CopyOut: memory.copy(<usize>(argument + done), <usize>address, <usize>run); break;
        case RangeAction.Zero: memory.fill(<usize>address, 0, <usize>run); break;
        default: if (!this.append(<u32>argument, address, <u32>run, sglSegmentFlags(segment))) return false;
      }
      done += run;
      skip = 0;
    }
    assert(done == lengthBytes, "SGL range short of its length");
    return true;
  }

  /** Returns every block of the list to the pool. */
  release(sgl: u32): void {
    let block = sgl;
    let remaining = this.blockCount(sgl);
    while (block != SGL_NONE) {
      assert(remaining > 0, "SGL chain longer than its block count");
      const next = blockNext(this.blocks.address(block));
      this.blocks.release(block);
      remaining -= 1;
      block = next;
    }
    assert(remaining == 0, "SGL chain shorter than its block count");
  }

  /** Sums the chain and compares with the head's totals: call when a list is built and before it is consumed. */
  check(sgl: u32): void {
    let block = sgl;
    let blocks: u32 = 0;
    let segments: u32 = 0;
    let bytes: u64 = 0;
    const blockCount = this.blockCount(sgl);
    while (block != SGL_NONE) {
      assert(blocks < blockCount, "SGL chain longer than its block count");
      const blockPtr = this.blocks.address(block);
      const count = blockSegments(blockPtr);
      assert(count <= SGL_SEGMENTS_PER_BLOCK);
      for (let i: u32 = 0; i < count; i++) {
        bytes += sglSegmentLengthBytes(blockPtr + SGL_BLOCK_HEADER_BYTES + <usize>i * SGL_SEGMENT_BYTES);
      }
      segments += count;
      blocks += 1;
      block = blockNext(blockPtr);
    }
    assert(blocks == blockCount, "SGL block count wrong");
    assert(segments == this.segmentCount(sgl), "SGL segment count wrong");
    assert(bytes == this.totalBytes(sgl), "SGL total wrong");
  }
}
