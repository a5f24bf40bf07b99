// RAID volumes end to end through the CTA (docs/volumes.md, "Data path"): a test client sends READ and WRITE
// service requests of random sizes at random block addresses to a RAID-0, a RAID-1 and a RAID-5 volume whose
// members sit on both storage processors; a shadow copy of each volume says what every read must return. Then the
// member disks' image files are read directly: RAID 1 copies agree, and RAID-5 parity is the XOR of its row's data
// (a scrub with 0 mismatches). Then members fail mid-run (pulled disks): reads of RAID 1 and RAID 5 still return
// the shadow's bytes, writes go on, and the volume lines on the console say degraded.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Prng } from "../../host/sim/prng.ts";
import { testBoard, type TestBoard, unsigned } from "../support/board.ts";
import { patchImage, readImage } from "../support/disk_images.ts";
import { RAID_METADATA_BYTES, scrubRaid5 } from "../support/raid_scrub.ts";
import { turnEvery } from "../support/time.ts";
import { testTempDir } from "../support/temp_dir.ts";

const Fn = { Read: 3, Write: 4 } as const;
const PAGE = 1; // 4 KiB buffers
const PAGE_BYTES = 4096;
const BLOCK_BYTES = 512;
const PENDING = 0xff;
const MEDIUM_ERROR = 1; // FrameStatus.MediumError (assembly/board/frame.ts): the client sees the CTA's status
const DISK_MIB = 8;

interface VolumeUnderTest { lun: number; name: string; shadow: Uint8Array }

