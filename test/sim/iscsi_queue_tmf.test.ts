// The session's CmdSN reorder queue and what acts on it (RFC 7143), with the project's own initiator over the
// board's loopback network, one connection sending its CmdSNs out of order on purpose:
// - Task management (§11.5.1, "Function"): ABORT TASK of a command waiting behind a gap ends it there (it never
//   writes) and answers FUNCTION COMPLETE; ABORT TASK naming a CmdSN that has not come counts that CmdSN as received
//   (FUNCTION COMPLETE; the commands behind it run; the command itself, if it comes, is dropped); ABORT TASK SET,
//   CLEAR TASK SET and LOGICAL UNIT RESET sent immediate with a CmdSN ahead of ExpCmdSN wait until the commands
//   before it have come, abort those of their LUN (none of them writes), spare the other LUN, then answer.
// - Command numbering (§4.2.2.1): non-immediate Text, NOP-Out and Logout requests are delivered in CmdSN order
//   behind a gap, like SCSI commands; immediate ones act at once.
// Each case checks by effect: a write that must not run leaves its blocks zero on a fresh disk.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { Initiator, lunField, Op, opcodeOf, pdu, type Pdu, textKeys, u32At, seeded, write10Command } from "../support/iscsi_initiator.ts";

const PREFIX = "iqn.2026-11.org.wasm-iop:";
const ABORT_TASK = 1;
const ABORT_TASK_SET = 2;
const CLEAR_TASK_SET = 4;
const LOGICAL_UNIT_RESET = 5;


const write = (i: Initiator, itt: number, cmdSn: number, lun: number, lba: number, data: Uint8Array): Uint8Array =>
  write10Command(i, itt, cmdSn, lun, lba, data);

/** A TMF request, immediate unless `numbered`. */
function tmf(i: Initiator, itt: number, fn: number, lun: number, cmdSn: number, rtt = 0xffff_ffff, refCmdSn = 0, numbered = false): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = (numbered ? 0 : 0x40) | Op.TmfRequest;
    bhs[1] = 0x80 | fn;
    bhs.set(lunField(lun), 8);
    v.setUint32(16, itt);
    v.setUint32(20, rtt);
    v.setUint32(24, cmdSn);
    v.setUint32(28, i.expStatSn);
    v.setUint32(32, refCmdSn);
  });
}

function nopOut(i: Initiator, itt: number, cmdSn: number, data: Uint8Array, immediate = false): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = (immediate ? 0x40 : 0) | Op.NopOut;
    bhs[1] = 0x80;
    v.setUint32(16, itt);
    v.setUint32(20, 0xffff_ffff);
    v.setUint32(24, cmdSn);
    v.setUint32(28, i.expStatSn);
  }, data);
}

function text(i: Initiator, itt: number, cmdSn: number, keys: Uint8Array): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = Op.TextRequest;
    bhs[1] = 0x80;
    v.setUint32(16, itt);
    v.setUint32(20, 0xffff_ffff);
    v.setUint32(24, cmdSn);
    v.setUint32(28, i.expStatSn);
  }, keys);
}

function logout(i: Initiator, itt: number, cmdSn: number, reason: number): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = Op.LogoutRequest;
    bhs[1] = 0x80 | reason;
    v.setUint32(16, itt);
    v.setUint32(24, cmdSn);
    v.setUint32(28, i.expStatSn);
  });
}

/** No PDU at all comes on `i` while the board runs for `ns`. */
function silent(env: IscsiEnv, i: Initiator, ns = 5_000_000): void {
  env.board.runFor(ns);
  const got: string[] = [];
  for (let p = i.reader.next(); p !== undefined; p = i.reader.next()) got.push(`opcode 0x${opcodeOf(p.bhs).toString(16)} ITT 0x${u32At(p.bhs, 16).toString(16)}`);
  expect(got, "nothing from the target").toEqual([]);
}

/** The next PDU: of `op`, for `itt`. */
function next(i: Initiator, op: number, itt: number): Pdu {
  const p = i.receive();
  expect(`opcode 0x${opcodeOf(p.bhs).toString(16)} ITT ${u32At(p.bhs, 16)}`).toBe(`opcode 0x${op.toString(16)} ITT ${itt}`);
  i.status(p);
  return p;
}

