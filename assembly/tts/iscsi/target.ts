// The iSCSI transport (TTS): the task that owns the NIC, the connections and the sessions. It frames PDUs out of
// the NIC's receive buffers, runs logins (login.ts), answers Text, NOP, Logout and TMF requests, turns SCSI Command
// PDUs into ScsiTasks for the SCSI target (which alone reads CDBs), solicits Data-Out with R2Ts when the SCSI target
// asks for data, and sends Data-In straight from the buffers the data landed in (zero copy: the NIC gathers them).
// Error recovery level 0: a failed connection fails its session (every connection, every task); the initiator
// logs in again. Requests wait in their session's CmdSN reorder queue behind a gap; TMFs act on it first.
// This file keeps the dispatch and the on… handlers; the records are the nouns': the sessions and their command
// order (session.ts), per-command bookkeeping (../commands.ts), staging slots (../staging.ts), R2Ts and Data-Out
// (data_out.ts), the send queue (../send_queue.ts), Data-In (data_in.ts), the NIC's transmit entries (transmit.ts)
// and the Text answers (text.ts).
import { SAM_STATUS_BUSY, SAM_STATUS_TASK_SET_FULL } from "../../protocol/scsi_status";
import { bootInfoConfigRomBase } from "../../board/boot_info";
import { randomFill } from "../../board/wasi";
import { BUFFER_CLASS_LARGE, BUFFER_CLASS_PAGE } from "../../config";
import { bufferPool } from "../../kernel/buffers";
import { carve } from "../../kernel/carve";
import { line } from "../../kernel/console";
import { MsgKind } from "../../kernel/msg";
import { POOL_NONE } from "../../kernel/pool";
import { RunResult, Task } from "../../kernel/task";
import { CommandKind, CommandPhase, TransportCommands } from "../commands";
import { Nic, NicEvent, NicEventType, RXQ_ENTRIES, TX_FLAG_CLOSE } from "../nic";
import { HeldReceive } from "../held_receive";
import { SendQueue } from "../send_queue";
import { StagingSlots, STAGE_NONE } from "../staging";
import { CONNECTIONS_MAX, ConnState, IscsiConn, TEXT_JOIN_AT, TEXT_JOIN_BYTES_MAX, TextPhase, TX_SLOTS } from "./conn";
import { DataInSender } from "./data_in";
import { DataOutTable, R2T_SLOTS, ttt } from "./data_out";
import { FrameEvent, SinkKind } from "./framer";
import { NegotiatedParams, negotiationLimits, negotiationLimitsCheck, SessionType } from "./keys";
import { LoginConnection, LoginOutcome, loginBegin, loginRefuse, loginRefuseRequest, loginStep, LOGIN_RANDOM_BYTES } from "./login";
import {
  BHS_BYTES, bhsCmdSn, bhsDataSegmentLength, bhsExpStatSn, bhsFinal, bhsImmediate, bhsInitiatorTaskTag, bhsLun, bhsOpcode,
  bhsBufferOffset, bhsContinue, bhsDataSn, bhsTargetTransferTag, buildLogoutResponse, buildNopIn, buildR2t, buildReject,
  buildScsiResponse, buildTmfResponse, loginSetTsih, LOGIN_OUT_OF_RESOURCES, LOGIN_SESSION_DOES_NOT_EXIST,
  LOGIN_TOO_MANY_CONNECTIONS, LOGOUT_CLOSE_CONNECTION, LOGOUT_CLOSE_SESSION, LOGOUT_RESPONSE_CLOSED, LOGOUT_RESPONSE_RECOVERY_NOT_SUPPORTED, lunDecode,
  OP_DATA_OUT, OP_LOGIN_REQUEST, OP_LOGOUT_REQUEST, OP_NOP_OUT, OP_SCSI_COMMAND, OP_SNACK_REQUEST, OP_TEXT_REQUEST,
  OP_TMF_REQUEST, PduCheck, PduPhase, pduCheckLoginStatus, pduCheckRejectReason, REJECT_COMMAND_NOT_SUPPORTED, REJECT_DATA_DIGEST_ERROR,
  REJECT_INVALID_PDU_FIELD, REJECT_LONG_OP_REJECT, REJECT_PROTOCOL_ERROR, SCSI_CMD_READ, SCSI_CMD_WRITE,
  SCSI_RESPONSE_COMPLETED, TAG_RESERVED, validateInitiatorPdu, LUN_INVALID, bhsFlags, logoutReasonCode, scsiCmdCdb,
  scsiCmdExpectedDataTransferLength, scsiCmdWrite, tmfFunction, tmfReferencedTaskTag, tmfRefCmdSn,
} from "./pdu";
import { SCSI_TASK_NONE, ScsiDirection, TmfFunction, TmfResponse } from "../../scsi/interface";
import { SCSI_TASKS_MAX, scsiTaskAborted, scsiTaskAbortReported, scsiTaskAlloc, scsiTasksFree, scsiTaskRelease, scsiTaskSgl, scsiTaskTmfResponse } from "../../scsi/tasks";
import { NEXUS_MAX, NEXUS_NONE as NEXUS_ID_NONE } from "../../scsi/nexus";
import { scsiNexusGonePost, scsiNexusIdentifyPost, scsiTargetLunsPost, scsiTaskDataReady, scsiTaskSubmit, scsiTmfSubmit } from "../../scsi/transport";
import { bytesEqual, TARGET_NONE, targetConfigAt, targetConfigCount } from "./config";
import { configRomLoadTargets } from "./config_rom";
import { nicPortCount, nicPortOf, portalGroupTag } from "./portals";
import { targetPortOf } from "../../scsi/target_port";
import { CMD_WINDOW, LOGIN_CONN_NONE, ORDER_ARRIVED, ORDER_EMPTY, Session, SessionState, SESSIONS_MAX, TMF_HELD_NONE } from "./session";
import { TextResponder, TEXT_ANSWERED } from "./text";
import { IscsiTransmit } from "./transmit";
import { NbdServer, NBD_NEXUS_COOKIE } from "../nbd/server";
import { TX_KIND_LARGE, TX_KIND_PAGE, TX_KIND_SLOT, TX_KIND_TASK, txIdConnection, txIdKind, txIdValue } from "../tx_id";

const CONNECTIONS_PER_SESSION_MAX: u32 = 4; // our MaxConnections
const TTS_PRIORITY: u32 = 1;
const TTS_INBOX_DEPTH: u32 = 512;
const EVENT_BATCH_MAX: u32 = 64;
const TEXT_HELD_DATA_LOST: u32 = 0x01; // a held Text Request's flags: its keys did not fit the join area (F is 0x80, C 0x40)
// The SCSI target's inbox holds a nexus request per session it can have (scsi/target.ts SCSI_INBOX_DEPTH).
if (SESSIONS_MAX > NEXUS_MAX) ERROR("iscsi: more sessions than the SCSI target keeps nexus requests for");

const RXQ_HELD_GUARD: u32 = RXQ_ENTRIES + 1; // loops over a connection's held buffers: no more can be held

// What became of a login that completed its negotiation (enterFullFeature).
enum LoginEntry {
  Entered = 0, // full feature phase: the final Login Response goes now
  Refused = 1, // a failure status is in the response: it goes now, and the connection closes
  Identifying = 2, // a new session waits for its nexus id: the response is held until the SCSI target answers
}

export class IscsiTask extends Task {
  readonly nic: Nic = new Nic();
  private readonly conns: StaticArray<IscsiConn> = new StaticArray<IscsiConn>(CONNECTIONS_MAX);
  private readonly logins: StaticArray<LoginConnection> = new StaticArray<LoginConnection>(CONNECTIONS_MAX);
  private readonly sessions: StaticArray<Session> = new StaticArray<Session>(SESSIONS_MAX);
  private readonly event: NicEvent = new NicEvent();
  private readonly used: StaticArray<u32> = new StaticArray<u32>(1);
  private readonly random: usize = carve(LOGIN_RANDOM_BYTES + 3, 4);
  private readonly zeros: usize = carve(16, 16); // an empty data segment for the login engine
  private readonly portalText: usize = carve(64);
  private readonly commands: TransportCommands = new TransportCommands();
  private readonly dataOut: DataOutTable = new DataOutTable();
  private readonly stage: StagingSlots = new StagingSlots();
  private readonly held: HeldReceive = new HeldReceive(); // receive buffers of connections waiting for a staging slot
  private holdAsked: bool = false; // chooseSink found no staging slot worth waiting for: reading stops at this header
  private readonly readEnd: StaticArray<u32> = new StaticArray<u32>(1); // readBuffer's stopping point
  private readonly sendQueue: SendQueue = new SendQueue(); // ScsiDone waiting for room
  private readonly tx: IscsiTransmit = new IscsiTransmit(this.nic, this.commands);
  private readonly dataIn: DataInSender = new DataInSender(this.nic, this.commands, this.tx);
  private readonly text: TextResponder = new TextResponder(this.tx);
  // The NBD server on its own portal: the connections that arrive there, and its commands, are its (../nbd/).
  private readonly nbd: NbdServer = new NbdServer(this.nic, this.commands);
  private readonly scratchParams: NegotiatedParams = new NegotiatedParams();
  private orderCmdSn: bool = false; // the PDU being dispatched is a non-immediate command: it takes its CmdSN's entry
  reorderedCount: u64 = 0; // SCSI commands that waited for an earlier CmdSN
  stageBusyCount: u64 = 0; // commands answered BUSY for want of a staging slot
  stageWaitCount: u64 = 0; // commands whose connection stopped reading until a staging slot came back
  discardedDataOut: u64 = 0; // Data-Out for tasks that are gone (aborted): dropped silently
  private bootInfo: usize = 0;
  serving: bool = false;
  pduCount: u64 = 0;
  rejectCount: u64 = 0;

  constructor() {
    super("iscsi", TTS_PRIORITY, TTS_INBOX_DEPTH, 2_000_000);
    for (let i: u32 = 0; i < CONNECTIONS_MAX; i++) {
      unchecked(this.conns[i] = new IscsiConn(i));
      unchecked(this.logins[i] = new LoginConnection());
    }
    for (let i: u32 = 0; i < SESSIONS_MAX; i++) unchecked(this.sessions[i] = new Session());
  }