function bootRaidBoard(dataDir: string, volumes?: object[], xorEngine = false, hostDisk = false): TestBoard {
  const t = testBoard({
    xorEngine,
    ramMiB: [64, 32, 32],
    disksMiB: [hostDisk ? [DISK_MIB] : [], [DISK_MIB, DISK_MIB, DISK_MIB, DISK_MIB], [DISK_MIB, DISK_MIB, DISK_MIB, DISK_MIB]],
    diskBackend: "file",
    dataDir,
    seed: 5,
    volumes: volumes ?? [
      { name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1", "sp2-disk1"], chunkKiB: 8 },
      { name: "r1", type: "raid1", members: ["sp1-disk2", "sp2-disk2"], chunkKiB: 64 },
      { name: "r0", type: "raid0", members: ["sp1-disk3", "sp2-disk3"], chunkKiB: 16 },
    ],
  });
  for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
  expect(t.call("testUmaReady")).toBe(1);
  expect(t.call("testVolumeCount")).toBe((volumes ?? [0, 0, 0]).length);
  return t;
}

// A RAID 5 over three disks on two processors, with a hot spare, and 8 KiB chunks (many rows to rebuild).
const RAID5_WITH_SPARE = [{ name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1"], chunkKiB: 8, spares: ["sp2-disk1"] }];
// The same over all three processors (as the simulator's pool5): a row's members answer at different times.
const RAID5_THREE_PROCESSORS = [{ name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "host-disk0"], chunkKiB: 8, spares: ["sp2-disk1"] }];

/** The latest `volume …` line the firmware printed for `name`. */
function volumeLine(t: TestBoard, name: string): string | undefined {
  return t.console.filter((l) => / volume index=/.test(l) && l.includes(` name=${name} `)).at(-1);
}

/** Runs the board until the volume's latest line matches `pattern` (board time, bounded). */
// The runs below take seconds of synchronous work on a busy machine: their loops await `breathe()`, which lets the
// worker's event loop turn now and then (test/support/stall_guard.ts).
const breathe = turnEvery();

async function runUntilVolume(t: TestBoard, name: string, pattern: RegExp, seconds: number): Promise<void> {
  for (let i = 0; i < seconds * 100 && !pattern.test(volumeLine(t, name) ?? ""); i++) {
    await breathe();
    t.board.runFor(10_000_000);
  }
  expect(volumeLine(t, name)).toMatch(pattern);
}

/** Reads the whole volume back in 64 KiB requests and compares it with the shadow. */
async function readAll(t: TestBoard, v: VolumeUnderTest): Promise<void> {
  const pages = 16;
  for (let offset = 0; offset < v.shadow.length; offset += pages * PAGE_BYTES) {
    await breathe();
    const r = t.call("testClientPrepare", PAGE, pages) as number;
    expect(t.call("testClientSubmit", r, Fn.Read, v.lun, BigInt(offset / BLOCK_BYTES), pages * PAGE_BYTES / BLOCK_BYTES)).toBe(1);
    for (let i = 0; i < 1000 && t.call("testClientStatus", r) === PENDING; i++) t.board.runFor(100_000);
    expect(t.call("testClientStatus", r), `read at ${offset}`).toBe(0);
    for (let p = 0; p < pages; p++) {
      const at = t.call("testClientBufferAddress", r, p) as number;
      if (Buffer.compare(ram(t).subarray(at, at + PAGE_BYTES), v.shadow.subarray(offset + p * PAGE_BYTES, offset + (p + 1) * PAGE_BYTES)) !== 0) {
        throw new Error(`${v.name} at ${offset + p * PAGE_BYTES}: other bytes than were written`);
      }
    }
    t.call("testClientRelease", r);
  }
}

/** `bytes` of volume `lun` at `offset`, read in one request. */
function readVolume(t: TestBoard, lun: number, offset: number, bytes: number): Uint8Array {
  const pages = bytes / PAGE_BYTES;
  const r = t.call("testClientPrepare", PAGE, pages) as number;
  expect(t.call("testClientSubmit", r, Fn.Read, lun, BigInt(offset / BLOCK_BYTES), bytes / BLOCK_BYTES)).toBe(1);
  for (let i = 0; i < 1000 && t.call("testClientStatus", r) === PENDING; i++) t.board.runFor(100_000);
  expect(t.call("testClientStatus", r)).toBe(0);
  const out = new Uint8Array(bytes);
  for (let p = 0; p < pages; p++) {
    const at = t.call("testClientBufferAddress", r, p) as number;
    out.set(ram(t).subarray(at, at + PAGE_BYTES), p * PAGE_BYTES);
  }
  t.call("testClientRelease", r);
  return out;
}

/** Pulls disk `lun` of storage processor `processor` (1-based) out of its virtio-scsi controller. */
function pullDisk(t: TestBoard, processor: number, lun: number): void {
  (t.board.controllers[processor - 1] as unknown as { pull(lun: number): void }).pull(lun);
}

function ram(t: TestBoard): Uint8Array { return new Uint8Array(t.host.memory.buffer); }

function capacityBytes(t: TestBoard, name: string): number {
  const line = t.console.find((l) => l.includes("inventory volume") && l.includes(` name=${name} `));
  expect(line).toBeDefined();
  return Number(/ blocks=(\d+)/.exec(line!)![1]) * BLOCK_BYTES;
}

/** Random reads and writes, `depth` at a time, never two overlapping ones in flight; reads checked against the shadow. */
async function workload(t: TestBoard, volumes: VolumeUnderTest[], seed: string, count: number, depth: number): Promise<void> {
  const prng = new Prng(seed);
  const inFlight: { r: number; v: VolumeUnderTest; offset: number; bytes: number; fn: number; data?: Uint8Array }[] = [];
  let issued = 0;
  let guard = 0;
  while (issued < count || inFlight.length > 0) {
    expect(guard++).toBeLessThan(100_000);
    while (issued < count && inFlight.length < depth) {
      const v = volumes[prng.intBelow(volumes.length)]!;
      const pages = 1 + prng.intBelow(24);
      const bytes = pages * PAGE_BYTES;
      const offset = prng.intBelow((v.shadow.length - bytes) / BLOCK_BYTES) * BLOCK_BYTES;
      if (inFlight.some((o) => o.v === v && o.offset < offset + bytes && offset < o.offset + o.bytes)) break;
      const fn = prng.intBelow(2) === 0 ? Fn.Write : Fn.Read;
      const r = t.call("testClientPrepare", PAGE, pages) as number;
      expect(r).not.toBe(0xffff_ffff);
      let data: Uint8Array | undefined;
      if (fn === Fn.Write) {
        data = new Uint8Array(bytes);
        prng.fill(data);
        for (let i = 0; i < pages; i++) ram(t).set(data.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES), t.call("testClientBufferAddress", r, i) as number);
      }
      expect(t.call("testClientSubmit", r, fn, v.lun, BigInt(offset / BLOCK_BYTES), bytes / BLOCK_BYTES)).toBe(1);
      inFlight.push({ r, v, offset, bytes, fn, data });
      issued += 1;
    }
    await breathe();
    t.board.runFor(200_000);
    expect(t.stops).toEqual([]);
    for (let i = inFlight.length - 1; i >= 0; i--) {
      const o = inFlight[i]!;
      const status = t.call("testClientStatus", o.r) as number;
      if (status === PENDING) continue;
      inFlight.splice(i, 1);
      const what = `${o.fn === Fn.Read ? "read" : "write"} of ${o.bytes} bytes at ${o.offset} of ${o.v.name}`;
      expect(status, what).toBe(0);
      expect(t.call("testClientBytes", o.r), what).toBe(o.bytes);
      if (o.fn === Fn.Write) o.v.shadow.set(o.data!, o.offset);
      else {
        for (let p = 0; p < o.bytes / PAGE_BYTES; p++) {
          const at = t.call("testClientBufferAddress", o.r, p) as number;
          const got = ram(t).subarray(at, at + PAGE_BYTES);
          const want = o.v.shadow.subarray(o.offset + p * PAGE_BYTES, o.offset + (p + 1) * PAGE_BYTES);
          if (Buffer.compare(got, want) !== 0) throw new Error(`${what}: page ${p} differs from what was written`);
        }
      }
      t.call("testClientRelease", o.r);
    }
  }
}


/** RAID 5: the rows of `members`' images (in the board's data dir) whose chunks do not XOR to zero (test/support/raid_scrub.ts). */
/** Submits up to 8 non-overlapping random writes of `pagesOf(prng)` pages to `v`, lets 150 µs of board time
 *  pass (some of their frames are out, some not), then cuts the power: the torn writes, each block of which may now
 *  hold the old or the new bytes. */
function cutPowerUnderWrites(t: TestBoard, v: VolumeUnderTest, seed: string, pagesOf: (prng: Prng) => number,
  within: [number, number] = [0, v.shadow.length]): { offset: number; data: Uint8Array }[] {
  const prng = new Prng(seed);
  const torn: { offset: number; data: Uint8Array }[] = [];
  for (let i = 0; i < 8; i++) {
    const pages = pagesOf(prng);
    const offset = within[0] + prng.intBelow((within[1] - within[0] - pages * PAGE_BYTES) / BLOCK_BYTES) * BLOCK_BYTES;
    if (torn.some((w) => w.offset < offset + pages * PAGE_BYTES && offset < w.offset + w.data.length)) continue;
    const data = new Uint8Array(pages * PAGE_BYTES);
    prng.fill(data);
    const r = t.call("testClientPrepare", PAGE, pages) as number;
    for (let p = 0; p < pages; p++) ram(t).set(data.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES), t.call("testClientBufferAddress", r, p) as number);
    expect(t.call("testClientSubmit", r, Fn.Write, v.lun, BigInt(offset / BLOCK_BYTES), data.length / BLOCK_BYTES)).toBe(1);
    torn.push({ offset, data });
  }
  t.board.runFor(150_000);
  t.board.powerOff();
  return torn;
}

