// The NVMe DDM against the board's NVMe model (host/devices/nvme.ts). What it proves: the driver brings the
// controller up (CSTS.RDY, the admin queue, one I/O queue pair on its own MSI-X vector) and finds each namespace with
// its capacity; data written through SGLs of page buffers (PRP1/PRP2 and PRP lists) and of unaligned pieces (NVMe
// SGLs) reads back byte for byte; flush and unmap (DATASET MANAGEMENT) complete; requests outside a namespace are
// refused without device traffic; a command that never completes is aborted (ABORT) and fails Timeout without a
// reset; and every hostile completion (unknown CID, duplicate, stale phase, lying SQ head, CSTS.CFS, an ABORT that
// does not help) ends in a visible failure and a controller reset, no panic, and every slot and buffer free after.
// How: the test build's DDM probe (test/firmware/ddm_probe.ts) sends BlockIo from a requester task and logs each
// BlockIoDone; buffers and SGLs come from the harness's pool exports; the test fills and checks RAM directly.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { NvmeDevice } from "../../../host/devices/nvme.ts";
import { testBoard, type TestBoard } from "../../support/board.ts";
import {
  BLOCK, BlockStat, contents, done, expectWorking, fill, io, MS, Op, PAGE, ram, release, SGL_NONE, Status, transfer,
  type Transfer,
} from "../../support/ddm_requests.ts";

const Stat = { ...BlockStat, Aborts: 11, AdminCommands: 12, PrpLists: 13, SglCommands: 14, DisksInserted: 15 } as const; // assembly/ddm/nvme/stats.ts, NvmeStat
const NvmeState = { Off: 0, Disabling: 1, Enabling: 2, Configuring: 3, Ready: 4, Failed: 5 } as const;

interface Rig { t: TestBoard; device: NvmeDevice; requestsFree: number }

function rig(disksMiB: number[] = [8, 4]): Rig {
  const t = testBoard({ disksMiB: [disksMiB], controller: "nvme" });
  const device = t.board.nvmeControllers[0]!;
  for (let step = 0; step < 200 && t.call("testNvmeDiscovered", 0) !== 1; step++) t.board.runFor(1 * MS);
  expect(t.call("testNvmeState", 0)).toBe(NvmeState.Ready);
  return { t, device, requestsFree: t.call("testNvmeRequestsFree", 0) as number };
}

function stat(t: TestBoard, which: number): number {
  return Number(t.call("testNvmeStat", 0, which) as bigint);
}

function expectQuiet(r: Rig): void {
  const { t } = r;
  expect(t.call("testNvmeInFlight", 0)).toBe(0);
  expect(t.call("testNvmeQueued", 0)).toBe(0);
  expect(t.call("testNvmeRequestsFree", 0)).toBe(r.requestsFree);
  expect(t.call("testBuffersAllFree")).toBe(1);
  expect(t.stops).toEqual([]);
  expect(t.board.panics).toEqual([]);
}

describe("NVMe DDM: bring-up and discovery", () => {
  it("enables the controller, creates the I/O queue pair on MSI-X entry 1 and reports each namespace in NSID order", () => {
    const r = rig([8, 4]);
    const { t, device } = r;
    expect(device.ready).toBe(true);
    expect(device.queues()).toEqual({ sq: [{ id: 0, size: 16, cqId: 0 }, { id: 1, size: 65, cqId: 1 }], cq: [{ id: 0, size: 16, vector: 0 }, { id: 1, size: 65, vector: 1 }] });
    expect(t.call("testDdmKind", 0)).toBe(1);
    expect(t.call("testDdmDiskCount", 0)).toBe(2);
    expect(t.call("testDdmDiskBlocks", 0, 0)).toBe(BigInt((8 << 20) / BLOCK));
    expect(t.call("testDdmDiskBlocks", 0, 1)).toBe(BigInt((4 << 20) / BLOCK));
    expect(t.call("testDdmDiskBlockBytes", 0, 1)).toBe(BLOCK);
    expect(t.call("testNvmeTransferBytesMax", 0)).toBe(1 << 20);
    expect(t.call("testNvmeSglSupported", 0)).toBe(1);
    expect(stat(t, Stat.Resets)).toBe(0);
    expect(device.guestErrorCount).toBe(0);
    expectQuiet(r);
  });
});

