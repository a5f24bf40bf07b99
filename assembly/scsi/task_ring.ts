// A FIFO of ScsiTask indexes, carved at boot: the commands parked for one resource, in arrival order.
// A task is in at most one ring at a time (its record says which), so a ring of SCSI_TASKS_MAX never overflows.
import { carve } from "../kernel/carve";

export class TaskRing {
  private readonly base: usize;
  private head: u32 = 0;
  count: u32 = 0;

  constructor(readonly capacity: u32) {
    assert(capacity > 0 && capacity <= 0xffff);
    this.base = carve(capacity * 2, 16);
  }

  push(t: u32): void {
    assert(this.count < this.capacity, "task ring full");
    store<u16>(this.slot((this.head + this.count) % this.capacity), <u16>t);
    this.count += 1;
  }

  /** The oldest task; the ring must not be empty. */
  peek(): u32 {
    assert(this.count > 0, "task ring empty");
    return load<u16>(this.slot(this.head));
  }

  pop(): u32 {
    const t = this.peek();
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
    return t;
  }

  /** The task at position `i` from the oldest. */
  at(i: u32): u32 {
    assert(i < this.count);
    return load<u16>(this.slot((this.head + i) % this.capacity));
  }

  /** Takes `t` out wherever it is, keeping the others' order; false if it is not there. */
  remove(t: u32): bool {
    let found = false;
    for (let i: u32 = 0; i < this.count; i++) {
      const at = (this.head + i) % this.capacity;
      if (!found && <u32>load<u16>(this.slot(at)) == t) found = true;
      if (found && i + 1 < this.count) store<u16>(this.slot(at), load<u16>(this.slot((at + 1) % this.capacity)));
    }
    if (found) this.count -= 1;
    return found;
  }

  @inline private slot(index: u32): usize {
    assert(index < this.capacity);
    return this.base + <usize>index * 2;
  }
}
