// The held receive buffer (assembly/tts/held_receive.ts, iscsi/target.ts resumeHeld): SCSI commands with immediate
// data beyond the 16 staging slots, all in one burst, are read only as slots come back (the connection's receive
// buffers held meanwhile: backpressure) instead of answered BUSY, and every one completes with its data on the disk.
// BUSY stays where waiting could never end: every slot held by a command that still waits for Data-Out (the
// write-data test's last case), here with the connection's later commands still read in order behind it. A connection
// that goes while its buffers are held gives them back: the NIC's receive buffers are all there for the next one.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { Initiator, Op, opcodeOf, seeded, u32At, write10Command, type Pdu } from "../support/iscsi_initiator.ts";

const LUN = 1; // on sp1: the data crosses the bus
const IMMEDIATE: [string, string][] = [["ImmediateData", "Yes"]];

let number = 0;
function session(env: IscsiEnv): Initiator {
  number += 1;
  const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `iqn.2026-11.org.wasm-iop:held-${number}`, isid: number });
  i.login(IMMEDIATE);
  i.clearUnitAttention(LUN);
  return i;
}

function responses(env: IscsiEnv, i: Initiator, count: number): Pdu[] {
  const got: Pdu[] = [];
  const until = env.board.clock.nowNs + 200_000_000;
  while (got.length < count && env.board.clock.nowNs < until) {
    env.board.runFor(50_000);
    for (let p = i.reader.next(); p !== undefined; p = i.reader.next()) got.push(p);
  }
  return got;
}

// The last connection-ends line's figures: BUSY answers and reads held back, since boot.
function stagingFigures(env: IscsiEnv): { busy: number; held: number } {
  const lines = env.console.filter((l) => l.includes("BUSY for want of one so far"));
  const match = /so far (\d+), read held back for one (\d+)/.exec(lines[lines.length - 1] ?? "");
  if (match === null) throw new Error(`no connection-ends line with the staging figures:\n${env.console.slice(-8).join("\n")}`);
  return { busy: Number(match[1]), held: Number(match[2]) };
}

describe("iSCSI held receive buffers instead of BUSY", () => {
  let env: IscsiEnv;
  beforeAll(() => {
    env = bootIscsiBoard({ diskMiB: 64 });
  });

  it("reads 96 commands with immediate data sent at once as slots come back: all GOOD, none BUSY, data on the disk", () => {
    const i = session(env);
    const commands = 96; // six times the 16 staging slots, in one write: seven per 4 KiB receive buffer
    const data = (k: number) => seeded(`held-${k}`, 512);
    const burst: Uint8Array[] = [];
    for (let k = 0; k < commands; k++) {
      burst.push(write10Command(i, 200 + k, i.cmdSn, LUN, 50_000 + k * 8, data(k)));
      i.cmdSn += 1;
    }
    i.send(Buffer.concat(burst));
    const got = responses(env, i, commands);
    expect(got.length).toBe(commands);
    for (const p of got) {
      i.status(p);
      expect([opcodeOf(p.bhs), p.bhs[3]]).toEqual([Op.ScsiResponse, 0]); // GOOD, not BUSY (0x08)
    }
    expect(new Set(got.map((p) => u32At(p.bhs, 16))).size).toBe(commands);
    for (let k = 0; k < commands; k++) expect(Buffer.compare(i.read(LUN, 50_000 + k * 8, 1), data(k))).toBe(0);
    i.logout();
    env.board.runFor(2_000_000); // the connection ends: its line has the figures
    const figures = stagingFigures(env);
    expect(figures.busy).toBe(0);
    expect(figures.held).toBeGreaterThan(0);
  });

  it("gives its held buffers back when the connection goes while it waits, and the next session is served", () => {
    const i = session(env);
    const burst: Uint8Array[] = [];
    for (let k = 0; k < 64; k++) {
      burst.push(write10Command(i, 300 + k, i.cmdSn, LUN, 60_000 + k * 8, seeded(`gone-${k}`, 512)));
      i.cmdSn += 1;
    }
    i.send(Buffer.concat(burst));
    env.board.runFor(20_000); // some read, the rest held behind a header that waits for a slot
    env.network.abort(i.client);
    env.board.runFor(5_000_000);
    // Every receive buffer is back with the NIC: a new session's 96-command burst is read in full.
    const next = session(env);
    const again: Uint8Array[] = [];
    for (let k = 0; k < 96; k++) {
      again.push(write10Command(next, 400 + k, next.cmdSn, LUN, 70_000 + k * 8, seeded(`next-${k}`, 512)));
      next.cmdSn += 1;
    }
    next.send(Buffer.concat(again));
    const got = responses(env, next, 96);
    expect(got.length).toBe(96);
    for (const p of got) expect([opcodeOf(p.bhs), p.bhs[3]]).toEqual([Op.ScsiResponse, 0]);
    for (const p of got) next.status(p);
    expect(Buffer.compare(next.read(LUN, 70_000 + 95 * 8, 1), seeded("next-95", 512))).toBe(0);
    next.logout();
  });
});