describe("NVMe DDM: the data path", () => {
  it("writes random data through PRPs and PRP lists and reads back the same bytes, on each namespace", () => {
    const r = rig([8, 4]);
    const { t } = r;
    for (const [disk, lba, blocks, segmentBytes] of [[0, 0, 1, 512], [0, 1000, 16, 4096], [1, 8191 - 15, 16, 4096], [1, 7, 256, 4096], [0, 5000, 2048, 4096]] as const) {
      const data = new Uint8Array(randomBytes(blocks * BLOCK));
      const w = transfer(t, data.length, segmentBytes);
      fill(t, w, data);
      expect(io(t, Op.Write, disk, lba, blocks, w.sgl, 10 + disk)).toEqual({ status: Status.Ok, sense: 0, bytes: data.length, lba: BigInt(lba), tag: 10 + disk });
      const rd = transfer(t, data.length, 4096);
      const read = io(t, Op.Read, disk, lba, blocks, rd.sgl, 20 + disk);
      expect(read).toEqual({ status: Status.Ok, sense: 0, bytes: data.length, lba: BigInt(lba), tag: 20 + disk });
      expect(contents(t, rd)).toEqual(data);
      release(t, w);
      release(t, rd);
    }
    expect(stat(t, Stat.PrpLists)).toBeGreaterThan(0);
    expect(stat(t, Stat.SglCommands)).toBe(0);
    expect(stat(t, Stat.Errors)).toBe(0);
    expectQuiet(r);
  });

  it("starts PRP1 inside a page when the first segment does, and builds the list from the pages after it", () => {
    const r = rig();
    const { t } = r;
    // 3.5 KiB from 512 bytes into one page, then three whole pages (31 blocks): PRP-shaped, 4 pages, so PRP2 is a list.
    const pages = [0, 1, 2, 3].map(() => t.call("testPoolAcquire", PAGE) as number);
    const addresses = pages.map((p) => t.call("testPoolAddress", PAGE, p) as number);
    const sgl = t.call("testSglCreate") as number;
    const segments: [number, number][] = [[addresses[0]! + 512, 3584], [addresses[1]!, 4096], [addresses[2]!, 4096], [addresses[3]!, 4096]];
    for (const [a, l] of segments) expect(t.call("testSglAppend", sgl, BigInt(a), l)).toBe(1);
    const x: Transfer = { sgl, buffers: pages, addresses, segments };
    const data = new Uint8Array(randomBytes(31 * BLOCK));
    fill(t, x, data);
    const lists = stat(t, Stat.PrpLists);
    expect(io(t, Op.Write, 0, 4000, 31, sgl, 1).status).toBe(Status.Ok);
    expect(stat(t, Stat.PrpLists)).toBe(lists + 1);
    for (const [a, l] of segments) ram(t).fill(0, a, a + l);
    expect(io(t, Op.Read, 0, 4000, 31, sgl, 2).status).toBe(Status.Ok);
    expect(contents(t, x)).toEqual(data);
    expect(stat(t, Stat.SglCommands)).toBe(0);
    release(t, x);
    expectQuiet(r);
  });

  it("sends segments PRPs cannot describe as an NVMe SGL, and the data still round-trips", () => {
    const r = rig();
    const { t } = r;
    const data = new Uint8Array(randomBytes(24 * BLOCK));
    const w = transfer(t, data.length, 1024, 512); // 1 KiB pieces, each 512 bytes into its own page
    fill(t, w, data);
    expect(io(t, Op.Write, 0, 77, 24, w.sgl, 1).status).toBe(Status.Ok);
    const rd = transfer(t, data.length, 1536, 1024);
    expect(io(t, Op.Read, 0, 77, 24, rd.sgl, 2).status).toBe(Status.Ok);
    expect(contents(t, rd)).toEqual(data);
    expect(stat(t, Stat.SglCommands)).toBe(2);
    release(t, w);
    release(t, rd);
    expectQuiet(r);
  });

  it("completes a write with FUA and a flush, and unmaps a range with DATASET MANAGEMENT", () => {
    const r = rig();
    const { t, device } = r;
    const data = new Uint8Array(randomBytes(4 * BLOCK).fill(0x5a));
    const w = transfer(t, data.length);
    fill(t, w, data);
    expect(io(t, Op.WriteFua, 0, 300, 4, w.sgl, 1).status).toBe(Status.Ok);
    expect(io(t, Op.Flush, 0, 0, 0, SGL_NONE, 2)).toEqual({ status: Status.Ok, sense: 0, bytes: 0, lba: 0n, tag: 2 });
    expect(io(t, Op.Unmap, 0, 300, 4, SGL_NONE, 3)).toEqual({ status: Status.Ok, sense: 0, bytes: 0, lba: 300n, tag: 3 });
    const rd = transfer(t, data.length);
    expect(io(t, Op.Read, 0, 300, 4, rd.sgl, 4).status).toBe(Status.Ok);
    expect(contents(t, rd).every((b) => b === 0)).toBe(true);
    expect(device.stats.commands).toBe(4);
    release(t, w);
    release(t, rd);
    expectQuiet(r);
  });

  it("keeps up to 64 commands in flight, answers Busy past the slots, and completes every accepted one once", () => {
    const r = rig();
    const { t } = r;
    for (let i = 0; i < 100; i++) expect(t.call("testDdmSubmit", 0, Op.Flush, 0, 0n, 0, SGL_NONE, i)).toBe(1);
    t.board.runFor(100 * MS);
    expect(t.call("testDdmDoneCount")).toBe(100);
    let busy = 0;
    for (let i = 0; i < 100; i++) if (done(t, i).status === Status.Busy) busy += 1;
    expect(busy).toBe(100 - r.requestsFree);
    expect(stat(t, Stat.InFlightMax)).toBe(64);
    expectQuiet(r);
  });
});