function good(i: Initiator, itt: number): Pdu {
  const p = next(i, Op.ScsiResponse, itt);
  expect(p.bhs[3], "GOOD").toBe(0);
  return p;
}

const zeros = (bytes: number) => new Uint8Array(bytes);

/** The next `count` PDUs, whatever their order, by opcode (one each). */
function inAnyOrder(i: Initiator, count: number): Map<number, Pdu> {
  const got = new Map<number, Pdu>();
  for (let k = 0; k < count; k++) {
    const p = i.receive();
    i.status(p);
    got.set(opcodeOf(p.bhs), p);
  }
  expect(got.size, "one PDU of each opcode").toBe(count);
  return got;
}

describe("iSCSI task management of commands waiting in the CmdSN reorder queue", () => {
  let env: IscsiEnv;
  let i: Initiator;
  let lba = 1000;
  const fresh = (): number => (lba += 64);

  beforeAll(() => {
    env = bootIscsiBoard({ diskMiB: 16 });
    i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}tmf-queue`, isid: 0x7a });
    i.login([["ImmediateData", "Yes"]]);
    i.clearUnitAttention(0);
    i.clearUnitAttention(1);
  });

  it("ABORT TASK of a command waiting behind a gap: FUNCTION COMPLETE at once, and it never runs", () => {
    const n = i.cmdSn;
    const queued = fresh();
    const filler = fresh();
    const ittQueued = i.nextItt();
    i.send(write(i, ittQueued, n + 1, 1, queued, seeded("aborted", 4096)));
    silent(env, i); // it waits for CmdSN n
    const ittTmf = i.nextItt();
    i.send(tmf(i, ittTmf, ABORT_TASK, 1, n + 2, ittQueued, n + 1));
    expect(next(i, Op.TmfResponse, ittTmf).bhs[2], "FUNCTION COMPLETE (old code: 1, task does not exist)").toBe(0);
    const ittFill = i.nextItt();
    i.send(write(i, ittFill, n, 1, filler, seeded("filler", 4096)));
    expect(u32At(good(i, ittFill).bhs, 28) >>> 0, "the aborted command's CmdSN still counts: ExpCmdSN past it").toBe((n + 2) >>> 0);
    silent(env, i); // no answer for the aborted command
    i.cmdSn = n + 2;
    expect(Buffer.compare(i.read(1, queued, 8), zeros(4096)), "the aborted write never ran").toBe(0);
    expect(Buffer.compare(i.read(1, filler, 8), seeded("filler", 4096))).toBe(0);
  });

  it("ABORT TASK of a CmdSN that has not come: counted as received, FUNCTION COMPLETE; the commands behind it run; it is dropped if it comes", () => {
    const n = i.cmdSn;
    const behind = fresh();
    const late = fresh();
    const ittBehind = i.nextItt();
    i.send(write(i, ittBehind, n + 1, 1, behind, seeded("behind", 4096)));
    silent(env, i);
    const ittLate = i.nextItt();
    const ittTmf = i.nextItt();
    i.send(tmf(i, ittTmf, ABORT_TASK, 1, n + 2, ittLate, n));
    expect(next(i, Op.TmfResponse, ittTmf).bhs[2], "FUNCTION COMPLETE (old code: 1, task does not exist)").toBe(0);
    expect(u32At(good(i, ittBehind).bhs, 28) >>> 0, "the gap is filled: CmdSN n+1 ran").toBe((n + 2) >>> 0);
    i.send(write(i, ittLate, n, 1, late, seeded("late", 4096))); // the aborted command, late: a duplicate now
    silent(env, i);
    i.cmdSn = n + 2;
    expect(Buffer.compare(i.read(1, late, 8), zeros(4096))).toBe(0);
    expect(Buffer.compare(i.read(1, behind, 8), seeded("behind", 4096))).toBe(0);
  });

  for (const [name, fn] of [["ABORT TASK SET", ABORT_TASK_SET], ["CLEAR TASK SET", CLEAR_TASK_SET], ["LOGICAL UNIT RESET", LOGICAL_UNIT_RESET]] as const) {
    it(`${name} ahead of a gap waits for it, aborts the waiting commands of its LUN before it, spares the other LUN's`, () => {
      const n = i.cmdSn;
      const queued = fresh();
      const gap = fresh();
      const other = fresh();
      const ittQueued = i.nextItt();
      const ittOther = i.nextItt();
      i.send(write(i, ittQueued, n + 1, 1, queued, seeded(`${name} queued`, 4096)));
      i.send(write(i, ittOther, n + 2, 0, other, seeded(`${name} other`, 4096))); // LUN 0: not in the TMF's scope
      silent(env, i);
      const ittTmf = i.nextItt();
      i.send(tmf(i, ittTmf, fn, 1, n + 3));
      silent(env, i); // the TMF waits for CmdSN n, which it affects (old code: answered at once)
      const ittGap = i.nextItt();
      i.send(write(i, ittGap, n, 1, gap, seeded(`${name} gap`, 4096)));
      // CmdSN n and n+1 (LUN 1) end unanswered; n+2 (LUN 0) runs; then the TMF answers.
      const byOp = inAnyOrder(i, 2);
      expect(u32At(byOp.get(Op.ScsiResponse)!.bhs, 16), "only the other LUN's command answers").toBe(ittOther);
      expect(byOp.get(Op.ScsiResponse)!.bhs[3]).toBe(0);
      expect(byOp.get(Op.TmfResponse)!.bhs[2], "FUNCTION COMPLETE").toBe(0);
      expect(u32At(byOp.get(Op.TmfResponse)!.bhs, 28) >>> 0, "ExpCmdSN past the aborted commands").toBe((n + 3) >>> 0);
      silent(env, i);
      i.cmdSn = n + 3;
      if (fn === LOGICAL_UNIT_RESET) i.clearUnitAttention(1);
      expect(Buffer.compare(i.read(1, queued, 8), zeros(4096)), "the waiting command never ran").toBe(0);
      expect(Buffer.compare(i.read(1, gap, 8), zeros(4096)), "the gap's command, come after the TMF, never ran").toBe(0);
      expect(Buffer.compare(i.read(0, other, 8), seeded(`${name} other`, 4096))).toBe(0);
    });
  }

  it("a non-immediate ABORT TASK waits for its CmdSN like a command, then aborts the one it names", () => {
    const n = i.cmdSn;
    const target = fresh();
    const ittTarget = i.nextItt();
    const ittTmf = i.nextItt();
    i.send(write(i, ittTarget, n + 2, 1, target, seeded("named", 4096))); // waits for n and n+1
    i.send(tmf(i, ittTmf, ABORT_TASK, 1, n + 1, ittTarget, n + 2, true));
    silent(env, i);
    const ittFirst = i.nextItt();
    i.send(write(i, ittFirst, n, 1, fresh(), seeded("first", 4096)));
    // The write goes to the SCSI target, then the TMF acts: answers may come in either order (StatSN orders them).
    const answers = inAnyOrder(i, 2);
    expect(u32At(answers.get(Op.ScsiResponse)!.bhs, 16)).toBe(ittFirst);
    expect(u32At(answers.get(Op.TmfResponse)!.bhs, 16)).toBe(ittTmf);
    expect(answers.get(Op.TmfResponse)!.bhs[2], "FUNCTION COMPLETE").toBe(0);
    silent(env, i);
    i.cmdSn = n + 3;
    expect(Buffer.compare(i.read(1, target, 8), zeros(4096))).toBe(0);
  });
});