  /** Boot: the NIC, the targets from the configuration ROM, our negotiation preferences. False without a NIC. */
  boot(bootInfo: usize): bool {
    this.bootInfo = bootInfo;
    // Unsolicited data (immediate, and Data-Out before any R2T) saves the round trip of the first R2T. The SCSI
    // target owns the task's buffers and has them only once it has the command, so those bytes wait in a staging
    // slot (a large buffer taken here) until it asks; without slots, every Data-Out is solicited.
    const slots = this.stage.boot();
    negotiationLimits.immediateData = slots > 0;
    negotiationLimits.initialR2t = slots == 0;
    negotiationLimits.firstBurstLength = 65536; // one staging slot
    assert(negotiationLimits.firstBurstLength <= bufferPool(BUFFER_CLASS_LARGE).slotBytes, "iscsi: FirstBurstLength fits a staging slot");
    negotiationLimits.maxRecvDataSegmentLength = 65536;
    negotiationLimits.maxOutstandingR2t = R2T_SLOTS;
    negotiationLimits.maxBurstLength = 1048576;
    // Several connections per session (MC/S): their commands meet in CmdSN order in the session's reorder queue.
    negotiationLimits.maxConnections = CONNECTIONS_PER_SESSION_MAX;
    negotiationLimitsCheck();
    configRomLoadTargets(bootInfoConfigRomBase(bootInfo), this.portalText, 64);
    this.text.portalsSet(this.portalText, strlen(this.portalText, 64));
    this.nbd.boot(bootInfoConfigRomBase(bootInfo), this.index);
    return this.nic.boot(bootInfo, this.index);
  }