describe("NVMe DDM: requests refused without touching the controller", () => {
  it("answers IllegalRequest or NoDisk for bad requests, and the controller sees none of them", () => {
    const r = rig([8, 4]);
    const { t, device } = r;
    const blocks = (4 << 20) / BLOCK;
    const x = transfer(t, 2 * BLOCK);
    const before = device.stats.commands;
    expect(io(t, Op.Read, 1, blocks - 1, 2, x.sgl, 1)).toEqual({ status: Status.IllegalRequest, sense: 0x05_21_00, bytes: 0, lba: BigInt(blocks - 1), tag: 1 });
    expect(io(t, Op.Unmap, 1, blocks - 4, 5, SGL_NONE, 2).sense).toBe(0x05_21_00);
    expect(io(t, Op.Read, 0, 0, 3, x.sgl, 3)).toMatchObject({ status: Status.IllegalRequest, sense: 0x05_24_00 });
    expect(io(t, Op.Read, 0, 0, 2, SGL_NONE, 4).status).toBe(Status.IllegalRequest);
    expect(io(t, 9, 0, 0, 2, x.sgl, 5).status).toBe(Status.IllegalRequest);
    expect(io(t, Op.Read, 2, 0, 2, x.sgl, 6)).toMatchObject({ status: Status.NoDisk, sense: 0 });
    expect(device.stats.commands).toBe(before);
    release(t, x);
    expectQuiet(r);
  });
});

describe("NVMe DDM: what the controller answers", () => {
  it("maps error statuses: Data Transfer Error to DeviceError and a media error to MediumError, without a reset", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    device.inject({ kind: "dma-fault-next" });
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 1)).toMatchObject({ status: Status.DeviceError, bytes: 0 });
    device.inject({ kind: "media-error-next" });
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 2)).toMatchObject({ status: Status.MediumError, sense: 0x03_11_00, bytes: 0 });
    expect(stat(t, Stat.Resets)).toBe(0);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });

  it("answers NoDisk for a pulled namespace and Changed once for the one put in its place", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    t.board.pullDisk("host-disk1");
    t.board.runFor(5 * MS);
    expect(io(t, Op.Read, 1, 0, 2, x.sgl, 1).status).toBeOneOf([Status.NoDisk, Status.Changed]);
    expect(io(t, Op.Read, 1, 0, 2, x.sgl, 2).status).toBe(Status.NoDisk);
    t.board.replaceDisk("host-disk1");
    t.board.runFor(5 * MS);
    expect(io(t, Op.Read, 1, 0, 2, x.sgl, 3).status).toBe(Status.Changed);
    expect(io(t, Op.Read, 1, 0, 2, x.sgl, 4).status).toBe(Status.Ok);
    expect(device.isPulled(1)).toBe(false);
    release(t, x);
    expectQuiet(r);
  });
});

