// The NBD server (docs/nbd.md; the protocol: NetworkBlockDevice/nbd doc/proto.md). It is not a task: the TTS task
// owns the NIC and hands it the connections that arrive on the NBD portal, their bytes, and the SCSI target's
// answers for its commands, and asks it for the replies when there is room (the shared send queue).
// - Handshake: fixed newstyle only. Options: EXPORT_NAME, ABORT, LIST, INFO, GO, STRUCTURED_REPLY, LIST_META_CONTEXT
//   and SET_META_CONTEXT (base:allocation); STARTTLS and the rest are refused with NBD_REP_ERR_UNSUP.
// - Transmission: each request becomes SCSI commands for the SCSI target, through the same task records, nexus
//   machinery and CTA path as an iSCSI command (READ/WRITE (16), SYNCHRONIZE CACHE (16), UNMAP, WRITE SAME (16) with
//   NDOB, PRE-FETCH (16), GET LBA STATUS (16)); the protocol stays here, the SCSI target never sees NBD.
// - A request it cannot take yet (no task record, no page, no room) stops the connection's reading until it can
//   (conn.ts): its other requests wait in the TCP stream, other connections go on.
// - Bad input: bad magic or a broken handshake closes the connection; a bad request is answered with the protocol's
//   error number (and a write's payload skipped); a connection never takes more than REQUESTS_PER_CONNECTION_MAX
//   task records, NBD as a whole never more than REQUESTS_MAX, so iSCSI keeps its share.
import { BUFFER_CLASS_PAGE } from "../../config";
import { bufferPool, sgls } from "../../kernel/buffers";
import { carve } from "../../kernel/carve";
import { sglSegmentAddress, sglSegmentLengthBytes } from "../../kernel/sgl";
import { line } from "../../kernel/console";
import { POOL_NONE } from "../../kernel/pool";
import { ScsiDirection, SCSI_LUN_WRITE_PROTECTED, SCSI_TASK_NONE } from "../../scsi/interface";
import { limitTransferBytes, UNMAP_BYTES_MAX, UNMAP_DESCRIPTORS_MAX, WRITE_SAME_BYTES_MAX } from "../../scsi/limits";
import { NEXUS_NONE } from "../../scsi/nexus";
import {
  scsiTaskAlloc, scsiTaskDataInBytes, scsiTaskRelease, scsiTaskSense, scsiTaskSgl, scsiTaskStatus, SCSI_TASKS_MAX,
} from "../../scsi/tasks";
import { scsiNexusIdentifyPost, scsiTaskDataReady, scsiTaskSenseBytes, scsiTaskSubmit } from "../../scsi/transport";
import { volumeAt, volumesCount } from "../../volumes/volume";
import { CommandKind, CommandPhase, COMMAND_CDB_BYTES, TransportCommands } from "../commands";
import { HeldReceive } from "../held_receive";
import { Nic, TX_FLAG_CLOSE } from "../nic";
import { ReplyBatches } from "../reply_batch";
import { txId, TX_KIND_PAGE, TX_KIND_TASK } from "../tx_id";
import {
  cdbLbaStatus, cdbPrefetch, cdbRead, cdbSync, cdbUnmap, cdbWrite, cdbWriteZeroes, CDB_BYTES, errorOf, LBA_STATUS_BYTES,
  notSupported, Outcome, outcomeOf, unmapList, UNMAP_DESCRIPTOR_BYTES, UNMAP_LIST_HEADER_BYTES,
} from "./cdb";
import { configRomLoadNbd, PORTAL_NONE } from "./config_rom";
import { HEADER_BYTES_MAX, NbdConn, NbdPhase, NbdWait, NBD_CONNECTIONS_MAX, NIC_SLOTS } from "./conn";
import { EXPORT_NONE, NbdExports } from "./exports";
import { NbdRequests, REPLY_AREA_BYTES } from "./requests";
import {
  be16, be32, buildChunk, buildGreeting, buildOptionReply, buildSimpleReply, CHUNK_HEADER_BYTES, CLIENT_FLAGS_BYTES,
  EXPORT_NAME_REPLY_BYTES, EXPORT_NAME_ZEROES_BYTES, GREETING_BYTES, META_BASE_ALLOCATION, META_BASE_ALLOCATION_ID,
  NBD_CMD_BLOCK_STATUS, NBD_CMD_CACHE, NBD_CMD_DISC, NBD_CMD_FLAG_DF, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE, NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_EINVAL,
  NBD_ENOSPC, NBD_EPERM, NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES, NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY, NBD_FLAG_SEND_CACHE, NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA, NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES, NBD_INFO_BLOCK_SIZE, NBD_INFO_EXPORT, NBD_INFO_NAME, NBD_OPTS_MAGIC, NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST, NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE, NBD_REPLY_TYPE_OFFSET_DATA, NBD_REP_ACK, NBD_REP_ERR_INVALID, NBD_REP_ERR_TOO_BIG,
  NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP, NBD_REP_INFO, NBD_REP_META_CONTEXT, NBD_REP_SERVER, NBD_REQUEST_MAGIC,
  NBD_STATE_HOLE, NBD_STATE_ZERO, OPTION_HEADER_BYTES, OPTION_REPLY_HEADER_BYTES, optionLength, optionMagic, optionType,
  putBe16, putBe32, putBe64, requestCookie, requestFlags, requestLength, requestMagic, requestOffset, requestType,
  REQUEST_BYTES, SIMPLE_REPLY_BYTES,
} from "./wire";

const CONN_NONE: u8 = 0xff;
export const NBD_NEXUS_COOKIE: u32 = 0xfffe; // ScsiNexusIdentified's cookie for the NBD nexus (iSCSI's are sessions)
const NBD_TARGET_PORT: u32 = 0x100; // the relative target port NBD's nexus goes through (iSCSI's are 1..8)
const REQUESTS_PER_CONNECTION_MAX: u32 = 32; // task records one connection may hold
const REQUESTS_MAX: u32 = SCSI_TASKS_MAX / 2; // and NBD as a whole: iSCSI keeps the other half
const RETRIES_MAX: u32 = 8; // unit attentions and busy answers, per request
const WRITE_PAYLOAD_CLOSE_BYTES: u32 = 32 << 20; // a refused write longer than this closes rather than being skipped
const PUMP_STEPS_MAX: u32 = 4096; // one connection's steps per pump: bounded, and fair to the others
const WRITE_ZEROES_PIECE_BYTES: u32 = WRITE_SAME_BYTES_MAX;
if (CDB_BYTES != COMMAND_CDB_BYTES) ERROR("nbd: its CDBs fit the command records' CDB area");

// What a request's record is doing, for the commands that take more than one SCSI command.
enum Step {
  Main = 0, // the request's own command (for TRIM and WRITE_ZEROES, one piece of its range)
  Sync = 1, // FUA on TRIM or WRITE_ZEROES: SYNCHRONIZE CACHE over the range, then the reply
}

