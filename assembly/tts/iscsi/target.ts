// The iSCSI transport (TTS): the task that owns the NIC, the connections and the sessions. It frames PDUs out of
// the NIC's receive buffers, runs logins (login.ts), answers Text, NOP, Logout and TMF requests, turns SCSI Command
// PDUs into ScsiTasks for the SCSI target (which alone reads CDBs), solicits Data-Out with R2Ts when the SCSI target
// asks for data, and sends Data-In straight from the buffers the data landed in (zero copy: the NIC gathers them).
// Error recovery level 0: a broken connection ends its session's tasks; the initiator logs in again.
import { bootInfoConfigRomBase } from "../../board/boot_info";
import { randomFill } from "../../board/wasi";
import { BUFFER_CLASS_LARGE, BUFFER_CLASS_PAGE } from "../../config";
import { bufferPool, bufferReserve, sgls } from "../../kernel/buffers";
import { carve } from "../../kernel/carve";
import { line } from "../../kernel/console";
import { Msg, MsgKind } from "../../kernel/msg";
import { POOL_NONE } from "../../kernel/pool";
import { post } from "../../kernel/scheduler";
import { RunResult, Task } from "../../kernel/task";
import { Nic, NicEvent, NicEventType, TX_FLAG_CLOSE } from "../nic";
import { CONNECTIONS_MAX, ConnState, IscsiConn, TEXT_JOIN_AT, TEXT_JOIN_BYTES_MAX, TextPhase, TX_SLOT_BYTES, TX_SLOTS } from "./conn";
import { crc32c, crc32cFinal, crc32cUpdate, CRC32C_INIT } from "./crc32c";
import { FrameEvent, SinkKind } from "./framer";
import { NegotiatedParams, negotiationLimits, negotiationLimitsCheck, SessionType, TextCursor, TextOutcome, TextWriter, keysTextRequest, sendTargetsWrite, SEND_TARGETS_DONE } from "./keys";
import { LoginConnection, LoginOutcome, loginBegin, loginRefuse, loginRefuseRequest, loginStep, LOGIN_RANDOM_BYTES, LOGIN_RESPONSE_CAPACITY_MIN } from "./login";
import {
  BHS_BYTES, bhsCmdSn, bhsDataSegmentLength, bhsExpStatSn, bhsFinal, bhsImmediate, bhsInitiatorTaskTag, bhsLun, bhsOpcode,
  bhsBufferOffset, bhsContinue, bhsDataSn, bhsTargetTransferTag, buildDataIn, buildLogoutResponse, buildNopIn, buildR2t, buildReject,
  buildScsiResponse, buildTextResponse, buildTmfResponse, loginSetTsih, LOGIN_SESSION_DOES_NOT_EXIST, LOGIN_TOO_MANY_CONNECTIONS,
  LOGOUT_CLOSE_CONNECTION, LOGOUT_CLOSE_SESSION, LOGOUT_RESPONSE_CLOSED, LOGOUT_RESPONSE_RECOVERY_NOT_SUPPORTED, lunDecode,
  OP_DATA_OUT, OP_LOGIN_REQUEST, OP_LOGOUT_REQUEST, OP_NOP_OUT, OP_SCSI_COMMAND, OP_SNACK_REQUEST, OP_TEXT_REQUEST,
  OP_TMF_REQUEST, PduCheck, PduPhase, pduCheckLoginStatus, pduCheckRejectReason, REJECT_COMMAND_NOT_SUPPORTED, REJECT_DATA_DIGEST_ERROR,
  REJECT_INVALID_PDU_FIELD, REJECT_LONG_OP_REJECT, REJECT_PROTOCOL_ERROR, RESIDUAL_OVERFLOW, RESIDUAL_UNDERFLOW, SCSI_CMD_READ, SCSI_CMD_WRITE,
  SCSI_RESPONSE_COMPLETED, TAG_RESERVED, validateInitiatorPdu, LUN_INVALID, bhsFlags, logoutReasonCode, scsiCmdCdb, SCSI_CDB_BYTES,
  scsiCmdExpectedDataTransferLength, scsiCmdWrite, scsiSenseSegmentWrite, tmfFunction, tmfReferencedTaskTag,
} from "./pdu";
import { SCSI_TASK_NONE, ScsiDirection } from "../../scsi/interface";
import {
  SCSI_TASKS_MAX, scsiTaskAborted, scsiTaskAlloc, scsiTasksFree, scsiTaskDataInBytes, scsiTaskRelease, scsiTaskSense, scsiTaskSgl, scsiTaskStatus,
  scsiTaskTmfResponse,
} from "../../scsi/tasks";
import { NEXUS_NONE as NEXUS_ID_NONE } from "../../scsi/nexus";
import { scsiNexusGone, scsiNexusIdentify } from "../../scsi/target";
import { scsiTaskDataReady, scsiTaskResidual, scsiTaskSenseBytes, scsiTaskSubmit, scsiTmfSubmit } from "../../scsi/transport";
import { bytesEqual, TARGET_NONE, targetConfigAt } from "./config";
import { configRomLoadTargets } from "./config_rom";

export const SESSIONS_MAX: u32 = 32;
const CMD_WINDOW: u32 = 64;
const CONNECTIONS_PER_SESSION_MAX: u32 = 4; // our MaxConnections
const TTS_PRIORITY: u32 = 1;
const TTS_INBOX_DEPTH: u32 = 512;
const EVENT_BATCH_MAX: u32 = 64;
// R2Ts in flight per task: our MaxOutstandingR2T. Each has its own R2TSN, TTT and [offset, end) window; with
// DataSequenceInOrder=Yes the initiator answers them in order, so the oldest is the one being received.
export const R2T_SLOTS: u32 = 4;
// Tasks holding unsolicited data (immediate data, unsolicited Data-Out) before the SCSI target has buffers for it,
// each in one large buffer taken at boot: FirstBurstLength (64 KiB) fits one. None free: the command gets BUSY.
export const STAGING_SLOTS_MAX: u32 = 16;
const STAGE_NONE: u8 = 0xff;
const STATUS_BUSY: u32 = 0x08; // SAM: the logical unit cannot take the command now; the initiator retries

enum SessionState {
  Free = 0, // unused
  Active = 1, // logged in, with at least one connection
}

class Session {
  state: SessionState = SessionState.Free;
  isid: u64 = 0;
  tsih: u32 = 0;
  target: u32 = 0;
  initiator: usize = carve(224);
  initiatorBytes: u32 = 0;
  nexus: u32 = NEXUS_ID_NONE; // the SCSI target's id of this I_T nexus (scsiNexusIdentify); none for discovery
  expCmdSn: u32 = 0;
  connections: u32 = 0;
  maxConnections: u32 = 1; // negotiated on the leading connection
  readonly params: NegotiatedParams = new NegotiatedParams(); // the leading connection's: session-wide keys
  discovery: bool = false;
  // The reorder queue (RFC 7143, "Command Numbering and Acknowledging"): one entry per CmdSN of the window
  // [ExpCmdSN, ExpCmdSN + CMD_WINDOW), at CmdSN mod CMD_WINDOW: ORDER_EMPTY (not arrived), ORDER_ARRIVED (taken, nothing
  // left to deliver) or the transport task of a SCSI command waiting for the commands before it.
  readonly order: usize = carve(CMD_WINDOW * 2, 2);
  waiting: u32 = 0; // SCSI commands in the queue

  orderAt(cmdSn: u32): u32 { return <u32>load<u16>(this.order + <usize>(cmdSn % CMD_WINDOW) * 2); }
  orderSet(cmdSn: u32, value: u32): void { store<u16>(this.order + <usize>(cmdSn % CMD_WINDOW) * 2, <u16>value); }
  orderClear(): void {
    for (let i: u32 = 0; i < CMD_WINDOW; i++) store<u16>(this.order + <usize>i * 2, <u16>ORDER_EMPTY);
    this.waiting = 0;
  }
}
const ORDER_EMPTY: u32 = 0xffff;
const ORDER_ARRIVED: u32 = 0xfffe;

// What the transport keeps per SCSI task it created (indexed like the SCSI target's task table).
enum TaskPhase {
  Free = 0, // not the transport's
  Submitted = 1, // with the SCSI target
  DataOut = 2, // soliciting Data-Out with R2Ts
  Sending = 3, // Data-In and status being queued on the NIC (as room allows)
  Orphan = 4, // its connection is gone: released when the SCSI target answers
  Sent = 5, // everything queued: released when the NIC has sent the last piece
  Waiting = 6, // a SCSI command in its session's reorder queue: not yet with the SCSI target
}

// Transmit entry ids: |31..24 kind|23..16 connection|15..0 value|.
const TX_KIND_SLOT: u32 = 1; // a header slot of the connection
const TX_KIND_TASK: u32 = 2; // a piece of a task's Data-In (value: the task)
const TX_KIND_PAGE: u32 = 3; // a page buffer holding a data segment (value: the buffer)

