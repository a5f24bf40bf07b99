// Commands whose responses wait for room on the NIC, in the order they finished: a response never overtakes an
// earlier one held back for room. A fixed ring over the SCSI target's task indexes: each command is in it at most once.
import { SCSI_TASKS_MAX } from "../scsi/tasks";

export class SendQueue {
  private readonly ring: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private head: u32 = 0;
  count: u32 = 0;

  push(t: u32): void {
    assert(this.count < SCSI_TASKS_MAX, "send queue overflow");
    assert(t < SCSI_TASKS_MAX, "send queue: command index out of range");
    unchecked(this.ring[(this.head + this.count) % SCSI_TASKS_MAX] = t);
    this.count += 1;
  }

  /** The oldest command waiting; the queue is not empty. */
  peek(): u32 {
    assert(this.count > 0, "send queue: peek when empty");
    return unchecked(this.ring[this.head]);
  }

  pop(): void {
    assert(this.count > 0, "send queue: pop when empty");
    this.head = (this.head + 1) % SCSI_TASKS_MAX;
    this.count -= 1;
  }
}
