// The board's control door (host/board/control.ts) on its own: how names resolve (processors from the board file,
// controllers by PCI slot as the firmware enumerates them, disks in controller then LUN order as the RTA reports
// them), what a wrong name is told, that a refused command never reaches the board, what `status` reports from the
// firmware's volume lines, and what replacing a file disk does to the data directory. The firmware's side of each
// fault is in test/sim/fault_commands.test.ts.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Board } from "../../../host/board/board.ts";
import {
  BoardControl, type ControlAnswer, type ControlRequest, parseControlRequest, submitControlRequest,
} from "../../../host/board/control.ts";
import { parseBoard } from "../../../host/board/load.ts";
import { Trace } from "../../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../../tools/build/firmware.ts";
import { firmwareModule } from "../../support/board.ts";
import { testTempDir } from "../../support/temp_dir.ts";

const MIB = 1024 * 1024;

// The host has two controllers, listed in the board file out of slot order: slot 9 (disks c, d), then slot 8 (disks a,
// b); sp1 has none. (The host, because a storage processor's boot reserve holds one controller's areas today.)
function board(dataDir: string): Board {
  const disks = ["a", "b", "c", "d"].map((name) => ({ name, sizeMiB: 1, blockSize: 512, backend: "file", image: `${name}.img` }));
  const spec = parseBoard({
    name: "control-board", seed: 5, disks,
    processors: [
      { name: "host", role: "host", ramMiB: 16, pci: [{ slot: 1, model: "iop-bridge", processor: "sp1" }, { slot: 9, model: "virtio-scsi", disks: ["c", "d"] }, { slot: 8, model: "virtio-scsi", disks: ["a", "b"] }] },
      { name: "sp1", role: "storage", ramMiB: 16, pci: [] },
    ],
  }, "control-board.json");
  return new Board({ spec, firmware: firmwareModule(FIRMWARE_PATH), dataDir, trace: new Trace({}) });
}

function powered(): { board: Board; control: BoardControl; dataDir: string } {
  const dataDir = testTempDir("wasm-iop-control-");
  const b = board(dataDir);
  expect(b.powerOn()).toBe(true);
  return { board: b, control: new BoardControl(b), dataDir };
}

function answer(b: Board, control: BoardControl, request: ControlRequest): ControlAnswer {
  let got: ControlAnswer | undefined;
  control.submit(request, (a) => (got = a));
  b.runFor(0);
  expect(got).toBeDefined();
  return got!;
}

describe("board control: requests", () => {
  it("checks a request's shape and names what is wrong and what exists", () => {
    expect(parseControlRequest({ object: "status" })).toEqual({ object: "status" });
    expect(parseControlRequest({ object: "disk", name: "sp2:1", action: "fail" })).toEqual({ object: "disk", name: "sp2:1", action: "fail" });
    expect(parseControlRequest({ object: "controller", name: "host:0", action: "resume" })).toEqual({ object: "controller", name: "host:0", action: "resume" });
    expect(parseControlRequest({ object: "fan", name: "host:0", action: "stop" })).toBe('unknown object "fan"; objects: disk, copy, controller, status');
    expect(parseControlRequest({ object: "disk", name: "sp1", action: "fail" })).toBe('disk: expected a name PROCESSOR:INDEX such as sp1:0, got "sp1"');
    expect(parseControlRequest({ object: "disk", name: "host:0", action: "hang" })).toBe('unknown disk action "hang"; disk actions: fail, replace, restore');
    expect(parseControlRequest({ object: "copy", name: "rep:1", action: "restore" })).toEqual({ object: "copy", name: "rep:1", action: "restore" });
    expect(parseControlRequest({ object: "copy", name: "rep", action: "fail" })).toBe('copy: expected a name VOLUME:COPY such as rep:1, got "rep"');
    expect(parseControlRequest({ object: "copy", name: "rep:0", action: "replace" })).toBe('unknown copy action "replace"; copy actions: fail, restore');
    expect(parseControlRequest({ object: "controller", name: "host:0" })).toBe("unknown controller action undefined; controller actions: hang, resume");
    expect(parseControlRequest([1])).toBe("a request is a JSON object");
  });
});

describe("board control: names", () => {
  it("numbers controllers by slot and disks in controller then LUN order, like the firmware", () => {
    const { board: b, control } = powered();
    expect(b.controllersOf("host").map((s) => [s.slot, s.disks])).toEqual([[8, ["a", "b"]], [9, ["c", "d"]]]);
    expect(answer(b, control, { object: "disk", name: "host:2", action: "fail" }).ok).toBe(true);
    expect(b.isDiskPulled("c")).toBe(true);
    expect(b.controllersOf("host")[1]!.device.isPulled(0)).toBe(true);
    expect(answer(b, control, { object: "controller", name: "host:0", action: "hang" }).ok).toBe(true);
    expect(b.controllersOf("host").map((s) => s.device.isHung)).toEqual([true, false]);
  });

  it("refuses an unknown processor, disk or controller at once, naming what exists; the board never sees it", () => {
    const { board: b, control } = powered();
    const scheduled = b.clock.scheduledCount;
    const traced = b.trace.count;
    const refusals: ControlAnswer[] = [];
    for (const request of [
      { object: "disk", name: "sp9:0", action: "fail" },
      { object: "disk", name: "host:4", action: "replace" },
      { object: "disk", name: "sp1:0", action: "fail" },
      { object: "controller", name: "host:2", action: "hang" },
    ] as ControlRequest[]) control.submit(request, (a) => refusals.push(a));
    expect(refusals.map((a) => (a.ok ? "ok" : `${a.error}: ${a.message}`))).toEqual([
      'bad-request: no processor "sp9" on board control-board; processors: host, sp1',
      "bad-request: no disk host:4: processor host has 4 disks: host:0 (a), host:1 (b), host:2 (c), host:3 (d)",
      "bad-request: no disk sp1:0: processor sp1 has no disks",
      "bad-request: no controller host:2: processor host has 2 storage controllers: host:0 (slot 8), host:1 (slot 9)",
    ]);
    expect(b.clock.scheduledCount).toBe(scheduled);
    expect(b.trace.count).toBe(traced);
  });

  it("answers not-ready before the board is powered on", () => {
    const b = board(testTempDir("wasm-iop-control-"));
    let got: ControlAnswer | undefined;
    new BoardControl(b).submit({ object: "status" }, (a) => (got = a));
    expect(got).toEqual({ ok: false, error: "not-ready", message: "board control-board is not powered on" });
  });
});