  // The UMA's advertisement: the volumes exist, so the portals open.
  private onAdvertise(volumes: u32): void {
    if (this.serving || !this.nic.present) return;
    // Each target's LUN map, for REPORT LUNS through its ports: one per NIC port (scsi/target_port.ts; a single
    // board has one, so the port is the target's index + 1), as for nexuses.
    const targets = targetConfigCount();
    for (let n: u32 = 0; n < nicPortCount(); n++) {
      for (let i: u32 = 0; i < targets; i++) {
        const t = targetConfigAt(i);
        scsiTargetLunsPost(this.index, targetPortOf(n, i, targets), changetype<usize>(t.luns), changetype<usize>(t.volumes), t.lunCount, n, targets);
      }
    }
    this.nic.start();
    this.nbd.start();
    this.serving = true;
    line().s("tts: serving ").u32(volumes).s(" volumes on ").bytes(this.portalText, 64).out();
  }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < EVENT_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      switch (<i32>this.scratch.kind) {
        case MsgKind.Irq: this.drainNic(); break;
        case MsgKind.ScsiDataOut: this.onScsiDataOut(this.scratch.a, this.scratch.b); break;
        case MsgKind.ScsiDone: this.onScsiDone(this.scratch.a); break;
        case MsgKind.ScsiTmfDone: this.onTmfDone(this.scratch.a); break;
        case MsgKind.ScsiNexusIdentified: {
          if (this.scratch.a == NBD_NEXUS_COOKIE) this.nbd.onNexus(this.scratch.b);
          else this.onNexusIdentified(this.scratch.a, this.scratch.b);
          break;
        }
        case MsgKind.TtsAdvertise: this.onAdvertise(this.scratch.a); break;
        default: assert(false, "iscsi: unexpected message kind");
      }
    }
    this.flushSendQueue();
    if (this.nbd.resume()) handled += 1; // a connection with bytes left to read: run again
    this.resumeHeld();
    this.nbd.flushReplies(); // NBD's replies batched this turn: one NIC entry per connection
    this.tx.batches.flush(); // and iSCSI's answers (reply_batch.ts)
    this.nic.rxFlush();
    this.nic.txFlush();
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  // ---- NIC events ----

  private drainNic(): void {
    // Bounded by the event queue's size per interrupt; more events raise the interrupt again.
    for (let i: u32 = 0; i < 1024 && this.nic.next(this.event); i++) {
      const e = this.event;
      if (e.connection >= CONNECTIONS_MAX) continue; // the NIC's word: validated
      const conn = unchecked(this.conns[e.connection]);
      // A connection on the NBD portal is the NBD server's from its Opened to its Closed; Sent events are shared.
      if (e.type == NicEventType.Opened && this.nbd.ownsPortal(e.portal)) {
        if (conn.state == ConnState.Free) this.nbd.opened(e.connection);
        else this.nic.close(e.connection);
        continue;
      }
      if ((e.type == NicEventType.Received || e.type == NicEventType.Closed) && this.nbd.owns(e.connection)) {
        if (e.type == NicEventType.Received) this.nbd.received(e.connection, e.id, e.lengthBytes);
        else this.nbd.closed(e.connection);
        continue;
      }
      switch (<i32>e.type) {
        case NicEventType.Opened: this.onOpened(conn, e.portal); break;
        case NicEventType.Closed: this.onClosed(conn); break;
        case NicEventType.Received: this.onReceived(conn, e.id, e.lengthBytes); break;
        case NicEventType.Sent: this.onSent(e.id); break;
        default: break; // an event type this driver does not know: ignore it
      }
    }
    this.nic.evFlush(); // the queue's room comes back once per batch: one EVQ_TAIL write
  }

  private onOpened(conn: IscsiConn, portal: u32): void {
    if (conn.state != ConnState.Free || this.nbd.owns(conn.slot) || !conn.open(portal)) {
      this.nic.close(conn.slot);
      return;
    }
    randomFill(this.random, LOGIN_RANDOM_BYTES + 3);
    const login = unchecked(this.logins[conn.slot]);
    loginBegin(login, load<u32>(this.random + LOGIN_RANDOM_BYTES - 1) & 0x00ff_ffff, portalGroupTag(nicPortOf(portal)), CMD_WINDOW, this.random);
  }

  private onClosed(conn: IscsiConn): void {
    if (conn.state == ConnState.Free) return;
    this.tx.batches.drop(conn.slot); // the peer is gone: what it would have been sent goes nowhere
    this.connectionGone(conn);
    conn.release();
  }

  // The connection's tasks are orphaned (freed when the SCSI target answers) and its requests still waiting in the
  // reorder queue end there. RFC 7143, "Error Recovery Level 0" (§7.1.1, §6.1.5): at ERL 0 a connection failure is a
  // session failure, so unless the connection logged out, every other connection of its session is dropped too and
  // the session ends with the last (ScsiNexusGone: the SCSI target aborts the nexus's tasks, ends RESERVE(6)).
  private connectionGone(conn: IscsiConn): void {
    if (conn.loginHeldSlot != TX_SLOTS) this.loginHeldAbandon(conn); // its session learns it when the answer comes
    if (conn.pendingStage != STAGE_NONE) this.stage.give(conn.pendingStage); // immediate data cut off mid-PDU
    conn.pendingStage = STAGE_NONE;
    this.releaseHeld(conn);
    const s = conn.session < SESSIONS_MAX ? unchecked(this.sessions[conn.session]) : null;
    if (s != null && s.tmfHeld != TMF_HELD_NONE && this.commands.connection(s.tmfHeld) == conn.slot) {
      this.taskFinish(s.tmfHeld); // an immediate TMF waiting for a gap: nobody is left to answer
      s.tmfHeld = TMF_HELD_NONE;
    }
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) {
      const phase = this.commands.phase(t);
      if (phase == CommandPhase.Free || this.commands.connection(t) != conn.slot) continue;
      if (phase == CommandPhase.Waiting) {
        // Never acted: it ends here, without an answer (ERL 0: the connection's commands are lost). Its place in the
        // order counts as arrived, so the requests after it are not held up by it.
        if (s != null) s.orderForget(this.commands.sequence(t));
        conn.waitingReleased += 1;
        this.taskFinish(t);
        continue;
      }
      if (phase == CommandPhase.DataOut) scsiTaskDataReady(t, this.index, true); // the data will not come
      // Orphans are released by whoever holds them last: the SCSI target's ScsiDone, the last Sent, or the queue.
      this.commands.setPhase(t, CommandPhase.Orphan);
    }
    if (s == null) return;
    const sessionIndex = conn.session;
    line().s("iscsi: connection ").u32(conn.slot).s(" ends: ").u32(conn.pduCount).s(" PDUs in, immediate data ")
      .u64(conn.immediateBytes).s(" bytes, unsolicited Data-Out ").u64(conn.unsolicitedBytes).s(" bytes, ")
      .u32(conn.r2tCount).s(" R2Ts, ").u32(conn.waitingReleased).s(" waiting commands ended; tasks free ")
      .u32(scsiTasksFree()).s(", staging slots free ").u32(this.stage.freeCount()).s(", BUSY for want of one so far ")
      .u64(this.stageBusyCount).s(", read held back for one ").u64(this.stageWaitCount).out();
    s.connections -= 1;
    conn.session = 0xffff_ffff;
    if (s.connections == 0) {
      if (s.nexus != NEXUS_ID_NONE) scsiNexusGonePost(this.index, s.nexus);
      s.close();
      return;
    }
    if (conn.state != ConnState.LoggedOut) {
      if (s.state != SessionState.Active) return; // failing already: the connection that failed first drops the rest
      s.state = SessionState.Failing;
      line().s("iscsi: session ").u32(s.tsih).s(" fails with connection ").u32(conn.slot).s(" (ERL 0): ").u32(s.connections)
        .s(" other connections dropped").out();
      // One level deep: each drop comes back here with the session Failing, and the last one ends the session.
      for (let c: u32 = 0; c < CONNECTIONS_MAX; c++) {
        const other = unchecked(this.conns[c]);
        if (other.session == sessionIndex && other.state != ConnState.Free && other.state != ConnState.Closing) this.drop(other);
      }
      return;
    }
    if (s.state == SessionState.Active && s.waiting > 0) {
      // A connection that logged out (its own, not the session's): the commands the gaps stand for may have been on
      // it, and they will not come; the requests waiting on the other connections would wait forever. The gaps are
      // given up: ExpCmdSN steps over them to the last waiting request, which all act in order.
      if (s.orderGiveUpGaps()) this.orderAdvance(s, sessionIndex);
    }
  }

  private onReceived(conn: IscsiConn, id: u32, lengthBytes: u32): void {
    if (this.nic.rxAddress(id, lengthBytes) == 0) return; // not a buffer we posted: the NIC is confused; nothing to give back
    if (this.held.count(conn.slot) > 0) {
      // Reading has stopped for a staging slot: this buffer waits behind the others, in stream order.
      if (!this.held.hold(conn.slot, id, lengthBytes, 0)) {
        this.nic.rxPost(id);
        this.drop(conn); // more buffers than were posted: the NIC is confused; the stream has a hole now
      }
      return;
    }
    if (this.readBuffer(conn, id, lengthBytes, 0)) this.nic.rxPost(id);
    else if (!this.held.hold(conn.slot, id, lengthBytes, unchecked(this.readEnd[0]))) {
      this.nic.rxPost(id);
      this.drop(conn);
    }
  }

  // Feeds receive buffer `id` to the framer from `from`. True when it is done with (read to its end, or the
  // connection went); false when reading stopped at a header waiting for a staging slot, at readEnd[0].
  private readBuffer(conn: IscsiConn, id: u32, lengthBytes: u32, from: u32): bool {
    const buffer = this.nic.rxAddress(id, lengthBytes);
    let at = from;
    // Bounded: every event consumes bytes or ends a PDU; a buffer holds at most lengthBytes / 48 headers.
    for (let guard: u32 = 0; guard <= lengthBytes && at < lengthBytes && conn.state != ConnState.Free && conn.state != ConnState.Closing; guard++) {
      const event = conn.framer.feed(buffer + at, lengthBytes - at, this.used);
      at += unchecked(this.used[0]);
      if (event == FrameEvent.None) continue;
      this.onFrameEvent(conn, event);
      if (conn.headerHeld) {
        unchecked(this.readEnd[0] = at);
        return false;
      }
    }
    return true;
  }

  // Connections that stopped reading for a staging slot go on where they stopped, oldest buffer first, as long as
  // a slot is there to be had (or waiting has become futile: then BUSY, as before). Run at the end of every turn of
  // the task: slots come back through its messages (ScsiDataOut, ScsiDone) and through connections that end.
  private resumeHeld(): void {
    if (this.held.holdingCount == 0) return;
    for (let c: u32 = 0; c < CONNECTIONS_MAX && this.held.holdingCount > 0; c++) {
      const conn = unchecked(this.conns[c]);
      if (this.held.count(c) == 0) continue;
      if (conn.headerHeld) {
        if (this.stage.freeCount() == 0 && this.stageComesBack()) continue;
        conn.headerHeld = false;
        this.onFrameEvent(conn, FrameEvent.Header); // its sink again: now a slot, or BUSY
        if (conn.headerHeld) continue; // another connection's header took the slot first (cannot, but cheap)
      }
      // Bounded by the buffers held (at most RXQ_ENTRIES); each is read to its end or stops at a header.
      for (let guard: u32 = 0; guard < RXQ_HELD_GUARD && this.held.count(c) > 0; guard++) {
        const id = this.held.oldestId(c);
        const done = this.readBuffer(conn, id, this.held.oldestLength(c), this.held.oldestOffset(c));
        if (this.held.count(c) == 0) break; // the connection went meanwhile: releaseHeld gave every buffer back
        if (!done) {
          this.held.setOldestOffset(c, unchecked(this.readEnd[0]));
          break;
        }
        this.held.dropOldest(c);
        this.nic.rxPost(id);
      }
    }
  }

  // The connection's held buffers go back to the NIC unread (it is gone, or going).
  private releaseHeld(conn: IscsiConn): void {
    conn.headerHeld = false;
    for (let guard: u32 = 0; guard < RXQ_HELD_GUARD && this.held.count(conn.slot) > 0; guard++) {
      const id = this.held.oldestId(conn.slot);
      this.held.dropOldest(conn.slot);
      this.nic.rxPost(id);
    }
  }

  // True when a staging slot will come back without another byte from the network: some slot's command has all its
  // unsolicited data and its CmdSN turn, so the SCSI target will take the data and the slot goes back. Waiting is
  // safe only then: a command still waiting for its turn (the gap may be behind the header that waits) or for more
  // Data-Out (it may be behind that header too, or on a connection the held buffers leave without receive buffers)
  // might never let go. Bounded by the task table.
  private stageComesBack(): bool {
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) {
      if (this.stage.ofCommand(t) == STAGE_NONE) continue;
      const phase = this.commands.phase(t);
      if (phase != CommandPhase.Waiting && phase != CommandPhase.Free && !this.dataOut.unsolicitedMore(t)) return true;
    }
    return false;
  }

  private onFrameEvent(conn: IscsiConn, event: FrameEvent): void {
    switch (event) {
      case FrameEvent.Header: {
        this.chooseSink(conn);
        if (this.holdAsked) {
          // No staging slot: reading stops here (the caller holds the buffer) until resumeHeld takes this header up.
          this.holdAsked = false;
          conn.headerHeld = true;
          this.stageWaitCount += 1;
          break;
        }
        if (conn.framer.finishEmpty()) this.onPdu(conn, false);
        break;
      }
      case FrameEvent.Pdu: this.onPdu(conn, false); break;
      case FrameEvent.DataDigestError: this.onPdu(conn, true); break;
      case FrameEvent.HeaderDigestError:
      case FrameEvent.BadHeader: this.drop(conn); break;
      default: break;
    }
  }

  // Where the data segment of the PDU whose header just arrived goes.
  private chooseSink(conn: IscsiConn): void {
    const f = conn.framer;
    const bhs = f.header;
    f.sinkKind = SinkKind.Discard;
    const op = bhsOpcode(bhs);
    if (op == OP_SCSI_COMMAND && scsiCmdWrite(bhs) && f.dataBytes <= negotiationLimits.firstBurstLength && (f.dataBytes > 0 || !bhsFinal(bhs))) {
      // Unsolicited data (immediate, or Data-Out to follow): a staging slot for it (onScsiCommand owns it from there;
      // onPdu frees it if nobody took it). None free: reading stops here until one comes back, unless every slot is
      // held by a command waiting for its CmdSN turn (the gap may be behind this header): then onScsiCommand answers
      // BUSY and its data is discarded.
      const stage = this.stage.take();
      if (stage == STAGE_NONE) {
        if (conn.state == ConnState.FullFeature && this.stageComesBack()) this.holdAsked = true;
        return;
      }
      conn.pendingStage = stage;
      if (f.dataBytes == 0) return;
      f.sinkKind = SinkKind.Memory;
      f.sinkAddress = this.stage.address(stage);
      return;
    }
    if (f.dataBytes == 0) return;
    if (op == OP_DATA_OUT) {
      const unsolicited = bhsTargetTransferTag(bhs) == TAG_RESERVED;
      const t = unsolicited ? this.unsolicitedTask(conn, bhs) : this.dataOutTask(conn, bhs);
      if (t == SCSI_TASK_NONE) return;
      const offset = bhsBufferOffset(bhs);
      if (unsolicited) {
        // Out of sequence or past FirstBurstLength: discarded here, answered in onUnsolicitedDataOut.
        if (!this.dataOut.unsolicitedFits(t, offset, f.dataBytes)) return;
        // The SCSI target has its buffers and wants these bytes: straight in. Otherwise they wait in the stage.
        if (this.commands.phase(t) != CommandPhase.DataOut || offset + f.dataBytes > this.dataOut.totalBytes(t)) {
          f.sinkKind = SinkKind.Memory;
          f.sinkAddress = this.stage.address(<u32>this.stage.ofCommand(t)) + offset;
          return;
        }
      }
      f.sinkKind = SinkKind.Sgl;
      f.sgl = scsiTaskSgl(t);
      f.sglOffset = offset;
      return;
    }
    if (op == OP_TEXT_REQUEST) {
      // Keys continuing the initiator's text (C=1 before) join the ones already in; a new request starts over.
      // Beyond TEXT_JOIN_BYTES_MAX the data is discarded and onText answers with a Reject.
      const joining = conn.textPhase == TextPhase.Receiving && bhsTargetTransferTag(bhs) == conn.textTtt
        && bhsInitiatorTaskTag(bhs) == conn.textItt;
      const at = joining ? conn.textJoinBytes : 0;
      if (conn.scratchIndex != POOL_NONE && <u64>at + f.dataBytes <= <u64>TEXT_JOIN_BYTES_MAX) {
        f.sinkKind = SinkKind.Memory;
        f.sinkAddress = conn.scratch() + TEXT_JOIN_AT + at;
      }
      return;
    }
    if (f.dataBytes <= 65536 && conn.scratchIndex != POOL_NONE) {
      f.sinkKind = SinkKind.Memory;
      f.sinkAddress = conn.scratch();
    }
  }

  // ---- PDUs ----

  private onPdu(conn: IscsiConn, dataDigestBad: bool): void {
    this.onPduDispatch(conn, dataDigestBad);
    if (conn.pendingStage != STAGE_NONE) this.stage.give(conn.pendingStage); // immediate data nobody took
    conn.pendingStage = STAGE_NONE;
  }

  private onPduDispatch(conn: IscsiConn, dataDigestBad: bool): void {
    this.pduCount += 1;
    conn.pduCount += 1;
    const bhs = conn.framer.header;
    if (conn.loginHeldSlot != TX_SLOTS) {
      // RFC 7143, Login: nothing may follow the final Login Request before its response, which waits for the SCSI
      // target's nexus id. A PDU now is a protocol error during login: the connection goes.
      this.drop(conn);
      return;
    }
    if (dataDigestBad) {
      this.reject(conn, REJECT_DATA_DIGEST_ERROR);
      this.orderRejected(conn);
      return;
    }
    const phase = conn.state == ConnState.Login ? PduPhase.Login : PduPhase.FullFeature;
    // During login the default 8192 is in force; our declared MaxRecvDataSegmentLength applies afterwards.
    const check = validateInitiatorPdu(bhs, conn.state == ConnState.Login ? 8192 : 65536, phase);
    if (check != PduCheck.Ok) {
      // RFC 7143, Login Response, Status-Class 2: a PDU other than a Login Request is "invalid during login"
      // (0x020b), a malformed Login Request an initiator error (0x0200); the login ends with that answer.
      if (conn.state == ConnState.Login) this.refuseLogin(conn, pduCheckLoginStatus(check));
      else {
        this.reject(conn, pduCheckRejectReason(check));
        this.orderRejected(conn);
      }
      return;
    }
    const op = bhsOpcode(bhs);
    if (conn.state == ConnState.Login) {
      this.onLogin(conn); // validateInitiatorPdu let only Login Requests through
      return;
    }
    if (conn.state != ConnState.FullFeature) return;
    const sessionIndex = conn.session;
    const s = unchecked(this.sessions[sessionIndex]);
    conn.expStatSn = bhsExpStatSn(bhs);
    const cmdSn = bhsCmdSn(bhs);
    const ordered = op != OP_DATA_OUT && !bhsImmediate(bhs);
    if (ordered && !s.orderAccepts(cmdSn)) return;
    if (ordered && cmdSn != s.expCmdSn && (op == OP_NOP_OUT || op == OP_TEXT_REQUEST || op == OP_LOGOUT_REQUEST || op == OP_TMF_REQUEST)) {
      this.holdRequest(conn, s, cmdSn); // RFC 7143 §4.2.2.1: delivered in CmdSN order, like SCSI commands
      return;
    }
    this.orderCmdSn = ordered;
    switch (op) {
      case OP_SCSI_COMMAND: this.onScsiCommand(conn, s); break;
      case OP_DATA_OUT: this.onDataOut(conn); break;
      case OP_NOP_OUT: this.onNopOut(conn, s); break;
      case OP_TEXT_REQUEST: this.onText(conn, s); break;
      case OP_LOGOUT_REQUEST: this.logoutAnswer(conn, s, bhsInitiatorTaskTag(bhs), logoutReasonCode(bhs)); break;
      case OP_TMF_REQUEST: this.onTmf(conn, sessionIndex); break;
      case OP_LOGIN_REQUEST: this.reject(conn, REJECT_PROTOCOL_ERROR); break;
      case OP_SNACK_REQUEST: this.reject(conn, REJECT_COMMAND_NOT_SUPPORTED); break; // ERL 0
      default: this.reject(conn, REJECT_COMMAND_NOT_SUPPORTED);
    }
    this.orderCmdSn = false;
    // A command that did not wait (answered, refused, or not a SCSI command) still fills its place in the order.
    // (Even when the connection went meanwhile: the session's other connections go on from it.)
    if (ordered && s.state == SessionState.Active && s.orderArrived(cmdSn)) this.orderAdvance(s, sessionIndex);
    else if (op == OP_TMF_REQUEST && s.state == SessionState.Active) this.orderAdvance(s, sessionIndex); // ABORT TASK of a gap
  }

  // A numbered Text, NOP-Out, Logout or TMF request behind a CmdSN gap waits in the session's reorder queue, in a
  // transport record that keeps what it needs to act later (CommandKind). Its data waits where it is (Text: the
  // connection's join area, which holds one exchange's keys, and an initiator has one Text Request outstanding per
  // connection) or in a page (NOP-Out). No record or page free: the connection goes, as for a ping we cannot answer.
  private holdRequest(conn: IscsiConn, s: Session, cmdSn: u32): void {
    const bhs = conn.framer.header;
    const op = bhsOpcode(bhs);
    const dataBytes = conn.framer.sinkKind == SinkKind.Memory ? conn.framer.dataBytes : 0;
    const pool = bufferPool(BUFFER_CLASS_PAGE);
    const t = scsiTaskAlloc();
    // A NOP-Out's data waits in a page; so does a Text's 48-byte header (refused at its turn, its Reject carries it:
    // RFC 7143 §11.17, not the header its connection received last).
    const wantsPage = (op == OP_NOP_OUT && dataBytes > 0 && dataBytes <= pool.slotBytes) || op == OP_TEXT_REQUEST;
    const page = t != SCSI_TASK_NONE && wantsPage ? pool.acquire() : POOL_NONE;
    if (t == SCSI_TASK_NONE || (wantsPage && page == POOL_NONE)) {
      if (t != SCSI_TASK_NONE) scsiTaskRelease(t);
      this.drop(conn);
      return;
    }
    this.commands.begin(t, conn.slot, bhsInitiatorTaskTag(bhs), bhsLun(bhs));
    switch (op) {
      case OP_TMF_REQUEST: this.commands.setRequest(t, CommandKind.Tmf, tmfFunction(bhs), tmfReferencedTaskTag(bhs), tmfRefCmdSn(bhs)); break;
      case OP_TEXT_REQUEST: {
        const lost = conn.framer.sinkKind != SinkKind.Memory && conn.framer.dataBytes > 0 ? TEXT_HELD_DATA_LOST : 0;
        memory.copy(pool.address(page), bhs, BHS_BYTES);
        this.commands.setRequest(t, CommandKind.Text, lost, page, 0);
        break;
      }
      case OP_NOP_OUT: {
        if (page != POOL_NONE) memory.copy(pool.address(page), conn.scratch(), dataBytes);
        this.commands.setRequest(t, CommandKind.NopOut, 0, page, dataBytes);
        break;
      }
      case OP_LOGOUT_REQUEST: this.commands.setRequest(t, CommandKind.Logout, logoutReasonCode(bhs), 0, 0); break;
      default: assert(false, "iscsi: only Text, NOP-Out, Logout and TMF requests are held");
    }
    this.commands.setSequence(t, cmdSn);
    this.commands.setPhase(t, CommandPhase.Waiting);
    s.orderHold(cmdSn, t);
    this.reorderedCount += 1;
  }

  // A PDU refused with a Reject before dispatch still used its CmdSN if it is a numbered command in the window: the
  // initiator will not send that CmdSN again (ERL 0), so the commands after it must not wait for it.
  private orderRejected(conn: IscsiConn): void {
    if (conn.state != ConnState.FullFeature || conn.session >= SESSIONS_MAX) return;
    const bhs = conn.framer.header;
    const op = bhsOpcode(bhs);
    const numbered = op == OP_SCSI_COMMAND || op == OP_NOP_OUT || op == OP_TMF_REQUEST || op == OP_TEXT_REQUEST || op == OP_LOGOUT_REQUEST;
    if (!numbered || bhsImmediate(bhs)) return;
    const s = unchecked(this.sessions[conn.session]);
    if (s.state == SessionState.Active && s.orderArrived(bhsCmdSn(bhs))) this.orderAdvance(s, conn.session);
  }

  // ExpCmdSN advances over the run of arrived commands from it, handing the waiting SCSI commands in that run to
  // the SCSI target in CmdSN order, whatever connection each came on. Bounded by the window.
  // A held immediate TMF acts once ExpCmdSN reaches its CmdSN: the commands before it have come by then.
  private orderAdvance(s: Session, sessionIndex: u32): void {
    for (let i: u32 = 0; i <= CMD_WINDOW; i++) {
      if (s.tmfHeld != TMF_HELD_NONE && s.expCmdSn == this.commands.sequence(s.tmfHeld)) {
        const tmf = s.tmfHeld;
        s.tmfHeld = TMF_HELD_NONE;
        this.tmfSubmit(tmf, s);
      }
      const entry = s.orderStep();
      if (entry == ORDER_EMPTY) return;
      if (entry != ORDER_ARRIVED) this.orderTurn(entry, sessionIndex);
    }
  }

  // A request's turn in CmdSN order has come: a SCSI command goes to the SCSI target (unless a held TMF covers it:
  // then it ends here, aborted), the others act now. A request whose connection can no longer answer just ends.
  private orderTurn(t: u32, sessionIndex: u32): void {
    assert(this.commands.phase(t) == CommandPhase.Waiting, "iscsi: a request whose turn came was waiting");
    const s = unchecked(this.sessions[sessionIndex]);
    const kind = this.commands.kind(t);
    if (kind == CommandKind.Scsi) {
      if (s.tmfHeld != TMF_HELD_NONE && this.tmfCovers(s.tmfHeld, t)) this.taskFinish(t); // never runs
      else this.submit(t, sessionIndex);
      return;
    }
    const conn = unchecked(this.conns[this.commands.connection(t)]);
    if (conn.state != ConnState.FullFeature || conn.session != sessionIndex) {
      this.taskFinish(t);
      return;
    }
    // Out of the queue (orderStep took its entry): if acting drops the connection, connectionGone must not forget
    // its place again.
    this.commands.setPhase(t, CommandPhase.Submitted);
    switch (kind) {
      case CommandKind.Tmf: this.tmfAct(t, sessionIndex); return; // the record is the TMF's own from here
      case CommandKind.Text: {
        const page = this.commands.extra(t);
        const h = bufferPool(BUFFER_CLASS_PAGE).address(page);
        this.textAct(conn, s, bhsInitiatorTaskTag(h), bhsLun(h), bhsTargetTransferTag(h), bhsDataSegmentLength(h), bhsContinue(h),
          (this.commands.flagsOf(t) & TEXT_HELD_DATA_LOST) != 0, h);
        break;
      }
      case CommandKind.NopOut: {
        const page = this.commands.extra(t);
        const dataBytes = this.commands.expectedBytesOf(t);
        this.commands.setRequest(t, CommandKind.NopOut, 0, POOL_NONE, 0); // the page goes with the answer
        this.nopAnswer(conn, s, this.commands.lun(t), this.commands.tag(t), page, dataBytes);
        break;
      }
      case CommandKind.Logout: this.logoutAnswer(conn, s, this.commands.tag(t), this.commands.flagsOf(t)); break;
      default: assert(false, "iscsi: unexpected request kind in the order");
    }
    this.taskFinish(t);
  }

  // A SCSI command's turn has come: to the SCSI target.
  private submit(t: u32, sessionIndex: u32): void {
    assert(this.commands.phase(t) == CommandPhase.Waiting, "iscsi: a submitted command was waiting");
    this.commands.setPhase(t, CommandPhase.Submitted);
    const s = unchecked(this.sessions[sessionIndex]);
    const flags = this.commands.flagsOf(t);
    const read = (flags & SCSI_CMD_READ) != 0;
    const write = (flags & SCSI_CMD_WRITE) != 0;
    scsiTaskSubmit(t, this.index, s.nexus, this.targetLunToVolume(s, lunDecode(this.commands.lun(t))),
      this.commands.cdb(t), 16, this.commands.expectedBytesOf(t),
      read ? ScsiDirection.Read : write ? ScsiDirection.Write : ScsiDirection.None, this.commands.tag(t), flags & 7);
  }

  private onLogin(conn: IscsiConn): void {
    const login = unchecked(this.logins[conn.slot]);
    const slot = this.tx.begin(conn);
    const page = bufferPool(BUFFER_CLASS_PAGE).acquire();
    if (slot == TX_SLOTS || page == POOL_NONE) {
      if (slot != TX_SLOTS) conn.txSlotGive(slot);
      if (page != POOL_NONE) bufferPool(BUFFER_CLASS_PAGE).release(page);
      this.drop(conn); // no room to answer: the initiator retries the login
      return;
    }
    const response = conn.txSlotAddress(slot);
    const data = bufferPool(BUFFER_CLASS_PAGE).address(page);
    const f = conn.framer;
    let outcome = loginStep(login, f.header, f.sinkKind == SinkKind.Memory ? conn.scratch() : this.zeros, f.sinkKind == SinkKind.Memory ? f.dataBytes : 0, response, data, bufferPool(BUFFER_CLASS_PAGE).slotBytes);
    if (login.identifiedNow) outcome = this.checkSession(conn, login, response, outcome);
    if (outcome == LoginOutcome.Complete && this.enterFullFeature(conn, login, response) == LoginEntry.Identifying) {
      conn.loginHeldSlot = slot; // sent by onNexusIdentified
      conn.loginHeldPage = page;
      return;
    }
    this.tx.withPage(conn, slot, page, login.responseDataBytes, outcome == LoginOutcome.Failed ? TX_FLAG_CLOSE : 0);
    if (outcome == LoginOutcome.Failed) conn.state = ConnState.Closing;
  }

  // A Login Response with a failure status for a PDU refused before the login engine saw it, then the close.
  private refuseLogin(conn: IscsiConn, status: u32): void {
    const slot = this.tx.begin(conn);
    if (slot == TX_SLOTS) {
      this.drop(conn); // no room even for the answer: the close alone says it
      return;
    }
    loginRefuseRequest(unchecked(this.logins[conn.slot]), conn.framer.header, status, conn.txSlotAddress(slot));
    this.tx.header(conn, slot, TX_FLAG_CLOSE);
    conn.state = ConnState.Closing;
  }

  // TSIH 0: a new session (an old one with this initiator and ISID is reinstated: closed); else join that session.
  private checkSession(conn: IscsiConn, login: LoginConnection, response: usize, outcome: LoginOutcome): LoginOutcome {
    if (login.tsih == 0) return outcome;
    const index = login.tsih - 1; // the initiator's word: validated
    // RFC 7143, Session: a session's connections are all in one portal group (on a board of a cluster, a NIC port).
    if (index >= SESSIONS_MAX || unchecked(this.sessions[index]).state != SessionState.Active
      || unchecked(this.sessions[index]).isid != login.isid || unchecked(this.sessions[index]).nicPort != nicPortOf(conn.portal)) {
      loginRefuse(login, LOGIN_SESSION_DOES_NOT_EXIST, response);
      return LoginOutcome.Failed;
    }
    // MaxConnections is leading-only: the session's value, from its first login, bounds the others.
    if (unchecked(this.sessions[index]).connections >= unchecked(this.sessions[index]).maxConnections) {
      loginRefuse(login, LOGIN_TOO_MANY_CONNECTIONS, response);
      return LoginOutcome.Failed;
    }
    return outcome;
  }

  // A login completed its negotiation: a new session (which, unless for discovery, first needs its nexus id from
  // the SCSI target: the answer comes as ScsiNexusIdentified), or a connection joining its session.
  private enterFullFeature(conn: IscsiConn, login: LoginConnection, response: usize): LoginEntry {
    const params = login.negotiation.params;
    let index: u32 = 0xffff_ffff;
    if (login.tsih == 0) {
      this.reinstate(login, nicPortOf(conn.portal));
      for (let i: u32 = 0; i < SESSIONS_MAX; i++) if (unchecked(this.sessions[i]).state == SessionState.Free) { index = i; break; }
      if (index == 0xffff_ffff) {
        loginRefuse(login, LOGIN_OUT_OF_RESOURCES, response);
        conn.state = ConnState.Closing;
        return LoginEntry.Refused;
      }
      const s = unchecked(this.sessions[index]);
      s.open(login.isid, index + 1, login.target, params.sessionType == SessionType.Discovery, params.maxConnections, params,
        bhsCmdSn(conn.framer.header), login.initiatorName, login.initiatorNameBytes);
      s.nicPort = nicPortOf(conn.portal);
      if (!s.discovery) {
        // The I_T nexus as SAM-5 names it for iSCSI: the session's initiator port through the target's port, one
        // per target and NIC port (scsi/target_port.ts). The session is nobody's until the answer (checkSession,
        // reinstate).
        s.state = SessionState.Identifying;
        s.loginConn = conn.slot;
        conn.loginHeldSession = index;
        scsiNexusIdentifyPost(this.index, index, s.portName, s.portNameWrite(), targetPortOf(s.nicPort, s.target, targetConfigCount()));
        return LoginEntry.Identifying;
      }
      loginSetTsih(response, s.tsih);
    } else {
      index = login.tsih - 1;
      // Leading-only keys (InitialR2T, ImmediateData, bursts, MaxOutstandingR2T, ERL…) are the session's, settled on
      // its first connection; a joining connection negotiates only its own (digests, MaxRecvDataSegmentLength).
      const own = this.scratchParams;
      own.copyFrom(params);
      params.copyFrom(unchecked(this.sessions[index]).params);
      params.headerDigest = own.headerDigest;
      params.dataDigest = own.dataDigest;
      params.maxRecvDataSegmentLength = own.maxRecvDataSegmentLength;
      params.maxSendDataSegmentLength = own.maxSendDataSegmentLength;
    }
    this.joinSession(conn, login, index);
    return LoginEntry.Entered;
  }

  // The SCSI target answered a new session's ScsiNexusIdentify (`index`: the session). Its login goes on: the held
  // Login Response leaves, with the TSIH, or refused when the nexus table is full (out of resources, as before a
  // session exists). A session whose connection went meanwhile ends here.
  private onNexusIdentified(index: u32, nexus: u32): void {
    assert(index < SESSIONS_MAX, "iscsi: a nexus answer for a session out of range"); // our own cookie
    const s = unchecked(this.sessions[index]);
    assert(s.state == SessionState.Identifying, "iscsi: a nexus answer for a session that did not ask");
    s.nexus = nexus;
    if (s.loginConn == LOGIN_CONN_NONE) {
      if (nexus != NEXUS_ID_NONE) scsiNexusGonePost(this.index, nexus);
      s.close();
      return;
    }
    const conn = unchecked(this.conns[s.loginConn]);
    const login = unchecked(this.logins[conn.slot]);
    assert(conn.loginHeldSlot != TX_SLOTS && conn.loginHeldSession == index, "iscsi: the waiting login holds its response");
    const slot = conn.loginHeldSlot;
    const page = conn.loginHeldPage;
    conn.loginHeldSlot = TX_SLOTS;
    conn.loginHeldPage = POOL_NONE;
    conn.loginHeldSession = 0xffff_ffff;
    s.loginConn = LOGIN_CONN_NONE;
    if (!this.nic.txRoom(2)) {
      // The ring filled while the answer came: as when a login finds no room to answer, the connection goes and
      // the initiator logs in again; the session never started.
      conn.txSlotGive(slot);
      bufferPool(BUFFER_CLASS_PAGE).release(page);
      if (nexus != NEXUS_ID_NONE) scsiNexusGonePost(this.index, nexus);
      s.close();
      this.drop(conn);
      return;
    }
    const response = conn.txSlotAddress(slot);
    if (nexus == NEXUS_ID_NONE) {
      s.state = SessionState.Free;
      loginRefuse(login, LOGIN_OUT_OF_RESOURCES, response); // the SCSI target's nexus table is full
      conn.state = ConnState.Closing;
    } else {
      s.state = SessionState.Active;
      loginSetTsih(response, s.tsih);
      this.joinSession(conn, login, index);
    }
    this.tx.withPage(conn, slot, page, login.responseDataBytes, 0);
  }

  // A connection whose login waits for its nexus id went: the held response goes back, and the session ends when
  // the answer comes (onNexusIdentified).
  private loginHeldAbandon(conn: IscsiConn): void {
    assert(conn.loginHeldSession < SESSIONS_MAX, "iscsi: a held login names its session");
    const s = unchecked(this.sessions[conn.loginHeldSession]);
    assert(s.state == SessionState.Identifying && s.loginConn == conn.slot, "iscsi: a held login's session waits for it");
    s.loginConn = LOGIN_CONN_NONE;
    conn.txSlotGive(conn.loginHeldSlot);
    bufferPool(BUFFER_CLASS_PAGE).release(conn.loginHeldPage);
    conn.loginHeldSlot = TX_SLOTS;
    conn.loginHeldPage = POOL_NONE;
    conn.loginHeldSession = 0xffff_ffff;
  }

  // Connection `conn` enters full feature phase in session `index`.
  private joinSession(conn: IscsiConn, login: LoginConnection, index: u32): void {
    const params = login.negotiation.params;
    const s = unchecked(this.sessions[index]);
    s.connections += 1;
    conn.session = index;
    conn.cid = login.cid;
    conn.statSn = login.statSn;
    conn.state = ConnState.FullFeature;
    conn.peerMaxRecvDataSegmentLength = params.maxSendDataSegmentLength;
    conn.framer.headerDigest = params.headerDigest;
    conn.framer.dataDigest = params.dataDigest;
  }

  // A new login with the same initiator name and ISID to the same target through the same portal group (NIC port
  // `nicPort`) replaces the old session (RFC 7143, session reinstatement: a session is named by the initiator name,
  // ISID, target name and portal group tag): the same ISID to another target, for discovery, or through another NIC
  // port of a board of a cluster is another session. A session still waiting for its nexus id is replaced too: its
  // login's connection goes, and the session ends when the answer comes.
  private reinstate(login: LoginConnection, nicPort: u32): void {
    for (let i: u32 = 0; i < SESSIONS_MAX; i++) {
      const s = unchecked(this.sessions[i]);
      if (s.state == SessionState.Free || s.isid != login.isid || s.nicPort != nicPort || s.target != login.target) continue;
      if (!bytesEqual(s.initiator, s.initiatorBytes, login.initiatorName, login.initiatorNameBytes)) continue;
      if (s.state == SessionState.Identifying) {
        if (s.loginConn != LOGIN_CONN_NONE) this.drop(unchecked(this.conns[s.loginConn]));
        continue;
      }
      for (let c: u32 = 0; c < CONNECTIONS_MAX; c++) {
        const other = unchecked(this.conns[c]);
        if (other.state == ConnState.FullFeature && other.session == i) this.drop(other);
      }
    }
  }

  private onScsiCommand(conn: IscsiConn, s: Session): void {
    const bhs = conn.framer.header;
    const itt = bhsInitiatorTaskTag(bhs);
    const expected = scsiCmdExpectedDataTransferLength(bhs);
    const flags = bhsFlags(bhs);
    const read = (flags & SCSI_CMD_READ) != 0;
    const write = (flags & SCSI_CMD_WRITE) != 0;
    if (s.discovery) {
      this.reject(conn, REJECT_PROTOCOL_ERROR); // no SCSI in a discovery session
      return;
    }
    const params = unchecked(this.logins[conn.slot]).negotiation.params;
    const immediateBytes = conn.framer.dataBytes;
    if ((immediateBytes > 0 && (!write || !params.immediateData)) || (read && write)) {
      // Immediate data where ImmediateData=No or on a command that takes none; bidirectional commands.
      this.reject(conn, REJECT_INVALID_PDU_FIELD);
      return;
    }
    // RFC 7143, FirstBurstLength: immediate data and unsolicited Data-Out together stay within it (and within the
    // transfer); F=0 says unsolicited Data-Out follow, which InitialR2T=Yes forbids and a full first burst excludes.
    const unsolicitedFollow = !bhsFinal(bhs);
    const firstBurst = write && (immediateBytes > 0 || !params.initialR2t) ? min(params.firstBurstLength, expected) : 0;
    if (immediateBytes > firstBurst || (unsolicitedFollow && (!write || params.initialR2t || immediateBytes >= firstBurst))) {
      this.protocolViolation(conn);
      return;
    }
    let stage = conn.pendingStage;
    if (immediateBytes > 0 || unsolicitedFollow) {
      if (stage == STAGE_NONE) stage = this.stage.take();
      if (stage == STAGE_NONE) {
        this.stageBusyCount += 1;
        this.respondStatusOnly(conn, s, itt, SAM_STATUS_BUSY); // its unsolicited Data-Out, if any, find no task: dropped
        return;
      }
    }
    const lunField = bhsLun(bhs);
    const t = scsiTaskAlloc();
    if (t == SCSI_TASK_NONE) {
      if (stage != conn.pendingStage) this.stage.give(stage); // onPdu gives back the pending one
      this.respondStatusOnly(conn, s, itt, SAM_STATUS_TASK_SET_FULL); // no task record free
      return;
    }
    conn.pendingStage = STAGE_NONE; // the task owns it now
    conn.immediateBytes += immediateBytes;
    this.commands.begin(t, conn.slot, itt, lunField);
    this.commands.setCommand(t, expected, flags, scsiCmdCdb(bhs));
    this.stage.setOfCommand(t, immediateBytes > 0 || unsolicitedFollow ? stage : STAGE_NONE);
    this.dataOut.commandBegin(t, firstBurst, immediateBytes, unsolicitedFollow);
    this.commands.setPhase(t, CommandPhase.Waiting);
    if (!this.orderCmdSn) {
      this.submit(t, conn.session); // immediate: not numbered, not ordered
      return;
    }
    // Numbered: it takes its place in the session's order and goes to the SCSI target when the commands before it
    // have (onPduDispatch advances the order right after). Its unsolicited data meanwhile waits in its stage.
    const cmdSn = bhsCmdSn(bhs);
    this.commands.setSequence(t, cmdSn);
    s.orderHold(cmdSn, t);
    if (cmdSn != s.expCmdSn) this.reorderedCount += 1;
  }

  // The volume behind the session's target's LUN `lun`, or LUN_INVALID (the SCSI target answers LUN NOT SUPPORTED).
  private targetLunToVolume(s: Session, lun: u32): u32 {
    if (s.target == TARGET_NONE || lun == LUN_INVALID) return LUN_INVALID;
    const t = targetConfigAt(s.target);
    const index = t.lunIndex(lun);
    return index == TARGET_NONE ? LUN_INVALID : unchecked(t.volumes[index]);
  }

  // The SCSI target wants `bytes` of Data-Out for task t: the unsolicited bytes already staged go in first, then
  // (once the unsolicited data is all in) R2Ts solicit the rest.
  private onScsiDataOut(t: u32, bytes: u32): void {
    assert(t < SCSI_TASKS_MAX, "iscsi: ScsiDataOut for a task out of range"); // the SCSI target's own index
    if (this.commands.kind(t) == CommandKind.Nbd) {
      this.nbd.dataOut(t, bytes);
      return;
    }
    if (this.commands.phase(t) == CommandPhase.Orphan) {
      scsiTaskDataReady(t, this.index, true);
      return;
    }
    this.commands.setPhase(t, CommandPhase.DataOut);
    const staged = min(this.dataOut.unsolicitedBytes(t), bytes);
    if (staged > 0) this.stage.copyToSgl(t, scsiTaskSgl(t), 0, staged);
    this.dataOut.transferBegin(t, bytes, staged);
    if (this.dataOut.unsolicitedMore(t)) return; // the rest of the first burst is on its way
    this.afterUnsolicited(t);
  }

  // The unsolicited data is all in and the SCSI target has its buffers: the stage goes back, R2Ts ask for the rest.
  private afterUnsolicited(t: u32): void {
    this.stageRelease(t);
    this.dataOut.unsolicitedEnded(t);
    if (this.dataOut.allReceived(t)) {
      this.commands.setPhase(t, CommandPhase.Submitted);
      scsiTaskDataReady(t, this.index, false);
      return;
    }
    this.sendR2ts(t);
  }

  private sendR2ts(t: u32): void {
    if (this.dataOut.unsolicitedMore(t)) return; // R2Ts start after the first burst (DataSequenceInOrder)
    const conn = unchecked(this.conns[this.commands.connection(t)]);
    const s = unchecked(this.sessions[conn.session]);
    const params = unchecked(this.logins[conn.slot]).negotiation.params;
    const total = this.dataOut.totalBytes(t);
    const outstandingMax = min(params.maxOutstandingR2t, R2T_SLOTS);
    // Bounded by MaxOutstandingR2T.
    while (this.dataOut.r2tWanted(t, outstandingMax)) {
      const slot = conn.txSlotTake();
      if (slot == TX_SLOTS || !this.nic.txRoom(2)) {
        if (slot != TX_SLOTS) conn.txSlotGive(slot);
        conn.r2tWaitingRoom = true;
        return; // sent when a Data-Out or a Sent event frees room
      }
      const offset = this.dataOut.r2tNextOffset(t);
      const desired = min(params.maxBurstLength, total - offset);
      const r2tSn = this.dataOut.r2tNextSn(t);
      buildR2t(conn.txSlotAddress(slot), this.commands.lun(t), this.commands.tag(t), ttt(t, r2tSn), conn.statSn,
        s.expCmdSn, s.maxCmdSn(), r2tSn, offset, desired);
      this.dataOut.r2tSent(t, desired);
      conn.r2tCount += 1;
      this.tx.header(conn, slot, 0);
    }
  }

  // The task a solicited Data-Out belongs to: its TTT names the oldest outstanding R2T of a task of this connection
  // and ITT, and it stays within that R2T's window; SCSI_TASK_NONE otherwise. The TTT is the initiator's word.
  private dataOutTask(conn: IscsiConn, bhs: usize): u32 {
    const tag = bhsTargetTransferTag(bhs);
    const t = tag & 0xffff;
    if (tag == TAG_RESERVED || t >= SCSI_TASKS_MAX || this.commands.phase(t) != CommandPhase.DataOut) return SCSI_TASK_NONE;
    if (this.commands.connection(t) != conn.slot || this.commands.tag(t) != bhsInitiatorTaskTag(bhs)) return SCSI_TASK_NONE;
    if (!this.dataOut.solicitedMatches(t, tag, bhsBufferOffset(bhs), bhsDataSegmentLength(bhs))) return SCSI_TASK_NONE;
    return t;
  }

  // The task of this connection and ITT still taking unsolicited Data-Out, or SCSI_TASK_NONE. Bounded by the table.
  private unsolicitedTask(conn: IscsiConn, bhs: usize): u32 {
    const t = this.commands.ofTag(conn.slot, bhsInitiatorTaskTag(bhs), SCSI_TASK_NONE);
    return t != SCSI_TASK_NONE && this.dataOut.unsolicitedMore(t) ? t : SCSI_TASK_NONE;
  }

  private onDataOut(conn: IscsiConn): void {
    const bhs = conn.framer.header;
    if (bhsTargetTransferTag(bhs) == TAG_RESERVED) {
      this.onUnsolicitedDataOut(conn);
      return;
    }
    const t = this.dataOutTask(conn, bhs);
    if (t == SCSI_TASK_NONE) {
      // Data for a task that is gone (aborted, or its R2T answered already): dropped, as for an aborted task.
      this.discardedDataOut += 1;
      return;
    }
    // DataPDUInOrder and DataSequenceInOrder are Yes: each PDU continues the oldest R2T's sequence exactly, and F
    // marks its last PDU (RFC 7143, Data-Out, F bit). Anything else is a protocol error; at error recovery level 0
    // the connection goes (RFC 7143, "Recovery Classes").
    const length = bhsDataSegmentLength(bhs);
    if (!this.dataOut.solicitedInSequence(t, bhsDataSn(bhs), bhsBufferOffset(bhs), length, bhsFinal(bhs))) {
      this.protocolViolation(conn);
      return;
    }
    this.dataOut.solicitedReceived(t, length);
    if (this.dataOut.allReceived(t)) {
      this.commands.setPhase(t, CommandPhase.Submitted);
      scsiTaskDataReady(t, this.index, false);
      return;
    }
    this.sendR2ts(t);
  }

  // Data-Out with TTT 0xffffffff: the unsolicited part of the first burst (data_out.ts says what is in sequence).
  private onUnsolicitedDataOut(conn: IscsiConn): void {
    const bhs = conn.framer.header;
    const t = this.unsolicitedTask(conn, bhs);
    if (t == SCSI_TASK_NONE) {
      // A live task that takes no (more) unsolicited data: a protocol error. No task: it is gone (answered BUSY,
      // aborted, or already completed): dropped.
      if (this.commands.ofTag(conn.slot, bhsInitiatorTaskTag(bhs), SCSI_TASK_NONE) != SCSI_TASK_NONE) this.protocolViolation(conn);
      else this.discardedDataOut += 1;
      return;
    }
    const offset = bhsBufferOffset(bhs);
    const length = bhsDataSegmentLength(bhs);
    const final = bhsFinal(bhs);
    if (!this.dataOut.unsolicitedInSequence(t, bhsDataSn(bhs), offset, length, final)) {
      this.protocolViolation(conn);
      return;
    }
    this.dataOut.unsolicitedReceived(t, length, final);
    conn.unsolicitedBytes += length;
    if (this.commands.phase(t) != CommandPhase.DataOut) return; // staged: onScsiDataOut takes it
    const total = this.dataOut.totalBytes(t);
    if (offset < total) {
      const take = min(offset + length, total) - offset;
      if (conn.framer.sinkKind == SinkKind.Memory) this.stage.copyToSgl(t, scsiTaskSgl(t), offset, take); // it went to the stage
      this.dataOut.receivedAdd(t, take);
    }
    if (!this.dataOut.unsolicitedMore(t)) this.afterUnsolicited(t);
  }

  // A protocol error the RFC answers with a Reject (Protocol Error) and, at error recovery level 0, a drop.
  private protocolViolation(conn: IscsiConn): void {
    this.reject(conn, REJECT_PROTOCOL_ERROR);
    this.drop(conn);
  }

  // Command t's staging slot goes back. A Data-Out still arriving into it (the task ended early) must not land in
  // the slot's next owner: its connection's framer discards the rest.
  private stageRelease(t: u32): void {
    const stage = this.stage.ofCommand(t);
    if (stage == STAGE_NONE) return;
    const f = unchecked(this.conns[this.commands.connection(t)]).framer;
    if (f.sinkKind == SinkKind.Memory && this.stage.holds(<u32>stage, f.sinkAddress)) f.sinkKind = SinkKind.Discard;
    this.stage.give(stage);
    this.stage.setOfCommand(t, STAGE_NONE);
  }

  // ---- Responses ----

  private onScsiDone(t: u32): void {
    assert(t < SCSI_TASKS_MAX, "iscsi: ScsiDone for a task out of range"); // the SCSI target's own index
    const phase = this.commands.phase(t);
    // Aborted (a TMF, PREEMPT AND ABORT, a lost connection): no response goes out, unless another nexus's action
    // aborted it with TAS 1 (scsiTaskAbortReported): then its TASK ABORTED status goes out like any other.
    if (phase == CommandPhase.Orphan || phase == CommandPhase.Free || (scsiTaskAborted(t) && !scsiTaskAbortReported(t))) {
      this.taskFinish(t);
      return;
    }
    if (this.commands.kind(t) == CommandKind.Nbd) {
      if (!this.nbd.done(t)) return; // the request goes on with another command
    } else this.dataIn.begin(t);
    this.commands.setPhase(t, CommandPhase.Sending);
    // Behind others waiting for room, wait in line: responses leave in the order their commands finished.
    if (this.sendQueue.count > 0 || !this.sendTask(t)) this.sendQueue.push(t);
  }

  private flushSendQueue(): void {
    let count = this.sendQueue.count;
    while (count > 0) { // bounded by the queue's length on entry
      const t = this.sendQueue.peek();
      const phase = this.commands.phase(t);
      if (phase == CommandPhase.Sending) {
        if (!this.sendTask(t)) return; // still no room: keep the order
      } else if (phase == CommandPhase.Orphan && this.commands.piecesInFlight(t) == 0) {
        this.taskFinish(t); // its connection went while it waited; pieces in flight finish it on their Sent
      }
      this.sendQueue.pop();
      count -= 1;
    }
  }

  // Data-In and status for task t, as far as there is room (data_in.ts); false while anything is left. Once all is
  // queued the task waits for its last piece to be sent.
  private sendTask(t: u32): bool {
    if (this.commands.kind(t) == CommandKind.Nbd) {
      if (!this.nbd.send(t)) return false;
      this.commands.setPhase(t, CommandPhase.Sent);
      if (this.commands.piecesInFlight(t) == 0) this.taskFinish(t);
      return true;
    }
    const conn = unchecked(this.conns[this.commands.connection(t)]);
    const s = unchecked(this.sessions[conn.session]);
    const params = unchecked(this.logins[conn.slot]).negotiation.params;
    if (!this.dataIn.send(t, conn, s, params)) return false;
    this.commands.setPhase(t, CommandPhase.Sent);
    if (this.commands.piecesInFlight(t) == 0) this.taskFinish(t);
    return true;
  }

  private respondStatusOnly(conn: IscsiConn, s: Session, itt: u32, status: u32): void {
    const slot = this.tx.begin(conn);
    if (slot == TX_SLOTS || !this.nic.txRoom(2)) {
      if (slot != TX_SLOTS) conn.txSlotGive(slot);
      return; // the initiator times the command out
    }
    buildScsiResponse(conn.txSlotAddress(slot), itt, SCSI_RESPONSE_COMPLETED, status, 0, 0, 0, conn.statSn++, s.expCmdSn, s.maxCmdSn(), 0, 0);
    this.tx.header(conn, slot, 0);
  }

  private taskFinish(t: u32): void {
    if (this.commands.kind(t) == CommandKind.Nbd) this.nbd.finished(t);
    if (this.commands.kind(t) == CommandKind.NopOut && this.commands.extra(t) != POOL_NONE) {
      bufferPool(BUFFER_CLASS_PAGE).release(this.commands.extra(t)); // a held ping's data, never answered
      this.commands.setRequest(t, CommandKind.NopOut, 0, POOL_NONE, 0);
    }
    if (this.commands.kind(t) == CommandKind.Text && this.commands.extra(t) != POOL_NONE) {
      bufferPool(BUFFER_CLASS_PAGE).release(this.commands.extra(t)); // a held Text's header, acted on or not
      this.commands.setRequest(t, CommandKind.Text, 0, POOL_NONE, 0);
    }
    this.stageRelease(t);
    this.dataOut.unsolicitedClose(t);
    this.commands.setPhase(t, CommandPhase.Free);
    scsiTaskRelease(t);
  }

  private onNopOut(conn: IscsiConn, s: Session): void {
    const bhs = conn.framer.header;
    const itt = bhsInitiatorTaskTag(bhs);
    if (itt == TAG_RESERVED) return; // a response to our ping, or a ping that wants no answer
    const dataBytes = conn.framer.sinkKind == SinkKind.Memory ? conn.framer.dataBytes : 0;
    const pool = bufferPool(BUFFER_CLASS_PAGE);
    const page = dataBytes > 0 && dataBytes <= pool.slotBytes ? pool.acquire() : POOL_NONE;
    if (dataBytes > 0 && page == POOL_NONE) {
      this.drop(conn); // every ping with a tag is owed an answer (RFC 7143, NOP-In): rather than skip one, drop
      return;
    }
    if (page != POOL_NONE) memory.copy(pool.address(page), conn.scratch(), dataBytes);
    this.nopAnswer(conn, s, bhsLun(bhs), itt, page, dataBytes);
  }

  // The NOP-In answering a ping: its data (in `page`, which goes with the answer) echoed.
  private nopAnswer(conn: IscsiConn, s: Session, lun: u64, itt: u32, page: u32, dataBytes: u32): void {
    assert(dataBytes == 0 || page != POOL_NONE, "iscsi: a ping's data is in its page");
    const slot = this.tx.begin(conn);
    if (slot == TX_SLOTS) {
      if (page != POOL_NONE) bufferPool(BUFFER_CLASS_PAGE).release(page);
      this.drop(conn); // every ping with a tag is owed an answer (RFC 7143, NOP-In): rather than skip one, drop
      return;
    }
    buildNopIn(conn.txSlotAddress(slot), lun, itt, TAG_RESERVED, conn.statSn++, s.expCmdSn, s.maxCmdSn(), dataBytes);
    if (page != POOL_NONE) this.tx.withPage(conn, slot, page, dataBytes, 0);
    else this.tx.header(conn, slot, 0);
  }

  // RFC 7143, Text Request and Text Response, and "Text Mode Negotiation" (§6.2): one exchange per connection.
  // - TTT 0xffffffff starts a new request and drops whatever exchange was under way.
  // - C=1: the keys continue in the next request; each such request is answered with an empty Text Response (F=0,
  //   C=0) carrying our TTT, which the initiator copies into the next one. The keys join up to TEXT_JOIN_BYTES_MAX.
  // - An answer longer than the initiator's MaxRecvDataSegmentLength goes in pieces: each but the last with C=1, F=0
  //   and our TTT; the initiator asks for the next with an empty Text Request carrying it. Only SendTargets is that long.
  // - Any other TTT, or our TTT with another ITT, is an invalid PDU field: Reject, and the exchange stays as it was
  //   (RFC 7143, Reject: a Reject does not end a task); data in a request that should be empty is a protocol error.
  private onText(conn: IscsiConn, s: Session): void {
    const bhs = conn.framer.header;
    this.textAct(conn, s, bhsInitiatorTaskTag(bhs), bhsLun(bhs), bhsTargetTransferTag(bhs), bhsDataSegmentLength(bhs), bhsContinue(bhs),
      conn.framer.sinkKind != SinkKind.Memory && bhsDataSegmentLength(bhs) > 0, bhs);
  }

  // A Text Request acts (on arrival, or at its turn in CmdSN order): `lost` when its keys did not fit the join area;
  // `header` its 48 bytes, for a Reject.
  private textAct(conn: IscsiConn, s: Session, itt: u32, lun: u64, tag: u32, dataBytes: u32, cont: bool, lost: bool, header: usize): void {
    if (tag == TAG_RESERVED) {
      conn.textPhase = TextPhase.Idle; // a new request resets the exchange
      conn.textJoinBytes = 0;
    } else if (conn.textPhase == TextPhase.Idle || tag != conn.textTtt || itt != conn.textItt) {
      this.reject(conn, REJECT_INVALID_PDU_FIELD, header);
      return;
    }
    conn.textLun = lun;
    if (conn.textPhase == TextPhase.Sending) {
      if (dataBytes > 0) {
        this.reject(conn, REJECT_PROTOCOL_ERROR, header); // RFC 7143 §6.2: the answer to a C=1 response is an empty request
        return;
      }
      this.textAnswer(conn, s, false, header);
      return;
    }
    // Idle (a new request) or Receiving (its keys continue): the data is in the scratch buffer at its place.
    if (lost) {
      conn.textPhase = TextPhase.Idle; // too long: the exchange ends here
      conn.textJoinBytes = 0;
      this.reject(conn, REJECT_LONG_OP_REJECT, header);
      return;
    }
    conn.textJoinBytes += dataBytes;
    conn.textItt = itt;
    if (cont) {
      const refused = this.text.acknowledge(conn, s); // an empty acknowledgement: send the rest
      if (refused != TEXT_ANSWERED) this.reject(conn, refused, header);
      return;
    }
    conn.textPhase = TextPhase.Idle;
    this.textAnswer(conn, s, true, header);
  }

  // The answer to the keys (first) or the next piece of it (text.ts); a Reject when it cannot go.
  private textAnswer(conn: IscsiConn, s: Session, first: bool, header: usize): void {
    const refused = this.text.answer(conn, s, unchecked(this.logins[conn.slot]).negotiation, first);
    if (refused != TEXT_ANSWERED) this.reject(conn, refused, header);
  }

  private logoutAnswer(conn: IscsiConn, s: Session, itt: u32, reason: u32): void {
    const slot = this.tx.begin(conn);
    if (slot == TX_SLOTS) {
      this.drop(conn);
      return;
    }
    const response = reason == LOGOUT_CLOSE_SESSION || reason == LOGOUT_CLOSE_CONNECTION ? LOGOUT_RESPONSE_CLOSED : LOGOUT_RESPONSE_RECOVERY_NOT_SUPPORTED;
    buildLogoutResponse(conn.txSlotAddress(slot), itt, response, conn.statSn++, s.expCmdSn, s.maxCmdSn(), 0, 0);
    const closes = response == LOGOUT_RESPONSE_CLOSED;
    this.tx.header(conn, slot, closes ? TX_FLAG_CLOSE : 0);
    if (closes) conn.state = ConnState.LoggedOut;
    if (reason != LOGOUT_CLOSE_SESSION || s.state != SessionState.Active || s.connections < 2) return;
    // RFC 7143, Logout Request, "close the session": every connection of the session closes and its tasks end. The
    // others are dropped (the session is Failing, so each goes alone); this one closes once its answer is sent.
    s.state = SessionState.Failing;
    for (let c: u32 = 0; c < CONNECTIONS_MAX; c++) {
      const other = unchecked(this.conns[c]);
      if (other != conn && other.session == conn.session && other.state != ConnState.Free && other.state != ConnState.Closing) this.drop(other);
    }
  }

  private onTmf(conn: IscsiConn, sessionIndex: u32): void {
    const bhs = conn.framer.header;
    const t = scsiTaskAlloc();
    if (t == SCSI_TASK_NONE) {
      this.sendTmfResponse(conn, unchecked(this.sessions[sessionIndex]), bhsInitiatorTaskTag(bhs), TmfResponse.Rejected); // no resources
      return;
    }
    this.commands.begin(t, conn.slot, bhsInitiatorTaskTag(bhs), bhsLun(bhs));
    this.commands.setRequest(t, CommandKind.Tmf, tmfFunction(bhs), tmfReferencedTaskTag(bhs), tmfRefCmdSn(bhs));
    this.commands.setSequence(t, bhsCmdSn(bhs));
    this.tmfAct(t, sessionIndex);
  }

  // RFC 7143, Task Management Function Request, "Function": the transport acts first on the commands still waiting
  // in the session's reorder queue, which the SCSI target has not seen; the rest is the SCSI target's.
  // - ABORT TASK of a waiting command: it ends there, never runs, and the answer is FUNCTION COMPLETE. Of a command
  //   not yet come whose RefCmdSN is in the window and before the TMF's CmdSN: that CmdSN counts as received (the
  //   command is dropped if it comes; ExpCmdSN steps over it), FUNCTION COMPLETE.
  // - ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, target resets: they affect the session's commands before
  //   the TMF's CmdSN, so an immediate one whose CmdSN is ahead of ExpCmdSN waits (Session.tmfHeld) until those have
  //   come; the waiting ones it covers end then without running. (One waits per session; another acts at once.)
  private tmfAct(t: u32, sessionIndex: u32): void {
    const s = unchecked(this.sessions[sessionIndex]);
    const conn = unchecked(this.conns[this.commands.connection(t)]);
    const fn = this.commands.flagsOf(t);
    if (fn == TmfFunction.AbortTask) {
      if (this.abortTaskWaiting(t, sessionIndex) || this.abortTaskNotCome(t, s)) {
        this.sendTmfResponse(conn, s, this.commands.tag(t), TmfResponse.Complete);
        this.taskFinish(t);
        return;
      }
    } else if (fn != TmfFunction.ClearAca && s.tmfHeld == TMF_HELD_NONE && this.commands.sequence(t) != s.expCmdSn
      && this.commands.sequence(t) - s.expCmdSn <= CMD_WINDOW) { // up to MaxCmdSN + 1: the CmdSN after a full window
      this.commands.setPhase(t, CommandPhase.Submitted); // the transport's until it acts (connectionGone ends it)
      s.tmfHeld = t;
      return;
    }
    this.tmfSubmit(t, s);
  }

  // The TMF goes to the SCSI target for the tasks it has; the waiting commands it covers end here first.
  private tmfSubmit(t: u32, s: Session): void {
    for (let v: u32 = 0; v < SCSI_TASKS_MAX; v++) {
      if (v == t || this.commands.phase(v) != CommandPhase.Waiting || !this.tmfCovers(t, v)) continue;
      s.orderForget(this.commands.sequence(v));
      this.taskFinish(v);
    }
    this.commands.setPhase(t, CommandPhase.Submitted);
    scsiTmfSubmit(t, this.index, s.nexus, this.targetLunToVolume(s, lunDecode(this.commands.lun(t))), this.commands.flagsOf(t),
      this.commands.extra(t));
  }

  // True when TMF `tmf` affects SCSI command v: of the same session, with a CmdSN before the TMF's, in its scope.
  private tmfCovers(tmf: u32, v: u32): bool {
    if (this.commands.kind(v) != CommandKind.Scsi) return false;
    const session = unchecked(this.conns[this.commands.connection(tmf)]).session;
    if (unchecked(this.conns[this.commands.connection(v)]).session != session) return false;
    if (this.commands.sequence(tmf) - this.commands.sequence(v) - 1 >= CMD_WINDOW) return false; // not before it
    const fn = this.commands.flagsOf(tmf);
    if (fn == TmfFunction.TargetWarmReset || fn == TmfFunction.TargetColdReset) return true;
    if (fn != TmfFunction.AbortTaskSet && fn != TmfFunction.ClearTaskSet && fn != TmfFunction.LogicalUnitReset) return false;
    return lunDecode(this.commands.lun(v)) == lunDecode(this.commands.lun(tmf));
  }

  // ABORT TASK: the session's waiting SCSI command with the referenced tag ends without running. False when none.
  private abortTaskWaiting(t: u32, sessionIndex: u32): bool {
    const s = unchecked(this.sessions[sessionIndex]);
    for (let v: u32 = 0; v < SCSI_TASKS_MAX; v++) {
      if (this.commands.phase(v) != CommandPhase.Waiting || this.commands.kind(v) != CommandKind.Scsi) continue;
      if (this.commands.tag(v) != this.commands.extra(t)) continue;
      if (unchecked(this.conns[this.commands.connection(v)]).session != sessionIndex) continue;
      s.orderForget(this.commands.sequence(v));
      this.taskFinish(v);
      return true;
    }
    return false;
  }

  // ABORT TASK of a command that has not come: its RefCmdSN, in the window and before the TMF's CmdSN, counts as
  // received (RFC 7143, Task Management Function Request, "Function", ABORT TASK b). False otherwise.
  private abortTaskNotCome(t: u32, s: Session): bool {
    const ref = this.commands.expectedBytesOf(t);
    if (ref - s.expCmdSn >= CMD_WINDOW || this.commands.sequence(t) - ref - 1 >= CMD_WINDOW) return false;
    if (s.orderAt(ref) != ORDER_EMPTY) return false; // it came: the SCSI target has it, or had it
    s.orderArrived(ref);
    return true;
  }

  private onTmfDone(t: u32): void {
    assert(t < SCSI_TASKS_MAX, "iscsi: ScsiTmfDone for a task out of range"); // the SCSI target's own index
    const phase = this.commands.phase(t);
    if (phase != CommandPhase.Orphan && phase != CommandPhase.Free) {
      const conn = unchecked(this.conns[this.commands.connection(t)]);
      if (conn.state == ConnState.FullFeature) {
        this.sendTmfResponse(conn, unchecked(this.sessions[conn.session]), this.commands.tag(t), scsiTaskTmfResponse(t));
      }
    }
    const coldReset = this.commands.kind(t) == CommandKind.Tmf && this.commands.flagsOf(t) == TmfFunction.TargetColdReset
      && scsiTaskTmfResponse(t) == TmfResponse.Complete;
    this.taskFinish(t);
    if (coldReset) this.closeAll();
  }

  // RFC 7143 §11.5.1, TARGET COLD RESET: once its answer is queued, the target closes all its TCP connections to all
  // initiators (every session ends; the initiators log in again and retry what they had in flight). drop() sends
  // what each connection has queued (the TMF Response, TASK ABORTED statuses) before its close.
  private closeAll(): void {
    let closed: u32 = 0;
    for (let c: u32 = 0; c < CONNECTIONS_MAX; c++) {
      const conn = unchecked(this.conns[c]);
      if (conn.state == ConnState.Free || conn.state == ConnState.Closing) continue;
      this.drop(conn);
      closed += 1;
    }
    line().s("iscsi: TARGET COLD RESET: ").u32(closed).s(" connections closed").out();
  }

  private sendTmfResponse(conn: IscsiConn, s: Session, itt: u32, response: u32): void {
    const slot = this.tx.begin(conn);
    if (slot == TX_SLOTS) {
      // Every TMF is owed a response, and the tasks it aborted are answered by it alone: rather than lose it (the
      // initiator would wait for those tasks for ever), drop the connection, as for a ping we cannot answer.
      this.drop(conn);
      return;
    }
    buildTmfResponse(conn.txSlotAddress(slot), itt, response, conn.statSn++, s.expCmdSn, s.maxCmdSn());
    this.tx.header(conn, slot, 0);
  }

  // A Reject (RFC 7143 §11.17) carrying `header`, the rejected PDU's (default: the one its connection just received).
  private reject(conn: IscsiConn, reason: u32, header: usize = 0): void {
    this.rejectCount += 1;
    const slot = this.tx.begin(conn);
    const page = bufferPool(BUFFER_CLASS_PAGE).acquire();
    if (slot == TX_SLOTS || page == POOL_NONE) {
      if (slot != TX_SLOTS) conn.txSlotGive(slot);
      if (page != POOL_NONE) bufferPool(BUFFER_CLASS_PAGE).release(page);
      this.drop(conn); // cannot even say why: the connection goes
      return;
    }
    const s = conn.session < SESSIONS_MAX ? unchecked(this.sessions[conn.session]) : null;
    const expCmdSn = s != null ? s.expCmdSn : 0;
    buildReject(conn.txSlotAddress(slot), bufferPool(BUFFER_CLASS_PAGE).address(page), header != 0 ? header : conn.framer.header, BHS_BYTES, reason,
      conn.statSn++, expCmdSn, expCmdSn + CMD_WINDOW - 1, 0);
    this.tx.withPage(conn, slot, page, BHS_BYTES, 0);
  }

  /** Ends a connection at once (protocol violations during login, header digest errors). */
  private drop(conn: IscsiConn): void {
    if (conn.state == ConnState.Free || conn.state == ConnState.Closing) return;
    this.connectionGone(conn);
    conn.state = ConnState.Closing;
    this.tx.batches.post(conn.slot); // answers batched before the drop leave before the close too
    this.nic.txFlush(); // answers queued before the drop (a Reject) leave before the close
    this.nic.close(conn.slot);
  }

  // The NIC sent an entry: what it held comes back. The id is the NIC's echo of ours: validated, not asserted.
  private onSent(id: u32): void {
    const kind = txIdKind(id);
    const slotOfConn = txIdConnection(id);
    const value = txIdValue(id);
    if (slotOfConn >= CONNECTIONS_MAX) return;
    const conn = unchecked(this.conns[slotOfConn]);
    if (conn.pendingTx > 0) conn.pendingTx -= 1;
    switch (kind) {
      case TX_KIND_SLOT: conn.txSlotGive(value); break;
      case TX_KIND_PAGE: case TX_KIND_LARGE: {
        const pool = bufferPool(kind == TX_KIND_PAGE ? BUFFER_CLASS_PAGE : BUFFER_CLASS_LARGE);
        if (value < pool.capacity && pool.isHeld(value)) pool.release(value);
        break;
      }
      case TX_KIND_TASK: {
        if (value >= SCSI_TASKS_MAX || !this.commands.pieceSent(value)) break;
        const phase = this.commands.phase(value);
        if (this.commands.piecesInFlight(value) == 0 && (phase == CommandPhase.Sent || phase == CommandPhase.Orphan)) this.taskFinish(value);
        break;
      }
      default: break;
    }
    // Room came back: R2Ts that waited for it go out (marking the connection again if room runs out). Only when one
    // waited: this scans every task, and every PDU sent ends in a Sent event.
    if (!conn.r2tWaitingRoom) return;
    conn.r2tWaitingRoom = false;
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) {
      if (this.commands.phase(t) == CommandPhase.DataOut && this.commands.connection(t) == slotOfConn && this.dataOut.r2tLeft(t)) this.sendR2ts(t);
    }
  }
}

function strlen(ptr: usize, max: u32): u32 {
  for (let i: u32 = 0; i < max; i++) if (load<u8>(ptr + i) == 0) return i;
  return max;
}