describe("NVMe DDM: a disk missing at power-on", () => {
  // A controller with one namespace per bay (NN within the DDM's table) has its disks numbered by NSID: a namespace
  // pulled before the board resets is an empty slot, and the disks after it keep their indexes (a RAID member is named
  // by its index; numbered in list order, disk 1 would be NSID 3, another volume's disk).
  it("keeps the slot of a pulled namespace empty across a reset, and the next disk's index", () => {
    const r = rig([8, 4, 2]);
    const { t } = r;
    expect(t.call("testDdmDiskCount", 0)).toBe(3);
    t.board.pullDisk("host-disk1"); // as `wasm-iop fault disk host:1 fail`: it stays out across the reset
    expect(t.board.reset()).toBe(true);
    const host = t.board.processors[0]!; // the processors and devices of the new power-on
    const call = (name: string, ...args: (number | bigint)[]) => {
      const value = host.invoke(name, ...args);
      return typeof value === "number" ? value >>> 0 : value;
    };
    for (let step = 0; step < 200 && call("testNvmeDiscovered", 0) !== 1; step++) t.board.runFor(1 * MS);
    expect(call("testNvmeDiscovered", 0)).toBe(1);
    expect(call("testDdmDiskCount", 0)).toBe(3);
    expect(call("testDdmDiskBlocks", 0, 0)).toBe(BigInt((8 << 20) / BLOCK));
    expect(call("testDdmDiskBlocks", 0, 1)).toBe(0n); // empty
    expect(call("testDdmDiskBlocks", 0, 2)).toBe(BigInt((2 << 20) / BLOCK));
    expect(t.console.join("\n")).toMatch(/disk 1 NSID 2: empty/);
    // Hot insert: a blank disk put into the empty slot raises a Namespace Attribute Changed event; the DDM reads the
    // Changed Namespace List and identifies the namespace it did not have at discovery: disk 1 is a disk again.
    expect(call("testNvmeStat", 0, Stat.DisksInserted)).toBe(0n);
    t.board.replaceDisk("host-disk1");
    for (let step = 0; step < 200 && call("testDdmDiskBlocks", 0, 1) === 0n; step++) t.board.runFor(1 * MS);
    expect(call("testDdmDiskBlocks", 0, 1)).toBe(BigInt((4 << 20) / BLOCK));
    expect(call("testNvmeStat", 0, Stat.DisksInserted)).toBe(1n);
    expect(t.console.join("\n")).toMatch(/nvme0: disk 1 NSID 2: inserted, 8192 blocks of 512/);
    expect(call("testDdmDiskCount", 0)).toBe(3);
  });
});

describe("NVMe DDM: timeouts", () => {
  it("aborts a command that never completes: it fails Timeout, the controller is not reset", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    device.inject({ kind: "never-complete-next" });
    const d = io(t, Op.Read, 0, 0, 2, x.sgl, 1, 4_000 * MS);
    expect(d.status).toBe(Status.Timeout);
    expect(stat(t, Stat.Aborts)).toBe(1);
    expect(stat(t, Stat.Resets)).toBe(0);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });

  it("resets the controller when the ABORT does not end the command (a hung controller)", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    device.hang();
    const d = io(t, Op.Read, 0, 0, 2, x.sgl, 1, 6_000 * MS);
    expect(d.status).toBe(Status.Timeout);
    expect(stat(t, Stat.Resets)).toBe(1);
    expect(device.isHung).toBe(false); // CC.EN 0 ended the hang
    t.board.runFor(10 * MS);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });
});