export class NbdServer {
  private readonly conns: StaticArray<NbdConn> = new StaticArray<NbdConn>(NBD_CONNECTIONS_MAX);
  private readonly connOfSlot: StaticArray<u8> = new StaticArray<u8>(NIC_SLOTS); // index into conns, or CONN_NONE
  refusedForSlots: u64 = 0; // connections refused because NBD_CONNECTIONS_MAX were open
  private readonly exports: NbdExports = new NbdExports();
  // The receive buffers the connections hold while they cannot read on (by NIC slot; the table iSCSI uses, its own
  // instance: an NBD slot is never an iSCSI connection).
  private readonly held: HeldReceive = new HeldReceive();
  private portal: u32 = PORTAL_NONE;
  private nexus: u32 = NEXUS_NONE;
  private readonly nexusName: usize = carve(8);
  private waitingCount: u32 = 0; // connections whose wait is not None (resume scans only then)
  private pumpCut: bool = false; // a pump stopped at its step bound with bytes left: resume() goes on
  // Short replies, one NIC entry per connection per turn (by NIC slot; the table iSCSI uses, its own instance).
  private readonly batches: ReplyBatches;
  private requestsHeld: u32 = 0;
  // Per task record NBD holds (the SCSI target's index): the request's fields and its reply header.
  private readonly records: NbdRequests = new NbdRequests();
  requestCount: u64 = 0;
  errorCount: u64 = 0;
  closedForBadInput: u64 = 0;

  private taskIndex: u32 = 0xffff_ffff; // the TTS task's, which gets the SCSI target's answers (boot)

  constructor(private readonly nic: Nic, private readonly commands: TransportCommands) {
    this.batches = new ReplyBatches(nic);
    for (let i: u32 = 0; i < NBD_CONNECTIONS_MAX; i++) unchecked(this.conns[i] = new NbdConn());
    for (let s: u32 = 0; s < NIC_SLOTS; s++) unchecked(this.connOfSlot[s] = CONN_NONE);
  }

  /** Boot: the exports and the NBD portal from the configuration ROM; `taskIndex` is the TTS task's. */
  boot(configRomBase: u64, taskIndex: u32): void {
    this.taskIndex = taskIndex;
    this.records.boot();
    this.exports.boot();
    this.portal = configRomLoadNbd(configRomBase, this.exports);
    store<u8>(this.nexusName, 0x6e); // "nbd": the initiator port every NBD connection shares
    store<u8>(this.nexusName + 1, 0x62);
    store<u8>(this.nexusName + 2, 0x64);
  }

  /** The transport serves: the NBD nexus is asked for (its answer comes as ScsiNexusIdentified, NBD_NEXUS_COOKIE). */
  start(): void {
    if (this.portal == PORTAL_NONE) return;
    scsiNexusIdentifyPost(this.taskIndex, NBD_NEXUS_COOKIE, this.nexusName, 3, NBD_TARGET_PORT);
  }

  onNexus(nexus: u32): void {
    this.nexus = nexus;
    if (nexus == NEXUS_NONE) line().s("nbd: the SCSI target has no nexus for NBD; requests wait").err();
    this.waitingEveryone(NbdWait.Nexus);
  }

  ownsPortal(portal: u32): bool { return this.portal != PORTAL_NONE && portal == this.portal; }
  owns(slot: u32): bool { return slot < NIC_SLOTS && unchecked(this.connOfSlot[slot]) != CONN_NONE; }

  // The connection on NIC slot `slot`, which is ours (owns).
  private connOf(slot: u32): NbdConn {
    assert(this.owns(slot), "nbd: a slot of ours");
    return unchecked(this.conns[<u32>unchecked(this.connOfSlot[slot])]);
  }

  // ---- NIC events ----

  /** A client connected on the NBD portal: the greeting goes out, or the connection closes when it cannot. */
  opened(slot: u32): void {
    const pool = bufferPool(BUFFER_CLASS_PAGE);
    if (slot >= NIC_SLOTS || this.owns(slot)) { this.nic.close(slot); return; } // the NIC's word: a slot still ours
    let index = CONN_NONE;
    for (let i: u32 = 0; i < NBD_CONNECTIONS_MAX; i++) if (unchecked(this.conns[i]).phase == NbdPhase.Free) { index = <u8>i; break; }
    if (index == CONN_NONE) {
      this.refusedForSlots += 1; // as many NBD connections as we keep: this one is closed before its greeting
      this.nic.close(slot);
      return;
    }
    const conn = unchecked(this.conns[<u32>index]);
    const optionPage = pool.acquire();
    const greeting = optionPage == POOL_NONE ? POOL_NONE : pool.acquire();
    if (greeting == POOL_NONE || !this.nic.txRoom(1)) {
      if (optionPage != POOL_NONE) pool.release(optionPage);
      if (greeting != POOL_NONE) pool.release(greeting);
      this.nic.close(slot);
      return;
    }
    assert(this.held.count(slot) == 0, "nbd: a new connection's slot holds no buffers");
    conn.open(slot, optionPage);
    unchecked(this.connOfSlot[slot] = index);
    buildGreeting(pool.address(greeting));
    this.nic.txPost(slot, <u64>pool.address(greeting), GREETING_BYTES, txId(TX_KIND_PAGE, slot, greeting), 0);
  }

  received(slot: u32, id: u32, lengthBytes: u32): void {
    const conn = this.connOf(slot);
    if (this.nic.rxAddress(id, lengthBytes) == 0) return; // not a buffer we posted: nothing to give back
    if (conn.phase == NbdPhase.Closing || conn.phase == NbdPhase.Free || lengthBytes == 0) {
      this.nic.rxPost(id);
      return;
    }
    if (!this.held.hold(conn.slot, id, lengthBytes, 0)) {
      this.nic.rxPost(id);
      this.drop(conn); // more buffers than the ring has: the NIC is confused; the stream has a hole now
      return;
    }
    this.pump(conn);
  }

  /** The connection is gone (the peer closed, or our close completed). */
  closed(slot: u32): void {
    if (!this.owns(slot)) return;
    const conn = this.connOf(slot);
    this.gone(conn);
    this.batches.drop(conn.slot); // the peer is gone: what it would have been sent goes nowhere
    if (conn.optionPage != POOL_NONE) bufferPool(BUFFER_CLASS_PAGE).release(conn.optionPage);
    conn.optionPage = POOL_NONE;
    conn.phase = NbdPhase.Free;
    unchecked(this.connOfSlot[slot] = CONN_NONE);
  }

