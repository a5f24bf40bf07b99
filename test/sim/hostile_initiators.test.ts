// Hostile initiators never take the target down. A board (host with the NIC and a disk, sp1 with a disk) serves
// iSCSI on a loopback network on the board clock; a legitimate initiator logs in, writes a known pattern to LUN 1 and
// keeps its session while fast-check generates attacks on other connections: random bytes, valid-looking headers with
// random opcodes, flags and lengths, truncated PDUs, login requests with garbage keys and stage transitions, Data-Out
// with bogus TTT/offset/DataSN, commands before login, NOP-Out floods. After every attack the attacker goes away and
// the oracles run: no processor panicked, the legitimate session still works (and periodically reads back exactly its
// pattern and writes more), and where RFC 7143 says what the target must answer, it did. At the end every connection
// slot is free again, a fresh login works, and no processor's heap grew.
//
// Attackers never touch LUN 1 (SCSI, TMF and Data-Out headers are steered to LUN 0) and never name the legitimate
// initiator, so nothing they may legitimately do can change the pattern: any difference is data lost.
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import type { ClientEnd } from "../../host/devices/tcp_backend.ts";
import { Prng } from "../../host/sim/prng.ts";
import { bootIscsiBoard, type IscsiEnv } from "../support/iscsi_board.ts";
import { turn } from "../support/time.ts";
import { awaitPdu, BHS_BYTES, Initiator, Op, opcodeOf, pdu, type Pdu, PduReader, textKeys, u32At } from "../support/iscsi_initiator.ts";

const SEED = Number(process.env.SEED ?? 20261122);
const TARGET = "iqn.2026-11.org.wasm-iop:test-board";
const LEGIT_LUN = 1;
const ATTACK_LUN = 0;
const CONNECTIONS = 64;
// Workaround switch for the pipelined-ping bug (see "firmware bugs"): set to false once it is fixed.
const KNOWN_BUG_PIPELINED_PINGS: boolean = false;
const KNOWN_BUG_REJECT_LOST_ON_DROP: boolean = false;
const FRESH_LBA = 32_000; // the legitimate session's regions stay below 30_100 // NIC slots (docs/hardware.md, CONN_MAX)

type Env = IscsiEnv;

// testBoard has no NIC yet: the same board built by hand, with the NIC on the host's slot 4 and the board's default
// LoopbackBackend (on the board clock) as the network.
const bootBoard = (): Env => bootIscsiBoard();

function legitimate(env: Env, isid = 1): Initiator {
  const i = new Initiator(env.board, env.network, { targetName: TARGET, initiatorName: "iqn.2026-11.org.wasm-iop:legit", isid });
  i.login();
  i.clearUnitAttention(LEGIT_LUN);
  return i;
}

function pattern(label: string, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  new Prng(`${SEED}/${label}`).fill(data);
  return data;
}

// ---- Attackers: raw connections ----

interface Outcome {
  pdus: Pdu[];
  closedByTarget: boolean;
}

class Attacker {
  readonly client: ClientEnd;
  readonly reader: PduReader;
  readonly pdus: Pdu[] = [];
  constructor(readonly env: Env) {
    this.client = env.network.connect(0);
    expect(this.client.refused, "an attacker found every connection slot taken").toBe(false);
    this.reader = new PduReader(this.client);
  }
  write(bytes: Uint8Array): void {
    this.client.write(bytes);
  }
  /** Runs the board until the target closed the connection or `ns` of board time passed; collects whole PDUs. */
  settle(ns = 2_000_000): void {
    const until = this.env.board.clock.nowNs + ns;
    while (!this.client.closed && this.env.board.clock.nowNs < until) this.env.board.runFor(50_000);
    for (let p = this.reader.next(); p !== undefined; p = this.reader.next()) this.pdus.push(p);
  }
  next(timeoutNs = 5_000_000): Pdu | undefined {
    const p = awaitPdu(this.env.board, this.client, this.reader, timeoutNs);
    if (p !== undefined) this.pdus.push(p);
    return p;
  }
  /** FIN from the attacker (if the target has not closed already), then time for the target to see it. */
  leave(): Outcome {
    this.settle(0);
    const closedByTarget = this.client.closed;
    this.client.end();
    this.env.board.runFor(200_000);
    return { pdus: this.pdus, closedByTarget };
  }
}

let attackerNumber = 0;

// A login request as the attacker's own initiator (never the legitimate one's name or ISID).
function loginPdu(flags: number, keys: Uint8Array, options: { versionMax?: number; versionMin?: number; isid?: number; tsih?: number; itt?: number; cmdSn?: number } = {}): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = 0x40 | Op.LoginRequest;
    bhs[1] = flags;
    bhs[2] = options.versionMax ?? 0;
    bhs[3] = options.versionMin ?? 0;
    bhs[8] = 0x40; // ISID type OUI-format: never the legitimate initiator's random-type ISID
    v.setUint32(10, options.isid ?? 7);
    v.setUint16(14, options.tsih ?? 0);
    v.setUint32(16, options.itt ?? 1);
    v.setUint32(24, options.cmdSn ?? 1);
  }, keys);
}

const attackerKeys = (n: number): [string, string][] => [
  ["InitiatorName", `iqn.2026-11.org.example:attacker-${n}`], ["SessionType", "Normal"], ["TargetName", TARGET], ["AuthMethod", "None"],
];

/** An attacker that completed a login (its own session): the Initiator class on a fresh connection. */
function loggedInAttacker(env: Env): Initiator {
  const n = ++attackerNumber;
  const i = new Initiator(env.board, env.network, { targetName: TARGET, initiatorName: `iqn.2026-11.org.example:attacker-${n}`, isid: 0x1000 + n });
  i.login();
  i.clearUnitAttention(ATTACK_LUN); // so the attacks reach the SCSI target, not just its UNIT ATTENTION
  return i;
}

