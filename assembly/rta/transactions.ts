// The RTA's transaction store: one entry per request frame it accepted, kept after completion (with the reply as
// the residual message) until the requester acknowledges it, so a retransmitted request is answered again instead
// of being executed twice, and a duplicated one is ignored while it is still in progress.
import { carve } from "../kernel/carve";
import { POOL_NONE } from "../kernel/pool";

export const TRANSACTIONS_MAX: u32 = 256;
export const TRANSACTION_NONE: u32 = 0xffff_ffff;

export enum TransactionState {
  Free = 0, // unused
  Queued = 1, // accepted; its BlockIo not yet taken by the DDM (inbox full)
  InProgress = 2, // the DDM has it
  Done = 3, // replied; the reply frame is kept until acknowledged or retained long enough
}

// Entry: |0 state u8|1 attempts u8|2 disk u16|4 source u16|6 sgl u16|8 transaction u32|12 replySlot u16|14 op u16|
//        |16 lba u64|24 blockCount u32|28 -|32 doneAtNs u64|40 requestSlot u16|42..48 -|
const ENTRY_BYTES: u32 = 48;
// The entry's fields, named as drawn above.
const AT_STATE: usize = 0;
const AT_ATTEMPTS: usize = 1;
const AT_DISK: usize = 2;
const AT_SOURCE: usize = 4;
const AT_SGL: usize = 6;
const AT_TRANSACTION: usize = 8;
const AT_REPLY_SLOT: usize = 12;
const AT_OP: usize = 14;
const AT_LBA: usize = 16;
const AT_BLOCK_COUNT: usize = 24;
const AT_DONE_AT_NS: usize = 32;
const AT_REQUEST_SLOT: usize = 40;
const ENTRY_UNUSED_BYTES: usize = 6; // |42-47|
if (AT_REQUEST_SLOT + 2 + ENTRY_UNUSED_BYTES != ENTRY_BYTES) ERROR("rta transaction entry: the last field and the unused tail end the entry");

export class TransactionStore {
  private readonly base: usize = carve(TRANSACTIONS_MAX * ENTRY_BYTES, 16);
  usedCount: u32 = 0;
  /** Every entry at or above this index is Free: scans stop here. Entries are taken lowest first, so it stays near
   * the number open, not TRANSACTIONS_MAX. */
  end: u32 = 0;

  /** The entry holding (source, transaction), or TRANSACTION_NONE. */
  find(source: u32, transaction: u32): u32 {
    for (let i: u32 = 0; i < this.end; i++) {
      const e = this.entry(i);
      if (load<u8>(e, AT_STATE) != TransactionState.Free && load<u16>(e, AT_SOURCE) == <u16>source && load<u32>(e, AT_TRANSACTION) == transaction) return i;
    }
    return TRANSACTION_NONE;
  }

  /** A free entry for (source, transaction), or TRANSACTION_NONE when the store is full (backpressure: Busy). */
  open(source: u32, transaction: u32): u32 {
    for (let i: u32 = 0; i < TRANSACTIONS_MAX; i++) {
      const e = this.entry(i);
      if (load<u8>(e, AT_STATE) != TransactionState.Free) continue;
      memory.fill(e, 0, ENTRY_BYTES);
      store<u8>(e, <u8>TransactionState.Queued, AT_STATE);
      store<u16>(e, <u16>source, AT_SOURCE);
      store<u32>(e, transaction, AT_TRANSACTION);
      store<u16>(e, <u16>POOL_NONE, AT_SGL);
      store<u16>(e, <u16>POOL_NONE, AT_REPLY_SLOT);
      store<u16>(e, <u16>POOL_NONE, AT_REQUEST_SLOT);
      this.usedCount += 1;
      if (i >= this.end) this.end = i + 1;
      return i;
    }
    return TRANSACTION_NONE;
  }

  close(index: u32): void {
    const e = this.entry(index);
    assert(load<u8>(e, AT_STATE) != TransactionState.Free, "closing a free transaction");
    store<u8>(e, <u8>TransactionState.Free, AT_STATE);
    this.usedCount -= 1;
    while (this.end > 0 && load<u8>(this.entry(this.end - 1), AT_STATE) == TransactionState.Free) this.end -= 1;
  }

  state(index: u32): TransactionState { return <TransactionState>load<u8>(this.entry(index), AT_STATE); }
  setState(index: u32, state: TransactionState): void { store<u8>(this.entry(index), <u8>state, AT_STATE); }
  source(index: u32): u32 { return load<u16>(this.entry(index), AT_SOURCE); }
  setSource(index: u32, source: u32): void { store<u16>(this.entry(index), <u16>source, AT_SOURCE); }
  transaction(index: u32): u32 { return load<u32>(this.entry(index), AT_TRANSACTION); }
  sgl(index: u32): u32 { return load<u16>(this.entry(index), AT_SGL); }
  setSgl(index: u32, sgl: u32): void { store<u16>(this.entry(index), <u16>sgl, AT_SGL); }
  replySlot(index: u32): u32 { return load<u16>(this.entry(index), AT_REPLY_SLOT); }
  setReplySlot(index: u32, slot: u32): void { store<u16>(this.entry(index), <u16>slot, AT_REPLY_SLOT); }
  requestSlot(index: u32): u32 { return load<u16>(this.entry(index), AT_REQUEST_SLOT); }
  setRequestSlot(index: u32, slot: u32): void { store<u16>(this.entry(index), <u16>slot, AT_REQUEST_SLOT); }
  doneAtNs(index: u32): u64 { return load<u64>(this.entry(index), AT_DONE_AT_NS); }
  setDoneAtNs(index: u32, nowNs: u64): void { store<u64>(this.entry(index), nowNs, AT_DONE_AT_NS); }

  @inline private entry(index: u32): usize {
    assert(index < TRANSACTIONS_MAX, "transaction index out of range");
    return this.base + <usize>index * ENTRY_BYTES;
  }
}
