// The XOR engine model against docs/hardware.md ("xor-engine"): descriptor chains laid in a bare bus's RAM, the test
// acting as the driver (BARs placed, MSI-X pointed at the MSI region with data 5), the clock stepped by hand to see
// when results land. Then each fault the table lists, that a fault writes nothing but the descriptor's status, the
// reset, the injected lies the fuzzer uses, and (fast-check) that the result is the byte-wise XOR of the sources.
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import {
  XOR_BYTE_COUNT_MAX, XOR_BYTES_PER_NS, XOR_CAUSE_CHAIN_END, XOR_CAUSE_DESCRIPTOR_DONE, XOR_CAUSE_ERROR, XOR_CLASS_CODE,
  XOR_CONTROL_INTERRUPT, XOR_CONTROL_XOR, XOR_CONTROL_ZERO_CHECK, XOR_CTRL, XOR_CTRL_RESET, XOR_CTRL_START,
  XOR_DESC_BASE_HI, XOR_DESC_BASE_LO, XOR_DESC_STATUS_DONE, XOR_DESC_STATUS_ERROR, XOR_DESC_STATUS_ZERO, XOR_DESCRIPTOR_NS,
  XOR_DEVICE_ID, XOR_ERROR, XOR_ERROR_DESC_HI, XOR_ERROR_DESC_LO, XOR_INT_CAUSE, XOR_STATUS, XOR_STATUS_BUSY, XOR_STATUS_ERROR,
  XOR_VENDOR_ID, XorEngine, XorError,
} from "../../../host/devices/xor_engine.ts";
import { BusHarness } from "../../support/bus_harness.ts";

const SLOT = 5;
const VECTOR = 5;
const XOR = XOR_CONTROL_XOR;
const CHECK = XOR_CONTROL_ZERO_CHECK;

interface Desc {
  destination: bigint;
  byteCount: number;
  control?: number;
  sources: bigint[];
  sourceCount?: number; // the sources' length when absent
  next?: bigint;
}

let cpu: BusHarness;
let engine: XorEngine;
let registers: bigint;

// Lays a 96-byte descriptor at `at`, status 0xEE so a write-back is visible.
function putDesc(at: number, d: Desc): void {
  const view = new DataView(cpu.ram.buffer, at, 96);
  view.setBigUint64(0, d.next ?? 0n, true);
  view.setBigUint64(8, d.destination, true);
  view.setUint32(16, d.byteCount, true);
  view.setUint32(20, d.control ?? XOR, true);
  view.setUint32(24, d.sourceCount ?? d.sources.length, true);
  view.setUint32(28, 0xee, true);
  for (let s = 0; s < 8; s++) view.setBigUint64(32 + 8 * s, d.sources[s] ?? 0n, true);
}
const descStatus = (at: number): number => new DataView(cpu.ram.buffer).getUint32(at + 28, true);
function fill(at: number, lengthBytes: number, seed: number): Uint8Array {
  const bytes = Uint8Array.from({ length: lengthBytes }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);
  cpu.ram.set(bytes, at);
  return bytes;
}
const bytesAt = (at: number, n: number): number[] => [...cpu.ram.subarray(at, at + n)];
const xorOf = (...arrays: Uint8Array[]): number[] => [...arrays[0]!].map((_, i) => arrays.reduce((acc, a) => acc ^ a[i]!, 0));
const reg = (offset: number): number => Number(cpu.bus.read(registers + BigInt(offset), 4));
const setReg = (offset: number, value: number): void => cpu.bus.write(registers + BigInt(offset), 4, value);
function start(at: number): void {
  setReg(XOR_DESC_BASE_LO, at);
  setReg(XOR_DESC_BASE_HI, 0);
  setReg(XOR_CTRL, XOR_CTRL_START);
}
function runAll(): void {
  for (let i = 0; i < 100_000 && cpu.clock.runNext(); i++);
  expect(cpu.clock.pendingCount()).toBe(0);
}

beforeEach(() => {
  cpu = new BusHarness(4, "host");
  engine = new XorEngine({ name: "host.slot5", clock: cpu.clock, log: (m) => cpu.log.push(m) });
  cpu.plug(SLOT, engine);
  const bars = cpu.enable(SLOT);
  registers = bars.get(0)!;
  cpu.enableMsix(SLOT, bars.get(4)!, 1, VECTOR);
});

