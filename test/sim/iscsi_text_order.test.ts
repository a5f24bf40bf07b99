// Two pieces of RFC 7143 that a single-connection, large-buffer initiator never exercises, with the project's own
// initiator over the board's loopback network (libiscsi 1.19 cannot follow a continued Text Response):
// - Text continuation (§6.2, §11.10, §11.11): a SendTargets answer longer than the initiator's
//   MaxRecvDataSegmentLength comes in pieces (C=1, F=0, a TTT; the initiator asks for each next one with an empty
//   request carrying it), identical once joined to the one-piece answer; keys split over C=1 requests are joined;
//   a new request resets the exchange; a wrong TTT, C with F, data where an empty request is due and keys beyond
//   the target's bound get their Reject.
// - CmdSN ordering across the connections of one session (MC/S, §4.2.2.1): a command that arrives before an
//   earlier CmdSN waits for it, whatever connection either comes on; ExpCmdSN advances over contiguous runs only;
//   a gap left by a connection that logs out is given up; a connection that fails fails the session (ERL 0): its
//   other connections are dropped, every task ends, nothing queued runs, every task and staging slot comes back,
//   and the initiator port logs in again.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { dataOutPdu, Initiator, lunField, Op, opcodeOf, parseKeys, pdu, type Pdu, textKeys, u32At, seeded, write10Command } from "../support/iscsi_initiator.ts";

const PREFIX = "iqn.2026-11.org.wasm-iop:";
const LONG = (n: number) => `${PREFIX}${"long-name-".repeat(19)}${n}`; // 216 bytes: one entry fills half of 512
const TARGETS = [
  { name: `${PREFIX}first`, luns: [0, 1] },
  ...[1, 2, 3, 4, 5, 6].map((n) => ({ name: LONG(n), luns: [0] })),
  { name: `${PREFIX}last`, luns: [1] },
];
const SEND_TARGETS_ALL = textKeys([["SendTargets", "All"]]);

function reject(i: Initiator): Pdu {
  const p = i.receive();
  expect(opcodeOf(p.bhs), "a Reject").toBe(Op.Reject);
  i.status(p);
  return p;
}

/** No PDU at all comes on `i` while the board runs for `ns`. */
function silent(env: IscsiEnv, i: Initiator, ns = 5_000_000): void {
  env.board.runFor(ns);
  const got: string[] = [];
  for (let p = i.reader.next(); p !== undefined; p = i.reader.next()) got.push(`opcode 0x${opcodeOf(p.bhs).toString(16)} byte2 0x${p.bhs[2]!.toString(16)} byte3 0x${p.bhs[3]!.toString(16)}`);
  expect(got, "nothing from the target").toEqual([]);
}

