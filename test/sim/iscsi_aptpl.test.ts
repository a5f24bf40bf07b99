// Persistent reservations through power loss over real iSCSI sessions: the release image on a board with an NVRAM
// card (nvram.bin in a data directory), two initiators logging in with their own names (the target names each
// I_T nexus "InitiatorName,i,0xISID" at login), PERSISTENT RESERVE OUT with APTPL one, then the board powered off and
// a new board built on the same data directory: the same initiators log in again and find their registrations and
// the reservation (READ KEYS, READ RESERVATION, a write from the other refused), as SPC-4 asks for APTPL one.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { Initiator, Op, opcodeOf, u32At } from "../support/iscsi_initiator.ts";

const dir = mkdtempSync(join(tmpdir(), "wasm-iop-iscsi-aptpl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = 0x00;
const RESERVATION_CONFLICT = 0x18;
const kx = 0x0102_0304_0506_0708n;
const ky = 0x1111_2222_3333_4444n;

function be64(v: bigint): number[] { return Array.from({ length: 8 }, (_, k) => Number((v >> BigInt(56 - 8 * k)) & 0xffn)); }

function session(env: IscsiEnv, name: string, isid: number): Initiator {
  const i = new Initiator(env.board, env.network, { initiatorName: `iqn.2026-12.org.example:${name}`, targetName: TEST_BOARD_TARGET, isid });
  i.login([["ImmediateData", "Yes"]]);
  expect(i.immediateData).toBe(true);
  i.clearUnitAttention(0);
  return i;
}

/** PERSISTENT RESERVE OUT on LUN 0 with a 24-byte list as immediate data; answers the SCSI status. */
function prOut(i: Initiator, action: number, type: number, key: bigint, saKey: bigint, aptpl: boolean): number {
  const cdb = new Uint8Array(16);
  cdb.set([0x5f, action, type, 0, 0, 0, 0, 0, 24, 0]);
  const list = Uint8Array.from([...be64(key), ...be64(saKey), 0, 0, 0, 0, aptpl ? 0x01 : 0, 0, 0, 0]);
  const itt = i.nextItt();
  const p = i.exchange(i.command(0x80 | 0x20 | 1, 0, 24, cdb, itt, list), itt);
  expect(opcodeOf(p.bhs)).toBe(Op.ScsiResponse);
  i.status(p);
  return p.bhs[3]!;
}

/** PERSISTENT RESERVE IN `action` on LUN 0: its parameter data. */
function prIn(i: Initiator, action: number): Uint8Array {
  const cdb = new Uint8Array(16);
  cdb.set([0x5e, action, 0, 0, 0, 0, 0, 0x10, 0x00, 0]);
  const itt = i.nextItt();
  i.send(i.command(0x80 | 0x40 | 1, 0, 4096, cdb, itt));
  const chunks: Uint8Array[] = [];
  for (;;) {
    const p = i.receive();
    expect(u32At(p.bhs, 16)).toBe(itt);
    if (opcodeOf(p.bhs) === Op.DataIn) {
      chunks.push(p.data);
      if ((p.bhs[1]! & 0x01) === 0) continue; // no status in it
    } else expect(opcodeOf(p.bhs)).toBe(Op.ScsiResponse);
    i.status(p);
    expect(p.bhs[3]).toBe(GOOD);
    return Buffer.concat(chunks);
  }
}

function keys(i: Initiator): bigint[] {
  const d = Buffer.from(prIn(i, 0));
  return Array.from({ length: d.readUInt32BE(4) / 8 }, (_, k) => d.readBigUInt64BE(8 + 8 * k));
}

function writeStatus(i: Initiator): number {
  const cdb = new Uint8Array(16);
  cdb.set([0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0]);
  const itt = i.nextItt();
  const p = i.exchange(i.command(0x80 | 0x20 | 1, 0, 512, cdb, itt, new Uint8Array(512).fill(7)), itt);
  i.status(p);
  return p.bhs[3]!;
}

describe("APTPL over iSCSI, across a power cycle of the board", () => {
  it("registrations and the reservation made with APTPL one are there again after the restart", () => {
    let env = bootIscsiBoard({ nvramDir: dir });
    let x = session(env, "x", 0x11);
    let y = session(env, "y", 0x22);
    expect(prOut(x, 0, 0, 0n, kx, true)).toBe(GOOD); // REGISTER, APTPL
    expect(prOut(y, 0, 0, 0n, ky, true)).toBe(GOOD);
    expect(prOut(x, 1, 3, kx, 0n, false)).toBe(GOOD); // RESERVE, Exclusive Access (APTPL ignored: not a register)
    expect(writeStatus(y)).toBe(RESERVATION_CONFLICT);
    expect(prIn(x, 2)[3]! & 0x01).toBe(1); // REPORT CAPABILITIES: PTPL_A
    env.board.powerOff();

    env = bootIscsiBoard({ nvramDir: dir });
    expect(env.console.join("\n")).toContain("pr: volume 0: 2 registrations and its reservation restored from the NVRAM (APTPL)");
    x = session(env, "x", 0x11);
    y = session(env, "y", 0x22);
    expect(keys(y)).toEqual([kx, ky]);
    const reservation = Buffer.from(prIn(y, 1));
    expect([reservation.readUInt32BE(4), reservation.readBigUInt64BE(8), reservation[21]! & 0x0f]).toEqual([16, kx, 3]);
    expect(writeStatus(y)).toBe(RESERVATION_CONFLICT);
    expect(writeStatus(x)).toBe(GOOD);
    // Another ISID of x's initiator is another I_T nexus: not registered, so Exclusive Access keeps it out too.
    const other = session(env, "x", 0x33);
    expect(writeStatus(other)).toBe(RESERVATION_CONFLICT);
    env.board.powerOff();
  });
});