describe("NVMe DDM: a hostile controller", () => {
  const faults = [
    { kind: "unknown-cid" }, { kind: "duplicate-cqe" }, { kind: "bad-sq-head" }, { kind: "fatal-next" }, { kind: "csts-lie" }, { kind: "stale-phase" },
  ] as const;
  for (const fault of faults) {
    it(`${fault.kind}: the request fails visibly, the controller is reset and works again`, () => {
      const r = rig();
      const { t, device } = r;
      const x = transfer(t, 2 * BLOCK);
      // Two requests in flight, so a duplicate has a neighbour to be mistaken for; csts-lie is seen at the next tick.
      device.inject(fault);
      const before = t.call("testDdmDoneCount") as number;
      expect(t.call("testDdmSubmit", 0, Op.Read, 0, 0n, 2, x.sgl, 1)).toBe(1);
      expect(t.call("testDdmSubmit", 0, Op.Flush, 0, 0n, 0, SGL_NONE, 2)).toBe(1);
      for (let ns = 0; ns < 6_000 * MS && (t.call("testDdmDoneCount") as number) < before + 2; ns += MS) t.board.runFor(MS);
      expect(t.call("testDdmDoneCount")).toBe(before + 2);
      const statuses = [done(t, before).status, done(t, before + 1).status];
      if (fault.kind === "csts-lie") {
        // The lie is read by the tick only while something is in flight; the requests may finish before it.
        expect(statuses.every((s) => s === Status.Ok || s === Status.DeviceError)).toBe(true);
      } else {
        expect(statuses.some((s) => s !== Status.Ok)).toBe(true);
        expect(stat(t, Stat.Resets)).toBe(1);
      }
      t.board.runFor(10 * MS);
      release(t, x);
      expectWorking(r.t);
      expectQuiet(r);
    });
  }

  it("gives up after faults in a row: CC.EN 0, bus mastering off, every request then fails DeviceError", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    for (let i = 0; i < 12 && t.call("testNvmeState", 0) !== NvmeState.Failed; i++) {
      device.inject({ kind: "unknown-cid" });
      io(t, Op.Read, 0, 0, 2, x.sgl, 100 + i);
    }
    expect(t.call("testNvmeState", 0)).toBe(NvmeState.Failed);
    expect(stat(t, Stat.Resets)).toBe(9);
    expect(device.ready).toBe(false);
    expect(Number(t.host.bus.read(BigInt(0xe000_0000 + (8 << 15) + 4), 2)) & 4).toBe(0); // bus master off
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 200).status).toBe(Status.DeviceError);
    release(t, x);
    expectQuiet(r);
  });

  // assembly/ddm/revival.ts: 1 s after the give-up the controller is reset and brought up again, on probation (one
  // fault before a success gives it up again, the wait doubled). Before it, Failed lasted until the board restarted.
  it("tries a given-up controller again 1 s later, on probation, and it serves again", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    const giveUp = (firstTag: number): void => {
      for (let i = 0; i < 12 && t.call("testNvmeState", 0) !== NvmeState.Failed; i++) {
        device.inject({ kind: "unknown-cid" });
        io(t, Op.Read, 0, 0, 2, x.sgl, firstTag + i);
      }
      expect(t.call("testNvmeState", 0)).toBe(NvmeState.Failed);
    };
    giveUp(100);
    expect(t.console.some((l) => /nvme0: trying it again in 1000 ms/.test(l))).toBe(true);
    const gaveUpNs = t.board.clock.nowNs;
    t.board.runFor(gaveUpNs + 990 * MS - t.board.clock.nowNs);
    expect(t.call("testNvmeState", 0)).toBe(NvmeState.Failed);
    for (let step = 0; step < 20 && t.call("testNvmeState", 0) !== NvmeState.Ready; step++) t.board.runFor(10 * MS);
    expect(t.call("testNvmeState", 0)).toBe(NvmeState.Ready);
    expect(Number(t.host.bus.read(BigInt(0xe000_0000 + (8 << 15) + 4), 2)) & 4).toBe(4); // bus master on again
    // Probation: one fault, no success since the revival: given up again, and now for 2 s.
    const resets = stat(t, Stat.Resets);
    giveUp(200);
    expect(stat(t, Stat.Resets)).toBe(resets + 1);
    expect(t.console.some((l) => /nvme0: trying it again in 2000 ms/.test(l))).toBe(true);
    t.board.runFor(2_100 * MS);
    expect(t.call("testNvmeState", 0)).toBe(NvmeState.Ready);
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 300).status).toBe(Status.Ok);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });

  it("survives an interrupt storm without a reset or a wrong completion", () => {
    const r = rig();
    const { t, device } = r;
    device.inject({ kind: "interrupt-storm", count: 50 });
    const x = transfer(t, 2 * BLOCK);
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 1).status).toBe(Status.Ok);
    expect(device.stats.interrupts).toBeGreaterThanOrEqual(51);
    expect(stat(t, Stat.Resets)).toBe(0);
    expectWorking(r.t);
    release(t, x);
    expectQuiet(r);
  });
});
