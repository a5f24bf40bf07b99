// The virtio-scsi DDM against the board's virtio-scsi model. What it proves: the driver brings the controller up
// (DRIVER_OK, the request queue on MSI-X) and finds each disk with its capacity; data written through an SGL reads
// back byte for byte; flush and unmap complete; a request outside the disk is refused without device traffic; and
// every fault the model injects ends in a correct completion or a visible failure, with a controller reset where
// the queue can no longer be trusted, no panic, and every buffer, SGL block, request slot and descriptor free after.
// How: the test build's DDM probe (test/firmware/ddm_probe.ts) sends BlockIo from a requester task and logs each
// BlockIoDone; buffers and SGLs come from the harness's pool exports; the test fills and checks RAM directly.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ScsiDisk } from "../../../host/devices/scsi_disk.ts";
import type { VirtioScsiDevice } from "../../../host/devices/virtio_scsi.ts";
import { testBoard, type TestBoard } from "../../support/board.ts";
import {
  BLOCK, BlockStat, contents, done, expectWorking, fill, io, MS, Op, ram, release, SGL_NONE, Status, transfer,
  type Transfer,
} from "../../support/ddm_requests.ts";

const Stat = { ...BlockStat, Retries: 11 } as const; // assembly/ddm/virtio_scsi/stats.ts, VscsiStat
const ControllerState = { Off: 0, Resetting: 1, Discovering: 2, Ready: 3, Failed: 4 } as const;

interface Rig {
  t: TestBoard;
  device: VirtioScsiDevice;
  requestsFree: number;
}

function rig(disksMiB: number[] = [8, 4]): Rig {
  const t = testBoard({ disksMiB: [disksMiB] });
  const device = t.board.controllers[0]!;
  for (let step = 0; step < 200 && t.call("testDdmDiscovered", 0) !== 1; step++) t.board.runFor(1 * MS);
  expect(t.call("testDdmState", 0)).toBe(ControllerState.Ready);
  return { t, device, requestsFree: t.call("testDdmRequestsFree", 0) as number };
}

function stat(t: TestBoard, which: number): number {
  return Number(t.call("testDdmStat", 0, which) as bigint);
}

// Nothing held: request slots, descriptors, buffers and SGL blocks are all back, and nothing stopped.
function expectQuiet(r: Rig): void {
  const { t } = r;
  expect(t.call("testDdmInFlight", 0)).toBe(0);
  expect(t.call("testDdmQueued", 0)).toBe(0);
  expect(t.call("testDdmRequestsFree", 0)).toBe(r.requestsFree);
  expect(t.call("testDdmDescriptorsFree", 0)).toBe(t.call("testDdmQueueSize", 0));
  expect(t.call("testBuffersAllFree")).toBe(1);
  expect(t.stops).toEqual([]);
  expect(t.board.panics).toEqual([]);
}

describe("virtio-scsi DDM: bring-up and discovery", () => {
  it("reaches DRIVER_OK with the request queue enabled and reports each disk's capacity in LUN order", () => {
    const r = rig([8, 4]);
    const { t, device } = r;
    const base = device.barAddress(0);
    expect(t.host.bus.read(base + 0x14n, 1)).toBe(0x0f); // ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
    t.host.bus.write(base + 0x16n, 2, 2); // queue_select: the request queue
    expect(t.host.bus.read(base + 0x1cn, 2)).toBe(1); // queue_enable
    expect(t.host.bus.read(base + 0x1an, 2)).toBe(1); // queue_msix_vector: table entry 1
    expect(t.host.bus.read(base + 0x10n, 2)).toBe(0); // config_msix_vector: table entry 0
    expect(t.call("testDdmControllerCount")).toBe(1);
    expect(t.call("testDdmDiskCount", 0)).toBe(2);
    expect(t.call("testDdmDiskBlocks", 0, 0)).toBe(BigInt((8 << 20) / BLOCK));
    expect(t.call("testDdmDiskBlocks", 0, 1)).toBe(BigInt((4 << 20) / BLOCK));
    expect(t.call("testDdmDiskBlockBytes", 0, 0)).toBe(BLOCK);
    expect(t.call("testDdmDiskIndex", 0, 1)).toBe(1); // controller 0, disk 1
    expect(t.call("testDdmQueueSize", 0)).toBe(128);
    expect(stat(t, Stat.Resets)).toBe(0);
    expect(device.broken).toBe(false);
    expect(device.guestErrorCount).toBe(0);
    expectQuiet(r);
  });
});

