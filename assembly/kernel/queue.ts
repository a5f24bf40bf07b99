// A fixed ring of message records, copied by value. Full is a status, never a trap: push() answers false.
import { MSG_BYTES } from "../config";
import { carve } from "./carve";
import { Msg } from "./msg";

export class MsgQueue {
  private readonly base: usize;
  private head: u32 = 0; // index of the oldest record
  count: u32 = 0;
  countMax: u32 = 0; // high-water mark, for the stats
  pushFailedCount: u32 = 0; // pushes refused because the ring was full

  constructor(readonly capacity: u32) {
    assert(capacity > 0);
    this.base = carve(capacity * MSG_BYTES, 16);
  }

  /** Copies `msg` in; false when full (the caller keeps it and retries: backpressure). */
  push(msg: Msg): bool {
    if (this.count == this.capacity) {
      this.pushFailedCount += 1;
      return false;
    }
    this.pushAssumeCapacity(msg);
    return true;
  }

  /** Copies `msg` in where the caller has proved there is room. */
  pushAssumeCapacity(msg: Msg): void {
    assert(this.count < this.capacity, "queue full");
    const tail = (this.head + this.count) % this.capacity;
    memory.copy(this.slot(tail), changetype<usize>(msg), MSG_BYTES);
    this.count += 1;
    if (this.count > this.countMax) this.countMax = this.count;
  }

  /** Copies the oldest record into `into` and removes it; false when empty. */
  pop(into: Msg): bool {
    if (this.count == 0) return false;
    memory.copy(changetype<usize>(into), this.slot(this.head), MSG_BYTES);
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
    return true;
  }

  free(): u32 { return this.capacity - this.count; }

  @inline private slot(index: u32): usize {
    assert(index < this.capacity);
    return this.base + <usize>index * MSG_BYTES;
  }
}
