// Determinism by construction: the same board, inputs and seed give a byte-identical bus trace. A seeded workload
// (messages, interrupts, random draws, bus reads, timers) runs twice on a three-processor board and the traces'
// SHA-256 must match; a different seed must change it. The release image on the default board is checked too.
import { describe, expect, it } from "vitest";
import { Board } from "../../host/board/board.ts";
import { DEFAULT_BOARD_PATH, loadBoardFile } from "../../host/board/load.ts";
import { Prng } from "../../host/sim/prng.ts";
import { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { firmwareModule, testBoard } from "../support/board.ts";
import { testTempDir } from "../support/temp_dir.ts";

const Op = { Log: 16, Forward: 18, Random: 23, BusRead: 24 } as const;

function workloadRun(seed: number): { digest: string; lines: number; log: number } {
  const t = testBoard({ ramMiB: [16, 8, 8], seed });
  const workload = new Prng(seed).fork("workload");
  for (let i = 0; i < 400; i++) {
    const atNs = workload.intBelow(50_000_000);
    const processor = t.board.processors[workload.intBelow(3)]!;
    const choice = workload.intBelow(5);
    t.board.clock.at(atNs, () => {
      if (processor.state !== "running") return;
      if (choice === 0) processor.raiseIrq(56 + workload.intBelow(5));
      else if (choice === 1) processor.invoke("testPost", workload.intBelow(4), Op.Random, 0, 0, 0);
      else if (choice === 2) processor.invoke("testPost", workload.intBelow(4), Op.BusRead, workload.intBelow(32) << 15, 0, 0);
      else if (choice === 3) processor.invoke("testPost", workload.intBelow(4), Op.Forward, i, workload.intBelow(4), 0);
      else processor.invoke("testTimerStart", workload.intBelow(4), BigInt(workload.intBelow(5_000_000)), 0n, i);
    });
  }
  t.board.runUntil(100_000_000);
  expect(t.stops).toEqual([]);
  const log = t.board.processors.reduce((sum, p) => sum + (p.invoke("testLogCount") as number), 0);
  return { digest: t.board.trace.digest(), lines: t.board.trace.count, log };
}

describe("trace determinism", () => {
  it("gives byte-identical traces for the same seed, and a different trace for another seed", () => {
    const first = workloadRun(11);
    const second = workloadRun(11);
    expect(first.log).toBeGreaterThan(300);
    expect(first.lines).toBeGreaterThan(1000);
    expect(second).toEqual(first);
    const other = workloadRun(12);
    expect(other.digest).not.toBe(first.digest);
  });

  it("records bus accesses, interrupts and random draws", () => {
    const t = testBoard({ keepTrace: true });
    t.call("testPost", 0, Op.BusRead, 3 << 15, 0, 0);
    t.call("testPost", 1, Op.Random, 0, 0, 0);
    t.host.raiseIrq(57);
    t.board.runFor(1_000_000);
    const events = t.board.trace.lines!.map((line) => JSON.parse(line) as Record<string, unknown>);
    // An empty slot's config space reads as all ones: the master abort a real enumeration sees.
    expect(events).toContainEqual(expect.objectContaining({ src: "host", ev: "r32", addr: "0xe0018000", val: "0xffffffff" }));
    expect(events).toContainEqual(expect.objectContaining({ src: "host", ev: "irq", vector: 57 }));
    expect(events.some((e) => e.ev === "random" && /^[0-9a-f]{8}$/.test(e.bytes as string))).toBe(true);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));
  });

  it("boots the default board the same way twice", async () => {
    const run = async () => {
      // Fresh disks each time: the first boot of a board writes its RAID superblocks and thin maps, later ones read them.
      const dataDir = testTempDir("wasm-iop-determinism-");
      const board = new Board({ spec: loadBoardFile(DEFAULT_BOARD_PATH), firmware: firmwareModule(FIRMWARE_PATH), trace: new Trace(), dataDir });
      expect(board.powerOn()).toBe(true);
      await board.runUntilTurning(3_500_000_000); // seconds of work: the worker's event loop keeps turning
      return board.trace.digest();
    };
    expect(await run()).toBe(await run());
  });
});
