// A DDM's request slots: a fixed table of requests, made at boot, and a free list threaded over the indexes of the
// free ones. An empty pool is backpressure (acquire() answers REQUEST_NONE and the BlockIo is answered Busy); a slot
// released twice is a programmer error. A DDM may keep slots past countMax for itself (never on the free list).
import { BlockRequest, REQUEST_NONE, RequestState } from "./block_request";
import { SGL_NONE } from "../kernel/sgl";

export class RequestPool<T extends BlockRequest> {
  private readonly slots: StaticArray<T | null>;
  private readonly free: StaticArray<u16>;
  freeCount: u32 = 0;

  /** `countMax` slots for BlockIo requests and `keptCount` more the DDM keeps for itself. Boot only. */
  constructor(readonly countMax: u32, keptCount: u32) {
    assert(countMax > 0 && countMax + keptCount < REQUEST_NONE, "request pool: indexes are u16 with 0xFFFF for none");
    this.slots = new StaticArray<T | null>(countMax + keptCount);
    this.free = new StaticArray<u16>(countMax);
  }

  /** Boot: puts `request` in slot `r`. Once every slot is set, open() frees the pooled ones. */
  slotSet(r: u32, request: T): void {
    assert(r < <u32>this.slots.length, "request pool: slot out of range");
    unchecked(this.slots[r] = request);
  }

  /** Boot, after slotSet for every slot: every pooled slot is free, slot 0 the first acquired. */
  open(): void {
    for (let r: i32 = <i32>this.countMax - 1; r >= 0; r--) this.release(<u32>r);
    assert(this.freeCount == this.countMax, "request pool: not every slot was free at open");
  }

  /** The request in slot `r` (a pooled or a kept one). */
  at(r: u32): T {
    assert(r < <u32>this.slots.length, "request pool: index out of range");
    return unchecked(this.slots[r])!;
  }

  /** A free slot's index, or REQUEST_NONE when every slot is taken (backpressure). */
  acquire(): u32 {
    if (this.freeCount == 0) return REQUEST_NONE;
    this.freeCount -= 1;
    const r = <u32>unchecked(this.free[this.freeCount]);
    assert(this.at(r).state == RequestState.Free, "request pool: free request in use");
    return r;
  }

  /** Puts slot `r` back on the free list; its requester's SGL is forgotten, never released here. */
  release(r: u32): void {
    assert(r < this.countMax, "request pool: released a slot outside the pool");
    assert(this.freeCount < this.countMax, "request pool: request released twice");
    const req = this.at(r);
    req.state = RequestState.Free;
    req.sgl = SGL_NONE;
    unchecked(this.free[this.freeCount] = <u16>r);
    this.freeCount += 1;
  }
}
