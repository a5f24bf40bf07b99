// Data-Out bookkeeping per SCSI command (RFC 7143, "Data Transfer", R2T and FirstBurstLength): the unsolicited part
// of the first burst (immediate data and Data-Out with TTT 0xffffffff), then the R2Ts that solicit the rest, each with
// its own R2TSN, Target Transfer Tag and [offset, end) window, and the Data-Out sequence answering the oldest.
// With DataPDUInOrder and DataSequenceInOrder both Yes, each PDU continues that sequence exactly; the checks here
// only compute, the iSCSI task decides what a failed one means.
import { SCSI_TASKS_MAX } from "../../scsi/tasks";

// R2Ts in flight per task: our MaxOutstandingR2T. Each has its own R2TSN, TTT and [offset, end) window; with
// DataSequenceInOrder=Yes the initiator answers them in order, so the oldest is the one being received.
export const R2T_SLOTS: u32 = 4;

// An R2T's Target Transfer Tag: |31 0|30..16 R2TSN mod 2^15|15..0 task|, never 0xffffffff (reserved).
@inline export function ttt(t: u32, r2tSn: u32): u32 { return ((r2tSn & 0x7fff) << 16) | t; }

export class DataOutTable {
  private readonly total: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // Data-Out bytes wanted
  private readonly received: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly nextR2t: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next offset to ask for
  private readonly r2tSn: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next R2TSN
  private readonly r2tOldest: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // R2TSN being answered
  private readonly dataSn: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next DataSN in its sequence
  private readonly nextOffset: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next offset in it
  private readonly r2tEnd: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX * R2T_SLOTS); // [t * R2T_SLOTS + R2TSN % R2T_SLOTS]
  private readonly r2tOffset: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX * R2T_SLOTS);
  // Unsolicited data (RFC 7143, FirstBurstLength).
  private readonly firstBurst: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // unsolicited bytes allowed
  private readonly unsolicited: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // unsolicited bytes received
  private readonly unsolicitedOpen: StaticArray<bool> = new StaticArray<bool>(SCSI_TASKS_MAX); // more may come
  private readonly unsolicitedDataSn: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);

  totalBytes(t: u32): u32 { return this.total[t]; }
  receivedBytes(t: u32): u32 { return this.received[t]; }
  receivedAdd(t: u32, lengthBytes: u32): void { this.received[t] += lengthBytes; }
  allReceived(t: u32): bool { return this.received[t] >= this.total[t]; }
  /** True while R2Ts are left to send (the whole transfer has not been asked for). */
  r2tLeft(t: u32): bool { return this.nextR2t[t] < this.total[t]; }
  firstBurstBytes(t: u32): u32 { return this.firstBurst[t]; }
  unsolicitedBytes(t: u32): u32 { return this.unsolicited[t]; }
  unsolicitedMore(t: u32): bool { return this.unsolicitedOpen[t]; }
  unsolicitedClose(t: u32): void { this.unsolicitedOpen[t] = false; }

  // A new command: `immediateBytes` came with it; `more` says unsolicited Data-Out follow (F=0), up to `firstBurst`.
  commandBegin(t: u32, firstBurst: u32, immediateBytes: u32, more: bool): void {
    this.firstBurst[t] = firstBurst;
    this.unsolicited[t] = immediateBytes;
    this.unsolicitedOpen[t] = more;
    this.unsolicitedDataSn[t] = 0;
    this.total[t] = 0;
  }

  // The SCSI target wants `bytes`; the first `staged` of them are in already. R2Ts count from 0.
  transferBegin(t: u32, bytes: u32, staged: u32): void {
    this.total[t] = bytes;
    this.r2tSn[t] = 0;
    this.r2tOldest[t] = 0;
    this.received[t] = staged;
    this.nextR2t[t] = staged;
  }

  // The unsolicited data is all in: R2Ts ask from the end of what came unsolicited, within the transfer.
  unsolicitedEnded(t: u32): void {
    this.nextR2t[t] = max(this.nextR2t[t], min(this.unsolicited[t], this.total[t]));
  }

  // ---- R2Ts ----

  /** True when another R2T may go out: fewer than `outstandingMax` unanswered, and bytes left to ask for. */
  r2tWanted(t: u32, outstandingMax: u32): bool {
    return this.r2tSn[t] - this.r2tOldest[t] < outstandingMax && this.nextR2t[t] < this.total[t];
  }
  /** The next R2T's R2TSN and offset. */
  r2tNextSn(t: u32): u32 { return this.r2tSn[t]; }
  r2tNextOffset(t: u32): u32 { return this.nextR2t[t]; }

  // The next R2T went out asking for `desiredBytes`: its window is recorded; if it is the oldest, its sequence starts.
  r2tSent(t: u32, desiredBytes: u32): void {
    const r2tSn = this.r2tSn[t];
    const offset = this.nextR2t[t];
    const ring = t * R2T_SLOTS + r2tSn % R2T_SLOTS;
    this.r2tOffset[ring] = offset;
    this.r2tEnd[ring] = offset + desiredBytes;
    if (r2tSn == this.r2tOldest[t]) this.sequenceBegin(t, offset);
    this.r2tSn[t] = r2tSn + 1;
    this.nextR2t[t] = offset + desiredBytes;
  }

  // The oldest outstanding R2T's Data-Out sequence starts (RFC 7143, DataSN: each sequence counts from 0).
  private sequenceBegin(t: u32, offset: u32): void {
    this.dataSn[t] = 0;
    this.nextOffset[t] = offset;
  }

  private oldestEnd(t: u32): u32 { return this.r2tEnd[t * R2T_SLOTS + this.r2tOldest[t] % R2T_SLOTS]; }

  // A solicited Data-Out names the oldest outstanding R2T by its TTT and stays within that R2T's window.
  solicitedMatches(t: u32, tag: u32, offset: u32, lengthBytes: u32): bool {
    const oldest = this.r2tOldest[t];
    if (oldest == this.r2tSn[t] || tag != ttt(t, oldest)) return false;
    return <u64>offset + lengthBytes <= <u64>this.oldestEnd(t); // beyond what we solicited: no
  }

  // The Data-Out continues the oldest R2T's sequence exactly (DataSN, offset), and F marks its last PDU.
  solicitedInSequence(t: u32, dataSn: u32, offset: u32, lengthBytes: u32, final: bool): bool {
    if (dataSn != this.dataSn[t] || offset != this.nextOffset[t]) return false;
    return final == (this.nextOffset[t] + lengthBytes == this.oldestEnd(t));
  }

  // An in-sequence Data-Out of `lengthBytes` came: the sequence moves on; its last PDU answers the oldest R2T and
  // the next one's sequence starts.
  solicitedReceived(t: u32, lengthBytes: u32): void {
    const oldest = this.r2tOldest[t];
    const end = this.oldestEnd(t);
    const next = this.nextOffset[t] + lengthBytes;
    this.dataSn[t] += 1;
    this.nextOffset[t] = next;
    this.received[t] += lengthBytes;
    if (next != end) return;
    this.r2tOldest[t] = oldest + 1;
    if (oldest + 1 != this.r2tSn[t]) this.sequenceBegin(t, this.r2tOffset[t * R2T_SLOTS + (oldest + 1) % R2T_SLOTS]);
  }

  // ---- Unsolicited Data-Out ----

  // Data-Out with TTT 0xffffffff: in order from where the immediate data ended, DataSN from 0, F on its last PDU,
  // and never past FirstBurstLength (RFC 7143, FirstBurstLength).
  unsolicitedInSequence(t: u32, dataSn: u32, offset: u32, lengthBytes: u32, final: bool): bool {
    const firstBurst = this.firstBurst[t];
    const next = offset + lengthBytes;
    return dataSn == this.unsolicitedDataSn[t] && offset == this.unsolicited[t] && <u64>offset + lengthBytes <= <u64>firstBurst
      && (final || next != firstBurst);
  }

  // An in-sequence unsolicited Data-Out came; its F bit ends the unsolicited data.
  unsolicitedReceived(t: u32, lengthBytes: u32, final: bool): void {
    this.unsolicitedDataSn[t] += 1;
    this.unsolicited[t] += lengthBytes;
    if (final) this.unsolicitedOpen[t] = false;
  }

  // Where an unsolicited Data-Out's data may go: in sequence and within the first burst.
  unsolicitedFits(t: u32, offset: u32, lengthBytes: u32): bool {
    return offset == this.unsolicited[t] && <u64>offset + lengthBytes <= <u64>this.firstBurst[t];
  }
}
