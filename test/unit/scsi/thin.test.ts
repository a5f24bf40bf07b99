// A thin logical unit through the SCSI target (SBC-3, Logical block provisioning; docs/volumes.md, "Thin
// provisioning"): LUN 1 is a 64 MiB thin volume of 64 KiB chunks on LUN 0's 16 MiB disk (224 chunks after its
// metadata), soft threshold 50 %. READ CAPACITY (16) has LBPME and LBPRZ, VPD B2h says thin; GET LBA STATUS answers
// per chunk from the CTA's map (deallocated, then a mapped chunk, then deallocated again); the write that takes the
// pool to 112 chunks raises THIN PROVISIONING SOFT THRESHOLD REACHED once on every nexus, and again only after an
// UNMAP took usage below and a write crossed again; a full pool refuses a write needing a chunk with DATA PROTECT,
// SPACE ALLOCATION FAILED WRITE PROTECT, while mapped chunks still take writes and everything reads back.
import { describe, expect, it } from "vitest";
import { testBoard } from "../../support/board.ts";
import {
  A, B, be16, be32, be64, BLOCK, GOOD, Initiator, inquiry, Key, pattern, read10, tur, write10,
} from "../../support/scsi_probe.ts";

const THIN = 1;
const CHUNK_BLOCKS = 128; // 64 KiB
const VIRTUAL_BLOCKS = 64 * 2048;
const POOL_CHUNKS = 224;
const DATA_PROTECT = 0x7;

const readCapacity16 = (): number[] => [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, ...be32(32), 0, 0];
const getLbaStatus = (lba: number): number[] => [0x9e, 0x12, ...be64(lba), ...be32(24), 0, 0];
const unmap = (listBytes: number): number[] => [0x42, 0, 0, 0, 0, 0, 0, ...be16(listBytes), 0];
const unmapList = (lba: number, n: number): Uint8Array => Uint8Array.from([0, 22, 0, 16, 0, 0, 0, 0, ...be64(lba), ...be32(n), 0, 0, 0, 0]);

function boot(): Initiator {
  const t = testBoard({
    ramMiB: [64],
    disksMiB: [[16, 8]],
    volumes: [
      { name: "d0", type: "disk", disk: "host-disk0" },
      { name: "thin0", type: "thin", pool: "d0", sizeMiB: 64, chunkKiB: 64, softThresholdPercent: 50 },
    ],
  });
  for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
  expect(t.call("testUmaReady")).toBe(1);
  return new Initiator(t);
}

function lbaStatus(i: Initiator, lba: number): { lba: number; blocks: number; status: number } {
  const d = i.good(getLbaStatus(lba), { lun: THIN, expected: 24 });
  const v = new DataView(d.buffer, d.byteOffset);
  expect(v.getUint32(0)).toBe(20);
  return { lba: Number(v.getBigUint64(8)), blocks: v.getUint32(16), status: d[20]! & 0x0f };
}

/** One block written into chunk `c`: GOOD, or the sense. */
function writeChunk(i: Initiator, c: number, nexus = A): number {
  return i.run(write10(c * CHUNK_BLOCKS + 1, 1), { lun: THIN, nexus, data: pattern(c, 1) }).status;
}

