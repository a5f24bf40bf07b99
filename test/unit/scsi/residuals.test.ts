// Every path where the expected data transfer length (EDTL, iSCSI's Expected Data Transfer Length) and the CDB's own
// length disagree, one row each, through the SCSI probe (test/support/scsi_probe.ts) on the test build's board.
// Each row states status, sense (key, ASC, ASCQ), residual (kind and bytes), the Data-In and Data-Out that moved,
// and for commands that change the medium what the blocks hold afterwards, read back: a block is either written
// with GOOD or unchanged (the rule is in assembly/scsi/commands.ts, shortDataOut; docs/iscsi.md has the table).
// The rows run on one board per group, each on blocks of its own that it fills with a pattern first.
import { describe, expect, it } from "vitest";
import {
  A, be16, be32, be64, BLOCK, boot, CHECK_CONDITION, Dir, GOOD, inquiry, Key, parseSense, pattern, prIn, prList, prOut,
  read10, read16, Residual, write10, write16, type Initiator,
} from "../../support/scsi_probe.ts";

const REGION_BLOCKS = 4; // the blocks a row may change, from its LBA
const INQUIRY_BYTES = 96; // standard INQUIRY data (vpd.ts)
const NONE: [number, number] = [Residual.None, 0];
const over = (bytes: number): [number, number] => [Residual.Overflow, bytes];
const under = (bytes: number): [number, number] => [Residual.Underflow, bytes];
const IU: [number, number, number] = [Key.IllegalRequest, 0x0e, 0x03]; // INVALID FIELD IN COMMAND INFORMATION UNIT
const CDB_FIELD: [number, number, number] = [Key.IllegalRequest, 0x24, 0x00]; // INVALID FIELD IN CDB

// CDBs (LBA first, then the count).
const read6 = (lba: number, n: number): number[] => [0x08, 0, (lba >>> 8) & 0x1f, lba & 0xff, n, 0];
const read12 = (lba: number, n: number): number[] => [0xa8, 0, ...be32(lba), ...be32(n), 0, 0];
const write6 = (lba: number, n: number): number[] => [0x0a, 0, (lba >>> 8) & 0x1f, lba & 0xff, n, 0];
const write12 = (lba: number, n: number): number[] => [0xaa, 0, ...be32(lba), ...be32(n), 0, 0];
const writeVerify10 = (lba: number, n: number, flags = 0): number[] => [0x2e, flags, ...be32(lba), 0, ...be16(n), 0];
const writeVerify12 = (lba: number, n: number): number[] => [0xae, 0, ...be32(lba), ...be32(n), 0, 0];
const writeVerify16 = (lba: number, n: number, flags = 0): number[] => [0x8e, flags, ...be64(lba), ...be32(n), 0, 0];
const writeAtomic16 = (lba: number, n: number): number[] => [0x9c, 0, ...be64(lba), 0, 0, ...be16(n), 0, 0];
const orWrite16 = (lba: number, n: number): number[] => [0x8b, 0, ...be64(lba), ...be32(n), 0, 0];
const verify10 = (lba: number, n: number, bytchk: number): number[] => [0x2f, bytchk << 1, ...be32(lba), 0, ...be16(n), 0];
const verify16 = (lba: number, n: number, bytchk: number): number[] => [0x8f, bytchk << 1, ...be64(lba), ...be32(n), 0, 0];
const writeSame10 = (lba: number, n: number, flags = 0): number[] => [0x41, flags, ...be32(lba), 0, ...be16(n), 0];
const writeSame16 = (lba: number, n: number, flags = 0): number[] => [0x93, flags, ...be64(lba), ...be32(n), 0, 0];
const compareAndWrite = (lba: number, n: number): number[] => [0x89, 0, ...be64(lba), 0, 0, 0, n, 0, 0];

/** What the region holds after a row, from what it held and what was sent. */
type After = (before: Uint8Array, sent: Uint8Array) => Uint8Array;
const unchanged: After = (before) => before;
/** The first `blocks` blocks of the Data-Out over the region. */
const written = (blocks: number): After => (before, sent) => {
  const out = before.slice();
  out.set(sent.subarray(0, blocks * BLOCK));
  return out;
};
/** ORWRITE: the first `blocks` blocks ORed with the Data-Out. */
const ored = (blocks: number): After => (before, sent) => before.map((b, k) => (k < blocks * BLOCK ? b | sent[k]! : b));
/** WRITE SAME: the Data-Out's first block (zeros without one) over `blocks` blocks. */
const same = (blocks: number): After => (before, sent) => {
  const out = before.slice();
  for (let k = 0; k < blocks; k++) out.set(sent.length >= BLOCK ? sent.subarray(0, BLOCK) : new Uint8Array(BLOCK), k * BLOCK);
  return out;
};