  /**
   * Connections that stopped reading try again (after events that may have freed what they wait for). True when one
   * stopped at its step bound: the TTS task runs again rather than waiting for an event.
   */
  resume(): bool {
    this.pumpCut = false;
    if (this.waitingCount == 0) return false;
    for (let i: u32 = 0; i < NBD_CONNECTIONS_MAX; i++) {
      const conn = unchecked(this.conns[i]);
      if (conn.wait == NbdWait.None || conn.wait == NbdWait.DataOut || conn.wait == NbdWait.Nexus) continue;
      this.setWait(conn, NbdWait.None);
      this.pump(conn);
    }
    return this.pumpCut;
  }

  // ---- The SCSI target's answers (through the TTS task) ----

  /** ScsiDataOut for NBD task t: a write's payload goes in as it arrives; a TRIM's list is written here. */
  dataOut(t: u32, bytes: u32): void {
    if (this.commands.phase(t) == CommandPhase.Orphan) {
      scsiTaskDataReady(t, this.taskIndex, true);
      return;
    }
    const conn = this.connOf(this.commands.connection(t));
    if (this.records.type(t) == NBD_CMD_TRIM) {
      const sgl = scsiTaskSgl(t);
      assert(sgls().segmentCount(sgl) > 0, "nbd: an UNMAP list has a buffer");
      const blockBytes = volumeAt(this.volumeOf(t)).blockSizeBytes;
      const lba = (this.records.offset(t) + this.records.cursor(t)) / blockBytes;
      const blocks = this.records.unmapBlocks(t);
      const perDescriptor = UNMAP_BYTES_MAX / blockBytes;
      const descriptors = (blocks + perDescriptor - 1) / perDescriptor;
      assert(bytes >= UNMAP_LIST_HEADER_BYTES + descriptors * UNMAP_DESCRIPTOR_BYTES, "nbd: the UNMAP list fits what was asked");
      unmapList(<usize>sglSegmentAddress(sgls().segment(sgl, 0)), lba, blocks, perDescriptor, descriptors);
      scsiTaskDataReady(t, this.taskIndex, false);
      return;
    }
    assert(conn.phase == NbdPhase.WriteData && conn.writeTask == t, "nbd: Data-Out only for the write being received");
    conn.writeWanted = bytes;
    if (conn.wait == NbdWait.DataOut) this.setWait(conn, NbdWait.None);
    this.pump(conn);
  }

  /**
   * ScsiDone for NBD task t (not aborted, connection still there). True when the reply is to be sent (send()); false
   * when the request goes on with another command (a retry, the next piece, the FUA sync): t may be a new record then.
   */
  done(t: u32): bool {
    const conn = this.connOf(this.commands.connection(t));
    const type = this.records.type(t);
    const status = scsiTaskStatus(t);
    const sense = scsiTaskSense(t);
    const senseBytes = scsiTaskSenseBytes(t);
    let outcome = outcomeOf(status, sense, senseBytes);
    const payloadWaiting = type == NBD_CMD_WRITE && conn.writeTask == t && conn.phase == NbdPhase.WriteData;
    // A write can go again only while its payload is still in the stream: once the SCSI target took it (and failed,
    // say with ABORTED COMMAND after a device error), it is gone, and the client hears EIO (simulate found this).
    const again = type != NBD_CMD_WRITE || (payloadWaiting && conn.dataDone == 0);
    if (outcome == Outcome.Retry && this.records.retries(t) < RETRIES_MAX && again) {
      this.records.setRetries(t, this.records.retries(t) + 1);
      this.again(t);
      return false;
    }
    if (payloadWaiting) {
      // Refused before the SCSI target took the payload: what is left of it is skipped.
      conn.writeTask = SCSI_TASK_NONE;
      conn.phase = NbdPhase.Discard;
      conn.dataLeft -= <u64>conn.dataDone;
      if (conn.wait == NbdWait.DataOut) this.setWait(conn, NbdWait.Room); // resume() takes it up
    }
    if (type == NBD_CMD_TRIM && outcome != Outcome.Ok && notSupported(status, sense, senseBytes)) outcome = Outcome.Ok; // advisory
    if (outcome != Outcome.Ok) {
      this.records.setError(t, outcome == Outcome.Retry ? errorOf(0xff, sense, 0) : errorOf(status, sense, senseBytes));
      return true;
    }
    return this.nextStep(t);
  }

  /**
   * Queues task t's reply: a short one is copied into its connection's batch (posted at the end of the turn, one NIC
   * entry for all of them: flushReplies), a long one goes straight from the record's header area and the task's
   * buffers if the NIC has room for all of it. False (nothing queued) when it must wait for room.
   */
  send(t: u32): bool {
    const conn = this.connOf(this.commands.connection(t));
    const type = this.records.type(t);
    const error = this.records.error(t);
    const cookie = this.records.cookie(t);
    const data = error == 0 && type == NBD_CMD_READ;
    const sgl = data ? scsiTaskSgl(t) : 0;
    const segments = data ? sgls().segmentCount(sgl) : 0;
    const dataBytes = data ? this.records.length(t) : 0;
    let reply = this.batches.space(conn.slot, REPLY_AREA_BYTES + dataBytes); // 0: not batched
    const batched = reply != 0;
    if (!batched) {
      if (!this.nic.txRoom(segments + 1)) return false;
      reply = this.records.reply(t);
    }
    let headerBytes: u32 = 0;
    if (error != 0) {
      headerBytes = this.errorReply(conn, reply, cookie, error);
      conn.errors += 1;
      this.errorCount += 1;
    } else if (type == NBD_CMD_BLOCK_STATUS) {
      headerBytes = this.blockStatusReply(t, reply, cookie);
    } else if (data && conn.structured) {
      buildChunk(reply, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + dataBytes);
      putBe64(reply + CHUNK_HEADER_BYTES, this.records.offset(t));
      headerBytes = CHUNK_HEADER_BYTES + 8;
    } else if (conn.structured) {
      buildChunk(reply, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookie, 0);
      headerBytes = CHUNK_HEADER_BYTES;
    } else {
      buildSimpleReply(reply, 0, cookie);
      headerBytes = SIMPLE_REPLY_BYTES;
    }
    assert(headerBytes <= REPLY_AREA_BYTES, "nbd: a reply header fits its area");
    if (batched) {
      // The data follows its header in the batch: the task's buffers are free once this returns (no piece in flight).
      if (data) sgls().copyFlat(sgl, 0, reply + headerBytes, <u64>dataBytes, false);
      this.batches.commit(conn.slot, headerBytes + dataBytes);
      return true;
    }
    this.commands.pieceQueued(t);
    this.nic.txPost(conn.slot, <u64>reply, headerBytes, txId(TX_KIND_TASK, conn.slot, t), 0);
    if (data) this.postData(conn, t, sgl, segments);
    return true;
  }

  /** The end of the TTS task's turn: every connection's batch of replies goes out, one NIC entry each. */
  flushReplies(): void {
    this.batches.flush();
  }

