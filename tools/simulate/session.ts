// One iSCSI session of the simulator's initiators (RFC 7143): a connection on the NIC's loopback network, a login,
// then several commands in flight at once, all driven by PDUs as they arrive (clock events, so the run replays from
// its seed). ERL 0, no digests, no immediate data: writes wait for R2Ts. It checks what a correct target must do
// (StatSN in order, Data-In in sequence and in range, R2Ts within the command) and reports anything else as a
// protocol violation, after which it drops the connection. A lost connection fails every command in flight; the
// owner decides whether to log in again.
import type { Board } from "../../host/board/board.ts";
import type { ClientEnd, LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import { BLOCK_BYTES, dataOutPdu, lunField, Op, opcodeOf, parseKeys, pdu, type Pdu, PduReader, textKeys, u32At, view } from "../iscsi/pdu.ts";

export type TaskKind = "read" | "write" | "sync";

/** How a command ended: GOOD, CHECK CONDITION (or another status) with its sense, or lost with the connection. */
export type Outcome =
  | { kind: "good" }
  | { kind: "status"; status: number; senseKey: number; asc: number; ascq: number }
  | { kind: "lost"; reason: string };

export interface Task {
  kind: TaskKind;
  lun: number;
  lba: number;
  blocks: number;
  fua: boolean;
  data: Uint8Array; // a write's content, or where a read's data goes
  issueNs: number;
  done(outcome: Outcome): void;
  itt?: number;
  receivedBytes?: number;
  dataSn?: number;
}

export interface SessionOptions {
  board: Board;
  network: LoopbackBackend;
  targetName: string;
  initiatorName: string;
  isid: number;
  queueDepth: number;
  portal?: number; // the board's NIC portal (port) to connect to; 0 when absent
  onReady(): void; // full feature phase: commands may be submitted
  onLost(reason: string): void; // the connection is gone (every task already failed)
  onViolation(message: string): void;
}

type State = "idle" | "security" | "operational" | "full" | "closed";

const ITT_UNSOLICITED = 0xffff_ffff;
const SENSE_KEY_OFFSET = 2 + 2; // data segment: |0-1 SenseLength|fixed-format sense: key in byte 2, ASC 12, ASCQ 13|

export class Session {
  state: State = "idle";
  private client: ClientEnd | undefined;
  private reader: PduReader | undefined;
  private readonly tasks = new Map<number, Task>();
  private ittNext = 1;
  private cmdSn = 1;
  private expStatSn = 0;
  private maxCmdSn = 0;
  private targetMaxRecv = 8192;
  private loginItt = 0;
  loginCount = 0;

  constructor(private readonly options: SessionOptions) {}

  get inFlight(): number {
    return this.tasks.size;
  }

  /** The commands in flight, oldest first. */
  pending(): IterableIterator<Task> {
    return this.tasks.values();
  }

  /** A command may be sent now: logged in, a queue slot free and CmdSN inside the target's window. */
  get canSubmit(): boolean {
    return this.state === "full" && this.tasks.size < this.options.queueDepth && ((this.maxCmdSn - this.cmdSn) >>> 0) < 0x8000_0000;
  }

  /** Opens a connection and starts the login (same ISID: a new login reinstates the session). */
  connect(): void {
    if (this.state !== "idle" && this.state !== "closed") throw new Error("Session.connect: already connected");
    const client = this.options.network.connect(this.options.portal ?? 0);
    this.client = client;
    this.tasks.clear();
    if (client.refused) {
      this.state = "closed";
      this.options.board.clock.afterOutside(0, () => this.options.onLost("connection refused"));
      return;
    }
    this.reader = new PduReader(client, () => this.onData(client));
    client.onClose = () => this.onClosed(client, "target closed the connection");
    this.cmdSn = 1;
    this.expStatSn = 0;
    this.state = "security";
    this.loginItt = this.ittNext++;
    this.send(this.loginRequest(0x80 | (0 << 2) | 1, textKeys([
      ["InitiatorName", this.options.initiatorName], ["SessionType", "Normal"], ["TargetName", this.options.targetName], ["AuthMethod", "None"],
    ])));
  }

  /** The connection breaks under the session (the simulator's connection-drop fault). */
  abort(reason: string): void {
    const client = this.client;
    if (client === undefined || this.state === "closed") return;
    this.options.network.abort(client);
    this.onClosed(client, reason);
  }

  submit(task: Task): void {
    if (!this.canSubmit) throw new Error("Session.submit: cannot submit now");
    const itt = this.ittNext++;
    task.itt = itt;
    task.receivedBytes = 0;
    task.dataSn = 0;
    this.tasks.set(itt, task);
    const bytes = task.kind === "sync" ? 0 : task.blocks * BLOCK_BYTES;
    const cdb = new Uint8Array(16);
    cdb[0] = task.kind === "read" ? 0x28 : task.kind === "write" ? 0x2a : 0x35;
    if (task.fua && task.kind !== "sync") cdb[1] = 0x08; // FUA
    view(cdb).setUint32(2, task.lba);
    view(cdb).setUint16(7, task.blocks);
    const flags = 0x80 | (task.kind === "read" ? 0x40 : task.kind === "write" ? 0x20 : 0) | 1; // F, R/W, SIMPLE
    const cmdSn = this.cmdSn;
    this.cmdSn = (this.cmdSn + 1) >>> 0;
    this.send(pdu((bhs, v) => {
      bhs[0] = Op.ScsiCommand;
      bhs[1] = flags;
      bhs.set(lunField(task.lun), 8);
      v.setUint32(16, itt);
      v.setUint32(20, bytes);
      v.setUint32(24, cmdSn);
      v.setUint32(28, this.expStatSn);
      bhs.set(cdb, 32);
    }));
  }

  private send(bytes: Uint8Array): void {
    this.client!.write(bytes);
  }

  private onClosed(client: ClientEnd, reason: string): void {
    if (client !== this.client || this.state === "closed") return;
    this.state = "closed";
    const lost = [...this.tasks.values()];
    this.tasks.clear();
    for (const task of lost) task.done({ kind: "lost", reason });
    this.options.onLost(reason);
  }

  private violation(message: string): void {
    this.options.onViolation(message);
    this.abort(`protocol violation: ${message}`);
  }

  private onData(client: ClientEnd): void {
    for (let p = this.reader!.next(); p !== undefined && client === this.client && this.state !== "closed"; p = this.reader!.next()) this.onPdu(p);
  }

  private onPdu(p: Pdu): void {
    const op = opcodeOf(p.bhs);
    switch (op) {
      case Op.LoginResponse: return this.onLoginResponse(p);
      case Op.ScsiResponse: return this.onScsiResponse(p);
      case Op.DataIn: return this.onDataIn(p);
      case Op.R2t: return this.onR2t(p);
      case Op.NopIn: return this.onNopIn(p);
      case Op.AsyncMessage: return this.onAsync(p);
      default: return this.violation(`unexpected opcode 0x${op.toString(16)} (ITT ${u32At(p.bhs, 16)})`);
    }
  }

  // Every status-bearing PDU carries the next StatSN (RFC 7143, "Response/Status Numbering").
  private status(p: Pdu): boolean {
    const statSn = u32At(p.bhs, 24);
    if (this.state === "full" && statSn !== this.expStatSn) {
      this.violation(`StatSN ${statSn}, expected ${this.expStatSn} (opcode 0x${opcodeOf(p.bhs).toString(16)})`);
      return false;
    }
    this.expStatSn = (statSn + 1) >>> 0;
    return this.window(p);
  }

  private window(p: Pdu): boolean {
    const expCmdSn = u32At(p.bhs, 28);
    const maxCmdSn = u32At(p.bhs, 32);
    if (((maxCmdSn - expCmdSn + 1) >>> 0) > 0x8000_0000) {
      this.violation(`MaxCmdSN ${maxCmdSn} < ExpCmdSN ${expCmdSn} - 1`);
      return false;
    }
    // RFC 7143, "Command Numbering": a window update older than the one in hand is ignored.
    if (((maxCmdSn - this.maxCmdSn) >>> 0) < 0x8000_0000 || this.state !== "full") this.maxCmdSn = maxCmdSn;
    return true;
  }

  private onLoginResponse(p: Pdu): void {
    if (this.state !== "security" && this.state !== "operational") return this.violation("Login Response in full feature phase");
    if (u32At(p.bhs, 16) !== this.loginItt) return this.violation("Login Response for another ITT");
    if (p.bhs[36] !== 0) {
      // The target refused the login (out of resources, say, while it recovers): not a violation; try later.
      this.abort(`login refused: status 0x${p.bhs[36]!.toString(16)}${p.bhs[37]!.toString(16).padStart(2, "0")}`);
      return;
    }
    if (!this.status(p)) return;
    const transit = p.bhs[1]! & 0x83;
    if (this.state === "security") {
      if (transit !== 0x81) return this.violation(`security stage: T/NSG 0x${transit.toString(16)}`);
      this.state = "operational";
      this.send(this.loginRequest(0x80 | (1 << 2) | 3, textKeys([
        ["HeaderDigest", "None"], ["DataDigest", "None"], ["MaxRecvDataSegmentLength", "65536"], ["InitialR2T", "Yes"],
        ["ImmediateData", "No"], ["MaxBurstLength", "262144"], ["FirstBurstLength", "65536"], ["ErrorRecoveryLevel", "0"], ["MaxOutstandingR2T", "1"],
      ])));
      return;
    }
    if (transit !== 0x83) return this.violation(`operational stage: T/NSG 0x${transit.toString(16)}`);
    const keys = parseKeys(p.data);
    const mrdsl = Number(keys.get("MaxRecvDataSegmentLength") ?? "8192");
    if (!(mrdsl >= 512 && mrdsl <= 16_777_215)) return this.violation(`target MaxRecvDataSegmentLength ${mrdsl}`);
    this.targetMaxRecv = mrdsl;
    this.maxCmdSn = u32At(p.bhs, 32);
    this.state = "full";
    this.loginCount += 1;
    this.options.onReady();
  }

  private loginRequest(flags: number, keys: Uint8Array): Uint8Array {
    return pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.LoginRequest;
      bhs[1] = flags;
      bhs[8] = 0x80; // ISID type: random
      v.setUint32(10, this.options.isid);
      v.setUint16(14, 0); // TSIH 0: a new session, or the reinstatement of the old one with this ISID
      v.setUint32(16, this.loginItt);
      v.setUint32(24, this.cmdSn);
      v.setUint32(28, this.expStatSn);
    }, keys);
  }

  private task(p: Pdu, what: string): Task | undefined {
    const task = this.tasks.get(u32At(p.bhs, 16));
    if (task === undefined) this.violation(`${what} for ITT ${u32At(p.bhs, 16)}, which has no command in flight`);
    return task;
  }

  private onScsiResponse(p: Pdu): void {
    const task = this.task(p, "SCSI Response");
    if (task === undefined || !this.status(p)) return;
    this.finish(task, p.bhs[2]!, p.bhs[3]!, p.data);
  }

  private finish(task: Task, response: number, status: number, senseData: Uint8Array): void {
    if (response !== 0) return this.violation(`response 0x${response.toString(16)} for ITT ${task.itt}`);
    if (status === 0 && task.kind === "read" && task.receivedBytes !== task.data.length) {
      return this.violation(`READ GOOD after ${task.receivedBytes} of ${task.data.length} bytes (ITT ${task.itt})`);
    }
    this.tasks.delete(task.itt!);
    if (status === 0) return task.done({ kind: "good" });
    const sense = senseData.length >= SENSE_KEY_OFFSET + 12 ? senseData.subarray(2) : new Uint8Array(14);
    task.done({ kind: "status", status, senseKey: sense[2]! & 0x0f, asc: sense[12]!, ascq: sense[13]! });
  }

  private onDataIn(p: Pdu): void {
    const task = this.task(p, "Data-In");
    if (task === undefined) return;
    if (task.kind !== "read") return this.violation(`Data-In for a ${task.kind} (ITT ${task.itt})`);
    if (u32At(p.bhs, 36) !== task.dataSn) return this.violation(`Data-In DataSN ${u32At(p.bhs, 36)}, expected ${task.dataSn}`);
    task.dataSn! += 1;
    const offset = u32At(p.bhs, 40);
    if (offset !== task.receivedBytes || offset + p.data.length > task.data.length) {
      return this.violation(`Data-In at ${offset} (+${p.data.length}), expected ${task.receivedBytes} of ${task.data.length}`);
    }
    task.data.set(p.data, offset);
    task.receivedBytes! += p.data.length;
    if ((p.bhs[1]! & 0x01) === 0) {
      this.window(p);
      return;
    }
    if ((p.bhs[1]! & 0x80) === 0) return this.violation("Data-In with S and without F");
    if (!this.status(p)) return;
    this.finish(task, 0, p.bhs[3]!, new Uint8Array(0));
  }

  private onR2t(p: Pdu): void {
    const task = this.task(p, "R2T");
    if (task === undefined || !this.window(p)) return;
    if (task.kind !== "write") return this.violation(`R2T for a ${task.kind} (ITT ${task.itt})`);
    const ttt = u32At(p.bhs, 20);
    const offset = u32At(p.bhs, 40);
    const length = u32At(p.bhs, 44);
    if (ttt === ITT_UNSOLICITED || length === 0 || offset + length > task.data.length) return this.violation(`bad R2T: TTT ${ttt} offset ${offset} length ${length}`);
    let dataSn = 0;
    for (let at = 0; at < length; at += this.targetMaxRecv) {
      const piece = Math.min(this.targetMaxRecv, length - at);
      const last = at + piece === length;
      this.send(dataOutPdu({ final: last, lun: lunField(task.lun), itt: task.itt!, ttt, expStatSn: this.expStatSn, dataSn: dataSn++, offset: offset + at },
        task.data.subarray(offset + at, offset + at + piece)));
    }
  }

  // A ping from the target (TTT set, ITT reserved) is answered with a NOP-Out echoing its TTT (RFC 7143, NOP-In).
  private onNopIn(p: Pdu): void {
    const ttt = u32At(p.bhs, 20);
    if (u32At(p.bhs, 16) !== ITT_UNSOLICITED) return this.violation(`NOP-In for ITT ${u32At(p.bhs, 16)}, which sent no ping`);
    if (!this.window(p) || ttt === ITT_UNSOLICITED) return;
    this.send(pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.NopOut;
      bhs[1] = 0x80;
      v.setUint32(16, ITT_UNSOLICITED);
      v.setUint32(20, ttt);
      v.setUint32(24, this.cmdSn);
      v.setUint32(28, this.expStatSn);
    }));
  }

  // Asynchronous messages: a request to log out, or a connection or session about to be dropped, is taken as the
  // connection's end; SCSI events are only counted by the target's other answers.
  private onAsync(p: Pdu): void {
    if (!this.status(p)) return;
    const event = p.bhs[36]!;
    if (event >= 1 && event <= 3) this.abort(`the target's asynchronous event ${event}`);
  }
}