interface Row {
  name: string; // the clause it proves
  cdb: (lba: number) => number[];
  expected: number; // EDTL
  direction?: number; // Write when `after` is given, else Read
  data?: (before: Uint8Array, lba: number) => Uint8Array; // the Data-Out; a pattern of `expected` bytes when absent
  status: number;
  sense?: [number, number, number];
  residual: [number, number];
  dataIn?: number; // bytes of Data-In (0 when absent)
  reads?: boolean; // the Data-In is the region's first bytes
  asked?: number; // bytes of Data-Out the target asked for (none when absent)
  after?: After; // what the region holds (commands that change the medium)
}

/** Runs `row` at its own LBA of LUN 0 and checks every part of the answer. */
function runRow(i: Initiator, row: Row, index: number): void {
  const lba = 64 * (index + 1);
  const before = pattern(1000 + index, REGION_BLOCKS);
  i.writeBlocks(0, lba, before);
  const direction = row.direction ?? (row.after !== undefined ? Dir.Write : Dir.Read);
  const sent = direction !== Dir.Write ? undefined
    : row.data !== undefined ? row.data(before, lba) : pattern(2000 + index, Math.ceil(row.expected / BLOCK)).subarray(0, row.expected);
  const r = i.run(row.cdb(lba), { direction, expected: row.expected, data: sent !== undefined && sent.length > 0 ? sent : undefined });
  const sense = r.sense.length > 0 ? parseSense(r.sense) : undefined;
  expect({ status: r.status, sense: sense && [sense.key, sense.asc, sense.ascq], residual: [r.residualKind, r.residual] })
    .toEqual({ status: row.status, sense: row.sense, residual: row.residual });
  expect([r.data.length, r.dataOutAsked]).toEqual([row.dataIn ?? 0, row.asked ?? null]);
  if (row.reads === true) expect(r.data).toEqual(before.subarray(0, r.data.length));
  if (row.after !== undefined) expect(i.readBlocks(0, lba, REGION_BLOCKS)).toEqual(row.after(before, sent ?? new Uint8Array(0)));
}

function table(rows: Row[]): void {
  let board: Initiator | undefined;
  it.each(rows.map((row, index) => [row.name, row, index] as const))("%s", (_, row, index) => {
    if (board === undefined) {
      board = boot();
      board.login(A);
    }
    runRow(board, row, index);
    board.quiescent();
  });
}

describe("reads and other Data-In: only the expected bytes move, the residual says how many did not", () => {
  table([
    { name: "READ (6), one block, EDTL 200: 200 bytes, overflow",
      cdb: (l) => read6(l, 1), expected: 200, status: GOOD, residual: over(312), dataIn: 200, reads: true },
    { name: "READ (10), two blocks, EDTL one block: one block, overflow",
      cdb: (l) => read10(l, 2), expected: BLOCK, status: GOOD, residual: over(BLOCK), dataIn: BLOCK, reads: true },
    { name: "READ (12), one block, EDTL 10000: one block, underflow",
      cdb: (l) => read12(l, 1), expected: 10000, status: GOOD, residual: under(10000 - BLOCK), dataIn: BLOCK, reads: true },
    { name: "READ (16), one block, EDTL 0: nothing, overflow of the block",
      cdb: (l) => read16(l, 1), expected: 0, direction: Dir.None, status: GOOD, residual: over(BLOCK), reads: true },
    { name: "READ (10), TRANSFER LENGTH 0, EDTL one block: nothing, underflow",
      cdb: (l) => read10(l, 0), expected: BLOCK, status: GOOD, residual: under(BLOCK), reads: true },
    { name: "INQUIRY, ALLOCATION LENGTH 255, EDTL 36: 36 bytes, overflow to the 96 it has",
      cdb: () => inquiry(0, 0, 255), expected: 36, status: GOOD, residual: over(INQUIRY_BYTES - 36), dataIn: 36 },
    { name: "INQUIRY, ALLOCATION LENGTH 255, EDTL 255: its 96 bytes, underflow",
      cdb: () => inquiry(0, 0, 255), expected: 255, status: GOOD, residual: under(255 - INQUIRY_BYTES), dataIn: INQUIRY_BYTES },
  ]);
});