// Keeps SCSI, TMF and Data-Out headers away from the legitimate LUN, and TMFs to the ones that reach one LUN's task
// set (a target reset from any initiator is legitimate and would rightly disturb the legitimate session).
function steer(bhs: Uint8Array): void {
  const op = bhs[0]! & 0x3f;
  if (op === Op.ScsiCommand || op === Op.TmfRequest || op === Op.DataOut) {
    if ((bhs[8] === 0x00 || bhs[8] === 0x40) && bhs[9] === LEGIT_LUN) bhs[9] = ATTACK_LUN;
  }
  if (op === Op.TmfRequest) {
    const fn = bhs[1]! & 0x7f;
    if (fn < 1 || fn > 5) bhs[1] = (bhs[1]! & 0x80) | (1 + (fn % 5));
  }
  if (op === Op.LoginRequest) bhs[8] = 0x40; // never the legitimate ISID (type 0x80)
}

// ---- Generators ----

const arbHeader = fc.record({
  opcode: fc.oneof(fc.integer({ min: 0, max: 0x3f }), fc.constantFrom(0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x10)),
  immediate: fc.boolean(),
  flags: fc.integer({ min: 0, max: 255 }),
  ahsWords: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
  dsl: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 0xff_ffff })),
  rest: fc.uint8Array({ minLength: 40, maxLength: 40 }),
  payloadBytes: fc.integer({ min: 0, max: 4096 }),
  exact: fc.boolean(), // the payload is exactly the data segment (when it is at most 64 KiB): a whole PDU, nothing after
});
type Header = typeof arbHeader extends fc.Arbitrary<infer T> ? T : never;

function headerBytes(h: Header, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(BHS_BYTES + payload.length);
  bytes[0] = (h.immediate ? 0x40 : 0) | h.opcode;
  bytes[1] = h.flags;
  bytes.set(h.rest.subarray(0, 2), 2);
  bytes[4] = h.ahsWords;
  bytes[5] = (h.dsl >> 16) & 0xff;
  bytes[6] = (h.dsl >> 8) & 0xff;
  bytes[7] = h.dsl & 0xff;
  bytes.set(h.rest.subarray(2), 8);
  steer(bytes);
  bytes.set(payload, BHS_BYTES);
  return bytes;
}

const KEY_NAMES = [
  "InitiatorName", "TargetName", "SessionType", "AuthMethod", "HeaderDigest", "DataDigest", "MaxConnections", "SendTargets",
  "TargetAlias", "InitiatorAlias", "TargetAddress", "TargetPortalGroupTag", "InitialR2T", "ImmediateData", "MaxRecvDataSegmentLength",
  "MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait", "DefaultTime2Retain", "MaxOutstandingR2T", "DataPDUInOrder",
  "DataSequenceInOrder", "ErrorRecoveryLevel", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R", "X-com.example.vendor", "X#private",
];
const arbKeyName = fc.oneof(fc.constantFrom(...KEY_NAMES), fc.string({ maxLength: 80 }), fc.string({ minLength: 60, maxLength: 300 }));
const arbValue = fc.oneof(
  fc.constantFrom("None", "CRC32C", "CRC32C,None", "Yes", "No", "Normal", "Discovery", "CHAP", "None,CHAP", "Reject", "NotUnderstood", "Irrelevant", "0", "1", "512", "65536", "16777215", "16777216", "4294967296", "-1", "0x10", "", TARGET, "All", "5", "0xDEADBEEF", "0b0101"),
  fc.string({ maxLength: 64 }),
  fc.integer({ min: 0, max: 9000 }).map((n) => "v".repeat(n)),
  fc.bigInt({ min: 0n, max: 1n << 70n }).map((n) => n.toString()),
);
const arbKeys = fc.array(fc.tuple(arbKeyName, arbValue), { maxLength: 24 });

const arbLoginStep = fc.record({
  keys: arbKeys,
  keepIdentity: fc.boolean(), // put a valid identity (InitiatorName, TargetName, SessionType) first
  duplicate: fc.boolean(), // send every key twice
  transit: fc.boolean(),
  cont: fc.boolean(),
  csg: fc.integer({ min: 0, max: 3 }),
  nsg: fc.integer({ min: 0, max: 3 }),
  versionMax: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
  versionMin: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })),
  tsih: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })),
  garbageTail: fc.oneof(fc.constant(undefined), fc.uint8Array({ maxLength: 64 })),
});
type LoginStep = typeof arbLoginStep extends fc.Arbitrary<infer T> ? T : never;

function loginStepBytes(step: LoginStep, n: number, itt: number): Uint8Array {
  const pairs: [string, string][] = [...(step.keepIdentity ? attackerKeys(n).slice(0, 3) : []), ...step.keys.map(([k, v]) => [k.replace(/[=\0]/g, "_"), v.replace(/\0/g, "")] as [string, string])];
  let text = textKeys(step.duplicate ? [...pairs, ...pairs] : pairs);
  if (step.garbageTail !== undefined) {
    const joined = new Uint8Array(text.length + step.garbageTail.length);
    joined.set(text);
    joined.set(step.garbageTail, text.length);
    text = joined;
  }
  const flags = (step.transit ? 0x80 : 0) | (step.cont ? 0x40 : 0) | (step.csg << 2) | step.nsg;
  return loginPdu(flags, text, { versionMax: step.versionMax, versionMin: step.versionMin, tsih: step.tsih, isid: 0x100 + n, itt });
}

// ---- Oracles ----

/** What every answer to an attacker must look like, whatever the attack: a target PDU, well formed. */
function expectSaneAnswers(outcome: Outcome): void {
  for (const p of outcome.pdus) {
    const op = opcodeOf(p.bhs);
    expect(op, `opcode 0x${op.toString(16)} from the target`).toBeGreaterThanOrEqual(0x20);
    if (op === Op.LoginResponse) expect(p.bhs[36]! <= 3).toBe(true);
    if (op === Op.Reject) {
      expect(u32At(p.bhs, 16)).toBe(0xffff_ffff);
      expect(p.data.length).toBeGreaterThanOrEqual(BHS_BYTES); // the rejected header
      expect([0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c]).toContain(p.bhs[2]);
    }
  }
}

