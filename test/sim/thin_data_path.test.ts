// Thin volumes end to end through the CTA (docs/volumes.md, "Thin provisioning"): one thin volume on a RAID-5 whose
// members sit on both storage processors, one on a plain disk. A test client sends random READ, WRITE and UNMAP
// service requests (crossing chunk boundaries, some unmaps of whole chunks); a shadow copy says what every read
// must return (unmapped blocks read as zeros) and which virtual chunks are mapped, so the pool's chunks in use are
// known. Then a power cycle: every acknowledged write reads back and the usage is the same. Then the pool fills:
// writes that need a chunk fail with SpaceAllocFailed, reads and writes of mapped chunks go on, the threshold and
// pool-full lines come once. A crash test stops the board at a random board time under a write load and restarts
// it: every acknowledged write is there (blocks of writes in flight hold the old or the new data). Corrupt map
// copies are found by their checksums: a torn newer copy falls back to the older, both bad fail the volume.
import { describe, expect, it } from "vitest";
import { thinPoolChunkCount } from "../../host/board/volume_geometry.ts";
import { Prng } from "../../host/sim/prng.ts";
import { testBoard, type TestBoard } from "../support/board.ts";
import { patchImage, readImage } from "../support/disk_images.ts";
import { turnEvery } from "../support/time.ts";
import { testTempDir } from "../support/temp_dir.ts";

const Fn = { Read: 3, Write: 4, WriteFua: 5, Unmap: 7 } as const;
const SpaceAllocFailed = 10;
const PAGE = 1; // 4 KiB buffers
const PAGE_BYTES = 4096;
const BLOCK_BYTES = 512;
const PENDING = 0xff;
const CHUNK_BYTES = 64 * 1024;
const MIB = 1024 * 1024;

interface ThinUnderTest { lun: number; name: string; shadow: Uint8Array; mapped: Set<number>; regionBytes: number }

const VOLUMES = [
  { name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1"], chunkKiB: 16 },
  { name: "thin-r5", type: "thin", pool: "r5", sizeMiB: 32, chunkKiB: 64, softThresholdPercent: 50 },
  { name: "d1", type: "disk", disk: "sp2-disk1" },
  { name: "thin-d", type: "thin", pool: "d1", sizeMiB: 16, chunkKiB: 64 },
];
const THIN_R5 = 1;
const THIN_D = 3;
// r5: 2 × 7 MiB of data; thin-r5's metadata 2 MiB: 12 MiB of chunks. d1: 8 MiB less 2 MiB: 6 MiB. The host's rule
// (host/board/volume_geometry.ts) says so, and the firmware must hand out exactly that many (the pool-full test).
const POOL_CHUNKS = {
  [THIN_R5]: thinPoolChunkCount(14 * MIB, 32 * MIB, CHUNK_BYTES),
  [THIN_D]: thinPoolChunkCount(8 * MIB, 16 * MIB, CHUNK_BYTES),
} as Record<number, number>;

function boot(dataDir: string, seed = 5): TestBoard {
  const t = testBoard({
    ramMiB: [64, 32, 32],
    disksMiB: [[], [8, 8], [8, 8]],
    diskBackend: "file",
    dataDir,
    seed,
    volumes: VOLUMES,
  });
  for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
  expect(t.stops).toEqual([]);
  expect(t.call("testUmaReady")).toBe(1);
  return t;
}

function ram(t: TestBoard): Uint8Array { return new Uint8Array(t.host.memory.buffer); }

interface Op { r: number; v: ThinUnderTest; offset: number; bytes: number; fn: number; data?: Uint8Array }

function submit(t: TestBoard, v: ThinUnderTest, fn: number, offset: number, bytes: number, data?: Uint8Array): Op {
  const pages = fn === Fn.Unmap ? 0 : bytes / PAGE_BYTES;
  const r = t.call("testClientPrepare", PAGE, pages) as number;
  expect(r).not.toBe(0xffff_ffff);
  if (data !== undefined) {
    for (let i = 0; i < pages; i++) ram(t).set(data.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES), t.call("testClientBufferAddress", r, i) as number);
  }
  expect(t.call("testClientSubmit", r, fn, v.lun, BigInt(offset / BLOCK_BYTES), bytes / BLOCK_BYTES)).toBe(1);
  return { r, v, offset, bytes, fn, data };
}