describe("xor-engine: identity", () => {
  it("answers config space with its vendor, device and class code, a 4 KiB BAR 0 and an MSI-X table in BAR 4", () => {
    // Proves what enumeration sees: the IDs and class docs/hardware.md lists, and both BARs placed by the sizing protocol.
    expect(cpu.cfgRead(SLOT, 0, 2)).toBe(XOR_VENDOR_ID);
    expect(cpu.cfgRead(SLOT, 2, 2)).toBe(XOR_DEVICE_ID);
    expect(cpu.cfgRead(SLOT, 8) >>> 8).toBe(XOR_CLASS_CODE);
    expect(registers).not.toBe(0n);
    expect(reg(XOR_STATUS)).toBe(0);
    expect(reg(XOR_INT_CAUSE)).toBe(0);
  });
});

describe("xor-engine: chains", () => {
  it("XORs three sources into the destination after its board time, writes DONE, and signals chain end", () => {
    // Proves the timing (500 ns + 4 × 4096 B / 2 B/ns) and the result: nothing lands before, the XOR after.
    const a = fill(0x1_0000, 4096, 1);
    const b = fill(0x1_1000, 4096, 2);
    const c = fill(0x1_2000, 4096, 3);
    putDesc(0x1000, { destination: 0x2_0000n, byteCount: 4096, sources: [0x1_0000n, 0x1_1000n, 0x1_2000n] });
    start(0x1000);
    expect(reg(XOR_STATUS)).toBe(XOR_STATUS_BUSY);
    const dueNs = XOR_DESCRIPTOR_NS + (4 * 4096) / XOR_BYTES_PER_NS;
    cpu.clock.advanceTo(dueNs - 1);
    expect(bytesAt(0x2_0000, 16)).toEqual(new Array(16).fill(0));
    expect(descStatus(0x1000)).toBe(0xee);
    cpu.clock.advanceTo(dueNs);
    expect(bytesAt(0x2_0000, 4096)).toEqual(xorOf(a, b, c));
    expect(descStatus(0x1000)).toBe(XOR_DESC_STATUS_DONE);
    expect(reg(XOR_STATUS)).toBe(0);
    expect(reg(XOR_INT_CAUSE)).toBe(XOR_CAUSE_CHAIN_END);
    expect(cpu.irqs).toEqual([VECTOR]);
    setReg(XOR_INT_CAUSE, XOR_CAUSE_CHAIN_END); // RW1C
    expect(reg(XOR_INT_CAUSE)).toBe(0);
    expect(engine.guestErrorCount).toBe(0);
  });

  it("walks a chain in order, signalling descriptor-done for each that asks, and accumulates in place", () => {
    // Proves next-pointer chaining, the interrupt bit per descriptor, and a destination equal to source 1.
    const a = fill(0x1_0000, 512, 4);
    const b = fill(0x1_1000, 512, 5);
    const c = fill(0x1_2000, 1024, 6);
    const d = fill(0x1_3000, 1024, 7);
    putDesc(0x1000, { destination: 0x1_0000n, byteCount: 512, sources: [0x1_0000n, 0x1_1000n], control: XOR | XOR_CONTROL_INTERRUPT, next: 0x1080n });
    putDesc(0x1080, { destination: 0x3_0000n, byteCount: 1024, sources: [0x1_2000n, 0x1_3000n] });
    start(0x1000);
    runAll();
    expect(bytesAt(0x1_0000, 512)).toEqual(xorOf(a, b));
    expect(bytesAt(0x3_0000, 1024)).toEqual(xorOf(c, d));
    expect([descStatus(0x1000), descStatus(0x1080)]).toEqual([XOR_DESC_STATUS_DONE, XOR_DESC_STATUS_DONE]);
    expect(reg(XOR_INT_CAUSE)).toBe(XOR_CAUSE_DESCRIPTOR_DONE | XOR_CAUSE_CHAIN_END);
    expect(cpu.irqs).toEqual([VECTOR, VECTOR]);
    expect(engine.stats).toEqual({ descriptors: 2, bytes: 1536, faults: 0 });
  });

  it("sets the zero-result flag only when asked and the XOR is all zeros; a check without XOR writes nothing", () => {
    // Proves the zero check: equal sources XOR to zero (ZERO set), different ones do not; ZERO_CHECK alone leaves the
    // destination untouched (a parity scrub), and a destination outside RAM is then no fault.
    const a = fill(0x1_0000, 256, 8);
    cpu.ram.set(a, 0x1_1000);
    fill(0x1_2000, 256, 9);
    putDesc(0x1000, { destination: 0x2_0000n, byteCount: 256, sources: [0x1_0000n, 0x1_1000n], control: XOR | CHECK, next: 0x1080n });
    putDesc(0x1080, { destination: 0x2_1000n, byteCount: 256, sources: [0x1_0000n, 0x1_2000n], control: XOR | CHECK, next: 0x1100n });
    putDesc(0x1100, { destination: 0x8000_0000n, byteCount: 256, sources: [0x1_0000n, 0x1_1000n], control: CHECK, next: 0x1180n });
    putDesc(0x1180, { destination: 0x2_2000n, byteCount: 256, sources: [0x1_0000n, 0x1_1000n] });
    start(0x1000);
    runAll();
    expect(descStatus(0x1000)).toBe(XOR_DESC_STATUS_DONE | XOR_DESC_STATUS_ZERO);
    expect(descStatus(0x1080)).toBe(XOR_DESC_STATUS_DONE);
    expect(descStatus(0x1100)).toBe(XOR_DESC_STATUS_DONE | XOR_DESC_STATUS_ZERO);
    expect(descStatus(0x1180)).toBe(XOR_DESC_STATUS_DONE); // no check asked: no flag, though the result is zero
    expect(reg(XOR_STATUS)).toBe(0);
  });
});

