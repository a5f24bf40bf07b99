// A board reset powers every processor up again on the memory it had, with the RAM zeroed as a new memory's would
// be (a 64 MiB fuzzing memory made anew and faulted in again took most of a reboot's 12 ms); what tools keep above
// the RAM (the fuzzer's coverage and dirty maps) stays.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Board } from "../../../host/board/board.ts";
import { parseBoard } from "../../../host/board/load.ts";
import { Trace } from "../../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../../tools/build/firmware.ts";

describe("board reset", () => {
  it("reuses each processor's memory, zeroes its RAM before boot, and keeps what lies above the RAM", () => {
    const spec = parseBoard({ name: "reset-board", seed: 1, processors: [{ name: "host", role: "host", ramMiB: 8, pci: [] }], disks: [] }, "reset-board.json");
    const ramBytes = 8 << 20;
    const lines: string[] = [];
    const board = new Board({
      spec, firmware: new WebAssembly.Module(readFileSync(FIRMWARE_PATH)), trace: new Trace({ enabled: false }),
      processorMemoryBytes: ramBytes + 65536, onConsole: (p, fd, line) => lines.push(`${p} ${fd}: ${line}`),
    });
    expect(board.powerOn()).toBe(true);
    const memory = board.processors[0]!.memory;
    const bytes = new Uint8Array(memory.buffer);
    expect(bytes.subarray(ramBytes - 64, ramBytes).every((b) => b === 0)).toBe(true); // the firmware leaves these alone
    bytes.fill(0xa5, ramBytes - 64, ramBytes); // RAM: lost at the reset
    bytes.fill(0x5a, ramBytes, ramBytes + 64); // above the RAM: a tool's
    expect(board.reset()).toBe(true);
    expect(board.processors[0]!.memory).toBe(memory);
    expect(bytes.subarray(ramBytes - 64, ramBytes).every((b) => b === 0)).toBe(true);
    expect(bytes.subarray(ramBytes, ramBytes + 64).every((b) => b === 0x5a)).toBe(true);
    expect(lines.filter((l) => l.startsWith("host 1: wasm-iop "))).toHaveLength(2); // booted twice
  });
});