describe("a thin logical unit", () => {
  it("reports its provisioning, answers GET LBA STATUS per chunk, raises the soft threshold once and refuses writes when full", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    const cap = i.good(readCapacity16(), { lun: THIN, expected: 32 });
    expect(new DataView(cap.buffer).getBigUint64(0)).toBe(BigInt(VIRTUAL_BLOCKS - 1));
    expect(cap[14]! & 0xc0).toBe(0xc0); // LBPME, LBPRZ
    const b2 = i.good(inquiry(1, 0xb2, 64), { lun: THIN, expected: 64 });
    expect(b2[1]).toBe(0xb2);
    expect(b2[6]! & 0x07).toBe(0x02); // PROVISIONING TYPE: thin

    // All deallocated; then chunk 2 mapped.
    expect(lbaStatus(i, 0)).toEqual({ lba: 0, blocks: VIRTUAL_BLOCKS, status: 1 });
    expect(writeChunk(i, 2)).toBe(GOOD);
    expect(lbaStatus(i, 0)).toEqual({ lba: 0, blocks: 2 * CHUNK_BLOCKS, status: 1 });
    expect(lbaStatus(i, 2 * CHUNK_BLOCKS + 5)).toEqual({ lba: 2 * CHUNK_BLOCKS + 5, blocks: CHUNK_BLOCKS - 5, status: 0 });
    expect(lbaStatus(i, 3 * CHUNK_BLOCKS)).toEqual({ lba: 3 * CHUNK_BLOCKS, blocks: VIRTUAL_BLOCKS - 3 * CHUNK_BLOCKS, status: 1 });
    // The unwritten blocks of an allocated chunk, and unmapped ones, read as zeros.
    expect(i.good(read10(2 * CHUNK_BLOCKS, 2), { lun: THIN, expected: 2 * BLOCK })).toEqual(Uint8Array.from([...new Uint8Array(BLOCK), ...pattern(2, 1)]));
    expect(i.good(read10(5 * CHUNK_BLOCKS, 1), { lun: THIN, expected: BLOCK })).toEqual(new Uint8Array(BLOCK));

    // Up to 111 chunks: no attention. The 112th crosses 50 % of 224.
    for (let c = 3; c < 113; c++) expect(writeChunk(i, c), `chunk ${c}`).toBe(GOOD);
    expect(i.run(tur(), { lun: THIN, nexus: A }).status).toBe(GOOD);
    expect(writeChunk(i, 113)).toBe(GOOD);
    for (const nexus of [A, B]) {
      expect(i.check(tur(), { lun: THIN, nexus })).toMatchObject({ key: Key.UnitAttention, asc: 0x38, ascq: 0x07 });
      expect(i.run(tur(), { lun: THIN, nexus }).status).toBe(GOOD);
      expect(i.run(tur(), { lun: 0, nexus }).status).toBe(GOOD); // the pool's own LUN hears nothing
    }
    expect(writeChunk(i, 114)).toBe(GOOD);
    expect(i.run(tur(), { lun: THIN, nexus: A }).status).toBe(GOOD); // once per crossing

    // Below again (113 chunks in use, 2..114; an UNMAP of 100..113 leaves 99), then crossing again at the 13th
    // write (112 chunks): a second attention, on every nexus.
    const list = unmapList(100 * CHUNK_BLOCKS, 14 * CHUNK_BLOCKS);
    expect(i.run(unmap(list.length), { lun: THIN, data: list }).status).toBe(GOOD);
    expect(lbaStatus(i, 100 * CHUNK_BLOCKS)).toEqual({ lba: 100 * CHUNK_BLOCKS, blocks: 14 * CHUNK_BLOCKS, status: 1 });
    for (let c = 100; c < 112; c++) expect(writeChunk(i, c)).toBe(GOOD);
    expect(i.run(tur(), { lun: THIN, nexus: A }).status).toBe(GOOD);
    expect(writeChunk(i, 112)).toBe(GOOD);
    for (const nexus of [A, B]) expect(i.check(tur(), { lun: THIN, nexus })).toMatchObject({ key: Key.UnitAttention, asc: 0x38, ascq: 0x07 });
    expect(writeChunk(i, 113)).toBe(GOOD);

    // Fill the pool: 113 chunks are in use (2..114); 111 more fit.
    for (let c = 115; c < 115 + POOL_CHUNKS - 113; c++) expect(writeChunk(i, c), `chunk ${c}`).toBe(GOOD);
    const full = 115 + POOL_CHUNKS - 113;
    expect(i.check(write10(full * CHUNK_BLOCKS + 1, 1), { lun: THIN, data: pattern(full, 1) }))
      .toMatchObject({ key: DATA_PROTECT, asc: 0x27, ascq: 0x07 });
    expect(writeChunk(i, 7)).toBe(GOOD); // a mapped chunk still takes writes
    for (const c of [2, 7, 114, full - 1]) {
      expect(i.good(read10(c * CHUNK_BLOCKS + 1, 1), { lun: THIN, expected: BLOCK }), `chunk ${c}`).toEqual(pattern(c, 1));
    }
    expect(i.good(read10(full * CHUNK_BLOCKS + 1, 1), { lun: THIN, expected: BLOCK })).toEqual(new Uint8Array(BLOCK));
    // The non-thin LUN: mapped to the end, as before.
    const d = i.good(getLbaStatus(100), { lun: 0, expected: 24 });
    expect(d[20]).toBe(0);
    expect(new DataView(d.buffer).getUint32(16)).toBe(32768 - 100);
  });
});