/** Every block of the torn writes holds the old or the new bytes; what it holds goes into the shadow. */
function expectOldOrNew(t: TestBoard, v: VolumeUnderTest, torn: { offset: number; data: Uint8Array }[]): void {
  for (const w of torn) {
    const now = readVolume(t, v.lun, w.offset, w.data.length);
    for (let b = 0; b < w.data.length; b += BLOCK_BYTES) {
      const got = now.subarray(b, b + BLOCK_BYTES);
      const isNew = Buffer.compare(got, w.data.subarray(b, b + BLOCK_BYTES)) === 0;
      const isOld = Buffer.compare(got, v.shadow.subarray(w.offset + b, w.offset + b + BLOCK_BYTES)) === 0;
      expect(isNew || isOld, `block ${(w.offset + b) / BLOCK_BYTES}: neither what was there nor what was written`).toBe(true);
      v.shadow.set(got, w.offset + b);
    }
  }
}

/** Keeps a random workload on `v` until its latest line says a rebuild at `percent`% or more. */
async function rebuildUnderWorkload(t: TestBoard, v: VolumeUnderTest, seed: string, percent: number): Promise<number> {
  for (let i = 0; i < 2000; i++) {
    const progress = /state=rebuilding .*progress=(\d+)/.exec(volumeLine(t, v.name) ?? "");
    if (progress !== null && Number(progress[1]) >= percent) return Number(progress[1]);
    await workload(t, [v], `${seed}-${i}`, 4, 4);
  }
  throw new Error(`${v.name}: no rebuild reached ${percent}%: ${volumeLine(t, v.name)}`);
}

// The superblock of `disk` (block 0 of its image) with its generation lowered by one and its checksum made right
// again (FNV-1a 32 over bytes 0..507 at 508; assembly/volumes/superblock.ts): a member the last superblock update
// did not reach before a reset.
function superblockOneGenerationBack(dataDir: string, disk: string): bigint {
  const block = readImage(dataDir, disk, 0, 512);
  const view = new DataView(block.buffer);
  const generation = view.getBigUint64(24, true);
  view.setBigUint64(24, generation - 1n, true);
  let h = 0x811c9dc5;
  for (let i = 0; i < 508; i++) h = Math.imul(h ^ block[i]!, 0x01000193) >>> 0;
  view.setUint32(508, h, true);
  patchImage(dataDir, disk, 0, block);
  return generation;
}

function parityMismatches(dataDir: string, members: string[], chunkBytes: number): number[] {
  const scrub = scrubRaid5(members.map((m) => new Uint8Array(readFileSync(join(dataDir, `${m}.img`)))), chunkBytes);
  expect(scrub.rowsWithData).toBeGreaterThan(0); // a scrub of blank members would prove nothing
  return scrub.mismatches;
}

