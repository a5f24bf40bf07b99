// The SCSI target (assembly/scsi/) through the test build's fake transport (test/firmware/scsi_probe.ts), on a board
// whose host has one virtio-scsi controller with two in-memory disks (16 MiB and 8 MiB, 512-byte blocks): every
// command travels the real path, SCSI → CTA → RTA → DDM → disk. Each case boots its own board, submits CDBs as
// nexuses 1 and 2 would, and checks status, fixed-format sense, Data-In, residuals and what the disks then hold;
// each ends with every buffer back in its pool and the heap where boot left it.
import { describe, expect, it } from "vitest";
import {
  GOOD, CHECK_CONDITION, BUSY, RESERVATION_CONFLICT, TASK_ABORTED, Dir, Residual, Key, Tmf, TmfResponse, TASK_NONE,
  BLOCK, LUN0_BLOCKS, LUN1_BLOCKS, A, B, parseSense, pattern, be16, be32, be64, tur, inquiry, read10, write10,
  read16, write16, requestSense, modeSense6, modeSense10, prIn, prOut, prList, boot, type Initiator, IQN, portName, identify,
  readKeys, fullStatus,
} from "../../support/scsi_probe.ts";

function ascii(text: string, length: number): number[] {
  return Array.from({ length }, (_, i) => (i < text.length ? text.charCodeAt(i) : 0x20));
}

/** FNV-1a over the LUN, processor and disk (little-endian words): the identity vpd.ts gives a logical unit. */
function identity(lun: number, processor: number, disk: number): bigint {
  let h = 0xcbf2_9ce4_8422_2325n;
  for (const word of [lun, processor, disk]) {
    for (let b = 0; b < 4; b++) h = ((h ^ BigInt((word >>> (b * 8)) & 0xff)) * 0x100_0000_01b3n) & 0xffff_ffff_ffff_ffffn;
  }
  return h;
}

describe("INQUIRY and the VPD pages, byte for byte", () => {
  it("standard data: SPC-4, HiSup, 3PC, CmdQue, vendor, product, revision, version descriptors", () => {
    const i = boot();
    const expected = new Uint8Array(96);
    expected.set([0x00, 0x00, 0x06, 0x12, 91, 0x08, 0x00, 0x02]); // 3PC: EXTENDED COPY
    expected.set([...ascii("WASM-IOP", 8), ...ascii("IOP VOLUME", 16), ...ascii("010", 4)], 8);
    expected.set([0x00, 0xa0, 0x04, 0x60, 0x04, 0xc0], 58);
    const r = i.run(inquiry(0, 0, 255), { expected: 255 });
    expect(r.status).toBe(GOOD);
    expect(r.data).toEqual(expected);
    expect([r.residualKind, r.residual]).toEqual([Residual.Underflow, 255 - 96]);
    // The allocation length cuts the data; INQUIRY does not consume the unit attention.
    expect(i.good(inquiry(0, 0, 36), { expected: 36 })).toEqual(expected.subarray(0, 36));
    expect(i.check(tur())).toMatchObject({ key: Key.UnitAttention, asc: 0x29, ascq: 0 });
    i.quiescent();
  });

  it("a LUN with no logical unit: qualifier 011b for INQUIRY, LOGICAL UNIT NOT SUPPORTED for VPD pages", () => {
    const i = boot();
    const data = i.good(inquiry(0, 0, 96), { lun: 5, expected: 96 });
    expect(data[0]).toBe(0x7f);
    expect(i.check(inquiry(1, 0x80, 255), { lun: 5, expected: 255 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x25, ascq: 0 });
    i.quiescent();
  });

  it("VPD 00h, 80h, 83h, B0h, B1h and B2h", () => {
    const i = boot();
    const page = (code: number, lun = 0) => i.good(inquiry(1, code, 255), { lun, expected: 255 });
    expect(page(0x00)).toEqual(Uint8Array.from([0, 0x00, 0, 7, 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2])); // 8Fh: token_copy.test.ts
    const id0 = identity(0, 0, 0);
    const serial0 = id0.toString(16).toUpperCase().padStart(16, "0");
    expect(page(0x80)).toEqual(Uint8Array.from([0, 0x80, 0, 16, ...ascii(serial0, 16)]));
    const naa = (5n << 60n) | (0x020002n << 36n) | (id0 & 0xf_ffff_ffffn);
    expect(page(0x83)).toEqual(Uint8Array.from([
      0, 0x83, 0, 56,
      0x01, 0x03, 0x00, 8, ...be64(naa),
      0x02, 0x01, 0x00, 40, ...ascii("WASM-IOP", 8), ...ascii("IOP VOLUME", 16), ...ascii(serial0, 16),
    ]));
    // Another LUN, another identity; the same LUN, the same identity on another boot.
    expect(page(0x80, 1)).toEqual(Uint8Array.from([0, 0x80, 0, 16, ...ascii(identity(1, 0, 1).toString(16).toUpperCase().padStart(16, "0"), 16)]));
    const limits = new Uint8Array(64);
    limits.set([0, 0xb0, 0, 0x3c, 0x00, 32, ...be16(8), ...be32(2048), ...be32(2048), ...be32(0), ...be32(65536), ...be32(64), ...be32(1), ...be32(0), ...be64(32768), ...be32(512), ...be32(1), ...be32(1)]);
    expect(page(0xb0)).toEqual(limits);
    const characteristics = new Uint8Array(64);
    characteristics.set([0, 0xb1, 0, 0x3c, 0x00, 0x01, 0x00, 0x50]); // non-rotating; WABEREQ, WACEREQ 01b (SANITIZE)
    expect(page(0xb1)).toEqual(characteristics);
    expect(page(0xb2)).toEqual(Uint8Array.from([0, 0xb2, 0, 4, 0x00, 0xe4, 0x02, 0x00]));
    expect(i.check(inquiry(1, 0x86, 255), { expected: 255 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 2 } });
    expect(i.check(inquiry(0, 0x80, 255), { expected: 255 })).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 2 } });
    expect(i.check(inquiry(2, 0, 255), { expected: 255 })).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 1, bit: 1 } }); // CMDDT
    const again = boot();
    expect(again.good(inquiry(1, 0x83, 255), { expected: 255 })).toEqual(page(0x83));
    i.quiescent();
  });
});

describe("capacity, mode pages, LUNs and operation codes", () => {
  it("4096-byte physical blocks of 512-byte blocks: LBPPBE 3 in READ CAPACITY (16), granularities of 8 blocks", () => {
    // The board file's physicalBlockSize travels disk → DDM (READ CAPACITY (16)) → RTA profile → UMA → volume.
    const i = boot(4096);
    i.login(A);
    const rc16 = i.good([0x9e, 0x10, ...be64(0), ...be32(32), 0, 0], { expected: 32 });
    expect(rc16.subarray(8, 15)).toEqual(Uint8Array.from([...be32(BLOCK), 0x00, 0x03, 0xc0]));
    const limits = i.good(inquiry(1, 0xb0, 255), { expected: 255 });
    expect(limits.subarray(6, 8)).toEqual(Uint8Array.from(be16(8))); // OPTIMAL TRANSFER LENGTH GRANULARITY
    expect(limits.subarray(28, 32)).toEqual(Uint8Array.from(be32(8))); // OPTIMAL UNMAP GRANULARITY
    // Unaligned writes and unmaps still work: a physical block is a hint, not a rule.
    i.writeBlocks(0, 3, pattern(5, 3));
    expect(i.readBlocks(0, 3, 3)).toEqual(pattern(5, 3));
    i.quiescent();
  });

  it("READ CAPACITY (10) and (16), with LBPME and LBPRZ", () => {
    const i = boot();
    i.login(A);
    expect(i.good([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], { expected: 8 })).toEqual(Uint8Array.from([...be32(LUN0_BLOCKS - 1), ...be32(BLOCK)]));
    const rc16 = new Uint8Array(32);
    rc16.set([...be64(LUN1_BLOCKS - 1), ...be32(BLOCK), 0, 0, 0xc0, 0]);
    expect(i.good([0x9e, 0x10, ...be64(0), ...be32(32), 0, 0], { lun: 1, expected: 32 })).toEqual(rc16);
    expect(i.good([0x9e, 0x10, ...be64(0), ...be32(12), 0, 0], { lun: 1, expected: 32 })).toEqual(rc16.subarray(0, 12));
    expect(i.check([0x9e, 0x10, ...be64(5), ...be32(32), 0, 0], { expected: 32 })).toMatchObject({ asc: 0x24, field: { byte: 2 } });
    expect(i.check([0x9e, 0x1f, ...be64(0), ...be32(32), 0, 0], { expected: 32 })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 4 } });
    // GET LBA STATUS: everything mapped, from the LBA to the end; past the end is out of range.
    expect(i.good([0x9e, 0x12, ...be64(100), ...be32(64), 0, 0], { expected: 64 })).toEqual(
      Uint8Array.from([...be32(20), 0, 0, 0, 0, ...be64(100), ...be32(LUN0_BLOCKS - 100), 0, 0, 0, 0]));
    expect(i.check([0x9e, 0x12, ...be64(LUN0_BLOCKS), ...be32(64), 0, 0], { expected: 64 })).toMatchObject({ asc: 0x21 });
    i.quiescent();
  });

  it("MODE SENSE (6) and (10): every page, changeable and default values, block descriptors; saved values refused", () => {
    const i = boot();
    i.login(A);
    const caching = [0x08, 0x12, 0x04, ...new Array(17).fill(0)];
    const control = [0x0a, 0x0a, 0x02, 0x10, 0, 0x40, 0, 0, 0, 0, 0, 0]; // TAS 1
    const exceptions = [0x1c, 0x0a, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const all6 = Uint8Array.from([3 + 8 + 44, 0, 0x10, 8, ...be32(LUN0_BLOCKS), 0, ...[0, 2, 0], ...caching, ...control, ...exceptions]);
    expect(i.good(modeSense6(0x3f), { expected: 255 })).toEqual(all6);
    expect(i.good(modeSense6(0x3f, 255, 0, 0xff), { expected: 255 })).toEqual(all6);
    expect(i.good(modeSense6(0x0a, 255, 0x08), { expected: 255 })).toEqual(Uint8Array.from([3 + 12, 0, 0x10, 0, ...control]));
    const changeable = Uint8Array.from([3 + 12, 0, 0x10, 0, 0x1c, 0x0a, 0x18, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(i.good(modeSense6(0x40 | 0x1c, 255, 0x08), { expected: 255 })).toEqual(changeable);
    expect(i.good(modeSense6(0x80 | 0x08, 255, 0x08), { expected: 255 })).toEqual(Uint8Array.from([3 + 20, 0, 0x10, 0, ...caching]));
    const long = Uint8Array.from([0, 6 + 16 + 20, 0, 0x10, 1, 0, 0, 16, ...be64(LUN0_BLOCKS), 0, 0, 0, 0, ...be32(BLOCK), ...caching]);
    expect(i.good(modeSense10(0x08, 255, 0x10), { expected: 255 })).toEqual(long);
    expect(i.check(modeSense6(0xc0 | 0x08), { expected: 255 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x39, ascq: 0, field: { byte: 2, bit: 7 } });
    expect(i.check(modeSense6(0x19), { expected: 255 })).toMatchObject({ asc: 0x24, field: { byte: 2, bit: 5 } });
    expect(i.check(modeSense6(0x08, 255, 0, 0x01), { expected: 255 })).toMatchObject({ asc: 0x24, field: { byte: 3 } });
    i.quiescent();
  });

  it("MODE SELECT changes WCE, refuses what is not changeable, and tells the other nexuses once", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    const list = (wce: boolean, extra = 0) => Uint8Array.from([0, 0, 0, 0, 0x08, 0x12, (wce ? 0x04 : 0x00) | extra, ...new Array(17).fill(0)]);
    const select6 = (length: number, flags = 0x10) => [0x15, flags, 0, 0, length, 0];
    i.good(select6(24), { data: list(false) });
    expect(i.good(modeSense6(0x08, 255, 0x08), { expected: 255 })[6]).toBe(0x00);
    // Nexus B hears of it once, on LUN 0 only; nexus A, which made the change, does not.
    expect(i.check(tur(), { nexus: B })).toMatchObject({ key: Key.UnitAttention, asc: 0x2a, ascq: 0x01 });
    expect(i.run(tur(), { nexus: B }).status).toBe(GOOD);
    expect(i.run(tur(), { nexus: B, lun: 1 }).status).toBe(GOOD);
    expect(i.run(tur(), { nexus: A }).status).toBe(GOOD);
    // Writes still work with the write cache off (they go to the medium).
    i.writeBlocks(0, 10, pattern(1, 4));
    expect(i.readBlocks(0, 10, 4)).toEqual(pattern(1, 4));
    // RCD (bit 0) is not changeable: INVALID FIELD IN PARAMETER LIST at its byte; nothing applied.
    expect(i.check(select6(24), { data: list(true, 0x01) })).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 6 } });
    expect(i.good(modeSense6(0x08, 255, 0x08), { expected: 255 })[6]).toBe(0x00);
    expect(i.check(select6(24, 0x00), { data: list(true) })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 4 } }); // PF 0
    expect(i.check(select6(24, 0x11), { data: list(true) })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 0 } }); // SP 1
    expect(i.check(select6(20), { data: list(true).subarray(0, 20) })).toMatchObject({ asc: 0x1a }); // page cut short
    // A logical unit reset brings the default (WCE 1) back.
    const reset = i.tmf(A, 0, Tmf.LunReset);
    i.wait(reset);
    i.release(reset);
    expect(i.check(tur())).toMatchObject({ asc: 0x29 });
    expect(i.good(modeSense6(0x08, 255, 0x08), { expected: 255 })[6]).toBe(0x04);
    i.quiescent();
  });

  it("REPORT LUNS lists both logical units, from any LUN, without taking the unit attention", () => {
    const i = boot();
    const luns = Uint8Array.from([...be32(16), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(i.good([0xa0, 0, 0, 0, 0, 0, ...be32(4096), 0, 0], { expected: 4096 })).toEqual(luns);
    expect(i.good([0xa0, 0, 2, 0, 0, 0, ...be32(4096), 0, 0], { lun: 9, expected: 4096 })).toEqual(luns);
    expect(i.good([0xa0, 0, 1, 0, 0, 0, ...be32(4096), 0, 0], { expected: 4096 })).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0]));
    expect(i.check([0xa0, 0, 3, 0, 0, 0, ...be32(4096), 0, 0], { expected: 4096 })).toMatchObject({ asc: 0x24, field: { byte: 2 } });
    expect(i.check(tur())).toMatchObject({ key: Key.UnitAttention, asc: 0x29 }); // still pending
    i.quiescent();
  });

  it("REPORT SUPPORTED OPERATION CODES: all commands, one command with its CDB usage data, timeouts", () => {
    const i = boot();
    i.login(A);
    const rsoc = (options: number, opcode = 0, sa = 0, rctd = false) =>
      [0xa3, 0x0c, (rctd ? 0x80 : 0) | options, opcode, ...be16(sa), ...be32(8192), 0, 0];
    const all = i.good(rsoc(0), { expected: 8192 });
    const length = new DataView(all.buffer).getUint32(0);
    expect(length).toBe(67 * 8);
    const descriptors = Array.from({ length: 67 }, (_, k) => all.subarray(4 + k * 8, 12 + k * 8));
    expect(descriptors.find((d) => d[0] === 0x89)).toEqual(Uint8Array.from([0x89, 0, 0, 0, 0, 0x00, 0, 16]));
    expect(descriptors.find((d) => d[0] === 0x9e && d[3] === 0x10)).toEqual(Uint8Array.from([0x9e, 0, 0, 0x10, 0, 0x01, 0, 16]));
    const withTimeouts = i.good(rsoc(0, 0, 0, true), { expected: 8192 });
    expect(new DataView(withTimeouts.buffer).getUint32(0)).toBe(67 * 20);
    expect(descriptors.find((d) => d[0] === 0x5f && d[3] === 0x07)).toEqual(Uint8Array.from([0x5f, 0, 0, 0x07, 0, 0x01, 0, 10])); // REGISTER AND MOVE
    expect(withTimeouts.subarray(4, 24)).toEqual(Uint8Array.from([0x00, 0, 0, 0, 0, 0x02, 0, 6, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 30]));
    expect(i.good(rsoc(1, 0x28), { expected: 8192 })).toEqual(Uint8Array.from([0, 0x03, 0, 10, 0x28, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x00]));
    expect(i.good(rsoc(2, 0x9e, 0x10), { expected: 8192 }).subarray(0, 6)).toEqual(Uint8Array.from([0, 0x03, 0, 16, 0x9e, 0x10]));
    expect(i.good(rsoc(1, 0x07), { expected: 8192 })).toEqual(Uint8Array.from([0, 0x01, 0, 0])); // not supported
    expect(i.check(rsoc(1, 0x9e), { expected: 8192 })).toMatchObject({ asc: 0x24, field: { byte: 2, bit: 2 } });
    expect(i.check(rsoc(2, 0x28), { expected: 8192 })).toMatchObject({ asc: 0x24, field: { byte: 2, bit: 2 } });
    expect(i.good([0xa3, 0x0d, 0, 0, 0, 0, ...be32(16), 0, 0], { expected: 16 })).toEqual(Uint8Array.from([0xda, 0, 0, 0]));
    i.quiescent();
  });
});

