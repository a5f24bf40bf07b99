// The whole data path: a test client (standing in for the iSCSI transport) sends READ and WRITE service requests to
// the CTA, which routes them over local links and messaging units to the RTA owning each disk, whose DDM drives a
// virtio-scsi controller that moves the data by DMA (across the bus, for the storage processors) into image files.
// 64 MiB of seeded random data goes to each of the three disks (host, sp1, sp2) and is read back and compared byte
// for byte; then a run with faults injected (lost and duplicated frames, DMA faults, device timeouts) must complete
// every request or fail it visibly, never return wrong data, and leave every pool full.
import { describe, expect, it } from "vitest";
import { Prng } from "../../host/sim/prng.ts";
import { testBoard, type TestBoard } from "../support/board.ts";
import { turnEvery } from "../support/time.ts";
import { testTempDir } from "../support/temp_dir.ts";

const Fn = { Read: 3, Write: 4, Flush: 6 } as const;
const Status = { Ok: 0 } as const;
const LARGE = 2; // 64 KiB buffers
const BUFFER_BYTES = 65536;
const BLOCK_BYTES = 512;
const PENDING = 0xff;

interface Request {
  r: number;
  lun: number;
  offsetBytes: number;
  fn: number;
}

function bootStorageBoard(diskMiB: number, faultsSeed?: number): TestBoard {
  const dataDir = testTempDir("wasm-iop-data-");
  const t = testBoard({ ramMiB: [64, 32, 32], disksMiB: [[diskMiB], [diskMiB], [diskMiB]], diskBackend: "file", dataDir, seed: faultsSeed ?? 3 });
  for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
  expect(t.call("testUmaReady")).toBe(1);
  expect(t.call("testVolumeCount")).toBe(3);
  return t;
}

/** The bytes a given (lun, offset) must hold: derived from the seed, so nothing is kept in memory. */
function pattern(seed: number, lun: number, offsetBytes: number, lengthBytes: number): Uint8Array {
  const bytes = new Uint8Array(lengthBytes);
  new Prng(`${seed}/${lun}/${offsetBytes}`).fill(bytes);
  return bytes;
}

function ram(t: TestBoard): Uint8Array {
  return new Uint8Array(t.host.memory.buffer);
}

/**
 * Moves `totalBytes` per LUN in requests of `buffersPerRequest` 64 KiB buffers, `depth` at a time, writing then
 * reading back. `retry` resubmits requests that fail (for the fault run); otherwise any failure fails the test.
 */
const breathe = turnEvery();