export class IscsiTask extends Task {
  readonly nic: Nic = new Nic();
  private readonly conns: StaticArray<IscsiConn> = new StaticArray<IscsiConn>(CONNECTIONS_MAX);
  private readonly logins: StaticArray<LoginConnection> = new StaticArray<LoginConnection>(CONNECTIONS_MAX);
  private readonly sessions: StaticArray<Session> = new StaticArray<Session>(SESSIONS_MAX);
  private readonly event: NicEvent = new NicEvent();
  private readonly used: StaticArray<u32> = new StaticArray<u32>(1);
  private readonly random: usize = carve(LOGIN_RANDOM_BYTES + 3, 4);
  private readonly zeros: usize = carve(16, 16); // padding source
  private readonly cursor: TextCursor = new TextCursor();
  private readonly writer: TextWriter = new TextWriter();
  private readonly portalText: usize = carve(64);
  private readonly portName: usize = carve(256); // "InitiatorName,i,0xISID" for scsiNexusIdentify
  private portalTextBytes: u32 = 0;
  // Per SCSI task.
  private readonly phase: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly taskConn: StaticArray<u8> = new StaticArray<u8>(SCSI_TASKS_MAX);
  private readonly taskItt: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly taskLun: StaticArray<u64> = new StaticArray<u64>(SCSI_TASKS_MAX);
  private readonly taskTotal: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // Data-Out bytes wanted
  private readonly taskReceived: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly taskNextR2t: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next offset to ask for
  private readonly taskR2tSn: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly taskOutstanding: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // R2Ts unanswered
  private readonly taskPieces: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // NIC entries in flight
  private readonly taskExpected: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly taskNextPdu: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next Data-In to queue
  private readonly taskDataSn: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next DataSN in the sequence
  private readonly taskNextOffset: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // next offset in it
  private readonly taskR2tOldest: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // R2TSN being answered
  private readonly r2tEnd: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX * R2T_SLOTS); // [t * R2T_SLOTS + R2TSN % R2T_SLOTS]
  private readonly r2tOffset: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX * R2T_SLOTS);
  // Unsolicited data (RFC 7143, FirstBurstLength): immediate data and Data-Out with TTT 0xffffffff.
  private readonly taskStage: StaticArray<u8> = new StaticArray<u8>(SCSI_TASKS_MAX); // staging slot, or STAGE_NONE
  private readonly taskFirstBurst: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // unsolicited bytes allowed
  private readonly taskUnsolicited: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // unsolicited bytes received
  private readonly taskUnsolicitedOpen: StaticArray<bool> = new StaticArray<bool>(SCSI_TASKS_MAX); // more may come
  private readonly taskUnsolicitedDataSn: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  // What a waiting command needs to reach the SCSI target once the commands before it have.
  private readonly taskCdb: usize = carve(SCSI_TASKS_MAX * 16, 16);
  private readonly taskCmdSn: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly taskFlags: StaticArray<u8> = new StaticArray<u8>(SCSI_TASKS_MAX);
  private readonly scratchParams: NegotiatedParams = new NegotiatedParams();
  private orderCmdSn: bool = false; // the PDU being dispatched is a non-immediate command: it takes its CmdSN's entry
  reorderedCount: u64 = 0; // SCSI commands that waited for an earlier CmdSN
  private readonly stageBuffer: StaticArray<u32> = new StaticArray<u32>(STAGING_SLOTS_MAX); // large-pool indexes
  private readonly stageHeld: StaticArray<bool> = new StaticArray<bool>(STAGING_SLOTS_MAX);
  private stageCount: u32 = 0;
  stageBusyCount: u64 = 0; // commands answered BUSY for want of a staging slot
  discardedDataOut: u64 = 0; // Data-Out for tasks that are gone (aborted): dropped silently
  private readonly sendQueue: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // ScsiDone waiting for room
  private sendQueueHead: u32 = 0;
  private sendQueueCount: u32 = 0;
  private readonly out: Msg = new Msg();
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
    const large = bufferPool(BUFFER_CLASS_LARGE);
    const slots = min(STAGING_SLOTS_MAX, large.capacity / 4);
    for (let i: u32 = 0; i < slots; i++) {
      unchecked(this.stageBuffer[i] = bufferReserve(BUFFER_CLASS_LARGE));
      assert(unchecked(this.stageBuffer[i]) != POOL_NONE, "iscsi: staging buffers");
    }
    this.stageCount = slots;
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) unchecked(this.taskStage[t] = STAGE_NONE);
    negotiationLimits.immediateData = slots > 0;
    negotiationLimits.initialR2t = slots == 0;
    negotiationLimits.firstBurstLength = 65536; // one staging slot
    assert(negotiationLimits.firstBurstLength <= large.slotBytes, "iscsi: FirstBurstLength fits a staging slot");
    negotiationLimits.maxRecvDataSegmentLength = 65536;
    negotiationLimits.maxOutstandingR2t = R2T_SLOTS;
    negotiationLimits.maxBurstLength = 1048576;
    // Several connections per session (MC/S): their commands meet in CmdSN order in the session's reorder queue.
    negotiationLimits.maxConnections = CONNECTIONS_PER_SESSION_MAX;
    negotiationLimitsCheck();
    configRomLoadTargets(bootInfoConfigRomBase(bootInfo), this.portalText, 64);
    this.portalTextBytes = strlen(this.portalText, 64);
    return this.nic.boot(bootInfo, this.index);
  }

  // The UMA's advertisement: the volumes exist, so the portals open.
  private onAdvertise(volumes: u32): void {
    if (this.serving || !this.nic.present) return;
    this.nic.start();
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
        case MsgKind.TtsAdvertise: this.onAdvertise(this.scratch.a); break;
        default: assert(false, "iscsi: unexpected message kind");
      }
    }
    this.flushSendQueue();
    this.nic.rxFlush();
    this.nic.txFlush();
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  // ---- NIC events ----

  private drainNic(): void {
    // Bounded by the event queue's size per interrupt; more events raise the interrupt again.
    for (let i: u32 = 0; i < 1024 && this.nic.next(this.event); i++) {
      const e = this.event;
      if (e.connection >= CONNECTIONS_MAX) continue;
      const conn = unchecked(this.conns[e.connection]);
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
    if (conn.state != ConnState.Free || !conn.open(portal)) {
      this.nic.close(conn.slot);
      return;
    }
    randomFill(this.random, LOGIN_RANDOM_BYTES + 3);
    const login = unchecked(this.logins[conn.slot]);
    loginBegin(login, load<u32>(this.random + LOGIN_RANDOM_BYTES - 1) & 0x00ff_ffff, 1, CMD_WINDOW, this.random);
  }

  private onClosed(conn: IscsiConn): void {
    if (conn.state == ConnState.Free) return;
    this.connectionGone(conn);
    conn.release();
  }

  // ERL 0: the connection's tasks are orphaned (freed when the SCSI target answers); the session ends with its last.
  private connectionGone(conn: IscsiConn): void {
    if (conn.pendingStage != STAGE_NONE) this.stageGive(conn.pendingStage); // immediate data cut off mid-PDU
    conn.pendingStage = STAGE_NONE;
    const s = conn.session < SESSIONS_MAX ? unchecked(this.sessions[conn.session]) : null;
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) {
      const phase = <u32>unchecked(this.phase[t]);
      if (phase == TaskPhase.Free || <u32>unchecked(this.taskConn[t]) != conn.slot) continue;
      if (phase == TaskPhase.Waiting) {
        // Never reached the SCSI target: it ends here, without an answer (ERL 0: the connection's commands are
        // lost). Its place in the order counts as arrived, so the commands after it are not held up by it.
        if (s != null) {
          s.orderSet(unchecked(this.taskCmdSn[t]), ORDER_ARRIVED);
          s.waiting -= 1;
        }
        conn.waitingReleased += 1;
        this.taskFinish(t);
        continue;
      }
      if (phase == TaskPhase.DataOut) scsiTaskDataReady(t, this.index, true); // the data will not come
      // Orphans are released by whoever holds them last: the SCSI target's ScsiDone, the last Sent, or the queue.
      unchecked(this.phase[t] = TaskPhase.Orphan);
    }
    if (conn.session < SESSIONS_MAX) {
      line().s("iscsi: connection ").u32(conn.slot).s(" ends: ").u32(conn.pduCount).s(" PDUs in, immediate data ")
        .u64(conn.immediateBytes).s(" bytes, unsolicited Data-Out ").u64(conn.unsolicitedBytes).s(" bytes, ")
        .u32(conn.r2tCount).s(" R2Ts, ").u32(conn.waitingReleased).s(" waiting commands ended; tasks free ")
        .u32(scsiTasksFree()).s(", staging slots free ").u32(this.stageFree()).s(", BUSY for want of one so far ")
        .u64(this.stageBusyCount).out();
      const session = unchecked(this.sessions[conn.session]);
      session.connections -= 1;
      if (session.connections == 0) {
        if (session.nexus != NEXUS_ID_NONE) scsiNexusGone(session.nexus);
        session.nexus = NEXUS_ID_NONE;
        session.state = SessionState.Free;
        session.orderClear();
      } else if (session.waiting > 0) {
        // The commands the gaps stand for may have been on this connection: at ERL 0 they are lost for good, and
        // the commands waiting on the other connections would wait forever. The gaps are given up: ExpCmdSN steps
        // over them to the last waiting command, which all go to the SCSI target in order.
        this.orderGiveUpGaps(session, conn.session);
      }
      conn.session = 0xffff_ffff;
    }
  }

  private onReceived(conn: IscsiConn, id: u32, lengthBytes: u32): void {
    const buffer = this.nic.rxAddress(id, lengthBytes);
    if (buffer == 0) return; // not a buffer we posted: the NIC is confused; nothing to give back
    let at: u32 = 0;
    // Bounded: every event consumes bytes or ends a PDU; a buffer holds at most lengthBytes / 48 headers.
    for (let guard: u32 = 0; guard <= lengthBytes && at < lengthBytes && conn.state != ConnState.Free && conn.state != ConnState.Closing; guard++) {
      const event = conn.framer.feed(buffer + at, lengthBytes - at, this.used);
      at += unchecked(this.used[0]);
      if (event == FrameEvent.None) continue;
      this.onFrameEvent(conn, event);
    }
    this.nic.rxPost(id);
  }

  private onFrameEvent(conn: IscsiConn, event: FrameEvent): void {
    switch (event) {
      case FrameEvent.Header: {
        this.chooseSink(conn);
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
    if (f.dataBytes == 0) return;
    const op = bhsOpcode(bhs);
    if (op == OP_DATA_OUT) {
      const unsolicited = bhsTargetTransferTag(bhs) == TAG_RESERVED;
      const t = unsolicited ? this.unsolicitedTask(conn, bhs) : this.dataOutTask(conn, bhs);
      if (t == SCSI_TASK_NONE) return;
      const offset = bhsBufferOffset(bhs);
      if (unsolicited) {
        // Out of sequence or past FirstBurstLength: discarded here, answered in onUnsolicitedDataOut.
        if (offset != unchecked(this.taskUnsolicited[t]) || <u64>offset + f.dataBytes > <u64>unchecked(this.taskFirstBurst[t])) return;
        // The SCSI target has its buffers and wants these bytes: straight in. Otherwise they wait in the stage.
        if (<u32>unchecked(this.phase[t]) != TaskPhase.DataOut || offset + f.dataBytes > unchecked(this.taskTotal[t])) {
          f.sinkKind = SinkKind.Memory;
          f.sinkAddress = this.stageAddress(<u32>unchecked(this.taskStage[t])) + offset;
          return;
        }
      }
      f.sinkKind = SinkKind.Sgl;
      f.sgl = scsiTaskSgl(t);
      f.sglOffset = offset;
      return;
    }
    if (op == OP_SCSI_COMMAND && scsiCmdWrite(bhs) && f.dataBytes <= negotiationLimits.firstBurstLength) {
      // Immediate data: into a staging slot (onScsiCommand owns it from there; onPdu frees it if nobody took it).
      const stage = this.stageTake();
      if (stage == STAGE_NONE) return; // onScsiCommand answers BUSY
      conn.pendingStage = stage;
      f.sinkKind = SinkKind.Memory;
      f.sinkAddress = this.stageAddress(stage);
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
    if (conn.pendingStage != STAGE_NONE) this.stageGive(conn.pendingStage); // immediate data nobody took
    conn.pendingStage = STAGE_NONE;
  }

  private onPduDispatch(conn: IscsiConn, dataDigestBad: bool): void {
    this.pduCount += 1;
    conn.pduCount += 1;
    const bhs = conn.framer.header;
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
    if (ordered && !this.acceptCmdSn(s, cmdSn)) return;
    this.orderCmdSn = ordered;
    switch (op) {
      case OP_SCSI_COMMAND: this.onScsiCommand(conn, s); break;
      case OP_DATA_OUT: this.onDataOut(conn); break;
      case OP_NOP_OUT: this.onNopOut(conn, s); break;
      case OP_TEXT_REQUEST: this.onText(conn, s); break;
      case OP_LOGOUT_REQUEST: this.onLogout(conn, s); break;
      case OP_TMF_REQUEST: this.onTmf(conn, s); break;
      case OP_LOGIN_REQUEST: this.reject(conn, REJECT_PROTOCOL_ERROR); break;
      case OP_SNACK_REQUEST: this.reject(conn, REJECT_COMMAND_NOT_SUPPORTED); break; // ERL 0
      default: this.reject(conn, REJECT_COMMAND_NOT_SUPPORTED);
    }
    this.orderCmdSn = false;
    // A command that did not wait (answered, refused, or not a SCSI command) still fills its place in the order.
    // (Even when the connection went meanwhile: the session's other connections go on from it.)
    if (ordered && s.state == SessionState.Active) this.orderArrived(s, sessionIndex, cmdSn);
  }

  // Numbered command `cmdSn` came and needs nothing more from the order (answered, refused, not a SCSI command).
  private orderArrived(s: Session, sessionIndex: u32, cmdSn: u32): void {
    if (cmdSn - s.expCmdSn >= CMD_WINDOW) return;
    if (s.orderAt(cmdSn) == ORDER_EMPTY) s.orderSet(cmdSn, ORDER_ARRIVED);
    this.orderAdvance(s, sessionIndex);
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
    if (s.state == SessionState.Active) this.orderArrived(s, conn.session, bhsCmdSn(bhs));
  }

  // RFC 7143, "Command Numbering and Acknowledging": a non-immediate command outside [ExpCmdSN, MaxCmdSN] is
  // ignored, and so is one whose CmdSN has already come (a duplicate). Immediate commands are not numbered.
  private acceptCmdSn(s: Session, cmdSn: u32): bool {
    if (cmdSn - s.expCmdSn >= CMD_WINDOW) return false; // behind ExpCmdSN or past MaxCmdSN: silently ignored
    return s.orderAt(cmdSn) == ORDER_EMPTY;
  }

  // ExpCmdSN advances over the run of arrived commands from it, handing the waiting SCSI commands in that run to
  // the SCSI target in CmdSN order, whatever connection each came on. Bounded by the window.
  private orderAdvance(s: Session, sessionIndex: u32): void {
    for (let i: u32 = 0; i < CMD_WINDOW; i++) {
      const entry = s.orderAt(s.expCmdSn);
      if (entry == ORDER_EMPTY) return;
      s.orderSet(s.expCmdSn, ORDER_EMPTY);
      s.expCmdSn += 1;
      if (entry == ORDER_ARRIVED) continue;
      s.waiting -= 1;
      this.submit(entry, sessionIndex);
    }
  }

  // A SCSI command's turn has come: to the SCSI target.
  private submit(t: u32, sessionIndex: u32): void {
    assert(<u32>unchecked(this.phase[t]) == TaskPhase.Waiting, "iscsi: a submitted command was waiting");
    unchecked(this.phase[t] = TaskPhase.Submitted);
    const s = unchecked(this.sessions[sessionIndex]);
    const flags = <u32>unchecked(this.taskFlags[t]);
    const read = (flags & SCSI_CMD_READ) != 0;
    const write = (flags & SCSI_CMD_WRITE) != 0;
    scsiTaskSubmit(t, this.index, s.nexus, this.targetLunToVolume(s, lunDecode(unchecked(this.taskLun[t]))),
      this.taskCdb + <usize>t * 16, 16, unchecked(this.taskExpected[t]),
      read ? ScsiDirection.Read : write ? ScsiDirection.Write : ScsiDirection.None, unchecked(this.taskItt[t]), flags & 7);
  }

  private orderGiveUpGaps(s: Session, sessionIndex: u32): void {
    let last: u32 = 0;
    let any = false;
    for (let d: u32 = 0; d < CMD_WINDOW; d++) {
      const entry = s.orderAt(s.expCmdSn + d);
      if (entry != ORDER_EMPTY && entry != ORDER_ARRIVED) { last = d; any = true; }
    }
    if (!any) return;
    for (let d: u32 = 0; d < last; d++) if (s.orderAt(s.expCmdSn + d) == ORDER_EMPTY) s.orderSet(s.expCmdSn + d, ORDER_ARRIVED);
    this.orderAdvance(s, sessionIndex);
  }

  private maxCmdSn(s: Session): u32 { return s.expCmdSn + CMD_WINDOW - 1; }

  private onLogin(conn: IscsiConn): void {
    const login = unchecked(this.logins[conn.slot]);
    const slot = this.txBegin(conn);
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
    if (outcome == LoginOutcome.Complete) this.enterFullFeature(conn, login, response);
    this.sendWithPage(conn, slot, page, login.responseDataBytes, outcome == LoginOutcome.Failed ? TX_FLAG_CLOSE : 0);
    if (outcome == LoginOutcome.Failed) conn.state = ConnState.Closing;
  }

  // A Login Response with a failure status for a PDU refused before the login engine saw it, then the close.
  private refuseLogin(conn: IscsiConn, status: u32): void {
    const slot = this.txBegin(conn);
    if (slot == TX_SLOTS) {
      this.drop(conn); // no room even for the answer: the close alone says it
      return;
    }
    loginRefuseRequest(unchecked(this.logins[conn.slot]), conn.framer.header, status, conn.txSlotAddress(slot));
    this.sendHeader(conn, slot, TX_FLAG_CLOSE);
    conn.state = ConnState.Closing;
  }

  // TSIH 0: a new session (an old one with this initiator and ISID is reinstated: closed); else join that session.
  private checkSession(conn: IscsiConn, login: LoginConnection, response: usize, outcome: LoginOutcome): LoginOutcome {
    if (login.tsih == 0) return outcome;
    const index = login.tsih - 1;
    if (index >= SESSIONS_MAX || unchecked(this.sessions[index]).state != SessionState.Active
      || unchecked(this.sessions[index]).isid != login.isid) {
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

  // The I_T nexus as SAM-5 names it for iSCSI (RFC 7143, SCSI Port Names): initiator port "InitiatorName,i,0xISID"
  // (ISID as 12 hexadecimal digits) through the target's port, told apart per target by its index + 1.
  private nexusOf(s: Session): u32 {
    memory.copy(this.portName, s.initiator, s.initiatorBytes);
    let at = this.portName + s.initiatorBytes;
    store<u8>(at, 0x2c); store<u8>(at, 0x69, 1); store<u8>(at, 0x2c, 2); store<u8>(at, 0x30, 3); store<u8>(at, 0x78, 4); // ",i,0x"
    at += 5;
    for (let i: u32 = 0; i < 12; i++) {
      const nibble = <u32>(s.isid >> (<u64>(11 - i) * 4)) & 0xf;
      store<u8>(at + i, <u8>(nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10));
    }
    return scsiNexusIdentify(this.portName, s.initiatorBytes + 17, s.target + 1);
  }

  private enterFullFeature(conn: IscsiConn, login: LoginConnection, response: usize): void {
    const params = login.negotiation.params;
    let index: u32 = 0xffff_ffff;
    if (login.tsih == 0) {
      this.reinstate(login);
      for (let i: u32 = 0; i < SESSIONS_MAX; i++) if (unchecked(this.sessions[i]).state == SessionState.Free) { index = i; break; }
      if (index == 0xffff_ffff) {
        loginRefuse(login, 0x0302, response); // out of resources
        conn.state = ConnState.Closing;
        return;
      }
      const s = unchecked(this.sessions[index]);
      s.state = SessionState.Active;
      s.isid = login.isid;
      s.tsih = index + 1;
      s.target = login.target;
      s.connections = 0;
      s.discovery = params.sessionType == SessionType.Discovery;
      s.maxConnections = params.maxConnections;
      s.params.copyFrom(params);
      s.expCmdSn = bhsCmdSn(conn.framer.header);
      s.orderClear();
      s.initiatorBytes = min(login.initiatorNameBytes, 223);
      memory.copy(s.initiator, login.initiatorName, s.initiatorBytes);
      s.nexus = s.discovery ? NEXUS_ID_NONE : this.nexusOf(s);
      if (!s.discovery && s.nexus == NEXUS_ID_NONE) {
        s.state = SessionState.Free;
        loginRefuse(login, 0x0302, response); // out of resources: the SCSI target's nexus table is full
        conn.state = ConnState.Closing;
        return;
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

  // A new login with the same initiator name and ISID replaces the old session (RFC 7143, session reinstatement).
  private reinstate(login: LoginConnection): void {
    for (let i: u32 = 0; i < SESSIONS_MAX; i++) {
      const s = unchecked(this.sessions[i]);
      if (s.state != SessionState.Active || s.isid != login.isid) continue;
      if (!bytesEqual(s.initiator, s.initiatorBytes, login.initiatorName, login.initiatorNameBytes)) continue;
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
      if (stage == STAGE_NONE) stage = this.stageTake();
      if (stage == STAGE_NONE) {
        this.stageBusyCount += 1;
        this.respondStatusOnly(conn, s, itt, STATUS_BUSY); // its unsolicited Data-Out, if any, find no task: dropped
        return;
      }
    }
    const lunField = bhsLun(bhs);
    const t = scsiTaskAlloc();
    if (t == SCSI_TASK_NONE) {
      if (stage != conn.pendingStage) this.stageGive(stage); // onPdu gives back the pending one
      this.respondStatusOnly(conn, s, itt, 0x28); // TASK SET FULL
      return;
    }
    conn.pendingStage = STAGE_NONE; // the task owns it now
    conn.immediateBytes += immediateBytes;
    unchecked(this.taskConn[t] = <u8>conn.slot);
    unchecked(this.taskItt[t] = itt);
    unchecked(this.taskLun[t] = lunField);
    unchecked(this.taskExpected[t] = expected);
    unchecked(this.taskPieces[t] = 0);
    unchecked(this.taskStage[t] = immediateBytes > 0 || unsolicitedFollow ? stage : STAGE_NONE);
    unchecked(this.taskFirstBurst[t] = firstBurst);
    unchecked(this.taskUnsolicited[t] = immediateBytes);
    unchecked(this.taskUnsolicitedOpen[t] = unsolicitedFollow);
    unchecked(this.taskUnsolicitedDataSn[t] = 0);
    unchecked(this.taskTotal[t] = 0);
    unchecked(this.taskFlags[t] = <u8>flags);
    memory.copy(this.taskCdb + <usize>t * SCSI_CDB_BYTES, scsiCmdCdb(bhs), SCSI_CDB_BYTES);
    unchecked(this.phase[t] = TaskPhase.Waiting);
    if (!this.orderCmdSn) {
      this.submit(t, conn.session); // immediate: not numbered, not ordered
      return;
    }
    // Numbered: it takes its place in the session's order and goes to the SCSI target when the commands before it
    // have (onPduDispatch advances the order right after). Its unsolicited data meanwhile waits in its stage.
    const cmdSn = bhsCmdSn(bhs);
    unchecked(this.taskCmdSn[t] = cmdSn);
    s.orderSet(cmdSn, t);
    s.waiting += 1;
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
    if (<u32>unchecked(this.phase[t]) == TaskPhase.Orphan) {
      scsiTaskDataReady(t, this.index, true);
      return;
    }
    unchecked(this.phase[t] = TaskPhase.DataOut);
    unchecked(this.taskTotal[t] = bytes);
    unchecked(this.taskR2tSn[t] = 0);
    unchecked(this.taskR2tOldest[t] = 0);
    const staged = min(unchecked(this.taskUnsolicited[t]), bytes);
    if (staged > 0) this.stageToSgl(t, 0, staged);
    unchecked(this.taskReceived[t] = staged);
    unchecked(this.taskNextR2t[t] = staged);
    if (unchecked(this.taskUnsolicitedOpen[t])) return; // the rest of the first burst is on its way
    this.afterUnsolicited(t);
  }

  // The unsolicited data is all in and the SCSI target has its buffers: the stage goes back, R2Ts ask for the rest.
  private afterUnsolicited(t: u32): void {
    this.stageRelease(t);
    const total = unchecked(this.taskTotal[t]);
    unchecked(this.taskNextR2t[t] = max(unchecked(this.taskNextR2t[t]), min(unchecked(this.taskUnsolicited[t]), total)));
    if (unchecked(this.taskReceived[t]) >= total) {
      unchecked(this.phase[t] = TaskPhase.Submitted);
      scsiTaskDataReady(t, this.index, false);
      return;
    }
    this.sendR2ts(t);
  }

  private sendR2ts(t: u32): void {
    if (unchecked(this.taskUnsolicitedOpen[t])) return; // R2Ts start after the first burst (DataSequenceInOrder)
    const conn = unchecked(this.conns[<u32>unchecked(this.taskConn[t])]);
    const s = unchecked(this.sessions[conn.session]);
    const params = unchecked(this.logins[conn.slot]).negotiation.params;
    const total = unchecked(this.taskTotal[t]);
    const outstandingMax = min(params.maxOutstandingR2t, R2T_SLOTS);
    // Bounded by MaxOutstandingR2T.
    while (unchecked(this.taskR2tSn[t]) - unchecked(this.taskR2tOldest[t]) < outstandingMax && unchecked(this.taskNextR2t[t]) < total) {
      const slot = conn.txSlotTake();
      if (slot == TX_SLOTS || !this.nic.txRoom(2)) {
        if (slot != TX_SLOTS) conn.txSlotGive(slot);
        conn.r2tWaitingRoom = true;
        return; // sent when a Data-Out or a Sent event frees room
      }
      const offset = unchecked(this.taskNextR2t[t]);
      const desired = min(params.maxBurstLength, total - offset);
      const r2tSn = unchecked(this.taskR2tSn[t]);
      buildR2t(conn.txSlotAddress(slot), unchecked(this.taskLun[t]), unchecked(this.taskItt[t]), ttt(t, r2tSn), conn.statSn,
        s.expCmdSn, this.maxCmdSn(s), r2tSn, offset, desired);
      const ring = t * R2T_SLOTS + r2tSn % R2T_SLOTS;
      unchecked(this.r2tOffset[ring] = offset);
      unchecked(this.r2tEnd[ring] = offset + desired);
      if (r2tSn == unchecked(this.taskR2tOldest[t])) this.r2tBegin(t, offset);
      unchecked(this.taskR2tSn[t] = r2tSn + 1);
      unchecked(this.taskNextR2t[t] = offset + desired);
      conn.r2tCount += 1;
      this.sendHeader(conn, slot, 0);
    }
  }

  // The oldest outstanding R2T's Data-Out sequence starts (RFC 7143, DataSN: each sequence counts from 0).
  private r2tBegin(t: u32, offset: u32): void {
    unchecked(this.taskDataSn[t] = 0);
    unchecked(this.taskNextOffset[t] = offset);
  }

  // The task a solicited Data-Out belongs to: its TTT names the oldest outstanding R2T of a task of this connection
  // and ITT, and it stays within that R2T's window; SCSI_TASK_NONE otherwise.
  private dataOutTask(conn: IscsiConn, bhs: usize): u32 {
    const tag = bhsTargetTransferTag(bhs);
    const t = tag & 0xffff;
    if (tag == TAG_RESERVED || t >= SCSI_TASKS_MAX || <u32>unchecked(this.phase[t]) != TaskPhase.DataOut) return SCSI_TASK_NONE;
    if (<u32>unchecked(this.taskConn[t]) != conn.slot || unchecked(this.taskItt[t]) != bhsInitiatorTaskTag(bhs)) return SCSI_TASK_NONE;
    const oldest = unchecked(this.taskR2tOldest[t]);
    if (oldest == unchecked(this.taskR2tSn[t]) || tag != ttt(t, oldest)) return SCSI_TASK_NONE;
    const end = unchecked(this.r2tEnd[t * R2T_SLOTS + oldest % R2T_SLOTS]);
    if (<u64>bhsBufferOffset(bhs) + bhsDataSegmentLength(bhs) > <u64>end) return SCSI_TASK_NONE; // beyond what we solicited
    return t;
  }

  // The task of this connection and ITT still taking unsolicited Data-Out, or SCSI_TASK_NONE. Bounded by the table.
  private unsolicitedTask(conn: IscsiConn, bhs: usize): u32 {
    const t = this.taskOfItt(conn, bhsInitiatorTaskTag(bhs));
    return t != SCSI_TASK_NONE && unchecked(this.taskUnsolicitedOpen[t]) ? t : SCSI_TASK_NONE;
  }

  private taskOfItt(conn: IscsiConn, itt: u32): u32 {
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) {
      const phase = <u32>unchecked(this.phase[t]);
      if ((phase == TaskPhase.Submitted || phase == TaskPhase.DataOut || phase == TaskPhase.Waiting) && <u32>unchecked(this.taskConn[t]) == conn.slot
        && unchecked(this.taskItt[t]) == itt) return t;
    }
    return SCSI_TASK_NONE;
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
    if (bhsDataSn(bhs) != unchecked(this.taskDataSn[t]) || bhsBufferOffset(bhs) != unchecked(this.taskNextOffset[t])) {
      this.protocolViolation(conn);
      return;
    }
    const oldest = unchecked(this.taskR2tOldest[t]);
    const end = unchecked(this.r2tEnd[t * R2T_SLOTS + oldest % R2T_SLOTS]);
    const next = unchecked(this.taskNextOffset[t]) + length;
    if (bhsFinal(bhs) != (next == end)) {
      this.protocolViolation(conn);
      return;
    }
    unchecked(this.taskDataSn[t] += 1);
    unchecked(this.taskNextOffset[t] = next);
    unchecked(this.taskReceived[t] += length);
    if (next == end) {
      unchecked(this.taskR2tOldest[t] = oldest + 1);
      if (oldest + 1 != unchecked(this.taskR2tSn[t])) this.r2tBegin(t, unchecked(this.r2tOffset[t * R2T_SLOTS + (oldest + 1) % R2T_SLOTS]));
    }
    if (unchecked(this.taskReceived[t]) >= unchecked(this.taskTotal[t])) {
      unchecked(this.phase[t] = TaskPhase.Submitted);
      scsiTaskDataReady(t, this.index, false);
      return;
    }
    this.sendR2ts(t);
  }

  // Data-Out with TTT 0xffffffff: the unsolicited part of the first burst, in order from where the immediate data
  // ended, DataSN from 0, F on its last PDU, and never past FirstBurstLength (RFC 7143, FirstBurstLength).
  private onUnsolicitedDataOut(conn: IscsiConn): void {
    const bhs = conn.framer.header;
    const t = this.unsolicitedTask(conn, bhs);
    if (t == SCSI_TASK_NONE) {
      // A live task that takes no (more) unsolicited data: a protocol error. No task: it is gone (answered BUSY,
      // aborted, or already completed): dropped.
      if (this.taskOfItt(conn, bhsInitiatorTaskTag(bhs)) != SCSI_TASK_NONE) this.protocolViolation(conn);
      else this.discardedDataOut += 1;
      return;
    }
    const offset = bhsBufferOffset(bhs);
    const length = bhsDataSegmentLength(bhs);
    const firstBurst = unchecked(this.taskFirstBurst[t]);
    const next = offset + length;
    if (bhsDataSn(bhs) != unchecked(this.taskUnsolicitedDataSn[t]) || offset != unchecked(this.taskUnsolicited[t])
      || <u64>offset + length > <u64>firstBurst || (!bhsFinal(bhs) && next == firstBurst)) {
      this.protocolViolation(conn);
      return;
    }
    unchecked(this.taskUnsolicitedDataSn[t] += 1);
    unchecked(this.taskUnsolicited[t] = next);
    conn.unsolicitedBytes += length;
    if (bhsFinal(bhs)) unchecked(this.taskUnsolicitedOpen[t] = false);
    if (<u32>unchecked(this.phase[t]) != TaskPhase.DataOut) return; // staged: onScsiDataOut takes it
    const total = unchecked(this.taskTotal[t]);
    if (offset < total) {
      const take = min(next, total) - offset;
      if (conn.framer.sinkKind == SinkKind.Memory) this.stageToSgl(t, offset, take); // it went to the stage
      unchecked(this.taskReceived[t] += take);
    }
    if (!unchecked(this.taskUnsolicitedOpen[t])) this.afterUnsolicited(t);
  }

  // A protocol error the RFC answers with a Reject (Protocol Error) and, at error recovery level 0, a drop.
  private protocolViolation(conn: IscsiConn): void {
    this.reject(conn, REJECT_PROTOCOL_ERROR);
    this.drop(conn);
  }

  // ---- Staging slots ----

  private stageTake(): u8 {
    for (let i: u32 = 0; i < this.stageCount; i++) {
      if (unchecked(this.stageHeld[i])) continue;
      unchecked(this.stageHeld[i] = true);
      return <u8>i;
    }
    return STAGE_NONE;
  }

  private stageFree(): u32 {
    let free: u32 = 0;
    for (let i: u32 = 0; i < this.stageCount; i++) if (!unchecked(this.stageHeld[i])) free += 1;
    return free;
  }

  private stageGive(stage: u8): void {
    assert(<u32>stage < this.stageCount, "iscsi: staging slot out of range");
    assert(unchecked(this.stageHeld[<u32>stage]), "iscsi: staging slot given back twice");
    unchecked(this.stageHeld[<u32>stage] = false);
  }

  private stageRelease(t: u32): void {
    const stage = unchecked(this.taskStage[t]);
    if (stage == STAGE_NONE) return;
    // A Data-Out still arriving into this slot (the task ended early) must not land in the slot's next owner.
    const f = unchecked(this.conns[<u32>unchecked(this.taskConn[t])]).framer;
    const base = this.stageAddress(<u32>stage);
    if (f.sinkKind == SinkKind.Memory && f.sinkAddress >= base && f.sinkAddress < base + bufferPool(BUFFER_CLASS_LARGE).slotBytes) {
      f.sinkKind = SinkKind.Discard;
    }
    this.stageGive(stage);
    unchecked(this.taskStage[t] = STAGE_NONE);
  }

  private stageAddress(stage: u32): usize {
    assert(stage < this.stageCount, "iscsi: staging slot out of range");
    return bufferPool(BUFFER_CLASS_LARGE).address(unchecked(this.stageBuffer[stage]));
  }

  // Copies [offset, offset + lengthBytes) of the task's staged unsolicited data into its SGL at the same offset.
  private stageToSgl(t: u32, offset: u32, lengthBytes: u32): void {
    const stage = <u32>unchecked(this.taskStage[t]);
    if (stage == <u32>STAGE_NONE || lengthBytes == 0) return;
    assert(offset + lengthBytes <= bufferPool(BUFFER_CLASS_LARGE).slotBytes, "iscsi: staged data within its slot");
    const sgl = scsiTaskSgl(t);
    const from = this.stageAddress(stage) + offset;
    let skip = offset;
    let done: u32 = 0;
    const count = sgls().segmentCount(sgl);
    for (let i: u32 = 0; i < count && done < lengthBytes; i++) { // bounded by the SGL's segments
      const segment = sgls().segment(sgl, i);
      const segmentBytes = load<u32>(segment, 8);
      if (skip >= segmentBytes) { skip -= segmentBytes; continue; }
      const take = min(segmentBytes - skip, lengthBytes - done);
      memory.copy(<usize>load<u64>(segment, 0) + skip, from + done, take);
      done += take;
      skip = 0;
    }
  }

  // ---- Responses ----

  private onScsiDone(t: u32): void {
    assert(t < SCSI_TASKS_MAX, "iscsi: ScsiDone for a task out of range"); // the SCSI target's own index
    const phase = <u32>unchecked(this.phase[t]);
    // Aborted (a TMF, PREEMPT AND ABORT, a lost connection): no response goes out (SAM, TASK ABORTED not reported).
    if (phase == TaskPhase.Orphan || phase == TaskPhase.Free || scsiTaskAborted(t)) {
      this.taskFinish(t);
      return;
    }
    unchecked(this.phase[t] = TaskPhase.Sending);
    unchecked(this.taskNextPdu[t] = 0);
    // Behind others waiting for room, wait in line: responses leave in the order their commands finished.
    if (this.sendQueueCount > 0 || !this.sendTask(t)) this.queueSend(t);
  }

  private queueSend(t: u32): void {
    assert(this.sendQueueCount < SCSI_TASKS_MAX, "iscsi: send queue overflow");
    unchecked(this.sendQueue[(this.sendQueueHead + this.sendQueueCount) % SCSI_TASKS_MAX] = t);
    this.sendQueueCount += 1;
  }

  private flushSendQueue(): void {
    let count = this.sendQueueCount;
    while (count > 0) {
      const t = unchecked(this.sendQueue[this.sendQueueHead]);
      const phase = <u32>unchecked(this.phase[t]);
      if (phase == TaskPhase.Sending) {
        if (!this.sendTask(t)) return; // still no room: keep the order
      } else if (phase == TaskPhase.Orphan && unchecked(this.taskPieces[t]) == 0) {
        this.taskFinish(t); // its connection went while it waited; pieces in flight finish it on their Sent
      }
      this.sendQueueHead = (this.sendQueueHead + 1) % SCSI_TASKS_MAX;
      this.sendQueueCount -= 1;
      count -= 1;
    }
  }

  // Data-In PDUs straight from the task's SGL, then status (collapsed into the last Data-In when it is GOOD).
  // Data-In PDUs straight from the task's SGL, then status (collapsed into the last Data-In when it is GOOD). Sends
  // as many PDUs as there is room for and resumes from there on the next call: false while anything is left.
  private sendTask(t: u32): bool {
    const conn = unchecked(this.conns[<u32>unchecked(this.taskConn[t])]);
    const s = unchecked(this.sessions[conn.session]);
    const params = unchecked(this.logins[conn.slot]).negotiation.params;
    const dataBytes = scsiTaskDataInBytes(t);
    const status = scsiTaskStatus(t);
    const senseBytes = scsiTaskSenseBytes(t);
    const pduBytes = max<u32>(512, min(conn.peerMaxRecvDataSegmentLength, 262144));
    const pdus: u32 = dataBytes == 0 ? 0 : (dataBytes + pduBytes - 1) / pduBytes;
    const collapse = status == 0 && senseBytes == 0 && pdus > 0;
    const segments = dataBytes == 0 ? 0 : sgls().segmentCount(scsiTaskSgl(t));
    const residual = scsiTaskResidual(t);
    const residualFlags = residual > 0 ? RESIDUAL_UNDERFLOW : residual < 0 ? RESIDUAL_OVERFLOW : 0;
    const residualCount = <u32>(residual < 0 ? -residual : residual);
    // Bounded by the PDU count; each pass needs a header slot and room for the PDU's pieces (at most the
    // SGL's segments, the padding-and-digest trailer and the header).
    while (unchecked(this.taskNextPdu[t]) < pdus) {
      if (conn.txSlotsUsed >= TX_SLOTS || !this.nic.txRoom(segments + 2)) return false;
      const n = unchecked(this.taskNextPdu[t]);
      const offset = n * pduBytes;
      const length = min(pduBytes, dataBytes - offset);
      const last = n + 1 == pdus;
      const final = last || ((offset + length) % params.maxBurstLength == 0);
      const slot = conn.txSlotTake();
      const statSn = last && collapse ? conn.statSn++ : 0;
      buildDataIn(conn.txSlotAddress(slot), unchecked(this.taskLun[t]), unchecked(this.taskItt[t]), TAG_RESERVED, n, offset,
        length, final, false, last && collapse, 0, last && collapse ? residualFlags : 0, last && collapse ? residualCount : 0,
        statSn, s.expCmdSn, this.maxCmdSn(s));
      this.sendHeaderAndSgl(conn, slot, t, offset, length);
      unchecked(this.taskNextPdu[t] = n + 1);
    }
    if (!collapse) {
      if (conn.txSlotsUsed >= TX_SLOTS || !this.nic.txRoom(2)) return false;
      const slot = conn.txSlotTake();
      const page = senseBytes > 0 ? bufferPool(BUFFER_CLASS_PAGE).acquire() : POOL_NONE;
      let segmentBytes: u32 = 0;
      if (page != POOL_NONE) {
        const data = bufferPool(BUFFER_CLASS_PAGE).address(page);
        segmentBytes = scsiSenseSegmentWrite(data, scsiTaskSense(t), senseBytes); // RFC 7143, SCSI Response: SenseLength, then the sense data
      }
      buildScsiResponse(conn.txSlotAddress(slot), unchecked(this.taskItt[t]), SCSI_RESPONSE_COMPLETED, status, residualFlags,
        residualCount, 0, conn.statSn++, s.expCmdSn, this.maxCmdSn(s), pdus, segmentBytes);
      if (page != POOL_NONE) this.sendWithPage(conn, slot, page, segmentBytes, 0);
      else this.sendHeader(conn, slot, 0);
    }
    unchecked(this.phase[t] = TaskPhase.Sent);
    if (unchecked(this.taskPieces[t]) == 0) this.taskFinish(t);
    return true;
  }

  private respondStatusOnly(conn: IscsiConn, s: Session, itt: u32, status: u32): void {
    const slot = this.txBegin(conn);
    if (slot == TX_SLOTS || !this.nic.txRoom(2)) {
      if (slot != TX_SLOTS) conn.txSlotGive(slot);
      return; // the initiator times the command out
    }
    buildScsiResponse(conn.txSlotAddress(slot), itt, SCSI_RESPONSE_COMPLETED, status, 0, 0, 0, conn.statSn++, s.expCmdSn, this.maxCmdSn(s), 0, 0);
    this.sendHeader(conn, slot, 0);
  }

  private taskFinish(t: u32): void {
    this.stageRelease(t);
    unchecked(this.taskUnsolicitedOpen[t] = false);
    unchecked(this.phase[t] = TaskPhase.Free);
    scsiTaskRelease(t);
  }

  private onNopOut(conn: IscsiConn, s: Session): void {
    const bhs = conn.framer.header;
    const itt = bhsInitiatorTaskTag(bhs);
    if (itt == TAG_RESERVED) return; // a response to our ping, or a ping that wants no answer
    const slot = this.txBegin(conn);
    const dataBytes = conn.framer.sinkKind == SinkKind.Memory ? conn.framer.dataBytes : 0;
    const page = dataBytes > 0 ? bufferPool(BUFFER_CLASS_PAGE).acquire() : POOL_NONE;
    if (slot == TX_SLOTS || (dataBytes > 0 && (page == POOL_NONE || dataBytes > bufferPool(BUFFER_CLASS_PAGE).slotBytes))) {
      if (slot != TX_SLOTS) conn.txSlotGive(slot);
      if (page != POOL_NONE) bufferPool(BUFFER_CLASS_PAGE).release(page);
      this.drop(conn); // every ping with a tag is owed an answer (RFC 7143, NOP-In): rather than skip one, drop
      return;
    }
    if (page != POOL_NONE) memory.copy(bufferPool(BUFFER_CLASS_PAGE).address(page), conn.scratch(), dataBytes);
    buildNopIn(conn.txSlotAddress(slot), bhsLun(bhs), itt, TAG_RESERVED, conn.statSn++, s.expCmdSn, this.maxCmdSn(s), dataBytes);
    if (page != POOL_NONE) this.sendWithPage(conn, slot, page, dataBytes, 0);
    else this.sendHeader(conn, slot, 0);
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
    const itt = bhsInitiatorTaskTag(bhs);
    const tag = bhsTargetTransferTag(bhs);
    const dataBytes = bhsDataSegmentLength(bhs);
    if (tag == TAG_RESERVED) {
      conn.textPhase = TextPhase.Idle; // a new request resets the exchange
      conn.textJoinBytes = 0;
    } else if (conn.textPhase == TextPhase.Idle || tag != conn.textTtt || itt != conn.textItt) {
      this.reject(conn, REJECT_INVALID_PDU_FIELD);
      return;
    }
    if (conn.textPhase == TextPhase.Sending) {
      if (dataBytes > 0) {
        this.reject(conn, REJECT_PROTOCOL_ERROR); // RFC 7143 §6.2: the answer to a C=1 response is an empty request
        return;
      }
      this.textSend(conn, s, false);
      return;
    }
    // Idle (a new request) or Receiving (its keys continue): the data is in the scratch buffer at its place.
    if (conn.framer.sinkKind != SinkKind.Memory && dataBytes > 0) {
      conn.textPhase = TextPhase.Idle; // too long: the exchange ends here
      conn.textJoinBytes = 0;
      this.reject(conn, REJECT_LONG_OP_REJECT);
      return;
    }
    conn.textJoinBytes += dataBytes;
    conn.textItt = itt;
    if (bhsContinue(bhs)) {
      if (conn.textPhase == TextPhase.Idle) conn.textTtt = this.textTtt(conn);
      conn.textPhase = TextPhase.Receiving;
      this.textAnswer(conn, s, 0, false, false, conn.textTtt); // an empty acknowledgement: send the rest
      return;
    }
    conn.textPhase = TextPhase.Idle;
    this.textSend(conn, s, true);
  }

  // A Text Response with the keys' answers (first) or the next piece of a SendTargets answer; C=1, F=0 and a TTT
  // while more is left.
  private textSend(conn: IscsiConn, s: Session, first: bool): void {
    const login = unchecked(this.logins[conn.slot]);
    const page = bufferPool(BUFFER_CLASS_PAGE).acquire();
    if (page == POOL_NONE) {
      this.reject(conn, REJECT_LONG_OP_REJECT); // out of resources
      return;
    }
    const data = bufferPool(BUFFER_CLASS_PAGE).address(page);
    this.writer.reset(data, min(conn.peerMaxRecvDataSegmentLength, bufferPool(BUFFER_CLASS_PAGE).slotBytes) & ~(<u32>3));
    let resume = SEND_TARGETS_DONE;
    if (first) {
      const outcome = keysTextRequest(login.negotiation, conn.scratch() + TEXT_JOIN_AT, conn.textJoinBytes, this.cursor, this.writer);
      conn.textJoinBytes = 0;
      if (outcome == TextOutcome.ProtocolError || outcome == TextOutcome.OutOfResources) {
        bufferPool(BUFFER_CLASS_PAGE).release(page);
        this.reject(conn, outcome == TextOutcome.ProtocolError ? REJECT_PROTOCOL_ERROR : REJECT_LONG_OP_REJECT);
        return;
      }
      if (outcome == TextOutcome.SendTargets) resume = this.sendTargets(conn, s, 0);
    } else {
      resume = this.sendTargets(conn, s, conn.textResume);
    }
    const more = resume != SEND_TARGETS_DONE;
    if (more) {
      if (first) conn.textTtt = this.textTtt(conn);
      conn.textPhase = TextPhase.Sending;
      conn.textResume = resume;
    } else conn.textPhase = TextPhase.Idle;
    if (!this.textAnswerWithPage(conn, s, page, this.writer.lengthBytes, !more, more, more ? conn.textTtt : TAG_RESERVED)) return;
    // A redeclared MaxRecvDataSegmentLength holds from the next PDU on.
    conn.peerMaxRecvDataSegmentLength = login.negotiation.params.maxSendDataSegmentLength;
  }

  private sendTargets(conn: IscsiConn, s: Session, startIndex: u32): u32 {
    return sendTargetsWrite(unchecked(this.logins[conn.slot]).negotiation, s.discovery ? 0xffff_ffff : s.target, s.initiator,
      s.initiatorBytes, this.portalText, this.portalTextBytes, startIndex, this.writer);
  }

  // A fresh Target Transfer Tag for a Text exchange: never 0xffffffff.
  private textTtt(conn: IscsiConn): u32 {
    conn.textTttNext += 1;
    return (conn.textTttNext & 0x7fff_ffff) | 0x4000_0000;
  }

  private textAnswer(conn: IscsiConn, s: Session, dataBytes: u32, final: bool, cont: bool, tag: u32): void {
    this.textAnswerWithPage(conn, s, POOL_NONE, dataBytes, final, cont, tag);
  }

  // False when there was no room to answer (the page, if any, went back; the initiator is told with a Reject).
  private textAnswerWithPage(conn: IscsiConn, s: Session, page: u32, dataBytes: u32, final: bool, cont: bool, tag: u32): bool {
    const bhs = conn.framer.header;
    const slot = this.txBegin(conn);
    if (slot == TX_SLOTS) {
      if (page != POOL_NONE) bufferPool(BUFFER_CLASS_PAGE).release(page);
      conn.textPhase = TextPhase.Idle;
      this.reject(conn, REJECT_LONG_OP_REJECT);
      return false;
    }
    buildTextResponse(conn.txSlotAddress(slot), final, cont, bhsLun(bhs), bhsInitiatorTaskTag(bhs), tag,
      conn.statSn++, s.expCmdSn, this.maxCmdSn(s), dataBytes);
    if (page != POOL_NONE) this.sendWithPage(conn, slot, page, dataBytes, 0);
    else this.sendHeader(conn, slot, 0);
    return true;
  }

  private onLogout(conn: IscsiConn, s: Session): void {
    const bhs = conn.framer.header;
    const reason = logoutReasonCode(bhs);
    const slot = this.txBegin(conn);
    if (slot == TX_SLOTS) {
      this.drop(conn);
      return;
    }
    const response = reason == LOGOUT_CLOSE_SESSION || reason == LOGOUT_CLOSE_CONNECTION ? LOGOUT_RESPONSE_CLOSED : LOGOUT_RESPONSE_RECOVERY_NOT_SUPPORTED;
    buildLogoutResponse(conn.txSlotAddress(slot), bhsInitiatorTaskTag(bhs), response, conn.statSn++, s.expCmdSn + (bhsImmediate(bhs) ? 0 : 0),
      this.maxCmdSn(s), 0, 0);
    const closes = response == LOGOUT_RESPONSE_CLOSED;
    this.sendHeader(conn, slot, closes ? TX_FLAG_CLOSE : 0);
    if (closes) conn.state = ConnState.LoggedOut;
  }

  private onTmf(conn: IscsiConn, s: Session): void {
    const bhs = conn.framer.header;
    const t = scsiTaskAlloc();
    if (t == SCSI_TASK_NONE) {
      this.sendTmfResponse(conn, s, bhsInitiatorTaskTag(bhs), 5); // function rejected: no resources
      return;
    }
    unchecked(this.phase[t] = TaskPhase.Submitted);
    unchecked(this.taskConn[t] = <u8>conn.slot);
    unchecked(this.taskItt[t] = bhsInitiatorTaskTag(bhs));
    unchecked(this.taskLun[t] = bhsLun(bhs));
    const fn = tmfFunction(bhs);
    const referenced = tmfReferencedTaskTag(bhs);
    scsiTmfSubmit(t, this.index, s.nexus, this.targetLunToVolume(s, lunDecode(bhsLun(bhs))), fn, referenced);
  }

  private onTmfDone(t: u32): void {
    assert(t < SCSI_TASKS_MAX, "iscsi: ScsiTmfDone for a task out of range"); // the SCSI target's own index
    const phase = <u32>unchecked(this.phase[t]);
    if (phase != TaskPhase.Orphan && phase != TaskPhase.Free) {
      const conn = unchecked(this.conns[<u32>unchecked(this.taskConn[t])]);
      if (conn.state == ConnState.FullFeature) {
        this.sendTmfResponse(conn, unchecked(this.sessions[conn.session]), unchecked(this.taskItt[t]), scsiTaskTmfResponse(t));
      }
    }
    this.taskFinish(t);
  }

  private sendTmfResponse(conn: IscsiConn, s: Session, itt: u32, response: u32): void {
    const slot = this.txBegin(conn);
    if (slot == TX_SLOTS) {
      // Every TMF is owed a response, and the tasks it aborted are answered by it alone: rather than lose it (the
      // initiator would wait for those tasks for ever), drop the connection, as for a ping we cannot answer.
      this.drop(conn);
      return;
    }
    buildTmfResponse(conn.txSlotAddress(slot), itt, response, conn.statSn++, s.expCmdSn, this.maxCmdSn(s));
    this.sendHeader(conn, slot, 0);
  }

  private reject(conn: IscsiConn, reason: u32): void {
    this.rejectCount += 1;
    const slot = this.txBegin(conn);
    const page = bufferPool(BUFFER_CLASS_PAGE).acquire();
    if (slot == TX_SLOTS || page == POOL_NONE) {
      if (slot != TX_SLOTS) conn.txSlotGive(slot);
      if (page != POOL_NONE) bufferPool(BUFFER_CLASS_PAGE).release(page);
      this.drop(conn); // cannot even say why: the connection goes
      return;
    }
    const s = conn.session < SESSIONS_MAX ? unchecked(this.sessions[conn.session]) : null;
    const expCmdSn = s != null ? s.expCmdSn : 0;
    buildReject(conn.txSlotAddress(slot), bufferPool(BUFFER_CLASS_PAGE).address(page), conn.framer.header, BHS_BYTES, reason,
      conn.statSn++, expCmdSn, expCmdSn + CMD_WINDOW - 1, 0);
    this.sendWithPage(conn, slot, page, BHS_BYTES, 0);
  }

  /** Ends a connection at once (protocol violations during login, header digest errors). */
  private drop(conn: IscsiConn): void {
    if (conn.state == ConnState.Free || conn.state == ConnState.Closing) return;
    this.connectionGone(conn);
    conn.state = ConnState.Closing;
    this.nic.txFlush(); // answers queued before the drop (a Reject) leave before the close
    this.nic.close(conn.slot);
  }

  // ---- Transmit ----

  // A header slot for a control answer, if the NIC's transmit ring also has room for it (a header and a data
  // segment); TX_SLOTS otherwise. Every answer checks the ring: the driver's view of it is refreshed only here.
  private txBegin(conn: IscsiConn): u32 {
    if (!this.nic.txRoom(2)) return TX_SLOTS;
    return conn.txSlotTake();
  }

  // Header (+ header digest) from a slot; the slot comes back on Sent.
  private sendHeader(conn: IscsiConn, slot: u32, flags: u32): void {
    const header = conn.txSlotAddress(slot);
    let bytes = BHS_BYTES;
    if (conn.framer.headerDigest && conn.state != ConnState.Login) {
      store<u32>(header + BHS_BYTES, crc32c(header, BHS_BYTES));
      bytes += 4;
    }
    conn.pendingTx += 1;
    this.nic.txPost(conn.slot, <u64>header, bytes, txId(TX_KIND_SLOT, conn.slot, slot), flags);
  }

  // Header, then `dataBytes` from a page buffer (padded, digested); the page comes back on Sent.
  private sendWithPage(conn: IscsiConn, slot: u32, page: u32, dataBytes: u32, flags: u32): void {
    if (dataBytes == 0) {
      bufferPool(BUFFER_CLASS_PAGE).release(page);
      this.sendHeader(conn, slot, flags);
      return;
    }
    const data = bufferPool(BUFFER_CLASS_PAGE).address(page);
    const padded = (dataBytes + 3) & ~(<u32>3);
    memory.fill(data + dataBytes, 0, padded - dataBytes); // padding never carries old bytes
    this.sendHeader(conn, slot, 0);
    let digestBytes: u32 = 0;
    if (conn.framer.dataDigest && conn.state == ConnState.FullFeature) {
      store<u32>(data + padded, crc32c(data, padded));
      digestBytes = 4;
    }
    conn.pendingTx += 1;
    this.nic.txPost(conn.slot, <u64>data, padded + digestBytes, txId(TX_KIND_PAGE, conn.slot, page), flags);
  }

  // Header, then [offset, offset + length) of the task's SGL, padding and data digest.
  private sendHeaderAndSgl(conn: IscsiConn, slot: u32, t: u32, offset: u32, length: u32): void {
    this.sendHeader(conn, slot, 0);
    const sgl = scsiTaskSgl(t);
    const count = sgls().segmentCount(sgl);
    let skip = offset;
    let left = length;
    let crc = CRC32C_INIT;
    const digest = conn.framer.dataDigest;
    for (let i: u32 = 0; i < count && left > 0; i++) {
      const segment = sgls().segment(sgl, i);
      const segmentBytes = load<u32>(segment, 8);
      if (skip >= segmentBytes) { skip -= segmentBytes; continue; }
      const take = min(segmentBytes - skip, left);
      const address = load<u64>(segment, 0) + skip;
      if (digest) crc = crc32cUpdate(crc, <usize>address, take);
      unchecked(this.taskPieces[t] += 1);
      this.nic.txPost(conn.slot, address, take, txId(TX_KIND_TASK, conn.slot, t), 0);
      left -= take;
      skip = 0;
    }
    const pad = ((length + 3) & ~(<u32>3)) - length;
    const trailer = conn.txSlotAddress(slot) + 52; // the slot's data-digest area
    if (pad > 0 || digest) {
      memory.fill(trailer, 0, 8);
      if (digest) {
        crc = crc32cUpdate(crc, trailer, pad);
        store<u32>(trailer + pad, crc32cFinal(crc));
      }
      unchecked(this.taskPieces[t] += 1);
      this.nic.txPost(conn.slot, <u64>trailer, pad + (digest ? 4 : 0), txId(TX_KIND_TASK, conn.slot, t), 0);
    }
  }

  private onSent(id: u32): void {
    const kind = id >>> 24;
    const slotOfConn = (id >>> 16) & 0xff;
    const value = id & 0xffff;
    if (slotOfConn >= CONNECTIONS_MAX) return;
    const conn = unchecked(this.conns[slotOfConn]);
    if (conn.pendingTx > 0) conn.pendingTx -= 1;
    switch (kind) {
      case TX_KIND_SLOT: conn.txSlotGive(value); break;
      case TX_KIND_PAGE: {
        const pool = bufferPool(BUFFER_CLASS_PAGE);
        if (value < pool.capacity && pool.isHeld(value)) pool.release(value);
        break;
      }
      case TX_KIND_TASK: {
        if (value >= SCSI_TASKS_MAX || unchecked(this.taskPieces[value]) == 0) break;
        unchecked(this.taskPieces[value] -= 1);
        const phase = <u32>unchecked(this.phase[value]);
        if (unchecked(this.taskPieces[value]) == 0 && (phase == TaskPhase.Sent || phase == TaskPhase.Orphan)) this.taskFinish(value);
        break;
      }
      default: break;
    }
    // Room came back: R2Ts that waited for it go out (marking the connection again if room runs out). Only when one
    // waited: this scans every task, and every PDU sent ends in a Sent event.
    if (!conn.r2tWaitingRoom) return;
    conn.r2tWaitingRoom = false;
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) {
      if (<u32>unchecked(this.phase[t]) == TaskPhase.DataOut && <u32>unchecked(this.taskConn[t]) == slotOfConn
        && unchecked(this.taskNextR2t[t]) < unchecked(this.taskTotal[t])) this.sendR2ts(t);
    }
  }
}

@inline function txId(kind: u32, connection: u32, value: u32): u32 { return (kind << 24) | (connection << 16) | (value & 0xffff); }
// An R2T's Target Transfer Tag: |31 0|30..16 R2TSN mod 2^15|15..0 task|, never 0xffffffff (reserved).
@inline function ttt(t: u32, r2tSn: u32): u32 { return ((r2tSn & 0x7fff) << 16) | t; }

function strlen(ptr: usize, max: u32): u32 {
  for (let i: u32 = 0; i < max; i++) if (load<u8>(ptr + i) == 0) return i;
  return max;
}