  /** NBD task t is finished (the TTS task releases it next): its connection holds one record less. */
  finished(t: u32): void {
    assert(this.requestsHeld > 0, "nbd: a request finished that was not held");
    this.requestsHeld -= 1;
    if (this.waitingCount > 0) this.waitingEveryone(NbdWait.Task);
    if (this.commands.phase(t) == CommandPhase.Orphan) return; // gone() took it off its connection, which may be reused
    const conn = this.connOf(this.commands.connection(t));
    conn.requests -= 1;
    if (conn.phase == NbdPhase.Closing && conn.requests == 0 && conn.wait == NbdWait.None) this.closeNow(conn);
  }

  // ---- The incoming stream ----

  // Reads what the connection holds, acting on each header and payload, until it runs out of bytes or must wait.
  private pump(conn: NbdConn): void {
    for (let step: u32 = 0; step < PUMP_STEPS_MAX; step++) {
      if (conn.wait != NbdWait.None) return;
      switch (conn.phase) {
        case NbdPhase.ClientFlags:
          if (!this.fill(conn, CLIENT_FLAGS_BYTES)) return;
          this.onClientFlags(conn);
          break;
        case NbdPhase.OptionHeader:
          if (!this.fill(conn, OPTION_HEADER_BYTES)) return;
          this.onOptionHeader(conn);
          break;
        case NbdPhase.OptionData:
          if (conn.dataLeft > 0) {
            if (!this.take(conn, true)) return;
          } else this.onOption(conn);
          break;
        case NbdPhase.Request:
          if (!this.fill(conn, REQUEST_BYTES)) return;
          this.onRequest(conn);
          break;
        case NbdPhase.WriteData:
          if (conn.writeWanted == 0) {
            this.setWait(conn, NbdWait.DataOut);
            return;
          }
          if (!this.takeWrite(conn)) return;
          break;
        case NbdPhase.Discard:
          if (conn.dataLeft == 0) {
            conn.phase = NbdPhase.Request;
            break;
          }
          if (!this.take(conn, false)) return;
          break;
        default: { // Closing, Free: what it holds goes back unread
          this.giveBack(conn);
          return;
        }
      }
    }
    this.setWait(conn, NbdWait.Room); // the step bound: resume() goes on from here
    this.pumpCut = true;
  }

  // Gathers the current header up to `bytes`; true once it is all in (conn.header).
  private fill(conn: NbdConn, bytes: u32): bool {
    assert(bytes <= HEADER_BYTES_MAX, "nbd: a header fits its buffer");
    for (let guard: u32 = 0; guard < bytes && conn.headerHave < bytes; guard++) {
      if (this.held.count(conn.slot) == 0) return false;
      const buffer = this.nic.rxAddress(this.held.oldestId(conn.slot), this.held.oldestLength(conn.slot));
      const n = min(bytes - conn.headerHave, this.held.oldestLength(conn.slot) - this.held.oldestOffset(conn.slot));
      memory.copy(conn.header + conn.headerHave, buffer + this.held.oldestOffset(conn.slot), n);
      conn.headerHave += n;
      this.consume(conn, n);
    }
    return conn.headerHave == bytes;
  }

  // Takes the next bytes of an option's data (into the option page when it fits) or of a skipped payload.
  private take(conn: NbdConn, option: bool): bool {
    if (this.held.count(conn.slot) == 0) return false;
    const n = <u32>min<u64>(conn.dataLeft, <u64>(this.held.oldestLength(conn.slot) - this.held.oldestOffset(conn.slot)));
    if (option && conn.optionBytes <= bufferPool(BUFFER_CLASS_PAGE).slotBytes) {
      const page = bufferPool(BUFFER_CLASS_PAGE).address(conn.optionPage);
      memory.copy(page + conn.dataDone, this.nic.rxAddress(this.held.oldestId(conn.slot), this.held.oldestLength(conn.slot)) + this.held.oldestOffset(conn.slot), n);
    }
    conn.dataDone += n;
    conn.dataLeft -= <u64>n;
    this.consume(conn, n);
    return true;
  }

  // Copies the next bytes of a write's payload into its task's buffers; at the last, the SCSI target has them.
  private takeWrite(conn: NbdConn): bool {
    if (this.held.count(conn.slot) == 0) return false;
    const t = conn.writeTask;
    const n = <u32>min<u64>(<u64>(conn.writeWanted - conn.dataDone), <u64>(this.held.oldestLength(conn.slot) - this.held.oldestOffset(conn.slot)));
    const from = this.nic.rxAddress(this.held.oldestId(conn.slot), this.held.oldestLength(conn.slot)) + this.held.oldestOffset(conn.slot);
    sgls().copyFlat(scsiTaskSgl(t), <u64>conn.dataDone, from, <u64>n, true); // within the buffers the SCSI target gave
    conn.dataDone += n;
    conn.dataLeft -= <u64>n;
    this.consume(conn, n);
    if (conn.dataDone < conn.writeWanted) return true;
    scsiTaskDataReady(t, this.taskIndex, false);
    conn.writeTask = SCSI_TASK_NONE;
    conn.writeWanted = 0;
    conn.phase = conn.dataLeft > 0 ? NbdPhase.Discard : NbdPhase.Request; // the target asks for no more than it takes
    return true;
  }

  private consume(conn: NbdConn, n: u32): void {
    const offset = this.held.oldestOffset(conn.slot) + n;
    if (offset < this.held.oldestLength(conn.slot)) {
      this.held.setOldestOffset(conn.slot, offset);
      return;
    }
    this.nic.rxPost(this.held.oldestId(conn.slot));
    this.held.dropOldest(conn.slot);
  }

  private giveBack(conn: NbdConn): void {
    for (let guard: u32 = 0; guard < 65536 && this.held.count(conn.slot) > 0; guard++) { // bounded by the ring's entries
      this.nic.rxPost(this.held.oldestId(conn.slot));
      this.held.dropOldest(conn.slot);
    }
  }


  // ---- Handshake ----

  private onClientFlags(conn: NbdConn): void {
    const flags = be32(conn.header);
    conn.headerHave = 0;
    // Fixed newstyle only; a flag we do not know means a client we cannot serve (proto.md: the server closes).
    if ((flags & NBD_FLAG_C_FIXED_NEWSTYLE) == 0 || (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) != 0) {
      this.badInput(conn);
      return;
    }
    conn.noZeroes = (flags & NBD_FLAG_C_NO_ZEROES) != 0;
    conn.phase = NbdPhase.OptionHeader;
  }

  private onOptionHeader(conn: NbdConn): void {
    conn.headerHave = 0;
    if (optionMagic(conn.header) != NBD_OPTS_MAGIC) {
      this.badInput(conn); // not an option: the stream is out of step
      return;
    }
    conn.option = optionType(conn.header);
    conn.optionBytes = optionLength(conn.header);
    conn.dataLeft = <u64>conn.optionBytes;
    conn.dataDone = 0;
    conn.phase = NbdPhase.OptionData;
  }

