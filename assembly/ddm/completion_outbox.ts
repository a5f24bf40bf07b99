// A DDM's BlockIoDone messages on their way to requesters. A completion goes straight to its requester's inbox; one
// the inbox refuses waits here, with its destination, and every completion after it waits behind it, so a requester
// sees its completions in the order they were made. flush() retries them, in order, at every run and tick.
import { Msg, MsgKind } from "../kernel/msg";
import { MsgQueue } from "../kernel/queue";
import { post } from "../kernel/scheduler";
import { BlockStatus } from "./block";
import { BlockStats } from "./block_stats";

export class CompletionOutbox {
  private readonly ring: MsgQueue;
  private readonly out: Msg = new Msg();
  private readonly retry: Msg = new Msg();

  /** `depth`: completions that can wait; `stats` counts every completion sent. Boot only. */
  constructor(depth: u32, private readonly stats: BlockStats) {
    this.ring = new MsgQueue(depth);
  }

  /** Completions waiting for a requester's inbox. */
  get count(): u32 { return this.ring.count; }

  /** BlockIoDone{status, sense, bytes, lba, tag} from task `from` to task `target`, behind any that wait. */
  send(from: u32, target: u32, status: BlockStatus, sense: u32, bytes: u32, lba: u64, tag: u64): void {
    this.stats.completed += 1;
    if (status != BlockStatus.Ok) this.stats.errors += 1;
    const msg = this.out.set(MsgKind.BlockIoDone, from, status, sense);
    msg.c = bytes;
    msg.d = lba;
    msg.e = tag;
    if (this.ring.count == 0 && post(target, msg)) return;
    msg.source = <u16>target; // held here with its destination
    // A requester may not hold more requests than the DDM can keep completions for (the DDM's outbox depth).
    this.ring.pushAssumeCapacity(msg);
  }

  /** Posts what waits, in order, from task `from`; what an inbox still refuses waits on. */
  flush(from: u32): void {
    const count = this.ring.count;
    for (let i: u32 = 0; i < count; i++) {
      const popped = this.ring.pop(this.retry);
      assert(popped, "completion outbox: count disagrees with its ring");
      const target = <u32>this.retry.source;
      this.retry.source = <u16>from;
      if (post(target, this.retry)) continue;
      this.retry.source = <u16>target;
      this.ring.pushAssumeCapacity(this.retry);
    }
  }
}