describe("errors, each with its exact sense", () => {
  it("operation codes, logical units, fields, ranges and limits", () => {
    const i = boot();
    i.login(A);
    expect(i.check([0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0])).toEqual({ key: Key.IllegalRequest, asc: 0x20, ascq: 0 }); // vendor group
    expect(i.check([0x07, 0, 0, 0, 0, 0])).toEqual({ key: Key.IllegalRequest, asc: 0x20, ascq: 0 }); // REASSIGN BLOCKS
    expect(i.check([0x5e, 0x04, 0, 0, 0, 0, 0, 0, 255, 0], { expected: 255 })).toEqual(
      { key: Key.IllegalRequest, asc: 0x24, ascq: 0, field: { inCdb: true, byte: 1, bit: 4 } }); // PR IN service action 4
    expect(i.check(tur(), { lun: 2 })).toEqual({ key: Key.IllegalRequest, asc: 0x25, ascq: 0 });
    expect(i.check(read10(0, 1), { lun: 0x4000, expected: BLOCK })).toEqual({ key: Key.IllegalRequest, asc: 0x25, ascq: 0 });
    expect(i.check(read10(LUN0_BLOCKS, 1), { expected: BLOCK })).toEqual({ key: Key.IllegalRequest, asc: 0x21, ascq: 0 });
    expect(i.check(read10(LUN0_BLOCKS - 1, 2), { expected: 2 * BLOCK })).toEqual({ key: Key.IllegalRequest, asc: 0x21, ascq: 0 });
    expect(i.check(read16(0xffff_ffff_ffff_ffffn, 1), { expected: BLOCK })).toMatchObject({ asc: 0x21 });
    expect(i.check(read10(LUN1_BLOCKS, 0), { lun: 1 })).toMatchObject({ asc: 0x21 });
    expect(i.check(read10(0, 2049), { expected: 2049 * BLOCK })).toEqual(
      { key: Key.IllegalRequest, asc: 0x24, ascq: 0, field: { inCdb: true, byte: 7 } }); // beyond MAXIMUM TRANSFER LENGTH
    expect(i.check(read10(0, 1, 0x20), { expected: BLOCK })).toEqual(
      { key: Key.IllegalRequest, asc: 0x24, ascq: 0, field: { inCdb: true, byte: 1, bit: 5 } }); // RDPROTECT
    expect(i.check(read10(0, 1, 0x01), { expected: BLOCK })).toMatchObject({ field: { inCdb: true, byte: 1, bit: 0 } }); // obsolete bit
    expect(i.check([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04], { expected: BLOCK })).toMatchObject({ asc: 0x24, field: { byte: 9, bit: 2 } }); // NACA
    expect(i.check([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x01], { expected: BLOCK })).toMatchObject({ asc: 0x24, field: { byte: 9, bit: 0 } }); // LINK
    expect(i.check(requestSense(18).map((b, k) => (k === 1 ? 1 : b)), { expected: 18 })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 0 } });
    // WSNZ 0: a zero count writes through the last LBA; from past the end it is out of range.
    i.good([0x41, 0, ...be32(LUN0_BLOCKS - 3), 0, ...be16(0), 0], { data: pattern(5, 1) });
    expect(i.readBlocks(0, LUN0_BLOCKS - 3, 3)).toEqual(Uint8Array.from([...pattern(5, 1), ...pattern(5, 1), ...pattern(5, 1)]));
    expect(i.check([0x41, 0, ...be32(LUN0_BLOCKS), 0, ...be16(0), 0], { data: new Uint8Array(BLOCK) })).toMatchObject({ asc: 0x21 });
    expect(i.check([0x93, 0, ...be64(2n ** 64n - 1n), ...be32(0), 0, 0], { data: new Uint8Array(BLOCK) })).toMatchObject({ asc: 0x21 });
    // A READ of zero blocks is not an error; nothing moves.
    const zero = i.run(read10(5, 0));
    expect([zero.status, zero.data.length, zero.residualKind]).toEqual([GOOD, 0, Residual.None]);
    i.quiescent();
  });

  it("unit attentions: POWER ON per nexus and LUN, reported once, not to INQUIRY, REPORT LUNS or REQUEST SENSE's status", () => {
    const i = boot();
    i.good(inquiry(0, 0, 36), { expected: 36 });
    // REQUEST SENSE returns it as its data, and that clears it.
    const sense = i.good(requestSense(), { expected: 18 });
    expect(parseSense(sense)).toEqual({ key: Key.UnitAttention, asc: 0x29, ascq: 0 });
    expect(parseSense(i.good(requestSense(), { expected: 18 }))).toEqual({ key: Key.NoSense, asc: 0, ascq: 0 });
    expect(i.run(tur()).status).toBe(GOOD);
    // LUN 1 of the same nexus, and nexus B on LUN 0, still have theirs.
    expect(i.check(tur(), { lun: 1 })).toMatchObject({ key: Key.UnitAttention, asc: 0x29 });
    expect(i.check(read10(0, 1), { nexus: B, expected: BLOCK })).toMatchObject({ key: Key.UnitAttention, asc: 0x29 });
    expect(i.run(read10(0, 1), { nexus: B, expected: BLOCK }).status).toBe(GOOD);
    // REQUEST SENSE for a LUN that does not exist: the parameter data says so, with GOOD status.
    expect(parseSense(i.good(requestSense(), { lun: 7, expected: 18 }))).toEqual({ key: Key.IllegalRequest, asc: 0x25, ascq: 0 });
    // A nexus that went away and came back: SAM-5, I_T nexus loss, I_T NEXUS LOSS OCCURRED (29h/07h) on the LUNs
    // where it had heard POWER ON (B: LUN 0), POWER ON again where it had not (B: LUN 1).
    i.t.call("testScsiNexusGone", B);
    i.t.board.runFor(1_000_000);
    expect(i.check(tur(), { nexus: B })).toMatchObject({ key: Key.UnitAttention, asc: 0x29, ascq: 7 });
    expect(i.check(tur(), { nexus: B, lun: 1 })).toMatchObject({ key: Key.UnitAttention, asc: 0x29, ascq: 0 });
    // A had heard it on both.
    i.t.call("testScsiNexusGone", A); // A heard POWER ON on both LUNs above
    i.t.board.runFor(1_000_000);
    expect(i.check(tur(), { nexus: A })).toMatchObject({ key: Key.UnitAttention, asc: 0x29, ascq: 7 });
    expect(i.run(tur(), { nexus: A }).status).toBe(GOOD);
    expect(i.check(tur(), { nexus: A, lun: 1 })).toMatchObject({ asc: 0x29, ascq: 7 });
    expect(i.run(tur(), { nexus: A, lun: 1 }).status).toBe(GOOD);
    i.quiescent();
  });
});

