// Target resets from one session and a write in flight on another, over real iSCSI sessions on the release image.
// No initiator may be left waiting for ever (the replay tools caught qemu-img hanging on a write after another
// session's TARGET COLD RESET):
// - TARGET WARM RESET (RFC 7143 §11.5.1; SAM-5, Aborting commands): the other session's write is aborted and, with
//   TAS 1 in the Control mode page, ends with TASK ABORTED status; that session stays up and its next command hears
//   POWER ON, RESET (29h). The resetting session's own write is answered by the TMF Response alone.
// - TARGET COLD RESET (RFC 7143 §11.5.1): after the TMF Response, the target closes all its TCP connections to all
//   initiators; the initiators log in again and nothing of the aborted write reached the disk.
// Bounded: every wait is the initiator's own (200 ms of board time per PDU), never a wall-clock assertion.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { awaitPdu, Initiator, lunField, Op, opcodeOf, pdu, type Pdu, seeded, u32At, write10Command } from "../support/iscsi_initiator.ts";

const PREFIX = "iqn.2026-11.org.wasm-iop:";
const TARGET_WARM_RESET = 6;
const TARGET_COLD_RESET = 7;
const TASK_ABORTED = 0x40;

function tmf(i: Initiator, itt: number, fn: number): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = 0x40 | Op.TmfRequest; // immediate
    bhs[1] = 0x80 | fn;
    bhs.set(lunField(0), 8);
    v.setUint32(16, itt);
    v.setUint32(20, 0xffff_ffff);
    v.setUint32(24, i.cmdSn);
    v.setUint32(28, i.expStatSn);
  });
}

const describePdu = (p: Pdu): string => `opcode 0x${opcodeOf(p.bhs).toString(16)} ITT ${u32At(p.bhs, 16)}`;

function login(env: IscsiEnv, name: string, isid: number): Initiator {
  const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}${name}`, isid });
  i.login([["ImmediateData", "Yes"], ["InitialR2T", "Yes"]]);
  i.clearUnitAttention(0);
  i.clearUnitAttention(1);
  return i;
}

/** A WRITE(10) of 8 blocks on `lun` with one block of immediate data: the target asks for the rest (R2T), which
 * never comes, so the write stays in flight until something ends it. Answers its ITT. */
function writeInFlight(i: Initiator, lun: number, lba: number, label: string): number {
  const itt = i.nextItt();
  const command = write10Command(i, itt, i.cmdSn, lun, lba, seeded(label, 4096), 512);
  command[1] = command[1]! | 0x80; // F: InitialR2T=Yes, no unsolicited Data-Out follows (RFC 7143, SCSI Command)
  i.send(command);
  i.cmdSn += 1;
  const r2t = i.receive();
  expect(describePdu(r2t), "the target asks for the rest").toBe(`opcode 0x${Op.R2t.toString(16)} ITT ${itt}`);
  return itt;
}

const zeros = (bytes: number) => new Uint8Array(bytes);

describe("target resets with another session's write in flight", () => {
  let env: IscsiEnv;

  beforeAll(() => {
    env = bootIscsiBoard({ diskMiB: 16 });
  });

  it("TARGET WARM RESET: the other session's write ends with TASK ABORTED (TAS 1), the session stays, then hears POWER ON", () => {
    const a = login(env, "warm-a", 0x51);
    const b = login(env, "warm-b", 0x52);
    const ittB = writeInFlight(b, 1, 3000, "warm b");
    const ittOwn = writeInFlight(a, 0, 3100, "warm a");
    const ittTmf = a.nextItt();
    a.send(tmf(a, ittTmf, TARGET_WARM_RESET));
    const answer = a.receive();
    expect(describePdu(answer), "the resetting session: the TMF Response only, its own write unanswered").toBe(`opcode 0x22 ITT ${ittTmf}`);
    a.status(answer);
    expect(answer.bhs[2], "FUNCTION COMPLETE").toBe(0);
    // The other session: before, nothing ever came (the initiator waited for ever); now TASK ABORTED.
    const p = b.receive();
    expect(describePdu(p), "the in-flight write is answered").toBe(`opcode 0x21 ITT ${ittB}`);
    b.status(p);
    expect([p.bhs[2], p.bhs[3]], "COMMAND COMPLETED AT TARGET, TASK ABORTED").toEqual([0, TASK_ABORTED]);
    expect(b.client.closed, "a warm reset keeps the connections").toBe(false);
    expect(b.testUnitReady(1).sense, "POWER ON, RESET OR BUS DEVICE RESET OCCURRED").toMatch(/^ sense 06\/29/);
    b.clearUnitAttention(1);
    a.clearUnitAttention(0);
    expect(Buffer.compare(b.read(1, 3000, 8), zeros(4096)), "nothing of the aborted write was written").toBe(0);
    expect(Buffer.compare(a.read(0, 3100, 8), zeros(4096))).toBe(0);
    expect(awaitPdu(env.board, a.client, a.reader, 5_000_000), "no answer for the resetting session's own write").toBeUndefined();
    b.write(1, 3000, seeded("warm b again", 4096));
    expect(Buffer.compare(b.read(1, 3000, 8), seeded("warm b again", 4096))).toBe(0);
    a.logout();
    b.logout();
  });

  it("TARGET COLD RESET: the TMF Response, then every connection of every session closes; the initiators log in again", () => {
    const a = login(env, "cold-a", 0x61);
    const b = login(env, "cold-b", 0x62);
    const idle = login(env, "cold-idle", 0x63); // a session with nothing in flight closes too
    const ittB = writeInFlight(b, 1, 4000, "cold b");
    const ittTmf = a.nextItt();
    a.send(tmf(a, ittTmf, TARGET_COLD_RESET));
    const answer = a.receive();
    expect(describePdu(answer)).toBe(`opcode 0x22 ITT ${ittTmf}`);
    a.status(answer);
    expect(answer.bhs[2], "FUNCTION COMPLETE").toBe(0);
    for (const [name, i] of [["a", a], ["b", b], ["idle", idle]] as const) {
      // Whatever comes before the close is a defined answer: for b, its write's TASK ABORTED status.
      for (let p = awaitPdu(env.board, i.client, i.reader); p !== undefined; p = awaitPdu(env.board, i.client, i.reader)) {
        expect(describePdu(p), `${name}: only its write's status before the close`).toBe(`opcode 0x21 ITT ${ittB}`);
        expect(p.bhs[3]).toBe(TASK_ABORTED);
      }
      expect(i.client.closed, `${name}: connection closed by the target (old code: kept, the write never answered)`).toBe(true);
    }
    expect(env.console.some((l) => l.includes("TARGET COLD RESET: 3 connections closed"))).toBe(true);
    const again = login(env, "cold-b", 0x62);
    expect(Buffer.compare(again.read(1, 4000, 8), zeros(4096)), "nothing of the aborted write was written").toBe(0);
    again.write(1, 4000, seeded("cold b again", 4096));
    expect(Buffer.compare(again.read(1, 4000, 8), seeded("cold b again", 4096))).toBe(0);
    again.logout();
  });
});
