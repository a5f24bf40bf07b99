// Write-protected logical units (SBC-3, Write protection; SPC-4, Control mode page SWP; assembly/scsi/write_protect.ts)
// through the test build's fake transport, on the SCSI target's test board (LUN 0 of 16 MiB, LUN 1 of 8 MiB): the
// transport marks a command's unit read-only by or-ing SCSI_LUN_WRITE_PROTECTED into its LUN, as the iSCSI target does
// for a board file's {"volume": n, "readOnly": true}. Every command that would change the medium is refused with
// DATA PROTECT, WRITE PROTECTED before any Data-Out is asked for, and the disk holds what it held; reads, VERIFY,
// SYNCHRONIZE CACHE and MODE SENSE (with WP) work. SWP set by MODE SELECT protects the unit for every nexus the same way.
import { describe, expect, it } from "vitest";
import {
  A, B, be16, be32, be64, BLOCK, boot, CHECK_CONDITION, GOOD, type Initiator, Key, modeSense10, modeSense6, parseSense,
  pattern, read10, tur, write10, write16,
} from "../../support/scsi_probe.ts";

const WRITE_PROTECTED_LUN = 0x8000_0000; // scsi/interface.ts SCSI_LUN_WRITE_PROTECTED
const DATA_PROTECT = 0x7;
const RO1 = (1 | WRITE_PROTECTED_LUN) >>> 0; // LUN 1, read-only through this transport's map

