// EXTENDED COPY (LID1) through a writable LUN whose destination designator names a volume the initiator may not
// write, over real iSCSI sessions on the release image (SBC-3, Write protection; SPC-4, EXTENDED COPY). The copy
// manager finds a copy target device by its designator (the NAA of VPD page 83h), whatever LUN the command came
// through: a copy must write nothing its initiator could not write itself. Board: target "one" presents volume 0 as
// LUN 0 (writable) and volume 1 as LUN 1, read-only; target "two" presents volume 1 writable; target "three" only
// volume 0. Refused: DATA PROTECT, WRITE PROTECTED, and the destination unchanged; a source the target does not
// present: COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv } from "../support/iscsi_board.ts";
import { Initiator, Op, opcodeOf, seeded } from "../support/iscsi_initiator.ts";

const PREFIX = "iqn.2026-12.org.wasm-iop:copy-ro-";
const TARGETS = [
  { name: `${PREFIX}one`, luns: [0, { volume: 1, readOnly: true }] },
  { name: `${PREFIX}two`, luns: [1] },
  { name: `${PREFIX}three`, luns: [0] },
];
const BLOCK = 512;
const GOOD = 0;
const CHECK_CONDITION = 2;

const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];
const be32 = (v: number): number[] => [...be16(v >>> 16), ...be16(v & 0xffff)];
const be64 = (v: number): number[] => [...be32(Math.floor(v / 2 ** 32)), ...be32(v >>> 0)];

function session(env: IscsiEnv, target: string, name: string, isid: number, luns: number[]): Initiator {
  const i = new Initiator(env.board, env.network, { initiatorName: `iqn.2026-12.org.example:${name}`, targetName: `${PREFIX}${target}`, isid });
  i.login([["ImmediateData", "Yes"]]);
  for (const lun of luns) i.clearUnitAttention(lun);
  return i;
}

/** The 8-byte NAA designator of `lun` from its Device Identification VPD page (83h). */
function naa(i: Initiator, lun: number): number[] {
  const cdb = new Uint8Array(16);
  cdb.set([0x12, 0x01, 0x83, 0, 255, 0]);
  const itt = i.nextItt();
  const p = i.exchange(i.command(0x80 | 0x40 | 1, lun, 255, cdb, itt), itt);
  expect(opcodeOf(p.bhs)).toBe(Op.DataIn);
  i.status(p);
  const page = p.data;
  for (let at = 4; at + 4 <= page.length; at += 4 + page[at + 3]!) {
    if ((page[at + 1]! & 0x0f) === 3 && page[at + 3] === 8) return Array.from(page.subarray(at + 4, at + 12));
  }
  throw new Error(`LUN ${lun}: no 8-byte NAA designator`);
}

/** One block-to-block segment: `blocks` from LBA `sourceLba` of the first descriptor's unit to `destinationLba` of the second's. */
function copyList(source: number[], destination: number[], blocks: number, sourceLba: number, destinationLba: number): Uint8Array {
  const descriptor = (id: number[]): number[] => {
    const d = new Array<number>(32).fill(0);
    d[0] = 0xe4; // identification descriptor target descriptor
    d.splice(4, 12, 0x01, 0x03, 0x00, 8, ...id); // binary, NAA, 8 bytes
    d.splice(29, 3, 0, ...be16(BLOCK)); // disk block length
    return d;
  };
  const targets = [...descriptor(source), ...descriptor(destination)];
  const segment = [0x02, 0, ...be16(0x18), ...be16(0), ...be16(1), 0, 0, ...be16(blocks), ...be64(sourceLba), ...be64(destinationLba)];
  return Uint8Array.from([1, 0, ...be16(targets.length), 0, 0, 0, 0, ...be32(segment.length), ...be32(0), ...targets, ...segment]);
}

/** EXTENDED COPY (LID1) on `lun` with `list` as immediate data: [status, sense key, ASC, ASCQ]. */
function extendedCopy(i: Initiator, lun: number, list: Uint8Array): number[] {
  const cdb = new Uint8Array(16);
  cdb.set([0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(list.length), 0, 0]);
  const itt = i.nextItt();
  const p = i.exchange(i.command(0x80 | 0x20 | 1, lun, list.length, cdb, itt, list), itt);
  expect(opcodeOf(p.bhs)).toBe(Op.ScsiResponse);
  i.status(p);
  const sense = p.data.subarray(2);
  return [p.bhs[3]!, (sense[2] ?? 0) & 0x0f, sense[12] ?? 0, sense[13] ?? 0];
}

describe("EXTENDED COPY to a volume its initiator may not write", () => {
  let env: IscsiEnv;
  let one: Initiator;
  let volume0: number[];
  let volume1: number[];

  beforeAll(() => {
    env = bootIscsiBoard({ targets: TARGETS });
    one = session(env, "one", "one", 1, [0, 1]);
    volume0 = naa(one, 0);
    volume1 = naa(one, 1);
    one.write(0, 100, seeded("source", 4 * BLOCK));
  });

  it("through a writable LUN, to a volume the same target maps read-only: DATA PROTECT, nothing written", () => {
    const before = one.read(1, 200, 4);
    // Old code: GOOD, the read-only volume overwritten (only SWP stopped it).
    expect(extendedCopy(one, 0, copyList(volume0, volume1, 4, 100, 200)), "DATA PROTECT, WRITE PROTECTED").toEqual([CHECK_CONDITION, 0x7, 0x27, 0x00]);
    expect(Buffer.compare(one.read(1, 200, 4), before), "the read-only volume unchanged").toBe(0);
    // The writable direction still copies.
    expect(extendedCopy(one, 0, copyList(volume0, volume0, 4, 100, 300))[0]).toBe(GOOD);
    expect(Buffer.compare(one.read(0, 300, 4), seeded("source", 4 * BLOCK))).toBe(0);
  });

  it("through a target that presents no writable path to the destination: refused; where it is writable, the copy runs", () => {
    const three = session(env, "three", "three", 3, [0]);
    expect(extendedCopy(three, 0, copyList(volume0, volume1, 4, 100, 400)), "not presented by this target").toEqual([CHECK_CONDITION, 0x7, 0x27, 0x00]);
    // Nor does a copy read what its initiator cannot: volume 1 as the source through target three.
    expect(extendedCopy(three, 0, copyList(volume1, volume0, 4, 100, 400)), "COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE")
      .toEqual([CHECK_CONDITION, 0xa, 0x0d, 0x02]);
    const two = session(env, "two", "two", 2, [0]);
    expect(Buffer.compare(two.read(0, 400, 4), new Uint8Array(4 * BLOCK))).toBe(0);
    // Target two maps volume 1 writable: a copy from volume 1 to itself through it runs.
    two.write(0, 500, seeded("two", 4 * BLOCK));
    expect(extendedCopy(two, 0, copyList(volume1, volume1, 4, 500, 600))[0]).toBe(GOOD);
    expect(Buffer.compare(two.read(0, 600, 4), seeded("two", 4 * BLOCK))).toBe(0);
    three.logout();
    two.logout();
  });
});