async function transfer(t: TestBoard, seed: number, totalBytes: number, buffersPerRequest: number, depth: number, retry: boolean): Promise<{ failures: number }> {
  const requestBytes = buffersPerRequest * BUFFER_BYTES;
  let failures = 0;
  for (const fn of [Fn.Write, Fn.Read]) {
    const todo: Omit<Request, "r">[] = [];
    for (let lun = 0; lun < 3; lun++) for (let offset = 0; offset < totalBytes; offset += requestBytes) todo.push({ lun, offsetBytes: offset, fn });
    const inFlight: Request[] = [];
    let guard = 0;
    while (todo.length > 0 || inFlight.length > 0) {
      expect(guard++).toBeLessThan(200_000);
      while (todo.length > 0 && inFlight.length < depth) {
        const next = todo.shift()!;
        const r = t.call("testClientPrepare", LARGE, buffersPerRequest) as number;
        expect(r).not.toBe(0xffff_ffff);
        if (fn === Fn.Write) {
          const data = pattern(seed, next.lun, next.offsetBytes, requestBytes);
          for (let i = 0; i < buffersPerRequest; i++) {
            ram(t).set(data.subarray(i * BUFFER_BYTES, (i + 1) * BUFFER_BYTES), t.call("testClientBufferAddress", r, i) as number);
          }
        }
        expect(t.call("testClientSubmit", r, fn, next.lun, BigInt(next.offsetBytes / BLOCK_BYTES), requestBytes / BLOCK_BYTES)).toBe(1);
        inFlight.push({ ...next, r });
      }
      await breathe(); // seconds of work in all: the worker's event loop turns now and then (test/support/stall_guard.ts)
      t.board.runFor(200_000);
      expect(t.stops).toEqual([]);
      for (let i = inFlight.length - 1; i >= 0; i--) {
        const request = inFlight[i]!;
        const status = t.call("testClientStatus", request.r) as number;
        if (status === PENDING) continue;
        inFlight.splice(i, 1);
        if (status === Status.Ok) {
          expect(t.call("testClientBytes", request.r)).toBe(requestBytes);
          if (fn === Fn.Read) {
            const expected = pattern(seed, request.lun, request.offsetBytes, requestBytes);
            for (let b = 0; b < buffersPerRequest; b++) {
              const at = t.call("testClientBufferAddress", request.r, b) as number;
              const got = ram(t).subarray(at, at + BUFFER_BYTES);
              const want = expected.subarray(b * BUFFER_BYTES, (b + 1) * BUFFER_BYTES);
              if (Buffer.compare(got, want) !== 0) throw new Error(`lun ${request.lun} at ${request.offsetBytes + b * BUFFER_BYTES}: read back other bytes than were written`);
            }
          }
        } else {
          failures += 1;
          if (!retry) throw new Error(`lun ${request.lun} at ${request.offsetBytes}: ${fn === Fn.Read ? "read" : "write"} failed with status ${status}`);
          todo.push({ lun: request.lun, offsetBytes: request.offsetBytes, fn }); // failed visibly: do it again
        }
        t.call("testClientRelease", request.r);
      }
    }
  }
  return { failures };
}

async function expectQuiescent(t: TestBoard): Promise<void> {
  await t.board.runUntilTurning(t.board.clock.nowNs + 500_000_000); // past every retransmission and retention the agents keep
  for (const p of t.board.processors) {
    expect(p.invoke("testBuffersAllFree")).toBe(1);
    expect(p.heapTop()).toBe(p.heapTopAtBoot);
  }
  expect(t.call("testCtaActive")).toBe(0);
}

describe("the data path", () => {
  it("moves 64 MiB of random data to each processor's disk image and back, byte for byte", async () => {
    const t = bootStorageBoard(64);
    const { failures } = await transfer(t, 1, 64 * 1024 * 1024, 16, 8, false);
    expect(failures).toBe(0);
    await expectQuiescent(t);
  });

  it("completes or visibly fails every request under injected faults, and never returns wrong data", async () => {
    const t = bootStorageBoard(16, 9);
    const chaos = new Prng("faults");
    const faults = ["drop-next-inbound-post", "duplicate-next-inbound-post", "drop-next-outbound-post", "duplicate-next-outbound-post"] as const;
    let injected = 0;
    // Every 3 ms of board time, one fault somewhere: a frame lost or doubled, a DMA fault, a request never completed.
    const inject = () => {
      const choice = chaos.intBelow(6);
      if (choice < 4) t.board.bridges[chaos.intBelow(t.board.bridges.length)]!.inject({ kind: faults[choice]! });
      else if (choice === 4) t.board.controllers[chaos.intBelow(t.board.controllers.length)]!.inject({ kind: "dma-fault-next" });
      else t.board.controllers[chaos.intBelow(t.board.controllers.length)]!.inject({ kind: "never-complete-next" });
      injected += 1;
      if (injected < 200) t.board.clock.after(3_000_000, inject);
    };
    t.board.clock.after(1_000_000, inject);
    const { failures } = await transfer(t, 2, 16 * 1024 * 1024, 4, 8, true);
    expect(injected).toBeGreaterThan(50);
    expect(failures).toBeGreaterThan(0); // some faults must have surfaced as failed requests
    expect(t.call("testCtaRetransmits") as bigint).toBeGreaterThan(0n);
    await expectQuiescent(t);
  });
});