/** Applies an answered op to the model; checks a read against it. */
function settle(t: TestBoard, o: Op, status: number): void {
  const what = `${o.fn} of ${o.bytes} bytes at ${o.offset} of ${o.v.name}`;
  expect(status, what).toBe(0);
  if (o.fn === Fn.Write || o.fn === Fn.WriteFua) {
    o.v.shadow.set(o.data!, o.offset);
    for (let c = Math.floor(o.offset / CHUNK_BYTES); c * CHUNK_BYTES < o.offset + o.bytes; c++) o.v.mapped.add(c);
  } else if (o.fn === Fn.Unmap) {
    o.v.shadow.fill(0, o.offset, o.offset + o.bytes);
    for (let c = Math.ceil(o.offset / CHUNK_BYTES); (c + 1) * CHUNK_BYTES <= o.offset + o.bytes; c++) o.v.mapped.delete(c);
  } else {
    expect(t.call("testClientBytes", o.r), what).toBe(o.bytes);
    checkRead(t, o, what);
  }
}

function checkRead(t: TestBoard, o: Op, what: string): void {
  for (let p = 0; p < o.bytes / PAGE_BYTES; p++) {
    const at = t.call("testClientBufferAddress", o.r, p) as number;
    const got = ram(t).subarray(at, at + PAGE_BYTES);
    const want = o.v.shadow.subarray(o.offset + p * PAGE_BYTES, o.offset + (p + 1) * PAGE_BYTES);
    if (Buffer.compare(got, want) !== 0) throw new Error(`${what}: page ${p} differs from the shadow`);
  }
}

// The runs below take seconds to minutes of synchronous work on a busy machine: every loop awaits `breathe()`, which
// lets the worker's event loop turn now and then (test/support/stall_guard.ts).
const breathe = turnEvery();

/** Runs until every op is answered; returns their statuses. */
async function drain(t: TestBoard, ops: Op[], limit = 20_000): Promise<number[]> {
  const statuses = ops.map(() => PENDING);
  for (let guard = 0; statuses.includes(PENDING); guard++) {
    expect(guard).toBeLessThan(limit);
    await breathe();
    t.board.runFor(200_000);
    expect(t.stops).toEqual([]);
    ops.forEach((o, i) => { if (statuses[i] === PENDING) statuses[i] = t.call("testClientStatus", o.r) as number; });
  }
  return statuses;
}

function randomOp(prng: Prng, v: ThinUnderTest): { fn: number; offset: number; bytes: number } {
  const kind = prng.intBelow(10);
  if (kind < 2) { // unmap: whole chunks half of the time, else any range
    if (prng.intBelow(2) === 0) {
      const chunks = 1 + prng.intBelow(3);
      const first = prng.intBelow(v.regionBytes / CHUNK_BYTES - chunks);
      return { fn: Fn.Unmap, offset: first * CHUNK_BYTES, bytes: chunks * CHUNK_BYTES };
    }
    const bytes = (1 + prng.intBelow(256)) * BLOCK_BYTES;
    return { fn: Fn.Unmap, offset: prng.intBelow((v.regionBytes - bytes) / BLOCK_BYTES) * BLOCK_BYTES, bytes };
  }
  const bytes = (1 + prng.intBelow(24)) * PAGE_BYTES;
  const offset = prng.intBelow((v.regionBytes - bytes) / BLOCK_BYTES) * BLOCK_BYTES;
  return { fn: kind < 6 ? (prng.intBelow(4) === 0 ? Fn.WriteFua : Fn.Write) : Fn.Read, offset, bytes };
}

/** Random ops, `depth` at a time, never two overlapping ones in flight. */
async function workload(t: TestBoard, volumes: ThinUnderTest[], seed: string, count: number, depth: number): Promise<void> {
  const prng = new Prng(seed);
  let inFlight: Op[] = [];
  let issued = 0;
  for (let guard = 0; issued < count || inFlight.length > 0; guard++) {
    expect(guard).toBeLessThan(100_000);
    while (issued < count && inFlight.length < depth) {
      const v = volumes[prng.intBelow(volumes.length)]!;
      const { fn, offset, bytes } = randomOp(prng, v);
      if (inFlight.some((o) => o.v === v && o.offset < offset + bytes && offset < o.offset + o.bytes)) break;
      let data: Uint8Array | undefined;
      if (fn === Fn.Write || fn === Fn.WriteFua) { data = new Uint8Array(bytes); prng.fill(data); }
      inFlight.push(submit(t, v, fn, offset, bytes, data));
      issued += 1;
    }
    await breathe();
    t.board.runFor(200_000);
    expect(t.stops).toEqual([]);
    inFlight = inFlight.filter((o) => {
      const status = t.call("testClientStatus", o.r) as number;
      if (status === PENDING) return true;
      settle(t, o, status);
      t.call("testClientRelease", o.r);
      return false;
    });
  }
}