/** Before full feature phase the target sends Login Responses only. */
function expectLoginPhaseAnswers(outcome: Outcome): void {
  for (const p of outcome.pdus) expect(opcodeOf(p.bhs), "a non-login PDU from the target before full feature phase").toBe(Op.LoginResponse);
  const failed = outcome.pdus.find((p) => p.bhs[36] !== 0);
  if (failed !== undefined) {
    expect(outcome.closedByTarget, "a failed login must end the connection").toBe(true);
    expect(outcome.pdus.at(-1)).toBe(failed); // nothing after the failure
  }
}

interface Legit {
  initiator: Initiator;
  regions: { lba: number; data: Uint8Array }[];
  nextLba: number;
  writes: number;
}

function checkLegit(env: Env, legit: Legit, full: boolean): void {
  expect(env.board.panics).toEqual([]);
  legit.initiator.ping(new Uint8Array([legit.writes & 0xff, 1, 2]));
  if (!full) return;
  for (const region of legit.regions) {
    const got = legit.initiator.read(LEGIT_LUN, region.lba, region.data.length / 512);
    if (Buffer.compare(got, region.data) !== 0) {
      let first = 0;
      while (got[first] === region.data[first]) first++;
      let last = got.length - 1;
      while (got[last] === region.data[last]) last--;
      const again = Buffer.compare(legit.initiator.read(LEGIT_LUN, region.lba, region.data.length / 512), region.data) === 0;
      throw new Error(`LUN ${LEGIT_LUN} at LBA ${region.lba}: read back other bytes than were written (bytes ${first}..${last} of ${got.length} differ; zeros there: ${got.subarray(first, last + 1).every((b) => b === 0)}; a second read ${again ? "is right" : "differs too"}; board time ${env.board.clock.nowNs})`);
    }
  }
  // And it can still write and read more.
  const data = pattern(`more-${legit.writes}`, 16 * 1024);
  const lba = legit.nextLba;
  legit.initiator.write(LEGIT_LUN, lba, data);
  legit.regions.push({ lba, data });
  legit.nextLba += data.length / 512;
  legit.writes += 1;
  if (legit.nextLba > 30_000) legit.nextLba = 4096; // overwrite older regions: the newest write is what must read back
  legit.regions = legit.regions.filter((r, i, all) => !all.slice(i + 1).some((later) => later.lba < r.lba + r.data.length / 512 && r.lba < later.lba + later.data.length / 512));
}

function expectQuiescent(env: Env): void {
  env.board.runFor(500_000_000);
  expect(env.board.panics).toEqual([]);
  for (const p of env.board.processors) expect(p.heapTop(), `${p.name}: heap top`).toBe(p.heapTopAtBoot);
}

// Every slot can be taken again (the legitimate connection holds `held`), and a fresh login works.
function expectAllSlotsFree(env: Env, held: number): void {
  const clients: ClientEnd[] = [];
  for (let i = 0; i < CONNECTIONS - held; i++) {
    const c = env.network.connect(0);
    expect(c.refused, `slot ${i + held} of ${CONNECTIONS} still taken after the attackers left`).toBe(false);
    clients.push(c);
  }
  env.board.runFor(1_000_000);
  for (const c of clients) c.end();
  env.board.runFor(1_000_000);
  const fresh = legitimate(env, 0x77);
  const data = pattern("fresh", 8192);
  fresh.write(LEGIT_LUN, FRESH_LBA, data); // away from every region the legitimate session keeps
  expect(Buffer.compare(fresh.read(LEGIT_LUN, FRESH_LBA, 16), data)).toBe(0);
  fresh.logout();
  env.board.runFor(1_000_000);
}

const fcParams = (numRuns: number, salt: number): fc.Parameters<unknown> => ({ seed: SEED + salt, numRuns, endOnFailure: true, verbose: 1 });

// ---- Specific answers RFC 7143 gives ----

