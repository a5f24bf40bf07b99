// The bench's per-layer split (host/sim/layer_meter.ts): time lands in the innermost layer, each moment once, and a
// board with a meter computes exactly what it computes without one (the same trace, line for line).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Board } from "../../../host/board/board.ts";
import { DEFAULT_BOARD_PATH, loadBoardFile } from "../../../host/board/load.ts";
import { VirtualClock } from "../../../host/sim/clock.ts";
import { Layer, LayerMeter } from "../../../host/sim/layer_meter.ts";
import { Trace } from "../../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../../tools/build/firmware.ts";
import { firmwareModule } from "../../support/board.ts";

describe("LayerMeter", () => {
  it("charges nested time to the innermost layer and each moment once", () => {
    let now = 0;
    const meter = new LayerMeter(() => now);
    now = 5; // outside: not a layer's
    const outer = meter.enter(Layer.Firmware);
    now = 7;
    const inner = meter.enter(Layer.DiskController);
    now = 10;
    const innermost = meter.enter(Layer.DiskIo);
    now = 14;
    meter.leave(innermost);
    now = 15;
    meter.leave(inner);
    now = 20;
    meter.leave(outer);
    now = 100;
    expect(meter.current).toBe(Layer.Outside);
    expect(meter.snapshot()).toEqual({ nic: 0, firmware: 7, mu: 0, controller: 4, disk: 4, other: 0 });
    expect(meter.ms[Layer.Outside]).toBe(5);
  });

  it("charges a clock event to the layer that scheduled it", () => {
    let now = 0;
    const clock = new VirtualClock();
    const meter = new LayerMeter(() => now);
    clock.meter = meter;
    const outer = meter.enter(Layer.Nic);
    clock.after(10, () => {
      now += 3;
    });
    meter.leave(outer);
    clock.after(20, () => {
      now += 100; // scheduled outside every layer: not counted
    });
    clock.advanceTo(30);
    expect(meter.snapshot().nic).toBe(3);
    expect(meter.current).toBe(Layer.Outside);
  });
});

function boot(metered: boolean): { trace: Trace; layers: Record<string, number> } {
  const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-layer-meter-"));
  const trace = new Trace({ keepLines: false });
  let fakeMs = 0;
  const board = new Board({
    spec: loadBoardFile(DEFAULT_BOARD_PATH), firmware: firmwareModule(FIRMWARE_PATH), trace, dataDir,
    ...(metered ? { hostClockMs: () => (fakeMs += 0.001) } : {}),
  });
  try {
    expect(board.powerOn()).toBe(true);
    board.runUntil(300_000_000);
    return { trace, layers: board.firmwareCallStats().layerMs };
  } finally {
    board.powerOff();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe("a board with a layer meter", () => {
  it("runs the same trace as without one, and times the firmware, the messaging units and the controllers", () => {
    const plain = boot(false);
    const metered = boot(true);
    expect(metered.trace.digest()).toBe(plain.trace.digest());
    expect(metered.trace.count).toBe(plain.trace.count);
    expect(plain.layers).toEqual({});
    expect(metered.layers.firmware).toBeGreaterThan(0);
    expect(metered.layers.mu).toBeGreaterThan(0); // the UMA meets the storage processors through their bridges
    expect(metered.layers.controller).toBeGreaterThan(0); // every DDM brings its controller up
    expect(metered.layers.nic).toBeGreaterThan(0); // the TTS sets up the NIC's rings
  });
});