describe("iSCSI Text continuation: SendTargets in pieces, keys over C=1 requests", () => {
  let env: IscsiEnv;
  let whole: Uint8Array; // SendTargets=All in one Text Response
  let number = 0;
  const discovery = (maxRecv: number): Initiator => {
    number += 1;
    const i = new Initiator(env.board, env.network, { targetName: "", discovery: true, isid: 0x100 + number, initiatorName: `${PREFIX}discover-${number}` });
    i.login([["MaxRecvDataSegmentLength", String(maxRecv)]]);
    return i;
  };

  beforeAll(() => {
    env = bootIscsiBoard({ targets: TARGETS });
    const i = discovery(65536);
    const { data, responses } = i.text(SEND_TARGETS_ALL);
    expect(responses.length).toBe(1);
    whole = data;
  });

  it("answers SendTargets=All in one Text Response when it fits, every target listed", () => {
    const names = new TextDecoder().decode(whole).split("\0").filter((l) => l.startsWith("TargetName=")).map((l) => l.slice(11));
    expect(names).toEqual(TARGETS.map((t) => t.name));
    expect(whole.length).toBeGreaterThan(1500);
  });

  it("sends it in pieces to an initiator declaring MaxRecvDataSegmentLength 512: C=1, F=0, one TTT, joined identical", () => {
    const i = discovery(512);
    const { data, responses } = i.text(SEND_TARGETS_ALL);
    expect(responses.length).toBeGreaterThanOrEqual(4);
    const ttts = new Set(responses.slice(0, -1).map((p) => u32At(p.bhs, 20)));
    expect(ttts.size).toBe(1);
    expect([...ttts][0]).not.toBe(0xffff_ffff);
    for (const p of responses.slice(0, -1)) {
      expect(p.bhs[1]! & 0xc0, "C=1, F=0 on every piece but the last").toBe(0x40);
      expect(p.data.length).toBeGreaterThan(0);
      expect(p.data.length).toBeLessThanOrEqual(512);
      expect(p.data[p.data.length - 1], "a piece ends with a whole pair").toBe(0);
    }
    const last = responses[responses.length - 1]!;
    expect(last.bhs[1]! & 0xc0).toBe(0x80);
    expect(u32At(last.bhs, 20)).toBe(0xffff_ffff);
    expect(Buffer.compare(data, whole)).toBe(0);
    const entries = responses.map((p) => new TextDecoder().decode(p.data).split("\0").filter((l) => l.startsWith("TargetName=")).length);
    process.stdout.write(`SendTargets=All, ${whole.length} bytes: ${responses.length} Text Responses for MaxRecvDataSegmentLength 512, targets per piece ${entries.join(" ")}\n`);
  });

  it("joins keys split over Text Requests with C=1, acknowledging each with an empty response and a TTT", () => {
    const i = discovery(65536);
    const { data, responses } = i.text(textKeys([["SendTargets", "All"], ["X-org.example.unknown", "1"]]), 5);
    expect(responses.length).toBe(Math.ceil((SEND_TARGETS_ALL.length + 24) / 5)); // acknowledgements, then one answer
    expect(parseKeys(data).get("X-org.example.unknown")).toBe("NotUnderstood");
    expect(Buffer.compare(data.subarray(data.length - whole.length), whole)).toBe(0);
  });

  it("restarts when a new request (TTT 0xffffffff) comes while an answer continues; the old TTT is then refused", () => {
    const i = discovery(512);
    const itt = i.nextItt();
    i.send(i.textRequest(itt, 0xffff_ffff, 0x80, SEND_TARGETS_ALL));
    const first = i.textResponse(itt);
    expect(first.bhs[1]! & 0xc0).toBe(0x40);
    const oldTtt = u32At(first.bhs, 20);
    // A new exchange from the start: the same answer in full.
    const { data } = i.text(SEND_TARGETS_ALL);
    expect(Buffer.compare(data, whole)).toBe(0);
    i.send(i.textRequest(itt, oldTtt, 0x80));
    expect(reject(i).bhs[2]).toBe(0x09); // invalid PDU field
  });

  it("refuses a wrong TTT (Reject, invalid PDU field) and keeps the exchange: the right TTT still continues it", () => {
    const i = discovery(512);
    const itt = i.nextItt();
    i.send(i.textRequest(itt, 0xffff_ffff, 0x80, SEND_TARGETS_ALL));
    const first = i.textResponse(itt);
    const ttt = u32At(first.bhs, 20);
    i.send(i.textRequest(itt, (ttt ^ 0x5a5a) >>> 0, 0x80));
    const r = reject(i);
    expect(r.bhs[2]).toBe(0x09);
    expect(u32At(r.data, 16), "the Reject carries the rejected header").toBe(itt);
    i.send(i.textRequest(itt + 1000, ttt, 0x80)); // the right TTT with another task's ITT
    expect(reject(i).bhs[2]).toBe(0x09);
    const parts = [first.data];
    for (let p = first; (p.bhs[1]! & 0x80) === 0;) {
      i.send(i.textRequest(itt, ttt, 0x80));
      p = i.textResponse(itt);
      parts.push(p.data);
    }
    expect(Buffer.compare(Buffer.concat(parts), whole)).toBe(0);
  });

  it("refuses C=1 with F=1 and data where the exchange wants an empty request (Reject, protocol error)", () => {
    const i = discovery(512);
    const itt = i.nextItt();
    i.send(i.textRequest(itt, 0xffff_ffff, 0xc0, SEND_TARGETS_ALL));
    expect(reject(i).bhs[2]).toBe(0x04);
    i.send(i.textRequest(itt, 0xffff_ffff, 0x80, SEND_TARGETS_ALL));
    const first = i.textResponse(itt);
    i.send(i.textRequest(itt, u32At(first.bhs, 20), 0x80, textKeys([["SendTargets", "All"]])));
    expect(reject(i).bhs[2]).toBe(0x04);
    i.ping(); // the connection stays
  });

  it("refuses keys joined beyond 16 KiB (Reject, long operation) and answers a fresh request after", () => {
    const i = discovery(65536);
    const itt = i.nextItt();
    const chunk = textKeys([["X-org.example.filler", "y".repeat(4000)]]);
    let ttt = 0xffff_ffff;
    let refused: Pdu | undefined;
    for (let n = 0; n < 6 && refused === undefined; n++) {
      i.send(i.textRequest(itt, ttt, 0x40, chunk));
      const p = i.receive();
      if (opcodeOf(p.bhs) === Op.Reject) {
        i.status(p);
        refused = p;
        expect(n, "4 pieces of 4 KiB fit").toBe(4);
      } else {
        i.status(p);
        expect(opcodeOf(p.bhs)).toBe(Op.TextResponse);
        ttt = u32At(p.bhs, 20);
      }
    }
    expect(refused?.bhs[2]).toBe(0x0a);
    expect(Buffer.compare(i.text(SEND_TARGETS_ALL).data, whole)).toBe(0);
  });
});