describe("data through CTA → RTA → DDM → disk", () => {
  it("WRITE and READ (6, 10, 12, 16), DPO and FUA, read back byte for byte", () => {
    const i = boot();
    i.login(A);
    const cases: { write: number[]; read: number[]; lba: number; blocks: number; lun: number }[] = [
      { write: [0x0a, 0, 0, 7, 3, 0], read: [0x08, 0, 0, 7, 3, 0], lba: 7, blocks: 3, lun: 0 },
      { write: write10(1000, 128, 0x18), read: read10(1000, 128, 0x18), lba: 1000, blocks: 128, lun: 0 },
      { write: [0xaa, 0x08, ...be32(LUN1_BLOCKS - 2048), ...be32(2048), 0, 0], read: [0xa8, 0, ...be32(LUN1_BLOCKS - 2048), ...be32(2048), 0, 0], lba: LUN1_BLOCKS - 2048, blocks: 2048, lun: 1 },
      { write: write16(LUN0_BLOCKS - 1, 1, 0x08), read: read16(LUN0_BLOCKS - 1, 1), lba: LUN0_BLOCKS - 1, blocks: 1, lun: 0 },
      { write: write16(3, 300), read: read16(3, 300), lba: 3, blocks: 300, lun: 1 },
    ];
    cases.forEach((c, k) => {
      const data = pattern(10 + k, c.blocks);
      const w = i.run(c.write, { lun: c.lun, data });
      expect([w.status, w.residualKind]).toEqual([GOOD, Residual.None]);
      const r = i.run(c.read, { lun: c.lun, expected: data.length });
      expect(r.status).toBe(GOOD);
      expect(Buffer.compare(r.data, data)).toBe(0);
    });
    // A READ (6) with TRANSFER LENGTH 0 means 256 blocks.
    expect(i.good([0x08, 0, 0, 0, 0, 0], { expected: 256 * BLOCK }).length).toBe(256 * BLOCK);
    i.good([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // SYNCHRONIZE CACHE (10), whole unit
    i.good([0x91, 0x02, ...be64(5), ...be32(10), 0, 0]); // (16) with IMMED
    expect(i.check([0x35, 0, ...be32(LUN1_BLOCKS), 0, 0, 1, 0], { lun: 1 })).toMatchObject({ asc: 0x21 });
    i.good([0x1b, 0, 0, 0, 0x00, 0]); // START STOP UNIT: stop (flushes)
    i.good([0x1b, 0, 0, 0, 0x01, 0]);
    i.good([0x1e, 0, 0, 0, 0x01, 0]); // PREVENT ALLOW MEDIUM REMOVAL
    i.quiescent();
  });

  it("residuals as iscsi-test-cu expects them: overflow and underflow, and only the expected bytes move", () => {
    const i = boot();
    i.login(A);
    i.writeBlocks(0, 0, new Uint8Array(2 * BLOCK).fill(0x61)); // 'a' 'a'
    // One block, expected length 0: GOOD, nothing written, overflow of a block.
    let r = i.run(write10(0, 1), { direction: Dir.Write, expected: 0 });
    expect([r.status, r.residualKind, r.residual]).toEqual([GOOD, Residual.Overflow, BLOCK]);
    // One block, expected 10000: underflow.
    r = i.run(write10(0, 1), { data: new Uint8Array(10000).fill(0x62) });
    expect([r.status, r.residualKind, r.residual]).toEqual([GOOD, Residual.Underflow, 10000 - BLOCK]);
    // One block, expected 200: refused (INVALID FIELD IN COMMAND INFORMATION UNIT) with the overflow, block unchanged.
    i.writeBlocks(0, 0, new Uint8Array(2 * BLOCK).fill(0x61));
    r = i.run(write10(0, 1), { data: new Uint8Array(200).fill(0x63) });
    expect([r.status, r.residualKind, r.residual]).toEqual([CHECK_CONDITION, Residual.Overflow, BLOCK - 200]);
    expect(parseSense(r.sense)).toMatchObject({ key: Key.IllegalRequest, asc: 0x0e, ascq: 0x03 });
    expect(i.readBlocks(0, 0, 1)).toEqual(new Uint8Array(BLOCK).fill(0x61));
    // Two blocks, expected one: only the first is written.
    r = i.run(write10(0, 2), { data: new Uint8Array(BLOCK).fill(0x62) });
    expect([r.status, r.residualKind, r.residual]).toEqual([GOOD, Residual.Overflow, BLOCK]);
    const back = i.readBlocks(0, 0, 2);
    expect(back.subarray(0, BLOCK)).toEqual(new Uint8Array(BLOCK).fill(0x62));
    expect(back.subarray(BLOCK)).toEqual(new Uint8Array(BLOCK).fill(0x61));
    // Reads: the Data-In is cut to the expected length.
    r = i.run(read10(0, 2), { expected: BLOCK });
    expect([r.status, r.data.length, r.residualKind, r.residual]).toEqual([GOOD, BLOCK, Residual.Overflow, BLOCK]);
    r = i.run(read10(0, 1), { expected: 200 });
    expect([r.data.length, r.residualKind, r.residual]).toEqual([200, Residual.Overflow, BLOCK - 200]);
    expect(r.data).toEqual(new Uint8Array(200).fill(0x62));
    r = i.run(read10(0, 1), { expected: 10000 });
    expect([r.data.length, r.residualKind, r.residual]).toEqual([BLOCK, Residual.Underflow, 10000 - BLOCK]);
    r = i.run(read10(0, 1), { direction: Dir.None, expected: 0 });
    expect([r.status, r.data.length, r.residualKind, r.residual]).toEqual([GOOD, 0, Residual.Overflow, BLOCK]);
    r = i.run(tur(), { direction: Dir.Read, expected: 512 });
    expect([r.status, r.residualKind, r.residual]).toEqual([GOOD, Residual.Underflow, 512]);
    // As iSCSI carries it (transport.ts): positive for an underflow, negative for an overflow.
    const task = i.submit(read10(0, 2), { expected: BLOCK });
    i.wait(task);
    expect(i.t.call("testScsiResidual", task)).toBe(BigInt(-BLOCK));
    i.release(task);
    i.quiescent();
  });

  it("VERIFY: BYTCHK 00b checks the range, 01b and 11b compare, MISCOMPARE says where", () => {
    const i = boot();
    i.login(A);
    const data = pattern(3, 64);
    i.writeBlocks(0, 200, data);
    const verify16 = (lba: number, n: number, bytchk: number) => [0x8f, bytchk << 1, ...be64(lba), ...be32(n), 0, 0];
    i.good(verify16(200, 64, 0));
    expect(i.check(verify16(LUN0_BLOCKS - 1, 2, 0))).toMatchObject({ asc: 0x21 });
    i.good(verify16(200, 64, 1), { data });
    i.good([0x2f, 0x02, ...be32(200), 0, ...be16(64), 0], { data });
    i.good([0xaf, 0x02, ...be32(200), ...be32(64), 0, 0], { data });
    const wrong = data.slice();
    wrong[5000] ^= 0x58;
    expect(i.check(verify16(200, 64, 1), { data: wrong })).toEqual({ key: Key.Miscompare, asc: 0x1d, ascq: 0, information: 5000 });
    expect(i.check(verify16(200, 1, 2), { data: data.subarray(0, BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 2 } });
    i.writeBlocks(0, 300, new Uint8Array(8 * BLOCK).fill(0x5a));
    i.good(verify16(300, 8, 3), { data: new Uint8Array(BLOCK).fill(0x5a) });
    const one = new Uint8Array(BLOCK).fill(0x5a);
    i.writeBlocks(0, 303, one.map((b, k) => (k === 7 ? 0 : b)));
    expect(i.check(verify16(300, 8, 3), { data: one })).toEqual({ key: Key.Miscompare, asc: 0x1d, ascq: 0, information: 3 * BLOCK + 7 });
    i.quiescent();
  });

  it("PRE-FETCH (10, 16): the range is checked, nothing moves, GOOD; IMMED and the group number are allowed", () => {
    const i = boot();
    i.login(A);
    const pf10 = (lba: number, n: number, flags = 0, group = 0) => [0x34, flags, ...be32(lba), group, ...be16(n), 0];
    const pf16 = (lba: bigint, n: number, flags = 0) => [0x90, flags, ...be64(lba), ...be32(n), 0, 0];
    i.good(pf10(0, 256));
    i.good(pf10(LUN0_BLOCKS - 1, 1, 0x02, 3));
    i.good(pf10(0, 0));
    i.good(pf16(BigInt(LUN0_BLOCKS - 256), 256, 0x02));
    expect(i.check(pf10(LUN0_BLOCKS - 1, 2))).toEqual({ key: Key.IllegalRequest, asc: 0x21, ascq: 0 });
    expect(i.check(pf10(LUN0_BLOCKS + 1, 0))).toEqual({ key: Key.IllegalRequest, asc: 0x21, ascq: 0 });
    expect(i.check(pf16(0xffff_ffff_ffff_ffffn, 1))).toEqual({ key: Key.IllegalRequest, asc: 0x21, ascq: 0 });
    expect(i.check(pf10(0, 1, 0x04))).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 1, bit: 2 } });
    i.quiescent();
  });

  it("READ DEFECT DATA (10, 12): empty lists in the format asked for, cut to the allocation length", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    expect(i.good([0x37, 0, 0x00, 0, 0, 0, 0, ...be16(32), 0], { expected: 32 })).toEqual(Uint8Array.from([0, 0, 0, 0]));
    expect(i.good([0x37, 0, 0x1d, 0, 0, 0, 0, ...be16(32), 0], { expected: 32 })).toEqual(Uint8Array.from([0, 0x1d, 0, 0]));
    expect(i.good([0x37, 0, 0x00, 0, 0, 0, 0, ...be16(2), 0], { expected: 2 })).toEqual(Uint8Array.from([0, 0]));
    expect(i.good([0xb7, 0x0c, 0, 0, 0, 0, ...be32(32), 0, 0], { expected: 32 })).toEqual(Uint8Array.from([0, 0x0c, 0, 0, 0, 0, 0, 0]));
    expect(i.check([0x37, 0x01, 0, 0, 0, 0, 0, ...be16(32), 0], { expected: 32 })).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 1 } });
    i.quiescent();
  });

  it("WRITE AND VERIFY writes, then with BYTCHK reads back and compares", () => {
    const i = boot();
    i.login(A);
    const data = pattern(4, 40);
    i.good([0x2e, 0x00, ...be32(50), 0, ...be16(40), 0], { data });
    expect(i.readBlocks(0, 50, 40)).toEqual(data);
    const other = pattern(5, 40);
    i.good([0x8e, 0x02, ...be64(60), ...be32(40), 0, 0], { data: other });
    expect(i.readBlocks(0, 60, 40)).toEqual(other);
    expect(i.check([0xae, 0x00, ...be32(LUN1_BLOCKS), ...be32(1), 0, 0], { lun: 1, data: pattern(6, 1) })).toMatchObject({ asc: 0x21 });
    i.quiescent();
  });

  it("ORWRITE (16) ORs the Data-Out into the blocks; limits, range and 0 blocks", () => {
    const i = boot();
    i.login(A);
    const orw = (lba: number, n: number, flags = 0) => [0x8b, flags, ...be64(lba), ...be32(n), 0, 0];
    const mix = (a: number, b: number, n: number) => new Uint8Array(n * BLOCK).map((_, k) => (k % 2 === 0 ? a : b));
    i.writeBlocks(0, 700, mix(0x0f, 0x30, 3));
    i.good(orw(700, 3), { data: mix(0xa0, 0x05, 3) });
    expect(i.readBlocks(0, 700, 3)).toEqual(mix(0xaf, 0x35, 3));
    i.good(orw(700, 3, 0x08), { data: mix(0x50, 0xc0, 3) }); // FUA
    expect(i.readBlocks(0, 700, 3)).toEqual(mix(0xff, 0xf5, 3));
    // At the end of the unit; past it; 0 blocks; beyond MAXIMUM TRANSFER LENGTH; ORPROTECT.
    i.writeBlocks(0, LUN0_BLOCKS - 2, new Uint8Array(2 * BLOCK));
    i.good(orw(LUN0_BLOCKS - 2, 2), { data: pattern(13, 2) });
    expect(i.readBlocks(0, LUN0_BLOCKS - 2, 2)).toEqual(pattern(13, 2));
    expect(i.check(orw(LUN0_BLOCKS - 1, 2), { data: pattern(13, 2) })).toMatchObject({ asc: 0x21 });
    expect(i.check(orw(LUN0_BLOCKS + 1, 0))).toMatchObject({ asc: 0x21 });
    i.good(orw(0, 0));
    expect(i.check(orw(0, 2049), { data: new Uint8Array(BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 10 } });
    expect(i.check(orw(0, 1, 0x20), { data: new Uint8Array(BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 5 } });
    i.quiescent();
  });

  it("WRITE ATOMIC (16) writes within the atomic limits and refuses what violates them", () => {
    const i = boot();
    i.login(A);
    const wa = (lba: number | bigint, n: number, boundary = 0, flags = 0) => [0x9c, flags, ...be64(lba), ...be16(boundary), ...be16(n), 0, 0];
    i.good(wa(800, 512), { data: pattern(14, 512) }); // MAXIMUM ATOMIC TRANSFER LENGTH
    expect(i.readBlocks(0, 800, 512)).toEqual(pattern(14, 512));
    i.good(wa(LUN0_BLOCKS - 4, 4, 0, 0x08), { data: pattern(15, 4) }); // FUA, at the end of the unit
    expect(i.readBlocks(0, LUN0_BLOCKS - 4, 4)).toEqual(pattern(15, 4));
    i.good(wa(0, 0));
    expect(i.check(wa(0, 513), { data: new Uint8Array(513 * BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 12 } });
    expect(i.check(wa(0, 1, 1), { data: new Uint8Array(BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 10 } });
    expect(i.check(wa(LUN0_BLOCKS - 1, 2), { data: new Uint8Array(2 * BLOCK) })).toMatchObject({ asc: 0x21 });
    expect(i.check(wa(2n ** 64n - 1n, 0))).toMatchObject({ asc: 0x21 });
    expect(i.check(wa(0, 1, 0, 0x20), { data: new Uint8Array(BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 5 } });
    i.quiescent();
  });

  it("COMPARE AND WRITE writes only when the blocks match, MISCOMPARE with the offset otherwise", () => {
    const i = boot();
    i.login(A);
    const caw = (lba: number, n: number) => [0x89, 0, ...be64(lba), 0, 0, 0, n, 0, 0];
    const old = new Uint8Array(4 * BLOCK).fill(0x41);
    const next = new Uint8Array(4 * BLOCK).fill(0x42);
    i.writeBlocks(0, 500, old);
    i.good(caw(500, 4), { data: Uint8Array.from([...old, ...next]) });
    expect(i.readBlocks(0, 500, 4)).toEqual(next);
    const stale = old.slice();
    stale[4 * BLOCK - 27] = 0x43;
    const s = i.check(caw(500, 4), { data: Uint8Array.from([...stale, ...old]) });
    expect(s).toEqual({ key: Key.Miscompare, asc: 0x1d, ascq: 0, information: 0 }); // the first byte already differs
    expect(i.readBlocks(0, 500, 4)).toEqual(next); // unchanged
    const nearly = next.slice();
    nearly[3 * BLOCK + 9] = 0;
    expect(i.check(caw(500, 4), { data: Uint8Array.from([...nearly, ...old]) })).toEqual({ key: Key.Miscompare, asc: 0x1d, ascq: 0, information: 3 * BLOCK + 9 });
    expect(i.readBlocks(0, 500, 4)).toEqual(next);
    // Limits: more than MAXIMUM COMPARE AND WRITE LENGTH, a Data-Out of the wrong size, past the end; 0 blocks is GOOD.
    expect(i.check(caw(0, 33), { data: new Uint8Array(66 * BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 13 } });
    expect(i.check(caw(0, 1), { data: new Uint8Array(4 * BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 13 } });
    expect(i.check(caw(LUN0_BLOCKS, 1), { data: new Uint8Array(2 * BLOCK) })).toMatchObject({ asc: 0x21 });
    i.good(caw(0, 0));
    // A count of 0 with Data-Out (256 blocks cut to the byte's 0) is refused, not taken for "nothing to do".
    expect(i.check(caw(0, 0), { data: new Uint8Array(512 * BLOCK) })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { byte: 13 } });
    // At the last blocks of the unit, at the largest length.
    const edge = pattern(8, 32);
    i.writeBlocks(0, LUN0_BLOCKS - 32, edge);
    i.good(caw(LUN0_BLOCKS - 32, 32), { data: Uint8Array.from([...edge, ...pattern(9, 32)]) });
    expect(i.readBlocks(0, LUN0_BLOCKS - 32, 32)).toEqual(pattern(9, 32));
    i.quiescent();
  });

  it("WRITE SAME replicates a block over more than a megabyte; with UNMAP and zeros it deallocates", () => {
    const i = boot();
    i.login(A);
    const block = pattern(11, 1);
    const ws16 = (lba: number, n: number, flags = 0) => [0x93, flags, ...be64(lba), ...be32(n), 0, 0];
    i.good(ws16(1000, 3000), { data: block });
    const back = i.readBlocks(0, 1000, 2048);
    for (let k = 0; k < 2048; k++) expect(Buffer.compare(back.subarray(k * BLOCK, (k + 1) * BLOCK), block)).toBe(0);
    const tail = i.readBlocks(0, 3048, 953);
    expect(Buffer.compare(tail.subarray(0, 952 * BLOCK), new Uint8Array(952 * BLOCK).map((_, k) => block[k % BLOCK]!))).toBe(0);
    expect(tail.subarray(952 * BLOCK)).not.toEqual(block); // block 4000 was not written
    // WRITE SAME (10) with UNMAP and a block of zeros: reads back as zeros.
    i.good([0x41, 0x08, ...be32(1500), 0, ...be16(100), 0], { data: new Uint8Array(BLOCK) });
    expect(i.readBlocks(0, 1500, 100)).toEqual(new Uint8Array(100 * BLOCK));
    expect(i.readBlocks(0, 1499, 1)).toEqual(block);
    // With UNMAP and a block that is not zeros, the block is written.
    i.good(ws16(1500, 2, 0x08), { data: block });
    expect(i.readBlocks(0, 1500, 2)).toEqual(Uint8Array.from([...block, ...block]));
    // NDOB: no Data-Out, zeros.
    i.good(ws16(1000, 10, 0x01));
    expect(i.readBlocks(0, 1000, 10)).toEqual(new Uint8Array(10 * BLOCK));
    // Refused: a Data-Out that is not one block (short: INVALID FIELD IN COMMAND INFORMATION UNIT), past the end, more
    // than MAXIMUM WRITE SAME LENGTH, ANCHOR.
    expect(i.check(ws16(0, 1), { data: new Uint8Array(2 * BLOCK) })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24 });
    expect(i.check(ws16(0, 1), { data: new Uint8Array(BLOCK / 2) })).toMatchObject({ key: Key.IllegalRequest, asc: 0x0e, ascq: 0x03 });
    expect(i.check(ws16(LUN0_BLOCKS - 1, 2), { data: block })).toMatchObject({ asc: 0x21 });
    expect(i.check(ws16(0, 32769), { data: block })).toMatchObject({ asc: 0x24, field: { byte: 10 } });
    // 65536 blocks (iscsi-test-cu's WriteSame16.Unmap writes them first when MAXIMUM WRITE SAME LENGTH allows it).
    expect(i.check(ws16(0, 65536, 0x08), { data: new Uint8Array(BLOCK) })).toMatchObject({ asc: 0x24, field: { byte: 10 } });
    expect(i.check(ws16(0, 1, 0x10), { data: block })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 4 } });
    i.quiescent();
  });

  it("UNMAP deallocates every descriptor's blocks, after checking them all", () => {
    const i = boot();
    i.login(A);
    i.writeBlocks(1, 0, pattern(12, 64));
    const unmap = (descriptors: [number, number][], listBytes?: number) => {
      const list = Uint8Array.from([...be16(6 + 16 * descriptors.length), ...be16(16 * descriptors.length), 0, 0, 0, 0,
        ...descriptors.flatMap(([lba, n]) => [...be64(lba), ...be32(n), 0, 0, 0, 0])]);
      return { cdb: [0x42, 0, 0, 0, 0, 0, 0, ...be16(listBytes ?? list.length), 0], data: list };
    };
    let u = unmap([[4, 4], [20, 0], [40, 8]]);
    i.good(u.cdb, { lun: 1, data: u.data });
    const back = i.readBlocks(1, 0, 64);
    const want = pattern(12, 64);
    want.fill(0, 4 * BLOCK, 8 * BLOCK);
    want.fill(0, 40 * BLOCK, 48 * BLOCK);
    expect(back).toEqual(want);
    // One descriptor past the end: LBA OUT OF RANGE, and the good one before it is left alone.
    u = unmap([[0, 2], [LUN1_BLOCKS - 1, 2]]);
    expect(i.check(u.cdb, { lun: 1, data: u.data })).toMatchObject({ asc: 0x21 });
    expect(i.readBlocks(1, 0, 2)).toEqual(want.subarray(0, 2 * BLOCK));
    u = unmap(Array.from({ length: 65 }, (_, k) => [k, 1] as [number, number]));
    expect(i.check(u.cdb, { lun: 1, data: u.data })).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 2 } });
    u = unmap([[0, 65537]]);
    expect(i.check(u.cdb, { lun: 1, data: u.data })).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 16 } });
    expect(i.check([0x42, 0, 0, 0, 0, 0, 0, 0, 4, 0], { lun: 1, data: new Uint8Array(4) })).toMatchObject({ asc: 0x1a });
    i.good([0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0], { lun: 1 }); // no list: nothing to do
    expect(i.check([0x42, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], { lun: 1 })).toMatchObject({ asc: 0x24, field: { byte: 1, bit: 0 } }); // ANCHOR
    i.quiescent();
  });

  it("many large reads at once wait for buffers in turn and all complete (backpressure, not a trap)", () => {
    const i = boot();
    i.login(A);
    const data = pattern(13, 2048);
    i.writeBlocks(0, 0, data);
    const tasks = Array.from({ length: 60 }, (_, k) => i.submit(read16(0, 2048), { expected: 2048 * BLOCK, tag: k }));
    for (const task of tasks) expect(task).not.toBe(TASK_NONE);
    i.t.board.runFor(200_000);
    expect(i.t.call("testScsiParked", 2) as number).toBeGreaterThan(0); // some wait for large buffers
    for (const task of tasks) {
      i.wait(task, 20000);
      const r = i.result(task);
      expect(r.status).toBe(GOOD);
      expect(Buffer.compare(r.data, data)).toBe(0);
      i.release(task);
    }
    i.quiescent();
  });

  it("TASK SET FULL: the table's 256 records, then none", () => {
    const i = boot();
    const held: number[] = [];
    for (let k = 0; k < 256; k++) held.push(i.t.call("testScsiTmf", A, 0, Tmf.AbortTask, 0xdead) as number);
    expect(held).not.toContain(TASK_NONE);
    expect(i.t.call("testScsiSubmit", A, 0, 0, 0, 16, 1, 0)).toBe(TASK_NONE);
    i.t.board.runFor(1_000_000);
    for (const task of held) {
      expect(i.t.call("testScsiTmfResponse", task)).toBe(TmfResponse.TaskDoesNotExist);
      i.release(task);
    }
    i.quiescent();
  });
});

