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
const AT_COUNT: usize = 0; // the header's fields
const AT_OUTSTANDING: usize = 4;
const AT_FAILED: usize = 8;
const AT_BOARD: usize = 12;
const AT_WAITING: usize = 16;
const AT_CHUNK_ADDRESS: usize = 0; // a chunk's fields
const AT_CHUNK_LENGTH: usize = 8;
const AT_CHUNK_SLOT: usize = 12;
const AT_CHUNK_CLASS: usize = 14;
if (AT_WAITING + 4 > HEADER_BYTES || AT_CHUNK_CLASS + 1 > CHUNK_BYTES) ERROR("bounce: a field past its record");
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
    store<u32>(e, board, AT_BOARD);
    let done: u32 = 0;
    while (done < lengthBytes) {
      const count = load<u32>(e, AT_COUNT);
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
      store<u64>(c, address + done, AT_CHUNK_ADDRESS);
      store<u32>(c, piece, AT_CHUNK_LENGTH);
      store<u16>(c, <u16>slot, AT_CHUNK_SLOT);
      store<u8>(c, <u8>cls, AT_CHUNK_CLASS);
      store<u32>(e, count + 1, AT_COUNT);
      done += piece;
    }
    return BounceResult.Ok;
  }

  count(t: u32): u32 { return load<u32>(this.entry(t), AT_COUNT); }
  board(t: u32): u32 { return load<u32>(this.entry(t), AT_BOARD); }
  remoteAddress(t: u32, i: u32): u64 { return load<u64>(this.chunk(t, i), AT_CHUNK_ADDRESS); }
  lengthBytes(t: u32, i: u32): u32 { return load<u32>(this.chunk(t, i), AT_CHUNK_LENGTH); }
  /** Chunk i's buffer, in this processor's addresses (which are its bus addresses). */
  localAddress(t: u32, i: u32): usize {
    const c = this.chunk(t, i);
    return bufferPool(<u32>load<u8>(c, AT_CHUNK_CLASS)).address(<u32>load<u16>(c, AT_CHUNK_SLOT));
  }

  /** RDMAs now outstanding for t (set when they are posted, counted down as they complete). */
  outstanding(t: u32): u32 { return load<u32>(this.entry(t), AT_OUTSTANDING); }
  setOutstanding(t: u32, n: u32): void {
    store<u32>(this.entry(t), n, AT_OUTSTANDING);
    store<u32>(this.entry(t), 0, AT_FAILED);
  }
  /** One RDMA of t completed; true when it was the last. `ok` false marks the transaction failed. */
  completeOne(t: u32, ok: bool): bool {
    const e = this.entry(t);
    const n = load<u32>(e, AT_OUTSTANDING);
    if (n == 0) return false; // a completion for nothing outstanding: ignored
    if (!ok) {
      store<u32>(e, 1, AT_FAILED);
      this.rdmaFailedCount += 1;
    }
    store<u32>(e, n - 1, AT_OUTSTANDING);
    return n == 1;
  }
  failed(t: u32): bool { return load<u32>(this.entry(t), AT_FAILED) != 0; }
  /** The RDMAs of t wait for room (the RTA bounds those in flight): the port opcode, 0 when none wait. */
  waiting(t: u32): u32 { return load<u32>(this.entry(t), AT_WAITING); }
  setWaiting(t: u32, opcode: u32): void { store<u32>(this.entry(t), opcode, AT_WAITING); }

  /** Gives t's buffers back; t holds none after. */
  release(t: u32): void {
    const e = this.entry(t);
    const count = load<u32>(e, AT_COUNT);
    for (let i: u32 = 0; i < count; i++) {
      const c = this.chunk(t, i);
      bufferPool(<u32>load<u8>(c, AT_CHUNK_CLASS)).release(<u32>load<u16>(c, AT_CHUNK_SLOT));
    }
    memory.fill(e, 0, HEADER_BYTES);
  }
}