  // The option and its data are in: its answer goes out (the connection waits for a page or room if it must).
  private onOption(conn: NbdConn): void {
    const pool = bufferPool(BUFFER_CLASS_PAGE);
    const tooBig = conn.optionBytes > pool.slotBytes;
    if (tooBig && conn.option == NBD_OPT_EXPORT_NAME) {
      this.badInput(conn); // an export name no export has, and no way to say so but closing
      return;
    }
    if (!this.nic.txRoom(1)) { this.setWait(conn, NbdWait.Room); return; }
    const page = pool.acquire();
    if (page == POOL_NONE) { this.setWait(conn, NbdWait.Page); return; }
    const out = pool.address(page);
    const data = pool.address(conn.optionPage);
    const option = conn.option;
    let bytes: u32 = 0;
    let close = false;
    if (tooBig) bytes = optionReply(out, option, NBD_REP_ERR_TOO_BIG, 0);
    else {
      switch (option) {
        case NBD_OPT_EXPORT_NAME: bytes = this.exportName(conn, data, out); close = bytes == 0; break;
        case NBD_OPT_ABORT: bytes = optionReply(out, option, NBD_REP_ACK, 0); close = true; break;
        case NBD_OPT_LIST: bytes = this.list(conn, out); break;
        case NBD_OPT_INFO: case NBD_OPT_GO: bytes = this.infoGo(conn, data, out); break;
        case NBD_OPT_STRUCTURED_REPLY: {
          // proto.md: no data; asked twice, it is an error (the replies' shape is settled once).
          const refused = conn.optionBytes != 0 || conn.structured;
          bytes = optionReply(out, option, refused ? NBD_REP_ERR_INVALID : NBD_REP_ACK, 0);
          if (!refused) conn.structured = true;
          break;
        }
        case NBD_OPT_LIST_META_CONTEXT: case NBD_OPT_SET_META_CONTEXT: bytes = this.metaContext(conn, data, out); break;
        default: bytes = optionReply(out, option, NBD_REP_ERR_UNSUP, 0); // STARTTLS among them: no TLS here
      }
    }
    if (bytes == 0) {
      pool.release(page);
      this.badInput(conn);
      return;
    }
    this.nic.txPost(conn.slot, <u64>out, bytes, txId(TX_KIND_PAGE, conn.slot, page), close ? TX_FLAG_CLOSE : 0);
    if (close) {
      this.gone(conn);
      conn.phase = NbdPhase.Closing;
      return;
    }
    if (conn.phase == NbdPhase.OptionData) conn.phase = NbdPhase.OptionHeader;
  }

  // NBD_OPT_EXPORT_NAME: the size and flags, then transmission; 0 when there is no such export (the caller closes).
  private exportName(conn: NbdConn, name: usize, out: usize): u32 {
    const e = this.exports.find(name, conn.optionBytes);
    if (e == EXPORT_NONE || this.exports.volume(e) >= volumesCount()) return 0;
    putBe64(out, this.exportBytes(e));
    putBe16(out + 8, this.transmissionFlags(e));
    let bytes = EXPORT_NAME_REPLY_BYTES;
    if (!conn.noZeroes) {
      memory.fill(out + bytes, 0, EXPORT_NAME_ZEROES_BYTES);
      bytes += EXPORT_NAME_ZEROES_BYTES;
    }
    conn.exportIndex = e;
    conn.phase = NbdPhase.Request;
    return bytes;
  }

  // NBD_OPT_LIST: an NBD_REP_SERVER per export, then the ACK. (Export names fit: 16 of at most 200 bytes.)
  private list(conn: NbdConn, out: usize): u32 {
    if (conn.optionBytes != 0) return optionReply(out, NBD_OPT_LIST, NBD_REP_ERR_INVALID, 0);
    let at: u32 = 0;
    for (let e: u32 = 0; e < this.exports.count; e++) {
      const nameBytes = this.exports.nameBytesOf(e);
      buildOptionReply(out + at, NBD_OPT_LIST, NBD_REP_SERVER, 4 + nameBytes);
      putBe32(out + at + OPTION_REPLY_HEADER_BYTES, nameBytes);
      memory.copy(out + at + OPTION_REPLY_HEADER_BYTES + 4, this.exports.name(e), nameBytes);
      at += OPTION_REPLY_HEADER_BYTES + 4 + nameBytes;
    }
    return at + optionReply(out + at, NBD_OPT_LIST, NBD_REP_ACK, 0);
  }

  // NBD_OPT_INFO and NBD_OPT_GO: |0 name length u32|4 name|n info count u16|n+2 info types u16…|. The export's size
  // and flags, its block sizes (always: minimum the volume's block, maximum one SCSI transfer) and its name if asked.
  private infoGo(conn: NbdConn, data: usize, out: usize): u32 {
    const option = conn.option;
    const total = conn.optionBytes;
    const nameBytes = total >= 4 ? be32(data) : 0xffff_ffff;
    if (total < 6 || nameBytes > total - 6) return optionReply(out, option, NBD_REP_ERR_INVALID, 0);
    const infoCount = be16(data + 4 + nameBytes);
    if (<u64>total != 6 + <u64>nameBytes + 2 * <u64>infoCount) return optionReply(out, option, NBD_REP_ERR_INVALID, 0);
    const e = this.exports.find(data + 4, nameBytes);
    if (e == EXPORT_NONE || this.exports.volume(e) >= volumesCount()) return optionReply(out, option, NBD_REP_ERR_UNKNOWN, 0);
    let wantName = false;
    for (let i: u32 = 0; i < infoCount; i++) if (be16(data + 6 + nameBytes + 2 * i) == NBD_INFO_NAME) wantName = true;
    let at = optionReply(out, option, NBD_REP_INFO, 12);
    putBe16(out + at - 12, NBD_INFO_EXPORT);
    putBe64(out + at - 10, this.exportBytes(e));
    putBe16(out + at - 2, this.transmissionFlags(e));
    const blockBytes = volumeAt(this.exports.volume(e)).blockSizeBytes;
    at += optionReply(out + at, option, NBD_REP_INFO, 14);
    putBe16(out + at - 14, NBD_INFO_BLOCK_SIZE);
    putBe32(out + at - 12, blockBytes);
    putBe32(out + at - 8, max(blockBytes, 4096));
    putBe32(out + at - 4, limitTransferBytes());
    if (wantName) {
      const own = this.exports.nameBytesOf(e);
      at += optionReply(out + at, option, NBD_REP_INFO, 2 + own);
      putBe16(out + at - 2 - own, NBD_INFO_NAME);
      memory.copy(out + at - own, this.exports.name(e), own);
    }
    at += optionReply(out + at, option, NBD_REP_ACK, 0);
    if (option == NBD_OPT_GO) {
      conn.exportIndex = e;
      conn.phase = NbdPhase.Request;
    }
    return at;
  }

  // NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: |0 name length u32|4 name|n query count u32|n+4 queries:
  // |length u32|query||. base:allocation is the only context; SET needs structured replies first (proto.md).
  private metaContext(conn: NbdConn, data: usize, out: usize): u32 {
    const option = conn.option;
    const total = conn.optionBytes;
    const set = option == NBD_OPT_SET_META_CONTEXT;
    if (set && !conn.structured) return optionReply(out, option, NBD_REP_ERR_INVALID, 0);
    const nameBytes = total >= 8 ? be32(data) : 0xffff_ffff;
    if (total < 8 || nameBytes > total - 8) return optionReply(out, option, NBD_REP_ERR_INVALID, 0);
    const queries = be32(data + 4 + nameBytes);
    let at: u32 = 8 + nameBytes;
    let matched = queries == 0 && !set; // LIST with no query: every context
    for (let i: u32 = 0; i < queries; i++) { // each query takes at least 4 bytes: bounded by the data
      if (at + 4 > total || be32(data + at) > total - at - 4) return optionReply(out, option, NBD_REP_ERR_INVALID, 0);
      const queryBytes = be32(data + at);
      if (namesAllocation(data + at + 4, queryBytes, !set)) matched = true;
      at += 4 + queryBytes;
    }
    if (at != total) return optionReply(out, option, NBD_REP_ERR_INVALID, 0);
    if (this.exports.find(data + 4, nameBytes) == EXPORT_NONE) return optionReply(out, option, NBD_REP_ERR_UNKNOWN, 0);
    if (set) conn.metaAllocation = matched;
    let bytes: u32 = 0;
    if (matched) {
      const nameLength = <u32>META_BASE_ALLOCATION.length;
      bytes = optionReply(out, option, NBD_REP_META_CONTEXT, 4 + nameLength);
      putBe32(out + bytes - 4 - nameLength, META_BASE_ALLOCATION_ID);
      for (let i: u32 = 0; i < nameLength; i++) store<u8>(out + bytes - nameLength + i, <u8>META_BASE_ALLOCATION.charCodeAt(i));
    }
    return bytes + optionReply(out + bytes, option, NBD_REP_ACK, 0);
  }

  // ---- Transmission ----

  private onRequest(conn: NbdConn): void {
    const header = conn.header;
    if (requestMagic(header) != NBD_REQUEST_MAGIC) {
      this.badInput(conn); // proto.md: a request with a bad magic ends the connection
      return;
    }
    if (this.nexus == NEXUS_NONE) { this.setWait(conn, NbdWait.Nexus); return; }
    const type = requestType(header);
    const flags = requestFlags(header);
    const offset = requestOffset(header);
    const length = requestLength(header);
    if (type == NBD_CMD_DISC) {
      // Soft disconnect: the requests in flight are answered, then the connection closes; nothing after is read.
      conn.headerHave = 0;
      conn.phase = NbdPhase.Closing;
      this.giveBack(conn);
      if (conn.requests == 0) this.closeNow(conn);
      return;
    }
    const payload: u64 = type == NBD_CMD_WRITE ? <u64>length : 0;
    const error = this.requestError(conn, type, flags, offset, length);
    if (error != 0) {
      if (payload > <u64>WRITE_PAYLOAD_CLOSE_BYTES) { this.badInput(conn); return; } // not worth skipping
      if (!this.replyNow(conn, requestCookie(header), error)) return; // waits; the header stays for the retry
      conn.headerHave = 0;
      if (payload > 0) {
        conn.phase = NbdPhase.Discard;
        conn.dataLeft = payload;
      }
      return;
    }
    if (conn.requests >= REQUESTS_PER_CONNECTION_MAX || this.requestsHeld >= REQUESTS_MAX) { this.setWait(conn, NbdWait.Task); return; }
    const t = scsiTaskAlloc();
    if (t == SCSI_TASK_NONE) { this.setWait(conn, NbdWait.Task); return; }
    conn.headerHave = 0;
    conn.requests += 1;
    this.requestsHeld += 1;
    this.requestCount += 1;
    this.records.begin(t, requestCookie(header), offset, length, type, flags); // step Main, no retries, no error
    this.commands.begin(t, conn.slot, <u32>requestCookie(header), <u64>this.exports.volume(conn.exportIndex));
    this.commands.setRequest(t, CommandKind.Nbd, 0, conn.exportIndex, length);
    this.submit(t);
    if (type == NBD_CMD_WRITE) {
      conn.phase = NbdPhase.WriteData;
      conn.writeTask = t;
      conn.writeWanted = 0;
      conn.dataLeft = payload;
      conn.dataDone = 0;
    }
  }

  // The protocol's error for a request before it reaches the SCSI target, or 0 (proto.md, "Request types").
  private requestError(conn: NbdConn, type: u32, flags: u32, offset: u64, length: u32): u32 {
    const e = conn.exportIndex;
    const v = volumeAt(this.exports.volume(e));
    const blockBytes = <u64>v.blockSizeBytes;
    const size = this.exportBytes(e);
    const known = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_DF | NBD_CMD_FLAG_REQ_ONE;
    if ((flags & ~known) != 0) return NBD_EINVAL;
    const writes = type == NBD_CMD_WRITE || type == NBD_CMD_TRIM || type == NBD_CMD_WRITE_ZEROES;
    if (writes && this.exports.isReadOnly(e)) return NBD_EPERM;
    switch (type) {
      case NBD_CMD_FLUSH: return offset == 0 && length == 0 ? 0 : NBD_EINVAL;
      case NBD_CMD_READ: case NBD_CMD_WRITE: case NBD_CMD_CACHE: case NBD_CMD_WRITE_ZEROES: case NBD_CMD_TRIM:
      case NBD_CMD_BLOCK_STATUS: break;
      default: return NBD_EINVAL; // an unknown command (its payload, if any, cannot be known: the client must not)
    }
    if (length == 0 || offset > size || <u64>length > size - offset) return type == NBD_CMD_WRITE || type == NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
    if (type == NBD_CMD_BLOCK_STATUS) return conn.metaAllocation ? 0 : NBD_EINVAL; // no context selected
    if (type == NBD_CMD_TRIM) return 0; // trimmed inward to whole blocks
    // The block size was announced (NBD_INFO_BLOCK_SIZE): requests off it are the client's error.
    if (offset % blockBytes != 0 || <u64>length % blockBytes != 0) return NBD_EINVAL;
    if ((type == NBD_CMD_READ || type == NBD_CMD_WRITE) && length > limitTransferBytes()) return NBD_EINVAL;
    return 0;
  }

