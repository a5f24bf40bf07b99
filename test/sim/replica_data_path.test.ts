// A replica volume end to end through the CTA (docs/volumes.md, "Replication"): a test client sends READ and WRITE
// service requests of random sizes at random block addresses to a replica whose copies sit on the two storage
// processors; a shadow copy of the volume says what every read must return, and the copies' image files are compared
// byte for byte after every phase. Then: overlapping writes in flight at once leave both copies identical; a copy
// pulled mid-run leaves the volume degraded with the regions written meanwhile in the log (pending=), and put back
// it gets only those regions copied (fewer than the volume has); a blank disk in its place gets every region; a power
// cut under writes is followed at restart by a copy of the logged regions; both copies down fails I/O visibly.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Prng } from "../../host/sim/prng.ts";
import { testBoard, type TestBoard } from "../support/board.ts";
import { readImage } from "../support/disk_images.ts";
import { RAID_METADATA_BYTES } from "../support/raid_scrub.ts";
import { turnEvery } from "../support/time.ts";

const Fn = { Read: 3, Write: 4 } as const;
const PAGE = 1; // 4 KiB buffers
const PAGE_BYTES = 4096;
const BLOCK_BYTES = 512;
const PENDING = 0xff;
const DISK_MIB = 8;
const CHUNK_KIB = 64;
const AREA_BYTES = DISK_MIB * 1024 * 1024 - RAID_METADATA_BYTES;
const REGIONS = AREA_BYTES / (CHUNK_KIB * 1024); // one chunk per region on so small a volume
const VOLUMES = [{ name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0"], chunkKiB: CHUNK_KIB }];
const COPIES = ["sp1-disk0", "sp2-disk0"];

const breathe = turnEvery();
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

// `spare`: the host's disk host-disk0 is the replica's hot spare.
function boot(dataDir: string, spare = false): TestBoard {
  const volumes = spare ? [{ ...VOLUMES[0]!, spares: ["host-disk0"] }] : VOLUMES;
  const t = testBoard({ ramMiB: [64, 32, 32], disksMiB: [spare ? [DISK_MIB] : [], [DISK_MIB], [DISK_MIB]], diskBackend: "file", dataDir, seed: 7, volumes });
  for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
  expect(t.call("testUmaReady")).toBe(1);
  return t;
}

function ram(t: TestBoard): Uint8Array { return new Uint8Array(t.host.memory.buffer); }

function volumeLine(t: TestBoard): string {
  return t.console.filter((l) => / volume index=0 /.test(l)).at(-1) ?? "";
}

async function runUntil(t: TestBoard, done: () => boolean, seconds: number): Promise<void> {
  for (let i = 0; i < seconds * 100 && !done(); i++) {
    await breathe();
    t.board.runFor(10_000_000);
  }
  expect(done()).toBe(true);
}

function submit(t: TestBoard, fn: number, offset: number, data: Uint8Array | number): number {
  const bytes = typeof data === "number" ? data : data.length;
  const r = t.call("testClientPrepare", PAGE, bytes / PAGE_BYTES) as number;
  expect(r).not.toBe(0xffff_ffff);
  if (typeof data !== "number") {
    for (let p = 0; p < bytes / PAGE_BYTES; p++) ram(t).set(data.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES), t.call("testClientBufferAddress", r, p) as number);
  }
  expect(t.call("testClientSubmit", r, fn, 0, BigInt(offset / BLOCK_BYTES), bytes / BLOCK_BYTES)).toBe(1);
  return r;
}

function wait(t: TestBoard, r: number): number {
  for (let i = 0; i < 20_000 && t.call("testClientStatus", r) === PENDING; i++) t.board.runFor(100_000);
  return t.call("testClientStatus", r) as number;
}

function bufferOf(t: TestBoard, r: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let p = 0; p < bytes / PAGE_BYTES; p++) {
    const at = t.call("testClientBufferAddress", r, p) as number;
    out.set(ram(t).subarray(at, at + PAGE_BYTES), p * PAGE_BYTES);
  }
  return out;
}

/** The whole volume read back in 64 KiB requests equals the shadow. */
async function readAll(t: TestBoard, shadow: Uint8Array): Promise<void> {
  for (let offset = 0; offset < shadow.length; offset += 65536) {
    await breathe();
    const r = submit(t, Fn.Read, offset, 65536);
    expect(wait(t, r), `read at ${offset}`).toBe(0);
    if (Buffer.compare(bufferOf(t, r, 65536), shadow.subarray(offset, offset + 65536)) !== 0) throw new Error(`read at ${offset}: other bytes than were written`);
    t.call("testClientRelease", r);
  }
}

