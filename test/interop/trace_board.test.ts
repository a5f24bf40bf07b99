// The trace-driven board (tools/trace_board/replay.py) runs the unchanged release image under wasmtime and answers
// every import from a trace the JS board recorded: on the boot trace and on a 10-second qemu-img iSCSI session it
// must find no difference, and on a trace with one line changed it must name that line (a write, a console line, a
// call's result, a device's read of memory) or, for a changed read value, a later line where the firmware went
// another way. The C trace-driven board (tools/trace_board/native/, on the native board's runtime port) must find no
// difference on the same two traces and name the same changed write. Needs python3 with `pip install wasmtime`, and
// qemu-img for the session; without them the tests say what they skipped, and under CI (CI=true) that is a failure.
// The C board is built only where the native board's runtime port is in the tree (boards/native/src/runtime.h).
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import wabtInit from "wabt";
import { compileImage } from "../../host/abi/image_module.ts";
import { Board } from "../../host/board/board.ts";
import { DEFAULT_BOARD_PATH, loadBoardFile } from "../../host/board/load.ts";
import { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { simulate } from "../../tools/simulate/simulation.ts";
import { REPLAY_SCRIPT } from "../../tools/cli/trace.ts";
import { buildNativeTraceBoard, nativeTraceBoardMissing } from "../../tools/trace_board/native_build.ts";
import { recordBootTrace, recordIscsiTrace, type RecordedTrace } from "../../tools/trace_board/record.ts";
import { scaled } from "../support/time.ts";

const wasmtimeMissing = spawnSync("python3", ["-c", "import wasmtime"], { stdio: "ignore" }).status !== 0;
const qemuMissing = spawnSync("qemu-img", ["--help"], { stdio: "ignore" }).error !== undefined;
for (const [missing, what] of [[wasmtimeMissing, "python3 with wasmtime (pip install wasmtime)"], [qemuMissing, "qemu-img (apt-get install qemu-utils qemu-block-extra)"]] as const) {
  if (!missing) continue;
  const message = `trace-driven board tests skipped in part: ${what} not installed`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have it`);
  process.stderr.write(`${message}\n`);
}
const nativeMissing = nativeTraceBoardMissing();
if (nativeMissing !== undefined) process.stderr.write(`the C trace-driven board's tests skipped: ${nativeMissing}\n`);

interface ReplayResult {
  ok: boolean;
  sha256?: string;
  calls: number;
  powerOns: number;
  imports: number;
  memBytes: number;
  peeks: number;
  difference?: { line: number; call: string; expected: string; actual: string };
}

/**
 * Replays `path` on the wasmtime board, or on the C board at `nativeBoard`, and resolves to its JSON result. A child
 * process waited on asynchronously: a replay takes seconds, and the test worker must keep answering vitest meanwhile.
 */
function replay(path: string, image = FIRMWARE_PATH, nativeBoard?: string): Promise<ReplayResult> {
  const [program, args] = nativeBoard === undefined ? ["python3", [REPLAY_SCRIPT, path]] : [nativeBoard, [path]];
  return new Promise((resolve, reject) => {
    execFile(program, [...args, "--image", image, "--json"], { encoding: "utf8", maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : (error as { code?: unknown }).code;
      if (code !== 0 && code !== 1) reject(new Error(`${program} exited ${String(code)}: ${stderr}`));
      else resolve(JSON.parse(stdout) as ReplayResult);
    });
  });
}

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-trace-board-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// The two CI traces, each recorded once for every board that replays it.
let bootRecording: Promise<RecordedTrace> | undefined;
let iscsiRecording: Promise<RecordedTrace> | undefined;
const bootTrace = () => (bootRecording ??= recordBootTrace(join(tmp, "boot.jsonl"), 1));
const iscsiTrace = () => (iscsiRecording ??= recordIscsiTrace(join(tmp, "iscsi.jsonl"), { seconds: 10, imageMiB: 1, intervalMs: 1000 }));

describe.skipIf(wasmtimeMissing)("the trace-driven board under wasmtime, on the boot trace", () => {
  let path: string;
  let lines: string[];
  let sha256: string;
  beforeAll(async () => {
    ({ path, sha256 } = await bootTrace());
    lines = readFileSync(path, "utf8").split("\n");
  }, scaled(60_000));

  it("finds no difference, and hashes the trace as the JS board did", async () => {
    const result = await replay(path);
    expect(result.difference).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.sha256).toBe(sha256);
    expect(result.calls).toBeGreaterThan(50); // boot, heapTop, irq and run calls on three processors
    expect(result.peeks).toBeGreaterThan(0);
  }, scaled(60_000));

  // Writes the trace with line `index` (0-based) changed by `change`, replays it, and returns the result.
  async function mutated(name: string, index: number, change: (event: Record<string, unknown>) => void): Promise<ReplayResult> {
    const event = JSON.parse(lines[index]!) as Record<string, unknown>;
    change(event);
    const copy = [...lines];
    copy[index] = JSON.stringify(event);
    const file = join(tmp, `${name}.jsonl`);
    writeFileSync(file, copy.join("\n"));
    return replay(file);
  }

  // The first line at or after `from` that matches, skipping device cycles (a "dev" line before them).
  function find(test: (event: Record<string, unknown>) => boolean, from = 0): number {
    for (let i = from; i < lines.length; i++) {
      if (lines[i] === "" || lines[i - 1]?.startsWith('{"rp":"dev"')) continue;
      if (test(JSON.parse(lines[i]!) as Record<string, unknown>)) return i;
    }
    throw new Error("no such line in the boot trace");
  }

  it("names a changed bus write at its line: expected the trace's value, got the firmware's", async () => {
    const index = find((e) => e.ev === "w32" && e.src === "host", 1000);
    const original = JSON.parse(lines[index]!) as { addr: string; val: string };
    const result = await mutated("write", index, (e) => (e.val = original.val === "0x1234" ? "0x4321" : "0x1234"));
    expect(result.ok).toBe(false);
    expect(result.difference!.line).toBe(index + 1);
    expect(result.difference!.call).toMatch(/^host (run|irq|boot)\(/);
    expect(result.difference!.actual).toBe(`w32 at ${original.addr} of ${original.val}`);
  }, scaled(60_000));

  it("names a changed console line, a changed call result and a changed device read of memory", async () => {
    const consoleIndex = find((e) => e.ev === "console");
    const console = await mutated("console", consoleIndex, (e) => (e.text = `${e.text as string}!`));
    expect(console.difference!.line).toBe(consoleIndex + 1);
    expect(console.difference!.actual).toMatch(/^console fd [12]: "/);

    const retIndex = find((e) => e.rp === "ret" && e.p === "sp1" && typeof e.val === "string", 1000);
    const ret = await mutated("ret", retIndex, (e) => (e.val = "12345"));
    expect(ret.difference!.line).toBe(retIndex + 1);
    expect(ret.difference!.expected).toBe("the result 12345");

    const peekIndex = find((e) => e.rp === "peek");
    const peek = await mutated("peek", peekIndex, (e) => (e.sha = "0000000000000000"));
    expect(peek.difference!.line).toBe(peekIndex + 1);
    expect(peek.difference!.actual).toMatch(/^other bytes \(sha256 [0-9a-f]{16}/);
  }, scaled(120_000));

  it("follows a changed read value to where the firmware went another way", async () => {
    // A PCI vendor ID read during enumeration: all ones says the slot is empty, so the firmware skips the device.
    const index = find((e) => e.ev === "r16" && e.src === "host" && e.val !== "0xffff");
    const result = await mutated("read", index, (e) => (e.val = "0xffff"));
    expect(result.ok).toBe(false);
    expect(result.difference!.line).toBeGreaterThan(index + 1);
  }, scaled(60_000));
});

describe.skipIf(wasmtimeMissing || qemuMissing)("the trace-driven board under wasmtime, on a 10-second qemu-img iSCSI session", () => {
  it("finds no difference in the session (1 MiB random round trips, one a second)", async () => {
    const recorded = await iscsiTrace();
    expect(recorded.note).toMatch(/^\d+ qemu-img round trips/);
    const result = await replay(recorded.path);
    expect(result.difference).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.sha256).toBe(recorded.sha256);
    expect(result.memBytes).toBeGreaterThan(2 * 1024 * 1024); // at least one image in and out of RAM
  }, scaled(180_000));
});

// A firmware of a few lines that uses every import kind on each turn (clock, random, a bus read written back, a
// console line) and on its third turn ends: proc_exit(7), or a trap.
function endingFirmware(ending: "exit" | "trap"): string {
  return `(module
  (import "env" "memory" (memory 1 65536 shared))
  (import "board" "bus_read32" (func $r32 (param i32 i32) (result i32)))
  (import "board" "bus_write32" (func $w32 (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (global $turns (mut i32) (i32.const 0))
  (data (i32.const 1024) "turn\\n")
  (func (export "abiVersion") (result i32) i32.const 2)
  (func (export "boot") (param i32) (result i32) i32.const 0)
  (func (export "irq") (param i32))
  (func (export "heapTop") (result i32) i32.const 65536)
  (func (export "run") (param i64) (result i64)
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 2048)))
    (drop (call $random (i32.const 2056) (i32.const 8)))
    (call $w32 (i32.const 0xc0000000) (i32.const 0) (call $r32 (i32.const 0xe0000000) (i32.const 0)))
    (i32.store (i32.const 3000) (i32.const 1024))
    (i32.store (i32.const 3004) (i32.const 5))
    (drop (call $write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3008)))
    (global.set $turns (i32.add (global.get $turns) (i32.const 1)))
    (if (i32.eq (global.get $turns) (i32.const 3)) (then ${ending === "exit" ? "(call $exit (i32.const 7))" : "unreachable"}))
    (i64.const 1000)))`;
}

describe.skipIf(wasmtimeMissing)("the trace-driven board under wasmtime, on calls that do not return", () => {
  for (const ending of ["exit", "trap"] as const) {
    it(`replays a firmware whose run ends in ${ending === "exit" ? "proc_exit(7)" : "a trap"}, and names a changed ending`, async () => {
      const wabt = await wabtInit();
      const bytes = new Uint8Array(wabt.parseWat(`${ending}.wat`, endingFirmware(ending), { threads: true }).toBinary({}).buffer);
      const image = join(tmp, `${ending}.wasm`);
      writeFileSync(image, bytes);
      const path = join(tmp, `${ending}.jsonl`);
      const trace = new Trace({ path });
      const dataDir = mkdtempSync(join(tmp, "board-"));
      const board = new Board({ spec: loadBoardFile(DEFAULT_BOARD_PATH), firmware: compileImage(bytes), trace, dataDir });
      expect(board.powerOn()).toBe(true);
      board.runFor(10_000_000);
      board.powerOff();
      await trace.close();
      expect(board.panics.map((p) => [p.kind, p.code])).toEqual(board.processors.map(() => (ending === "exit" ? ["panic", 7] : ["trap", 5])));

      const result = await replay(path, image);
      expect(result.difference).toBeUndefined();
      expect(result.calls).toBe(board.processors.length * 5); // boot, heapTop, three runs
      const nativeBoard = nativeMissing === undefined ? await buildNativeTraceBoard() : undefined;
      if (nativeBoard !== undefined) expect((await replay(path, image, nativeBoard)).difference).toBeUndefined();

      const lines = readFileSync(path, "utf8").split("\n");
      expect(lines.filter((line) => line.includes('"ev":"console","fd":1,"text":"turn"}')).length).toBe(board.processors.length * 3);
      const index = lines.findIndex((line) => line.startsWith('{"rp":"end"'));
      const event = JSON.parse(lines[index]!) as Record<string, unknown>;
      if (ending === "exit") event.code = 8;
      else event.how = "exit";
      lines[index] = JSON.stringify(event);
      writeFileSync(path, lines.join("\n"));
      for (const board of nativeBoard === undefined ? [undefined] : [undefined, nativeBoard]) {
        const changed = await replay(path, image, board);
        expect(changed.difference!.line).toBe(index + 1);
        expect(changed.difference!.actual).toMatch(ending === "exit" ? /^proc_exit\(7\)$/ : /^a trap \(/);
      }
    }, scaled(300_000));
  }
});

describe.skipIf(wasmtimeMissing)("the trace-driven board under wasmtime, on a simulation with faults and resets", () => {
  it("finds no difference across injected faults and two board resets (seed 2)", async () => {
    const path = join(tmp, "simulate.jsonl");
    const trace = new Trace({ path });
    const result = simulate({ seed: 2, ops: 400, faults: ["panic", "mu-drop", "dma", "conn-drop"], faultEveryOps: 20, trace });
    await trace.close();
    expect(result.resets).toBe(2);
    expect(result.lostWrites + result.wrongReads).toBe(0);
    const replayed = await replay(path);
    expect(replayed.difference).toBeUndefined();
    expect(replayed.sha256).toBe(result.traceHash);
    expect(replayed.powerOns).toBe(3 * 3); // three processors, powered on three times
  }, scaled(120_000));
});

describe.skipIf(nativeMissing !== undefined)("the C trace-driven board on the native board's runtime port", () => {
  let nativeBoard: string;
  beforeAll(async () => {
    nativeBoard = await buildNativeTraceBoard();
  }, scaled(300_000));

  it("finds no difference on the boot trace, and names a changed bus write at its line", async () => {
    const { path, sha256 } = await bootTrace();
    const result = await replay(path, FIRMWARE_PATH, nativeBoard);
    expect(result.difference).toBeUndefined();
    expect(result.sha256).toBe(sha256);
    expect(result.powerOns).toBe(3);

    const lines = readFileSync(path, "utf8").split("\n");
    const index = lines.findIndex((line, i) => i > 1000 && line.includes('"src":"host","ev":"w32"') && !lines[i - 1]!.startsWith('{"rp":"dev"'));
    const original = JSON.parse(lines[index]!) as { addr: string; val: string };
    lines[index] = lines[index]!.replace(`"val":"${original.val}"`, `"val":"${original.val === "0x1234" ? "0x4321" : "0x1234"}"`);
    const changed = join(tmp, "native-write.jsonl");
    writeFileSync(changed, lines.join("\n"));
    const difference = (await replay(changed, FIRMWARE_PATH, nativeBoard)).difference!;
    expect(difference.line).toBe(index + 1);
    expect(difference.actual).toBe(`w32 at ${original.addr} of ${original.val}`);
  }, scaled(120_000));

  it.skipIf(qemuMissing)("finds no difference on the 10-second qemu-img iSCSI session", async () => {
    const recorded = await iscsiTrace();
    const result = await replay(recorded.path, FIRMWARE_PATH, nativeBoard);
    expect(result.difference).toBeUndefined();
    expect(result.sha256).toBe(recorded.sha256);
  }, scaled(180_000));
});