  // Submits task t's current command (its step, and for the ranged commands the piece at its cursor).
  private submit(t: u32): void {
    const type = this.records.type(t);
    const v = this.volumeOf(t);
    const blockBytes = <u64>volumeAt(v).blockSizeBytes;
    const offset = this.records.offset(t);
    const length = <u64>this.records.length(t);
    const fua = (this.records.flags(t) & NBD_CMD_FLAG_FUA) != 0;
    const cdb = this.commands.cdb(t); // the record's CDB area, as for iSCSI (COMMAND_CDB_BYTES = CDB_BYTES)
    let expected: u32 = 0;
    let direction = ScsiDirection.None;
    if (this.records.step(t) == Step.Sync) {
      const first = offset / blockBytes;
      cdbSync(cdb, first, <u32>((offset + length + blockBytes - 1) / blockBytes - first));
    } else {
      switch (type) {
        case NBD_CMD_READ: cdbRead(cdb, offset / blockBytes, <u32>(length / blockBytes)); expected = <u32>length; direction = ScsiDirection.Read; break;
        case NBD_CMD_WRITE: cdbWrite(cdb, offset / blockBytes, <u32>(length / blockBytes), fua); expected = <u32>length; direction = ScsiDirection.Write; break;
        case NBD_CMD_FLUSH: cdbSync(cdb, 0, 0); break;
        case NBD_CMD_CACHE: cdbPrefetch(cdb, offset / blockBytes, <u32>(length / blockBytes)); break;
        case NBD_CMD_BLOCK_STATUS: cdbLbaStatus(cdb, offset / blockBytes); expected = LBA_STATUS_BYTES; direction = ScsiDirection.Read; break;
        case NBD_CMD_WRITE_ZEROES: {
          const at = offset + this.records.cursor(t);
          const piece = min<u64>(<u64>WRITE_ZEROES_PIECE_BYTES, offset + length - at);
          cdbWriteZeroes(cdb, at / blockBytes, <u32>(piece / blockBytes), (this.records.flags(t) & NBD_CMD_FLAG_NO_HOLE) != 0);
          break;
        }
        case NBD_CMD_TRIM: {
          const first = (offset + this.records.cursor(t) + blockBytes - 1) / blockBytes; // inward: whole blocks only
          const end = (offset + length) / blockBytes;
          const perDescriptor = <u64>(UNMAP_BYTES_MAX / <u32>blockBytes);
          const blocks = min<u64>(end > first ? end - first : 0, perDescriptor * UNMAP_DESCRIPTORS_MAX);
          const descriptors = <u32>((blocks + perDescriptor - 1) / perDescriptor);
          this.records.setUnmapBlocks(t, <u32>blocks);
          cdbUnmap(cdb, descriptors);
          expected = UNMAP_LIST_HEADER_BYTES + descriptors * UNMAP_DESCRIPTOR_BYTES;
          direction = ScsiDirection.Write;
          break;
        }
        default: assert(false, "nbd: only checked requests are submitted");
      }
    }
    const lun = v | (this.exports.isReadOnly(this.commands.extra(t)) ? SCSI_LUN_WRITE_PROTECTED : 0);
    this.commands.setPhase(t, CommandPhase.Submitted);
    scsiTaskSubmit(t, this.taskIndex, this.nexus, lun, cdb, CDB_BYTES, expected, direction, this.commands.tag(t), 0);
  }

  // The command of t succeeded: the reply (true), or the request's next command (false).
  private nextStep(t: u32): bool {
    const type = this.records.type(t);
    const ranged = type == NBD_CMD_WRITE_ZEROES || type == NBD_CMD_TRIM;
    if (!ranged || this.records.step(t) == Step.Sync) return true;
    const blockBytes = <u64>volumeAt(this.volumeOf(t)).blockSizeBytes;
    const length = <u64>this.records.length(t);
    const done = type == NBD_CMD_TRIM
      ? this.trimDone(t, blockBytes)
      : min<u64>(this.records.cursor(t) + <u64>WRITE_ZEROES_PIECE_BYTES, length);
    this.records.setCursor(t, done);
    if (done < length && !(type == NBD_CMD_TRIM && this.records.unmapBlocks(t) == 0)) {
      this.records.setRetries(t, 0);
      this.again(t);
      return false;
    }
    if ((this.records.flags(t) & NBD_CMD_FLAG_FUA) == 0) return true;
    this.records.setStep(t, Step.Sync);
    this.records.setRetries(t, 0);
    this.again(t);
    return false;
  }

  // A TRIM piece unmapped unmapBlocks from the cursor (rounded inward): the cursor after it, in bytes.
  private trimDone(t: u32, blockBytes: u64): u64 {
    const offset = this.records.offset(t);
    const first = (offset + this.records.cursor(t) + blockBytes - 1) / blockBytes;
    const length = <u64>this.records.length(t);
    return min<u64>((first + <u64>this.records.unmapBlocks(t)) * blockBytes - offset, length);
  }

  // The request of record t goes on with a fresh record (the SCSI target releases a record only through its
  // transport): everything the record stands for moves, its connection's count is unchanged.
  private again(t: u32): void {
    const connection = this.commands.connection(t);
    const tag = this.commands.tag(t);
    const lun = this.commands.lun(t);
    const exportIndex = this.commands.extra(t);
    const length = this.records.length(t);
    this.commands.setPhase(t, CommandPhase.Free);
    scsiTaskRelease(t);
    const u = scsiTaskAlloc();
    assert(u != SCSI_TASK_NONE, "nbd: the record just released is free");
    this.records.move(t, u); // our pages keep t's fields after the release
    this.commands.begin(u, connection, tag, lun);
    this.commands.setRequest(u, CommandKind.Nbd, 0, exportIndex, length);
    const conn = this.connOf(connection);
    if (conn.writeTask == t) conn.writeTask = u;
    this.submit(u);
  }

  // ---- Replies ----

  // An error reply for a request that never got a record: from a page. False when the connection must wait.
  private replyNow(conn: NbdConn, cookie: u64, error: u32): bool {
    if (!this.nic.txRoom(1)) { this.setWait(conn, NbdWait.Room); return false; }
    const pool = bufferPool(BUFFER_CLASS_PAGE);
    const page = pool.acquire();
    if (page == POOL_NONE) { this.setWait(conn, NbdWait.Page); return false; }
    const bytes = this.errorReply(conn, pool.address(page), cookie, error);
    this.nic.txPost(conn.slot, <u64>pool.address(page), bytes, txId(TX_KIND_PAGE, conn.slot, page), 0);
    conn.errors += 1;
    this.errorCount += 1;
    return true;
  }

  private errorReply(conn: NbdConn, at: usize, cookie: u64, error: u32): u32 {
    if (!conn.structured) {
      buildSimpleReply(at, error, cookie);
      return SIMPLE_REPLY_BYTES;
    }
    buildChunk(at, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, 6);
    putBe32(at + CHUNK_HEADER_BYTES, error);
    putBe16(at + CHUNK_HEADER_BYTES + 4, 0); // no message
    return CHUNK_HEADER_BYTES + 6;
  }

