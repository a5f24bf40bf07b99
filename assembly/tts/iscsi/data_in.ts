// A finished SCSI command's answer on the wire: Data-In PDUs straight from the command's SGL (zero copy: the NIC
// gathers them), then status, collapsed into the last Data-In when it is GOOD without sense (RFC 7143, SCSI Data-In,
// S bit), else a SCSI Response carrying the sense data. Sends as many PDUs as the NIC has room for and resumes from
// there: each command's next PDU is kept here. A one-PDU answer (a short read's Data-In with its status, a write's
// SCSI Response without sense) is copied into the connection's reply batch instead (transmit.ts).
import { BUFFER_CLASS_PAGE } from "../../config";
import { bufferPool, sgls } from "../../kernel/buffers";
import { POOL_NONE } from "../../kernel/pool";
import { scsiTaskDataInBytes, scsiTaskSense, scsiTaskSgl, scsiTaskStatus, SCSI_TASKS_MAX } from "../../scsi/tasks";
import { scsiTaskResidual, scsiTaskSenseBytes } from "../../scsi/transport";
import { TransportCommands } from "../commands";
import { Nic } from "../nic";
import { IscsiConn, TX_SLOTS } from "./conn";
import { NegotiatedParams } from "./keys";
import {
  buildDataIn, buildScsiResponse, RESIDUAL_OVERFLOW, RESIDUAL_UNDERFLOW, scsiSenseSegmentWrite, SCSI_RESPONSE_COMPLETED, TAG_RESERVED,
} from "./pdu";
import { Session } from "./session";
import { IscsiTransmit } from "./transmit";

const DATA_IN_BYTES_MIN: u32 = 512; // a Data-In PDU carries at least a block, whatever the initiator declared
const DATA_IN_BYTES_MAX: u32 = 262144; // and at most what one PDU of ours carries

export class DataInSender {
  private readonly nextPdu: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next Data-In to queue

  constructor(private readonly nic: Nic, private readonly commands: TransportCommands, private readonly tx: IscsiTransmit) {}

  /** Command t's answer starts from its first PDU. */
  begin(t: u32): void { this.nextPdu[t] = 0; }

  // Queues what room allows of command t's answer on `conn`; true once all of it is queued, false while anything
  // is left (call again when room comes back).
  send(t: u32, conn: IscsiConn, s: Session, params: NegotiatedParams): bool {
    const dataBytes = scsiTaskDataInBytes(t);
    const status = scsiTaskStatus(t);
    const senseBytes = scsiTaskSenseBytes(t);
    const pduBytes = max<u32>(DATA_IN_BYTES_MIN, min(conn.peerMaxRecvDataSegmentLength, DATA_IN_BYTES_MAX));
    const pdus: u32 = dataBytes == 0 ? 0 : (dataBytes + pduBytes - 1) / pduBytes;
    const collapse = status == 0 && senseBytes == 0 && pdus > 0;
    const segments = dataBytes == 0 ? 0 : sgls().segmentCount(scsiTaskSgl(t));
    const residual = scsiTaskResidual(t);
    const residualFlags = residual > 0 ? RESIDUAL_UNDERFLOW : residual < 0 ? RESIDUAL_OVERFLOW : 0;
    const residualCount = <u32>(residual < 0 ? -residual : residual);
    if (this.nextPdu[t] == 0 && (pdus == 0 ? senseBytes == 0 : pdus == 1 && collapse)) {
      const header = this.tx.batchSpace(conn, t, dataBytes);
      if (header != 0) {
        if (pdus == 1) {
          buildDataIn(header, this.commands.lun(t), this.commands.tag(t), TAG_RESERVED, 0, 0, dataBytes, true, false, true, 0,
            residualFlags, residualCount, conn.statSn++, s.expCmdSn, s.maxCmdSn());
        } else {
          buildScsiResponse(header, this.commands.tag(t), SCSI_RESPONSE_COMPLETED, status, residualFlags, residualCount, 0,
            conn.statSn++, s.expCmdSn, s.maxCmdSn(), 0, 0);
        }
        this.tx.batchCommit(conn, header, t, dataBytes);
        this.nextPdu[t] = pdus;
        return true;
      }
    }
    // Bounded by the PDU count; each pass needs a header slot and room for the PDU's pieces (at most the
    // SGL's segments, the padding-and-digest trailer and the header).
    while (this.nextPdu[t] < pdus) {
      if (conn.txSlotsUsed >= TX_SLOTS || !this.nic.txRoom(segments + 2)) return false;
      const n = this.nextPdu[t];
      const offset = n * pduBytes;
      const length = min(pduBytes, dataBytes - offset);
      const last = n + 1 == pdus;
      const final = last || ((offset + length) % params.maxBurstLength == 0);
      const slot = conn.txSlotTake();
      const statSn = last && collapse ? conn.statSn++ : 0;
      buildDataIn(conn.txSlotAddress(slot), this.commands.lun(t), this.commands.tag(t), TAG_RESERVED, n, offset,
        length, final, false, last && collapse, 0, last && collapse ? residualFlags : 0, last && collapse ? residualCount : 0,
        statSn, s.expCmdSn, s.maxCmdSn());
      this.tx.withSgl(conn, slot, t, offset, length);
      this.nextPdu[t] = n + 1;
    }
    if (collapse) return true;
    if (conn.txSlotsUsed >= TX_SLOTS || !this.nic.txRoom(2)) return false;
    const slot = conn.txSlotTake();
    const page = senseBytes > 0 ? bufferPool(BUFFER_CLASS_PAGE).acquire() : POOL_NONE;
    let segmentBytes: u32 = 0;
    if (page != POOL_NONE) {
      // RFC 7143, SCSI Response: SenseLength, then the sense data.
      segmentBytes = scsiSenseSegmentWrite(bufferPool(BUFFER_CLASS_PAGE).address(page), scsiTaskSense(t), senseBytes);
    }
    buildScsiResponse(conn.txSlotAddress(slot), this.commands.tag(t), SCSI_RESPONSE_COMPLETED, status, residualFlags,
      residualCount, 0, conn.statSn++, s.expCmdSn, s.maxCmdSn(), pdus, segmentBytes);
    if (page != POOL_NONE) this.tx.withPage(conn, slot, page, segmentBytes, 0);
    else this.tx.header(conn, slot, 0);
    return true;
  }
}