describe("reservations across two nexuses", () => {
  it("RESERVE (6): others conflict except INQUIRY, REPORT LUNS and RELEASE; nexus loss and LUN reset end it", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    i.good([0x16, 0, 0, 0, 0, 0]);
    i.good([0x16, 0, 0, 0, 0, 0]); // again, same nexus
    expect(i.run([0x16, 0, 0, 0, 0, 0], { nexus: B }).status).toBe(RESERVATION_CONFLICT);
    expect(i.run(modeSense6(0x3f), { nexus: B, expected: 255 }).status).toBe(RESERVATION_CONFLICT);
    expect(i.run(read10(0, 1), { nexus: B, expected: BLOCK }).status).toBe(RESERVATION_CONFLICT);
    expect(i.run(tur(), { nexus: B }).status).toBe(RESERVATION_CONFLICT);
    expect(i.run(tur(), { nexus: B, lun: 1 }).status).toBe(GOOD); // another logical unit
    i.good(inquiry(0, 0, 36), { nexus: B, expected: 36 });
    i.good(modeSense6(0x3f), { expected: 255 });
    i.good([0x17, 0, 0, 0, 0, 0], { nexus: B }); // RELEASE by another: nothing happens
    expect(i.run(tur(), { nexus: B }).status).toBe(RESERVATION_CONFLICT);
    expect(i.run(prIn(0), { expected: 4096 }).status).toBe(RESERVATION_CONFLICT); // PR IN conflicts with RESERVE (6)
    i.t.call("testScsiNexusGone", A);
    i.t.board.runFor(1_000_000);
    i.good([0x16, 0, 0, 0, 0, 0], { nexus: B });
    const reset = i.tmf(B, 0, Tmf.LunReset);
    i.wait(reset);
    expect(i.t.call("testScsiTmfResponse", reset)).toBe(TmfResponse.Complete);
    i.release(reset);
    expect(i.check(tur(), { nexus: A })).toMatchObject({ asc: 0x29 });
    i.good([0x16, 0, 0, 0, 0, 0], { nexus: A });
    i.good([0x17, 0, 0, 0, 0, 0], { nexus: A });
    i.quiescent();
  });

  it("persistent reservations: register, reserve, access by type, release, preempt, clear, with their unit attentions", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    const k1 = 0x1111_2222_3333_4444n;
    const k2 = 0x5555n;
    const out = (nexus: number, action: number, key: bigint, saKey: bigint, type = 0) =>
      i.run(prOut(action, type), { nexus, data: prList(key, saKey) }).status;
    expect(out(A, 6, 0n, k1)).toBe(GOOD); // REGISTER AND IGNORE EXISTING KEY
    expect(out(B, 0, 0n, k2)).toBe(GOOD); // REGISTER
    expect(out(B, 0, 0n, 0x77n)).toBe(RESERVATION_CONFLICT); // registered: the key must match
    const keys = i.good(prIn(0), { expected: 4096 });
    expect(keys).toEqual(Uint8Array.from([...be32(2), ...be32(16), ...be64(k1), ...be64(k2)]));
    expect(i.run([0x16, 0, 0, 0, 0, 0]).status).toBe(RESERVATION_CONFLICT); // RESERVE (6) with registrations (CRH 0)
    // Write Exclusive by A: B (registered) may read, not write; A may do both.
    expect(out(A, 1, k1, 0n, 1)).toBe(GOOD);
    expect(i.good(prIn(1), { expected: 4096 })).toEqual(Uint8Array.from([...be32(2), ...be32(16), ...be64(k1), 0, 0, 0, 0, 0, 0x01, 0, 0]));
    // READ FULL STATUS: a descriptor per registrant, the holder marked with scope and type, an iSCSI TransportID.
    const transportId = [0x05, 0, 0, 20, ...new Array<number>(20).fill(0)];
    const descriptor = (key: bigint, holder: boolean) =>
      [...be64(key), 0, 0, 0, 0, holder ? 0x01 : 0, holder ? 0x01 : 0, 0, 0, 0, 0, 0, 1, ...be32(24), ...transportId];
    expect(i.good(prIn(3), { expected: 4096 })).toEqual(Uint8Array.from([...be32(2), ...be32(96), ...descriptor(k1, true), ...descriptor(k2, false)]));
    expect(i.good(prIn(3, 40), { expected: 40 })).toEqual(Uint8Array.from([...be32(2), ...be32(96), ...descriptor(k1, true)]).subarray(0, 40));
    i.writeBlocks(0, 0, pattern(20, 1));
    expect(i.readBlocks(0, 0, 1, B)).toEqual(pattern(20, 1));
    expect(i.run(write10(0, 1), { nexus: B, data: pattern(21, 1) }).status).toBe(RESERVATION_CONFLICT);
    expect(out(A, 1, k1, 0n, 3)).toBe(RESERVATION_CONFLICT); // reserving again with another type
    expect(out(B, 1, k2, 0n, 1)).toBe(RESERVATION_CONFLICT); // B is not the holder
    expect(out(A, 2, k1, 0n, 3)).toBe(CHECK_CONDITION); // RELEASE with the wrong type: INVALID RELEASE
    // Release, then Exclusive Access: B may not even read. Registrants Only: B may, being registered.
    expect(out(A, 2, k1, 0n, 1)).toBe(GOOD);
    expect(out(A, 1, k1, 0n, 3)).toBe(GOOD);
    expect(i.run(read10(0, 1), { nexus: B, expected: BLOCK }).status).toBe(RESERVATION_CONFLICT);
    expect(i.run(tur(), { nexus: B }).status).toBe(GOOD); // TEST UNIT READY is allowed
    expect(out(A, 2, k1, 0n, 3)).toBe(GOOD);
    expect(out(A, 1, k1, 0n, 6)).toBe(GOOD); // Exclusive Access, Registrants Only
    expect(i.run(read10(0, 1), { nexus: B, expected: BLOCK }).status).toBe(GOOD);
    expect(i.run(read10(0, 1), { nexus: 3, expected: BLOCK }).status).toBe(CHECK_CONDITION); // POWER ON first
    expect(i.run(read10(0, 1), { nexus: 3, expected: BLOCK }).status).toBe(RESERVATION_CONFLICT); // not registered
    // Releasing a registrants-only reservation tells the other registrants.
    expect(out(A, 2, k1, 0n, 6)).toBe(GOOD);
    expect(i.check(tur(), { nexus: B })).toMatchObject({ key: Key.UnitAttention, asc: 0x2a, ascq: 0x04 });
    // All registrants: the key reads as zero, and every registrant holds it.
    expect(out(B, 1, k2, 0n, 8)).toBe(GOOD);
    expect(i.good(prIn(1), { expected: 4096 }).subarray(8, 22)).toEqual(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08]));
    expect(i.run(write10(0, 1), { nexus: A, data: pattern(22, 1) }).status).toBe(GOOD);
    expect(out(A, 2, k1, 0n, 8)).toBe(GOOD);
    expect(i.check(tur(), { nexus: B })).toMatchObject({ key: Key.UnitAttention, asc: 0x2a, ascq: 0x04 });
    // PREEMPT with no reservation: A removes B's registration; B hears REGISTRATIONS PREEMPTED.
    const before = new DataView(i.good(prIn(0), { expected: 4096 }).buffer).getUint32(0);
    expect(out(A, 4, k1, k2, 1)).toBe(GOOD);
    expect(i.check(tur(), { nexus: B })).toMatchObject({ key: Key.UnitAttention, asc: 0x2a, ascq: 0x05 });
    const after = i.good(prIn(0), { expected: 4096 });
    expect(after).toEqual(Uint8Array.from([...be32(before + 1), ...be32(8), ...be64(k1)]));
    expect(out(A, 4, k1, 0x9999n, 1)).toBe(RESERVATION_CONFLICT); // no registration has that key
    // CLEAR: everything goes; the registrants hear RESERVATIONS PREEMPTED.
    expect(out(B, 6, 0n, k2)).toBe(GOOD);
    expect(out(A, 3, k1, 0n)).toBe(GOOD);
    expect(i.check(tur(), { nexus: B })).toMatchObject({ key: Key.UnitAttention, asc: 0x2a, ascq: 0x03 });
    expect(i.good(prIn(0), { expected: 4096 }).subarray(4, 8)).toEqual(Uint8Array.from([0, 0, 0, 0]));
    expect(i.good(prIn(2), { expected: 4096 })).toEqual(Uint8Array.from([0, 8, 0x0c, 0x80, 0xea, 0x01, 0, 0])); // SIP_C, ATP_C
    // Refused parameter lists and fields.
    expect(i.check([0x5f, 0, 0, 0, 0, ...be32(20), 0], { data: new Uint8Array(20) })).toMatchObject({ asc: 0x1a, field: { byte: 5 } });
    expect(i.check(prOut(6), { data: prList(0n, k1, 0x01) })).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 20, bit: 0 } }); // APTPL
    expect(i.check(prOut(6), { data: prList(0n, k1, 0x08) })).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 20, bit: 3 } }); // SPEC_I_PT
    expect(out(A, 6, 0n, k1)).toBe(GOOD);
    expect(i.check(prOut(1, 0x10 | 1), { data: prList(k1, 0n) })).toMatchObject({ asc: 0x24, field: { byte: 2, bit: 7 } }); // scope
    expect(i.check(prOut(1, 2), { data: prList(k1, 0n) })).toMatchObject({ asc: 0x24, field: { byte: 2, bit: 3 } }); // type 2
    expect(out(A, 0, k1, 0n)).toBe(GOOD); // unregister
    i.quiescent();
  });

  it("PREEMPT AND ABORT aborts the preempted nexus's tasks on that logical unit", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    expect(i.run(prOut(6), { nexus: A, data: prList(0n, 1n) }).status).toBe(GOOD);
    expect(i.run(prOut(6), { nexus: B, data: prList(0n, 2n) }).status).toBe(GOOD);
    expect(i.run(prOut(1, 1), { nexus: B, data: prList(2n, 0n) }).status).toBe(GOOD);
    const held = i.submit(write10(0, 8), { nexus: B, data: pattern(30, 8), hold: true });
    i.t.board.runFor(500_000);
    expect(i.t.call("testScsiDataOutAsked", held)).toBe(8 * BLOCK);
    expect(i.run(prOut(5, 3), { nexus: A, data: prList(1n, 2n) }).status).toBe(GOOD);
    expect(i.done(held)).toBe(true);
    const r = i.result(held);
    expect([r.status, r.aborted, r.abortReported], "another nexus's action, TAS 1: reported").toEqual([TASK_ABORTED, true, true]);
    i.t.call("testScsiDataOutSend", held, 0); // late Data-Out from the transport: ignored
    i.t.board.runFor(500_000);
    expect(i.t.call("testScsiStaleDataReady")).toBe(1n);
    i.release(held);
    expect(i.check(tur(), { nexus: B })).toMatchObject({ asc: 0x2a, ascq: 0x05 });
    expect(i.run(read10(0, 1), { nexus: B, expected: BLOCK }).status).toBe(RESERVATION_CONFLICT); // A holds Exclusive Access
    expect(i.run(prOut(3), { nexus: A, data: prList(1n, 0n) }).status).toBe(GOOD);
    i.quiescent();
  });
});