describe("virtio-scsi DDM: a disk missing at power-on", () => {
  // A device with one LUN per bay (max_lun below the DDM's table) has its disks numbered by LUN: a LUN pulled before
  // the board resets is an empty slot, and the disks after it keep their indexes (a RAID member is named by its
  // index; renumbered, a RAID-5 took another volume's disk as its member: simulate --board volumes, seed 3).
  it("keeps the slot of a pulled LUN empty across a reset, and the next disk's index", () => {
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
    for (let step = 0; step < 200 && call("testDdmDiscovered", 0) !== 1; step++) t.board.runFor(1 * MS);
    expect(call("testDdmDiskCount", 0)).toBe(3);
    expect(call("testDdmDiskBlocks", 0, 0)).toBe(BigInt((8 << 20) / BLOCK));
    expect(call("testDdmDiskBlocks", 0, 1)).toBe(0n); // empty
    expect(call("testDdmDiskBlocks", 0, 2)).toBe(BigInt((2 << 20) / BLOCK));
    expect(t.console.join("\n")).toMatch(/disk 1 LUN 1: empty/);
  });
});

describe("virtio-scsi DDM: the tick", () => {
  // The tick (deadlines, device_status, the reset wait, retries) runs only while it has something to watch. Idle, the
  // controller leaves no timer due: run() answers the health task's deadline (every 1 s from boot), not the tick's.
  it("arms no wake-up on an idle controller, and ticks every 100 ms while a request is in flight", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 1).status).toBe(Status.Ok);
    t.board.runFor(1_200 * MS - (t.board.clock.nowNs % 1_000_000_000)); // 200 ms past a health tick
    let now = BigInt(t.board.clock.nowNs);
    expect(t.call("run", 1_000_000n) as bigint).toBeGreaterThan(now + 500_000_000n);
    // A request that never completes: the tick watches it, at most 100 ms ahead.
    device.inject({ kind: "never-complete-next" });
    expect(t.call("testDdmSubmit", 0, Op.Read, 0, 0n, 2, x.sgl, 2)).toBe(1);
    t.board.runFor(1 * MS);
    expect(t.call("testDdmInFlight", 0)).toBe(1);
    now = BigInt(t.board.clock.nowNs);
    expect(t.call("run", 1_000_000n) as bigint).toBeLessThanOrEqual(now + 100_000_000n);
    t.board.runFor(2_200 * MS); // timed out, reset, brought up again: idle once more
    expect(t.call("testDdmDoneCount")).toBe(2);
    expect(stat(t, Stat.Resets)).toBe(1);
    t.board.runFor(1_200 * MS - (t.board.clock.nowNs % 1_000_000_000));
    now = BigInt(t.board.clock.nowNs);
    expect(t.call("run", 1_000_000n) as bigint).toBeGreaterThan(now + 500_000_000n);
    release(t, x);
    expectQuiet(r);
  });
});