describe("xor-engine: faults", () => {
  // Each bad descriptor stops the chain with its code: status ERROR | code << 8 written back, STATUS.error, ERROR,
  // ERROR_DESC, the cause's error bit and an interrupt; the destination keeps its bytes and the next descriptor
  // never runs.
  const cases: [string, Partial<Desc>, XorError][] = [
    ["a count of zero", { byteCount: 0 }, XorError.ByteCountZero],
    ["a count over the maximum", { byteCount: XOR_BYTE_COUNT_MAX + 8 }, XorError.ByteCountOversize],
    ["no sources", { sourceCount: 0 }, XorError.SourceCount],
    ["nine sources", { sourceCount: 9 }, XorError.SourceCount],
    ["a count not a multiple of 8", { byteCount: 100 }, XorError.Misaligned],
    ["a misaligned source", { sources: [0x1_0000n, 0x1_1004n] }, XorError.Misaligned],
    ["a misaligned destination", { destination: 0x2_0001n }, XorError.Misaligned],
    ["no operation", { control: 0 }, XorError.NoOperation],
    ["a source outside RAM", { sources: [0x1_0000n, 0x8000_0000n] }, XorError.SourceFault],
    ["a source running past the end of RAM", { sources: [0x1_0000n, 0x3f_ff00n] }, XorError.SourceFault],
    ["a destination outside RAM", { destination: 0x9000_0000n }, XorError.DestinationFault],
    ["a destination on the engine's own registers", { destination: 0xc000_0000n }, XorError.DestinationFault],
  ];
  it.each(cases)("%s", (_name, change, code) => {
    fill(0x1_0000, 512, 1);
    fill(0x1_1000, 512, 2);
    const before = bytesAt(0x2_0000, 512);
    putDesc(0x1000, { destination: 0x2_0000n, byteCount: 512, sources: [0x1_0000n, 0x1_1000n], next: 0x1080n, ...change });
    putDesc(0x1080, { destination: 0x2_1000n, byteCount: 512, sources: [0x1_0000n, 0x1_1000n] });
    start(0x1000);
    runAll();
    expect(descStatus(0x1000)).toBe(XOR_DESC_STATUS_ERROR | (code << 8));
    expect(descStatus(0x1080)).toBe(0xee);
    expect(bytesAt(0x2_0000, 512)).toEqual(before);
    expect(bytesAt(0x2_1000, 8)).toEqual(new Array(8).fill(0));
    expect(reg(XOR_STATUS)).toBe(XOR_STATUS_ERROR);
    expect(reg(XOR_ERROR)).toBe(code);
    expect([reg(XOR_ERROR_DESC_LO), reg(XOR_ERROR_DESC_HI)]).toEqual([0x1000, 0]);
    expect(reg(XOR_INT_CAUSE)).toBe(XOR_CAUSE_ERROR);
    expect(cpu.irqs).toEqual([VECTOR]);
    expect(engine.stats.faults).toBe(1);
  });

  it("faults on a descriptor it cannot read or that is misaligned, writing no status", () => {
    // Proves the two faults with no descriptor to write to: an address outside RAM, and one not 32-aligned.
    start(0x8000_0000);
    runAll();
    expect([reg(XOR_STATUS), reg(XOR_ERROR), reg(XOR_ERROR_DESC_LO)]).toEqual([XOR_STATUS_ERROR, XorError.DescriptorUnreadable, 0x8000_0000]);
    putDesc(0x1010, { destination: 0x2_0000n, byteCount: 64, sources: [0x1_0000n] });
    start(0x1010);
    runAll();
    expect([reg(XOR_STATUS), reg(XOR_ERROR)]).toEqual([XOR_STATUS_ERROR, XorError.DescriptorMisaligned]);
    expect(descStatus(0x1010)).toBe(0xee);
  });

  it("stops a chain that loops after XOR_CHAIN_DESCRIPTORS_MAX descriptors", () => {
    // Proves a descriptor pointing at itself cannot keep the engine busy for ever.
    fill(0x1_0000, 8, 1);
    putDesc(0x1000, { destination: 0x2_0000n, byteCount: 8, sources: [0x1_0000n], next: 0x1000n });
    start(0x1000);
    runAll();
    expect([reg(XOR_STATUS), reg(XOR_ERROR)]).toEqual([XOR_STATUS_ERROR, XorError.ChainTooLong]);
  });

  it("faults every descriptor when bus mastering is off, and ignores a start while busy", () => {
    // Proves DMA is gated by Bus Master (PCI Command bit 2), and START while a chain runs changes nothing.
    fill(0x1_0000, 64, 1);
    putDesc(0x1000, { destination: 0x2_0000n, byteCount: 64, sources: [0x1_0000n] });
    start(0x1000);
    setReg(XOR_CTRL, XOR_CTRL_START);
    expect(engine.guestErrorCount).toBe(1);
    runAll();
    expect(descStatus(0x1000)).toBe(XOR_DESC_STATUS_DONE);
    cpu.cfgWrite(SLOT, 0x04, 0b010, 2);
    start(0x1000);
    runAll();
    expect(reg(XOR_ERROR)).toBe(XorError.DescriptorUnreadable);
  });
});