describe("hostile initiators: what RFC 7143 says the target answers", () => {
  let env: Env;
  let legit: Initiator;
  beforeAll(() => {
    env = bootBoard();
    legit = legitimate(env);
  });

  it("answers a Login Request with an unsupported version with Status-Class 2 (0x0205) and closes", () => {
    const a = new Attacker(env);
    a.write(loginPdu(0x81, textKeys(attackerKeys(1)), { versionMax: 2, versionMin: 1 }));
    a.settle();
    const out = a.leave();
    expect(out.pdus.map((p) => opcodeOf(p.bhs))).toEqual([Op.LoginResponse]);
    expect([out.pdus[0]!.bhs[36], out.pdus[0]!.bhs[37]]).toEqual([0x02, 0x05]);
    expect(out.closedByTarget).toBe(true);
    legit.ping();
  });

  it("ends the connection on a SCSI Command before login, without executing it", () => {
    const a = new Attacker(env);
    a.write(pdu((bhs, v) => {
      bhs[0] = Op.ScsiCommand;
      bhs[1] = 0x80 | 0x40 | 1;
      v.setUint32(20, 512);
      v.setUint32(24, 1);
      bhs[32] = 0x28;
      bhs[40] = 1;
    }));
    a.settle();
    const out = a.leave();
    expect(out.closedByTarget).toBe(true);
    // Either dropped silently or told "invalid during login" (0x020b): never a SCSI answer.
    for (const p of out.pdus) expect([opcodeOf(p.bhs), p.bhs[36]]).toEqual([Op.LoginResponse, 0x02]);
    legit.ping();
  });

  it("answers a PDU other than a Login Request during login with Status-Class 2, Invalid during login (0x020b), and closes", () => {
    const a = new Attacker(env);
    a.write(pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.NopOut;
      bhs[1] = 0x80;
      v.setUint32(16, 0x1234);
      v.setUint32(20, 0xffff_ffff);
      v.setUint32(24, 9);
    }));
    a.settle();
    const out = a.leave();
    expect(out.pdus.map((p) => [opcodeOf(p.bhs), p.bhs[36], p.bhs[37], u32At(p.bhs, 16)])).toEqual([[Op.LoginResponse, 0x02, 0x0b, 0x1234]]);
    expect(out.closedByTarget).toBe(true);
    legit.ping();
  });

  it("answers a Login Request longer than 8192 bytes of data with an initiator error (0x0200), and closes", () => {
    const a = new Attacker(env);
    const keys = new Uint8Array(8192 + 4).fill(0x41);
    keys[keys.length - 1] = 0;
    a.write(loginPdu(0x81, keys, { itt: 0x77 }));
    a.settle();
    const out = a.leave();
    expect(out.pdus.map((p) => [opcodeOf(p.bhs), p.bhs[36], p.bhs[37], u32At(p.bhs, 16)])).toEqual([[Op.LoginResponse, 0x02, 0x00, 0x77]]);
    expect(out.closedByTarget).toBe(true);
    legit.ping();
  });

  it("rejects an unknown opcode in full feature phase (Reject 0x05 carrying the header) and keeps the connection", () => {
    const a = loggedInAttacker(env);
    const header = pdu((bhs, v) => {
      bhs[0] = 0x1c; // not an initiator opcode
      bhs[1] = 0x80;
      v.setUint32(16, 0x1234);
      v.setUint32(24, a.cmdSn);
      v.setUint32(28, a.expStatSn);
    });
    a.send(header);
    const reject = a.receive();
    expect(opcodeOf(reject.bhs)).toBe(Op.Reject);
    expect(reject.bhs[2]).toBe(0x05);
    expect(u32At(reject.bhs, 16)).toBe(0xffff_ffff);
    expect(u32At(reject.bhs, 24)).toBe(a.expStatSn);
    expect(Buffer.compare(reject.data.subarray(0, BHS_BYTES), header.subarray(0, BHS_BYTES))).toBe(0);
    a.expStatSn += 1;
    a.ping(); // still in full feature phase
    a.logout();
    legit.ping();
  });

  it("rejects a target opcode sent by an initiator as a protocol error (0x04)", () => {
    const a = loggedInAttacker(env);
    a.send(pdu((bhs, v) => {
      bhs[0] = Op.ScsiResponse;
      bhs[1] = 0x80;
      v.setUint32(16, 9);
      v.setUint32(24, a.cmdSn);
    }));
    const reject = a.receive();
    expect([opcodeOf(reject.bhs), reject.bhs[2]]).toEqual([Op.Reject, 0x04]);
    a.expStatSn += 1;
    a.ping();
    a.logout();
  });

  it("rejects a NOP-Out that wants no answer but is not immediate (ITT 0xffffffff, I=0) as an invalid field (0x09)", () => {
    const a = loggedInAttacker(env);
    a.send(pdu((bhs, v) => {
      bhs[0] = Op.NopOut;
      bhs[1] = 0x80;
      v.setUint32(16, 0xffff_ffff);
      v.setUint32(20, 0xffff_ffff);
      v.setUint32(24, a.cmdSn);
    }));
    const reject = a.receive();
    expect([opcodeOf(reject.bhs), reject.bhs[2]]).toEqual([Op.Reject, 0x09]);
    a.expStatSn += 1;
    a.ping();
    a.logout();
  });

  it("rejects a data segment longer than its MaxRecvDataSegmentLength (1 MiB NOP-Out) and keeps the connection", () => {
    const a = loggedInAttacker(env);
    a.send(pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.NopOut;
      bhs[1] = 0x80;
      v.setUint32(16, 77);
      v.setUint32(20, 0xffff_ffff);
      v.setUint32(24, a.cmdSn);
    }, new Uint8Array(1 << 20)));
    const reject = a.receive();
    expect([opcodeOf(reject.bhs), reject.bhs[2]]).toEqual([Op.Reject, 0x04]);
    a.expStatSn += 1;
    a.ping();
    a.logout();
  });

  it("drops the connection on an AHS longer than the target takes (TotalAHSLength 255)", () => {
    const a = loggedInAttacker(env);
    const bytes = pdu((bhs, v) => {
      bhs[0] = Op.ScsiCommand;
      bhs[1] = 0x80;
      bhs[4] = 255;
      v.setUint32(24, a.cmdSn);
    });
    const withAhs = new Uint8Array(bytes.length + 255 * 4);
    withAhs.set(bytes);
    a.send(withAhs);
    const deadline = env.board.clock.nowNs + 5_000_000;
    while (!a.client.closed && env.board.clock.nowNs < deadline) env.board.runFor(50_000);
    expect(a.client.closed).toBe(true);
    a.client.end();
    legit.ping();
  });

  it("drops the connection on a Data-Out out of sequence (ERL 0) and fails nothing else", () => {
    const a = loggedInAttacker(env);
    a.send(pdu((bhs, v) => {
      bhs[0] = Op.ScsiCommand;
      bhs[1] = 0x80 | 0x20 | 1;
      v.setUint32(16, 500);
      v.setUint32(20, 4096);
      v.setUint32(24, a.cmdSn);
      bhs[8 + 1] = ATTACK_LUN;
      bhs[32] = 0x2a;
      v.setUint32(34, 20_000);
      v.setUint16(39, 8);
    }));
    const r2t = a.receive();
    expect(opcodeOf(r2t.bhs)).toBe(Op.R2t);
    a.send(pdu((bhs, v) => {
      bhs[0] = Op.DataOut;
      bhs[1] = 0x80;
      v.setUint32(16, 500);
      v.setUint32(20, u32At(r2t.bhs, 20));
      v.setUint32(36, 5); // DataSN 5: not the next
      v.setUint32(40, 0);
    }, new Uint8Array(4096)));
    const deadline = env.board.clock.nowNs + 5_000_000;
    while (!a.client.closed && env.board.clock.nowNs < deadline) env.board.runFor(50_000);
    expect(a.client.closed).toBe(true);
    a.client.end();
    legit.ping();
  });

  // RFC 7143 §4.2.2.1: numbered requests wait in CmdSN order behind a gap, each holding a task record (and a ping
  // its page, a write its staging slot). An attacker that fills its whole window behind a gap it never fills, plus
  // an immediate ABORT TASK SET waiting for that gap, gets no answer; when it goes, every record, page and slot
  // comes back at once and nothing of it ever ran.
  it("holds a whole CmdSN window of requests behind a gap that never fills, answers none, and frees them all when the attacker goes", () => {
    const a = loggedInAttacker(env);
    const n = a.cmdSn;
    for (let k = 1; k < 64; k++) {
      const cmdSn = n + k;
      a.send(pdu((bhs, v) => {
        const kind = k % 4;
        bhs[0] = [Op.NopOut, Op.ScsiCommand, Op.TextRequest, Op.TmfRequest][kind]!;
        bhs[1] = kind === 1 ? 0x80 | 0x20 | 1 : kind === 3 ? 0x80 | 2 : 0x80; // WRITE(10) (no immediate data), ABORT TASK SET
        v.setUint32(16, 0x100 + k);
        v.setUint32(20, kind === 1 ? 4096 : 0xffff_ffff);
        v.setUint32(24, cmdSn);
        v.setUint32(28, a.expStatSn);
        if (kind === 1 || kind === 3) bhs[8 + 1] = ATTACK_LUN;
        if (kind === 1) {
          bhs[32] = 0x2a;
          v.setUint32(34, 20_000 + k * 8);
          v.setUint16(39, 8);
        }
      }, k % 4 === 0 ? pattern(`ping-${k}`, 1024) : k % 4 === 2 ? textKeys([["MaxRecvDataSegmentLength", "8192"]]) : new Uint8Array(0)));
    }
    a.send(pdu((bhs, v) => { // immediate ABORT TASK SET with the CmdSN after the full window: waits for the gap too
      bhs[0] = 0x40 | Op.TmfRequest;
      bhs[1] = 0x80 | 2;
      bhs[8 + 1] = ATTACK_LUN;
      v.setUint32(16, 0x200);
      v.setUint32(20, 0xffff_ffff);
      v.setUint32(24, n + 64);
      v.setUint32(28, a.expStatSn);
    }));
    env.board.runFor(20_000_000);
    const got: string[] = [];
    for (let p = a.reader.next(); p !== undefined; p = a.reader.next()) got.push(`0x${opcodeOf(p.bhs).toString(16)} reason ${p.bhs[2]} op 0x${p.data[0]?.toString(16)} cmdSn ${p.data.length >= 28 ? u32At(p.data, 24) - n : -1}`);
    expect(got, "nothing answered behind the gap").toEqual([]);
    a.client.end();
    env.board.runFor(5_000_000);
    const ended = env.console.filter((l) => l.includes("iscsi: connection") && l.includes(" ends: ")).pop();
    expect(ended).toMatch(/ 63 waiting commands ended; tasks free 256, staging slots free 16/);
    legit.ping();
  });

  it("leaves every slot free, the legitimate session intact and the heap where it was", () => {
    const data = pattern("specific", 64 * 1024);
    legit.write(LEGIT_LUN, 2048, data);
    expect(Buffer.compare(legit.read(LEGIT_LUN, 2048, 128), data)).toBe(0);
    expectAllSlotsFree(env, 1);
    legit.logout();
    expectQuiescent(env);
  });
});

