// Reply batches: short answers of one turn of the TTS task, copied into one large buffer per connection and posted as
// one NIC entry (one Sent event) at the end of the turn, or before the buffer would reach BATCH_BYTES_MAX. NBD's
// replies (nbd/server.ts) and iSCSI's one-PDU answers (a Data-In carrying its status, a SCSI Response without sense:
// iscsi/data_in.ts) go this way; longer answers (1 MiB reads) leave straight from the command's buffers.
// An open batch holds one reserved entry of the NIC's transmit ring (Nic.txReserve), so posting it never waits for
// room: the iSCSI transmit side posts a connection's batch before any other PDU of that connection, which keeps the
// connection's PDUs in the order they were built (StatSN order).
// One table per server, by NIC connection slot, as HeldReceive: an NBD slot is never an iSCSI connection.
import { BUFFER_CLASS_LARGE } from "../config";
import { bufferPool } from "../kernel/buffers";
import { POOL_NONE } from "../kernel/pool";
import { Nic, NIC_CONNECTIONS_MAX } from "./nic";
import { txId, TX_KIND_LARGE } from "./tx_id";

// An answer of at most this share of a large buffer is batched; longer ones leave from the command's buffers.
const BATCH_ANSWER_SHARE: u32 = 4;
// A batch is posted once the next answer would take it to this many bytes: a shorter entry leaves in the turn's one
// socket write; one of 32 KiB or more is written by the NIC's view path as a system call of its own
// (NIC_TX_VIEW_BYTES_MIN), measured slower for these batches (docs/nbd.md, "Reply batches").
const BATCH_BYTES_MAX: u32 = 32 << 10;

export class ReplyBatches {
  private readonly buffers: StaticArray<u32> = new StaticArray<u32>(NIC_CONNECTIONS_MAX); // large buffer, or POOL_NONE
  private readonly lengths: StaticArray<u32> = new StaticArray<u32>(NIC_CONNECTIONS_MAX); // bytes in it so far
  /** Connections holding a batch (flush() has nothing to do while 0). */
  openCount: u32 = 0;
  /** Answers copied into a batch, and batches posted (NIC entries), for the tests and the log. */
  answersBatched: u64 = 0;
  batchesPosted: u64 = 0;

  constructor(private readonly nic: Nic) {
    for (let c: u32 = 0; c < NIC_CONNECTIONS_MAX; c++) unchecked(this.buffers[c] = POOL_NONE);
  }

  /** Does connection `slot` hold a batch? */
  holds(slot: u32): bool {
    assert(slot < NIC_CONNECTIONS_MAX, "reply_batch: slot out of range");
    return unchecked(this.buffers[slot]) != POOL_NONE;
  }

  /**
   * Room for an answer of `bytes` at the end of `slot`'s batch (a full batch is posted first, a new one opened), or 0:
   * too long to batch, or no large buffer or transmit entry to be had; the answer then leaves the usual way. The
   * caller writes the answer there, then commit()s it.
   */
  space(slot: u32, bytes: u32): usize {
    const pool = bufferPool(BUFFER_CLASS_LARGE);
    if (bytes > pool.slotBytes / BATCH_ANSWER_SHARE) return 0;
    if (this.holds(slot) && unchecked(this.lengths[slot]) + bytes >= min(BATCH_BYTES_MAX, pool.slotBytes)) this.post(slot);
    if (!this.holds(slot)) {
      if (!this.nic.txReserve()) return 0;
      const buffer = pool.acquire();
      if (buffer == POOL_NONE) { // exhaustion: zero copy, as before batches (not counted in the pool: docs/iscsi.md, step 5)
        this.nic.txReservedUse();
        return 0;
      }
      unchecked(this.buffers[slot] = buffer);
      unchecked(this.lengths[slot] = 0);
      this.openCount += 1;
    }
    return pool.address(unchecked(this.buffers[slot])) + <usize>unchecked(this.lengths[slot]);
  }

  /** The answer written at space()'s address is `bytes` long. */
  commit(slot: u32, bytes: u32): void {
    assert(this.holds(slot), "reply_batch: commit into an open batch");
    unchecked(this.lengths[slot] += bytes);
    assert(unchecked(this.lengths[slot]) <= bufferPool(BUFFER_CLASS_LARGE).slotBytes, "reply_batch: within its buffer");
    this.answersBatched += 1;
  }

  /** Posts `slot`'s batch as one NIC entry on its reserved room (the buffer comes back on Sent, TX_KIND_LARGE). */
  post(slot: u32): void {
    if (!this.holds(slot)) return;
    const pool = bufferPool(BUFFER_CLASS_LARGE);
    const buffer = unchecked(this.buffers[slot]);
    const bytes = unchecked(this.lengths[slot]);
    this.nic.txReservedUse();
    if (bytes > 0) {
      this.nic.txPost(slot, <u64>pool.address(buffer), bytes, txId(TX_KIND_LARGE, slot, buffer), 0);
      this.batchesPosted += 1;
    } else pool.release(buffer);
    this.close(slot);
  }

  /** `slot`'s batch, unsent, goes back to the pool (the connection is gone). */
  drop(slot: u32): void {
    if (!this.holds(slot)) return;
    this.nic.txReservedUse();
    bufferPool(BUFFER_CLASS_LARGE).release(unchecked(this.buffers[slot]));
    this.close(slot);
  }

  /** The end of the TTS task's turn: every open batch is posted. */
  flush(): void {
    if (this.openCount == 0) return;
    for (let c: u32 = 0; c < NIC_CONNECTIONS_MAX && this.openCount > 0; c++) this.post(c);
  }

  private close(slot: u32): void {
    unchecked(this.buffers[slot] = POOL_NONE);
    unchecked(this.lengths[slot] = 0);
    this.openCount -= 1;
  }
}
