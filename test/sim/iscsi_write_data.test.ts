// Write data over iSCSI as RFC 7143 allows it to come: solicited by R2Ts (several outstanding), as immediate data in
// the SCSI Command PDU, and as unsolicited Data-Out up to FirstBurstLength. A board serves iSCSI on its loopback
// network on the board clock; the test initiator negotiates each combination, writes seeded data of several sizes
// and reads it back byte for byte, and counts round trips (how often it had to wait for the target) and R2Ts. Then
// the RFC's answers to violations (more unsolicited data than FirstBurstLength, wrong offsets, F bit misuse:
// Reject, then the connection drops at ERL 0), and backpressure when every staging slot holds unsolicited data
// (BUSY, nothing lost).
import { beforeAll, describe, expect, it } from "vitest";
import { Prng } from "../../host/sim/prng.ts";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { dataOutPdu, Initiator, lunField, Op, opcodeOf, pdu, type Pdu, u32At } from "../support/iscsi_initiator.ts";

const LUN = 1; // on sp1: the data crosses the bus
type Keys = [string, string][];
const SOLICITED: Keys = [];
const IMMEDIATE: Keys = [["ImmediateData", "Yes"]];
const UNSOLICITED: Keys = [["ImmediateData", "Yes"], ["InitialR2T", "No"]];
const UNSOLICITED_ONLY: Keys = [["InitialR2T", "No"]];
const MANY_R2T: Keys = [["MaxOutstandingR2T", "8"]];
const ALL: Keys = [["ImmediateData", "Yes"], ["InitialR2T", "No"], ["MaxOutstandingR2T", "8"]];

let number = 0;
function session(env: IscsiEnv, keys: Keys): Initiator {
  number += 1;
  const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `iqn.2026-11.org.wasm-iop:writer-${number}`, isid: number });
  i.login(keys);
  i.clearUnitAttention(LUN);
  return i;
}

function seeded(label: string, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  new Prng(label).fill(data);
  return data;
}

function writeCommand(i: Initiator, itt: number, lba: number, bytes: number, final: boolean, immediate: Uint8Array = new Uint8Array(0)): Uint8Array {
  const cmdSn = i.cmdSn;
  i.cmdSn += 1;
  return pdu((bhs, v) => {
    bhs[0] = Op.ScsiCommand;
    bhs[1] = (final ? 0x80 : 0) | 0x20 | 1;
    bhs.set(lunField(LUN), 8);
    v.setUint32(16, itt);
    v.setUint32(20, bytes);
    v.setUint32(24, cmdSn);
    v.setUint32(28, i.expStatSn);
    bhs[32] = 0x2a;
    v.setUint32(34, lba);
    v.setUint16(39, bytes / 512);
  }, immediate);
}

function dataOut(i: Initiator, itt: number, ttt: number, dataSn: number, offset: number, data: Uint8Array, final: boolean): Uint8Array {
  return dataOutPdu({ final, lun: lunField(LUN), itt, ttt, expStatSn: i.expStatSn, dataSn, offset }, data);
}

/** Everything the target sends until it closes the connection (or 5 ms of board time pass). */
function untilClosed(env: IscsiEnv, i: Initiator): { pdus: Pdu[]; closed: boolean } {
  const pdus: Pdu[] = [];
  const until = env.board.clock.nowNs + 5_000_000;
  while (!i.client.closed && env.board.clock.nowNs < until) env.board.runFor(50_000);
  for (let p = i.reader.next(); p !== undefined; p = i.reader.next()) pdus.push(p);
  return { pdus, closed: i.client.closed };
}