/** Reads a volume's region back in 96 KiB pieces and compares it with the shadow. */
async function readBack(t: TestBoard, v: ThinUnderTest, bytes = v.regionBytes): Promise<void> {
  const piece = 24 * PAGE_BYTES;
  for (let offset = 0; offset < bytes; offset += piece * 4) {
    const ops: Op[] = [];
    for (let i = 0; i < 4 && offset + i * piece < bytes; i++) ops.push(submit(t, v, Fn.Read, offset + i * piece, Math.min(piece, bytes - offset - i * piece)));
    (await drain(t, ops)).forEach((status, i) => { settle(t, ops[i]!, status); t.call("testClientRelease", ops[i]!.r); });
  }
}

function volumesUnderTest(regionMiB: { [lun: number]: number }): ThinUnderTest[] {
  return [THIN_R5, THIN_D].map((lun) => {
    const spec = VOLUMES[lun]! as { name: string; sizeMiB: number };
    return { lun, name: spec.name, shadow: new Uint8Array(spec.sizeMiB * MIB), mapped: new Set<number>(), regionBytes: regionMiB[lun]! * MIB };
  });
}

function inventory(t: TestBoard, name: string): string {
  const line = t.console.find((l) => l.includes("inventory volume") && l.includes(` name=${name} `));
  expect(line, `inventory line of ${name}`).toBeDefined();
  return line!;
}