const write6 = (lba: number, n: number): number[] => [0x0a, (lba >>> 16) & 0x1f, (lba >>> 8) & 0xff, lba & 0xff, n, 0];
const write12 = (lba: number, n: number): number[] => [0xaa, 0, ...be32(lba), ...be32(n), 0, 0];
const writeVerify10 = (lba: number, n: number): number[] => [0x2e, 0, ...be32(lba), 0, ...be16(n), 0];
const writeVerify12 = (lba: number, n: number): number[] => [0xae, 0, ...be32(lba), ...be32(n), 0, 0];
const writeVerify16 = (lba: number, n: number): number[] => [0x8e, 0, ...be64(lba), ...be32(n), 0, 0];
const writeSame10 = (lba: number, n: number, flags = 0): number[] => [0x41, flags, ...be32(lba), 0, ...be16(n), 0];
const writeSame16 = (lba: number, n: number, flags = 0): number[] => [0x93, flags, ...be64(lba), ...be32(n), 0, 0];
const unmap = (listBytes: number): number[] => [0x42, 0, 0, 0, 0, 0, 0, ...be16(listBytes), 0];
const unmapList = (lba: number, n: number): Uint8Array => Uint8Array.from([0, 22, 0, 16, 0, 0, 0, 0, ...be64(lba), ...be32(n), 0, 0, 0, 0]);
const compareAndWrite = (lba: number, n: number): number[] => [0x89, 0, ...be64(lba), 0, 0, 0, n, 0, 0];
const orWrite = (lba: number, n: number): number[] => [0x8b, 0, ...be64(lba), ...be32(n), 0, 0];
const writeAtomic = (lba: number, n: number): number[] => [0x9c, 0, ...be64(lba), 0, 0, ...be16(n), 0, 0];
const sanitize = (sa: number, listBytes = 0): number[] => [0x48, sa, 0, 0, 0, 0, 0, ...be16(listBytes), 0];
const writeUsingToken = (listBytes: number): number[] => [0x83, 0x11, 0, 0, 0, 0, ...be32(1), ...be32(listBytes), 0, 0];
const extendedCopy = (listBytes: number): number[] => [0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(listBytes), 0, 0];
const syncCache10 = (): number[] => [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const verify10 = (lba: number, n: number): number[] => [0x2f, 0, ...be32(lba), 0, ...be16(n), 0];
const modeSelect6 = (listBytes: number): number[] => [0x15, 0x10, 0, 0, listBytes, 0];

/** FNV-1a over the LUN, processor and disk: the identity vpd.ts gives a logical unit (target.test.ts). */
function identity(lun: number, processor: number, disk: number): bigint {
  let h = 0xcbf2_9ce4_8422_2325n;
  for (const word of [lun, processor, disk]) {
    for (let b = 0; b < 4; b++) h = ((h ^ BigInt((word >>> (b * 8)) & 0xff)) * 0x100_0000_01b3n) & 0xffff_ffff_ffff_ffffn;
  }
  return h;
}
function copyList(lun: number, blocks: number, sourceLba: number, destinationLba: number): Uint8Array {
  const naa = (5n << 60n) | (0x020002n << 36n) | (identity(lun, 0, lun) & 0xf_ffff_ffffn);
  const d = new Array<number>(32).fill(0);
  d[0] = 0xe4;
  d.splice(4, 12, 0x01, 0x03, 0x00, 8, ...be64(naa));
  d.splice(29, 3, 0, ...be16(BLOCK));
  const s = [0x02, 0, ...be16(0x18), ...be16(0), ...be16(0), 0, 0, ...be16(blocks), ...be64(sourceLba), ...be64(destinationLba)];
  return Uint8Array.from([1, 0, ...be16(d.length), 0, 0, 0, 0, ...be32(s.length), ...be32(0), ...d, ...s]);
}
function tokenWriteList(): Uint8Array { // the block device zero ROD token, one range of 4 blocks at LBA 0
  const token = [...be32(0xffff0001), 0, 0, ...be16(0x1f8), ...new Array<number>(504).fill(0)];
  const range = [...be64(0), ...be32(4), 0, 0, 0, 0];
  const list = new Uint8Array(536 + range.length);
  list.set(be16(534 + range.length), 0);
  list.set(token, 16);
  list.set(be16(range.length), 534);
  list.set(range, 536);
  return list;
}

/** Each command that changes the medium, with the Data-Out it would carry. */
function modifyingCommands(): [string, number[], Uint8Array | undefined][] {
  const one = pattern(7, 1);
  const overwrite = Uint8Array.from([0x01, 0, ...be16(4), 0xde, 0xad, 0xbe, 0xef]);
  return [
    ["WRITE (6)", write6(0, 1), one], ["WRITE (10)", write10(0, 1), one], ["WRITE (12)", write12(0, 1), one],
    ["WRITE (16)", write16(0, 1), one], ["WRITE AND VERIFY (10)", writeVerify10(0, 1), one],
    ["WRITE AND VERIFY (12)", writeVerify12(0, 1), one], ["WRITE AND VERIFY (16)", writeVerify16(0, 1), one],
    ["WRITE SAME (10)", writeSame10(0, 4), one], ["WRITE SAME (16)", writeSame16(0, 4), one],
    ["WRITE SAME (10) UNMAP", writeSame10(0, 4, 0x08), one], ["WRITE SAME (16) UNMAP", writeSame16(0, 4, 0x08), one],
    ["WRITE SAME (16) NDOB", writeSame16(0, 4, 0x01), undefined],
    ["UNMAP", unmap(24), unmapList(0, 4)], ["COMPARE AND WRITE", compareAndWrite(0, 1), pattern(7, 2)],
    ["ORWRITE (16)", orWrite(0, 1), one], ["WRITE ATOMIC (16)", writeAtomic(0, 8), pattern(7, 8)],
    ["SANITIZE OVERWRITE", sanitize(0x01, overwrite.length), overwrite], ["SANITIZE BLOCK ERASE", sanitize(0x02), undefined],
    ["SANITIZE CRYPTOGRAPHIC ERASE", sanitize(0x03), undefined],
    ["WRITE USING TOKEN", writeUsingToken(tokenWriteList().length), tokenWriteList()],
    ["EXTENDED COPY to itself", extendedCopy(copyList(1, 4, 100, 0).length), copyList(1, 4, 100, 0)],
  ];
}

function expectWriteProtected(i: Initiator, name: string, cdb: number[], data: Uint8Array | undefined, lun: number, nexus = A): void {
  const r = i.run(cdb, { lun, nexus, data });
  expect([name, r.status]).toEqual([name, CHECK_CONDITION]);
  expect([name, parseSense(r.sense)]).toMatchObject([name, { key: DATA_PROTECT, asc: 0x27, ascq: 0x00 }]);
  // Refused before any Data-Out was asked for; EXTENDED COPY learns its destination from its parameter list, so it
  // takes the list (no medium data) and refuses the segment before it reads or writes a block.
  const asked = name.startsWith("EXTENDED COPY") ? data!.length : null;
  expect([name, r.dataOutAsked]).toEqual([name, asked]);
}

function writeProtectBit(i: Initiator, lun: number, ten: boolean): number {
  const data = i.good(ten ? modeSense10(0x3f) : modeSense6(0x3f), { lun, expected: 255 });
  return (ten ? data[3]! : data[2]!) & 0x80;
}

describe("a logical unit read-only through the transport's LUN map", () => {
  it("refuses every command that would change the medium with DATA PROTECT, WRITE PROTECTED, and the disk is unchanged", () => {
    const i = boot();
    i.login(A);
    const before = pattern(3, 8);
    i.writeBlocks(1, 0, before);
    i.writeBlocks(1, 100, pattern(4, 4));
    for (const [name, cdb, data] of modifyingCommands()) expectWriteProtected(i, name, cdb, data, RO1);
    expect(i.readBlocks(1, 0, 8)).toEqual(before);
    expect(i.readBlocks(RO1, 0, 8)).toEqual(before); // reads through the read-only LUN as well
    i.quiescent();
  });

  it("reads, VERIFY, SYNCHRONIZE CACHE and TEST UNIT READY work; MODE SENSE (6) and (10) set WP only there", () => {
    const i = boot();
    i.login(A);
    i.writeBlocks(1, 10, pattern(5, 2));
    expect(i.good(read10(10, 2), { lun: RO1, expected: 2 * BLOCK })).toEqual(pattern(5, 2));
    expect(i.run(verify10(10, 2), { lun: RO1 }).status).toBe(GOOD);
    expect(i.run(syncCache10(), { lun: RO1 }).status).toBe(GOOD);
    expect(i.run(tur(), { lun: RO1 }).status).toBe(GOOD);
    expect([writeProtectBit(i, RO1, false), writeProtectBit(i, RO1, true)]).toEqual([0x80, 0x80]);
    expect([writeProtectBit(i, 1, false), writeProtectBit(i, 1, true)]).toEqual([0, 0]);
    i.writeBlocks(1, 10, pattern(6, 2)); // the same volume through a writable LUN: the flag is the LUN's, not the volume's
    expect(i.readBlocks(1, 10, 2)).toEqual(pattern(6, 2));
    i.quiescent();
  });

  it("a write with an LBA out of range or a bad CDB field still gets that ILLEGAL REQUEST first: the command is checked before the medium", () => {
    const i = boot();
    i.login(A);
    const s = i.check([0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0x04], { lun: RO1, data: pattern(1, 1) }); // NACA: invalid field
    expect(s).toMatchObject({ key: Key.IllegalRequest, asc: 0x24 });
    i.quiescent();
  });
});

describe("SWP in the Control mode page (SPC-4)", () => {
  it("is changeable; set by one nexus, it protects the unit for all, raises WP, and clearing it lets writes through", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    const changeable = i.good(modeSense6(0x40 | 0x0a), { lun: 0, expected: 255 });
    expect(changeable[4 + 8 + 4]! & 0x08).toBe(0x08); // the Control page's SWP is changeable
    const control = (swp: boolean) => Uint8Array.from([0, 0, 0, 0, 0x0a, 0x0a, 0x02, 0x10, swp ? 0x08 : 0, 0x40, 0, 0, 0, 0, 0, 0]);
    expect(i.run(modeSelect6(16), { lun: 0, nexus: B, data: control(true) }).status).toBe(GOOD);
    expect(i.check(tur(), { lun: 0 })).toMatchObject({ key: Key.UnitAttention, asc: 0x2a, ascq: 0x01 }); // MODE PARAMETERS CHANGED
    expect(writeProtectBit(i, 0, false)).toBe(0x80);
    for (const [name, cdb, data] of modifyingCommands()) {
      if (name === "EXTENDED COPY to itself") continue; // its list names LUN 1
      expectWriteProtected(i, name, cdb, data, 0);
    }
    const copy = copyList(0, 4, 100, 0); // EXTENDED COPY from LUN 1 (writable) whose destination is LUN 0
    expect(i.run(extendedCopy(copy.length), { lun: 0, data: copy }).status).toBe(CHECK_CONDITION);
    expect(i.run(modeSelect6(16), { lun: 0, nexus: B, data: control(false) }).status).toBe(GOOD);
    i.check(tur(), { lun: 0 });
    i.writeBlocks(0, 0, pattern(9, 1));
    expect(i.readBlocks(0, 0, 1)).toEqual(pattern(9, 1));
    i.quiescent();
  });
});