// ---- CmdSN order across the connections of one session ----

const LUN = 1;

const writeCommand = (i: Initiator, itt: number, cmdSn: number, lba: number, data: Uint8Array, immediate: number): Uint8Array =>
  write10Command(i, itt, cmdSn, LUN, lba, data, immediate);

function unsolicitedDataOut(i: Initiator, itt: number, data: Uint8Array, offset: number): Uint8Array {
  return dataOutPdu({ final: true, lun: lunField(LUN), itt, ttt: 0xffff_ffff, expStatSn: i.expStatSn, dataSn: 0, offset }, data.subarray(offset));
}

function good(i: Initiator, itt: number): Pdu {
  const p = i.receive();
  expect(opcodeOf(p.bhs)).toBe(Op.ScsiResponse);
  expect(u32At(p.bhs, 16)).toBe(itt);
  i.status(p);
  expect(p.bhs[3], "GOOD").toBe(0);
  return p;
}

describe("iSCSI CmdSN order across the connections of one session (MC/S)", () => {
  let env: IscsiEnv;
  let a: Initiator;
  let b: Initiator;
  let cmdSn: number; // the session's next CmdSN, whichever connection sends it
  const name = `${PREFIX}mcs`;
  const join = (cid: number): Initiator => {
    const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: name, isid: 0x4d43, tsih: a.tsih, cid });
    i.cmdSn = cmdSn;
    i.login();
    return i;
  };
  /** Reads on `i` with the session's next CmdSN. */
  const read = (i: Initiator, lba: number, blocks: number): Uint8Array => {
    i.cmdSn = cmdSn;
    const data = i.read(LUN, lba, blocks);
    cmdSn = i.cmdSn;
    return data;
  };

  beforeAll(() => {
    env = bootIscsiBoard({ diskMiB: 16 });
    a = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: name, isid: 0x4d43 });
    a.login([["MaxConnections", "2"], ["ImmediateData", "Yes"], ["InitialR2T", "No"]]);
    a.clearUnitAttention(LUN);
    cmdSn = a.cmdSn;
    b = join(1);
  });

  it("refuses a third connection beyond the negotiated MaxConnections=2", () => {
    const c = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: name, isid: 0x4d43, tsih: a.tsih, cid: 2 });
    expect(() => c.login()).toThrow(/status 0x206/); // too many connections
  });

  it("holds a WRITE that comes before the one with the earlier CmdSN, and runs both in CmdSN order", () => {
    const lba = 2048;
    const early = seeded("n", 8192); // CmdSN n, on A, sent last
    const late = seeded("n+1", 8192); // CmdSN n+1, on B, sent first: immediate data and an unsolicited Data-Out
    const n = cmdSn;
    const ittB = b.nextItt();
    b.send(writeCommand(b, ittB, n + 1, lba, late, 4096));
    b.send(unsolicitedDataOut(b, ittB, late, 4096));
    silent(env, b); // it waits for CmdSN n
    const ittA = a.nextItt();
    a.send(writeCommand(a, ittA, n, lba, early, 8192));
    const answerA = good(a, ittA);
    const answerB = good(b, ittB);
    expect(u32At(answerA.bhs, 28) >>> 0, "ExpCmdSN past both once the run is contiguous").toBe((n + 2) >>> 0);
    expect(u32At(answerB.bhs, 28) >>> 0).toBe((n + 2) >>> 0);
    cmdSn = n + 2;
    expect(Buffer.compare(read(a, lba, 16), late), "the data of CmdSN n+1, the later command").toBe(0);
    expect(Buffer.compare(read(b, lba, 16), late)).toBe(0);
  });

  it("delivers a run of interleaved out-of-order CmdSNs from both connections in CmdSN order", () => {
    const n = cmdSn;
    const lba = 4096;
    // CmdSN n+k writes pattern k to lba; they come in the order 3 (A), 1 (B), 2 (A), 0 (B): the last is CmdSN n+3.
    const pattern = [0, 1, 2, 3].map((k) => seeded(`run-${k}`, 4096));
    const order: [Initiator, number][] = [[a, 3], [b, 1], [a, 2], [b, 0]];
    const itts = new Map<number, [Initiator, number]>();
    for (const [i, k] of order) {
      const itt = i.nextItt();
      itts.set(k, [i, itt]);
      i.send(writeCommand(i, itt, n + k, lba, pattern[k]!, 4096));
      if (k !== 0) silent(env, i, 1_000_000);
    }
    for (const k of [0, 1, 2, 3]) {
      const [i, itt] = itts.get(k)!;
      // Each connection answers its own commands in the order the SCSI target finished them: CmdSN order here.
      good(i, itt);
    }
    cmdSn = n + 4;
    expect(Buffer.compare(read(a, lba, 8), pattern[3]!)).toBe(0);
  });

  it("drops a command outside [ExpCmdSN, MaxCmdSN] and a duplicate CmdSN without an answer", () => {
    const n = cmdSn;
    const itt = a.nextItt();
    a.send(writeCommand(a, itt, n + 64, 6000, seeded("far", 4096), 4096)); // past MaxCmdSN = ExpCmdSN + 63
    a.send(writeCommand(a, a.nextItt(), n - 1, 6000, seeded("old", 4096), 4096)); // already taken
    silent(env, a);
    const waiting = seeded("dup-1", 4096);
    const ittWaiting = b.nextItt();
    b.send(writeCommand(b, ittWaiting, n + 1, 6000, waiting, 4096));
    b.send(writeCommand(b, b.nextItt(), n + 1, 6000, seeded("dup-2", 4096), 4096)); // the same CmdSN again
    silent(env, b);
    const ittFirst = a.nextItt();
    a.send(writeCommand(a, ittFirst, n, 6100, seeded("fill", 4096), 4096));
    good(a, ittFirst);
    good(b, ittWaiting);
    silent(env, b, 1_000_000); // the duplicate got nothing
    cmdSn = n + 2;
    expect(Buffer.compare(read(a, 6000, 8), waiting)).toBe(0);
  });

  it("gives up a gap when the connection that owed it logs out: the commands waiting behind it run", () => {
    const n = cmdSn;
    const data = seeded("after-gap", 8192);
    const itt = a.nextItt();
    a.send(writeCommand(a, itt, n + 1, 8000, data, 4096)); // CmdSN n is never sent (it was B's to send)
    a.send(unsolicitedDataOut(a, itt, data, 4096));
    silent(env, a);
    // B logs out its own connection (immediate, reason 1: close the connection): a clean end, not a failure.
    const ittLogout = b.nextItt();
    b.send(pdu((bhs, v) => {
      bhs[0] = 0x40 | Op.LogoutRequest;
      bhs[1] = 0x80 | 1;
      v.setUint32(16, ittLogout);
      v.setUint16(20, 1); // CID
      v.setUint32(24, n + 2);
      v.setUint32(28, b.expStatSn);
    }));
    expect(opcodeOf(b.receive().bhs)).toBe(Op.LogoutResponse);
    const answer = good(a, itt);
    expect(u32At(answer.bhs, 28) >>> 0).toBe((n + 2) >>> 0);
    cmdSn = n + 2;
    expect(Buffer.compare(read(a, 8000, 16), data)).toBe(0);
  });

  it("fails the whole session when one connection fails (ERL 0): every task ends, nothing runs after, a new login works", () => {
    const c = join(3);
    const n = cmdSn;
    // In flight: CmdSN n, a WRITE on A waiting for the Data-Out its R2T asks for (never sent).
    const ittFlight = a.nextItt();
    a.send(pdu((bhs, v) => {
      bhs[0] = Op.ScsiCommand;
      bhs[1] = 0x80 | 0x20 | 1;
      bhs.set(lunField(LUN), 8);
      v.setUint32(16, ittFlight);
      v.setUint32(20, 4096);
      v.setUint32(24, n);
      v.setUint32(28, a.expStatSn);
      bhs[32] = 0x2a;
      v.setUint32(34, 12_000);
      v.setUint16(39, 8);
    }));
    const r2t = a.receive();
    expect(opcodeOf(r2t.bhs)).toBe(Op.R2t);
    // Queued behind the gap at n+1: three commands on C (two with unsolicited data in staging slots), one on A.
    for (let k = 2; k <= 4; k++) {
      const data = seeded(`lost-${k}`, 8192);
      const itt = c.nextItt();
      c.send(writeCommand(c, itt, n + k, 12_000 + k * 16, data, k === 4 ? 8192 : 4096));
      if (k !== 4) c.send(unsolicitedDataOut(c, itt, data, 4096));
    }
    a.send(writeCommand(a, a.nextItt(), n + 5, 12_000 + 5 * 16, seeded("lost-5", 4096), 4096));
    silent(env, c);
    c.client.end(); // C fails: at ERL 0 the session fails with it
    env.board.runFor(5_000_000);
    expect(a.client.closed, "the target dropped the session's other connection (old code: it stayed)").toBe(true);
    expect(env.console.some((l) => l.includes(" fails with connection ") && l.includes("(ERL 0)"))).toBe(true);
    const ended = env.console.filter((l) => l.includes("iscsi: connection") && l.includes(" ends: "));
    expect(ended.slice(-2).some((l) => / 3 waiting commands ended;/.test(l))).toBe(true);
    // The same initiator port logs in again (a new session: TSIH 0); the gap's CmdSN n+1 never comes, and nothing
    // of the old session ran: the in-flight write had no data, the queued ones never reached the disk.
    const again = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: name, isid: 0x4d43 });
    again.login();
    // SAM-5, I_T nexus loss: the port's new nexus hears I_T NEXUS LOSS OCCURRED on the LUN it had heard POWER ON on.
    expect(again.testUnitReady(LUN)).toEqual({ status: 2, sense: " sense 06/29/07" });
    again.clearUnitAttention(LUN);
    for (let k = 0; k <= 5; k++) expect(Buffer.compare(again.read(LUN, 12_000 + k * 16, 16), new Uint8Array(8192)), `CmdSN n+${k}'s blocks`).toBe(0);
    again.logout();
    env.board.runFor(50_000_000);
    // A fresh session's connection end reports the pools at quiescence: all 256 tasks, all 16 staging slots.
    const d = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}last`, isid: 9 });
    d.login();
    d.logout();
    env.board.runFor(5_000_000);
    const last = env.console.filter((l) => l.includes("iscsi: connection") && l.includes(" ends: ")).pop();
    expect(last).toMatch(/tasks free 256, staging slots free 16/);
    expect(env.board.panics).toEqual([]);
  });

  it("closes every connection of the session on a Logout for the session (reason 0), not only its own", () => {
    a = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: name, isid: 0x4d44 });
    a.login([["MaxConnections", "2"]]);
    cmdSn = a.cmdSn;
    const other = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: name, isid: 0x4d44, tsih: a.tsih, cid: 1 });
    other.cmdSn = cmdSn;
    other.login();
    a.logout(); // reason 0
    env.board.runFor(5_000_000);
    expect(a.client.closed).toBe(true);
    expect(other.client.closed, "the session's other connection closed too (old code: it stayed)").toBe(true);
    expect(env.board.panics).toEqual([]);
  });
});