// EXTENDED COPY (LID1) parameter lists as SPC-4 lays them out.
const naaOf = (lun: number): bigint => (5n << 60n) | (0x020002n << 36n) | (identity(lun, 0, lun) & 0xf_ffff_ffffn);
function targetDescriptor(lun: number, blockBytes = BLOCK, type = 0xe4): number[] {
  const d = new Array<number>(32).fill(0);
  d[0] = type;
  d.splice(4, 12, 0x01, 0x03, 0x00, 8, ...be64(naaOf(lun)));
  d.splice(29, 3, (blockBytes >>> 16) & 0xff, ...be16(blockBytes & 0xffff));
  return d;
}
function segment(source: number, destination: number, blocks: number, sourceLba: number, destinationLba: number, type = 0x02): number[] {
  return [type, 0, ...be16(0x18), ...be16(source), ...be16(destination), 0, 0, ...be16(blocks), ...be64(sourceLba), ...be64(destinationLba)];
}
function copyList(listId: number, targets: number[][], segments: number[][], usage = 0): Uint8Array {
  const t = targets.flat();
  const g = segments.flat();
  return Uint8Array.from([listId, usage << 3, ...be16(t.length), 0, 0, 0, 0, ...be32(g.length), ...be32(0), ...t, ...g]);
}
const extendedCopy = (listBytes: number): number[] => [0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(listBytes), 0, 0];
const copyResults = (sa: number, listId: number, alloc = 1024): number[] => [0x84, sa, listId, 0, 0, 0, 0, 0, 0, 0, ...be32(alloc), 0, 0];

