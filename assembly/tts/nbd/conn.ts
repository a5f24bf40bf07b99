// One NBD client connection (a NIC slot on the NBD portal): where its byte stream stands and what it negotiated (its
// reply batch is in the server's ReplyBatches, ../reply_batch.ts, by slot). The receive buffers it holds are in the
// server's HeldReceive (../held_receive.ts, shared with iSCSI's backpressure). NBD has no flow control of its own: a
// connection that cannot take its next bytes yet (no task record free, a write's data before the SCSI target has
// buffers for it) stops reading and keeps the NIC's buffers it has been given, in order, until it can go on; its TCP
// window then fills and the client waits.
import { carve } from "../../kernel/carve";
import { POOL_NONE } from "../../kernel/pool";
import { SCSI_TASK_NONE } from "../../scsi/interface";
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

  slot: u32 = 0; // the NIC's slot, while open

  open(slot: u32, page: u32): void {
    assert(this.phase == NbdPhase.Free, "nbd: a connection opened twice");
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
  }
}