describe("thin volumes on a RAID-5 over two storage processors and on a disk", () => {
  it("format a blank pool, serve random reads, writes and unmaps like a sparse disk, and keep it all over a power cycle", async () => {
    const dataDir = testTempDir("wasm-iop-thin-");
    let t = boot(dataDir);
    expect(t.console.filter((l) => l.includes("blank pool formatted")).length).toBe(2);
    expect(inventory(t, "thin-r5")).toContain(`blocks=${32 * MIB / BLOCK_BYTES} blockSize=512`);
    expect(inventory(t, "thin-r5")).toMatch(/ used=0 chunks=512$/);
    expect(inventory(t, "thin-d")).toMatch(/ used=0 chunks=256$/);
    // Regions that fit the pools: no write runs out of chunks here.
    const volumes = volumesUnderTest({ [THIN_R5]: 10, [THIN_D]: 5 });
    await workload(t, volumes, "thin-1", 500, 8);
    for (const v of volumes) {
      expect(v.mapped.size).toBeGreaterThan(10);
      expect(t.call("testVolumeChunksUsed", v.lun), `${v.name} chunks in use`).toBe(v.mapped.size);
    }
    t.board.runFor(100_000_000);
    expect(t.call("testCtaActive")).toBe(0);
    for (const p of t.board.processors) expect(p.invoke("testBuffersAllFree")).toBe(1);

    t.board.powerOff();
    t = boot(dataDir);
    expect(t.console.some((l) => l.includes("blank pool formatted"))).toBe(false);
    for (const v of volumes) {
      expect(t.call("testVolumeChunksUsed", v.lun), `${v.name} chunks in use after the power cycle`).toBe(v.mapped.size);
      expect(inventory(t, v.name)).toContain(` used=${v.mapped.size} `);
      await readBack(t, v);
    }
    await workload(t, volumes, "thin-2", 200, 8);
    for (const v of volumes) expect(t.call("testVolumeChunksUsed", v.lun)).toBe(v.mapped.size);
  });

  it("fills the pool: a write needing a chunk fails SpaceAllocFailed, mapped chunks go on, threshold and full said once", async () => {
    const dataDir = testTempDir("wasm-iop-thin-full-");
    const t = boot(dataDir);
    expect(POOL_CHUNKS).toEqual({ [THIN_R5]: 192, [THIN_D]: 96 });
    const [r5, disk] = volumesUnderTest({ [THIN_R5]: 32, [THIN_D]: 16 });
    const prng = new Prng("thin-full");
    for (const v of [r5!, disk!]) {
      const poolChunks = POOL_CHUNKS[v.lun]!;
      // One 4 KiB write into each virtual chunk in turn, eight at a time: the first poolChunks succeed.
      const statuses: number[] = [];
      for (let c = 0; c < poolChunks + 8; c += 8) {
        const ops: Op[] = [];
        for (let i = c; i < c + 8; i++) {
          const data = new Uint8Array(PAGE_BYTES);
          prng.fill(data);
          ops.push(submit(t, v, Fn.Write, i * CHUNK_BYTES + PAGE_BYTES, PAGE_BYTES, data));
        }
        (await drain(t, ops)).forEach((status, i) => {
          statuses.push(status);
          if (status === 0) settle(t, ops[i]!, status);
          t.call("testClientRelease", ops[i]!.r);
        });
      }
      expect(statuses.slice(0, poolChunks).every((s) => s === 0)).toBe(true);
      expect(statuses.slice(poolChunks)).toEqual(new Array(8).fill(SpaceAllocFailed));
      expect(t.call("testVolumeChunksUsed", v.lun)).toBe(poolChunks);
      expect(t.console.filter((l) => l.includes(`name=${v.name} `) && l.includes("event=full")).length).toBe(1);
      // A mapped chunk takes writes; everything reads back (the failed chunks as zeros).
      const data = new Uint8Array(8 * PAGE_BYTES);
      prng.fill(data);
      const [op] = [submit(t, v, Fn.Write, 3 * CHUNK_BYTES, data.length, data)];
      expect(await drain(t, [op!])).toEqual([0]);
      settle(t, op!, 0);
      t.call("testClientRelease", op!.r);
      await readBack(t, v, (poolChunks + 8) * CHUNK_BYTES);
      // Freeing a chunk makes room for one more.
      const unmap = submit(t, v, Fn.Unmap, 5 * CHUNK_BYTES, CHUNK_BYTES);
      expect(await drain(t, [unmap])).toEqual([0]);
      settle(t, unmap, 0);
      t.call("testClientRelease", unmap.r);
      expect(t.call("testVolumeChunksUsed", v.lun)).toBe(poolChunks - 1);
      const more = submit(t, v, Fn.Write, (poolChunks + 2) * CHUNK_BYTES, PAGE_BYTES, new Uint8Array(PAGE_BYTES).fill(7));
      expect(await drain(t, [more])).toEqual([0]);
      settle(t, more, 0);
      t.call("testClientRelease", more.r);
      expect(t.call("testVolumeChunksUsed", v.lun)).toBe(poolChunks);
    }
    // thin-r5 has a 50 % threshold: crossed once; thin-d has none.
    expect(t.console.filter((l) => l.includes("name=thin-r5 ") && l.includes("event=threshold")).length).toBe(1);
    expect(t.console.some((l) => l.includes("name=thin-d ") && l.includes("event=threshold"))).toBe(false);
  });

  it("keeps every acknowledged write over crashes at random board times", async () => {
    const dataDir = testTempDir("wasm-iop-thin-crash-");
    const volumes = volumesUnderTest({ [THIN_R5]: 8, [THIN_D]: 4 });
    const prng = new Prng("thin-crash");
    for (let round = 0; round < 10; round++) {
      let t = boot(dataDir, 11 + round);
      const stopAtNs = Number(t.board.clock.nowNs) + 2_000_000 + prng.intBelow(30_000_000);
      let inFlight: Op[] = [];
      while (Number(t.board.clock.nowNs) < stopAtNs) {
        while (inFlight.length < 8) {
          const v = volumes[prng.intBelow(volumes.length)]!;
          const { fn, offset, bytes } = randomOp(prng, v);
          if (fn === Fn.Read || inFlight.some((o) => o.v === v && o.offset < offset + bytes && offset < o.offset + o.bytes)) break;
          let data: Uint8Array | undefined;
          if (fn !== Fn.Unmap) { data = new Uint8Array(bytes); prng.fill(data); }
          inFlight.push(submit(t, v, fn, offset, bytes, data));
        }
        await breathe();
        t.board.runFor(10_000 + prng.intBelow(90_000)); // fine steps: the crash can fall between any two events
        expect(t.stops).toEqual([]);
        inFlight = inFlight.filter((o) => {
          const status = t.call("testClientStatus", o.r) as number;
          if (status === PENDING) return true;
          settle(t, o, status);
          t.call("testClientRelease", o.r);
          return false;
        });
      }
      // The crash: the board is dropped between events. Blocks of ops still in flight may hold old or new data.
      const uncertain = inFlight.map((o) => ({ v: o.v, offset: o.offset, bytes: o.bytes, data: o.data }));
      t.board.powerOff();
      t = boot(dataDir, 11 + round);
      for (const v of volumes) {
        const got = new Uint8Array(v.regionBytes);
        const piece = 24 * PAGE_BYTES;
        for (let offset = 0; offset < v.regionBytes; offset += piece) {
          const op = submit(t, v, Fn.Read, offset, Math.min(piece, v.regionBytes - offset));
          expect(await drain(t, [op])).toEqual([0]);
          for (let p = 0; p < op.bytes / PAGE_BYTES; p++) {
            const at = t.call("testClientBufferAddress", op.r, p) as number;
            got.set(ram(t).subarray(at, at + PAGE_BYTES), offset + p * PAGE_BYTES);
          }
          t.call("testClientRelease", op.r);
        }
        for (let b = 0; b < v.regionBytes; b += BLOCK_BYTES) {
          const block = got.subarray(b, b + BLOCK_BYTES);
          if (Buffer.compare(block, v.shadow.subarray(b, b + BLOCK_BYTES)) === 0) continue;
          const u = uncertain.find((o) => o.v === v && o.offset <= b && b < o.offset + o.bytes);
          const maybe = u === undefined ? undefined : u.data === undefined ? new Uint8Array(BLOCK_BYTES) : u.data.subarray(b - u.offset, b - u.offset + BLOCK_BYTES);
          if (maybe === undefined || Buffer.compare(block, maybe) !== 0) throw new Error(`round ${round}: ${v.name} block at ${b} lost an acknowledged write`);
          v.shadow.set(block, b); // the op in flight landed here: that is the truth from now on
        }
      }
      t.board.powerOff();
    }
  });

  it("reads the newer valid copy of a map block, falls back when it is torn, and fails a volume whose copies are both bad", async () => {
    const dataDir = testTempDir("wasm-iop-thin-torn-");
    let t = boot(dataDir);
    const [, disk] = volumesUnderTest({ [THIN_R5]: 1, [THIN_D]: 1 });
    const data = new Uint8Array(PAGE_BYTES).fill(0x5a);
    const first = submit(t, disk!, Fn.Write, 0, PAGE_BYTES, data);
    expect(await drain(t, [first])).toEqual([0]);
    t.call("testClientRelease", first.r);
    // Map block 0 of thin-d is at 1 MiB of d1 (sp2-disk1): copy 0 (generation 1, the format), copy 1 (generation 2).
    const copy1 = readImage(dataDir, "sp2-disk1", MIB + 4096, 4096);
    expect(new DataView(copy1.buffer).getUint32(0, true)).toBe(0x5041_4d54); // "TMAP"
    expect(Number(new DataView(copy1.buffer).getBigUint64(16, true))).toBe(2);
    t.board.powerOff();
    // Copy 1 as a write cut short by a crash leaves it (the write that allocated the chunk would not have been
    // answered yet): its second half is garbage. Copy 0 (the format's, empty) is what is left, and is taken.
    patchImage(dataDir, "sp2-disk1", MIB + 4096 + 2048, new Uint8Array(2048).fill(0xee));
    t = boot(dataDir);
    expect(t.call("testVolumeChunksUsed", THIN_D)).toBe(0);
    expect(t.call("testVolumeState", THIN_D)).toBe(0);
    t.board.powerOff();
    // Both copies bad: the volume fails, says why, and its I/O fails rather than reading zeros.
    patchImage(dataDir, "sp2-disk1", MIB + 100, new Uint8Array(8).fill(0xee));
    t = boot(dataDir);
    expect(t.console.some((l) => l.includes("thin: volume thin-d failed: chunk map: neither copy of a map block is valid (map block 0)"))).toBe(true);
    expect(t.call("testVolumeState", THIN_D)).toBe(3);
    expect(inventory(t, "thin-d")).toContain("state=failed");
    const read = submit(t, disk!, Fn.Read, 0, PAGE_BYTES);
    expect((await drain(t, [read]))[0]).not.toBe(0);
    t.call("testClientRelease", read.r);
    expect(t.call("testVolumeState", THIN_R5)).toBe(0); // the other thin volume is unaffected
  });
});
