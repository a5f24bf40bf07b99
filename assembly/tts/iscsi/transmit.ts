// The iSCSI transmit side of the NIC: a PDU goes out as NIC entries (its header from a connection's header slot,
// its data from a page buffer or straight from a command's SGL, then padding and digests), each tagged with an id
// that says what to give back when the NIC reports it sent: the slot, the page, or one piece of the command. A
// one-PDU answer short enough is instead copied whole into the connection's reply batch (../reply_batch.ts), which
// leaves as one entry at the end of the turn, or before the connection's next PDU of any other kind: the
// connection's PDUs keep the order they were built in.
import { BUFFER_CLASS_PAGE } from "../../config";
import { bufferPool, sgls } from "../../kernel/buffers";
import { sglSegmentAddress, sglSegmentLengthBytes } from "../../kernel/sgl";
import { scsiTaskSgl } from "../../scsi/tasks";
import { TransportCommands } from "../commands";
import { Nic } from "../nic";
import { ReplyBatches } from "../reply_batch";
import { txId, TX_KIND_PAGE, TX_KIND_SLOT, TX_KIND_TASK } from "../tx_id";
import { ConnState, IscsiConn, TX_SLOTS } from "./conn";
import { crc32c, crc32cFinal, crc32cUpdate, CRC32C_INIT } from "./crc32c";
import { BHS_BYTES, pduPaddedBytes } from "./pdu";

const TX_SLOT_DATA_DIGEST_AT: usize = 52; // a header slot's data-digest area (conn.ts TX_SLOT_BYTES)


export class IscsiTransmit {
  readonly batches: ReplyBatches;

  constructor(private readonly nic: Nic, private readonly commands: TransportCommands) {
    this.batches = new ReplyBatches(nic);
  }

  // A header slot for a control answer, if the NIC's transmit ring also has room for it (a header and a data
  // segment); TX_SLOTS otherwise. Every answer checks the ring: the driver's view of it is refreshed only here.
  begin(conn: IscsiConn): u32 {
    if (!this.nic.txRoom(2)) return TX_SLOTS;
    return conn.txSlotTake();
  }

  // Header (+ header digest) from a slot; the slot comes back on Sent. The connection's reply batch leaves first.
  header(conn: IscsiConn, slot: u32, flags: u32): void {
    this.batches.post(conn.slot);
    const header = conn.txSlotAddress(slot);
    const bytes = this.headerDigest(conn, header);
    conn.pendingTx += 1;
    this.nic.txPost(conn.slot, <u64>header, bytes, txId(TX_KIND_SLOT, conn.slot, slot), flags);
  }

  // Header, then `dataBytes` from a page buffer (padded, digested); the page comes back on Sent.
  withPage(conn: IscsiConn, slot: u32, page: u32, dataBytes: u32, flags: u32): void {
    if (dataBytes == 0) {
      bufferPool(BUFFER_CLASS_PAGE).release(page);
      this.header(conn, slot, flags);
      return;
    }
    const data = bufferPool(BUFFER_CLASS_PAGE).address(page);
    const padded = pduPaddedBytes(dataBytes);
    memory.fill(data + dataBytes, 0, padded - dataBytes); // padding never carries old bytes
    this.header(conn, slot, 0);
    let digestBytes: u32 = 0;
    if (conn.framer.dataDigest && conn.state == ConnState.FullFeature) {
      store<u32>(data + padded, crc32c(data, padded)); // the data digest follows the padded segment
      digestBytes = 4;
    }
    conn.pendingTx += 1;
    this.nic.txPost(conn.slot, <u64>data, padded + digestBytes, txId(TX_KIND_PAGE, conn.slot, page), flags);
  }