describe("EXTENDED COPY and RECEIVE COPY RESULTS", () => {
  it("copies between two volumes in chunks, and COPY STATUS, RECEIVE DATA and OPERATING PARAMETERS report it", () => {
    // 1100 blocks (550 KiB) from LUN 0 to LUN 1 and back within LUN 0: three 256 KiB chunks per segment, every
    // byte through CTA READ and WRITE services; the rest of LUN 1 stays untouched.
    const i = boot();
    i.login(A);
    const data = pattern(11, 1100);
    i.writeBlocks(0, 7, data);
    const list = copyList(5, [targetDescriptor(0), targetDescriptor(1)], [segment(0, 1, 1100, 7, 300), segment(1, 0, 1100, 300, 2000)]);
    expect(i.run(extendedCopy(list.length), { data: list }).status).toBe(GOOD);
    expect(i.readBlocks(1, 300, 1100)).toEqual(data);
    expect(i.readBlocks(0, 2000, 1100)).toEqual(data);
    expect(i.readBlocks(1, 299, 1)).toEqual(new Uint8Array(BLOCK));
    // COPY STATUS: completed, 2 segments, 2 × 1100 × 512 bytes; RECEIVE DATA: nothing held.
    expect(i.good(copyResults(0, 5), { expected: 1024 })).toEqual(Uint8Array.from([...be32(8), 0x01, ...be16(2), 0x00, ...be32(2 * 1100 * BLOCK)]));
    expect(i.good(copyResults(1, 5), { expected: 1024 })).toEqual(Uint8Array.from(be32(0)));
    expect(i.good(copyResults(4, 5), { expected: 1024 })).toEqual(Uint8Array.from(be32(0))); // it did not fail
    const params = i.good(copyResults(3, 0), { expected: 1024 });
    expect(Array.from(params.subarray(0, 20))).toEqual([...be32(42), 0, 0, 0, 0, ...be16(8), ...be16(16), ...be32(1024), ...be32(256 << 20)]);
    expect(Array.from(params.subarray(34, 46))).toEqual([...be16(8), 8, 9, 0, 0, 0, 0, 0, 2, 0x02, 0xe4]);
    // Results are per nexus and list identifier; the nexus's loss discards them.
    expect(i.check(copyResults(0, 6), { expected: 1024 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 2 } });
    i.login(B);
    expect(i.check(copyResults(0, 5), { nexus: B, expected: 1024 })).toMatchObject({ asc: 0x24 });
    i.t.call("testScsiNexusGone", A);
    i.t.board.runFor(1_000_000);
    i.login(A, 0x07); // I_T NEXUS LOSS OCCURRED
    expect(i.check(copyResults(0, 5), { expected: 1024 })).toMatchObject({ asc: 0x24 });
    // A PARAMETER LIST LENGTH of 0 copies nothing and is GOOD.
    expect(i.run(extendedCopy(0)).status).toBe(GOOD);
    i.quiescent();
  });

  it("refuses bad parameter lists with SPC-4's sense, before anything is copied", () => {
    const i = boot();
    i.login(A);
    const good = copyList(1, [targetDescriptor(0)], [segment(0, 0, 8, 0, 100)]);
    const refuse = (list: Uint8Array, cdbBytes = list.length) => i.check(extendedCopy(cdbBytes), { data: list });
    expect(refuse(good.subarray(0, 47), 47)).toMatchObject({ key: Key.IllegalRequest, asc: 0x1a, ascq: 0x00 });
    expect(refuse(good, good.length + 1)).toMatchObject({ asc: 0x0e, ascq: 0x03 }); // the Data-Out fell short of the list
    expect(i.check(extendedCopy(2000), { expected: 2000, direction: Dir.Write })).toMatchObject({ asc: 0x1a, field: { inCdb: true, byte: 10 } });
    const nine = Array.from({ length: 9 }, () => targetDescriptor(0));
    expect(refuse(copyList(1, nine, [segment(0, 0, 8, 0, 100)]))).toMatchObject({ asc: 0x26, ascq: 0x06, field: { inCdb: false, byte: 16 + 8 * 32 } });
    const seventeen = Array.from({ length: 17 }, () => segment(0, 0, 8, 0, 100));
    expect(refuse(copyList(1, [targetDescriptor(0)], seventeen))).toMatchObject({ asc: 0x26, ascq: 0x08, field: { byte: 48 + 16 * 28 } });
    expect(refuse(copyList(1, [targetDescriptor(0, BLOCK, 0xe0)], [segment(0, 0, 8, 0, 100)]))).toMatchObject({ asc: 0x26, ascq: 0x07, field: { byte: 16 } });
    expect(refuse(copyList(1, [targetDescriptor(0)], [segment(0, 0, 8, 0, 100, 0x03)]))).toMatchObject({ asc: 0x26, ascq: 0x09, field: { byte: 48 } });
    expect(refuse(copyList(1, [targetDescriptor(0)], [segment(0, 0, 8, 0, 100)], 1))).toMatchObject({ asc: 0x26, ascq: 0x00, field: { byte: 1, bit: 4 } });
    const tooLong = copyList(1, Array.from({ length: 8 }, () => targetDescriptor(0)), Array.from({ length: 16 }, () => segment(0, 0, 8, 0, 100)));
    tooLong.set(be32(1024 - 8 * 32 + 28), 8); // SEGMENT DESCRIPTOR LIST LENGTH past MAXIMUM DESCRIPTOR LIST LENGTH
    expect(refuse(tooLong)).toMatchObject({ asc: 0x1a, field: { inCdb: false, byte: 8 } });
    i.quiescent();
  });

  it("ends a bad segment with COPY ABORTED naming it, and FAILED SEGMENT DETAILS gives that sense once", () => {
    const i = boot();
    i.login(A);
    i.writeBlocks(0, 0, pattern(3, 8));
    const COPY_ABORTED = 0xa;
    const run = (list: Uint8Array) => {
      const r = i.run(extendedCopy(list.length), { data: list });
      expect(r.status).toBe(CHECK_CONDITION);
      return { sense: parseSense(r.sense), segment: new DataView(r.sense.buffer, r.sense.byteOffset).getUint32(8) };
    };
    // Segment 1 names target descriptor 1 of 1: COPY TARGET DEVICE NOT REACHABLE at its DESTINATION index; segment
    // 0 was copied already.
    const first = run(copyList(2, [targetDescriptor(0)], [segment(0, 0, 8, 0, 100), segment(0, 1, 8, 0, 200)]));
    expect(first).toMatchObject({ segment: 1, sense: { key: COPY_ABORTED, asc: 0x0d, ascq: 0x02, field: { inCdb: false, byte: 48 + 28 + 6 } } });
    expect(i.readBlocks(0, 100, 8)).toEqual(pattern(3, 8));
    expect(i.good(copyResults(0, 2), { expected: 1024 })).toEqual(Uint8Array.from([...be32(8), 0x02, ...be16(1), 0x00, ...be32(8 * BLOCK)]));
    const details = i.good(copyResults(4, 2), { expected: 1024 });
    expect(details.length).toBe(60 + 18);
    expect([details[56], details[58], details[59], details[60 + 2], details[60 + 12], details[60 + 13]]).toEqual([CHECK_CONDITION, 0, 18, COPY_ABORTED, 0x0d, 0x02]);
    expect(i.good(copyResults(4, 2), { expected: 1024 })).toEqual(Uint8Array.from(be32(0))); // given once, then discarded
    // A range past the end of the destination; a descriptor naming no logical unit of this target; a DISK BLOCK
    // LENGTH that is not the unit's.
    expect(run(copyList(3, [targetDescriptor(0)], [segment(0, 0, 8, 0, LUN0_BLOCKS - 1)]))).toMatchObject({ segment: 0, sense: { key: COPY_ABORTED, asc: 0, ascq: 0, field: { byte: 48 + 20 } } });
    const stranger = targetDescriptor(0);
    stranger[15] ^= 0xff;
    expect(run(copyList(3, [targetDescriptor(0), stranger], [segment(0, 1, 8, 0, 0)]))).toMatchObject({ sense: { asc: 0x0d, ascq: 0x02, field: { byte: 16 + 64 + 6 } } });
    expect(run(copyList(3, [targetDescriptor(0, 4096)], [segment(0, 0, 8, 0, 100)]))).toMatchObject({ sense: { asc: 0x0d, ascq: 0x03, field: { byte: 16 + 29 } } });
    i.quiescent();
  });
});