describe("virtio-scsi DDM: the data path", () => {
  it("writes random data through a multi-segment SGL and reads back the same bytes, on each disk", () => {
    const r = rig([8, 4]);
    const { t } = r;
    for (const [disk, lba, blocks, segmentBytes] of [[0, 0, 1, 512], [0, 1000, 24, 1000], [1, 8191 - 15, 16, 4096], [1, 7, 64, 3000]] as const) {
      const data = new Uint8Array(randomBytes(blocks * BLOCK));
      const w = transfer(t, data.length, segmentBytes);
      fill(t, w, data);
      const written = io(t, Op.Write, disk, lba, blocks, w.sgl, 10 + disk);
      expect(written).toEqual({ status: Status.Ok, sense: 0, bytes: data.length, lba: BigInt(lba), tag: 10 + disk });
      const rd = transfer(t, data.length, 4096);
      ram(t).fill(0xee, rd.addresses[0]!, rd.addresses[0]! + 4096);
      const read = io(t, Op.Read, disk, lba, blocks, rd.sgl, 20 + disk);
      expect(read).toEqual({ status: Status.Ok, sense: 0, bytes: data.length, lba: BigInt(lba), tag: 20 + disk });
      expect(contents(t, rd)).toEqual(data);
      release(t, w);
      release(t, rd);
    }
    expect(stat(t, Stat.Errors)).toBe(0);
    expectQuiet(r);
  });

  it("completes a write with FUA, and a flush, with no data bytes reported for the flush", () => {
    const r = rig();
    const { t } = r;
    const data = new Uint8Array(randomBytes(4 * BLOCK));
    const w = transfer(t, data.length);
    fill(t, w, data);
    expect(io(t, Op.WriteFua, 0, 300, 4, w.sgl, 1).status).toBe(Status.Ok);
    const flushed = io(t, Op.Flush, 0, 0, 0, SGL_NONE, 2);
    expect(flushed).toEqual({ status: Status.Ok, sense: 0, bytes: 0, lba: 0n, tag: 2 });
    const rd = transfer(t, data.length);
    expect(io(t, Op.Read, 0, 300, 4, rd.sgl, 3).status).toBe(Status.Ok);
    expect(contents(t, rd)).toEqual(data);
    release(t, w);
    release(t, rd);
    expectQuiet(r);
  });

  it("unmaps a range", () => {
    const r = rig();
    const { t } = r;
    const unmapped = io(t, Op.Unmap, 1, 64, 128, SGL_NONE, 5);
    expect(unmapped).toEqual({ status: Status.Ok, sense: 0, bytes: 0, lba: 64n, tag: 5 });
    expectQuiet(r);
  });

  it("keeps many requests queued for descriptors and completes every one in order of its data", () => {
    const r = rig();
    const { t } = r;
    const count = 100; // 3 descriptors each: at most 42 fit a 128-entry ring, the rest wait
    const reads: Transfer[] = [];
    const w = transfer(t, count * BLOCK);
    const data = new Uint8Array(randomBytes(count * BLOCK));
    fill(t, w, data);
    expect(io(t, Op.Write, 0, 5000, count, w.sgl, 0).status).toBe(Status.Ok);
    const before = t.call("testDdmDoneCount") as number;
    for (let i = 0; i < count; i++) {
      const x = transfer(t, BLOCK);
      reads.push(x);
      expect(t.call("testDdmSubmit", 0, Op.Read, 0, BigInt(5000 + i), 1, x.sgl, 100 + i)).toBe(1);
    }
    for (let ns = 0; ns < 100 * MS && (t.call("testDdmDoneCount") as number) < before + count; ns += MS) t.board.runFor(MS);
    expect(t.call("testDdmDoneCount")).toBe(before + count);
    for (let i = 0; i < count; i++) {
      const d = done(t, before + i);
      expect(d.status).toBe(Status.Ok);
      const index = d.tag - 100;
      expect(contents(t, reads[index]!)).toEqual(data.subarray(index * BLOCK, (index + 1) * BLOCK));
    }
    expect(stat(t, Stat.InFlightMax)).toBeLessThanOrEqual(42);
    expect(stat(t, Stat.InFlightMax)).toBeGreaterThan(1);
    for (const x of reads) release(t, x);
    release(t, w);
    expectQuiet(r);
  });
});

describe("virtio-scsi DDM: what the disk answers", () => {
  // The model keeps its disks private; a unit attention is queued on one directly (SAM-5: it reports a past event).
  function diskOf(device: VirtioScsiDevice, index: number): ScsiDisk {
    return (device as unknown as { disks: ScsiDisk[] }).disks[index]!;
  }

  it("re-issues a command the disk answered with a UNIT ATTENTION, up to twice, then passes the sense on", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    diskOf(device, 0).unitAttention(0x29, 0x03); // BUS DEVICE RESET FUNCTION OCCURRED: a past event, the command is fine
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 1)).toMatchObject({ status: Status.Ok, bytes: 2 * BLOCK });
    expect(stat(t, Stat.Retries)).toBe(1);
    for (const ascq of [3, 4, 7]) diskOf(device, 0).unitAttention(0x29, ascq);
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 2)).toMatchObject({ status: Status.Busy, sense: 0x06_29_07, bytes: 0 });
    expect(stat(t, Stat.Retries)).toBe(3);
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 3).status).toBe(Status.Ok);
    expect(stat(t, Stat.Resets)).toBe(0);
    release(t, x);
    expectQuiet(r);
  });

  it("says Changed, without re-issuing, when the disk powered on since its last command (29h/00h or 29h/01h)", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    for (const [ascq, tag] of [[0x00, 1], [0x01, 2]] as const) {
      diskOf(device, 0).unitAttention(0x29, ascq);
      expect(io(t, Op.Read, 0, 0, 2, x.sgl, tag)).toMatchObject({ status: Status.Changed, sense: 0x06_29_00 | ascq, bytes: 0 });
    }
    expect(stat(t, Stat.Retries)).toBe(0);
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 3)).toMatchObject({ status: Status.Ok, bytes: 2 * BLOCK }); // said once
    release(t, x);
    expectQuiet(r);
  });

  it("maps a CHECK CONDITION with ILLEGAL REQUEST from the disk to IllegalRequest with its sense", () => {
    const r = rig([64]);
    const { t } = r;
    const submitted = stat(t, Stat.Submitted);
    const refused = io(t, Op.Unmap, 0, 0, 70_000, SGL_NONE, 1); // inside the disk, beyond its UNMAP limit of 32 MiB
    expect(refused.status).toBe(Status.IllegalRequest);
    expect(refused.sense >> 16).toBe(0x5);
    expect(stat(t, Stat.Submitted)).toBe(submitted + 1); // the disk answered it
    expect(stat(t, Stat.Resets)).toBe(0);
    expectQuiet(r);
  });
});

