// Token-based copy (SBC-3 POPULATE TOKEN, WRITE USING TOKEN; SPC-4 RECEIVE ROD TOKEN INFORMATION and the
// Third-party Copy VPD page): driven through the SCSI probe of the test build against its two in-memory disks, with
// the data read back block for block, each refusal's sense checked byte for byte where SPC-4/SBC-3 name the field,
// and every test ending quiescent (no task, buffer or service held, the heap where boot left it).
import { describe, expect, it } from "vitest";
import {
  A, B, be16, be32, be64, BLOCK, boot, CHECK_CONDITION, GOOD, Key, LUN0_BLOCKS, parseSense, pattern, TASK_ABORTED, Tmf,
  TmfResponse, type Initiator,
} from "../../support/scsi_probe.ts";

const COPY_ABORTED = 0xa;
const TOKEN_BYTES = 512;
const range = (lba: number, blocks: number): number[] => [...be64(lba), ...be32(blocks), 0, 0, 0, 0];
const populateToken = (listId: number, listBytes: number): number[] => [0x83, 0x10, 0, 0, 0, 0, ...be32(listId), ...be32(listBytes), 0, 0];
const writeUsingToken = (listId: number, listBytes: number): number[] => [0x83, 0x11, 0, 0, 0, 0, ...be32(listId), ...be32(listBytes), 0, 0];
const rrti = (listId: number, alloc = 4096): number[] => [0x84, 0x07, ...be32(listId), 0, 0, 0, 0, ...be32(alloc), 0, 0];

function populateList(ranges: number[][], o: { timeout?: number; rtv?: boolean; rodType?: number; immed?: boolean } = {}): Uint8Array {
  const r = ranges.flat();
  const flags = (o.rtv ? 0x02 : 0) | (o.immed ? 0x01 : 0);
  return Uint8Array.from([...be16(14 + r.length), flags, 0, ...be32(o.timeout ?? 0), ...be32(o.rodType ?? 0), 0, 0, ...be16(r.length), ...r]);
}

function writeList(token: Uint8Array, ranges: number[][], o: { offset?: number; delete?: boolean; immed?: boolean } = {}): Uint8Array {
  const r = ranges.flat();
  const list = new Uint8Array(536 + r.length);
  list.set(be16(534 + r.length), 0);
  list[2] = (o.delete ? 0x02 : 0) | (o.immed ? 0x01 : 0);
  list.set(be64(o.offset ?? 0), 8);
  list.set(token, 16);
  list.set(be16(r.length), 534);
  list.set(r, 536);
  return list;
}

const zeroToken = (): Uint8Array => Uint8Array.from([...be32(0xffff0001), 0, 0, ...be16(0x1f8), ...new Array<number>(504).fill(0)]);

/** POPULATE TOKEN then RECEIVE ROD TOKEN INFORMATION: the token. */
function populate(i: Initiator, listId: number, ranges: number[][], lun = 0, nexus = A): Uint8Array {
  const list = populateList(ranges);
  expect(i.run(populateToken(listId, list.length), { data: list, lun, nexus }).status).toBe(GOOD);
  const info = i.good(rrti(listId), { lun, nexus, expected: 4096 });
  expect(info.length).toBe(32 + 4 + 2 + TOKEN_BYTES);
  return info.slice(38);
}

function writeUsing(i: Initiator, listId: number, list: Uint8Array, lun = 0) {
  const r = i.run(writeUsingToken(listId, list.length), { data: list, lun });
  return { status: r.status, sense: r.status === CHECK_CONDITION ? parseSense(r.sense) : undefined };
}

