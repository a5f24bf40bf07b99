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
      if (load<u8>(e) != TransactionState.Free && load<u16>(e, 4) == <u16>source && load<u32>(e, 8) == transaction) return i;
    }
    return TRANSACTION_NONE;
  }

  /** A free entry for (source, transaction), or TRANSACTION_NONE when the store is full (backpressure: Busy). */
  open(source: u32, transaction: u32): u32 {
    for (let i: u32 = 0; i < TRANSACTIONS_MAX; i++) {
      const e = this.entry(i);
      if (load<u8>(e) != TransactionState.Free) continue;
      memory.fill(e, 0, ENTRY_BYTES);
      store<u8>(e, <u8>TransactionState.Queued);
      store<u16>(e, <u16>source, 4);
      store<u32>(e, transaction, 8);
      store<u16>(e, <u16>POOL_NONE, 6);
      store<u16>(e, <u16>POOL_NONE, 12);
      store<u16>(e, <u16>POOL_NONE, 40);
      this.usedCount += 1;
      if (i >= this.end) this.end = i + 1;
      return i;
    }
    return TRANSACTION_NONE;
  }

  close(index: u32): void {
    const e = this.entry(index);
    assert(load<u8>(e) != TransactionState.Free, "closing a free transaction");
    store<u8>(e, <u8>TransactionState.Free);
    this.usedCount -= 1;
    while (this.end > 0 && load<u8>(this.entry(this.end - 1)) == TransactionState.Free) this.end -= 1;
  }

  state(index: u32): TransactionState { return <TransactionState>load<u8>(this.entry(index)); }
  setState(index: u32, state: TransactionState): void { store<u8>(this.entry(index), <u8>state); }
  source(index: u32): u32 { return load<u16>(this.entry(index), 4); }
  setSource(index: u32, source: u32): void { store<u16>(this.entry(index), <u16>source, 4); }
  transaction(index: u32): u32 { return load<u32>(this.entry(index), 8); }
  sgl(index: u32): u32 { return load<u16>(this.entry(index), 6); }
  setSgl(index: u32, sgl: u32): void { store<u16>(this.entry(index), <u16>sgl, 6); }
  replySlot(index: u32): u32 { return load<u16>(this.entry(index), 12); }
  setReplySlot(index: u32, slot: u32): void { store<u16>(this.entry(index), <u16>slot, 12); }
  requestSlot(index: u32): u32 { return load<u16>(this.entry(index), 40); }
  setRequestSlot(index: u32, slot: u32): void { store<u16>(this.entry(index), <u16>slot, 40); }
  doneAtNs(index: u32): u64 { return load<u64>(this.entry(index), 32); }
  setDoneAtNs(index: u32, nowNs: u64): void { store<u64>(this.entry(index), nowNs, 32); }

  @inline private entry(index: u32): usize {
    assert(index < TRANSACTIONS_MAX, "transaction index out of range");
    return this.base + <usize>index * ENTRY_BYTES;
  }
}