// ---- Firmware bugs the attacks found, fixed; these keep them fixed ----

describe("hostile initiators: bugs the campaign found", () => {
  // FIXED (assembly/tts/nic.ts NicDriver.txPost, assembly/tts/iscsi/target.ts): txPost asserts
  // `txqHead - txqTailSeen < TXQ_ENTRIES` against txqTailSeen, which only txRoom() refreshes, and only when its cached
  // view says the ring is full. onLogin, onNopOut, onText, onLogout, onTmf and reject post without calling txRoom, so
  // after 2048 such answers over the board's life (the NIC finished every one long ago) the cached tail is 2048 behind
  // and the host panics "nic: transmit ring overrun (assembly/tts/nic.ts:159)": every session is gone. One well-behaved
  // initiator sending NOP-Out pings one at a time (open-iscsi pings every 5 s by default: about 3 hours) is enough.
  // Minimal reproducer: log in, then ping 2100 times, waiting for each NOP-In. Fails at ping ~2041 today.
  it("answers 2100 NOP-Out pings in a row on one session (transmit ring tail never refreshed)", () => {
    const env = bootBoard();
    const i = legitimate(env);
    try {
      for (let n = 0; n < 2100; n++) i.ping();
    } finally {
      expect(env.board.panics.map((p) => p.message)).toEqual([]); // today: ["nic: transmit ring overrun (assembly/tts/nic.ts:159)"]
    }
  });

  // BUG (assembly/tts/iscsi/target.ts onNopOut, with TX_SLOTS = 32 in conn.ts): a NOP-Out ping (ITT set) that finds
  // no free transmit header slot on its connection is silently never answered (`if (slot == TX_SLOTS ...) return`),
  // and the connection stays up. RFC 7143 (NOP-Out): a NOP-Out with a valid ITT must be answered by a NOP-In; an
  // initiator pipelining more than 32 pings (immediate, so the CmdSN window does not bound them) waits forever for
  // the rest and drops the connection on its own timeout. SCSI responses queue (flushSendQueue) instead; pings and
  // Text responses do not. (reject() in the same situation drops the connection: allowed, if blunt.)
  // Minimal reproducer: log in, write 64 immediate NOP-Outs (ITT 1..64, TTT 0xffffffff, no data) at once: 32 NOP-Ins.
  it("answers every one of 64 pipelined NOP-Out pings, or drops the connection (transmit slots exhausted)", () => {
    const env = bootBoard();
    const i = legitimate(env);
    const pings = new Uint8Array(64 * BHS_BYTES);
    for (let k = 0; k < 64; k++) {
      pings.set(pdu((bhs, v) => {
        bhs[0] = 0x40 | Op.NopOut;
        bhs[1] = 0x80;
        v.setUint32(16, k + 1);
        v.setUint32(20, 0xffff_ffff);
        v.setUint32(24, i.cmdSn);
        v.setUint32(28, i.expStatSn);
      }), k * BHS_BYTES);
    }
    i.send(pings);
    env.board.runFor(50_000_000);
    const answers: number[] = [];
    for (let p = i.reader.next(); p !== undefined; p = i.reader.next()) answers.push(u32At(p.bhs, 16));
    expect(env.board.panics).toEqual([]);
    if (!i.client.closed) expect(answers).toEqual(Array.from({ length: 64 }, (_, k) => k + 1));
  });

  // BUG (assembly/tts/iscsi/target.ts drop(), with the NIC's CONN_CLOSE semantics in docs/hardware.md): drop() writes
  // CONN_CLOSE at once, but answers queued earlier in the same service pass are only made visible to the NIC by the
  // TXQ_HEAD doorbell in txFlush() at the end of the pass. CONN_CLOSE "waits for the transmit entries posted before
  // it" — these were not posted yet — so they are discarded (Sent with 0 bytes). An initiator whose PDU was rejected
  // never learns why if its next PDU, in the same receive buffer, makes the target drop the connection.
  // Minimal reproducer: log in; write, in one piece, a PDU with opcode 0x1c (Reject 0x05 due) followed by a NOP-Out
  // header with TotalAHSLength 255 (drop due): nothing arrives before the FIN.
  it("sends a Reject owed before a drop in the same receive buffer (CONN_CLOSE overtakes the doorbell)", () => {
    const env = bootBoard();
    const i = legitimate(env);
    const unknown = pdu((bhs, v) => {
      bhs[0] = 0x1c;
      bhs[1] = 0x80;
      v.setUint32(16, 0x1234);
      v.setUint32(24, i.cmdSn);
    });
    const bad = pdu((bhs) => {
      bhs[0] = Op.NopOut;
      bhs[1] = 0x80;
      bhs[4] = 255;
    });
    const both = new Uint8Array(unknown.length + bad.length);
    both.set(unknown);
    both.set(bad, unknown.length);
    i.send(both);
    env.board.runFor(5_000_000);
    expect(i.client.closed).toBe(true);
    const first = i.reader.next();
    expect(first === undefined ? undefined : [opcodeOf(first.bhs), first.bhs[2]]).toEqual([Op.Reject, 0x05]);
  });
});

