// The fuzzer's iSCSI initiator: one loopback connection that sends what an input says, keeps CmdSN and ExpStatSN
// right unless the input overrides them, answers R2Ts with Data-Out, and collects each task's Data-In and status.
// It trusts nothing and asserts nothing about the target: what it sees feeds the oracles (lost commands, the shadow
// model of the disks). PDU building and parsing come from tools/iscsi/pdu.ts.
import type { Board } from "../../host/board/board.ts";
import type { ClientEnd, LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import { BHS_BYTES, dataOutPdu, lunField, Op, opcodeOf, parseKeys, type Pdu, pdu, PduReader, textKeys, u32At } from "../iscsi/pdu.ts";

/** Task.status of a command the target rejected (a Reject carried its header). */
export const REJECTED = -1;
/** Task.status of a command a task management function ended: the target rightly sends it no response. */
export const ABORTED = -2;

export { BHS_BYTES, Op, pdu, textKeys };

export const TARGET_NAME = "iqn.2026-11.org.wasm-iop:fuzz-board";
export const INITIATOR_NAME = "iqn.2026-11.org.wasm-iop:fuzzer";

/** A SCSI task the client sent, and what came back for it. */
export interface Task {
  itt: number;
  cdb: Uint8Array;
  dataOut: Uint8Array; // what R2Ts are answered from
  dataIn: Uint8Array[];
  status: number | undefined; // SCSI status once the response came, REJECTED, or undefined while outstanding
  response: number;
}

export const OPERATIONAL_KEYS: readonly (readonly [string, string])[] = [
  ["HeaderDigest", "None"], ["DataDigest", "None"], ["MaxRecvDataSegmentLength", "65536"], ["InitialR2T", "Yes"],
  ["ImmediateData", "Yes"], ["MaxBurstLength", "262144"], ["FirstBurstLength", "65536"], ["ErrorRecoveryLevel", "0"], ["MaxOutstandingR2T", "1"],
];

export class FuzzInitiator {
  readonly client: ClientEnd;
  readonly reader: PduReader;
  cmdSn = 1;
  expStatSn = 0;
  itt = 1;
  tsih = 0;
  loginStage = 0; // 0 security, 1 operational, 3 full feature
  readonly tasks = new Map<number, Task>();
  received = 0;
  rejects = 0;
  immediateData = false; // as the target answered the ImmediateData key
  targetSegmentBytes = 8192; // the target's MaxRecvDataSegmentLength (RFC 7143's default until it declares one)
  // Task management requests sent: the tasks each ends when the target answers Function Complete.
  readonly tmfs = new Map<number, number[]>();

  constructor(readonly board: Board, network: LoopbackBackend, readonly isid = 1) {
    this.client = network.connect(0);
    this.reader = new PduReader(this.client);
  }

  send(bytes: Uint8Array): void {
    if (!this.client.closed) this.client.write(bytes);
  }

  /** A Login Request for the next stage (or `stage` given), with `keys`; ITT and CmdSN kept right. */
  loginRequest(keys: Uint8Array, transit: boolean, csg = this.loginStage, nsg = csg === 0 ? 1 : 3): Uint8Array {
    return pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.LoginRequest;
      bhs[1] = (transit ? 0x80 : 0) | ((csg & 3) << 2) | (nsg & 3);
      bhs[8] = 0x80;
      v.setUint32(10, this.isid);
      v.setUint16(14, this.tsih);
      v.setUint32(16, 0x4c00_0000 | this.isid);
      v.setUint32(24, this.cmdSn);
      v.setUint32(28, this.expStatSn);
    }, keys);
  }

  /** The standard login, both stages; false if the target did not reach full feature phase. */
  login(): boolean {
    this.send(this.loginRequest(textKeys([["InitiatorName", INITIATOR_NAME], ["SessionType", "Normal"], ["TargetName", TARGET_NAME], ["AuthMethod", "None"]]), true, 0, 1));
    this.pumpUntil(() => this.loginStage >= 1, 50_000_000);
    if (this.loginStage !== 1) return false;
    this.send(this.loginRequest(textKeys(OPERATIONAL_KEYS), true, 1, 3));
    this.pumpUntil(() => this.loginStage === 3, 50_000_000);
    return (this.loginStage as number) === 3;
  }

  /** A SCSI Command; immediate data up to 64 KiB goes with it, the rest on R2T. Returns the task. */
  command(lun: number, cdb: Uint8Array, expectedBytes: number, dataOut: Uint8Array, read: boolean): Task {
    const itt = this.itt++;
    const immediate = this.immediateData ? dataOut.subarray(0, Math.min(dataOut.length, 65536, expectedBytes)) : new Uint8Array(0);
    const cmdSn = this.cmdSn;
    this.cmdSn = (this.cmdSn + 1) >>> 0;
    const task: Task = { itt, cdb, dataOut, dataIn: [], status: undefined, response: 0 };
    this.tasks.set(itt, task);
    this.send(pdu((bhs, v) => {
      bhs[0] = Op.ScsiCommand;
      bhs[1] = 0x80 | (read ? 0x40 : 0) | (dataOut.length > 0 ? 0x20 : 0) | 1; // F, R, W, SIMPLE
      bhs.set(lunField(lun), 8);
      v.setUint32(16, itt);
      v.setUint32(20, expectedBytes);
      v.setUint32(24, cmdSn);
      v.setUint32(28, this.expStatSn);
      bhs.set(cdb.subarray(0, 16), 32);
    }, immediate));
    return task;
  }

  /** Runs the board and handles what arrives until `done` or `budgetNs` of board time has passed. */
  // The step doubles while nothing arrives (up to 50 ms), so waiting out a 2 s timeout takes few turns.
  pumpUntil(done: () => boolean, budgetNs: number, stepNs = 20_000): void {
    const deadline = this.board.clock.nowNs + budgetNs;
    let step = stepNs;
    for (;;) {
      const before = this.received;
      for (let p = this.reader.next(); p !== undefined; p = this.reader.next()) this.handle(p);
      if (done() || this.client.closed || this.board.clock.nowNs >= deadline) return;
      step = this.received > before ? stepNs : Math.min(step * 2, 50_000_000);
      this.board.runUntil(Math.min(deadline, this.board.clock.nowNs + step));
    }
  }

  /** Notes a task management request sent with `itt`: the tasks Function Complete ends without a response (ABORT
   * TASK: the referenced one; ABORT TASK SET, CLEAR TASK SET, LUN RESET, the resets: every outstanding one). */
  tmfSent(itt: number, fn: number, referencedItt: number): void {
    const all = [...this.tasks.values()].filter((t) => t.status === undefined).map((t) => t.itt);
    this.tmfs.set(itt, fn === 1 ? [referencedItt] : fn === 2 || (fn >= 4 && fn <= 7) ? all : []);
  }

  outstanding(): number {
    let count = 0;
    for (const task of this.tasks.values()) if (task.status === undefined) count += 1;
    return count;
  }

  private handle(p: Pdu): void {
    this.received += 1;
    const op = opcodeOf(p.bhs);
    const statSn = u32At(p.bhs, 24);
    const itt = u32At(p.bhs, 16);
    switch (op) {
      case Op.LoginResponse:
        if (p.bhs[36] !== 0) return;
        if ((p.bhs[1]! & 0x80) !== 0) this.loginStage = p.bhs[1]! & 3;
        const keys = parseKeys(p.data);
        if (keys.get("ImmediateData") === "Yes") this.immediateData = true;
        const segment = Number(keys.get("MaxRecvDataSegmentLength"));
        if (Number.isSafeInteger(segment) && segment >= 512) this.targetSegmentBytes = Math.min(segment, 65536);
        this.tsih = new DataView(p.bhs.buffer, p.bhs.byteOffset).getUint16(14);
        this.expStatSn = (statSn + 1) >>> 0;
        return;
      case Op.ScsiResponse: {
        this.expStatSn = (statSn + 1) >>> 0;
        const task = this.tasks.get(itt);
        if (task === undefined) return;
        task.response = p.bhs[2]!;
        task.status = p.bhs[3]!;
        return;
      }
      case Op.DataIn: {
        const task = this.tasks.get(itt);
        if (task !== undefined) task.dataIn.push(p.data.slice());
        if ((p.bhs[1]! & 0x01) !== 0) { // S bit: the status came with the data
          this.expStatSn = (statSn + 1) >>> 0;
          if (task !== undefined) task.status = p.bhs[3]!;
        }
        return;
      }
      case Op.R2t: {
        const task = this.tasks.get(itt);
        const ttt = u32At(p.bhs, 20);
        const offset = u32At(p.bhs, 40);
        const length = u32At(p.bhs, 44);
        // The whole burst the R2T asks for, in PDUs the target accepts; bytes past the task's data-out are zeros
        // (a short buffer must not leave the target waiting for data it was promised).
        const burst = Math.min(length, 1 << 20);
        for (let sent = 0, dataSn = 0; sent < burst || (burst === 0 && dataSn === 0); dataSn++) {
          const size = Math.min(burst - sent, this.targetSegmentBytes);
          const data = new Uint8Array(size);
          if (task !== undefined) data.set(task.dataOut.subarray(Math.min(offset + sent, task.dataOut.length), Math.min(offset + sent + size, task.dataOut.length)));
          const at = offset + sent;
          sent += size;
          const last = sent >= burst;
          this.send(dataOutPdu({ final: last, lun: p.bhs.subarray(8, 16), itt, ttt, expStatSn: this.expStatSn, dataSn, offset: at }, data));
        }
        return;
      }
      case Op.Reject: {
        this.rejects += 1;
        this.expStatSn = (statSn + 1) >>> 0;
        // The rejected header rides in the data segment: its task will never be answered, rightly.
        const task = p.data.length >= 20 ? this.tasks.get(u32At(p.data, 16)) : undefined;
        if (task !== undefined && task.status === undefined) task.status = REJECTED;
        return;
      }
      case Op.TmfResponse: {
        this.expStatSn = (statSn + 1) >>> 0;
        const ended = this.tmfs.get(itt);
        this.tmfs.delete(itt);
        if (p.bhs[2] !== 0 || ended === undefined) return; // not Function Complete: the tasks go on
        for (const ended1 of ended) {
          const task = this.tasks.get(ended1);
          if (task !== undefined && task.status === undefined) task.status = ABORTED;
        }
        return;
      }
      case Op.NopIn:
        if (itt !== 0xffff_ffff) this.expStatSn = (statSn + 1) >>> 0;
        return;
      default:
        if (op !== Op.AsyncMessage && op !== Op.TextResponse && op !== Op.LogoutResponse) return;
        this.expStatSn = (statSn + 1) >>> 0;
    }
  }
}