describe("virtio-scsi DDM: backpressure", () => {
  it("answers Busy at once when every request slot is taken, and completes every accepted request once", () => {
    const r = rig();
    const { t } = r;
    const slots = r.requestsFree;
    for (let i = 0; i < 100; i++) expect(t.call("testDdmSubmit", 0, Op.Flush, 0, 0n, 0, SGL_NONE, i)).toBe(1);
    t.board.runFor(50_000); // taken into slots; the first flush completes after 200 us
    for (let i = 100; i < 200; i++) expect(t.call("testDdmSubmit", 0, Op.Flush, 0, 0n, 0, SGL_NONE, i)).toBe(1);
    t.board.runFor(50_000);
    const busy = 200 - slots;
    expect(stat(t, Stat.BusyRejects)).toBe(busy);
    t.board.runFor(200 * MS);
    expect(t.call("testDdmDoneCount")).toBe(200);
    const tags = new Set<number>();
    let busySeen = 0;
    for (let i = 0; i < 200; i++) {
      const d = done(t, i);
      tags.add(d.tag);
      if (d.status === Status.Busy) busySeen += 1;
      else expect(d.status).toBe(Status.Ok);
    }
    expect(tags.size).toBe(200);
    expect(busySeen).toBe(busy);
    expectQuiet(r);
  });

  it("keeps completions a full requester inbox refuses, and delivers them in order once it drains", () => {
    const r = rig();
    const { t } = r;
    t.call("testDdmRequesterPause", 1);
    for (let wave = 0; wave < 3; wave++) {
      for (let i = 0; i < 100; i++) expect(t.call("testDdmSubmit", 0, Op.Flush, 0, 0n, 0, SGL_NONE, wave * 100 + i)).toBe(1);
      t.board.runFor(100 * MS);
    }
    expect(t.call("testInboxCount", t.call("testDdmRequesterTask"))).toBe(256);
    expect(t.call("testDdmDoneCount")).toBe(0);
    t.call("testDdmRequesterPause", 0);
    t.board.runFor(300 * MS);
    expect(t.call("testDdmDoneCount")).toBe(300);
    for (let i = 0; i < 300; i++) expect(done(t, i)).toMatchObject({ status: Status.Ok, tag: i });
    expectQuiet(r);
  });
});