describe("RAID volumes over two storage processors", () => {
  it.each([["the XOR task's firmware loop", false], ["the XOR engine", true]])("serve random reads and writes like a flat disk, keep RAID-1 copies equal and RAID-5 parity right (parity by %s)", async (_, engine) => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const t = bootRaidBoard(dataDir, undefined, engine);
    expect(t.board.xorEngines.length).toBe(engine ? 1 : 0);
    const area = DISK_MIB * 1024 * 1024 - RAID_METADATA_BYTES;
    expect(capacityBytes(t, "r5")).toBe(3 * area);
    expect(capacityBytes(t, "r1")).toBe(area);
    expect(capacityBytes(t, "r0")).toBe(2 * area);
    const volumes: VolumeUnderTest[] = ["r5", "r1", "r0"].map((name, lun) => ({ lun, name, shadow: new Uint8Array(capacityBytes(t, name)) }));
    await workload(t, volumes, "raid-1", 600, 8);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    if (engine) expect(t.board.xorEngines[0]!.stats.descriptors).toBeGreaterThan(100); // the parity went through it
    expect(parityMismatches(dataDir, ["sp1-disk0", "sp2-disk0", "sp1-disk1", "sp2-disk1"], 8192)).toEqual([]);
    expect(Buffer.compare(readImage(dataDir, "sp1-disk2", RAID_METADATA_BYTES, area), readImage(dataDir, "sp2-disk2", RAID_METADATA_BYTES, area))).toBe(0);
    for (const p of t.board.processors) expect(p.invoke("testBuffersAllFree")).toBe(1);
    expect(t.call("testCtaActive")).toBe(0);
  });

  // A RAID-5 write's cursor walks stripe rows; one starting at LBA k that reached row k was taken for a write just
  // begun and sent back to its first row, for ever (found by simulate --board volumes, seed 12). Here rows are 48
  // blocks (three data chunks of 8 KiB): writes at LBAs 1-4 long enough to reach rows 1-4 each end, and read back.
  it("finishes RAID-5 writes whose first LBA is also the number of a row they reach", () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const t = bootRaidBoard(dataDir);
    const rowBlocks = 3 * 8192 / BLOCK_BYTES;
    for (const lba of [1, 2, 3, 4]) {
      const pages = Math.ceil(((lba + 1) * rowBlocks - lba + 1) * BLOCK_BYTES / PAGE_BYTES);
      const data = new Uint8Array(pages * PAGE_BYTES);
      new Prng(`row-cursor-${lba}`).fill(data);
      const r = t.call("testClientPrepare", PAGE, pages) as number;
      for (let i = 0; i < pages; i++) ram(t).set(data.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES), t.call("testClientBufferAddress", r, i) as number);
      expect(t.call("testClientSubmit", r, Fn.Write, 0, BigInt(lba), pages * PAGE_BYTES / BLOCK_BYTES)).toBe(1);
      for (let i = 0; i < 1000 && t.call("testClientStatus", r) === PENDING; i++) t.board.runFor(100_000);
      expect(t.call("testClientStatus", r), `write at LBA ${lba}`).toBe(0);
      t.call("testClientRelease", r);
      const back = readVolume(t, 0, 0, (pages + 1) * PAGE_BYTES);
      expect(Buffer.compare(back.subarray(lba * BLOCK_BYTES, lba * BLOCK_BYTES + data.length), data), `read back at LBA ${lba}`).toBe(0);
    }
    expect(t.call("testCtaActive")).toBe(0);
    t.board.powerOff();
  });

  // Two reads of member 1 wait in its hung controller while its disk is pulled and a blank one put in. The first to
  // reach the new disk meets its power-on unit attention (DiskChanged: the member fails, the spare takes the slot);
  // the second reads the blank disk's zeros with GOOD status. The CTA must not trust it: a part out to a member when
  // the member fails is stale, and its read is rebuilt from parity (found by simulate --board volumes, seed 1).
  it("rebuilds a read from parity when its member failed while the read was out, though the new disk answered GOOD", () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const t = bootRaidBoard(dataDir, RAID5_WITH_SPARE);
    const write = (lba: number, data: Uint8Array) => {
      const r = t.call("testClientPrepare", PAGE, data.length / PAGE_BYTES) as number;
      for (let i = 0; i < data.length / PAGE_BYTES; i++) ram(t).set(data.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES), t.call("testClientBufferAddress", r, i) as number);
      expect(t.call("testClientSubmit", r, Fn.Write, 0, BigInt(lba), data.length / BLOCK_BYTES)).toBe(1);
      for (let i = 0; i < 1000 && t.call("testClientStatus", r) === PENDING; i++) t.board.runFor(100_000);
      expect(t.call("testClientStatus", r)).toBe(0);
      t.call("testClientRelease", r);
    };
    // 8 KiB chunks, rows of 32 blocks, parity on member 2 in rows 0 and 3: LBAs 16-31 and 112-127 are member 1's.
    const first = new Uint8Array(8192);
    const second = new Uint8Array(8192);
    new Prng("stale-1").fill(first);
    new Prng("stale-2").fill(second);
    write(16, first);
    write(112, second);
    const sp2 = t.board.controllers[1] as unknown as { hang(): void; resume(): void };
    sp2.hang();
    const reads = [16, 112].map((lba) => {
      const r = t.call("testClientPrepare", PAGE, 2) as number;
      expect(t.call("testClientSubmit", r, Fn.Read, 0, BigInt(lba), 16)).toBe(1);
      return r;
    });
    t.board.runFor(1_000_000);
    t.board.pullDisk("sp2-disk0");
    t.board.replaceDisk("sp2-disk0"); // a blank image; the old one set aside
    sp2.resume();
    for (let i = 0; i < 2000 && reads.some((r) => t.call("testClientStatus", r) === PENDING); i++) t.board.runFor(100_000);
    expect(t.console.join("\n")).toMatch(/a spare takes member 1 of volume 0/);
    reads.forEach((r, n) => {
      expect(t.call("testClientStatus", r)).toBe(0);
      const got = new Uint8Array(8192);
      for (let p = 0; p < 2; p++) got.set(ram(t).subarray(t.call("testClientBufferAddress", r, p) as number, (t.call("testClientBufferAddress", r, p) as number) + PAGE_BYTES), p * PAGE_BYTES);
      expect(Buffer.compare(got, n === 0 ? first : second), `read ${n}`).toBe(0);
      t.call("testClientRelease", r);
    });
    t.board.powerOff();
  });

  it("goes on degraded when a member is pulled mid-run, rebuilds onto the spare while serving, and is optimal and right after", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const t = bootRaidBoard(dataDir, RAID5_WITH_SPARE);
    const v: VolumeUnderTest = { lun: 0, name: "r5", shadow: new Uint8Array(capacityBytes(t, "r5")) };
    await workload(t, [v], "degraded-1", 150, 8);
    pullDisk(t, 2, 0); // sp2-disk0: member 1
    await workload(t, [v], "degraded-2", 300, 8); // the first request to it fails the member; the spare takes its slot
    expect(t.console.join("\n")).toMatch(/a spare takes member 1 of volume 0/);
    await runUntilVolume(t, "r5", /state=optimal/, 60);
    await readAll(t, v);
    expect(parityMismatches(dataDir, ["sp1-disk0", "sp2-disk1", "sp1-disk1"], 8192)).toEqual([]);
    await t.board.runUntilTurning(t.board.clock.nowNs + 500_000_000);
    for (const p of t.board.processors) expect(p.invoke("testBuffersAllFree")).toBe(1);
    // After a restart the spare is found in the slot it took (its superblock says so), not rebuilt again.
    t.board.powerOff();
    const again = bootRaidBoard(dataDir, RAID5_WITH_SPARE);
    expect(again.console.join("\n")).toMatch(/r5: spare 0 holds member 1 since before the restart/);
    expect(again.console.find((l) => l.includes("inventory volume") && l.includes("name=r5"))).toMatch(/state=optimal/);
    await readAll(again, v);
  });

  it("comes up degraded after a member's image is deleted, reads right, and rebuilds onto the blank disk", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const volumes = [{ name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1"], chunkKiB: 8 }];
    let t = bootRaidBoard(dataDir, volumes);
    const v: VolumeUnderTest = { lun: 0, name: "r5", shadow: new Uint8Array(capacityBytes(t, "r5")) };
    await workload(t, [v], "restart-1", 300, 8);
    t.board.powerOff();
    rmSync(join(dataDir, "sp2-disk0.img"));
    t = bootRaidBoard(dataDir, volumes);
    expect(t.console.find((l) => l.includes("inventory volume") && l.includes("name=r5"))).toMatch(/state=degraded/);
    await readAll(t, v); // rebuilt from parity (or from the member as far as the rebuild has gone)
    await runUntilVolume(t, "r5", /state=optimal/, 60);
    await readAll(t, v);
    await workload(t, [v], "restart-2", 100, 8);
    t.board.powerOff();
    t = bootRaidBoard(dataDir, volumes);
    expect(t.console.find((l) => l.includes("inventory volume") && l.includes("name=r5"))).toMatch(/state=optimal/);
    await readAll(t, v);
  });

  // The write hole: a power cut under writes leaves rows whose parity may disagree with their data (the write-intent
  // bitmap names them); when a member fails before they are resynchronized, rebuilding its blocks there from that
  // parity may give bytes no write ever wrote. Such reads end MEDIUM ERROR (03/11/00) instead of returning them, and
  // every other read of the torn ranges returns the old or the new bytes.
  it("with a member failing before the resync, reads rebuilt from the rows written at the power cut end MEDIUM ERROR", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const volumes = [{ name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1"], chunkKiB: 8 }];
    let t = bootRaidBoard(dataDir, volumes);
    const v: VolumeUnderTest = { lun: 0, name: "r5", shadow: new Uint8Array(capacityBytes(t, "r5")) };
    await workload(t, [v], "hole-1", 200, 8);
    // 16-32 KiB each: over two or more chunks, so each reaches every member
    const torn = cutPowerUnderWrites(t, v, "hole-2", (prng) => 4 + prng.intBelow(5));
    t = bootRaidBoard(dataDir, volumes);
    expect(t.console.join("\n")).toMatch(/r5: stopped with writes in flight; the rows they touched are resynchronized/);
    expect(t.console.join("\n")).not.toMatch(/volume 0 resynchronized/);
    pullDisk(t, 2, 0); // member 1 (sp2-disk0), before the resync is done: its next request fails it
    for (let i = 0; i < 100 && !t.console.some((l) => l.includes("failed before the rows written")); i++) t.board.runFor(1_000_000);
    expect(t.console.join("\n")).toMatch(/volumes: volume 0: member 1 failed before the rows written when it stopped were resynchronized \(the write hole\)/);
    let mediumErrors = 0;
    for (const w of torn) {
      const pages = w.data.length / PAGE_BYTES;
      const r = t.call("testClientPrepare", PAGE, pages) as number;
      expect(t.call("testClientSubmit", r, Fn.Read, 0, BigInt(w.offset / BLOCK_BYTES), w.data.length / BLOCK_BYTES)).toBe(1);
      for (let i = 0; i < 1000 && t.call("testClientStatus", r) === PENDING; i++) t.board.runFor(100_000);
      const status = t.call("testClientStatus", r);
      if (status === MEDIUM_ERROR) {
        mediumErrors += 1;
      } else {
        expect(status, `read of the torn write at ${w.offset}`).toBe(0);
        for (let b = 0; b < w.data.length; b += BLOCK_BYTES) {
          const at = (t.call("testClientBufferAddress", r, Math.floor(b / PAGE_BYTES)) as number) + (b % PAGE_BYTES);
          const got = ram(t).subarray(at, at + BLOCK_BYTES);
          const isNew = Buffer.compare(got, w.data.subarray(b, b + BLOCK_BYTES)) === 0;
          const isOld = Buffer.compare(got, v.shadow.subarray(w.offset + b, w.offset + b + BLOCK_BYTES)) === 0;
          expect(isNew || isOld, `block ${(w.offset + b) / BLOCK_BYTES}: neither what was there nor what was written`).toBe(true);
        }
      }
      t.call("testClientRelease", r);
    }
    expect(mediumErrors).toBeGreaterThan(0);
  });

  it("after a power cut under writes, resynchronizes the dirty rows: parity scrubs clean and every acknowledged write reads back", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const volumes = [{ name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1"], chunkKiB: 8 }];
    let t = bootRaidBoard(dataDir, volumes);
    const v: VolumeUnderTest = { lun: 0, name: "r5", shadow: new Uint8Array(capacityBytes(t, "r5")) };
    await workload(t, [v], "crash-1", 200, 8);
    // Writes in flight when the power goes: each of their blocks may hold the old or the new bytes afterwards.
    const torn = cutPowerUnderWrites(t, v, "crash-2", (prng) => 1 + prng.intBelow(8));
    t = bootRaidBoard(dataDir, volumes);
    expect(t.console.join("\n")).toMatch(/r5: stopped with writes in flight; the rows they touched are resynchronized/);
    for (let i = 0; i < 200 && !t.console.some((l) => l.includes("volume 0 resynchronized")); i++) {
      await breathe();
      t.board.runFor(10_000_000);
    }
    expect(t.console.join("\n")).toMatch(/volume 0 resynchronized/);
    expect(parityMismatches(dataDir, ["sp1-disk0", "sp2-disk0", "sp1-disk1"], 8192)).toEqual([]);
    // Block by block, a torn write's range holds the old or the new bytes: take what is there into the shadow.
    for (const w of torn) {
      const now = readVolume(t, 0, w.offset, w.data.length);
      for (let b = 0; b < w.data.length; b += BLOCK_BYTES) {
        const got = now.subarray(b, b + BLOCK_BYTES);
        const isNew = Buffer.compare(got, w.data.subarray(b, b + BLOCK_BYTES)) === 0;
        const isOld = Buffer.compare(got, v.shadow.subarray(w.offset + b, w.offset + b + BLOCK_BYTES)) === 0;
        expect(isNew || isOld, `block ${(w.offset + b) / BLOCK_BYTES}: neither what was there nor what was written`).toBe(true);
        v.shadow.set(got, w.offset + b);
      }
    }
    await readAll(t, v);
    await t.board.runUntilTurning(t.board.clock.nowNs + 3_000_000_000); // quiet ticks clear the bitmap
    t.board.powerOff();
    t = bootRaidBoard(dataDir, volumes);
    expect(t.console.join("\n")).not.toMatch(/stopped with writes in flight/);
  });
  // A rebuild writes the rows it has rebuilt to the superblocks only every 1/16 of the volume (its checkpoint). Writes
  // to rows rebuilt since the last checkpoint went to the member being rebuilt; a power cut under such writes left
  // those rows dirty, and the rebuild resumed at boot from the checkpoint rebuilt them from parity that disagreed with
  // the data, over the member that held them: garbage (simulate --board volumes, seed 148, where a late superblock
  // write had also left the checkpoint behind). Here the host's controller hangs as full-row writes to such rows go
  // out: their data reaches sp1 and sp2 and their parity (or other data chunk) on the host does not. Now a write to
  // a rebuilt row waits until a superblock names it rebuilt (the durable checkpoint): the superblock update reaches
  // sp1 and sp2 and not the hung host disk, the writes never go out, and at boot the host disk, one generation
  // behind, is current and the rebuild resumes past those rows. Rows here are 16 KiB of the volume, 896 of them.
  it("after a power cut under writes to rows rebuilt since the last checkpoint, the resumed rebuild leaves them right", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    let t = bootRaidBoard(dataDir, RAID5_THREE_PROCESSORS, false, true);
    const v: VolumeUnderTest = { lun: 0, name: "r5", shadow: new Uint8Array(capacityBytes(t, "r5")) };
    await workload(t, [v], "checkpoint-1", 200, 8);
    t.board.pullDisk("sp2-disk0"); // member 1: the spare (sp2-disk1) takes its slot
    await rebuildUnderWorkload(t, v, "checkpoint-2", 20);
    // Under load the rebuild takes a step every 2 ms: on, until it is 13 rows or more past a checkpoint (every 56).
    const rows = v.shadow.length / 16384;
    for (let i = 0; i < 2000 && Number(t.call("testVolumeRebuildRow", 0)) % (rows / 16) < 13; i++) await workload(t, [v], `checkpoint-3-${i}`, 2, 2);
    const rebuilt = Number(t.call("testVolumeRebuildRow", 0));
    const checkpoint = Math.floor(rebuilt * 16 / rows) * rows / 16; // the last checkpoint before it
    expect(rebuilt - checkpoint).toBeGreaterThan(12);
    const targets = [1, 3, 5, 7, 9, 11].map((k) => (checkpoint + k) * 16384);
    const submit = (offset: number, data: Uint8Array): number => {
      const r = t.call("testClientPrepare", PAGE, data.length / PAGE_BYTES) as number;
      for (let p = 0; p < data.length / PAGE_BYTES; p++) ram(t).set(data.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES), t.call("testClientBufferAddress", r, p) as number);
      expect(t.call("testClientSubmit", r, Fn.Write, v.lun, BigInt(offset / BLOCK_BYTES), data.length / BLOCK_BYTES)).toBe(1);
      return r;
    };
    // First one write to each row, answered (their regions are dirty now: no bitmap write holds the next ones).
    const first = targets.map((offset) => {
      const data = new Uint8Array(16384);
      new Prng(`checkpoint-a-${offset}`).fill(data);
      return { offset, data, r: submit(offset, data) };
    });
    for (let i = 0; i < 10000 && first.some((w) => t.call("testClientStatus", w.r) === PENDING); i++) t.board.runFor(20_000);
    for (const w of first) {
      expect(t.call("testClientStatus", w.r)).toBe(0);
      t.call("testClientRelease", w.r);
      v.shadow.set(w.data, w.offset);
    }
    expect(Math.floor(Number(t.call("testVolumeRebuildRow", 0)) * 16 / rows) * rows / 16).toBe(checkpoint); // no checkpoint since
    const torn = targets.map((offset) => {
      const data = new Uint8Array(16384);
      new Prng(`checkpoint-b-${offset}`).fill(data);
      submit(offset, data);
      return { offset, data };
    });
    (t.board.controllers[0] as unknown as { hang(): void }).hang(); // the host's: host-disk0, member 2
    t.board.runFor(1_000_000);
    t.board.powerOff();
    t = bootRaidBoard(dataDir, RAID5_THREE_PROCESSORS, false, true);
    expect(t.console.join("\n")).toMatch(/rebuilding member 1 of volume 0 from its checkpoint at row/);
    await runUntilVolume(t, "r5", /state=optimal/, 60);
    for (let i = 0; i < 200 && !t.console.some((l) => l.includes("volume 0 resynchronized")); i++) {
      await breathe();
      t.board.runFor(10_000_000);
    }
    expectOldOrNew(t, v, torn);
    await readAll(t, v);
    expect(parityMismatches(dataDir, ["sp1-disk0", "sp2-disk1", "host-disk0"], 8192)).toEqual([]);
    t.board.powerOff();
  });

  // A superblock update goes to the members at once; a reset can leave some at generation G + 1 and others at G
  // (simulate --board volumes, seeds 34, 98 and 148: a member's controller was recovering and its write was late).
  // A member one generation behind that the newest failed mask does not name was current: with a rebuild under way
  // (its target counted failed) it used to count as stale too, and two members down failed the volume.
  it("a member one generation behind after a cut superblock update is current: the rebuild resumes, nothing is lost", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    let t = bootRaidBoard(dataDir, RAID5_WITH_SPARE);
    const v: VolumeUnderTest = { lun: 0, name: "r5", shadow: new Uint8Array(capacityBytes(t, "r5")) };
    await workload(t, [v], "generation-1", 200, 8);
    pullDisk(t, 2, 0);
    await rebuildUnderWorkload(t, v, "generation-2", 20);
    await t.board.runUntilTurning(t.board.clock.nowNs + 1_000_000); // the writes answered
    t.board.powerOff();
    const generation = superblockOneGenerationBack(dataDir, "sp1-disk1"); // member 2
    t = bootRaidBoard(dataDir, RAID5_WITH_SPARE);
    expect(t.console.join("\n")).toMatch(new RegExp(`r5: member 2 holds generation ${generation - 1n} of ${generation}: a reset cut the superblock update; it is current`));
    expect(t.console.find((l) => l.includes("inventory volume") && l.includes("name=r5"))).toMatch(/state=rebuilding/);
    await readAll(t, v);
    await runUntilVolume(t, "r5", /state=optimal/, 60);
    await readAll(t, v);
    t.board.powerOff();
  });
  // Hot insert (simulate --board volumes, seed 129): a member's disk pulled, the board reset before it is put back, so
  // at boot its slot is empty (NVMe numbers disks by NSID: an inactive namespace is an empty slot). A blank disk put
  // in later raises a Namespace Attribute Changed event: the DDM identifies the namespace it did not have at
  // discovery, the CTA's probe finds a disk in the member's empty slot, and the volume is rebuilt onto it. Before,
  // the slot's requests answered "no disk" for ever and the volume stayed degraded until the next restart.
  it("takes back a disk put into a member's slot that was empty at boot (NVMe namespace inserted): rebuilt, optimal", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const t0 = testBoard({
      ramMiB: [64, 32, 32],
      disksMiB: [[], [DISK_MIB, DISK_MIB], [DISK_MIB, DISK_MIB]],
      controller: "nvme",
      diskBackend: "file",
      dataDir,
      seed: 5,
      volumes: [{ name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1"], chunkKiB: 8 }],
    });
    const ready = (t: TestBoard) => {
      for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
      expect(t.call("testUmaReady")).toBe(1);
    };
    ready(t0);
    const v: VolumeUnderTest = { lun: 0, name: "r5", shadow: new Uint8Array(capacityBytes(t0, "r5")) };
    await workload(t0, [v], "insert-1", 200, 8);
    await t0.board.runUntilTurning(t0.board.clock.nowNs + 1_500_000_000); // quiet: the write-intent bitmap clean
    t0.board.pullDisk("sp2-disk0"); // member 1; it stays out across the reset
    expect(t0.board.reset()).toBe(true);
    const host = t0.board.processors[0]!;
    const t: TestBoard = { ...t0, host, call: (name, ...args) => unsigned(host.invoke(name, ...(args as (number | bigint)[]))) };
    ready(t);
    expect(t.console.join("\n")).toMatch(/nvme0: disk 0 NSID 1: empty/);
    expect(volumeLine(t, "r5")).toMatch(/state=degraded/);
    await readAll(t, v);
    t.board.replaceDisk("sp2-disk0"); // a blank disk in the empty slot
    await runUntilVolume(t, "r5", /state=optimal/, 30);
    expect(t.console.join("\n")).toMatch(/nvme0: disk 0 NSID 1: inserted, 16384 blocks of 512/);
    expect(t.console.join("\n")).toMatch(/volumes: r5: a disk is in the empty slot of member 1/);
    await readAll(t, v);
    await workload(t, [v], "insert-2", 100, 8);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(parityMismatches(dataDir, ["sp1-disk0", "sp2-disk0", "sp1-disk1"], 8192)).toEqual([]);
    t.board.powerOff();
  });
  // A second member failing fails a RAID 5: its requests end with a hardware error and nothing is answered GOOD after
  // it. The member whose failure did it holds every answered write; with no region of the write-intent bitmap dirty
  // then, its rows agree with their parity. When it answers again with the volume's superblock (its disk put back),
  // the volume serves again, degraded, and reads back what was written. (With regions dirty it stays failed: the rows
  // being written may disagree with their parity, and the other failed member's blocks there are unknown.)
  it("a failed RAID 5 serves again, degraded, when the member that failed last answers again with its superblock", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const volumes = [{ name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1"], chunkKiB: 8 }];
    const t = bootRaidBoard(dataDir, volumes);
    const v: VolumeUnderTest = { lun: 0, name: "r5", shadow: new Uint8Array(capacityBytes(t, "r5")) };
    await workload(t, [v], "way-back-1", 200, 8);
    t.board.pullDisk("sp2-disk0"); // member 1
    await workload(t, [v], "way-back-2", 100, 8);
    expect(volumeLine(t, "r5")).toMatch(/state=degraded failed=1/);
    await t.board.runUntilTurning(t.board.clock.nowNs + 2_500_000_000); // quiet: the bitmap's regions cleared
    t.board.pullDisk("sp1-disk1"); // member 2
    const r = t.call("testClientPrepare", PAGE, 12) as number;
    expect(t.call("testClientSubmit", r, Fn.Read, 0, 0n, 96)).toBe(1); // rows 0-2: every member's chunks
    for (let i = 0; i < 1000 && t.call("testClientStatus", r) === PENDING; i++) t.board.runFor(100_000);
    expect(t.call("testClientStatus", r)).not.toBe(0);
    t.call("testClientRelease", r);
    expect(volumeLine(t, "r5")).toMatch(/state=failed/);
    t.board.restoreDisk("sp1-disk1"); // the same disk, with what it held
    await runUntilVolume(t, "r5", /state=degraded/, 10);
    expect(t.console.join("\n")).toMatch(/volumes: member 2 of volume 0 answers again; it failed last and holds every answered write: it serves/);
    await readAll(t, v);
    await workload(t, [v], "way-back-3", 100, 8);
    t.board.powerOff();
  });
  // RAID 1 onto a hot spare: a member pulled mid-run fails at its first request, the spare takes its slot and the
  // whole volume is copied to it (replica_resync.ts: window by window, read a current member, write the spare with
  // FUA) while random reads and writes go on; writes include the spare and hold their range against the window out.
  // At the end the volume is optimal, the spare's data area equals the other member's byte for byte, and after a
  // restart the spare is found in the slot it took.
  it("RAID 1: rebuilds onto the hot spare while serving, optimal and byte-identical after, the spare kept across a restart", async () => {
    const dataDir = testTempDir("wasm-iop-raid-");
    const volumes = [{ name: "r1", type: "raid1", members: ["sp1-disk0", "sp2-disk0"], chunkKiB: 64, spares: ["sp2-disk1"] }];
    const t = bootRaidBoard(dataDir, volumes);
    const v: VolumeUnderTest = { lun: 0, name: "r1", shadow: new Uint8Array(capacityBytes(t, "r1")) };
    await workload(t, [v], "raid1-1", 200, 8);
    t.board.pullDisk("sp2-disk0"); // member 1
    await workload(t, [v], "raid1-2", 300, 8); // the first request to it fails it; the spare takes its slot
    expect(t.console.join("\n")).toMatch(/volumes: a spare takes member 1 of volume 0; the whole volume is copied to it/);
    await runUntilVolume(t, "r1", /state=optimal/, 60);
    expect(t.console.join("\n")).toMatch(/volumes: volume 0 rebuilt: member 1 current again/);
    await readAll(t, v);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    const area = capacityBytes(t, "r1");
    expect(Buffer.compare(readImage(dataDir, "sp1-disk0", RAID_METADATA_BYTES, area), readImage(dataDir, "sp2-disk1", RAID_METADATA_BYTES, area))).toBe(0);
    t.board.powerOff();
    const again = bootRaidBoard(dataDir, volumes);
    expect(again.console.join("\n")).toMatch(/r1: spare 0 holds member 1 since before the restart/);
    expect(again.console.find((l) => l.includes("inventory volume") && l.includes("name=r1"))).toMatch(/state=optimal/);
    await readAll(again, v);
    again.board.powerOff();
  });
});
