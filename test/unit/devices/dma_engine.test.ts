// The DMA engine against docs/hardware.md ("DMA engine"): descriptor chains built in a bare storage processor's RAM,
// an iop-bridge connecting it to a bare host bus so copies can go through the outbound window and through BAR 2, and
// the storage bus's virtual clock stepped by hand to check when copies land and when the interrupt comes.
import { beforeEach, describe, expect, it } from "vitest";
import { DmaEngine } from "../../../host/devices/dma_engine.ts";
import { createIopBridge } from "../../../host/devices/iop_bridge.ts";
import { BusHarness } from "../../support/bus_harness.ts";

// docs/hardware.md, "Local bus map".
const DMA_BASE = 0xf001_0000n;
const OUTBOUND_BASE = 0x1_0000_0000n;
const UNMAPPED = 0x8000_0000n; // nothing decodes it on either bus
// Registers and bits, from the table.
const CTRL = 0x00;
const STATUS = 0x04;
const DESC_LO = 0x08;
const DESC_HI = 0x0c;
const LVEC = 0x10;
const START = 1;
const ABORT = 2;
const BUSY = 1;
const DONE = 2;
const ERROR = 4;
const LVEC_RESET = 0x21;

interface Desc {
  source: bigint;
  destination: bigint;
  lengthBytes: number;
  control?: number;
  next?: number;
}

let host: BusHarness;
let storage: BusHarness;
let engine: DmaEngine;
let hostBar2: bigint;

// Lays a 32-byte descriptor at `at` in `ram`, status 0xEE so a write-back is visible.
function putDesc(ram: Uint8Array, at: number, d: Desc): void {
  const view = new DataView(ram.buffer, ram.byteOffset + at, 32);
  view.setBigUint64(0, d.source, true);
  view.setBigUint64(8, d.destination, true);
  view.setUint32(16, d.lengthBytes, true);
  view.setUint32(20, d.control ?? 0, true);
  view.setUint32(24, d.next ?? 0, true);
  view.setUint32(28, 0xee, true);
}
function descStatus(ram: Uint8Array, at: number): number {
  return new DataView(ram.buffer, ram.byteOffset).getUint32(at + 28, true);
}
function fill(ram: Uint8Array, at: number, lengthBytes: number, seed: number): Uint8Array {
  const bytes = Uint8Array.from({ length: lengthBytes }, (_, i) => (i * 7 + seed) & 0xff);
  ram.set(bytes, at);
  return bytes;
}
function reg(offset: number): number {
  return Number(storage.bus.read(DMA_BASE + BigInt(offset), 4));
}
function setReg(offset: number, value: number): void {
  storage.bus.write(DMA_BASE + BigInt(offset), 4, value);
}
function start(descAddress: number): void {
  setReg(DESC_LO, descAddress);
  setReg(DESC_HI, 0);
  setReg(CTRL, START);
}
// Runs every pending event; bounded so a model that reschedules forever fails the test instead of hanging it.
function runAll(clock: BusHarness["clock"]): void {
  for (let i = 0; i < 100_000 && clock.runNext(); i++);
  expect(clock.pendingCount()).toBe(0);
}

beforeEach(() => {
  host = new BusHarness(4, "host");
  storage = new BusHarness(4, "storage");
  const bridge = createIopBridge({
    name: "iop0",
    storageMemory: storage.memory,
    storageRamBytes: 4 << 20,
    raiseLocalIrq: (vector) => storage.irqs.push(vector),
    log: (m) => storage.log.push(m),
  });
  host.plug(1, bridge.hostFunction);
  hostBar2 = host.enable(1).get(2)!;
  storage.bus.map(OUTBOUND_BASE, 1n << 32n, bridge.outboundWindow);
  engine = new DmaEngine({ name: "storage.dma", bus: storage.bus, clock: storage.clock, raiseIrq: (v) => storage.irqs.push(v), log: (m) => storage.log.push(m) });
  storage.bus.map(DMA_BASE, 4096n, engine);
});

