// REGISTER AND MOVE across target ports, over real iSCSI sessions on the release image (SPC-4, Registering and moving
// the reservation): a relative target port is a target of the board (its index + 1), and the SCSI target knows which
// volumes each presents (the transport's LUN map, ScsiTargetLuns). A reservation may be moved only to a port that
// exists and presents the unit: otherwise INVALID FIELD IN PARAMETER LIST at RELATIVE TARGET PORT IDENTIFIER (byte
// 18), and nothing moves. Board: target 1 presents host-disk0 (volume 0), target 2 only sp1-disk0 (volume 1),
// target 3 both, volume 0 as its LUN 1.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv } from "../support/iscsi_board.ts";
import { Initiator, Op, opcodeOf } from "../support/iscsi_initiator.ts";

const PREFIX = "iqn.2026-12.org.wasm-iop:ports-";
const TARGETS = [{ name: `${PREFIX}one`, luns: [0] }, { name: `${PREFIX}two`, luns: [1] }, { name: `${PREFIX}three`, luns: [1, 0] }];
const IQN = "iqn.2026-12.org.example:";
const GOOD = 0;
const CHECK_CONDITION = 2;
const kx = 0x10n;
const ky = 0x20n;

function be64(v: bigint): number[] { return Array.from({ length: 8 }, (_, k) => Number((v >> BigInt(56 - 8 * k)) & 0xffn)); }
function be16(v: number): number[] { return [(v >> 8) & 0xff, v & 0xff]; }
function be32(v: number): number[] { return [...be16(v >>> 16), ...be16(v & 0xffff)]; }

/** An iSCSI TransportID, format 01b: "name,i,0xISID", null-terminated, padded to a multiple of 4 (at least 24 bytes). */
function transportId(text: string): number[] {
  const bytes = [...Buffer.from(text, "latin1"), 0];
  while (bytes.length % 4 !== 0 || bytes.length < 20) bytes.push(0);
  return [0x45, 0, ...be16(bytes.length), ...bytes];
}

function session(env: IscsiEnv, target: string, name: string, isid: number, lun: number): Initiator {
  const i = new Initiator(env.board, env.network, { initiatorName: `${IQN}${name}`, targetName: `${PREFIX}${target}`, isid });
  i.login([["ImmediateData", "Yes"]]);
  i.clearUnitAttention(lun);
  return i;
}

/** PERSISTENT RESERVE OUT on `lun` with `list` as immediate data: [status, sense bytes]. */
function prOut(i: Initiator, lun: number, action: number, type: number, list: Uint8Array): [number, Uint8Array] {
  const cdb = new Uint8Array(16);
  cdb.set([0x5f, action, type, 0, 0, ...be32(list.length), 0]);
  const itt = i.nextItt();
  const p = i.exchange(i.command(0x80 | 0x20 | 1, lun, list.length, cdb, itt, list), itt);
  expect(opcodeOf(p.bhs)).toBe(Op.ScsiResponse);
  i.status(p);
  return [p.bhs[3]!, p.data.subarray(2)]; // the sense data after its 2-byte length
}

const basic = (key: bigint, saKey: bigint): Uint8Array => Uint8Array.from([...be64(key), ...be64(saKey), ...new Array(8).fill(0)]);
function moveList(key: bigint, saKey: bigint, port: number, id: number[]): Uint8Array {
  return Uint8Array.from([...be64(key), ...be64(saKey), 0, 0, ...be16(port), ...be32(id.length), ...id]);
}

describe("REGISTER AND MOVE to another target port", () => {
  let env: IscsiEnv;
  beforeAll(() => { env = bootIscsiBoard({ targets: TARGETS }); });

  it("refuses a port that does not present the unit, or does not exist; moves to one that does", () => {
    const x = session(env, "one", "x", 1, 0); // volume 0 through port 1, LUN 0
    expect(prOut(x, 0, 0, 0, basic(0n, kx))[0]).toBe(GOOD); // REGISTER
    expect(prOut(x, 0, 1, 1, basic(kx, 0n))[0]).toBe(GOOD); // RESERVE, Write Exclusive
    const y = `${IQN}y,i,0x800000000002`; // ISID type 80h (random), as the initiator logs in
    for (const port of [2, 4, 0]) { // 2 presents only volume 1; there is no port 4; 0 is reserved
      const [status, sense] = prOut(x, 0, 7, 1, moveList(kx, ky, port, transportId(y)));
      expect(status, `port ${port}`).toBe(CHECK_CONDITION);
      expect([sense[2]! & 0x0f, sense[12], sense[13], sense[15], (sense[16]! << 8) | sense[17]!], `port ${port}`).toEqual([0x05, 0x26, 0x00, 0x80, 18]);
    }
    // Port 3 presents volume 0 (as its LUN 1): the reservation goes to y there.
    expect(prOut(x, 0, 7, 1, moveList(kx, ky, 3, transportId(y)))[0]).toBe(GOOD);
    const yi = session(env, "three", "y", 2, 1);
    expect(prOut(yi, 1, 2, 1, basic(ky, 0n))[0]).toBe(GOOD); // y holds it: RELEASE through its LUN 1
    x.logout();
    yi.logout();
  });
});
