// A pool of fixed-size slots handed out as u16 indexes. The free list lives in its own array (a u16 per slot: the next
// free index), never in the slots: what a device or a peer board writes into a buffer, free or held, cannot reach the
// pool's bookkeeping (the data buffers are a region other boards may RDMA into, docs/cluster.md). A bitmap of held
// slots catches double releases.
// Empty is a status: acquire() answers POOL_NONE, and acquireOrWait() also wakes the caller when a slot frees up.
import { POOL_SLOTS_MAX } from "../config";
import { carve } from "./carve";
import { wakeMask } from "./ready";

export const POOL_NONE: u32 = 0xffff;

export class Pool {
  private base: usize = 0; // slot memory (placeSlots, when the constructor left it for later)
  private readonly held: usize; // one bit per slot
  private readonly links: usize; // the free list: a u16 per slot, the next free index
  private freeHead: u32 = POOL_NONE;
  freeCount: u32 = 0;
  countUsedMax: u32 = 0; // high-water mark, for the stats
  acquireFailedCount: u32 = 0; // exhaustion events: backpressure applied
  private waiters: u32 = 0; // task mask to wake on the next release

  /**
   * Carves `capacity` slots of `slotBytes`, each aligned to `alignBytes`, and the bookkeeping. Boot only. With
   * `slotsLater` the slots are carved by placeSlots() instead, so that the slots of several pools lie together, apart
   * from their bookkeeping (the buffer pools: one region a peer board may write).
   */
  constructor(readonly name: string, readonly capacity: u32, readonly slotBytes: u32, readonly alignBytes: u32 = 16, slotsLater: bool = false) {
    assert(capacity > 0 && capacity <= POOL_SLOTS_MAX, "pool capacity out of range");
    assert(slotBytes > 0 && slotBytes % alignBytes == 0, "slots stay aligned");
    if (!slotsLater) this.base = carve(capacity * slotBytes, alignBytes);
    this.held = carve((capacity + 7) / 8, 8);
    this.links = carve(capacity * 2, 8);
    // Thread the list so that slot 0 is handed out first: deterministic and easy to read in a trace.
    for (let i: i32 = <i32>capacity - 1; i >= 0; i--) this.pushFree(<u32>i);
    assert(this.freeCount == capacity);
  }

  /** A free slot's index, or POOL_NONE when the pool is empty. */
  acquire(): u32 {
    const index = this.freeHead;
    if (index == POOL_NONE) {
      this.acquireFailedCount += 1;
      return POOL_NONE;
    }
    assert(index < this.capacity, "pool free list corrupt");
    assert(!this.isHeld(index), "pool slot on the free list is held");
    this.freeHead = load<u16>(this.links + <usize>index * 2);
    this.freeCount -= 1;
    this.setHeld(index, true);
    const used = this.capacity - this.freeCount;
    if (used > this.countUsedMax) this.countUsedMax = used;
    return index;
  }

  /** As acquire(); when empty, task `taskIndex` is woken by the next release (it should then return Waiting). */
  acquireOrWait(taskIndex: u32): u32 {
    const index = this.acquire();
    if (index == POOL_NONE) this.waiters |= (<u32>1) << taskIndex;
    return index;
  }

  release(index: u32): void {
    assert(index < this.capacity, "pool release out of range");
    assert(this.isHeld(index), "pool slot released twice");
    assert(this.freeCount < this.capacity, "pool already full");
    this.setHeld(index, false);
    this.pushFree(index);
    if (this.waiters != 0) {
      wakeMask(this.waiters);
      this.waiters = 0;
    }
  }

  /** Boot only, once, for a pool made with `slotsLater`: carves its slots now. */
  placeSlots(): void {
    assert(this.base == 0, "pool slots placed twice");
    this.base = carve(this.capacity * this.slotBytes, this.alignBytes);
  }

  /** The first byte past the last slot. */
  slotsEnd(): usize { return this.base + <usize>this.capacity * this.slotBytes; }

  @inline address(index: u32): usize {
    assert(index < this.capacity);
    assert(this.base != 0, "pool slots not placed");
    return this.base + <usize>index * this.slotBytes;
  }

  /** The index of the slot holding `address`, or POOL_NONE if it is not a slot start of this pool. */
  indexOf(address: usize): u32 {
    if (address < this.base) return POOL_NONE;
    const offset = address - this.base;
    if (offset % this.slotBytes != 0 || offset / this.slotBytes >= this.capacity) return POOL_NONE;
    return <u32>(offset / this.slotBytes);
  }

  isHeld(index: u32): bool {
    assert(index < this.capacity);
    return (load<u8>(this.held + (index >> 3)) & (<u8>1 << <u8>(index & 7))) != 0;
  }

  /** Walks the free list and the held bitmap: every slot is exactly one of free or held. Bounded by capacity. */
  check(): void {
    let walked: u32 = 0;
    let index = this.freeHead;
    while (index != POOL_NONE) {
      assert(walked < this.capacity, "pool free list has a cycle");
      assert(index < this.capacity, "pool free list out of range");
      assert(!this.isHeld(index), "pool slot both free and held");
      walked += 1;
      index = load<u16>(this.links + <usize>index * 2);
    }
    assert(walked == this.freeCount, "pool free count disagrees with its list");
  }

  private pushFree(index: u32): void {
    store<u16>(this.links + <usize>index * 2, <u16>this.freeHead);
    this.freeHead = index;
    this.freeCount += 1;
  }

  private setHeld(index: u32, held: bool): void {
    const byte = this.held + (index >> 3);
    const bit = <u8>1 << <u8>(index & 7);
    store<u8>(byte, held ? load<u8>(byte) | bit : load<u8>(byte) & ~bit);
  }
}