// ---- Generated attacks ----

describe("hostile initiators: generated attacks alongside a legitimate session", () => {
  let env: Env;
  let legit: Legit;
  let attacks = 0;
  let boards = 0;
  let rfcSpecific = 0; // attacks whose answer RFC 7143 pins down exactly, and which got it
  let sinceFullCheck = 0;
  const counts: Record<string, number> = {};
  const startedAt = Date.now();

  function startBoard(): void {
    env = bootBoard();
    boards += 1;
    const initiator = legitimate(env);
    const data = pattern(`legit-${boards}`, 256 * 1024);
    initiator.write(LEGIT_LUN, 0, data);
    legit = { initiator, regions: [{ lba: 0, data }], nextLba: 4096, writes: 0 };
  }

  // The end of a board's life: everything the legitimate session wrote reads back, every slot is free, a fresh login
  // works, and once it is quiet no processor's heap grew.
  function finishBoard(): void {
    checkLegit(env, legit, true);
    expectAllSlotsFree(env, 1);
    checkLegit(env, legit, true);
    legit.initiator.logout();
    expectQuiescent(env);
  }

  // The campaign runs on one board for as long as the firmware has posted fewer than TX_ENTRIES_PER_BOARD transmit
  // entries (the transmit-ring bug above once made this necessary; now it only bounds one board's share of the run),
  // then moves to a fresh board with a fresh legitimate session, checked to the end first.
  const TX_ENTRIES_PER_BOARD = 1 << 20;
  const NIC_TXQ_HEAD = 0x5c;
  function maybeRotate(): void {
    const nic = env.board.nics[0]!;
    const posted = Number(env.board.processors[0]!.bus.read(nic.barAddress(0) + BigInt(NIC_TXQ_HEAD), 4)); // TXQ_HEAD, as the firmware rang it
    if (posted < TX_ENTRIES_PER_BOARD) return;
    finishBoard();
    startBoard();
  }

  beforeAll(() => {
    startBoard();
    process.stdout.write(`hostile initiators: SEED=${SEED} (replay with SEED=${SEED} npx vitest run test/sim/hostile_initiators.test.ts)\n`);
  });

  // After each attack: the legitimate session answers; every 20 attacks it reads back everything and writes more.
  function after(kind: string, outcome: Outcome): void {
    attacks += 1;
    counts[kind] = (counts[kind] ?? 0) + 1;
    expectSaneAnswers(outcome);
    sinceFullCheck += 1;
    const full = sinceFullCheck >= Number(process.env.FULL_EVERY ?? 20);
    if (full) sinceFullCheck = 0;
    checkLegit(env, legit, full);
    maybeRotate();
  }

  it("survives random bytes on a fresh connection", async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), fc.boolean(), async (bytes, legitMeanwhile) => {
      await turn(); // one run at a time: the whole campaign would block the worker for minutes under load
      const a = new Attacker(env);
      a.write(bytes);
      if (legitMeanwhile) legit.initiator.ping(); // the board serves both at once
      a.settle(500_000);
      const out = a.leave();
      expectLoginPhaseAnswers(out);
      after("random bytes", out);
    }), fcParams(800, 1));
  });

  it("survives valid-looking headers with random opcode, flags and lengths, before and after login, cut short", async () => {
    await fc.assert(fc.asyncProperty(arbHeader, fc.boolean(), fc.uint8Array({ maxLength: 64 }), async (h, afterLogin, seedBytes) => {
      await turn(); // one run at a time: the whole campaign would block the worker for minutes under load
      const payload = new Uint8Array(h.exact && h.ahsWords === 0 && h.dsl <= 65536 ? (h.dsl + 3) & ~3 : h.payloadBytes);
      payload.set(seedBytes.subarray(0, payload.length));
      const bytes = headerBytes(h, payload);
      if (afterLogin) {
        const a = loggedInAttacker(env);
        a.send(bytes);
        const until = env.board.clock.nowNs + 1_000_000;
        while (!a.client.closed && env.board.clock.nowNs < until) env.board.runFor(50_000);
        const pdus: Pdu[] = [];
        for (let p = a.reader.next(); p !== undefined; p = a.reader.next()) pdus.push(p);
        const closedByTarget = a.client.closed;
        // RFC 7143: a whole PDU with an opcode the target does not know (or a target opcode) in full feature phase is
        // answered with a Reject (Command not supported / Protocol Error) carrying its header; the connection stays.
        const known = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10].includes(h.opcode);
        if (!known && h.ahsWords === 0 && ((h.dsl + 3) & ~3) <= payload.length && h.dsl <= 65536) {
          // Bytes after the PDU are the next PDU's: when they make the target drop the connection, the Reject may go
          // with it (see "firmware bugs"); otherwise the Reject must come first.
          if (!closedByTarget || !KNOWN_BUG_REJECT_LOST_ON_DROP) {
            expect(pdus.map((p) => [opcodeOf(p.bhs), p.bhs[2]])[0], `opcode 0x${h.opcode.toString(16)} in full feature phase`).toEqual([Op.Reject, h.opcode >= 0x20 ? 0x04 : 0x05]);
            expect(Buffer.compare(pdus[0]!.data.subarray(0, BHS_BYTES), bytes.subarray(0, BHS_BYTES))).toBe(0);
            rfcSpecific += 1;
          }
        }
        a.client.end();
        env.board.runFor(200_000);
        after("header after login", { pdus, closedByTarget });
      } else {
        const a = new Attacker(env);
        a.write(bytes);
        a.settle(500_000);
        const out = a.leave();
        expectLoginPhaseAnswers(out);
        if (opcodeOf(bytes) !== Op.LoginRequest && out.pdus.length + (out.closedByTarget ? 1 : 0) > 0) {
          // A PDU other than a Login Request before login ends the connection (once the header is in).
          expect(out.closedByTarget).toBe(true);
        }
        after("header before login", out);
      }
    }), fcParams(1200, 2));
  });

  it("survives truncated PDUs followed by a close", async () => {
    const arbWhole = fc.oneof(
      arbHeader.map((h) => headerBytes({ ...h, dsl: Math.min(h.dsl, 4096), ahsWords: 0 }, new Uint8Array(Math.min(h.dsl, 4096) + 3 & ~3))),
      fc.constant(loginPdu(0x81, textKeys(attackerKeys(999)))),
    );
    await fc.assert(fc.asyncProperty(arbWhole, fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), async (whole, cut, afterLogin) => {
      await turn(); // one run at a time: the whole campaign would block the worker for minutes under load
      const bytes = whole.subarray(0, Math.floor(whole.length * cut));
      if (afterLogin) {
        const a = loggedInAttacker(env);
        a.send(bytes);
        a.client.end();
        env.board.runFor(500_000);
        after("truncated after login", { pdus: [], closedByTarget: false });
      } else {
        const a = new Attacker(env);
        a.write(bytes);
        const out = a.leave();
        expectLoginPhaseAnswers(out);
        after("truncated before login", out);
      }
    }), fcParams(600, 3));
  });

  it("survives login requests with random, garbage, oversized and duplicate keys and bad stage transitions", async () => {
    await fc.assert(fc.asyncProperty(fc.array(arbLoginStep, { minLength: 1, maxLength: 4 }), async (steps) => {
      await turn(); // one run at a time: the whole campaign would block the worker for minutes under load
      const n = ++attackerNumber;
      const a = new Attacker(env);
      for (const [i, step] of steps.entries()) {
        a.write(loginStepBytes(step, n, 1));
        const answer = a.next(2_000_000);
        if (answer === undefined || a.client.closed) break;
        if (answer.bhs[36] !== 0) break;
        if (i === 0 && (step.versionMin > 0 || step.versionMax < step.versionMin)) {
          throw new Error(`a Login Request with Version-min ${step.versionMin}, Version-max ${step.versionMax} was accepted`);
        }
      }
      a.settle(500_000);
      const out = a.leave();
      expectLoginPhaseAnswers(out);
      const first = steps[0]!;
      const firstBytes = loginStepBytes(first, n, 1);
      const firstInLimits = firstBytes.length - BHS_BYTES <= 8192 + 3 && !(first.transit && first.cont) && first.csg <= 1 && !(first.transit && (first.nsg === 2 || first.nsg <= first.csg));
      if (firstInLimits && (first.versionMin > 0 || first.versionMax < first.versionMin)) {
        // RFC 7143: Unsupported version: Status-Class 2, Status-Detail 5 — unless another initiator error is found first.
        expect(out.pdus[0]?.bhs[36], "version failure answered with a Login Response of class 2").toBe(0x02);
      }
      after("login keys", out);
    }), fcParams(1000, 4));
  });

  it("survives Data-Out with bogus TTT, offset, DataSN, ITT and lengths", async () => {
    const arbDataOut = fc.record({
      blocks: fc.integer({ min: 1, max: 256 }),
      pieces: fc.array(fc.record({
        ttt: fc.oneof(fc.constant("right" as const), fc.integer({ min: 0, max: 0xffff_ffff })),
        itt: fc.oneof(fc.constant("right" as const), fc.integer({ min: 0, max: 0xffff_ffff })),
        dataSn: fc.oneof(fc.constant("right" as const), fc.integer({ min: 0, max: 0xffff_ffff })),
        offset: fc.oneof(fc.constant("right" as const), fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 200_000 })),
        bytes: fc.oneof(fc.constant("right" as const), fc.integer({ min: 0, max: 70_000 })),
        final: fc.oneof(fc.constant("right" as const), fc.boolean()),
      }), { minLength: 1, maxLength: 6 }),
    });
    await fc.assert(fc.asyncProperty(arbDataOut, async ({ blocks, pieces }) => {
      await turn(); // one run at a time: the whole campaign would block the worker for minutes under load
      const a = loggedInAttacker(env);
      const itt = 0xabc;
      const total = blocks * 512;
      a.send(pdu((bhs, v) => {
        bhs[0] = Op.ScsiCommand;
        bhs[1] = 0x80 | 0x20 | 1;
        bhs[9] = ATTACK_LUN;
        v.setUint32(16, itt);
        v.setUint32(20, total);
        v.setUint32(24, a.cmdSn);
        bhs[32] = 0x2a;
        v.setUint32(34, 20_000);
        v.setUint16(39, blocks);
      }));
      const pdus: Pdu[] = [];
      let r2t: Pdu | undefined;
      for (let i = 0; i < 3 && r2t === undefined; i++) { // a UNIT ATTENTION first, the first time on this nexus
        const p = awaitPdu(env.board, a.client, a.reader, 5_000_000);
        if (p === undefined) break;
        pdus.push(p);
        if (opcodeOf(p.bhs) === Op.R2t) r2t = p;
        else break;
      }
      let next = 0;
      let dataSn = 0;
      for (const piece of pieces) {
        if (r2t === undefined) break;
        const size = piece.bytes === "right" ? Math.max(512, Math.min(8192, total - next)) : piece.bytes;
        const offset = piece.offset === "right" ? next : piece.offset;
        a.send(pdu((bhs, v) => {
          bhs[0] = Op.DataOut;
          bhs[1] = (piece.final === "right" ? next + size >= total : piece.final) ? 0x80 : 0;
          bhs[9] = ATTACK_LUN;
          v.setUint32(16, piece.itt === "right" ? itt : piece.itt);
          v.setUint32(20, piece.ttt === "right" ? u32At(r2t!.bhs, 20) : piece.ttt);
          v.setUint32(36, piece.dataSn === "right" ? dataSn : piece.dataSn);
          v.setUint32(40, offset);
        }, new Uint8Array(size).fill(0xa5)));
        next += size;
        dataSn += 1;
      }
      legit.initiator.ping();
      const until = env.board.clock.nowNs + 2_000_000;
      while (!a.client.closed && env.board.clock.nowNs < until) env.board.runFor(50_000);
      for (let p = a.reader.next(); p !== undefined; p = a.reader.next()) pdus.push(p);
      const closedByTarget = a.client.closed;
      a.client.end();
      env.board.runFor(200_000);
      after("data-out", { pdus, closedByTarget });
    }), fcParams(500, 5));
  });

  it("survives commands before login and floods of NOP-Out", async () => {
    const arbFlood = fc.record({
      count: fc.integer({ min: 1, max: 300 }),
      itts: fc.constantFrom("answered", "unanswered", "mixed"),
      dataBytes: fc.integer({ min: 0, max: 2048 }),
      beforeLogin: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(arbFlood, async ({ count, itts, dataBytes, beforeLogin }) => {
      await turn(); // one run at a time: the whole campaign would block the worker for minutes under load
      const nop = (cmdSn: number, k: number) => pdu((bhs, v) => {
        const unanswered = itts === "unanswered" || (itts === "mixed" && k % 3 === 0);
        bhs[0] = (unanswered ? 0 : 0x40) | Op.NopOut;
        bhs[1] = 0x80;
        v.setUint32(16, unanswered ? 0xffff_ffff : 0x10000 + k);
        v.setUint32(20, 0xffff_ffff);
        v.setUint32(24, cmdSn);
      }, new Uint8Array(dataBytes).fill(k & 0xff));
      if (beforeLogin) {
        const a = new Attacker(env);
        for (let k = 0; k < count; k++) a.write(nop(1, k));
        legit.initiator.ping();
        a.settle(1_000_000);
        const out = a.leave();
        expectLoginPhaseAnswers(out);
        expect(out.closedByTarget, "NOP-Out before login must end the connection").toBe(true);
        after("commands before login", out);
        return;
      }
      const a = loggedInAttacker(env);
      const flood: Uint8Array[] = [];
      for (let k = 0; k < count; k++) flood.push(nop(a.cmdSn, k));
      const all = new Uint8Array(flood.reduce((s, b) => s + b.length, 0));
      let at = 0;
      for (const b of flood) {
        all.set(b, at);
        at += b.length;
      }
      a.send(all);
      checkLegit(env, legit, false); // the legitimate session is served during the flood
      const until = env.board.clock.nowNs + 20_000_000;
      while (!a.client.closed && env.board.clock.nowNs < until) env.board.runFor(100_000);
      const pdus: Pdu[] = [];
      for (let p = a.reader.next(); p !== undefined; p = a.reader.next()) pdus.push(p);
      // Pings are answered (NOP-In, its data echoed) or, for the unanswerable kind, rejected; StatSN counts up by one.
      let statSn = a.expStatSn;
      for (const p of pdus) {
        expect([Op.NopIn, Op.Reject]).toContain(opcodeOf(p.bhs));
        expect(u32At(p.bhs, 24)).toBe(statSn);
        statSn = (statSn + 1) >>> 0;
      }
      const closedByTarget = a.client.closed;
      if (!closedByTarget) {
        // The target kept the connection: then it owes every ping its NOP-In and every unanswerable NOP-Out its Reject.
        const unanswered = (k: number) => itts === "unanswered" || (itts === "mixed" && k % 3 === 0);
        const wanted = Array.from({ length: count }, (_, k) => k).filter((k) => !unanswered(k)).map((k) => 0x10000 + k);
        const answered = pdus.filter((p) => opcodeOf(p.bhs) === Op.NopIn).map((p) => u32At(p.bhs, 16));
        if (!KNOWN_BUG_PIPELINED_PINGS) {
          expect(answered, `NOP-Ins for ${count} pipelined NOP-Outs`).toEqual(wanted);
          expect(pdus.filter((p) => opcodeOf(p.bhs) === Op.Reject).length).toBe(count - wanted.length);
        } else {
          // Until the bug below is fixed: answers may be missing, but those that come are for real pings, in order.
          let at = 0;
          for (const itt of answered) {
            while (at < wanted.length && wanted[at] !== itt) at++;
            expect(at < wanted.length, `a NOP-In for ITT ${itt}, which no ping carried (or out of order)`).toBe(true);
            at++;
          }
        }
      }
      a.client.end();
      env.board.runFor(200_000);
      after("NOP-Out flood", { pdus, closedByTarget });
    }), fcParams(300, 6));
  });

  it("frees every slot, keeps every byte the legitimate session wrote, and gives all memory back", () => {
    finishBoard();
    const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
    process.stdout.write(`hostile initiators: ${attacks} attacks (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}) on ${boards} boards in ${seconds} s wall; ${rfcSpecific} answers checked exactly against RFC 7143\n`);
    expect(attacks).toBeGreaterThanOrEqual(4000);
  });
});