describe("virtio-scsi DDM: requests refused without touching the device", () => {
  it("answers IllegalRequest or NoDisk for bad requests, and the device sees none of them", () => {
    const r = rig([8, 4]);
    const { t, device } = r;
    const blocks = (4 << 20) / BLOCK;
    const x = transfer(t, 2 * BLOCK);
    const deviceRequests = device.stats.requests;
    const submitted = stat(t, Stat.Submitted);
    const outOfRange = io(t, Op.Read, 1, blocks - 1, 2, x.sgl, 1);
    expect(outOfRange).toEqual({ status: Status.IllegalRequest, sense: 0x05_21_00, bytes: 0, lba: BigInt(blocks - 1), tag: 1 });
    expect(io(t, Op.Write, 1, blocks, 2, x.sgl, 2).status).toBe(Status.IllegalRequest); // starts past the end
    expect(io(t, Op.Read, 1, 2 ** 63, 2, x.sgl, 3).status).toBe(Status.IllegalRequest); // lba + count overflows
    expect(io(t, Op.Unmap, 1, blocks - 4, 5, SGL_NONE, 4).sense).toBe(0x05_21_00);
    expect(io(t, Op.Read, 0, 0, 3, x.sgl, 5)).toMatchObject({ status: Status.IllegalRequest, sense: 0x05_24_00 }); // SGL holds 2 blocks
    expect(io(t, Op.Read, 0, 0, 0, x.sgl, 6).status).toBe(Status.IllegalRequest); // no blocks
    expect(io(t, Op.Read, 0, 0, 2, SGL_NONE, 7).status).toBe(Status.IllegalRequest); // no SGL
    expect(io(t, 9, 0, 0, 2, x.sgl, 8).status).toBe(Status.IllegalRequest); // no such op
    expect(io(t, Op.Read, 2, 0, 2, x.sgl, 9)).toMatchObject({ status: Status.NoDisk, sense: 0 });
    expect(device.stats.requests).toBe(deviceRequests);
    expect(stat(t, Stat.Submitted)).toBe(submitted);
    release(t, x);
    expectQuiet(r);
  });

  it("refuses a transfer longer than its limit", () => {
    const r = rig([8]);
    const { t } = r;
    const maxBytes = t.call("testDdmTransferBytesMax", 0) as number;
    const sgl = t.call("testSglCreate") as number;
    const large = t.call("testPoolAcquire", 2) as number; // a 64 KiB buffer, listed over and over
    const address = t.call("testPoolAddress", 2, large) as number;
    for (let bytes = 0; bytes <= maxBytes; bytes += 65536) t.call("testSglAppend", sgl, BigInt(address), 65536);
    const blocks = (maxBytes + 65536) / BLOCK;
    expect(io(t, Op.Read, 0, 0, blocks, sgl, 1).status).toBe(Status.IllegalRequest);
    t.call("testSglRelease", sgl);
    t.call("testPoolRelease", 2, large);
    expectQuiet(r);
  });
});