// PERSISTENT RESERVE OUT with TransportIDs (SPC-4, PERSISTENT RESERVE OUT parameter list; iSCSI TransportIDs).
/** An iSCSI TransportID: format 01b "name,i,0xISID" or 00b "name", null-terminated, padded to a multiple of 4. */
function transportId(text: string, format = 1, protocol = 5): number[] {
  const bytes = [...Buffer.from(text, "latin1"), 0];
  while (bytes.length % 4 !== 0 || bytes.length < 20) bytes.push(0);
  return [(format << 6) | protocol, 0, ...be16(bytes.length), ...bytes];
}
const prOutList = (action: number, listBytes: number, type = 0): number[] => [0x5f, action, type, 0, 0, ...be32(listBytes), 0];
/** REGISTER's list with SPEC_I_PT (and `flags` besides) and the TransportIDs after TRANSPORTID PARAMETER DATA LENGTH. */
function specifiedList(key: bigint, saKey: bigint, ids: number[][], flags = 0x08): Uint8Array {
  const t = ids.flat();
  return Uint8Array.from([...be64(key), ...be64(saKey), 0, 0, 0, 0, flags, 0, 0, 0, ...be32(t.length), ...t]);
}
/** REGISTER AND MOVE's list: UNREG and APTPL in byte 17, the relative target port, one TransportID. */
function moveList(key: bigint, saKey: bigint, targetPort: number, id: number[], flags = 0): Uint8Array {
  return Uint8Array.from([...be64(key), ...be64(saKey), 0, flags, ...be16(targetPort), ...be32(id.length), ...id]);
}
describe("PERSISTENT RESERVE OUT with TransportIDs: SPEC_I_PT, ALL_TG_PT, REGISTER AND MOVE", () => {
  it("SPEC_I_PT registers the sender and each named I_T nexus, logged in or not, with one generation step", () => {
    // Three initiator ports: x sends, y is logged in, the third has never logged in; ISID hex in any case.
    const i = boot();
    const x = identify(i, portName("host1", 1));
    const y = identify(i, portName("host2", 0xa));
    i.login(x);
    i.login(y);
    const k = 0xabcdn;
    const ids = [transportId(`${IQN}host2,i,0x00000000000A`), transportId(portName("host3", 0xb))];
    const list = specifiedList(0n, k, ids);
    i.good(prOutList(0, list.length), { nexus: x, data: list });
    expect(readKeys(i, x)).toEqual([1, [k, k, k]]);
    expect(fullStatus(i, x).map((d) => [d.format, d.name, d.port])).toEqual([
      [0x45, portName("host1", 1), 1], [0x45, portName("host2", 0xa), 1], [0x45, portName("host3", 0xb), 1],
    ]);
    // y and the late third port are registered: their key works for REGISTER (changing it) and RESERVE.
    i.good(prOut(1, 1), { nexus: y, data: prList(k, 0n) });
    const z = identify(i, portName("host3", 0xb));
    i.login(z);
    i.good(prOut(0), { nexus: z, data: prList(k, 0x77n) });
    expect(readKeys(i, x)).toEqual([2, [k, k, 0x77n]]);
    // A TransportID naming the sender, or one already registered with the same key, adds nothing.
    i.good(prOut(0), { nexus: x, data: prList(k, 0n) }); // x unregisters
    const again = specifiedList(0n, k, [transportId(portName("host1", 1)), transportId(portName("host2", 0xa))]);
    i.good(prOutList(0, again.length), { nexus: x, data: again });
    expect(readKeys(i, x)).toEqual([4, [k, k, 0x77n]]);
    i.quiescent();
  });

  it("an invalid TransportID or list is INVALID FIELD IN PARAMETER LIST pointing at it, and nothing is registered", () => {
    const i = boot();
    const x = identify(i, portName("host1", 1));
    i.login(x);
    const good = transportId(portName("host2", 2));
    const refuse = (ids: number[][], field: { byte: number; bit?: number }, flags = 0x08, action = 0): void => {
      const list = specifiedList(0n, 0x5n, ids, flags);
      expect(i.check(prOutList(action, list.length), { nexus: x, data: list })).toEqual({ key: Key.IllegalRequest, asc: 0x26, ascq: 0, field: { inCdb: false, ...field } });
    };
    const second = 28 + good.length; // the second TransportID's first byte: the first is fine, and still not registered
    refuse([good, transportId(portName("host3", 3), 1, 0x1)], { byte: second }); // protocol identifier 1h (FCP)
    refuse([good, transportId(portName("host3", 3), 2)], { byte: second }); // format 10b
    refuse([good, [0x45, 0, ...be16(18), ...new Array<number>(18).fill(0x41)]], { byte: second + 2 }); // length not a multiple of 4
    refuse([[0x45, 0, ...be16(64), ...transportId(portName("host3", 3)).slice(4)]], { byte: 28 + 2 }); // longer than the list
    refuse([[0x45, 0, ...be16(20), ...new Array<number>(20).fill(0x41)]], { byte: 28 + 4 }); // no null
    refuse([transportId(`${IQN}host3,i,0x12345678901234`)], { byte: 28 + 4 + IQN.length + 5 + 5 }); // an ISID of 14 digits
    refuse([transportId(`${IQN}host3,i,0xgg`)], { byte: 28 + 4 + IQN.length + 5 + 5 }); // not hexadecimal
    refuse([transportId(`${IQN}host3`)], { byte: 28 + 4 }); // format 01b without ",i,0x"
    refuse([transportId("")], { byte: 28 + 4 }, 0x08); // format 00b... with format 01b and an empty name
    refuse([good], { byte: 20, bit: 3 }, 0x08, 6); // SPEC_I_PT with REGISTER AND IGNORE EXISTING KEY
    refuse([good], { byte: 20, bit: 3 }, 0x08, 1); // SPEC_I_PT with RESERVE
    refuse([good], { byte: 20, bit: 0 }, 0x09); // APTPL: persistence through power loss is not supported
    const short = specifiedList(0n, 0x5n, [good]);
    new DataView(short.buffer).setUint32(24, 20); // TRANSPORTID PARAMETER DATA LENGTH not the list's rest
    expect(i.check(prOutList(0, short.length), { nexus: x, data: short })).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 24 } });
    expect(i.check(prOutList(0, 24), { nexus: x, data: prList(0n, 5n, 0x08) })).toMatchObject({ asc: 0x1a, field: { inCdb: true, byte: 5 } });
    expect(i.check(prOutList(0, 28), { nexus: x, data: specifiedList(0n, 5n, [], 0) })).toMatchObject({ asc: 0x1a, field: { inCdb: true, byte: 5 } });
    expect(readKeys(i, x)).toEqual([0, []]);
    i.quiescent();
  });

  it("a named nexus registered with another key is a RESERVATION CONFLICT; SPEC_I_PT from a registered nexus is refused", () => {
    const i = boot();
    const x = identify(i, portName("host1", 1));
    const y = identify(i, portName("host2", 2));
    i.login(x);
    i.login(y);
    i.good(prOut(0), { nexus: y, data: prList(0n, 0x22n) });
    const list = specifiedList(0n, 0x11n, [transportId(portName("host3", 3)), transportId(portName("host2", 2))]);
    expect(i.run(prOutList(0, list.length), { nexus: x, data: list }).status).toBe(RESERVATION_CONFLICT);
    expect(readKeys(i, x)).toEqual([1, [0x22n]]); // neither x nor host3
    const same = specifiedList(0n, 0x22n, [transportId(portName("host2", 2))]);
    i.good(prOutList(0, same.length), { nexus: x, data: same });
    expect(readKeys(i, x)).toEqual([2, [0x22n, 0x22n]]);
    const more = specifiedList(0x22n, 0x22n, [transportId(portName("host3", 3))]);
    expect(i.check(prOutList(0, more.length), { nexus: x, data: more })).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 20, bit: 3 } });
    const wrongKey = specifiedList(0x99n, 0x22n, [transportId(portName("host3", 3))]);
    expect(i.run(prOutList(0, wrongKey.length), { nexus: x, data: wrongKey }).status).toBe(RESERVATION_CONFLICT);
    expect(readKeys(i, x)).toEqual([2, [0x22n, 0x22n]]);
    i.quiescent();
  });

  it("more registrations than the table holds: INSUFFICIENT REGISTRATION RESOURCES and none made; one fewer fits", () => {
    const i = boot();
    const x = identify(i, portName("host1", 1));
    i.login(x);
    const ports = (count: number) => Array.from({ length: count }, (_, k) => transportId(portName("many", k + 1)));
    const full = specifiedList(0n, 0x33n, ports(32)); // 32 named and the sender: 33 of 32
    expect(i.check(prOutList(0, full.length), { nexus: x, data: full })).toMatchObject({ key: Key.IllegalRequest, asc: 0x55, ascq: 0x04 });
    expect(readKeys(i, x)).toEqual([0, []]);
    const fits = specifiedList(0n, 0x33n, ports(31));
    i.good(prOutList(0, fits.length), { nexus: x, data: fits });
    expect(readKeys(i, x)[1]).toHaveLength(32);
    expect(i.check(prOut(6), { nexus: identify(i, portName("late", 1)), data: prList(0n, 0x44n) })).toMatchObject({ asc: 0x29 });
    expect(i.check(prOut(6), { nexus: identify(i, portName("late", 1)), data: prList(0n, 0x44n) })).toMatchObject({ asc: 0x55, ascq: 0x04 });
    i.quiescent();
  });

  it("a format 00b TransportID registers every port of that initiator name, later ones too", () => {
    const i = boot();
    const x = identify(i, portName("host1", 1));
    i.login(x);
    const list = specifiedList(0n, 0x55n, [transportId(`${IQN}host2`, 0)]);
    i.good(prOutList(0, list.length), { nexus: x, data: list });
    expect(fullStatus(i, x).map((d) => [d.format, d.name])).toEqual([[0x45, portName("host1", 1)], [0x05, `${IQN}host2`]]);
    for (const isid of [7, 8]) {
      const port = identify(i, portName("host2", isid));
      i.login(port);
      i.good(prOut(0), { nexus: port, data: prList(0x55n, 0x55n) }); // registered: its key is 0x55
    }
    const other = identify(i, portName("host22", 7)); // a longer name with the same start is another initiator
    i.login(other);
    expect(i.run(prOut(0), { nexus: other, data: prList(0x55n, 0x55n) }).status).toBe(RESERVATION_CONFLICT);
    i.quiescent();
  });

  it("ALL_TG_PT: one registration for the initiator port at every target port, reported once with ALL_TG_PT", () => {
    const i = boot();
    const x1 = identify(i, portName("host1", 1), 1);
    const x2 = identify(i, portName("host1", 1), 2); // the same initiator port through target port 2
    const y = identify(i, portName("host2", 2), 1);
    for (const n of [x1, x2, y]) i.login(n);
    i.good(prOut(0), { nexus: x1, data: prList(0n, 0x66n, 0x04) });
    i.good(prOut(1, 1), { nexus: x2, data: prList(0x66n, 0n) }); // Write Exclusive, reserved through port 2
    i.good(prOut(0), { nexus: y, data: prList(0n, 0x77n) });
    i.writeBlocks(0, 0, pattern(50, 1), x1); // x1 holds it as well
    expect(i.run(write10(0, 1), { nexus: y, data: pattern(51, 1) }).status).toBe(RESERVATION_CONFLICT);
    expect(fullStatus(i, y)).toEqual([
      { key: 0x66n, flags: 0x03, type: 1, port: 1, format: 0x45, name: portName("host1", 1) },
      { key: 0x77n, flags: 0x00, type: 0, port: 1, format: 0x45, name: portName("host2", 2) },
    ]);
    // Without ALL_TG_PT (LUN 1) the registration is port 1's alone.
    i.good(prOut(0), { nexus: x1, lun: 1, data: prList(0n, 0x66n) });
    expect(i.run(prOut(0), { nexus: x2, lun: 1, data: prList(0x66n, 0x66n) }).status).toBe(RESERVATION_CONFLICT);
    // Unregistering through either port ends it for both, and the reservation with it.
    i.good(prOut(0), { nexus: x2, data: prList(0x66n, 0n) });
    expect(readKeys(i, y)).toEqual([3, [0x77n]]);
    expect(i.good(prIn(1), { nexus: y, expected: 4096 }).subarray(4, 8)).toEqual(Uint8Array.from([0, 0, 0, 0]));
    // SPEC_I_PT with ALL_TG_PT: the named port is registered at every target port, port 2 as well.
    const w2 = identify(i, portName("host3", 3), 2);
    i.login(w2);
    const list = specifiedList(0n, 0x88n, [transportId(portName("host3", 3))], 0x0c);
    i.good(prOutList(0, list.length), { nexus: y, lun: 1, data: list });
    i.good(prOut(0), { nexus: w2, lun: 1, data: prList(0x88n, 0x88n) });
    expect(fullStatus(i, y, 1).map((d) => [d.key, d.flags, d.name])).toEqual([
      [0x66n, 0x00, portName("host1", 1)], [0x88n, 0x02, portName("host2", 2)], [0x88n, 0x02, portName("host3", 3)],
    ]);
    i.quiescent();
  });

  it("REGISTER AND MOVE: moves the reservation to the named I_T nexus, registering it; every refusal SPC-4 names", () => {
    const i = boot();
    const x = identify(i, portName("host1", 1));
    const y = identify(i, portName("host2", 2));
    const z = identify(i, portName("host3", 3));
    for (const n of [x, y, z]) i.login(n);
    const k1 = 0x1001n;
    const k2 = 0x2002n;
    i.good(prOut(0), { nexus: x, data: prList(0n, k1) });
    i.good(prOut(0), { nexus: z, data: prList(0n, 0x3003n) });
    const toY = transportId(portName("host2", 2));
    const move = (nexus: number, list: Uint8Array, lun = 0) => i.run(prOutList(7, list.length), { nexus, lun, data: list });
    const moveCheck = (nexus: number, list: Uint8Array, lun = 0) => i.check(prOutList(7, list.length), { nexus, lun, data: list });
    expect(moveCheck(x, moveList(k1, k2, 1, toY))).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 1, bit: 4 } }); // no reservation
    i.good(prOut(1, 1), { nexus: x, data: prList(k1, 0n) }); // Write Exclusive
    expect(move(y, moveList(0n, k2, 1, toY)).status).toBe(RESERVATION_CONFLICT); // not registered
    expect(move(x, moveList(0x9n, k2, 1, toY)).status).toBe(RESERVATION_CONFLICT); // wrong key
    expect(move(z, moveList(0x3003n, k2, 1, toY)).status).toBe(RESERVATION_CONFLICT); // registered, not the holder
    expect(moveCheck(x, moveList(k1, 0n, 1, toY))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 8 } }); // key zero
    expect(moveCheck(x, moveList(k1, k2, 1, toY, 0x01))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 17, bit: 0 } }); // APTPL
    expect(moveCheck(x, moveList(k1, k2, 0, toY))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 18 } }); // port 0
    expect(moveCheck(x, moveList(k1, k2, 1, transportId(portName("host2", 2), 1, 0x1)))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 24 } });
    expect(moveCheck(x, moveList(k1, k2, 1, transportId(`${IQN}host2`, 0)))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 24, bit: 7 } });
    expect(moveCheck(x, moveList(k1, k2, 2, transportId(portName("host1", 1))))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 28 } }); // itself
    const twoIds = Uint8Array.from([...moveList(k1, k2, 1, toY), ...toY]);
    new DataView(twoIds.buffer).setUint32(20, toY.length * 2);
    expect(moveCheck(x, twoIds)).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 20 } }); // more than one TransportID
    const lying = moveList(k1, k2, 1, toY);
    new DataView(lying.buffer).setUint32(20, 8);
    expect(moveCheck(x, lying)).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 20 } });
    expect(readKeys(i, x)).toEqual([2, [k1, 0x3003n]]); // nothing changed
    // The move: y (unregistered) gets k2 and the reservation, Write Exclusive still; x stays registered.
    i.good(prOutList(7, moveList(k1, k2, 1, toY).length), { nexus: x, data: moveList(k1, k2, 1, toY) });
    expect(readKeys(i, x)).toEqual([3, [k1, 0x3003n, k2]]);
    expect(i.good(prIn(1), { nexus: x, expected: 4096 })).toEqual(Uint8Array.from([...be32(3), ...be32(16), ...be64(k2), 0, 0, 0, 0, 0, 0x01, 0, 0]));
    expect(i.run(write10(0, 1), { nexus: x, data: pattern(60, 1) }).status).toBe(RESERVATION_CONFLICT);
    i.writeBlocks(0, 0, pattern(61, 1), y);
    // Back to x, which is registered already (no error: its key becomes k1 again), and UNREG drops y.
    const back = moveList(k2, k1, 1, transportId(portName("host1", 1)), 0x02);
    i.good(prOutList(7, back.length), { nexus: y, data: back });
    expect(readKeys(i, x)).toEqual([4, [k1, 0x3003n]]);
    expect(fullStatus(i, x).filter((d) => (d.flags & 1) !== 0).map((d) => d.name)).toEqual([portName("host1", 1)]);
    // All-registrants reservations do not move (LUN 1).
    i.good(prOut(0), { nexus: x, lun: 1, data: prList(0n, k1) });
    i.good(prOut(1, 7), { nexus: x, lun: 1, data: prList(k1, 0n) });
    expect(move(x, moveList(k1, k2, 1, toY), 1).status).toBe(RESERVATION_CONFLICT);
    i.quiescent();
  });
});

