// A small, strict iSCSI initiator (RFC 7143) for tests: one connection over a LoopbackBackend client, driven by the
// board's clock (write bytes, run the board until a whole PDU has arrived). No digests, ERL 0, one command at a
// time; immediate and unsolicited data and several outstanding R2Ts when the login's extra keys ask for them. It checks what a correct target must do (StatSN in order, ExpCmdSN/MaxCmdSN sane, R2Ts and
// Data-In in sequence) and throws InitiatorError on anything else. It is test equipment: small and explicit.
import type { Board } from "../../host/board/board.ts";
import { Prng } from "../../host/sim/prng.ts";
import type { ClientEnd, LoopbackBackend } from "../../host/devices/tcp_backend.ts";
// The PDU helpers live in tools/iscsi/pdu.ts (the simulator and the fuzzer use them too); tests import them from here.
export { BHS_BYTES, BLOCK_BYTES, dataOutPdu, dataSegmentLength, lunField, Op, opcodeOf, parseKeys, pdu, type Pdu, PduReader, textKeys, u32At } from "../../tools/iscsi/pdu.ts";
import { BLOCK_BYTES, dataOutPdu, lunField, Op, opcodeOf, parseKeys, pdu, type Pdu, PduReader, senseText, textKeys, u32At, view } from "../../tools/iscsi/pdu.ts";

export class InitiatorError extends Error {}

export interface InitiatorOptions {
  initiatorName?: string;
  targetName: string;
  isid?: number; // the low 32 bits of a random-type ISID
  portal?: number;
  /** Joins the session with this TSIH as connection `cid` (MC/S) instead of starting a new one. */
  tsih?: number;
  cid?: number;
  /** A discovery session (SessionType=Discovery, no TargetName): only Text (SendTargets), NOP and Logout. */
  discovery?: boolean;
  /** Board time to wait for one PDU before giving up (default 200 ms). */
  timeoutNs?: number;
  stepNs?: number; // how far the board runs between looks at the stream (default 20 µs)
}

/** Waits for a PDU on any client: runs the board in steps until one is whole, the client is closed, or time is up. */
/** `bytes` bytes drawn from a PRNG seeded with `label`: the same data in every run, different for every label. */
export function seeded(label: string, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  new Prng(label).fill(data);
  return data;
}

/** WRITE(10) on `lun` with CmdSN `cmdSn`: the first `immediate` bytes of `data` in the command (all of them by
 * default), F=0 when Data-Out follow. For tests that number commands themselves (gaps, reordering). */
export function write10Command(i: Initiator, itt: number, cmdSn: number, lun: number, lba: number, data: Uint8Array, immediate = data.length): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = Op.ScsiCommand;
    bhs[1] = (immediate === data.length ? 0x80 : 0) | 0x20 | 1;
    bhs.set(lunField(lun), 8);
    v.setUint32(16, itt);
    v.setUint32(20, data.length);
    v.setUint32(24, cmdSn);
    v.setUint32(28, i.expStatSn);
    bhs[32] = 0x2a;
    v.setUint32(34, lba);
    v.setUint16(39, data.length / BLOCK_BYTES);
  }, data.subarray(0, immediate));
}

export function awaitPdu(board: Board, client: ClientEnd, reader: PduReader, timeoutNs = 200_000_000, stepNs = 20_000): Pdu | undefined {
  const deadline = board.clock.nowNs + timeoutNs;
  for (;;) {
    const got = reader.next();
    if (got !== undefined) return got;
    if (client.closed || board.clock.nowNs >= deadline) return undefined;
    board.runFor(stepNs);
  }
}