describe("virtio-scsi DDM: device faults", () => {
  it("used index jump: the request fails DeviceError, the controller is reset and works again", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    device.inject({ kind: "used-index-jump", by: 1000 });
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 1).status).toBe(Status.DeviceError);
    expect(stat(t, Stat.Resets)).toBe(1);
    expect(stat(t, Stat.DeviceErrors)).toBe(1);
    expect(t.call("testDdmState", 0)).toBe(ControllerState.Ready);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });

  it("unknown id: counted and ignored; the request it hid times out and the controller is reset", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    device.inject({ kind: "unknown-id" });
    const result = io(t, Op.Read, 0, 0, 2, x.sgl, 1, 3_000 * MS);
    expect(result.status).toBe(Status.Timeout);
    expect(stat(t, Stat.UnknownCompletions)).toBe(1);
    expect(stat(t, Stat.Timeouts)).toBe(1);
    expect(stat(t, Stat.Resets)).toBe(1);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });

  it("DMA fault: the request fails DeviceError (transport failure) and the next one succeeds, no reset needed", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    device.inject({ kind: "dma-fault-next" });
    expect(io(t, Op.Write, 0, 10, 2, x.sgl, 1)).toMatchObject({ status: Status.DeviceError, bytes: 0 });
    expect(stat(t, Stat.Resets)).toBe(0);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });

  it("interrupt storm: the request completes once, extra interrupts change nothing", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    device.inject({ kind: "interrupt-storm", count: 50 });
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 1).status).toBe(Status.Ok);
    t.board.runFor(10 * MS);
    expect(t.call("testDdmDoneCount")).toBe(1);
    expect(stat(t, Stat.Resets)).toBe(0);
    release(t, x);
    expectQuiet(r);
  });

  it("an interrupt with nothing new in the used ring counts as spurious", () => {
    const r = rig();
    const { t } = r;
    const spurious = stat(t, Stat.SpuriousInterrupts);
    const vector = t.call("testDdmVectorBase", 0) as number;
    for (let i = 0; i < 5; i++) {
      t.host.raiseIrq(vector + 1);
      t.board.runFor(MS);
    }
    expect(stat(t, Stat.SpuriousInterrupts)).toBe(spurious + 5);
    expect(stat(t, Stat.Resets)).toBe(0);
    expectQuiet(r);
  });

  it("never completed: the request times out after its deadline, the controller is reset, the others abort", () => {
    const r = rig();
    const { t, device } = r;
    const lost = transfer(t, 2 * BLOCK);
    device.inject({ kind: "never-complete-next" });
    const start = t.board.clock.nowNs;
    const result = io(t, Op.Read, 0, 0, 2, lost.sgl, 1, 3_000 * MS);
    expect(result.status).toBe(Status.Timeout);
    expect(t.board.clock.nowNs - start).toBeGreaterThanOrEqual(2_000 * MS);
    // The tick watches a request in flight: the timeout comes at the first tick past the deadline (every 100 ms).
    expect(t.board.clock.nowNs - start).toBeLessThan(2_100 * MS + 100_000);
    expect(stat(t, Stat.Resets)).toBe(1);
    expect(t.call("testDdmDoneCount")).toBe(1); // exactly once
    release(t, lost);
    expectWorking(r.t);
    t.board.runFor(3_000 * MS);
    expect(t.call("testDdmDoneCount")).toBe(3);
    expectQuiet(r);
  });

  it("duplicate used element: the request completes once, the copy is counted as unknown", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    device.inject({ kind: "duplicate-used" });
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 1).status).toBe(Status.Ok);
    t.board.runFor(10 * MS);
    expect(t.call("testDdmDoneCount")).toBe(1);
    expect(stat(t, Stat.UnknownCompletions)).toBe(1);
    expect(stat(t, Stat.Resets)).toBe(0);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });

  it("gives up after faults in a row: DMA off, device FAILED, every request then fails DeviceError", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    for (let fault = 1; fault <= 9; fault++) {
      device.inject({ kind: "never-complete-next" });
      expect(io(t, Op.Read, 0, 0, 2, x.sgl, fault, 3_000 * MS).status).toBe(Status.Timeout);
      expect(stat(t, Stat.Resets)).toBe(fault);
    }
    expect(t.call("testDdmState", 0)).toBe(ControllerState.Failed);
    expect(t.host.bus.read(device.barAddress(0) + 0x14n, 1)).toBe(0x8f); // FAILED added to what was set
    expect(device.guestErrorCount).toBe(0);
    expect(device.command() & 0x4).toBe(0); // bus mastering off
    const requests = device.stats.requests;
    expect(io(t, Op.Read, 0, 0, 2, x.sgl, 10).status).toBe(Status.DeviceError);
    expect(device.stats.requests).toBe(requests);
    release(t, x);
    expect(t.call("testBuffersAllFree")).toBe(1);
    expect(t.call("testDdmInFlight", 0)).toBe(0);
    expect(t.call("testDdmRequestsFree", 0)).toBe(r.requestsFree);
    expect(t.stops).toEqual([]);
  });

  it("a reset with requests in flight fails each exactly once, then the queue serves again", () => {
    const r = rig();
    const { t, device } = r;
    const xs = [0, 1, 2, 3].map(() => transfer(t, 8 * BLOCK));
    device.inject({ kind: "never-complete-next" }); // the first is lost; the others complete, then it times out
    xs.forEach((x, i) => expect(t.call("testDdmSubmit", 0, Op.Read, 0, BigInt(i * 8), 8, x.sgl, i)).toBe(1));
    t.board.runFor(3_000 * MS);
    expect(t.call("testDdmDoneCount")).toBe(4);
    const statuses = [0, 1, 2, 3].map((i) => done(t, i)).sort((a, b) => a.tag - b.tag).map((d) => d.status);
    expect(statuses).toEqual([Status.Timeout, Status.Ok, Status.Ok, Status.Ok]);
    for (const x of xs) release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });
});