describe("writes: whole blocks that came are written with GOOD; a partial block is refused and nothing changes", () => {
  table([
    { name: "WRITE (6), two blocks, EDTL one block: the first written, overflow",
      cdb: (l) => write6(l, 2), expected: BLOCK, status: GOOD, residual: over(BLOCK), asked: BLOCK, after: written(1) },
    { name: "WRITE (10), one block, EDTL 200: CHECK CONDITION 0Eh/03h, overflow, unchanged (was GOOD and lost)",
      cdb: (l) => write10(l, 1), expected: 200, status: CHECK_CONDITION, sense: IU, residual: over(312), after: unchanged },
    { name: "WRITE (12), one block, EDTL 200: CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => write12(l, 1), expected: 200, status: CHECK_CONDITION, sense: IU, residual: over(312), after: unchanged },
    { name: "WRITE (16), one block, EDTL 200: CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => write16(l, 1), expected: 200, status: CHECK_CONDITION, sense: IU, residual: over(312), after: unchanged },
    { name: "WRITE (16), three blocks, EDTL a block and 488 bytes: refused whole, not one block written",
      cdb: (l) => write16(l, 3), expected: 1000, status: CHECK_CONDITION, sense: IU, residual: over(3 * BLOCK - 1000), after: unchanged },
    { name: "WRITE (10), one block, EDTL 10000: the block written, underflow",
      cdb: (l) => write10(l, 1), expected: 10000, status: GOOD, residual: under(10000 - BLOCK), asked: BLOCK, after: written(1) },
    { name: "WRITE (10), one block, EDTL 0: nothing came, nothing written, overflow",
      cdb: (l) => write10(l, 1), expected: 0, status: GOOD, residual: over(BLOCK), after: unchanged },
    { name: "WRITE (16), TRANSFER LENGTH 0, EDTL one block: nothing written, underflow",
      cdb: (l) => write16(l, 0), expected: BLOCK, status: GOOD, residual: under(BLOCK), after: unchanged },
    { name: "WRITE (10), one block, EDTL one block but for Data-In (R, not W): nothing written, overflow",
      cdb: (l) => write10(l, 1), expected: BLOCK, direction: Dir.Read, status: GOOD, residual: over(BLOCK), after: unchanged },
    { name: "WRITE AND VERIFY (10), one block, EDTL 200: CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => writeVerify10(l, 1), expected: 200, status: CHECK_CONDITION, sense: IU, residual: over(312), after: unchanged },
    { name: "WRITE AND VERIFY (16) BYTCHK, two blocks, EDTL one block: the first written and checked, overflow",
      cdb: (l) => writeVerify16(l, 2, 0x02), expected: BLOCK, status: GOOD, residual: over(BLOCK), asked: BLOCK, after: written(1) },
    { name: "WRITE AND VERIFY (12), one block, EDTL two blocks: the block written, underflow",
      cdb: (l) => writeVerify12(l, 1), expected: 2 * BLOCK, status: GOOD, residual: under(BLOCK), asked: BLOCK, after: written(1) },
    { name: "WRITE ATOMIC (16), one block, EDTL 200: CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => writeAtomic16(l, 1), expected: 200, status: CHECK_CONDITION, sense: IU, residual: over(312), after: unchanged },
    { name: "WRITE ATOMIC (16), two blocks, EDTL one block: never split, CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => writeAtomic16(l, 2), expected: BLOCK, status: CHECK_CONDITION, sense: IU, residual: over(BLOCK), after: unchanged },
    { name: "WRITE ATOMIC (16), one block, EDTL two blocks: written, underflow",
      cdb: (l) => writeAtomic16(l, 1), expected: 2 * BLOCK, status: GOOD, residual: under(BLOCK), asked: BLOCK, after: written(1) },
    { name: "ORWRITE (16), one block, EDTL 200: CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => orWrite16(l, 1), expected: 200, status: CHECK_CONDITION, sense: IU, residual: over(312), after: unchanged },
    { name: "ORWRITE (16), two blocks, EDTL one block: the first ORed, overflow",
      cdb: (l) => orWrite16(l, 2), expected: BLOCK, status: GOOD, residual: over(BLOCK), asked: BLOCK, after: ored(1) },
    { name: "ORWRITE (16), one block, EDTL two blocks: ORed, underflow",
      cdb: (l) => orWrite16(l, 1), expected: 2 * BLOCK, status: GOOD, residual: under(BLOCK), asked: BLOCK, after: ored(1) },
  ]);
});

describe("VERIFY with BYTCHK: whole blocks are compared, a partial one is refused", () => {
  const firstBlock = (before: Uint8Array): Uint8Array => before.slice(0, BLOCK);
  table([
    { name: "VERIFY (10) BYTCHK 01b, one block, EDTL 200: CHECK CONDITION 0Eh/03h (was GOOD, nothing compared)",
      cdb: (l) => verify10(l, 1, 1), expected: 200, direction: Dir.Write, status: CHECK_CONDITION, sense: IU, residual: over(312) },
    { name: "VERIFY (16) BYTCHK 11b, two blocks, EDTL 200: CHECK CONDITION 0Eh/03h",
      cdb: (l) => verify16(l, 2, 3), expected: 200, direction: Dir.Write, status: CHECK_CONDITION, sense: IU, residual: over(312) },
    { name: "VERIFY (10) BYTCHK 01b, two blocks, EDTL one equal block: compared, GOOD, overflow",
      cdb: (l) => verify10(l, 2, 1), expected: BLOCK, direction: Dir.Write, data: firstBlock, status: GOOD, residual: over(BLOCK), asked: BLOCK },
    { name: "VERIFY (10) BYTCHK 01b, two blocks, EDTL one other block: compared, MISCOMPARE",
      cdb: (l) => verify10(l, 2, 1), expected: BLOCK, direction: Dir.Write, status: CHECK_CONDITION, sense: [Key.Miscompare, 0x1d, 0x00], residual: NONE, asked: BLOCK },
  ]);
});

describe("WRITE SAME and COMPARE AND WRITE: the data they need, all of it", () => {
  const instances = (before: Uint8Array): Uint8Array => Uint8Array.from([...before.subarray(0, BLOCK), ...pattern(7, 1)]);
  table([
    { name: "WRITE SAME (10), four blocks, EDTL 200: CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => writeSame10(l, 4), expected: 200, status: CHECK_CONDITION, sense: IU, residual: over(312), after: unchanged },
    { name: "WRITE SAME (16), four blocks, EDTL 0: CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => writeSame16(l, 4), expected: 0, status: CHECK_CONDITION, sense: IU, residual: over(BLOCK), after: unchanged },
    { name: "WRITE SAME (16) UNMAP, four blocks, EDTL 200: CHECK CONDITION 0Eh/03h, unchanged",
      cdb: (l) => writeSame16(l, 4, 0x08), expected: 200, status: CHECK_CONDITION, sense: IU, residual: over(312), after: unchanged },
    { name: "WRITE SAME (16), four blocks, EDTL two blocks: INVALID FIELD IN CDB (exactly one block), unchanged",
      cdb: (l) => writeSame16(l, 4), expected: 2 * BLOCK, status: CHECK_CONDITION, sense: CDB_FIELD, residual: NONE, after: unchanged },
    { name: "WRITE SAME (16) NDOB, four blocks, EDTL one block: zeros, underflow",
      cdb: (l) => writeSame16(l, 4, 0x01), expected: BLOCK, status: GOOD, residual: under(BLOCK), after: same(4), data: () => new Uint8Array(BLOCK) },
    { name: "WRITE SAME (16) NDOB, four blocks, EDTL 0: zeros, no residual",
      cdb: (l) => writeSame16(l, 4, 0x01), expected: 0, status: GOOD, residual: NONE, after: same(4) },
    { name: "COMPARE AND WRITE, one block, EDTL both instances: written",
      cdb: (l) => compareAndWrite(l, 1), expected: 2 * BLOCK, data: instances, status: GOOD, residual: NONE, asked: 2 * BLOCK, after: (before, sent) => written(1)(before, sent.subarray(BLOCK)) },
    { name: "COMPARE AND WRITE, one block, EDTL one instance: CHECK CONDITION 0Eh/03h, overflow, unchanged",
      cdb: (l) => compareAndWrite(l, 1), expected: BLOCK, data: instances, status: CHECK_CONDITION, sense: IU, residual: over(BLOCK), after: unchanged },
    { name: "COMPARE AND WRITE, one block, EDTL four blocks: INVALID FIELD IN CDB, unchanged",
      cdb: (l) => compareAndWrite(l, 1), expected: 4 * BLOCK, data: (b) => Uint8Array.from([...instances(b), ...new Uint8Array(2 * BLOCK)]), status: CHECK_CONDITION, sense: CDB_FIELD, residual: NONE, after: unchanged },
  ]);
});

// UNMAP's list: one descriptor for the row's four blocks. |0-1 UNMAP DATA LENGTH|2-3 DESCRIPTOR DATA LENGTH|4-7|8-23|.
const unmapList = (lba: number): Uint8Array => Uint8Array.from([...be16(22), ...be16(16), 0, 0, 0, 0, ...be64(lba), ...be32(REGION_BLOCKS), 0, 0, 0, 0]);
const unmap = (listBytes: number): number[] => [0x42, 0, 0, 0, 0, 0, 0, ...be16(listBytes), 0];

/**
 * A parameter list sent cut short to `shortBytes` (refused with 0Eh/03h and its overflow, nothing asked for, nothing
 * applied), then whole with `extra` bytes behind it (applied, an underflow of `extra`). `applied` reads the state
 * the list changes: `was` before and after the refusal, `now` after the list.
 */
function shortThenLong(cdb: number[], list: Uint8Array, shortBytes: number, extra: number,
  applied: (i: Initiator) => unknown, was: unknown, now: unknown): void {
  const i = boot();
  i.login(A);
  expect(applied(i)).toEqual(was);
  let r = i.run(cdb, { data: list.subarray(0, shortBytes) });
  expect([r.status, [...r.sense.subarray(12, 14)], r.residualKind, r.residual, r.dataOutAsked])
    .toEqual([CHECK_CONDITION, [0x0e, 0x03], Residual.Overflow, list.length - shortBytes, null]);
  expect(applied(i)).toEqual(was);
  r = i.run(cdb, { data: Uint8Array.from([...list, ...new Uint8Array(extra)]) });
  expect([r.status, r.residualKind, r.residual, r.dataOutAsked]).toEqual([GOOD, Residual.Underflow, extra, list.length]);
  expect(applied(i)).toEqual(now);
  i.quiescent();
}

describe("parameter lists: a list cut short by the EDTL is refused, a longer EDTL is an underflow", () => {
  table([
    { name: "UNMAP, a 24-byte list, EDTL 16: CHECK CONDITION 0Eh/03h, nothing deallocated",
      cdb: () => unmap(24), expected: 16, data: (_, lba) => unmapList(lba).subarray(0, 16), status: CHECK_CONDITION, sense: IU, residual: over(8), after: unchanged },
    { name: "UNMAP, a 24-byte list, EDTL 0: CHECK CONDITION 0Eh/03h, nothing deallocated",
      cdb: () => unmap(24), expected: 0, status: CHECK_CONDITION, sense: IU, residual: over(24), after: unchanged },
    { name: "UNMAP, a 24-byte list, EDTL 100: deallocated (reads as zeros), underflow",
      cdb: () => unmap(24), expected: 100, data: (_, lba) => Uint8Array.from([...unmapList(lba), ...new Uint8Array(76)]), status: GOOD, residual: under(76), asked: 24, after: (before) => new Uint8Array(before.length) },
  ]);

  it("MODE SELECT (6): a list cut short is refused and changes nothing; a longer EDTL is an underflow", () => {
    const list = Uint8Array.from([0, 0, 0, 0, 0x08, 0x12, 0x00, ...new Array(17).fill(0)]); // caching page, WCE 0
    const wce = (i: Initiator): number => i.good([0x1a, 0x08, 0x08, 0, 255, 0], { expected: 255 })[6]! & 0x04;
    shortThenLong([0x15, 0x10, 0, 0, 24, 0], list, 20, 2, wce, 0x04, 0x00);
  });

  it("PERSISTENT RESERVE OUT: a list cut short is refused and registers nothing; a longer EDTL is an underflow", () => {
    const keysBytes = (i: Initiator): number => new DataView(i.good(prIn(0), { expected: 4096 }).buffer).getUint32(4);
    shortThenLong(prOut(0x00), prList(0n, 0x1234n), 20, 6, keysBytes, 0, 8); // REGISTER
  });

  it("EXTENDED COPY: a list cut short is refused; a longer EDTL is an underflow", () => {
    const header = Uint8Array.from([7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // LIST ID 7, no descriptors
    shortThenLong([0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(16), 0, 0], header, 15, 16, () => null, null, null);
  });
});