export class Initiator {
  readonly client: ClientEnd;
  readonly reader: PduReader;
  private readonly options: Required<InitiatorOptions>;
  private itt = 1;
  cmdSn = 1;
  expStatSn = 0;
  expCmdSn = 0;
  maxCmdSn = 0;
  tsih = 0;
  /** What the target said it can receive in one PDU: our Data-Out segments stay within it. */
  targetMaxRecv = 8192;
  maxBurst = 262144;
  loggedIn = false;
  /** What the login settled for writes (RFC 7143 defaults until then: the target's answers replace them). */
  immediateData = false;
  initialR2t = true;
  firstBurst = 65536;
  maxOutstandingR2t = 1;
  /** The MaxRecvDataSegmentLength this initiator declared: no PDU from the target may carry more. */
  maxRecv = 8192;
  /** Counters: `waits` is how often the initiator had nothing to read and ran the board for an answer (a round trip). */
  readonly counts = { waits: 0, r2ts: 0, dataOut: 0, immediateBytes: 0, unsolicitedBytes: 0 };
  /** Data-Out segment size; 0: the target's MaxRecvDataSegmentLength. */
  dataOutBytes = 0;
  /** Unsolicited PDUs (NOP-In pings, Async Messages, Rejects) seen while waiting for something else. */
  readonly unsolicited: Pdu[] = [];

  constructor(readonly board: Board, network: LoopbackBackend, options: InitiatorOptions) {
    this.options = { initiatorName: "iqn.2026-11.org.wasm-iop:test-initiator", isid: 1, portal: 0, timeoutNs: 200_000_000, stepNs: 20_000, tsih: 0, cid: 0, discovery: false, ...options };
    this.tsih = this.options.tsih;
    this.client = network.connect(this.options.portal);
    if (this.client.refused) throw new InitiatorError("connection refused by the NIC");
    this.reader = new PduReader(this.client);
  }

  send(bytes: Uint8Array): void {
    this.client.write(bytes);
  }

  /** The next PDU from the target; throws if the connection closes or nothing comes in time. */
  receive(): Pdu {
    const ready = this.reader.next();
    if (ready !== undefined) return ready;
    this.counts.waits += 1;
    const got = awaitPdu(this.board, this.client, this.reader, this.options.timeoutNs, this.options.stepNs);
    if (got === undefined) throw new InitiatorError(this.client.closed ? "target closed the connection" : "no PDU from the target in time");
    return got;
  }

  // Every status-bearing PDU must carry the next StatSN (RFC 7143, "Response/Status Numbering").
  status(p: Pdu): void {
    const statSn = u32At(p.bhs, 24);
    if (this.loggedIn && statSn !== this.expStatSn) throw new InitiatorError(`StatSN ${statSn}, expected ${this.expStatSn} (opcode 0x${opcodeOf(p.bhs).toString(16)})`);
    this.expStatSn = (statSn + 1) >>> 0;
    this.window(p);
  }

  private window(p: Pdu): void {
    const expCmdSn = u32At(p.bhs, 28);
    const maxCmdSn = u32At(p.bhs, 32);
    if (((maxCmdSn - expCmdSn + 1) >>> 0) > 0x8000_0000) throw new InitiatorError(`MaxCmdSN ${maxCmdSn} < ExpCmdSN ${expCmdSn} - 1`);
    this.expCmdSn = expCmdSn;
    this.maxCmdSn = maxCmdSn;
  }

  /** A PDU answering task `itt`; unsolicited ones (ITT 0xffffffff) are set aside. A Reject is an error. */
  private receiveFor(itt: number): Pdu {
    for (;;) {
      const p = this.receive();
      const op = opcodeOf(p.bhs);
      if (op === Op.Reject) {
        this.status(p);
        throw new InitiatorError(`Reject reason 0x${p.bhs[2]!.toString(16)}`);
      }
      if (u32At(p.bhs, 16) === 0xffff_ffff && (op === Op.NopIn || op === Op.AsyncMessage)) {
        this.unsolicited.push(p);
        continue;
      }
      if (u32At(p.bhs, 16) !== itt) throw new InitiatorError(`a PDU for ITT ${u32At(p.bhs, 16)}, waiting for ${itt}`);
      return p;
    }
  }

