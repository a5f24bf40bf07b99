// One BlockIo a DDM has accepted, from its request slot's acquire to its BlockIoDone: what every DDM keeps of it.
// A DDM's own request extends it with what its controller needs (a command identifier, a descriptor chain).
import { Msg } from "../kernel/msg";
import { SGL_NONE } from "../kernel/sgl";
import { blockIoBlockCount, blockIoDisk, blockIoLba, blockIoOp, blockIoSgl, blockIoTag, blockOpIsTransfer } from "./block";

export const REQUEST_NONE: u32 = 0xffff; // no request: the end of a queue, a free list that is empty

export enum RequestState {
  Free = 0, // on the free list (a slot kept outside it: idle)
  Queued = 1, // accepted; waits for the controller to be ready or for room on its queue
  InFlight = 2, // sent to the controller: a completion, a reset or a give-up ends it, exactly once
}

export class BlockRequest {
  state: RequestState = RequestState.Free;
  op: u32 = 0; // BlockOp, or a DDM's own code on a slot it keeps for itself
  disk: u32 = 0;
  blockCount: u32 = 0;
  sgl: u32 = SGL_NONE; // the requester's; never released by the DDM
  lba: u64 = 0;
  tag: u64 = 0;
  source: u32 = 0; // the requester's task index
  validated: bool = false; // checked against the disk table (done once discovery is complete)
  dataBytes: u32 = 0; // bytes the command transfers
  deadlineNs: u64 = 0;
  queueNext: u32 = REQUEST_NONE; // the next in its RequestQueue

  /** `area`: this slot's memory for what its controller reads and writes (carved or reserved at boot). */
  constructor(readonly area: usize) {}

  /** Fills the request from a BlockIo message; `validated` says whether the DDM has checked it already. */
  take(msg: Msg, validated: bool): void {
    this.op = blockIoOp(msg);
    this.disk = blockIoDisk(msg);
    this.blockCount = blockIoBlockCount(msg);
    this.sgl = blockIoSgl(msg);
    this.lba = blockIoLba(msg);
    this.tag = blockIoTag(msg);
    this.source = <u32>msg.source;
    this.validated = validated;
  }

  isTransfer(): bool { return blockOpIsTransfer(this.op); }
}