describe("iSCSI Text, NOP-Out and Logout in CmdSN order behind a gap", () => {
  let env: IscsiEnv;
  let i: Initiator;

  beforeAll(() => {
    env = bootIscsiBoard({ diskMiB: 16 });
    i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}request-order`, isid: 0x7b });
    i.login([["ImmediateData", "Yes"]]);
    i.clearUnitAttention(1);
  });

  it("holds a Text and a NOP-Out until the CmdSN before them comes, then answers in CmdSN order; an immediate ping goes at once", () => {
    const n = i.cmdSn;
    const ittText = i.nextItt();
    const ittNop = i.nextItt();
    const ping = seeded("ping", 300);
    i.send(text(i, ittText, n + 1, textKeys([["MaxRecvDataSegmentLength", "65536"]])));
    i.send(nopOut(i, ittNop, n + 2, ping));
    silent(env, i); // both wait for CmdSN n (old code: answered at once)
    const ittNow = i.nextItt();
    i.send(nopOut(i, ittNow, n + 3, new Uint8Array(0), true)); // immediate: not numbered, answered now
    next(i, Op.NopIn, ittNow);
    const ittFirst = i.nextItt();
    i.send(write(i, ittFirst, n, 1, 4000, seeded("first", 4096)));
    // The write reaches the SCSI target first; the Text and the ping act right after it, in CmdSN order, while it
    // runs: their answers come in that order, the write's whenever it ends.
    const answers: Pdu[] = [i.receive(), i.receive(), i.receive()];
    answers.forEach((p) => i.status(p));
    const requests = answers.filter((p) => opcodeOf(p.bhs) !== Op.ScsiResponse);
    expect(requests.map((p) => `0x${opcodeOf(p.bhs).toString(16)} ${u32At(p.bhs, 16)}`)).toEqual([`0x24 ${ittText}`, `0x20 ${ittNop}`]);
    expect(u32At(answers.find((p) => opcodeOf(p.bhs) === Op.ScsiResponse)!.bhs, 16)).toBe(ittFirst);
    const textAnswer = requests[0]!;
    expect(textAnswer.bhs[1]! & 0x80, "F").toBe(0x80);
    const nopIn = requests[1]!;
    expect(Buffer.compare(nopIn.data, ping), "the held ping's data echoed").toBe(0);
    expect(u32At(nopIn.bhs, 28) >>> 0).toBe((n + 3) >>> 0);
    i.cmdSn = n + 3;
  });

  it("a held Text refused at its turn (wrong TTT): its Reject carries its own header, not the PDU that filled the gap", () => {
    const n = i.cmdSn;
    const ittText = i.nextItt();
    const held = pdu((bhs, v) => {
      bhs[0] = Op.TextRequest;
      bhs[1] = 0x80;
      v.setUint32(16, ittText);
      v.setUint32(20, 0x1234_5678); // a TTT this connection never gave: invalid PDU field (RFC 7143, Text Request)
      v.setUint32(24, n + 1);
      v.setUint32(28, i.expStatSn);
    });
    i.send(held);
    silent(env, i); // it waits for CmdSN n
    const ittFirst = i.nextItt();
    i.send(nopOut(i, ittFirst, n, new Uint8Array(0))); // fills the gap: the last header the connection received
    next(i, Op.NopIn, ittFirst);
    const reject = next(i, Op.Reject, 0xffff_ffff);
    expect(reject.bhs[2], "invalid PDU field").toBe(0x09);
    expect(Buffer.compare(reject.data.subarray(0, 48), held.subarray(0, 48)),
      "the Text Request's own 48-byte header (old code: the NOP-Out's)").toBe(0);
    i.cmdSn = n + 2;
    i.ping(); // the session goes on
  });

  it("holds a Logout until the CmdSN before it comes: the request before it is answered first, then the Logout Response", () => {
    const n = i.cmdSn;
    const ittLogout = i.nextItt();
    i.send(logout(i, ittLogout, n + 1, 0));
    silent(env, i);
    // The gap is filled by a numbered ping: answered before the Logout acts (a command still running when the
    // Logout acts would end with the connection, ERL 0, so a ping keeps the order visible).
    const ittFirst = i.nextItt();
    i.send(nopOut(i, ittFirst, n, new Uint8Array(0)));
    next(i, Op.NopIn, ittFirst);
    const answer = next(i, Op.LogoutResponse, ittLogout);
    expect(answer.bhs[2], "closed").toBe(0);
    env.board.runFor(5_000_000);
    expect(i.client.closed).toBe(true);
    // Every record and staging slot came back: a fresh session's end reports the pools whole.
    const d = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}check`, isid: 9 });
    d.login();
    d.logout();
    env.board.runFor(5_000_000);
    const last = env.console.filter((l) => l.includes("iscsi: connection") && l.includes(" ends: ")).pop();
    expect(last).toMatch(/tasks free 256, staging slots free 16/);
    expect(env.board.panics).toEqual([]);
  });
});
