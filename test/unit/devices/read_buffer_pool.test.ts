// Proves the READ buffer pool: a buffer given back is lent again (same backing store) for a length of its class,
// never to two holders at once (a double give or a stranger's buffer is ignored), lengths outside the classes get
// fresh buffers, and the free lists stop growing at their bound. Through ScsiDisk: a READ's data comes from the pool
// and, given back, serves the next READ with that READ's own bytes.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { memoryDisk } from "../../../host/devices/disk_backend.ts";
import { ReadBufferPool } from "../../../host/devices/read_buffer_pool.ts";
import { naaFromName, OPCODE_READ_10, OPCODE_WRITE_10, ScsiDisk } from "../../../host/devices/scsi_disk.ts";

describe("ReadBufferPool", () => {
  it("lends a given-back buffer again for a length of its class", () => {
    const pool = new ReadBufferPool();
    const first = pool.take(4096);
    expect(first.length).toBe(4096);
    pool.give(first);
    const second = pool.take(3000); // 2049..4096 share the 4 KiB class
    expect(second.buffer).toBe(first.buffer);
    expect(second.length).toBe(3000);
    expect(pool.stats).toEqual({ taken: 2, reused: 1, given: 1 });
  });

  it("never lends one buffer to two holders: a double give and a stranger's buffer are ignored", () => {
    const pool = new ReadBufferPool();
    const lent = pool.take(4096);
    pool.give(lent);
    pool.give(lent);
    pool.give(new Uint8Array(4096));
    expect(pool.keptCount).toBe(1);
    const a = pool.take(4096);
    const b = pool.take(4096);
    expect(a.buffer).not.toBe(b.buffer);
  });

  it("gives fresh buffers for 0 bytes and for more than 1 MiB, and keeps none of them", () => {
    const pool = new ReadBufferPool();
    const big = pool.take((1 << 20) + 512);
    expect(big.length).toBe((1 << 20) + 512);
    pool.give(big);
    expect(pool.keptCount).toBe(0);
    expect(pool.take(0).length).toBe(0);
  });

  it("bounds what it keeps: at most 128 free 4 KiB buffers, 8 MiB of one class, 12 MiB in all", () => {
    const pool = new ReadBufferPool();
    const small = Array.from({ length: 200 }, () => pool.take(4096));
    for (const buffer of small) pool.give(buffer);
    expect(pool.keptCount).toBe(128);
    const large = Array.from({ length: 40 }, () => pool.take(256 << 10));
    for (const buffer of large) pool.give(buffer);
    // 32 of 256 KiB fill the class's 8 MiB.
    expect(pool.keptCount).toBe(128 + 32);
    expect(pool.keptBytes).toBe((8 << 20) + (512 << 10));
    // Of 1 MiB buffers the class would keep 8; the 8.5 MiB kept leave room for 3 in all.
    const huge = Array.from({ length: 10 }, () => pool.take(1 << 20));
    for (const buffer of huge) pool.give(buffer);
    expect(pool.keptCount).toBe(128 + 32 + 3);
    expect(pool.keptBytes).toBe((11 << 20) + (512 << 10));
    expect(pool.take(1 << 20).buffer).toBe(huge[2]!.buffer); // the last kept, lent again
  });

  it("lends no buffer twice over any order of takes and gives (fast-check)", () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 1_100_000 }), fc.nat()), { maxLength: 200 }), (steps) => {
      const pool = new ReadBufferPool();
      const held: Uint8Array[] = [];
      for (const [take, length, pick] of steps) {
        if (take || held.length === 0) {
          const buffer = pool.take(length);
          expect(buffer.length).toBe(length);
          expect(held.some((other) => other.buffer === buffer.buffer)).toBe(false);
          held.push(buffer);
        } else {
          pool.give(held.splice(pick % held.length, 1)[0]!);
        }
      }
    }));
  });
});

function cdb10(opcode: number, lba: number, blocks: number): Uint8Array {
  const cdb = new Uint8Array(10);
  cdb[0] = opcode;
  new DataView(cdb.buffer).setUint32(2, lba);
  new DataView(cdb.buffer).setUint16(7, blocks);
  return cdb;
}

describe("ScsiDisk READ buffers", () => {
  it("reads into pooled buffers that, given back, carry the next READ's own bytes", () => {
    const disk = new ScsiDisk(memoryDisk("pool", 1 << 20, 512), { vendor: "V", product: "P", serial: "S", naa: naaFromName("pool") });
    disk.execute(cdb10(0x00, 0, 0), new Uint8Array(0), 0); // the power-on unit attention, if any, goes first
    for (const [lba, fill] of [[0, 0xaa], [8, 0x55]] as const) {
      expect(disk.execute(cdb10(OPCODE_WRITE_10, lba, 8), new Uint8Array(4096).fill(fill), 0).status).toBe(0);
    }
    const first = disk.execute(cdb10(OPCODE_READ_10, 0, 8), new Uint8Array(0), 4096);
    expect(first.dataInPooled).toBe(true);
    expect(first.dataIn!.every((byte) => byte === 0xaa)).toBe(true);
    const firstBuffer = first.dataIn!.buffer;
    disk.releaseDataIn(first.dataIn!);
    const second = disk.execute(cdb10(OPCODE_READ_10, 8, 8), new Uint8Array(0), 4096);
    expect(second.dataIn!.buffer).toBe(firstBuffer);
    expect(second.dataIn!.every((byte) => byte === 0x55)).toBe(true);
    expect(disk.readBuffers.stats.reused).toBe(1);
  });
});
