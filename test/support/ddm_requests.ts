// Block requests to a DDM from a test, for the virtio-scsi and NVMe DDM tests alike: page buffers and an SGL over
// them, the data in RAM, one BlockIo sent through the test build's DDM probe (test/firmware/ddm_probe.ts) and its
// BlockIoDone read back from the probe's log. Controller 0 of the host processor.
import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import type { TestBoard } from "./board.ts";

// assembly/ddm/block.ts
export const Op = { Read: 1, Write: 2, Flush: 3, Unmap: 4, WriteFua: 5 } as const;
export const Status = { Ok: 0, MediumError: 1, IllegalRequest: 2, DeviceError: 3, Timeout: 4, Busy: 5, Aborted: 6, NoDisk: 7, Changed: 8 } as const;
// assembly/ddm/block_stats.ts, BlockStat: every DDM's counters; a DDM's own follow from 11.
export const BlockStat = {
  Requests: 0, Completed: 1, Errors: 2, Submitted: 3, Resets: 4, Timeouts: 5, DeviceErrors: 6, SpuriousInterrupts: 7,
  UnknownCompletions: 8, BusyRejects: 9, InFlightMax: 10,
} as const;
export const SGL_NONE = 0xffff;
export const PAGE = 1; // buffer class: 4 KiB
export const BLOCK = 512;
export const MS = 1_000_000;

export function ram(t: TestBoard): Uint8Array {
  return new Uint8Array(t.host.memory.buffer);
}

/** Page buffers and an SGL over them: the buffers' indexes and addresses, and the SGL's segments in order. */
export interface Transfer { sgl: number; buffers: number[]; addresses: number[]; segments: [number, number][] }

/**
 * Page buffers and an SGL over `bytes`, in `segmentBytes` pieces never crossing a buffer's end (page aligned, the
 * last buffer's tail unused); or, with `gapBytes`, each piece in its own buffer, starting that far into it (not
 * PRP-shaped: NVMe sends it as an SGL).
 */
export function transfer(t: TestBoard, bytes: number, segmentBytes = 4096, gapBytes = 0): Transfer {
  const buffers: number[] = [];
  const addresses: number[] = [];
  const acquire = () => {
    const index = t.call("testPoolAcquire", PAGE) as number;
    expect(index).not.toBe(0xffff);
    buffers.push(index);
    addresses.push(t.call("testPoolAddress", PAGE, index) as number);
  };
  const sgl = t.call("testSglCreate") as number;
  const segments: [number, number][] = [];
  const append = (address: number, length: number) => {
    segments.push([address, length]);
    expect(t.call("testSglAppend", sgl, BigInt(address), length)).toBe(1);
  };
  if (gapBytes > 0) {
    for (let offset = 0; offset < bytes; offset += segmentBytes) {
      acquire();
      append(addresses[addresses.length - 1]! + gapBytes, Math.min(segmentBytes, bytes - offset));
    }
    return { sgl, buffers, addresses, segments };
  }
  for (let left = bytes; left > 0; left -= 4096) acquire();
  for (let offset = 0; offset < bytes;) {
    const within = offset % 4096;
    const length = Math.min(segmentBytes, 4096 - within, bytes - offset);
    append(addresses[Math.floor(offset / 4096)]! + within, length);
    offset += length;
  }
  return { sgl, buffers, addresses, segments };
}

export function fill(t: TestBoard, x: Transfer, data: Uint8Array): void {
  let at = 0;
  for (const [address, length] of x.segments) {
    ram(t).set(data.subarray(at, at + length), address);
    at += length;
  }
}

export function contents(t: TestBoard, x: Transfer): Uint8Array {
  const out = new Uint8Array(x.segments.reduce((sum, [, length]) => sum + length, 0));
  let at = 0;
  for (const [address, length] of x.segments) {
    out.set(ram(t).subarray(address, address + length), at);
    at += length;
  }
  return out;
}

export function release(t: TestBoard, x: Transfer): void {
  t.call("testSglRelease", x.sgl);
  for (const index of x.buffers) t.call("testPoolRelease", PAGE, index);
}

export interface Done { status: number; sense: number; bytes: number; lba: bigint; tag: number }

/** Entry `i` of the probe's completion log. */
export function done(t: TestBoard, i: number): Done {
  return {
    status: t.call("testDdmDoneStatus", i) as number,
    sense: t.call("testDdmDoneSense", i) as number,
    bytes: t.call("testDdmDoneBytes", i) as number,
    lba: BigInt.asUintN(64, t.call("testDdmDoneLba", i) as bigint),
    tag: t.call("testDdmDoneTag", i) as number,
  };
}

/** Sends one request and runs the board until it completes (or `limitNs` passes); its completion. */
export function io(t: TestBoard, op: number, disk: number, lba: number, blockCount: number, sgl: number, tag: number, limitNs = 50 * MS): Done {
  const before = t.call("testDdmDoneCount") as number;
  expect(t.call("testDdmSubmit", 0, op, disk, BigInt(lba), blockCount, sgl, tag)).toBe(1);
  for (let ns = 0; ns < limitNs && (t.call("testDdmDoneCount") as number) === before; ns += 100_000) t.board.runFor(100_000);
  expect(t.call("testDdmDoneCount")).toBe(before + 1);
  return done(t, before);
}

/** A write and a read of 8 blocks of disk 0 at `lba` that must succeed and agree: the controller works (again). */
export function expectWorking(t: TestBoard, lba = 2048): void {
  const data = new Uint8Array(randomBytes(8 * BLOCK));
  const w = transfer(t, data.length);
  fill(t, w, data);
  expect(io(t, Op.Write, 0, lba, 8, w.sgl, 901).status).toBe(Status.Ok);
  const rd = transfer(t, data.length);
  const result = io(t, Op.Read, 0, lba, 8, rd.sgl, 902);
  expect(result).toMatchObject({ status: Status.Ok, bytes: data.length });
  expect(contents(t, rd)).toEqual(data);
  release(t, w);
  release(t, rd);
}
