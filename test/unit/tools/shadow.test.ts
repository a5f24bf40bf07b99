// The simulator's shadow model (tools/simulate/shadow.ts) on hand-made timelines: what a read may return while
// writes overlap it, what an acknowledged write rules out, how long a write lost with its connection may still land,
// and that a block of another write, another place or no write at all is told apart.
import { describe, expect, it } from "vitest";
import { BLOCK_BYTES } from "../../../tools/iscsi/pdu.ts";
import { blockContent, ShadowDisk } from "../../../tools/simulate/shadow.ts";

const KEY = 0x1234_5678;

function block(id: number, lun: number, lba: number): Uint8Array {
  const bytes = new Uint8Array(BLOCK_BYTES);
  blockContent(KEY, id, lun, lba, new Uint32Array(bytes.buffer));
  return bytes;
}

function write(disk: ShadowDisk, id: number, lba: number, count: number, issueNs: number) {
  return disk.issueWrite(id, lba, count, issueNs, new Uint8Array(count * BLOCK_BYTES));
}

describe("ShadowDisk", () => {
  it("fills a write's data with the blocks that name it, and an unwritten block reads as zeros", () => {
    const disk = new ShadowDisk(1, 100, KEY);
    const data = new Uint8Array(2 * BLOCK_BYTES);
    disk.issueWrite(1, 10, 2, 0, data);
    expect(data.subarray(BLOCK_BYTES)).toEqual(block(1, 1, 11));
    expect(disk.check(50, new Uint8Array(BLOCK_BYTES), 0, 1)).toBe("ok");
    expect(disk.check(50, block(1, 1, 50), 0, 1)).toBe("stale"); // write 1 never touched block 50: not among its records
    expect(disk.check(50, block(9, 1, 50), 0, 1)).toBe("future"); // write 9 was never issued
  });

  it("accepts old or new content while a write is in flight, only the new once it is acknowledged", () => {
    const disk = new ShadowDisk(0, 100, KEY);
    const w = write(disk, 1, 5, 1, 100);
    expect(disk.check(5, new Uint8Array(BLOCK_BYTES), 150, 160)).toBe("ok");
    expect(disk.check(5, block(1, 0, 5), 150, 160)).toBe("ok");
    disk.ended(w, 200, true);
    expect(disk.check(5, block(1, 0, 5), 300, 310)).toBe("ok");
    expect(disk.check(5, new Uint8Array(BLOCK_BYTES), 300, 310)).toBe("stale"); // the acknowledged write is lost
    expect(disk.check(5, new Uint8Array(BLOCK_BYTES), Infinity, Infinity)).toBe("stale");
    expect(disk.check(5, block(1, 0, 5), 10, 50)).toBe("future"); // a read that ended before the write began
  });

  it("keeps both of two overlapping acknowledged writes possible, and rules out one finished before the other began", () => {
    const disk = new ShadowDisk(0, 100, KEY);
    const a = write(disk, 1, 0, 1, 100);
    const b = write(disk, 2, 0, 1, 150);
    disk.ended(a, 200, true);
    disk.ended(b, 250, true);
    expect(disk.check(0, block(1, 0, 0), Infinity, Infinity)).toBe("ok");
    expect(disk.check(0, block(2, 0, 0), Infinity, Infinity)).toBe("ok");
    const c = write(disk, 3, 0, 1, 300);
    disk.ended(c, 400, true);
    expect(disk.check(0, block(1, 0, 0), Infinity, Infinity)).toBe("stale");
    expect(disk.check(0, block(2, 0, 0), 350, 360)).toBe("ok"); // c not yet acknowledged when this read began
  });

  it("lets a write lost with its connection land until its end, then not", () => {
    const disk = new ShadowDisk(0, 100, KEY);
    const lost = write(disk, 1, 0, 1, 100);
    disk.ended(lost, 1_000, false); // may land until 1000
    const during = write(disk, 2, 0, 1, 500);
    disk.ended(during, 600, true);
    expect(disk.check(0, block(1, 0, 0), Infinity, Infinity)).toBe("ok"); // may have landed after write 2
    const after = write(disk, 3, 0, 1, 1_100);
    disk.ended(after, 1_200, true);
    expect(disk.check(0, block(1, 0, 0), Infinity, Infinity)).toBe("stale");
    expect(disk.check(0, block(3, 0, 0), Infinity, Infinity)).toBe("ok");
  });

  it("tells a block of another LUN, another LBA, or torn content from a right one", () => {
    const disk = new ShadowDisk(0, 100, KEY);
    write(disk, 1, 0, 2, 0);
    expect(disk.check(0, block(1, 1, 0), 10, 20)).toBe("garbage");
    expect(disk.check(0, block(1, 0, 1), 10, 20)).toBe("garbage");
    const torn = block(1, 0, 0);
    torn[300] ^= 1;
    expect(disk.check(0, torn, 10, 20)).toBe("garbage");
  });

  it("prunes superseded records without changing a verdict", () => {
    const disk = new ShadowDisk(0, 100, KEY);
    for (let id = 1; id <= 20; id++) disk.ended(write(disk, id, 0, 1, id * 100), id * 100 + 50, true);
    disk.prune(10_000);
    expect(disk.check(0, block(20, 0, 0), Infinity, Infinity)).toBe("ok");
    expect(disk.check(0, block(3, 0, 0), Infinity, Infinity)).toBe("stale");
  });
});
