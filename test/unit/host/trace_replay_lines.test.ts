// The replay lines (docs/trace-format.md) ride beside the hashed ones without touching them: the default board booted
// twice from fresh disks, once with them and once without, gives the same hashed lines and the same SHA-256; the
// replay lines carry what a trace-driven board needs (header, RAM, power-on with the image digest, calls and results,
// memory written by the board and devices, digests of device reads, device bus cycles marked).
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Board } from "../../../host/board/board.ts";
import { DEFAULT_BOARD_PATH, loadBoardFile } from "../../../host/board/load.ts";
import { Trace, TRACE_FORMAT_VERSION } from "../../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../../tools/build/firmware.ts";
import { firmwareModule } from "../../support/board.ts";

function boot(replay: boolean): Trace {
  const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-replay-lines-"));
  const trace = new Trace({ keepLines: true, replay });
  const board = new Board({ spec: loadBoardFile(DEFAULT_BOARD_PATH), firmware: firmwareModule(FIRMWARE_PATH), trace, dataDir });
  try {
    expect(board.powerOn()).toBe(true);
    board.runUntil(300_000_000);
  } finally {
    board.powerOff();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return trace;
}

describe("the trace's replay lines", () => {
  it("leave the hashed lines and their SHA-256 as they are without them", () => {
    const plain = boot(false);
    const replayable = boot(true);
    expect(plain.replayCount).toBe(0);
    expect(replayable.digest()).toBe(plain.digest());
    expect(replayable.count).toBe(plain.count);
    const hashed = replayable.lines!.filter((line) => line.startsWith('{"seq":'));
    expect(hashed).toEqual(plain.lines);
    expect(replayable.lines!.length).toBe(replayable.count + replayable.replayCount);
  });

  it("say which image each processor ran, every call and result, and what the board wrote into RAM", () => {
    const events = boot(true).lines!.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events[0]).toEqual({ rp: "trace", format: "wasm-iop-trace", version: TRACE_FORMAT_VERSION });
    const image = createHash("sha256").update(readFileSync(FIRMWARE_PATH)).digest("hex");
    expect(events.filter((e) => e.rp === "power").map((e) => [e.p, e.image])).toEqual([["host", image], ["sp1", image], ["sp2", image]]);
    expect(events.filter((e) => e.rp === "ram").map((e) => e.p)).toEqual(["host", "sp1", "sp2"]);
    const calls = events.filter((e) => e.rp === "call");
    expect(calls.slice(0, 2)).toEqual([{ rp: "call", p: "host", fn: "boot", args: [67104768] }, { rp: "call", p: "host", fn: "heapTop", args: [] }]);
    expect(calls.some((e) => e.fn === "run" && (e.args as unknown[])[0] === "1000000")).toBe(true);
    expect(events.filter((e) => e.rp === "ret").length).toBe(calls.length); // none ended otherwise
    // The boot-info block is the first thing written into each RAM, before boot() is called.
    const firstWrite = events.findIndex((e) => e.rp === "mem" && e.p === "host");
    expect(events[firstWrite]!.at).toBe(67104768);
    expect(Buffer.from(events[firstWrite]!.b64 as string, "base64").length).toBe(512);
    expect(firstWrite).toBeLessThan(events.findIndex((e) => e.rp === "call"));
    // MSI-X messages are the devices' bus cycles on the processor's bus: marked, so they are not taken for the firmware's.
    const msi = events.findIndex((e) => e.ev === "w32" && e.addr === "0xfee00000");
    expect(events[msi - 1]).toEqual({ rp: "dev", p: events[msi]!.src });
    expect(events.some((e) => e.rp === "peek" && /^[0-9a-f]{16}$/.test(e.sha as string))).toBe(true);
  });
});
