// Bounce buffers: how the RTA moves a remote request's data when the cluster port cannot reach the requester's buffers
// through its window (revision 2: the fabric is carried by a network between processes, docs/cluster.md "Across
// processes"). The data goes through this board's own buffers instead: for a Write the RTA first RDMA READs the
// requester's segments into them, then hands the disk an SGL over them; for a Read the disk fills them, then the RTA
// RDMA WRITEs them into the requester's segments, and replies only once every WRITE completed (the data is in the
// requester's memory before the reply that says so). Each RDMA is a work request the fabric task posts and completes
// asynchronously (MsgKind.FabricRdma / FabricRdmaDone); the requester's port checks key and bounds on its side.
//
// A transaction's buffers are listed here as chunks (at most one buffer each, at most BOUNCE_CHUNKS_MAX): carved at
// boot only on a board whose port is revision 2, so a board with a window carves nothing. An empty pool is
// backpressure (the request is answered Busy and retried); a failed RDMA abandons the transaction without an answer
// (the requester retransmits and it starts again).
import { BUFFER_CLASS_COUNT, bufferClassBytes } from "../config";
import { bufferPool } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { POOL_NONE } from "../kernel/pool";
import { TRANSACTIONS_MAX } from "./transactions";

/** Chunks (one local buffer each) a transaction may need: a frame's data, at most 1 MiB, in 64 KiB buffers plus ends. */
export const BOUNCE_CHUNKS_MAX: u32 = 24;
// Per transaction: |0 chunk count u32|4 RDMAs outstanding u32|8 one failed u32|12 peer board u32|16 the port opcode
// of RDMAs waiting for room, 0 none u32|20 -|, then the chunks:
// |0 the requester's address u64|8 length u32|12 buffer slot u16|14 buffer class u8|15 -|.
const HEADER_BYTES: u32 = 24;
const CHUNK_BYTES: u32 = 16;
const ENTRY_BYTES: u32 = HEADER_BYTES + BOUNCE_CHUNKS_MAX * CHUNK_BYTES;

export enum BounceResult {
  Ok = 0,
  NoBuffer = 1, // a pool is empty: answer Busy, the requester retries
  TooManyChunks = 2, // more than BOUNCE_CHUNKS_MAX buffers: the frame asks for more than a frame carries
}

export class BounceTable {
  private readonly base: usize = carve(TRANSACTIONS_MAX * ENTRY_BYTES, 16);
  rdmaFailedCount: u64 = 0;
  noBufferCount: u64 = 0;

  constructor() { memory.fill(this.base, 0, TRANSACTIONS_MAX * ENTRY_BYTES); }

  @inline private entry(t: u32): usize { assert(t < TRANSACTIONS_MAX); return this.base + <usize>t * ENTRY_BYTES; }
  @inline private chunk(t: u32, i: u32): usize { return this.entry(t) + HEADER_BYTES + <usize>i * CHUNK_BYTES; }

  /** Adds buffers covering the requester's [address, address + lengthBytes) of board `board` to transaction t. */
  add(t: u32, board: u32, address: u64, lengthBytes: u32): BounceResult {
    const e = this.entry(t);
    store<u32>(e, board, 12);
    let done: u32 = 0;
    while (done < lengthBytes) {
      const count = load<u32>(e);
      if (count >= BOUNCE_CHUNKS_MAX) return BounceResult.TooManyChunks;
      const want = lengthBytes - done;
      let cls: u32 = 0;
      while (cls + 1 < BUFFER_CLASS_COUNT && bufferClassBytes(cls) < want) cls++;
      const piece = min(want, bufferClassBytes(cls));
      const slot = bufferPool(cls).acquire();
      if (slot == POOL_NONE) {
        this.noBufferCount += 1;
        return BounceResult.NoBuffer;
      }
      const c = this.chunk(t, count);
      store<u64>(c, address + done, 0);
      store<u32>(c, piece, 8);
      store<u16>(c, <u16>slot, 12);
      store<u8>(c, <u8>cls, 14);
      store<u32>(e, count + 1);
      done += piece;
    }
    return BounceResult.Ok;
  }

  count(t: u32): u32 { return load<u32>(this.entry(t)); }
  board(t: u32): u32 { return load<u32>(this.entry(t), 12); }
  remoteAddress(t: u32, i: u32): u64 { return load<u64>(this.chunk(t, i)); }
  lengthBytes(t: u32, i: u32): u32 { return load<u32>(this.chunk(t, i), 8); }
  /** Chunk i's buffer, in this processor's addresses (which are its bus addresses). */
  localAddress(t: u32, i: u32): usize {
    const c = this.chunk(t, i);
    return bufferPool(<u32>load<u8>(c, 14)).address(<u32>load<u16>(c, 12));
  }

  /** RDMAs now outstanding for t (set when they are posted, counted down as they complete). */
  outstanding(t: u32): u32 { return load<u32>(this.entry(t), 4); }
  setOutstanding(t: u32, n: u32): void {
    store<u32>(this.entry(t), n, 4);
    store<u32>(this.entry(t), 0, 8);
  }
  /** One RDMA of t completed; true when it was the last. `ok` false marks the transaction failed. */
  completeOne(t: u32, ok: bool): bool {
    const e = this.entry(t);
    const n = load<u32>(e, 4);
    if (n == 0) return false; // a completion for nothing outstanding: ignored
    if (!ok) {
      store<u32>(e, 1, 8);
      this.rdmaFailedCount += 1;
    }
    store<u32>(e, n - 1, 4);
    return n == 1;
  }
  failed(t: u32): bool { return load<u32>(this.entry(t), 8) != 0; }
  /** The RDMAs of t wait for room (the RTA bounds those in flight): the port opcode, 0 when none wait. */
  waiting(t: u32): u32 { return load<u32>(this.entry(t), 16); }
  setWaiting(t: u32, opcode: u32): void { store<u32>(this.entry(t), opcode, 16); }

  /** Gives t's buffers back; t holds none after. */
  release(t: u32): void {
    const e = this.entry(t);
    const count = load<u32>(e);
    for (let i: u32 = 0; i < count; i++) {
      const c = this.chunk(t, i);
      bufferPool(<u32>load<u8>(c, 14)).release(<u32>load<u16>(c, 12));
    }
    memory.fill(e, 0, HEADER_BYTES);
  }
}