  loginRequest(flags: number, keys: Uint8Array, itt: number): Uint8Array {
    return pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.LoginRequest;
      bhs[1] = flags;
      bhs[2] = 0; // Version-max
      bhs[3] = 0; // Version-min
      bhs[8] = 0x80; // ISID type: random
      v.setUint32(10, this.options.isid);
      v.setUint16(14, this.tsih);
      v.setUint32(16, itt);
      v.setUint16(20, this.options.cid); // CID
      v.setUint32(24, this.cmdSn);
      v.setUint32(28, this.expStatSn);
    }, keys);
  }

  /**
   * SecurityNegotiation (AuthMethod=None) → LoginOperationalNegotiation → FullFeaturePhase. `extraOperational` keys
   * replace the defaults of the same name (InitialR2T=Yes, ImmediateData=No, MaxOutstandingR2T=1…) or add to them.
   */
  login(extraOperational: readonly (readonly [string, string])[] = []): void {
    const itt = this.itt++;
    this.send(this.loginRequest(0x80 | (0 << 2) | 1, textKeys(this.options.discovery
      ? [["InitiatorName", this.options.initiatorName], ["SessionType", "Discovery"], ["AuthMethod", "None"]]
      : [["InitiatorName", this.options.initiatorName], ["SessionType", "Normal"], ["TargetName", this.options.targetName], ["AuthMethod", "None"]]), itt));
    const security = this.loginResponse(itt);
    if ((security.bhs[1]! & 0x83) !== 0x81) throw new InitiatorError(`security stage: T/NSG 0x${security.bhs[1]!.toString(16)}, expected transit to operational`);
    const securityKeys = parseKeys(security.data);
    if (securityKeys.get("AuthMethod") !== "None") throw new InitiatorError(`AuthMethod=${securityKeys.get("AuthMethod")}`);
    const defaults: (readonly [string, string])[] = [
      ["HeaderDigest", "None"], ["DataDigest", "None"], ["MaxRecvDataSegmentLength", "65536"], ["InitialR2T", "Yes"],
      ["ImmediateData", "No"], ["MaxBurstLength", "262144"], ["FirstBurstLength", "65536"], ["ErrorRecoveryLevel", "0"], ["MaxOutstandingR2T", "1"],
    ];
    const extra = new Map(extraOperational);
    const operational: (readonly [string, string])[] = [
      ...defaults.map(([k, v]) => [k, extra.get(k) ?? v] as const),
      ...extraOperational.filter(([k]) => !defaults.some(([d]) => d === k)),
    ];
    const offered = new Map(operational);
    this.maxRecv = Number(offered.get("MaxRecvDataSegmentLength"));
    // A discovery session negotiates no write keys; a joining connection none of the session's (leading only).
    const connectionKeys = new Set(["HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength"]);
    const sent = this.options.discovery || this.tsih !== 0 ? operational.filter(([k]) => connectionKeys.has(k)) : operational;
    const joining = this.tsih !== 0;
    this.send(this.loginRequest(0x80 | (1 << 2) | 3, textKeys(sent), itt));
    const final = this.loginResponse(itt);
    if ((final.bhs[1]! & 0x83) !== 0x83) throw new InitiatorError(`operational stage: T/NSG 0x${final.bhs[1]!.toString(16)}, expected transit to full feature`);
    const keys = parseKeys(final.data);
    if (keys.get("HeaderDigest") !== "None" || keys.get("DataDigest") !== "None") throw new InitiatorError("digests not None");
    const mrdsl = Number(keys.get("MaxRecvDataSegmentLength") ?? "8192");
    if (!(mrdsl >= 512 && mrdsl <= 16_777_215)) throw new InitiatorError(`target MaxRecvDataSegmentLength ${mrdsl}`);
    this.targetMaxRecv = mrdsl;
    this.tsih = view(final.bhs).getUint16(14);
    if (this.tsih === 0) throw new InitiatorError("TSIH 0 on the final login response");
    this.loggedIn = true;
    if (this.options.discovery || joining) return;
    if (keys.has("MaxBurstLength")) this.maxBurst = Number(keys.get("MaxBurstLength"));
    // RFC 7143: InitialR2T is OR'ed, ImmediateData AND'ed: the answer may turn them only towards Yes and No.
    this.initialR2t = keys.get("InitialR2T") !== "No";
    this.immediateData = keys.get("ImmediateData") === "Yes";
    if (!this.initialR2t && offered.get("InitialR2T") === "Yes") throw new InitiatorError("InitialR2T=Yes offered, No answered");
    if (this.immediateData && offered.get("ImmediateData") === "No") throw new InitiatorError("ImmediateData=No offered, Yes answered");
    this.firstBurst = Number(keys.get("FirstBurstLength") ?? offered.get("FirstBurstLength"));
    this.maxOutstandingR2t = Number(keys.get("MaxOutstandingR2T") ?? offered.get("MaxOutstandingR2T"));
    if (this.firstBurst > Number(offered.get("FirstBurstLength")) || this.maxOutstandingR2t > Number(offered.get("MaxOutstandingR2T"))) {
      throw new InitiatorError(`FirstBurstLength ${this.firstBurst} / MaxOutstandingR2T ${this.maxOutstandingR2t} above the offer`);
    }
  }

  private loginResponse(itt: number): Pdu {
    const p = this.receive();
    if (opcodeOf(p.bhs) !== Op.LoginResponse) throw new InitiatorError(`opcode 0x${opcodeOf(p.bhs).toString(16)} during login`);
    if (u32At(p.bhs, 16) !== itt) throw new InitiatorError("login response for another ITT");
    if (p.bhs[36] !== 0) throw new InitiatorError(`login failed: status 0x${p.bhs[36]!.toString(16)}${p.bhs[37]!.toString(16).padStart(2, "0")}`);
    if ((p.bhs[1]! & 0x40) !== 0) throw new InitiatorError("login response continuation (C bit) not supported by this initiator");
    this.status(p);
    return p;
  }

  /** A SCSI Command PDU with the next CmdSN (which must be inside the window): for tests that send their own CDBs. */
  command(flags: number, lun: number, expectedBytes: number, cdb: Uint8Array, itt: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
    const cmdSn = this.cmdSn;
    if (((cmdSn - this.expCmdSn) >>> 0) > ((this.maxCmdSn - this.expCmdSn) >>> 0)) throw new InitiatorError(`CmdSN ${cmdSn} outside the window ${this.expCmdSn}..${this.maxCmdSn}`);
    this.cmdSn = (this.cmdSn + 1) >>> 0;
    return pdu((bhs, v) => {
      bhs[0] = Op.ScsiCommand;
      bhs[1] = flags;
      bhs.set(lunField(lun), 8);
      v.setUint32(16, itt);
      v.setUint32(20, expectedBytes);
      v.setUint32(24, cmdSn);
      v.setUint32(28, this.expStatSn);
      bhs.set(cdb, 32);
    }, data);
  }

  /** Data-Out PDUs for [offset, offset + length) of `data`, at most targetMaxRecv each, F on the last. */
  private dataOut(lun: number, itt: number, ttt: number, data: Uint8Array, offset: number, length: number): void {
    let dataSn = 0;
    const step = this.dataOutBytes > 0 ? Math.min(this.dataOutBytes, this.targetMaxRecv) : this.targetMaxRecv;
    for (let at = 0; at < length; at += step) {
      const piece = Math.min(step, length - at);
      const last = at + piece === length;
      this.counts.dataOut += 1;
      this.send(dataOutPdu({ final: last, lun: lunField(lun), itt, ttt, expStatSn: this.expStatSn, dataSn: dataSn++, offset: offset + at },
        data.subarray(offset + at, offset + at + piece)));
    }
  }

  private cdb10(op: number, lba: number, blocks: number): Uint8Array {
    const cdb = new Uint8Array(16);
    cdb[0] = op;
    view(cdb).setUint32(2, lba);
    view(cdb).setUint16(7, blocks);
    return cdb;
  }

  private expectGood(p: Pdu, what: string): void {
    if (opcodeOf(p.bhs) !== Op.ScsiResponse) throw new InitiatorError(`${what}: opcode 0x${opcodeOf(p.bhs).toString(16)}, expected SCSI Response`);
    this.status(p);
    if (p.bhs[2] !== 0 || p.bhs[3] !== 0) throw new InitiatorError(`${what}: response ${p.bhs[2]} status 0x${p.bhs[3]!.toString(16)}${senseText(p.data)}`);
    if ((p.bhs[1]! & 0x06) !== 0 && u32At(p.bhs, 44) !== 0) throw new InitiatorError(`${what}: residual ${u32At(p.bhs, 44)}`);
  }

  /**
   * WRITE(10) of `data` (whole blocks) at `lba` on `lun`: immediate data and unsolicited Data-Out as negotiated (up to
   * FirstBurstLength), R2Ts answered in order (several may be outstanding, never more than MaxOutstandingR2T), then
   * GOOD status.
   */
  write(lun: number, lba: number, data: Uint8Array): void {
    if (data.length % BLOCK_BYTES !== 0 || data.length === 0) throw new Error("write: whole blocks");
    const itt = this.itt++;
    const unsolicited = this.immediateData || !this.initialR2t ? Math.min(this.firstBurst, data.length) : 0;
    const immediate = this.immediateData ? Math.min(unsolicited, this.dataOutBytes > 0 ? this.dataOutBytes : this.targetMaxRecv) : 0;
    const follow = !this.initialR2t && immediate < unsolicited; // unsolicited Data-Out follow: F=0 on the command
    this.counts.immediateBytes += immediate;
    this.send(this.command((follow ? 0 : 0x80) | 0x20 | 1, lun, data.length, this.cdb10(0x2a, lba, data.length / BLOCK_BYTES), itt, data.subarray(0, immediate)));
    if (follow) {
      this.dataOut(lun, itt, 0xffff_ffff, data, immediate, unsolicited - immediate);
      this.counts.unsolicitedBytes += unsolicited - immediate;
    }
    let r2tSn = 0;
    let sent = immediate + (follow ? unsolicited - immediate : 0);
    const solicited = new Set<number>();
    for (;;) {
      const p = this.receiveFor(itt);
      const op = opcodeOf(p.bhs);
      if (op === Op.ScsiResponse) {
        this.expectGood(p, "WRITE(10)");
        if (sent !== data.length) throw new InitiatorError(`WRITE(10) GOOD after ${sent} of ${data.length} bytes`);
        return;
      }
      if (op !== Op.R2t) throw new InitiatorError(`WRITE(10): opcode 0x${op.toString(16)}`);
      this.counts.r2ts += 1;
      this.window(p);
      if (u32At(p.bhs, 24) !== this.expStatSn) throw new InitiatorError(`R2T StatSN ${u32At(p.bhs, 24)}, expected ${this.expStatSn}`);
      const ttt = u32At(p.bhs, 20);
      const offset = u32At(p.bhs, 40);
      const length = u32At(p.bhs, 44);
      if (u32At(p.bhs, 36) !== r2tSn++) throw new InitiatorError("R2TSN out of sequence");
      if (ttt === 0xffff_ffff || length === 0 || offset + length > data.length || length > this.maxBurst) throw new InitiatorError(`bad R2T: TTT ${ttt} offset ${offset} length ${length}`);
      if (offset < unsolicited || solicited.has(offset)) throw new InitiatorError(`R2T for offset ${offset}: already sent (unsolicited up to ${unsolicited})`);
      solicited.add(offset);
      this.dataOut(lun, itt, ttt, data, offset, length);
      sent += length;
    }
  }

  /** Sends raw bytes and the next PDU for `itt`: for tests that build their own (bad) commands. */
  exchange(bytes: Uint8Array, itt: number): Pdu {
    this.send(bytes);
    return this.receiveFor(itt);
  }

  /** READ(10) of `blocks` at `lba` on `lun`: Data-In reassembled in DataSN and offset order, then GOOD status. */
  read(lun: number, lba: number, blocks: number): Uint8Array {
    const itt = this.itt++;
    const total = blocks * BLOCK_BYTES;
    const out = new Uint8Array(total);
    this.send(this.command(0x80 | 0x40 | 1, lun, total, this.cdb10(0x28, lba, blocks), itt));
    let dataSn = 0;
    let got = 0;
    for (;;) {
      const p = this.receiveFor(itt);
      const op = opcodeOf(p.bhs);
      if (op === Op.ScsiResponse) {
        this.expectGood(p, "READ(10)");
        break;
      }
      if (op !== Op.DataIn) throw new InitiatorError(`READ(10): opcode 0x${op.toString(16)}`);
      if (u32At(p.bhs, 36) !== dataSn++) throw new InitiatorError("Data-In DataSN out of sequence");
      const offset = u32At(p.bhs, 40);
      if (offset !== got || offset + p.data.length > total) throw new InitiatorError(`Data-In at ${offset} (+${p.data.length}), expected ${got} of ${total}`);
      out.set(p.data, offset);
      got += p.data.length;
      if ((p.bhs[1]! & 0x01) !== 0) { // S: status collapsed into this Data-In
        if ((p.bhs[1]! & 0x80) === 0) throw new InitiatorError("Data-In with S and without F");
        this.status(p);
        if (p.bhs[3] !== 0) throw new InitiatorError(`READ(10) status 0x${p.bhs[3]!.toString(16)}`);
        break;
      } else this.window(p);
    }
    if (got !== total) throw new InitiatorError(`READ(10): ${got} of ${total} bytes`);
    return out;
  }

  /** A command with Data-In (`cdb`, up to 16 bytes, `expectedBytes` at most): its SCSI status and the data that came. */
  dataIn(lun: number, cdb: readonly number[], expectedBytes: number): { status: number; data: Uint8Array } {
    const itt = this.itt++;
    const block = new Uint8Array(16);
    block.set(cdb);
    this.send(this.command(0x80 | 0x40 | 1, lun, expectedBytes, block, itt));
    const out = new Uint8Array(expectedBytes);
    let got = 0;
    for (;;) {
      const p = this.receiveFor(itt);
      const op = opcodeOf(p.bhs);
      if (op === Op.ScsiResponse) {
        this.status(p);
        return { status: p.bhs[3]!, data: out.subarray(0, got) };
      }
      if (op !== Op.DataIn) throw new InitiatorError(`Data-In command: opcode 0x${op.toString(16)}`);
      out.set(p.data, u32At(p.bhs, 40));
      got = Math.max(got, u32At(p.bhs, 40) + p.data.length);
      if ((p.bhs[1]! & 0x01) !== 0) {
        this.status(p);
        return { status: p.bhs[3]!, data: out.subarray(0, got) };
      }
      this.window(p);
    }
  }

  /** TEST UNIT READY: the SCSI status (0 GOOD, 2 CHECK CONDITION) and sense text. */
  testUnitReady(lun: number): { status: number; sense: string } {
    const itt = this.itt++;
    this.send(this.command(0x80 | 1, lun, 0, new Uint8Array(16), itt));
    const p = this.receiveFor(itt);
    if (opcodeOf(p.bhs) !== Op.ScsiResponse) throw new InitiatorError(`TEST UNIT READY: opcode 0x${opcodeOf(p.bhs).toString(16)}`);
    this.status(p);
    if (p.bhs[2] !== 0) throw new InitiatorError(`TEST UNIT READY: response ${p.bhs[2]}`);
    return { status: p.bhs[3]!, sense: senseText(p.data) };
  }

  /** A new I_T nexus starts with a UNIT ATTENTION per LUN (SAM): TEST UNIT READY until GOOD. */
  clearUnitAttention(lun: number): void {
    for (let i = 0; i < 4; i++) {
      const { status, sense } = this.testUnitReady(lun);
      if (status === 0) return;
      if (status !== 2 || !sense.startsWith(" sense 06/")) throw new InitiatorError(`TEST UNIT READY on LUN ${lun}: status 0x${status.toString(16)}${sense}`);
    }
    throw new InitiatorError(`LUN ${lun} keeps reporting UNIT ATTENTION`);
  }

  /** NOP-Out ping (ITT set, TTT 0xffffffff, immediate): a NOP-In echoing the data comes back. */
  ping(data: Uint8Array = new Uint8Array(0)): void {
    const itt = this.itt++;
    this.send(pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.NopOut;
      bhs[1] = 0x80;
      v.setUint32(16, itt);
      v.setUint32(20, 0xffff_ffff);
      v.setUint32(24, this.cmdSn);
      v.setUint32(28, this.expStatSn);
    }, data));
    const p = this.receiveFor(itt);
    if (opcodeOf(p.bhs) !== Op.NopIn) throw new InitiatorError(`ping: opcode 0x${opcodeOf(p.bhs).toString(16)}`);
    this.status(p);
    if (Buffer.compare(p.data, data) !== 0) throw new InitiatorError("ping: NOP-In data differs");
  }

  /** A fresh Initiator Task Tag, for tests that build their own PDUs. */
  nextItt(): number {
    return this.itt++;
  }

  /**
   * A Text Request (not immediate: it takes the next CmdSN). `ttt` 0xffffffff starts an exchange; a continuation
   * carries the TTT the target gave. `flags`: F 0x80, C 0x40.
   */
  textRequest(itt: number, ttt: number, flags: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
    const cmdSn = this.cmdSn;
    this.cmdSn = (this.cmdSn + 1) >>> 0;
    return pdu((bhs, v) => {
      bhs[0] = Op.TextRequest;
      bhs[1] = flags;
      v.setUint32(16, itt);
      v.setUint32(20, ttt);
      v.setUint32(24, cmdSn);
      v.setUint32(28, this.expStatSn);
    }, data);
  }

  /** The next Text Response for `itt`, checked: StatSN, C only without F, a TTT whenever F is 0, within our MaxRecv. */
  textResponse(itt: number): Pdu {
    const p = this.receiveFor(itt);
    if (opcodeOf(p.bhs) !== Op.TextResponse) throw new InitiatorError(`text: opcode 0x${opcodeOf(p.bhs).toString(16)}`);
    this.status(p);
    const final = (p.bhs[1]! & 0x80) !== 0;
    const cont = (p.bhs[1]! & 0x40) !== 0;
    if (final && cont) throw new InitiatorError("Text Response with both F and C");
    if (!final && u32At(p.bhs, 20) === 0xffff_ffff) throw new InitiatorError("Text Response with F=0 and TTT 0xffffffff");
    if (p.data.length > this.maxRecv) throw new InitiatorError(`Text Response of ${p.data.length} bytes, more than our MaxRecvDataSegmentLength ${this.maxRecv}`);
    return p;
  }

  /**
   * A text exchange: `keys` in Text Requests of at most `pieceBytes` each (C=1 on all but the last, each answered by
   * an empty Text Response with a TTT that the next one carries), then the answer, following its pieces (C=1, F=0)
   * with empty requests carrying the target's TTT until F=1. The whole answer, and every Text Response.
   */
  text(keys: Uint8Array, pieceBytes = 0): { data: Uint8Array; responses: Pdu[] } {
    const itt = this.itt++;
    const responses: Pdu[] = [];
    let ttt = 0xffff_ffff;
    const step = pieceBytes > 0 ? pieceBytes : Math.max(keys.length, 1);
    for (let at = 0; at + step < keys.length; at += step) {
      this.send(this.textRequest(itt, ttt, 0x40, keys.subarray(at, at + step)));
      const ack = this.textResponse(itt);
      responses.push(ack);
      if (ack.data.length !== 0 || (ack.bhs[1]! & 0xc0) !== 0) throw new InitiatorError("a C=1 Text Request answered other than by an empty F=0 C=0 response");
      ttt = u32At(ack.bhs, 20);
    }
    const last = Math.floor(Math.max(keys.length - 1, 0) / step) * step;
    this.send(this.textRequest(itt, ttt, 0x80, keys.subarray(last)));
    const parts: Uint8Array[] = [];
    for (let n = 0; n < 4096; n++) {
      const p = this.textResponse(itt);
      responses.push(p);
      parts.push(p.data);
      if ((p.bhs[1]! & 0x80) !== 0) return { data: Buffer.concat(parts), responses };
      if ((p.bhs[1]! & 0x40) === 0 && p.data.length === 0) throw new InitiatorError("an empty Text Response that neither ends nor continues");
      this.send(this.textRequest(itt, u32At(p.bhs, 20), 0x80));
    }
    throw new InitiatorError("text: more than 4096 Text Responses");
  }

  /** Logout (close the session); the target answers and closes the connection. */
  logout(): void {
    const itt = this.itt++;
    this.send(pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.LogoutRequest;
      bhs[1] = 0x80 | 0; // reason: close the session
      v.setUint32(16, itt);
      v.setUint32(24, this.cmdSn);
      v.setUint32(28, this.expStatSn);
    }));
    const p = this.receiveFor(itt);
    if (opcodeOf(p.bhs) !== Op.LogoutResponse) throw new InitiatorError(`logout: opcode 0x${opcodeOf(p.bhs).toString(16)}`);
    this.status(p);
    if (p.bhs[2] !== 0) throw new InitiatorError(`logout response ${p.bhs[2]}`);
    this.loggedIn = false;
    const deadline = this.board.clock.nowNs + this.options.timeoutNs;
    while (!this.client.closed && this.board.clock.nowNs < deadline) this.board.runFor(this.options.stepNs);
    if (!this.client.closed) throw new InitiatorError("target did not close the connection after logout");
    this.client.end();
  }
}