// A given-up controller is tried again later (assembly/ddm/revival.ts): 1 s after the give-up, on probation (one more
// fault before a success gives it up again), each give-up without a success between doubling the wait (up to 16 s).
// Before this, a controller given up stayed Failed until the board restarted: a replica copy reached only by the
// volume's once-a-second probe never came back (simulate --cluster clusters/pair.json seeds 113 and 152).
describe("virtio-scsi DDM: a given-up controller is tried again", () => {
  function giveUp(r: Rig, x: Transfer, firstTag: number): void {
    const { t, device } = r;
    for (let fault = 1; fault <= 9; fault++) {
      device.inject({ kind: "never-complete-next" });
      expect(io(t, Op.Read, 0, 0, 2, x.sgl, firstTag + fault, 3_000 * MS).status).toBe(Status.Timeout);
    }
    expect(t.call("testDdmState", 0)).toBe(ControllerState.Failed);
  }

  it("comes back 1 s after giving up, serves again, and a success starts the waits over", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    const data = new Uint8Array(randomBytes(2 * BLOCK));
    fill(t, x, data);
    expect(io(t, Op.Write, 0, 40, 2, x.sgl, 1).status).toBe(Status.Ok);
    giveUp(r, x, 10);
    const gaveUpNs = t.board.clock.nowNs;
    expect(t.console.some((l) => /vscsi0: giving up: too many faults in a row/.test(l))).toBe(true);
    expect(t.console.some((l) => /vscsi0: trying it again in 1000 ms/.test(l))).toBe(true);
    expect(io(t, Op.Read, 0, 40, 2, x.sgl, 20).status).toBe(Status.DeviceError); // given up meanwhile
    t.board.runFor(gaveUpNs + 990 * MS - t.board.clock.nowNs);
    expect(t.call("testDdmState", 0)).toBe(ControllerState.Failed);
    t.board.runFor(20 * MS);
    expect(t.call("testDdmState", 0)).toBe(ControllerState.Ready);
    expect(device.command() & 0x4).toBe(4); // bus mastering on again
    expect(t.console.some((l) => /vscsi0: trying the controller again \(revival 1\)/.test(l))).toBe(true);
    fill(t, x, Buffer.alloc(2 * BLOCK));
    expect(io(t, Op.Read, 0, 40, 2, x.sgl, 21).status).toBe(Status.Ok);
    expect(contents(t, x)).toEqual(data);
    // The success ended the probation: eight faults in a row are borne again, and the ninth waits 1 s, not 2.
    giveUp(r, x, 30);
    expect(t.console.filter((l) => /vscsi0: trying it again in 1000 ms/.test(l)).length).toBe(2);
    t.board.runFor(1_100 * MS);
    expect(t.call("testDdmState", 0)).toBe(ControllerState.Ready);
    expect(io(t, Op.Read, 0, 40, 2, x.sgl, 40).status).toBe(Status.Ok);
    release(t, x);
    expectWorking(r.t);
    expectQuiet(r);
  });

  it("gives up again at the first fault on probation, and waits twice as long each time, up to 16 s", () => {
    const r = rig();
    const { t, device } = r;
    const x = transfer(t, 2 * BLOCK);
    giveUp(r, x, 0);
    const waits: number[] = [];
    for (let round = 0; round < 6; round++) {
      const gaveUpNs = t.board.clock.nowNs;
      for (let step = 0; step < 400 && t.call("testDdmState", 0) !== ControllerState.Ready; step++) t.board.runFor(100 * MS);
      expect(t.call("testDdmState", 0)).toBe(ControllerState.Ready);
      waits.push(Math.round((t.board.clock.nowNs - gaveUpNs) / 1e9));
      const resets = stat(t, Stat.Resets);
      device.inject({ kind: "never-complete-next" });
      expect(io(t, Op.Read, 0, 0, 2, x.sgl, 100 + round, 3_000 * MS).status).toBe(Status.Timeout);
      expect(stat(t, Stat.Resets)).toBe(resets + 1);
      expect(t.call("testDdmState", 0)).toBe(ControllerState.Failed); // one fault, no success between: given up
    }
    expect(waits).toEqual([1, 2, 4, 8, 16, 16]);
    expect(device.guestErrorCount).toBe(0);
    release(t, x);
    expect(t.call("testBuffersAllFree")).toBe(1);
    expect(t.stops).toEqual([]);
  });

  it("sleeps until the revival: a given-up controller arms no earlier wake-up", () => {
    const r = rig();
    const { t } = r;
    const x = transfer(t, 2 * BLOCK);
    giveUp(r, x, 0);
    // Given up (and the wait now 1 s): the next wake-up is the health task's or the revival's, never a 100 ms tick.
    t.board.runFor(200 * MS);
    const now = BigInt(t.board.clock.nowNs);
    expect(t.call("run", 1_000_000n) as bigint).toBeGreaterThan(now + 500_000_000n);
    release(t, x);
  });
});