describe("iSCSI write data: immediate, unsolicited and solicited", () => {
  let env: IscsiEnv;
  beforeAll(() => {
    env = bootIscsiBoard({ diskMiB: 64 });
  });

  it("negotiates ImmediateData (AND), InitialR2T (OR), FirstBurstLength and MaxOutstandingR2T (lowest) as RFC 7143 §13 says", () => {
    const offered = session(env, [["ImmediateData", "Yes"], ["InitialR2T", "No"], ["FirstBurstLength", "262144"], ["MaxOutstandingR2T", "8"]]);
    expect([offered.immediateData, offered.initialR2t, offered.firstBurst, offered.maxOutstandingR2t]).toEqual([true, false, 65536, 4]);
    const refused = session(env, [["ImmediateData", "No"], ["InitialR2T", "Yes"], ["FirstBurstLength", "8192"], ["MaxOutstandingR2T", "2"]]);
    expect([refused.immediateData, refused.initialR2t, refused.firstBurst, refused.maxOutstandingR2t]).toEqual([false, true, 8192, 2]);
  });

  const modes: [string, Keys, number][] = [
    ["solicited only", SOLICITED, 0], ["immediate data", IMMEDIATE, 0], ["immediate and unsolicited Data-Out", UNSOLICITED, 8192],
    ["unsolicited Data-Out only", UNSOLICITED_ONLY, 16384], ["8 outstanding R2Ts asked (4 given)", MANY_R2T, 0], ["all of them", ALL, 4096],
  ];
  for (const [name, keys, pieceBytes] of modes) {
    it(`writes and reads back 4 KiB to 1 MiB with ${name}`, () => {
      const i = session(env, keys);
      i.dataOutBytes = pieceBytes;
      let lba = 2048 + number * 4096;
      for (const bytes of [4096, 65536, 98304, 262144, 1048576 - 4096, 1048576]) {
        const data = seeded(`${name}/${bytes}`, bytes);
        i.write(LUN, lba, data);
        expect(Buffer.compare(i.read(LUN, lba, bytes / 512), data), `${bytes} bytes`).toBe(0);
        lba += bytes / 512;
      }
      const unsolicitedAllowed = keys.some(([k, v]) => k === "InitialR2T" && v === "No");
      const immediateAllowed = keys.some(([k, v]) => k === "ImmediateData" && v === "Yes");
      expect(i.counts.immediateBytes > 0).toBe(immediateAllowed);
      expect(i.counts.unsolicitedBytes > 0).toBe(unsolicitedAllowed && (pieceBytes > 0 || !immediateAllowed));
      i.logout();
      expect(env.board.panics).toEqual([]);
    });
  }

  it("takes fewer round trips: one for a write within FirstBurstLength, two for 1 MiB with 4 outstanding R2Ts", () => {
    const trips: Record<string, { waits: number; r2ts: number }> = {};
    for (const bytes of [65536, 1 << 20]) {
      for (const [name, keys] of [["solicited, 1 R2T", SOLICITED], ["immediate + unsolicited", UNSOLICITED], ["4 R2Ts", MANY_R2T], ["all", ALL]] as const) {
        const i = session(env, keys);
        const before = { ...i.counts };
        i.write(LUN, 24_000, seeded(name, bytes));
        trips[`${bytes / 1024} KiB, ${name}`] = { waits: i.counts.waits - before.waits, r2ts: i.counts.r2ts - before.r2ts };
        i.logout();
      }
    }
    process.stdout.write(`WRITE(10) round trips (MaxBurstLength 256 KiB, FirstBurstLength 64 KiB): ${JSON.stringify(trips)}\n`);
    // Solicited: a trip per R2T (each answered before the next is sent), and one for the status.
    expect(trips["64 KiB, solicited, 1 R2T"]).toEqual({ waits: 2, r2ts: 1 });
    expect(trips["64 KiB, immediate + unsolicited"]).toEqual({ waits: 1, r2ts: 0 });
    expect(trips["1024 KiB, solicited, 1 R2T"]).toEqual({ waits: 5, r2ts: 4 });
    // 64 KiB unsolicited leave 960 KiB: still 4 bursts of at most 256 KiB, one at a time.
    expect(trips["1024 KiB, immediate + unsolicited"]).toEqual({ waits: 5, r2ts: 4 });
    // Four R2Ts at once: one trip for all of them, one for the status.
    expect(trips["1024 KiB, 4 R2Ts"]).toEqual({ waits: 2, r2ts: 4 });
    expect(trips["1024 KiB, all"]).toEqual({ waits: 2, r2ts: 4 });
  });

  it("never has more R2Ts outstanding than MaxOutstandingR2T, each with its own R2TSN, TTT and window", () => {
    const i = session(env, [["MaxOutstandingR2T", "3"]]);
    const itt = 0x5151;
    i.send(writeCommand(i, itt, 30_000, 1 << 20, true));
    const r2ts: Pdu[] = [];
    env.board.runFor(2_000_000);
    for (let p = i.reader.next(); p !== undefined; p = i.reader.next()) r2ts.push(p);
    expect(r2ts.map((p) => opcodeOf(p.bhs))).toEqual([Op.R2t, Op.R2t, Op.R2t]);
    expect(r2ts.map((p) => [u32At(p.bhs, 36), u32At(p.bhs, 40), u32At(p.bhs, 44)])).toEqual([[0, 0, 262144], [1, 262144, 262144], [2, 524288, 262144]]);
    expect(new Set(r2ts.map((p) => u32At(p.bhs, 20))).size).toBe(3);
    // Answering the first lets the fourth go.
    for (let n = 0; n < 4; n++) i.send(dataOut(i, itt, u32At(r2ts[0]!.bhs, 20), n, n * 65536, new Uint8Array(65536), n === 3));
    env.board.runFor(2_000_000);
    const fourth = i.reader.next();
    expect(fourth === undefined ? undefined : [opcodeOf(fourth.bhs), u32At(fourth.bhs, 36), u32At(fourth.bhs, 40)]).toEqual([Op.R2t, 3, 786432]);
    expect(i.reader.next()).toBeUndefined();
  });

  const violations: [string, Keys, (i: Initiator) => Uint8Array[]][] = [
    ["immediate data beyond FirstBurstLength", [["ImmediateData", "Yes"], ["FirstBurstLength", "4096"]],
      (i) => [writeCommand(i, 9, 100, 65536, true, new Uint8Array(8192))]],
    ["unsolicited Data-Out where InitialR2T=Yes", IMMEDIATE,
      (i) => [writeCommand(i, 9, 100, 65536, true, new Uint8Array(4096)), dataOut(i, 9, 0xffff_ffff, 0, 4096, new Uint8Array(4096), true)]],
    ["unsolicited Data-Out at the wrong offset", UNSOLICITED,
      (i) => [writeCommand(i, 9, 100, 65536, false, new Uint8Array(4096)), dataOut(i, 9, 0xffff_ffff, 0, 8192, new Uint8Array(4096), true)]],
    ["unsolicited Data-Out past FirstBurstLength", UNSOLICITED,
      (i) => [writeCommand(i, 9, 100, 262144, false, new Uint8Array(4096)), dataOut(i, 9, 0xffff_ffff, 0, 4096, new Uint8Array(65536), true)]],
    ["the last unsolicited Data-Out of a full first burst without F", UNSOLICITED,
      (i) => [writeCommand(i, 9, 100, 262144, false, new Uint8Array(4096)), dataOut(i, 9, 0xffff_ffff, 0, 4096, new Uint8Array(61440), false)]],
    ["a command with F=0 where InitialR2T=Yes", IMMEDIATE, (i) => [writeCommand(i, 9, 100, 65536, false, new Uint8Array(4096))]],
  ];
  for (const [name, keys, attack] of violations) {
    it(`answers ${name} with a Reject (protocol error), then drops the connection (ERL 0)`, () => {
      const i = session(env, keys);
      for (const bytes of attack(i)) i.send(bytes);
      const out = untilClosed(env, i);
      expect(out.pdus.map((p) => [opcodeOf(p.bhs), p.bhs[2]]).filter(([op]) => op !== Op.R2t)).toEqual([[Op.Reject, 0x04]]);
      expect(out.closed).toBe(true);
      i.client.end();
      expect(env.board.panics).toEqual([]);
    });
  }

  it("answers an F bit set before the end of an R2T's burst with a Reject and a drop", () => {
    const i = session(env, SOLICITED);
    i.send(writeCommand(i, 7, 100, 65536, true));
    const r2t = i.receive();
    expect(opcodeOf(r2t.bhs)).toBe(Op.R2t);
    i.send(dataOut(i, 7, u32At(r2t.bhs, 20), 0, 0, new Uint8Array(8192), true));
    const out = untilClosed(env, i);
    expect(out.pdus.map((p) => [opcodeOf(p.bhs), p.bhs[2]])).toEqual([[Op.Reject, 0x04]]);
    expect(out.closed).toBe(true);
    i.client.end();
  });

  it("answers BUSY when every staging slot holds unsolicited data, and loses nothing of the commands it took", () => {
    const i = session(env, UNSOLICITED);
    const commands = 20; // more than the 16 staging slots
    const data = (k: number) => seeded(`staged-${k}`, 8192);
    for (let k = 0; k < commands; k++) i.send(writeCommand(i, 100 + k, 40_000 + k * 16, 8192, false, data(k).subarray(0, 4096)));
    env.board.runFor(5_000_000);
    const early: Pdu[] = [];
    for (let p = i.reader.next(); p !== undefined; p = i.reader.next()) early.push(p);
    const busy = early.filter((p) => opcodeOf(p.bhs) === Op.ScsiResponse && p.bhs[3] === 0x08).map((p) => u32At(p.bhs, 16));
    expect(early.length).toBe(busy.length);
    expect(busy.length).toBe(commands - 16);
    for (const p of early) i.status(p);
    // The rest of each first burst: the BUSY ones' Data-Out find no task and are dropped without an answer.
    for (let k = 0; k < commands; k++) i.send(dataOut(i, 100 + k, 0xffff_ffff, 0, 4096, data(k).subarray(4096), true));
    const good = new Set<number>();
    for (let n = 0; n < 16; n++) {
      const p = i.receive();
      i.status(p);
      expect([opcodeOf(p.bhs), p.bhs[3]]).toEqual([Op.ScsiResponse, 0]);
      good.add(u32At(p.bhs, 16));
    }
    for (let k = 0; k < commands; k++) {
      if (busy.includes(100 + k)) continue;
      expect(good.has(100 + k)).toBe(true);
      expect(Buffer.compare(i.read(LUN, 40_000 + k * 16, 16), data(k))).toBe(0);
    }
    // And a slot is free again: a new write with immediate data goes through.
    i.write(LUN, 41_000, seeded("after", 8192));
    i.logout();
  });
});