describe("board control: a control socket's requests", () => {
  // What run and run --cluster --board hand every socket line to: one answer each, the board reached only when the
  // request is one and the board is built.
  it("answers bad-request for what is no request, not-ready while the board is still booting, else the board's answer", () => {
    const got: ControlAnswer[] = [];
    submitControlRequest(undefined, "control-board", { object: "fan" }, (a) => got.push(a));
    submitControlRequest(undefined, "control-board", { object: "status" }, (a) => got.push(a));
    const { board: b, control } = powered();
    submitControlRequest(control, "control-board", { object: "disk", name: "host:9", action: "fail" }, (a) => got.push(a));
    submitControlRequest(control, "control-board", { object: "status" }, (a) => got.push(a));
    b.runFor(0);
    expect(got.map((a) => (a.ok ? `ok: ${a.message.split(" at ")[0]}` : `${a.error}: ${a.message}`))).toEqual([
      'bad-request: unknown object "fan"; objects: disk, copy, controller, status',
      "not-ready: board control-board is still booting",
      "bad-request: no disk host:9: processor host has 4 disks: host:0 (a), host:1 (b), host:2 (c), host:3 (d)",
      "ok: board control-board",
    ]);
  });
});

describe("board control: disks", () => {
  it("keeps a pulled disk pulled across a board reset, and says so when it is pulled again", () => {
    const { board: b, control } = powered();
    answer(b, control, { object: "disk", name: "host:1", action: "fail" });
    expect(b.reset()).toBe(true);
    expect(b.controllersOf("host")[0]!.device.isPulled(1)).toBe(true);
    expect(answer(b, control, { object: "disk", name: "host:1", action: "fail" })).toMatchObject({ ok: true, message: "disk host:1 (b) was already pulled" });
  });

  it("replacing a file disk renames its image aside, never over an earlier one, and starts a blank image of its size", () => {
    const { board: b, control, dataDir } = powered();
    b.disk("a")!.write(0, new Uint8Array(512).fill(7));
    b.disk("a")!.flush();
    const first = answer(b, control, { object: "disk", name: "host:0", action: "replace" });
    expect(first).toMatchObject({ ok: true, message: expect.stringContaining(`; the old image is ${join(dataDir, "a.img.replaced-1")}`) });
    expect(readFileSync(join(dataDir, "a.img.replaced-1")).subarray(0, 512)).toEqual(Buffer.alloc(512, 7));
    expect(statSync(join(dataDir, "a.img")).size).toBe(1 * MIB);
    expect(readFileSync(join(dataDir, "a.img")).every((byte) => byte === 0)).toBe(true);
    answer(b, control, { object: "disk", name: "host:0", action: "replace" });
    expect(existsSync(join(dataDir, "a.img.replaced-2"))).toBe(true);
    expect(readFileSync(join(dataDir, "a.img.replaced-1")).subarray(0, 512)).toEqual(Buffer.alloc(512, 7));
    expect(b.controllersOf("host")[0]!.device.isPulled(0)).toBe(false);
    b.powerOff();
  });
});

describe("board control: status", () => {
  it("reports the board, its time and the latest state line of each volume, by index", () => {
    const { board: b, control } = powered();
    const status = () => answer(b, control, { object: "status" });
    expect(status()).toMatchObject({ ok: true, status: { board: "control-board", volumes: [] } });
    control.observeConsole("host", "volume index=1 name=thin type=thin state=optimal used=3 chunks=64");
    control.observeConsole("host", "volume index=0 name=r5 type=raid5 state=degraded");
    control.observeConsole("host", "tts: serving 2 volumes");
    control.observeConsole("host", "volume index=0 name=r5 type=raid5 state=rebuilding progress=40");
    const got = status();
    expect(got).toMatchObject({ ok: true, boardTimeNs: b.clock.nowNs, message: `board control-board at ${(b.clock.nowNs / 1e9).toFixed(6)} s` });
    expect(got.ok && got.status!.volumes.map((v) => v.line)).toEqual([
      "volume index=0 name=r5 type=raid5 state=rebuilding progress=40",
      "volume index=1 name=thin type=thin state=optimal used=3 chunks=64",
    ]);
    expect(got.ok && got.status!.volumes[0]!.record).toEqual({ index: 0, name: "r5", type: "raid5", state: "rebuilding", progress: 40 });
  });
});
