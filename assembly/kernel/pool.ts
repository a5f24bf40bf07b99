// A pool of fixed-size slots handed out as u16 indexes. The free list is threaded over the free slots themselves
// (a free slot's first two bytes hold the next free index); a bitmap of held slots catches double releases.
// Empty is a status: acquire() answers POOL_NONE, and acquireOrWait() also wakes the caller when a slot frees up.
import { POOL_SLOTS_MAX } from "../config";
import { carve } from "./carve";
import { wakeMask } from "./ready";

export const POOL_NONE: u32 = 0xffff;

export class Pool {
  private readonly base: usize; // slot memory
  private readonly held: usize; // one bit per slot
  private freeHead: u32 = POOL_NONE;
  freeCount: u32 = 0;
  countUsedMax: u32 = 0; // high-water mark, for the stats
  acquireFailedCount: u32 = 0; // exhaustion events: backpressure applied
  private waiters: u32 = 0; // task mask to wake on the next release

  /** Carves `capacity` slots of `slotBytes`, each aligned to `alignBytes`. Boot only. */
  constructor(readonly name: string, readonly capacity: u32, readonly slotBytes: u32, alignBytes: u32 = 16) {
    assert(capacity > 0 && capacity <= POOL_SLOTS_MAX, "pool capacity out of range");
    assert(slotBytes >= 2 && slotBytes % alignBytes == 0, "slots hold a free-list link and stay aligned");
    this.base = carve(capacity * slotBytes, alignBytes);
    this.held = carve((capacity + 7) / 8, 8);
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
    this.freeHead = load<u16>(this.address(index));
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

  @inline address(index: u32): usize {
    assert(index < this.capacity);
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
      index = load<u16>(this.address(index));
    }
    assert(walked == this.freeCount, "pool free count disagrees with its list");
  }

  private pushFree(index: u32): void {
    store<u16>(this.address(index), <u16>this.freeHead);
    this.freeHead = index;
    this.freeCount += 1;
  }

  private setHeld(index: u32, held: bool): void {
    const byte = this.held + (index >> 3);
    const bit = <u8>1 << <u8>(index & 7);
    store<u8>(byte, held ? load<u8>(byte) | bit : load<u8>(byte) & ~bit);
  }
}
