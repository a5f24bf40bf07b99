// The DDMs' upper interface: block read, write, flush and unmap on (controller, disk), independent of the I/O
// format below (SCSI CDBs today, ATA or NVMe later). Requests and completions travel as kernel messages.
//
// BlockIo (to the DDM's task), fields of Msg:
//   a: op | disk << 8        op: BlockOp; disk: index of the disk on that controller (LUN order)
//   b: blockCount            0 for Flush
//   c: sgl                   an SGL (kernel/sgl.ts) over the data buffers, in this processor's bus addresses;
//                            SGL_NONE for Flush; for Unmap, none needed (SGL_NONE)
//   d: lba
//   e: tag                   the requester's, returned unchanged
//   source: the requester's task index (the completion goes there)
// BlockIoDone (to the requester): a: BlockStatus, b: sense key << 16 | asc << 8 | ascq (0 unless a SCSI error),
//   c: bytes transferred, d: lba (echoed), e: tag. The SGL stays the requester's: the DDM never releases it.
import { Msg } from "../kernel/msg";

export enum BlockOp {
  Read = 1,
  Write = 2,
  Flush = 3, // write back the controller's and the disk's caches
  Unmap = 4, // deallocate [lba, lba + blockCount)
  WriteFua = 5, // write through to the medium before completing
}

export enum BlockStatus {
  Ok = 0,
  MediumError = 1, // the disk could not read or write the medium
  IllegalRequest = 2, // the disk refused the request (range, field); see sense
  DeviceError = 3, // transport or controller failure: the controller is being reset
  Timeout = 4, // no completion in time: the controller was reset
  Busy = 5, // no request slot free: retry later (backpressure)
  Aborted = 6, // failed by a controller reset while in flight
  NoDisk = 7, // no such disk on this controller
  Changed = 8, // the disk powered on since its last command (hot-inserted, power-cycled): it may be another disk
}

// BlockIo's fields, as the table above lays them out: DDMs read them only through these.
@inline export function blockIoOp(msg: Msg): u32 { return msg.a & 0xff; }
@inline export function blockIoDisk(msg: Msg): u32 { return msg.a >> 8; }
@inline export function blockIoBlockCount(msg: Msg): u32 { return msg.b; }
@inline export function blockIoSgl(msg: Msg): u32 { return msg.c; }
@inline export function blockIoLba(msg: Msg): u64 { return msg.d; }
@inline export function blockIoTag(msg: Msg): u64 { return msg.e; }

/** Whether `op` (a BlockOp) moves data through an SGL. */
@inline export function blockOpIsTransfer(op: u32): bool {
  return op == BlockOp.Read || op == BlockOp.Write || op == BlockOp.WriteFua;
}

/** What a DDM knows of one disk, for the RTA's device profile. */
export class DiskInfo {
  controller: u32 = 0; // index into the DDM's controllers on this processor
  disk: u32 = 0; // index on its controller (LUN)
  blockCount: u64 = 0;
  blockSizeBytes: u32 = 0;
  physicalExponent: u32 = 0; // a physical block is 2^physicalExponent logical blocks (SBC-3 LBPPBE)

  /** Whether [lba, lba + blockCount) lies on the disk (blockCount may be 0). */
  holds(lba: u64, blockCount: u32): bool {
    return lba < this.blockCount && <u64>blockCount <= this.blockCount - lba;
  }
}