  // NBD_REPLY_TYPE_BLOCK_STATUS with one extent from GET LBA STATUS's first descriptor (SBC-4: |0 LBA u64|8 count
  // u32|12 provisioning status: 0 mapped, 1 deallocated, 2 anchored|): deallocated reads as zeros on a thin volume.
  private blockStatusReply(t: u32, at: usize, cookie: u64): u32 {
    const v = volumeAt(this.volumeOf(t));
    const blockBytes = <u64>v.blockSizeBytes;
    const offset = this.records.offset(t);
    const length = <u64>this.records.length(t);
    let extent = length;
    let state: u32 = 0;
    if (scsiTaskDataInBytes(t) >= LBA_STATUS_BYTES) {
      const descriptor = <usize>sglSegmentAddress(sgls().segment(scsiTaskSgl(t), 0)) + 8;
      const lba = bswap<u64>(load<u64>(descriptor));
      const blocks = <u64>bswap<u32>(load<u32>(descriptor + 8));
      const provisioning = <u32>load<u8>(descriptor + 12) & 0xf;
      const end = (lba + blocks) * blockBytes;
      if (lba * blockBytes <= offset && end > offset) extent = min<u64>(end - offset, length);
      if (provisioning != 0) state = NBD_STATE_HOLE | NBD_STATE_ZERO;
    }
    buildChunk(at, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, 12);
    putBe32(at + CHUNK_HEADER_BYTES, META_BASE_ALLOCATION_ID);
    putBe32(at + CHUNK_HEADER_BYTES + 4, <u32>extent);
    putBe32(at + CHUNK_HEADER_BYTES + 8, state);
    return CHUNK_HEADER_BYTES + 12;
  }

  // A read's data straight from the task's buffers (zero copy: the NIC gathers them), one piece per segment.
  private postData(conn: NbdConn, t: u32, sgl: u32, segments: u32): void {
    let left = this.records.length(t);
    for (let i: u32 = 0; i < segments && left > 0; i++) { // bounded by the SGL's segments
      const segment = sgls().segment(sgl, i);
      const n = min(sglSegmentLengthBytes(segment), left);
      this.commands.pieceQueued(t);
      this.nic.txPost(conn.slot, sglSegmentAddress(segment), n, txId(TX_KIND_TASK, conn.slot, t), 0);
      left -= n;
    }
    assert(left == 0, "nbd: a read's data is all in its buffers");
  }

  // ---- Connections ending ----

  // Input that ends the connection (proto.md: the server closes on what it cannot parse).
  private badInput(conn: NbdConn): void {
    this.closedForBadInput += 1;
    line().s("nbd: connection ").u32(conn.slot).s(" closed: bad input in phase ").u32(<u32>conn.phase).out();
    this.drop(conn);
  }

  private drop(conn: NbdConn): void {
    if (conn.phase == NbdPhase.Closing || conn.phase == NbdPhase.Free) return;
    this.gone(conn);
    conn.phase = NbdPhase.Closing;
    this.closeNow(conn);
  }

  private closeNow(conn: NbdConn): void {
    this.batches.post(conn.slot); // replies batched before the close leave first (its entry is reserved)
    this.nic.txFlush(); // replies queued before the close leave first
    this.nic.close(conn.slot);
  }

  // The connection's requests are orphaned (released when the SCSI target answers or their last piece is sent), a
  // write waiting for its data learns it will not come, and the buffers it holds go back to the NIC.
  private gone(conn: NbdConn): void {
    if (conn.writeTask != SCSI_TASK_NONE && conn.writeWanted > 0) scsiTaskDataReady(conn.writeTask, this.taskIndex, true);
    conn.writeTask = SCSI_TASK_NONE;
    conn.writeWanted = 0;
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) {
      if (this.commands.kind(t) != CommandKind.Nbd || this.commands.connection(t) != conn.slot) continue;
      const phase = this.commands.phase(t);
      if (phase == CommandPhase.Free || phase == CommandPhase.Orphan) continue;
      this.commands.setPhase(t, CommandPhase.Orphan);
      conn.requests -= 1;
    }
    assert(conn.requests == 0, "nbd: every request of a connection is a record of it");
    this.setWait(conn, NbdWait.None);
    this.giveBack(conn);
    line().s("nbd: connection ").u32(conn.slot).s(" ends: ").u32(conn.errors).s(" error replies").out();
  }

  // ---- helpers ----

  private setWait(conn: NbdConn, wait: NbdWait): void {
    if (conn.wait == NbdWait.None && wait != NbdWait.None) this.waitingCount += 1;
    if (conn.wait != NbdWait.None && wait == NbdWait.None) this.waitingCount -= 1;
    conn.wait = wait;
  }

  // Every connection waiting for `wait` reads again (resume() gets to them; Nexus: now).
  private waitingEveryone(wait: NbdWait): void {
    for (let i: u32 = 0; i < NBD_CONNECTIONS_MAX; i++) {
      const conn = unchecked(this.conns[i]);
      if (conn.wait != wait) continue;
      if (wait == NbdWait.Nexus) {
        this.setWait(conn, NbdWait.None);
        this.pump(conn);
      } else conn.wait = NbdWait.Room; // resume() retries Room, Page and Task alike
    }
  }

  private volumeOf(t: u32): u32 { return this.exports.volume(this.commands.extra(t)); }

  private exportBytes(e: u32): u64 {
    const v = volumeAt(this.exports.volume(e));
    return v.blockCount * <u64>v.blockSizeBytes;
  }

  private transmissionFlags(e: u32): u32 {
    let flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES
      | NBD_FLAG_SEND_CACHE | NBD_FLAG_CAN_MULTI_CONN;
    if (this.exports.isReadOnly(e)) flags |= NBD_FLAG_READ_ONLY;
    return flags;
  }
}

// An option reply with `dataBytes` of data to follow at `out` + OPTION_REPLY_HEADER_BYTES: its total length.
function optionReply(out: usize, option: u32, replyType: u32, dataBytes: u32): u32 {
  buildOptionReply(out, option, replyType, dataBytes);
  return OPTION_REPLY_HEADER_BYTES + dataBytes;
}

// Does a query name base:allocation (or, listing, "base:", every context of the namespace)?
function namesAllocation(query: usize, queryBytes: u32, listing: bool): bool {
  const name = META_BASE_ALLOCATION;
  if (listing && queryBytes == 5) {
    for (let i: u32 = 0; i < 5; i++) if (load<u8>(query + i) != <u8>name.charCodeAt(i)) return false;
    return true;
  }
  if (queryBytes != <u32>name.length) return false;
  for (let i: u32 = 0; i < queryBytes; i++) if (load<u8>(query + i) != <u8>name.charCodeAt(i)) return false;
  return true;
}