describe("DMA engine", () => {
  it("copies a RAM→RAM chain one descriptor at a time, each after lengthBytes / 4 GB/s, then interrupts", () => {
    // Proves the timing and the write-back: nothing moves before a descriptor's board time (4096 B = 1024 ns,
    // 1000 B = 250 ns), each status turns 1 as its copy lands, and the interrupt (asked for by the second
    // descriptor's control bit 0) comes with STATUS.done exactly at the end of the chain.
    const a = fill(storage.ram, 0x1_0000, 4096, 1);
    const b = fill(storage.ram, 0x1_1000, 1000, 2);
    putDesc(storage.ram, 0x1000, { source: 0x1_0000n, destination: 0x2_0000n, lengthBytes: 4096, next: 0x1020 });
    putDesc(storage.ram, 0x1020, { source: 0x1_1000n, destination: 0x2_1000n, lengthBytes: 1000, control: 1 });
    start(0x1000);
    expect(reg(STATUS)).toBe(BUSY);
    storage.clock.advanceTo(1023);
    expect(storage.ram[0x2_0000]).toBe(0);
    expect(descStatus(storage.ram, 0x1000)).toBe(0xee);
    storage.clock.advanceTo(1024);
    expect([...storage.ram.subarray(0x2_0000, 0x2_1000)]).toEqual([...a]);
    expect(descStatus(storage.ram, 0x1000)).toBe(1);
    expect(descStatus(storage.ram, 0x1020)).toBe(0xee);
    storage.clock.advanceTo(1024 + 249);
    expect(storage.irqs).toEqual([]);
    storage.clock.advanceTo(1024 + 250);
    expect([...storage.ram.subarray(0x2_1000, 0x2_1000 + 1000)]).toEqual([...b]);
    expect(descStatus(storage.ram, 0x1020)).toBe(1);
    expect(storage.irqs).toEqual([LVEC_RESET]);
    expect(reg(STATUS)).toBe(DONE);
    setReg(STATUS, DONE); // RW1C
    expect(reg(STATUS)).toBe(0);
    expect(storage.log).toEqual([]);
  });

  it("raises no interrupt at a normal end when no descriptor asked for one", () => {
    // Proves the interrupt is conditional: control bit 0 clear everywhere → done, but no vector raised.
    fill(storage.ram, 0x1_0000, 64, 3);
    putDesc(storage.ram, 0x1000, { source: 0x1_0000n, destination: 0x2_0000n, lengthBytes: 64 });
    start(0x1000);
    runAll(storage.clock);
    expect(reg(STATUS)).toBe(DONE);
    expect(storage.irqs).toEqual([]);
  });

  it("copies RAM → outbound window → host RAM, and a host-side engine copies host RAM → BAR 2 → storage RAM", () => {
    // Proves the engine reaches other buses through windows by bus DMA alone: the storage engine writes into host RAM
    // through the outbound window, and an engine on the host bus writes into storage RAM through the bridge's BAR 2.
    const out = fill(storage.ram, 0x1_0000, 3000, 4);
    putDesc(storage.ram, 0x1000, { source: 0x1_0000n, destination: OUTBOUND_BASE + 0x5_0000n, lengthBytes: 3000, control: 1 });
    start(0x1000);
    runAll(storage.clock);
    expect([...host.ram.subarray(0x5_0000, 0x5_0000 + 3000)]).toEqual([...out]);
    expect(descStatus(storage.ram, 0x1000)).toBe(1);

    const hostEngine = new DmaEngine({ name: "host.dma", bus: host.bus, clock: host.clock, raiseIrq: (v) => host.irqs.push(v), log: (m) => host.log.push(m) });
    host.bus.map(DMA_BASE, 4096n, hostEngine);
    const inbound = fill(host.ram, 0x6_0000, 2048, 5);
    putDesc(host.ram, 0x2000, { source: 0x6_0000n, destination: hostBar2 + 0x7_0000n, lengthBytes: 2048, control: 1 });
    host.bus.write(DMA_BASE + BigInt(DESC_LO), 4, 0x2000);
    host.bus.write(DMA_BASE + BigInt(CTRL), 4, START);
    runAll(host.clock);
    expect([...storage.ram.subarray(0x7_0000, 0x7_0000 + 2048)]).toEqual([...inbound]);
    expect(host.irqs).toEqual([LVEC_RESET]);
  });

  it("a source fault writes status 2, stops the chain with STATUS.error and interrupts", () => {
    // Proves fault handling on the read side: the faulting descriptor gets 2, the next one is never touched, the
    // destination is unchanged, and the interrupt comes although no descriptor asked for one.
    putDesc(storage.ram, 0x1000, { source: UNMAPPED, destination: 0x2_0000n, lengthBytes: 256, next: 0x1020 });
    putDesc(storage.ram, 0x1020, { source: 0x1_0000n, destination: 0x2_1000n, lengthBytes: 256 });
    storage.ram[0x2_0000] = 0x77;
    start(0x1000);
    runAll(storage.clock);
    expect(descStatus(storage.ram, 0x1000)).toBe(2);
    expect(descStatus(storage.ram, 0x1020)).toBe(0xee);
    expect(storage.ram[0x2_0000]).toBe(0x77);
    expect(reg(STATUS)).toBe(ERROR);
    expect(storage.irqs).toEqual([LVEC_RESET]);
    expect(storage.log.join("\n")).toMatch(/source fault/);
  });

  it("a destination fault beyond the outbound window writes status 3", () => {
    // Proves a fault on the far side of a window surfaces: the outbound window decodes the address, but the host bus
    // has nothing there, so the write comes back as a fault and the descriptor says destination.
    fill(storage.ram, 0x1_0000, 256, 6);
    putDesc(storage.ram, 0x1000, { source: 0x1_0000n, destination: OUTBOUND_BASE + UNMAPPED, lengthBytes: 256 });
    start(0x1000);
    runAll(storage.clock);
    expect(descStatus(storage.ram, 0x1000)).toBe(3);
    expect(reg(STATUS)).toBe(ERROR);
    expect(storage.irqs).toEqual([LVEC_RESET]);
  });

  it("a loop of descriptors ends with a fault after 4096 descriptors", () => {
    // Proves the chain bound exactly: a descriptor whose next is itself, 4 bytes (1 ns) each, ends at 4096 ns with
    // STATUS.error and one interrupt, having completed every one of those 4096 runs.
    fill(storage.ram, 0x1_0000, 4, 7);
    putDesc(storage.ram, 0x1000, { source: 0x1_0000n, destination: 0x2_0000n, lengthBytes: 4, next: 0x1000 });
    start(0x1000);
    runAll(storage.clock);
    expect(storage.clock.nowNs).toBe(4096);
    expect(reg(STATUS)).toBe(ERROR);
    expect(descStatus(storage.ram, 0x1000)).toBe(1);
    expect(storage.irqs).toEqual([LVEC_RESET]);
    expect(storage.log.join("\n")).toMatch(/4096/);
  });

  it("abort stops the chain before the copy lands, with no status and no interrupt", () => {
    // Proves abort: the descriptor in flight never copies or writes back, busy clears, and nothing happens later.
    fill(storage.ram, 0x10_0000, 1 << 20, 8);
    putDesc(storage.ram, 0x1000, { source: 0x10_0000n, destination: 0x20_0000n, lengthBytes: 1 << 20, control: 1 });
    start(0x1000);
    storage.clock.advanceTo(1000);
    setReg(CTRL, ABORT);
    expect(reg(STATUS)).toBe(0);
    storage.clock.advanceTo(1_000_000);
    expect(storage.ram[0x20_0001]).toBe(0);
    expect(descStatus(storage.ram, 0x1000)).toBe(0xee);
    expect(storage.irqs).toEqual([]);
  });

  it("a misaligned descriptor, a start while busy and bad registers are guest errors; reset restores LVEC", () => {
    // Proves the checks around the chain: a descriptor not 16-aligned errors at once with an interrupt; a second
    // start while busy is ignored (one chain, one completion); LVEC reads its reset value again after reset().
    start(0x1008);
    expect(reg(STATUS)).toBe(ERROR);
    expect(storage.irqs).toEqual([LVEC_RESET]);
    setReg(STATUS, ERROR);

    setReg(LVEC, 0x22);
    putDesc(storage.ram, 0x1000, { source: 0x1_0000n, destination: 0x2_0000n, lengthBytes: 400, control: 1 });
    start(0x1000);
    start(0x1000);
    expect(storage.log.join("\n")).toMatch(/start while busy/);
    runAll(storage.clock);
    expect(storage.irqs).toEqual([LVEC_RESET, 0x22]);
    expect(storage.clock.nowNs).toBe(100);
    expect(storage.bus.read(DMA_BASE + 0x40n, 4)).toBe(0xffff_ffff);
    engine.reset();
    expect(reg(LVEC)).toBe(LVEC_RESET);
    expect(reg(STATUS)).toBe(0);
    expect(reg(DESC_LO)).toBe(0);
  });
});