describe("Third-party Copy VPD page (8Fh)", () => {
  it("lists its descriptors: ROD limits, commands, parameter data, descriptors, token features, ROD types, general copy", () => {
    const i = boot();
    i.login(A);
    const page = i.good([0x12, 1, 0x8f, ...be16(1024), 0], { expected: 1024 });
    expect(Array.from(page.subarray(0, 4))).toEqual([0, 0x8f, ...be16(364)]);
    const descriptors = new Map<number, Uint8Array>();
    for (let at = 4; at < page.length;) {
      const length = (page[at + 2]! << 8) | page[at + 3]!;
      expect(length % 4).toBe(0);
      descriptors.set((page[at]! << 8) | page[at + 1]!, page.subarray(at, at + 4 + length));
      at += 4 + length;
    }
    expect([...descriptors.keys()]).toEqual([0x0000, 0x0001, 0x0004, 0x0008, 0x0106, 0x0108, 0x8001]);
    // Block Device ROD Limits: 8 ranges, 600 s maximum and 60 s default inactivity timeout, 256 MiB of 512-byte blocks.
    expect(Array.from(descriptors.get(0x0000)!)).toEqual([0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, ...be16(8), ...be32(600), ...be32(60), ...be64(524288), ...be64(524288)]);
    // Supported Commands: 83h with 00h, 10h, 11h; 84h with 00h, 01h, 03h, 04h, 07h.
    expect(Array.from(descriptors.get(0x0001)!)).toEqual([0, 1, 0, 16, 12, 0x83, 3, 0x00, 0x10, 0x11, 0x84, 5, 0x00, 0x01, 0x03, 0x04, 0x07, 0, 0, 0]);
    expect(Array.from(descriptors.get(0x0004)!)).toEqual([0, 4, 0, 0x1c, 0, 0, 0, 0, ...be16(8), ...be16(16), ...be32(1024), ...be32(0), ...new Array<number>(12).fill(0)]);
    expect(Array.from(descriptors.get(0x0008)!)).toEqual([0, 8, 0, 4, 2, 0x02, 0xe4, 0]);
    const features = descriptors.get(0x0106)!;
    expect(features.length).toBe(96);
    expect(Array.from(features.subarray(16, 28))).toEqual([...be32(1), ...be32(600), ...be32(600)]);
    expect(Array.from(features.subarray(46, 52))).toEqual([...be16(48), 0x00, 0, ...be16(0x2c)]);
    expect(Array.from(features.subarray(54, 64))).toEqual([...be16(1), ...be64(256 << 20)]); // a physical block
    const types = descriptors.get(0x0108)!;
    expect(Array.from(types.subarray(4, 8))).toEqual([0, 0, ...be16(128)]);
    expect(Array.from(types.subarray(8, 14))).toEqual([...be32(0x00010000), 0x03, 0]); // access upon reference: in and out
    expect(Array.from(types.subarray(72, 78))).toEqual([...be32(0xffff0001), 0x02, 0]); // block device zero: in only
    expect(Array.from(descriptors.get(0x8001)!.subarray(0, 18))).toEqual([0x80, 0x01, 0, 0x20, ...be32(8), ...be32(8), ...be32(256 << 20), 9, 0]);
    i.quiescent();
  });
});

