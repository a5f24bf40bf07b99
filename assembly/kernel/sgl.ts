// Scatter-gather lists: fixed blocks of SGL_SEGMENTS_PER_BLOCK segments, chained for longer lists.
// A list is named by its head block's index. Head-only header fields keep totals so append and sums are O(1).
// Block: |0 next u16|2 count u16|4 tail u16|6 blockCount u16|8 segmentCount u32|12 -|16 totalBytes u64|24 -|
//        |32 segment[0] |0 address u64|8 lengthBytes u32|12 flags u32| … segment[SGL_SEGMENTS_PER_BLOCK-1]
import { SGL_BLOCK_BYTES, SGL_BLOCK_HEADER_BYTES, SGL_SEGMENT_BYTES, SGL_SEGMENTS_PER_BLOCK } from "../config";
import { Pool, POOL_NONE } from "./pool";

export const SGL_NONE: u32 = POOL_NONE;

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
    store<u16>(block, <u16>SGL_NONE, 0); // next
    store<u16>(block, <u16>head, 4); // tail
    store<u16>(block, 1, 6); // blockCount
    return head;
  }

  /** Adds a segment; false (list unchanged) when a new block was needed and none is free. */
  append(sgl: u32, address: u64, lengthBytes: u32, flags: u32 = 0): bool {
    assert(lengthBytes > 0, "SGL segments are not empty");
    const head = this.blocks.address(sgl);
    let tail = <u32>load<u16>(head, 4);
    let tailBlock = this.blocks.address(tail);
    let count = <u32>load<u16>(tailBlock, 2);
    if (count == SGL_SEGMENTS_PER_BLOCK) {
      const next = this.blocks.acquire();
      if (next == SGL_NONE) return false;
      store<u16>(tailBlock, <u16>next, 0);
      tail = next;
      tailBlock = this.blocks.address(next);
      memory.fill(tailBlock, 0, SGL_BLOCK_HEADER_BYTES);
      store<u16>(tailBlock, <u16>SGL_NONE, 0);
      store<u16>(head, <u16>next, 4);
      store<u16>(head, load<u16>(head, 6) + 1, 6);
      count = 0;
    }
    const segment = tailBlock + SGL_BLOCK_HEADER_BYTES + <usize>count * SGL_SEGMENT_BYTES;
    store<u64>(segment, address, 0);
    store<u32>(segment, lengthBytes, 8);
    store<u32>(segment, flags, 12);
    store<u16>(tailBlock, <u16>(count + 1), 2);
    store<u32>(head, load<u32>(head, 8) + 1, 8);
    store<u64>(head, load<u64>(head, 16) + lengthBytes, 16);
    return true;
  }

  segmentCount(sgl: u32): u32 { return load<u32>(this.blocks.address(sgl), 8); }

  totalBytes(sgl: u32): u64 { return load<u64>(this.blocks.address(sgl), 16); }

  blockCount(sgl: u32): u32 { return load<u16>(this.blocks.address(sgl), 6); }

  /** The address of segment `index`'s record (|0 address|8 lengthBytes|12 flags|). Walks the chain: O(index/8). */
  segment(sgl: u32, index: u32): usize {
    assert(index < this.segmentCount(sgl), "SGL segment index out of range");
    let block = sgl;
    let skip = index / SGL_SEGMENTS_PER_BLOCK;
    while (skip > 0) {
      block = load<u16>(this.blocks.address(block), 0);
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
      const segmentBytes = <u64>load<u32>(segment, 8);
      if (skip >= segmentBytes) { skip -= segmentBytes; continue; }
      const run = min(segmentBytes - skip, lengthBytes - done);
      const address = load<u64>(segment, 0) + skip;
      switch (<i32>action) {
        case RangeAction.CopyIn: memory.copy(<usize>address, <usize>(argument + done), <usize>run); break;
        case RangeAction.CopyOut: memory.copy(<usize>(argument + done), <usize>address, <usize>run); break;
        case RangeAction.Zero: memory.fill(<usize>address, 0, <usize>run); break;
        default: if (!this.append(<u32>argument, address, <u32>run, load<u32>(segment, 12))) return false;
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
      const next = <u32>load<u16>(this.blocks.address(block), 0);
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
      const count = <u32>load<u16>(blockPtr, 2);
      assert(count <= SGL_SEGMENTS_PER_BLOCK);
      for (let i: u32 = 0; i < count; i++) {
        bytes += load<u32>(blockPtr + SGL_BLOCK_HEADER_BYTES + <usize>i * SGL_SEGMENT_BYTES, 8);
      }
      segments += count;
      blocks += 1;
      block = load<u16>(blockPtr, 0);
    }
    assert(blocks == blockCount, "SGL block count wrong");
    assert(segments == this.segmentCount(sgl), "SGL segment count wrong");
    assert(bytes == this.totalBytes(sgl), "SGL total wrong");
  }
}