describe("I_T nexus identities", () => {
  it("one initiator port name, one nexus id across sessions: registrations found again, READ FULL STATUS names it", () => {
    // The transport names the nexus "InitiatorName,i,0xISID" (what iSCSI does at login); the same name comes back
    // with the same id after the session ends, and its persistent reservation registration is still there.
    const i = boot();
    const name = "iqn.2007-10.com.example:host,i,0x23d000000001";
    const x = identify(i, name);
    expect(identify(i, "iqn.2007-10.com.example:host,i,0x23d000000002")).not.toBe(x); // another ISID
    expect(identify(i, name, 2)).not.toBe(x); // another target port
    i.login(x);
    i.good(prOut(0), { nexus: x, data: prList(0n, 0xabcn) });
    i.t.call("testScsiNexusGone", x); // the session ends
    i.t.board.runFor(1_000_000);
    expect(identify(i, name)).toBe(x);
    i.login(x, 0x07); // the same initiator port: I_T NEXUS LOSS OCCURRED
    expect(i.good(prIn(0), { nexus: x, expected: 4096 })).toEqual(Uint8Array.from([...be32(1), ...be32(8), ...be64(0xabcn)]));
    // READ FULL STATUS: TransportID format 01b, protocol 5h, the name null-terminated and padded to 4 bytes.
    const full = i.good(prIn(3), { nexus: x, expected: 4096 });
    const idBytes = 4 + ((name.length + 1 + 3) & ~3);
    expect(Array.from(full.subarray(4, 8))).toEqual(be32(24 + idBytes));
    const d = full.subarray(8);
    expect(Array.from(d.subarray(18, 24))).toEqual([...be16(1), ...be32(idBytes)]);
    expect(Array.from(d.subarray(24, 28))).toEqual([0x45, 0, ...be16(idBytes - 4)]);
    expect(Buffer.from(d.subarray(28, 28 + idBytes - 4)).toString("latin1")).toBe(name.padEnd(idBytes - 4, "\0"));
    i.good(prOut(0), { nexus: x, data: prList(0xabcn, 0n) });
    i.quiescent();
  });
});

describe("task management", () => {
  it("ABORT TASK of a task waiting for Data-Out: one aborted ScsiDone, then the TMF's answer; nothing written", () => {
    const i = boot();
    i.login(A);
    i.writeBlocks(0, 40, new Uint8Array(4 * BLOCK).fill(0x33));
    const held = i.submit(write10(40, 4), { data: new Uint8Array(4 * BLOCK).fill(0x44), hold: true, tag: 77 });
    i.t.board.runFor(500_000);
    expect(i.t.call("testScsiDataOutAsked", held)).toBe(4 * BLOCK);
    expect(i.done(held)).toBe(false);
    const tmf = i.tmf(A, 0, Tmf.AbortTask, 77);
    i.wait(tmf);
    expect(i.t.call("testScsiTmfResponse", tmf)).toBe(TmfResponse.Complete);
    expect(i.done(held)).toBe(true);
    expect(i.result(held)).toMatchObject({ status: TASK_ABORTED, aborted: true, data: new Uint8Array(0) });
    i.release(held);
    i.release(tmf);
    expect(i.readBlocks(0, 40, 4)).toEqual(new Uint8Array(4 * BLOCK).fill(0x33));
    // A tag that names nothing; a LUN that does not exist; CLEAR ACA.
    const none = i.tmf(A, 0, Tmf.AbortTask, 78);
    i.wait(none);
    expect(i.t.call("testScsiTmfResponse", none)).toBe(TmfResponse.TaskDoesNotExist);
    i.release(none);
    const noLun = i.tmf(A, 9, Tmf.AbortTaskSet);
    i.wait(noLun);
    expect(i.t.call("testScsiTmfResponse", noLun)).toBe(TmfResponse.LunDoesNotExist);
    i.release(noLun);
    const aca = i.tmf(A, 0, Tmf.ClearAca);
    i.wait(aca);
    expect(i.t.call("testScsiTmfResponse", aca)).toBe(TmfResponse.NotSupported);
    i.release(aca);
    i.quiescent();
  });

  it("aborting tasks whose services are in flight: each ends once, aborted, before the TMF is answered", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    const doneBefore = i.t.call("testScsiDoneCount") as number;
    const reads = Array.from({ length: 8 }, (_, k) => i.submit(read16(k * 256, 256), { expected: 256 * BLOCK, tag: k }));
    const other = i.submit(read16(0, 16), { nexus: B, expected: 16 * BLOCK, tag: 99 });
    for (let k = 0; k < 100 && (i.t.call("testScsiServicesActive") as number) === 0; k++) i.t.board.runFor(2_000);
    expect(i.t.call("testScsiServicesActive") as number).toBeGreaterThan(0); // reads are at the CTA now
    const tmf = i.tmf(A, 0, Tmf.AbortTaskSet);
    i.wait(tmf);
    expect(i.t.call("testScsiTmfResponse", tmf)).toBe(TmfResponse.Complete);
    for (const task of reads) {
      expect(i.done(task)).toBe(true);
      const r = i.result(task);
      expect([r.status, r.aborted, r.data.length]).toEqual([TASK_ABORTED, true, 0]);
      i.release(task);
    }
    i.release(tmf);
    i.wait(other); // nexus B's task is not in A's task set
    expect(i.result(other).status).toBe(GOOD);
    i.release(other);
    expect((i.t.call("testScsiDoneCount") as number) - doneBefore).toBe(8 + 1 + 1);
    i.quiescent();
  });

  it("TARGET WARM/COLD RESET and CLEAR TASK SET: resets raise POWER ON for every nexus; other nexuses' tasks end with TASK ABORTED status (TAS 1)", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    const held = i.submit(write10(0, 1), { nexus: B, data: pattern(40, 1), hold: true });
    const own = i.submit(write10(8, 1), { nexus: A, data: pattern(40, 1), hold: true });
    i.t.board.runFor(300_000);
    const clear = i.tmf(A, 0, Tmf.ClearTaskSet);
    i.wait(clear);
    // SAM-5, Aborting commands, TAS 1: the other nexus's task is reported (old code: silently, with a 2Fh UA); the
    // issuing nexus's own is answered by the TMF alone.
    expect(i.result(held)).toMatchObject({ status: TASK_ABORTED, aborted: true, abortReported: true });
    expect(i.result(own)).toMatchObject({ status: TASK_ABORTED, aborted: true, abortReported: false });
    i.release(held);
    i.release(own);
    i.release(clear);
    expect(i.run(tur(), { nexus: B }).status, "no COMMANDS CLEARED BY ANOTHER INITIATOR with TAS 1").toBe(GOOD);
    expect(i.run(tur(), { nexus: A }).status).toBe(GOOD);
    for (const fn of [Tmf.TargetWarmReset, Tmf.TargetColdReset]) {
      const other = i.submit(write10(0, 1), { nexus: B, data: pattern(40, 1), hold: true });
      i.t.board.runFor(300_000);
      const reset = i.tmf(A, 0, fn);
      i.wait(reset);
      expect(i.t.call("testScsiTmfResponse", reset)).toBe(TmfResponse.Complete);
      expect(i.result(other)).toMatchObject({ status: TASK_ABORTED, aborted: true, abortReported: true });
      i.release(other);
      i.release(reset);
      for (const nexus of [A, B]) {
        for (const lun of [0, 1]) {
          expect(i.check(tur(), { nexus, lun })).toMatchObject({ asc: 0x29, ascq: 0 });
          expect(i.run(tur(), { nexus, lun }).status).toBe(GOOD);
        }
      }
    }
    i.quiescent();
  });

  it("a Data-Out that cannot come ends the task aborted", () => {
    const i = boot();
    i.login(A);
    const held = i.submit(write10(0, 2), { data: pattern(41, 2), hold: true });
    i.t.board.runFor(300_000);
    i.t.call("testScsiDataOutSend", held, 1);
    i.wait(held);
    expect(i.result(held)).toMatchObject({ status: TASK_ABORTED, aborted: true });
    i.release(held);
    i.t.call("testScsiStage", 0); // the staged bytes were never taken
    i.quiescent();
  });

  it("more nexuses than the table holds get BUSY, not a trap", () => {
    const i = boot();
    for (let n = 0; n < 64; n++) i.run(inquiry(0, 0, 36), { nexus: 100 + n, expected: 36 });
    expect(i.run(tur(), { nexus: 500 }).status).toBe(BUSY);
    i.t.call("testScsiNexusGone", 100);
    i.t.board.runFor(1_000_000);
    expect(i.check(tur(), { nexus: 500 })).toMatchObject({ asc: 0x29 });
    i.quiescent();
  });
});