describe("POPULATE TOKEN, RECEIVE ROD TOKEN INFORMATION, WRITE USING TOKEN", () => {
  it("copies a token's ranges to other ranges on both LUNs, exactly, and RRTI reports each command", () => {
    // Three source ranges on LUN 0 (1100 blocks: several 256 KiB chunks, chunks cut at range ends), written to two
    // destination ranges on LUN 1 and one on LUN 0; the blocks around them stay as they were.
    const i = boot();
    i.login(A);
    const a = pattern(21, 600);
    const b = pattern(22, 300);
    const c = pattern(23, 200);
    i.writeBlocks(0, 100, a);
    i.writeBlocks(0, 5000, b);
    i.writeBlocks(0, 9000, c);
    const token = populate(i, 7, [range(100, 600), range(5000, 300), range(9000, 200)]);
    expect(Array.from(token.subarray(0, 8))).toEqual([...be32(0x00010000), 0, 0, ...be16(0x1f8)]);
    expect(Array.from(token.subarray(56, 64))).toEqual(be64(1100 * BLOCK)); // NUMBER OF BYTES REPRESENTED
    expect(token[16]).toBe(0xe4); // the creator logical unit, as a target descriptor names it
    const info = i.good(rrti(7), { expected: 4096 });
    expect(Array.from(info.subarray(0, 32))).toEqual([
      ...be32(32 + 4 + 514 - 4), 0x10, 0x01, 0, 0, ...be32(0), GOOD, 0, 0, 0xf1, ...be64(1100), 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(Array.from(info.subarray(32, 38))).toEqual([...be32(514), 0, 0]);
    const all = new Uint8Array(1100 * BLOCK);
    all.set(a, 0); all.set(b, 600 * BLOCK); all.set(c, 900 * BLOCK);
    const list = writeList(token, [range(10, 700), range(3000, 400)]);
    expect(writeUsing(i, 8, list, 1).status).toBe(GOOD);
    expect(i.readBlocks(1, 10, 700)).toEqual(all.subarray(0, 700 * BLOCK));
    expect(i.readBlocks(1, 3000, 400)).toEqual(all.subarray(700 * BLOCK));
    expect(i.readBlocks(1, 9, 1)).toEqual(new Uint8Array(BLOCK));
    expect(i.readBlocks(1, 3400, 1)).toEqual(new Uint8Array(BLOCK));
    const written = i.good(rrti(8), { lun: 1, expected: 4096 });
    expect(Array.from(written.subarray(0, 36))).toEqual([
      ...be32(32), 0x11, 0x01, 0, 0, ...be32(0), GOOD, 0, 0, 0xf1, ...be64(1100), ...be16(2), 0, 0, 0, 0, 0, 0, ...be32(0),
    ]);
    // OFFSET INTO ROD, within LUN 0 itself; a destination longer than the rest of the ROD gets what there is.
    expect(writeUsing(i, 9, writeList(token, [range(20000, 50), range(21000, 1000)], { offset: 1000 })).status).toBe(GOOD);
    expect(i.readBlocks(0, 20000, 50)).toEqual(all.subarray(1000 * BLOCK, 1050 * BLOCK));
    expect(i.readBlocks(0, 21000, 50)).toEqual(all.subarray(1050 * BLOCK));
    expect(i.readBlocks(0, 21050, 1)).toEqual(new Uint8Array(BLOCK));
    expect(Array.from(i.good(rrti(9), { expected: 4096 }).subarray(16, 24))).toEqual(be64(100));
    // Results are per nexus and logical unit.
    i.login(B);
    expect(i.check(rrti(7), { nexus: B, expected: 4096 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 2 } });
    expect(i.check(rrti(7), { lun: 1, expected: 4096 })).toMatchObject({ asc: 0x24 });
    // The token is not tied to the nexus that made it.
    const zeros = new Uint8Array(8 * BLOCK);
    i.writeBlocks(1, 8000, zeros);
    const fromB = writeList(token, [range(8000, 8)]);
    expect(i.run(writeUsingToken(1, fromB.length), { data: fromB, lun: 1, nexus: B }).status).toBe(GOOD);
    expect(i.readBlocks(1, 8000, 8)).toEqual(a.subarray(0, 8 * BLOCK));
    i.quiescent();
  });

  it("the block device zero ROD token writes zeros, with no READ and no token made", () => {
    const i = boot();
    i.login(A);
    i.writeBlocks(1, 50, pattern(5, 700));
    expect(writeUsing(i, 3, writeList(zeroToken(), [range(60, 600), range(700, 10)]), 1).status).toBe(GOOD);
    const back = i.readBlocks(1, 50, 700);
    expect(back.subarray(0, 10 * BLOCK)).toEqual(pattern(5, 700).subarray(0, 10 * BLOCK));
    expect(back.subarray(10 * BLOCK, 610 * BLOCK)).toEqual(new Uint8Array(600 * BLOCK));
    expect(back.subarray(610 * BLOCK, 650 * BLOCK)).toEqual(pattern(5, 700).subarray(610 * BLOCK, 650 * BLOCK));
    expect(back.subarray(650 * BLOCK, 660 * BLOCK)).toEqual(new Uint8Array(10 * BLOCK));
    expect(back.subarray(660 * BLOCK)).toEqual(pattern(5, 700).subarray(660 * BLOCK));
    expect(i.t.call("testRodTokensLive")).toBe(0);
    i.quiescent();
  });

  it("refuses bad POPULATE TOKEN lists with the field named, and a PARAMETER LIST LENGTH of 0 is GOOD", () => {
    const i = boot();
    i.login(A);
    const refuse = (list: Uint8Array) => i.check(populateToken(1, list.length), { data: list });
    expect(refuse(populateList([range(0, 8)]).subarray(0, 15))).toMatchObject({ key: Key.IllegalRequest, asc: 0x1a, field: { inCdb: true, byte: 10 } });
    expect(refuse(populateList([range(0, 8)], { immed: true }))).toMatchObject({ asc: 0x26, ascq: 0, field: { inCdb: false, byte: 2, bit: 0 } });
    expect(refuse(populateList([range(0, 8)], { timeout: 601 }))).toMatchObject({ asc: 0x26, field: { byte: 4 } });
    expect(refuse(populateList([range(0, 8)], { rtv: true, rodType: 0x00800000 }))).toMatchObject({ asc: 0x26, field: { byte: 8 } }); // point in time
    expect(refuse(populateList([]))).toMatchObject({ asc: 0x26, field: { byte: 14 } });
    const nine = Array.from({ length: 9 }, (_, k) => range(k * 10, 1));
    expect(refuse(populateList(nine))).toMatchObject({ asc: 0x26, ascq: 0x08, field: { byte: 14 } });
    expect(refuse(populateList([range(0, 8), range(LUN0_BLOCKS - 4, 5)]))).toMatchObject({ asc: 0x21, ascq: 0, field: { byte: 32 } });
    expect(refuse(populateList([range(0, 8), range(7, 2)]))).toMatchObject({ asc: 0x26, ascq: 0, field: { byte: 32 } }); // overlap
    expect(refuse(populateList([range(0, 524288), range(600000, 1)]))).toMatchObject({ asc: 0x21 }); // past LUN 0 first
    const long = populateList([range(0, 8)]);
    long.set(be16(40), 14); // more ranges than the list holds
    expect(refuse(long)).toMatchObject({ asc: 0x26, field: { byte: 14 } });
    expect(i.run(populateToken(1, 0)).status).toBe(GOOD);
    expect(i.t.call("testRodTokensLive")).toBe(0);
    i.quiescent();
  });

  it("refuses tokens it cannot use: unknown, corrupt, wrong type or length, expired, deleted; and bad destinations", () => {
    const i = boot();
    i.login(A);
    const token = populate(i, 1, [range(0, 16)]);
    const expect1 = (list: Uint8Array, asc: number, ascq: number, key = COPY_ABORTED, byte = 16) =>
      expect(writeUsing(i, 2, list).sense).toMatchObject({ key, asc, ascq, field: { inCdb: false, byte } });
    const unknown = token.slice(); unknown[15]! ^= 0xff;
    expect1(writeList(unknown, [range(100, 16)]), 0x23, 0x04);
    const corrupt = token.slice(); corrupt[300]! ^= 0x01;
    expect1(writeList(corrupt, [range(100, 16)]), 0x23, 0x05);
    const otherType = token.slice(); otherType.set(be32(0x00800000), 0);
    expect1(writeList(otherType, [range(100, 16)]), 0x23, 0x01);
    const badLength = token.slice(); badLength.set(be16(0x1f0), 6);
    expect1(writeList(badLength, [range(100, 16)]), 0x23, 0x0a);
    // Destination ranges: past the end, overlapping, too many; OFFSET INTO ROD past the ROD; IMMED.
    expect1(writeList(token, [range(LUN0_BLOCKS - 8, 16)]), 0x21, 0x00, Key.IllegalRequest, 536);
    expect1(writeList(token, [range(100, 16), range(110, 4)]), 0x26, 0x00, Key.IllegalRequest, 552);
    expect1(writeList(token, Array.from({ length: 9 }, (_, k) => range(k * 10, 1))), 0x26, 0x08, Key.IllegalRequest, 534);
    expect1(writeList(token, [range(100, 16)], { offset: 16 }), 0x26, 0x00, Key.IllegalRequest, 8);
    expect(writeUsing(i, 2, writeList(token, [range(100, 16)], { immed: true })).sense).toMatchObject({ asc: 0x26, field: { byte: 2, bit: 0 } });
    expect(i.check(writeUsingToken(2, 100), { data: new Uint8Array(100) })).toMatchObject({ asc: 0x1a, field: { inCdb: true, byte: 10 } });
    // DEL_TKN: this use is the last.
    expect(writeUsing(i, 3, writeList(token, [range(100, 16)], { delete: true })).status).toBe(GOOD);
    expect1(writeList(token, [range(200, 16)]), 0x23, 0x09);
    // A token unused for its inactivity timeout expires.
    const list = populateList([range(0, 16)], { timeout: 1 });
    expect(i.run(populateToken(4, list.length), { data: list }).status).toBe(GOOD);
    const brief = i.good(rrti(4), { expected: 4096 }).slice(38);
    expect(writeUsing(i, 5, writeList(brief, [range(300, 16)])).status).toBe(GOOD); // in time; its timeout restarts
    i.t.board.runFor(1_200_000_000);
    expect1(writeList(brief, [range(300, 16)]), 0x23, 0x07);
    // RRTI of a failed WRITE USING TOKEN: completed with errors, the sense, no token.
    const failed = i.good(rrti(2), { expected: 4096 });
    expect([failed[4], failed[5], failed[12], failed[13], failed[14]]).toEqual([0x11, 0x02, CHECK_CONDITION, 18, 18]);
    expect([failed[32 + 2]! & 0x0f, failed[32 + 12], failed[32 + 13]]).toEqual([COPY_ABORTED, 0x23, 0x07]);
    expect(Array.from(failed.subarray(50, 54))).toEqual(be32(0));
    i.quiescent();
  });

  it("a full token table is INSUFFICIENT RESOURCES TO CREATE ROD TOKEN, never a trap; expired tokens make room", () => {
    const i = boot();
    i.login(A);
    const tokens = Array.from({ length: 8 }, (_, k) => populate(i, 10 + k, [range(k * 8, 8)]));
    const list = populateList([range(100, 8)]);
    expect(i.check(populateToken(20, list.length), { data: list })).toMatchObject({ key: Key.IllegalRequest, asc: 0x55, ascq: 0x0d });
    expect(i.t.call("testRodTokensLive")).toBe(8);
    expect(writeUsing(i, 21, writeList(tokens[7]!, [range(200, 8)])).status).toBe(GOOD); // the table still works
    i.t.board.runFor(61_000_000_000); // past the default inactivity timeout
    expect(i.t.call("testRodTokensLive")).toBe(0);
    const fresh = populate(i, 20, [range(100, 8)]);
    expect(writeUsing(i, 22, writeList(fresh, [range(300, 8)])).status).toBe(GOOD);
    // The new token took the entry of the token that ended first: that one is unknown now, the others expired.
    expect(writeUsing(i, 23, writeList(tokens[0]!, [range(300, 8)])).sense).toMatchObject({ key: COPY_ABORTED, asc: 0x23, ascq: 0x04 });
    expect(writeUsing(i, 23, writeList(tokens[1]!, [range(300, 8)])).sense).toMatchObject({ key: COPY_ABORTED, asc: 0x23, ascq: 0x07 });
    i.quiescent();
  });

  it("ABORT TASK of a running WRITE USING TOKEN: TASK ABORTED, RRTI says terminated, the token usable again", () => {
    const i = boot();
    i.login(A);
    const token = populate(i, 1, [range(0, 8192)]); // 4 MiB: sixteen chunks
    const list = writeList(token, [range(16384, 8192)]);
    const task = i.submit(writeUsingToken(2, list.length), { data: list, tag: 55 });
    for (let k = 0; k < 200 && (i.t.call("testScsiServicesActive") as number) === 0; k++) i.t.board.runFor(2_000);
    expect(i.t.call("testScsiServicesActive") as number).toBeGreaterThan(0);
    const tmf = i.tmf(A, 0, Tmf.AbortTask, 55);
    i.wait(tmf);
    expect(i.t.call("testScsiTmfResponse", tmf)).toBe(TmfResponse.Complete);
    expect(i.result(task)).toMatchObject({ status: TASK_ABORTED, aborted: true });
    i.release(task);
    i.release(tmf);
    const info = i.good(rrti(2), { expected: 4096 });
    expect([info[4], info[5], info[12]]).toEqual([0x11, 0x60, TASK_ABORTED]);
    expect(writeUsing(i, 3, writeList(token, [range(20000, 8)])).status).toBe(GOOD);
    i.quiescent();
  });

  it("a list identifier in use is OPERATION IN PROGRESS; REPORT SUPPORTED OPERATION CODES names the three commands", () => {
    const i = boot();
    i.login(A);
    const token = populate(i, 1, [range(0, 8192)]);
    const list = writeList(token, [range(16384, 8192)]);
    const task = i.submit(writeUsingToken(2, list.length), { data: list, tag: 9 });
    for (let k = 0; k < 200 && (i.t.call("testScsiServicesActive") as number) === 0; k++) i.t.board.runFor(2_000);
    const again = populateList([range(0, 8)]);
    expect(i.check(populateToken(2, again.length), { data: again })).toMatchObject({ key: Key.IllegalRequest, asc: 0x00, ascq: 0x16 });
    const running = i.good(rrti(2), { expected: 4096 });
    expect([running[4], running[5]]).toEqual([0x11, 0x11]); // in progress
    i.wait(task);
    expect(i.result(task).status).toBe(GOOD);
    i.release(task);
    expect(i.readBlocks(0, 16384 + 8000, 192)).toEqual(i.readBlocks(0, 8000, 192));
    const one = (sa: number, opcode: number) => i.good([0xa3, 0x0c, 0x02, opcode, ...be16(sa), ...be32(64), 0, 0], { expected: 64 });
    expect(Array.from(one(0x10, 0x83))).toEqual([0, 0x03, 0, 16, 0x83, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0]);
    expect(Array.from(one(0x11, 0x83).subarray(0, 6))).toEqual([0, 0x03, 0, 16, 0x83, 0x11]);
    expect(Array.from(one(0x07, 0x84))).toEqual([0, 0x03, 0, 16, 0x84, 0x07, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    i.quiescent();
  });
});