  // Header, then [offset, offset + length) of command t's SGL, padding and data digest: each NIC entry of the data
  // is a piece of the command, given back on Sent.
  withSgl(conn: IscsiConn, slot: u32, t: u32, offset: u32, length: u32): void {
    this.header(conn, slot, 0);
    const sgl = scsiTaskSgl(t);
    const count = sgls().segmentCount(sgl);
    let skip = offset;
    let left = length;
    let crc = CRC32C_INIT;
    const digest = conn.framer.dataDigest;
    for (let i: u32 = 0; i < count && left > 0; i++) { // bounded by the SGL's segments
      const segment = sgls().segment(sgl, i);
      const segmentBytes = sglSegmentLengthBytes(segment);
      if (skip >= segmentBytes) { skip -= segmentBytes; continue; }
      const take = min(segmentBytes - skip, left);
      const address = sglSegmentAddress(segment) + skip;
      if (digest) crc = crc32cUpdate(crc, <usize>address, take);
      this.commands.pieceQueued(t);
      this.nic.txPost(conn.slot, address, take, txId(TX_KIND_TASK, conn.slot, t), 0);
      left -= take;
      skip = 0;
    }
    const pad = pduPaddedBytes(length) - length;
    const trailer = conn.txSlotAddress(slot) + TX_SLOT_DATA_DIGEST_AT;
    if (pad > 0 || digest) {
      memory.fill(trailer, 0, 8);
      if (digest) {
        crc = crc32cUpdate(crc, trailer, pad);
        store<u32>(trailer + pad, crc32cFinal(crc));
      }
      this.commands.pieceQueued(t);
      this.nic.txPost(conn.slot, <u64>trailer, pad + (digest ? 4 : 0), txId(TX_KIND_TASK, conn.slot, t), 0);
    }
  }

  // Where a one-PDU answer with `dataBytes` of data (0: a header alone) is to be built in conn's reply batch: its
  // header's address (the data, padding and digests follow it), or 0 when it is not batched (too long, no buffer,
  // no room, or data the copy cannot reach): then it leaves the usual way.
  batchSpace(conn: IscsiConn, t: u32, dataBytes: u32): usize {
    if (dataBytes > 0 && !sglInMemory(scsiTaskSgl(t))) return 0;
    const digests = (conn.framer.headerDigest ? 4 : 0) + (dataBytes > 0 && conn.framer.dataDigest ? 4 : 0);
    return this.batches.space(conn.slot, BHS_BYTES + pduPaddedBytes(dataBytes) + digests);
  }

  // The PDU whose header was built at `header` (batchSpace's answer) takes its place in the batch: header digest,
  // then [0, dataBytes) of command t's SGL copied after it, padding and data digest. Nothing of t stays in flight.
  batchCommit(conn: IscsiConn, header: usize, t: u32, dataBytes: u32): void {
    let bytes = this.headerDigest(conn, header);
    if (dataBytes > 0) {
      const data = header + <usize>bytes;
      const padded = pduPaddedBytes(dataBytes);
      sgls().copyFlat(scsiTaskSgl(t), 0, data, <u64>dataBytes, false);
      memory.fill(data + dataBytes, 0, padded - dataBytes); // padding never carries old bytes
      bytes += padded;
      if (conn.framer.dataDigest) {
        store<u32>(data + padded, crc32c(data, padded));
        bytes += 4;
      }
    }
    this.batches.commit(conn.slot, bytes);
  }

  // The header digest after the BHS at `header` where negotiated: the header's bytes on the wire.
  private headerDigest(conn: IscsiConn, header: usize): u32 {
    if (!conn.framer.headerDigest || conn.state == ConnState.Login) return BHS_BYTES;
    store<u32>(header + BHS_BYTES, crc32c(header, BHS_BYTES)); // the header digest follows the BHS
    return BHS_BYTES + 4;
  }
}

// Does every segment of `sgl` lie in this processor's memory (so that memory.copy reaches it)?
function sglInMemory(sgl: u32): bool {
  const end = <u64>memory.size() << 16;
  const count = sgls().segmentCount(sgl);
  for (let i: u32 = 0; i < count; i++) { // bounded by the SGL's segments
    const segment = sgls().segment(sgl, i);
    if (sglSegmentAddress(segment) + <u64>sglSegmentLengthBytes(segment) > end) return false;
  }
  return true;
}