describe("xor-engine: reset and MSI-X", () => {
  it("RESET stops the chain in flight: no result, no status, registers at their power-on values", () => {
    fill(0x1_0000, 4096, 1);
    putDesc(0x1000, { destination: 0x2_0000n, byteCount: 4096, sources: [0x1_0000n] });
    start(0x1000);
    setReg(XOR_CTRL, XOR_CTRL_RESET);
    runAll();
    expect(descStatus(0x1000)).toBe(0xee);
    expect(bytesAt(0x2_0000, 8)).toEqual(new Array(8).fill(0));
    for (const r of [XOR_STATUS, XOR_DESC_BASE_LO, XOR_INT_CAUSE, XOR_ERROR, XOR_ERROR_DESC_LO]) expect(reg(r)).toBe(0);
    expect(cpu.irqs).toEqual([]);
  });

  it("holds its interrupt pending while the vector is masked and sends it once unmasked", () => {
    // Proves MSI-X masking (PCI Local Bus 3.0): the message waits in the PBA, then goes out when the mask clears.
    const table = 0n; // the table sits at the start of BAR 4
    const bar4 = (cpu.cfgRead(SLOT, 0x20) & ~0xf) >>> 0;
    cpu.bus.write(BigInt(bar4) + table + 12n, 4, 1);
    fill(0x1_0000, 64, 1);
    putDesc(0x1000, { destination: 0x2_0000n, byteCount: 64, sources: [0x1_0000n] });
    start(0x1000);
    runAll();
    expect(cpu.irqs).toEqual([]);
    expect(Number(cpu.bus.read(BigInt(bar4) + 0x800n, 4)) & 1).toBe(1);
    cpu.bus.write(BigInt(bar4) + table + 12n, 4, 0);
    expect(cpu.irqs).toEqual([VECTOR]);
  });

  it("logs bad register accesses as guest errors and reads them as all ones", () => {
    expect(Number(cpu.bus.read(registers + 0x40n, 4))).toBe(0xffff_ffff);
    expect(Number(cpu.bus.read(registers + BigInt(XOR_STATUS), 2))).toBe(0xffff);
    setReg(XOR_ERROR, 1); // read-only
    expect(reg(XOR_ERROR)).toBe(0);
    expect(engine.guestErrorCount).toBe(3);
  });
});