/** The two copies' data areas, byte for byte: the first offset where they differ, or -1. */
function copiesDiffer(dataDir: string, copies: readonly string[] = COPIES): number {
  const a = readImage(dataDir, copies[0]!, RAID_METADATA_BYTES, AREA_BYTES);
  const b = readImage(dataDir, copies[1]!, RAID_METADATA_BYTES, AREA_BYTES);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * Random reads and writes, `depth` at a time, never two overlapping in flight; reads checked against the shadow.
 * `allowFailure`: a request may fail (both copies down): then the shadow is not updated and nothing is checked.
 */
async function workload(t: TestBoard, shadow: Uint8Array, seed: string, count: number, depth: number, within = shadow.length): Promise<void> {
  const prng = new Prng(seed);
  const inFlight: { r: number; offset: number; bytes: number; fn: number; data?: Uint8Array }[] = [];
  let issued = 0;
  while (issued < count || inFlight.length > 0) {
    while (issued < count && inFlight.length < depth) {
      const bytes = (1 + prng.intBelow(24)) * PAGE_BYTES;
      const offset = prng.intBelow((within - bytes) / BLOCK_BYTES) * BLOCK_BYTES;
      if (inFlight.some((o) => o.offset < offset + bytes && offset < o.offset + o.bytes)) break;
      const fn = prng.intBelow(2) === 0 ? Fn.Write : Fn.Read;
      let data: Uint8Array | undefined;
      if (fn === Fn.Write) {
        data = new Uint8Array(bytes);
        prng.fill(data);
      }
      inFlight.push({ r: submit(t, fn, offset, data ?? bytes), offset, bytes, fn, data });
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
      const what = `${o.fn === Fn.Read ? "read" : "write"} of ${o.bytes} bytes at ${o.offset}`;
      expect(status, what).toBe(0);
      if (o.fn === Fn.Write) shadow.set(o.data!, o.offset);
      else if (Buffer.compare(bufferOf(t, o.r, o.bytes), shadow.subarray(o.offset, o.offset + o.bytes)) !== 0) throw new Error(`${what}: other bytes than were written`);
      t.call("testClientRelease", o.r);
    }
  }
}

describe("replica volume over two storage processors", () => {
  it("serves random reads and writes like a flat disk and keeps both copies byte-identical", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    const t = boot(dataDir);
    const inventory = t.console.find((l) => l.includes("inventory volume") && l.includes("name=rep"));
    expect(inventory).toMatch(new RegExp(`type=replica blocks=${AREA_BYTES / BLOCK_BYTES} .* state=optimal copies=current,current pending=0`));
    const shadow = new Uint8Array(AREA_BYTES);
    await workload(t, shadow, "replica-1", 400, 8);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir)).toBe(-1);
    await readAll(t, shadow);
    expect(t.call("testCtaActive")).toBe(0);
    for (const p of t.board.processors) expect(p.invoke("testBuffersAllFree")).toBe(1);
  });

  // Without ordering, two overlapping writes in flight at once can reach one copy in one order and the other copy
  // in the other (a retry on one copy): both answered GOOD, and the copies disagree for good. Checked to fail with
  // the CTA's range hold taken out.
  it("orders overlapping writes in flight at once: both copies end identical, each block one of the writes", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    const t = boot(dataDir);
    const prng = new Prng("overlap");
    for (let round = 0; round < 20; round++) {
      const writes = Array.from({ length: 8 }, () => {
        const data = new Uint8Array((1 + prng.intBelow(8)) * PAGE_BYTES);
        prng.fill(data);
        return { offset: prng.intBelow(64) * BLOCK_BYTES, data };
      });
      // Copy 1's first write of the round fails its DMA and is sent again later: without ordering, the writes after
      // it would reach copy 1 before it, and copy 0 after it.
      (t.board.controllers[1] as unknown as { inject(f: { kind: string }): void }).inject({ kind: "dma-fault-next" });
      const rs = writes.map((w) => submit(t, Fn.Write, w.offset, w.data));
      for (const r of rs) { expect(wait(t, r)).toBe(0); t.call("testClientRelease", r); }
      const back = readImage(dataDir, COPIES[0]!, RAID_METADATA_BYTES, 128 * 1024);
      for (let b = 0; b < 128 * 1024; b += BLOCK_BYTES) {
        const covering = writes.filter((w) => w.offset <= b && b < w.offset + w.data.length);
        if (covering.length === 0) continue;
        const got = back.subarray(b, b + BLOCK_BYTES);
        expect(covering.some((w) => Buffer.compare(got, w.data.subarray(b - w.offset, b - w.offset + BLOCK_BYTES)) === 0), `block ${b / BLOCK_BYTES}`).toBe(true);
      }
      expect(copiesDiffer(dataDir), `round ${round}`).toBe(-1);
      await breathe();
    }
  });

  it("runs degraded with a copy pulled, logs the regions written meanwhile, and copies only those when it is put back", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    const t = boot(dataDir);
    const shadow = new Uint8Array(AREA_BYTES);
    await workload(t, shadow, "degraded-1", 200, 8);
    await t.board.runUntilTurning(t.board.clock.nowNs + 2_500_000_000); // quiet ticks clear the log
    t.board.pullDisk("sp2-disk0");
    // Writes while it is down fall in the first quarter of the volume only.
    await workload(t, shadow, "degraded-2", 200, 8, AREA_BYTES / 4);
    expect(volumeLine(t)).toMatch(/state=degraded copies=current,failed/);
    await t.board.runUntilTurning(t.board.clock.nowNs + 2_500_000_000); // the log is kept while a copy is down
    await readAll(t, shadow);
    t.board.restoreDisk("sp2-disk0");
    await runUntil(t, () => /state=optimal/.test(volumeLine(t)), 60);
    const copied = t.console.join("\n").match(/copying (\d+) regions of volume 0 from copy 0 to copy 1/);
    expect(copied).not.toBeNull();
    expect(Number(copied![1])).toBeGreaterThan(0);
    expect(Number(copied![1])).toBeLessThanOrEqual(REGIONS / 4 + 1); // only what was written while it was down
    expect(t.console.join("\n")).toMatch(/copy 1 of volume 0 answers again; the regions written meanwhile will be copied to it/);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir)).toBe(-1);
    await readAll(t, shadow);
    await workload(t, shadow, "degraded-3", 100, 8);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir)).toBe(-1);
  });

  // Seeds 113 and 152 of simulate --cluster clusters/pair.json: with copy 1 failed only the probe's read reaches its
  // controller, faults hit that read more than 8 times in a row, and the DDM gave the controller up for good: copy 1
  // never came back. Now the DDM tries a given-up controller again (assembly/ddm/revival.ts), and the copy returns.
  it("gets a copy back whose controller the DDM gave up: the controller is tried again and the logged regions copied", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    const t = boot(dataDir);
    const shadow = new Uint8Array(AREA_BYTES);
    await workload(t, shadow, "given-up-1", 100, 8);
    t.board.pullDisk("sp2-disk0");
    await workload(t, shadow, "given-up-2", 50, 8, AREA_BYTES / 4);
    expect(volumeLine(t)).toMatch(/state=degraded copies=current,failed/);
    // Copy 1 is failed: only the volume's probe reads its disk, once a second. The disk goes back in, but the next
    // nine requests to sp2's controller (the probe's reads) are dropped: nine timeouts in a row, no success between.
    const device = t.board.controllersOf("sp2")[0]!.device;
    if (!("isHung" in device)) throw new Error("sp2's controller is expected to be virtio-scsi");
    for (let i = 0; i < 9; i++) device.inject({ kind: "never-complete-next" });
    t.board.restoreDisk("sp2-disk0");
    const gaveUp = () => t.console.some((l) => /^sp2 2: vscsi0: giving up: too many faults in a row/.test(l));
    await runUntil(t, gaveUp, 60);
    expect(volumeLine(t)).toMatch(/state=degraded copies=current,failed/);
    await runUntil(t, () => /state=optimal/.test(volumeLine(t)), 60);
    expect(t.console.join("\n")).toMatch(/vscsi0: trying the controller again \(revival 1\)/);
    expect(t.console.join("\n")).toMatch(/copy 1 of volume 0 answers again; the regions written meanwhile will be copied to it/);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir)).toBe(-1);
    await readAll(t, shadow);
  });

  it("gives a failed copy's place to the hot spare, copies the whole volume to it, and keeps it there across a restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    let t = boot(dataDir, true);
    const shadow = new Uint8Array(AREA_BYTES);
    await workload(t, shadow, "spare-1", 200, 8);
    t.board.pullDisk("sp2-disk0");
    await workload(t, shadow, "spare-2", 200, 8); // writes go on while the spare is filled
    await runUntil(t, () => /state=optimal/.test(volumeLine(t)), 60);
    const log = t.console.join("\n");
    expect(log).toMatch(/volumes: a spare takes copy 1 of volume 0; the whole volume is copied to it/);
    expect(Number(/copying (\d+) regions of volume 0 from copy 0 to copy 1/.exec(log)![1])).toBe(REGIONS);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir, ["sp1-disk0", "host-disk0"])).toBe(-1);
    await readAll(t, shadow);
    // The pulled disk back, then a restart: the spare keeps copy 1's place (its superblock says so), the old disk
    // (an older generation) is no copy any more, and nothing needs copying.
    t.board.restoreDisk("sp2-disk0");
    await t.board.runUntilTurning(t.board.clock.nowNs + 2_500_000_000); // quiet ticks clear the log
    t.board.powerOff();
    t = boot(dataDir, true);
    await runUntil(t, () => /state=optimal/.test(volumeLine(t)), 60);
    expect(t.console.join("\n")).toMatch(/spare 0 holds member 1 since before the restart/);
    expect(t.console.join("\n")).not.toMatch(/copying \d+ regions/);
    await readAll(t, shadow);
    await workload(t, shadow, "spare-3", 100, 8);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir, ["sp1-disk0", "host-disk0"])).toBe(-1);
  });

  it("copies every region to a blank disk put in a copy's place, serving meanwhile", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    const t = boot(dataDir);
    const shadow = new Uint8Array(AREA_BYTES);
    await workload(t, shadow, "blank-1", 200, 8);
    t.board.pullDisk("sp1-disk0");
    t.board.replaceDisk("sp1-disk0");
    await workload(t, shadow, "blank-2", 200, 8);
    await runUntil(t, () => /state=optimal/.test(volumeLine(t)) && t.console.some((l) => l.includes("resynchronized")), 60);
    expect(t.console.join("\n")).toMatch(new RegExp(`copying ${REGIONS} regions of volume 0 from copy 1 to copy 0`));
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir)).toBe(-1);
    await readAll(t, shadow);
  });

  it("after a power cut under writes, copies the logged regions at restart: the copies are identical, acknowledged writes read back", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    let t = boot(dataDir);
    const shadow = new Uint8Array(AREA_BYTES);
    await workload(t, shadow, "crash-1", 200, 8);
    const prng = new Prng("crash-2");
    const torn: { offset: number; data: Uint8Array }[] = [];
    for (let i = 0; i < 8; i++) {
      const data = new Uint8Array((1 + prng.intBelow(8)) * PAGE_BYTES);
      prng.fill(data);
      const offset = prng.intBelow((AREA_BYTES - data.length) / BLOCK_BYTES) * BLOCK_BYTES;
      if (torn.some((w) => w.offset < offset + data.length && offset < w.offset + w.data.length)) continue;
      submit(t, Fn.Write, offset, data);
      torn.push({ offset, data });
    }
    t.board.runFor(150_000); // some frames out, some not
    t.board.powerOff();
    t = boot(dataDir);
    expect(t.console.join("\n")).toMatch(/rep: stopped with writes in flight; the regions they touched are copied from copy 0 to copy 1/);
    await runUntil(t, () => t.console.some((l) => l.includes("volume 0 resynchronized")), 60);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir)).toBe(-1);
    for (const w of torn) {
      const r = submit(t, Fn.Read, w.offset, w.data.length);
      expect(wait(t, r)).toBe(0);
      const now = bufferOf(t, r, w.data.length);
      t.call("testClientRelease", r);
      for (let b = 0; b < w.data.length; b += BLOCK_BYTES) {
        const got = now.subarray(b, b + BLOCK_BYTES);
        const isNew = Buffer.compare(got, w.data.subarray(b, b + BLOCK_BYTES)) === 0;
        const isOld = Buffer.compare(got, shadow.subarray(w.offset + b, w.offset + b + BLOCK_BYTES)) === 0;
        expect(isNew || isOld, `block ${(w.offset + b) / BLOCK_BYTES}`).toBe(true);
        shadow.set(got, w.offset + b);
      }
    }
    await readAll(t, shadow);
  });

  it("fails I/O visibly with both copies down; serves again from the copy that failed last, never from the stale one", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    let t = boot(dataDir);
    const shadow = new Uint8Array(AREA_BYTES);
    await workload(t, shadow, "both-1", 100, 8);
    t.board.pullDisk("sp2-disk0");
    await workload(t, shadow, "both-2", 100, 8); // acknowledged by copy 0 alone
    t.board.pullDisk("sp1-disk0");
    const data = new Uint8Array(PAGE_BYTES).fill(0x5a);
    const r = submit(t, Fn.Write, 0, data);
    expect(wait(t, r)).not.toBe(0); // never GOOD for a write no copy has
    t.call("testClientRelease", r);
    expect(volumeLine(t)).toMatch(/state=failed copies=failed,failed/);
    const read = submit(t, Fn.Read, 0, PAGE_BYTES);
    expect(wait(t, read)).not.toBe(0);
    t.call("testClientRelease", read);
    // Copy 1 back first: it missed the writes of both-2, so it must not serve.
    t.board.restoreDisk("sp2-disk0");
    await t.board.runUntilTurning(t.board.clock.nowNs + 3_000_000_000);
    expect(volumeLine(t)).toMatch(/state=failed/);
    t.board.restoreDisk("sp1-disk0");
    await runUntil(t, () => /state=optimal/.test(volumeLine(t)), 60);
    expect(t.console.join("\n")).toMatch(/copy 0 of volume 0 answers again; it failed last and holds every answered write: it serves/);
    await t.board.runUntilTurning(t.board.clock.nowNs + 100_000_000);
    expect(copiesDiffer(dataDir)).toBe(-1);
    await readAll(t, shadow);
    t.board.powerOff();
    t = boot(dataDir);
    expect(t.console.find((l) => l.includes("inventory volume") && l.includes("name=rep"))).toMatch(/state=optimal copies=current,current/);
    await readAll(t, shadow);
  });

  // The copy that went down holds what it held; if a restart found both superblocks alike (the one recording the
  // failure not yet written), it would be taken for current and read from. So a write that found copy 0 gone is
  // answered only once copy 1's superblock says so (the CTA's replicaAckWaits). On this board the superblock write
  // happens to land before the write's answer even without that wait (tried): the case pins the behaviour, it does
  // not isolate the wait.
  it("answers a write that found a copy gone only once the superblock says so: a power cut right after loses nothing", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    let t = boot(dataDir);
    const before = submit(t, Fn.Write, 0, new Uint8Array(PAGE_BYTES).fill(1)); // the region's log bit is set: the next write goes straight to both copies
    expect(wait(t, before)).toBe(0);
    t.call("testClientRelease", before);
    t.board.pullDisk("sp1-disk0"); // copy 0: reads of chunk 0 go to it
    const data = new Uint8Array(PAGE_BYTES);
    new Prng("cut").fill(data);
    const r = submit(t, Fn.Write, 0, data);
    for (let i = 0; i < 200_000 && t.call("testClientStatus", r) === PENDING; i++) t.board.runFor(10_000);
    expect(t.call("testClientStatus", r)).toBe(0);
    t.board.powerOff(); // at once: nothing more runs
    t = boot(dataDir);
    const read = submit(t, Fn.Read, 0, PAGE_BYTES);
    expect(wait(t, read)).toBe(0);
    expect(Buffer.compare(bufferOf(t, read, PAGE_BYTES), data), "the answered write reads back").toBe(0);
  });

  // Overlapping writes take their range in the order they arrived. Without that a long write that overlaps a stream
  // of short ones waits while each newer short one is let through first, for as long as the stream lasts (found by
  // simulate --board replica seed 8: a write waited 15 s and landed over newer ones after its connection was gone).
  // Checked to fail with the arrival order taken out.
  it("lets a long write through in its turn while short overlapping writes keep coming", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
    dirs.push(dataDir);
    const t = boot(dataDir);
    const small = () => submit(t, Fn.Write, 64 * BLOCK_BYTES, new Uint8Array(PAGE_BYTES).fill(7));
    const stream = [small(), small(), small(), small()];
    const long = submit(t, Fn.Write, 0, new Uint8Array(32 * PAGE_BYTES).fill(9));
    let smallDone = 0;
    while (t.call("testClientStatus", long) === PENDING && smallDone < 400) {
      t.board.runFor(20_000);
      for (let i = 0; i < stream.length; i++) {
        if (t.call("testClientStatus", stream[i]!) === PENDING) continue;
        expect(t.call("testClientStatus", stream[i]!)).toBe(0);
        t.call("testClientRelease", stream[i]!);
        smallDone += 1;
        stream[i] = small();
      }
    }
    expect(t.call("testClientStatus", long), `the long write, after ${smallDone} short ones`).toBe(0);
    expect(smallDone).toBeLessThan(20);
  });
});
