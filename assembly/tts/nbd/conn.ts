// One NBD client connection (a NIC slot on the NBD portal): where its byte stream stands, what it negotiated, and the
// receive buffers it holds. NBD has no flow control of its own: a connection that cannot take its next bytes yet
// (no task record free, a write's data before the SCSI target has buffers for it) stops reading and keeps the NIC's
// buffers it has been given, in order, until it can go on; its TCP window then fills and the client waits.
import { carve } from "../../kernel/carve";
import { POOL_NONE } from "../../kernel/pool";
import { SCSI_TASK_NONE } from "../../scsi/interface";
import { RXQ_ENTRIES } from "../nic";
import { EXPORT_NONE } from "./exports";

export const NBD_CONNECTIONS_MAX: u32 = 16; // NBD connections at once (of the NIC's 64 slots): more are refused
export const NIC_SLOTS: u32 = 64; // the NIC's connection slots, which the NBD server maps to its connections
export const HEADER_BYTES_MAX: u32 = 32; // the longest fixed header read from a stream (a request, 28 bytes)

// Where the connection's incoming stream stands.
export enum NbdPhase {
  Free = 0, // not an NBD connection
  ClientFlags = 1, // greeting sent: the client's 32-bit flags come next
  OptionHeader = 2, // negotiation: an option's 16-byte header comes next
  OptionData = 3, // an option's data is arriving (into the option page, or discarded when too long)
  Request = 4, // transmission: a request's 28-byte header comes next
  WriteData = 5, // a write's payload is arriving: into its task's buffers once the SCSI target has them
  Discard = 6, // a refused write's payload is arriving: dropped
  Closing = 7, // closed by us; its Closed event ends it
}

// Why a connection stopped reading.
export enum NbdWait {
  None = 0, // reading
  Task = 1, // a request needs a task record and none is free
  Page = 2, // an answer needs a page buffer and none is free
  Room = 3, // an answer needs room on the NIC
  DataOut = 4, // a write's data waits for the SCSI target's buffers (ScsiDataOut)
  Nexus = 5, // the NBD nexus is not identified yet
}

export class NbdConn {
  phase: NbdPhase = NbdPhase.Free;
  wait: NbdWait = NbdWait.None;
  readonly header: usize = carve(HEADER_BYTES_MAX, 8);
  headerHave: u32 = 0; // bytes of the current header already in
  noZeroes: bool = false; // the client set NBD_FLAG_C_NO_ZEROES
  structured: bool = false; // NBD_OPT_STRUCTURED_REPLY acknowledged
  metaAllocation: bool = false; // base:allocation selected (NBD_OPT_SET_META_CONTEXT)
  exportIndex: u32 = EXPORT_NONE; // chosen by NBD_OPT_GO or NBD_OPT_EXPORT_NAME
  optionPage: u32 = POOL_NONE; // the page an option's data lands in (held while the connection is open)
  option: u32 = 0; // the option whose data is arriving
  optionBytes: u32 = 0; // its length
  dataLeft: u64 = 0; // OptionData, WriteData, Discard: bytes still to come
  dataDone: u32 = 0; // OptionData, WriteData: bytes already in
  writeTask: u32 = SCSI_TASK_NONE; // WriteData: the task the payload goes to
  writeWanted: u32 = 0; // WriteData: bytes the SCSI target asked for (0 until ScsiDataOut)
  requests: u32 = 0; // requests taken (counters for the connection's last log line)
  errors: u32 = 0; // error replies sent
  // The receive buffers it holds, oldest first (entries of HeldBuffers); the oldest is read from heldOffset on.
  heldFirst: u32 = HELD_NONE;
  heldLast: u32 = HELD_NONE;
  heldCount: u32 = 0;
  heldOffset: u32 = 0;

  // Short replies of this turn, copied one after another into a large buffer that goes out as one NIC entry
  // (server.ts, "Replies"): the buffer (POOL_NONE: none yet) and the bytes in it.
  batch: u32 = POOL_NONE;
  batchBytes: u32 = 0;
  closeAfterBatch: bool = false; // the close waits for the batch to be posted (no room on the NIC when it was due)

  slot: u32 = 0; // the NIC's slot, while open

  open(slot: u32, page: u32): void {
    assert(this.phase == NbdPhase.Free, "nbd: a connection opened twice");
    assert(this.heldCount == 0, "nbd: a free connection holds no buffers");
    this.slot = slot;
    this.phase = NbdPhase.ClientFlags;
    this.wait = NbdWait.None;
    this.headerHave = 0;
    this.noZeroes = false;
    this.structured = false;
    this.metaAllocation = false;
    this.exportIndex = EXPORT_NONE;
    this.optionPage = page;
    this.dataLeft = 0;
    this.dataDone = 0;
    this.writeTask = SCSI_TASK_NONE;
    this.writeWanted = 0;
    this.requests = 0;
    this.errors = 0;
    this.heldOffset = 0;
    assert(this.batch == POOL_NONE, "nbd: a free connection holds no reply batch");
    this.batchBytes = 0;
    this.closeAfterBatch = false;
  }
}

export const HELD_NONE: u32 = 0xffff_ffff;

// The receive buffers the NBD connections hold, as lists through one table: the NIC has at most RXQ_ENTRIES buffers
// posted, so no more can be held at once, whichever connections hold them.
export class HeldBuffers {
  private readonly ids: StaticArray<u16> = new StaticArray<u16>(RXQ_ENTRIES);
  private readonly lengths: StaticArray<u32> = new StaticArray<u32>(RXQ_ENTRIES);
  private readonly next: StaticArray<u16> = new StaticArray<u16>(RXQ_ENTRIES);
  private free: u32 = 0; // the first free entry, threaded through next; RXQ_ENTRIES: none

  constructor() {
    for (let i: u32 = 0; i < RXQ_ENTRIES; i++) unchecked(this.next[i] = <u16>(i + 1));
  }

  /** `conn` keeps receive buffer `id` after the others it holds; false when every entry is taken (a NIC that lies). */
  hold(conn: NbdConn, id: u32, lengthBytes: u32): bool {
    if (this.free >= RXQ_ENTRIES || id > 0xffff) return false;
    const e = this.free;
    this.free = <u32>unchecked(this.next[e]);
    unchecked(this.ids[e] = <u16>id);
    unchecked(this.lengths[e] = lengthBytes);
    unchecked(this.next[e] = <u16>RXQ_ENTRIES);
    if (conn.heldLast != HELD_NONE) unchecked(this.next[conn.heldLast] = <u16>e);
    else conn.heldFirst = e;
    conn.heldLast = e;
    conn.heldCount += 1;
    return true;
  }

  oldestId(conn: NbdConn): u32 { assert(conn.heldCount > 0, "nbd: no buffer held"); return unchecked(this.ids[conn.heldFirst]); }
  oldestLength(conn: NbdConn): u32 { assert(conn.heldCount > 0, "nbd: no buffer held"); return unchecked(this.lengths[conn.heldFirst]); }

  /** The oldest buffer `conn` holds is read to its end: it goes (the caller gives it back to the NIC). */
  dropOldest(conn: NbdConn): void {
    assert(conn.heldCount > 0, "nbd: no buffer held");
    const e = conn.heldFirst;
    const after = <u32>unchecked(this.next[e]);
    conn.heldFirst = after < RXQ_ENTRIES ? after : HELD_NONE;
    if (conn.heldFirst == HELD_NONE) conn.heldLast = HELD_NONE;
    conn.heldCount -= 1;
    conn.heldOffset = 0;
    unchecked(this.next[e] = <u16>this.free);
    this.free = e;
  }
}