describe("xor-engine: injected lies (the fuzzer's hostile engine)", () => {
  it("writes a garbage status, garbage results, unasked completions, errors, storms and garbage causes as armed", () => {
    fill(0x1_0000, 64, 1);
    putDesc(0x1000, { destination: 0x2_0000n, byteCount: 64, sources: [0x1_0000n] });
    engine.inject({ kind: "status-garbage-next", value: 0x1234_5678 });
    start(0x1000);
    runAll();
    expect(descStatus(0x1000)).toBe(0x1234_5678);
    expect(bytesAt(0x2_0000, 8)).toEqual(new Array(8).fill(0)); // no work done
    engine.inject({ kind: "destination-garbage-next", value: 0xa5 });
    start(0x1000);
    runAll();
    expect(bytesAt(0x2_0000, 64)).toEqual(new Array(64).fill(0xa5));
    expect(descStatus(0x1000)).toBe(XOR_DESC_STATUS_DONE);
    engine.inject({ kind: "error-next", code: 77 });
    start(0x1000);
    runAll();
    expect(descStatus(0x1000)).toBe(XOR_DESC_STATUS_ERROR | (77 << 8));
    expect(reg(XOR_ERROR)).toBe(77);
    cpu.irqs.length = 0;
    expect(engine.descriptorsSeen).toEqual([0x1000n]);
    engine.inject({ kind: "complete-unsubmitted", seen: 3, value: 0x4321 });
    expect(descStatus(0x1000)).toBe(0x4321);
    engine.inject({ kind: "interrupt-storm", count: 5 });
    engine.inject({ kind: "cause-garbage", value: 0xf0 });
    expect(cpu.irqs).toEqual(new Array(7).fill(VECTOR));
    expect(reg(XOR_INT_CAUSE) & 0xf0).toBe(0xf0);
    engine.inject({ kind: "never-complete-next" });
    start(0x1000);
    runAll();
    expect(reg(XOR_STATUS)).toBe(XOR_STATUS_BUSY);
    setReg(XOR_CTRL, XOR_CTRL_RESET);
    expect(reg(XOR_STATUS)).toBe(0);
  });
});

describe("xor-engine: property", () => {
  it("the destination is the byte-wise XOR of 1..8 random sources of random 8-byte-multiple lengths", () => {
    // Proves the arithmetic for any input: fast-check draws the sources' bytes, their count and the length.
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 64 }).chain((words) => fc.array(fc.uint8Array({ minLength: words * 8, maxLength: words * 8 }), { minLength: 1, maxLength: 8 })),
      fc.boolean(),
      (sources, check) => {
        const lengthBytes = sources[0]!.length;
        sources.forEach((s, i) => cpu.ram.set(s, 0x1_0000 + i * 0x1000));
        cpu.ram.fill(0x5a, 0x2_0000, 0x2_0000 + lengthBytes + 8);
        putDesc(0x1000, { destination: 0x2_0000n, byteCount: lengthBytes, sources: sources.map((_, i) => BigInt(0x1_0000 + i * 0x1000)), control: XOR | (check ? CHECK : 0) });
        start(0x1000);
        runAll();
        const expected = xorOf(...sources);
        expect(bytesAt(0x2_0000, lengthBytes)).toEqual(expected);
        expect(cpu.ram[0x2_0000 + lengthBytes]).toBe(0x5a); // nothing past the count
        const zero = check && expected.every((b) => b === 0);
        expect(descStatus(0x1000)).toBe(XOR_DESC_STATUS_DONE | (zero ? XOR_DESC_STATUS_ZERO : 0));
      },
    ), { numRuns: 200, seed: 16 });
  });
});
