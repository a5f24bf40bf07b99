// The cluster port and the fabric against docs/hardware.md ("cluster-port"): two bare buses (boards A and B, fabric
// addresses 1 and 2) on one clock, the test acting as each board's driver (rings and regions in RAM, MSI-X vector v
// pointed at the MSI region with data 10 + v). Proves RDMA WRITE/READ and SEND land where the keys say, that a bad,
// revoked or out-of-range key faults, is counted and leaves the target's RAM byte-identical, that a tunneled
// interrupt is raised with the target's own vector configuration only once its data is in memory (and is fenced when
// that data was lost), the bond's failover, duplicates applied once, and (fast-check) that no sequence of hostile
// requests changes a byte of B outside its registered region.
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CLUSTER_PORT_CLASS_CODE, CLUSTER_PORT_DEVICE_ID, CLUSTER_PORT_VECTOR_COUNT, CLUSTER_PORT_VENDOR_ID, CP_ACCESS_REMOTE_READ,
  CP_ACCESS_REMOTE_WRITE, CP_CQ_BASE_LO, CP_CQ_HEAD, CP_CQ_SIZE, CP_CQ_TAIL, CP_CQE_BYTES, CP_CTRL, CP_CTRL_ENABLE,
  CP_CTRL_RESET, CP_FABRIC_ADDRESS, CP_FAILOVER_COUNT, CP_FAULT_COUNT, CP_REGION_ACCESS, CP_REGION_BASE_HI,
  CP_REGION_BASE_LO, CP_REGION_KEY, CP_REGION_LENGTH, CP_REGION_SELECT, CP_RQ_BASE_LO, CP_RQ_SIZE, CP_RQ_TAIL,
  CP_SQ_BASE_LO, CP_SQ_HEAD, CP_SQ_SIZE, CP_SQ_TAIL, CP_STATUS, CP_STATUS_ACTIVE_LINK1, CP_STATUS_ENABLED,
  CP_STATUS_LINK0_UP, CP_WINDOW_DESTINATION, CP_WINDOW_KEY, CP_WINDOW_SELECT, CP_WINDOW_SLOT_BYTES, CP_WR_BYTES, ClusterPort, FABRIC_TIMEOUT_NS, FabricOpcode, FabricStatus,
} from "../../../host/devices/cluster_port.ts";
import { Fabric, FABRIC_LATENCY_NS, type FabricSwitch } from "../../../host/fabric/fabric.ts";
import { VirtualClock } from "../../../host/sim/clock.ts";
import { BusHarness } from "../../support/bus_harness.ts";

const SLOT = 6;
const SQ = 0x1000;
const RQ = 0x2000;
const CQ = 0x3000;
const RING = 64;

interface Completion { tag: number; status: FabricStatus; opcode: FabricOpcode; peer: number; length: number }

// One board: a bus, its cluster port, and the driver's view of the rings.
class Node {
  readonly cpu: BusHarness;
  readonly port: ClusterPort;
  registers = 0n;
  window = 0n;
  sqTail = 0;
  rqTail = 0;
  cqHead = 0;
  readonly irqSnapshots: { vector: number; ram: Uint8Array }[] = [];

  constructor(readonly address: number, clock: VirtualClock, fabric: Fabric, name: string) {
    this.cpu = new BusHarness(4, name);
    this.port = new ClusterPort({ name: `${name}.slot${SLOT}`, clock, fabric, fabricAddress: address, log: (m) => this.cpu.log.push(m) });
    this.cpu.plug(SLOT, this.port);
    const bars = this.cpu.enable(SLOT);
    this.registers = bars.get(0)!;
    this.window = bars.get(4)!;
    this.cpu.enableMsix(SLOT, bars.get(2)!, CLUSTER_PORT_VECTOR_COUNT, 10);
    // Every interrupt, with the RAM as it was when it was raised.
    this.cpu.irqs.push = (...vectors: number[]): number => {
      for (const vector of vectors) this.irqSnapshots.push({ vector, ram: this.cpu.ram.slice(0, 1 << 20) });
      return this.irqSnapshots.length;
    };
  }

  reg(offset: number): number { return Number(this.cpu.bus.read(this.registers + BigInt(offset), 4)); }
  setReg(offset: number, value: number): void { this.cpu.bus.write(this.registers + BigInt(offset), 4, value); }

  start(): void {
    for (const [base, at] of [[SQ, CP_SQ_BASE_LO], [RQ, CP_RQ_BASE_LO], [CQ, CP_CQ_BASE_LO]] as const) this.setReg(at, base);
    this.setReg(CP_SQ_SIZE, RING);
    this.setReg(CP_RQ_SIZE, RING);
    this.setReg(CP_CQ_SIZE, RING);
    this.setReg(CP_CTRL, CP_CTRL_ENABLE);
  }

  register(slot: number, base: number, lengthBytes: number, access: number): number {
    this.setReg(CP_REGION_SELECT, slot);
    this.setReg(CP_REGION_BASE_LO, base);
    this.setReg(CP_REGION_BASE_HI, 0);
    this.setReg(CP_REGION_LENGTH, lengthBytes);
    this.setReg(CP_REGION_ACCESS, access);
    return this.reg(CP_REGION_KEY);
  }

  revoke(slot: number): void {
    this.setReg(CP_REGION_SELECT, slot);
    this.setReg(CP_REGION_ACCESS, 0);
  }

  post(wr: { opcode: number; destination: number; key?: number; local?: number; offset?: bigint; length?: number; tag: number }): void {
    const view = new DataView(this.cpu.ram.buffer, SQ + this.sqTail * CP_WR_BYTES, CP_WR_BYTES);
    view.setUint8(0, wr.opcode);
    view.setUint16(2, wr.destination, true);
    view.setUint32(4, wr.key ?? 0, true);
    view.setBigUint64(8, BigInt(wr.local ?? 0), true);
    view.setBigUint64(16, wr.offset ?? 0n, true);
    view.setUint32(24, wr.length ?? 0, true);
    view.setUint32(28, wr.tag, true);
    this.sqTail = (this.sqTail + 1) % RING;
    this.setReg(CP_SQ_TAIL, this.sqTail);
  }

  postReceive(address: number, lengthBytes: number, tag: number): void {
    const view = new DataView(this.cpu.ram.buffer, RQ + this.rqTail * 16, 16);
    view.setBigUint64(0, BigInt(address), true);
    view.setUint32(8, lengthBytes, true);
    view.setUint32(12, tag, true);
    this.rqTail = (this.rqTail + 1) % RING;
    this.setReg(CP_RQ_TAIL, this.rqTail);
  }

  completions(): Completion[] {
    const out: Completion[] = [];
    const tail = this.reg(CP_CQ_TAIL);
    while (this.cqHead !== tail) {
      const view = new DataView(this.cpu.ram.buffer, CQ + this.cqHead * CP_CQE_BYTES, CP_CQE_BYTES);
      out.push({ tag: view.getUint32(0, true), status: view.getUint8(4), opcode: view.getUint8(5), peer: view.getUint16(6, true), length: view.getUint32(8, true) });
      this.cqHead = (this.cqHead + 1) % RING;
    }
    this.setReg(CP_CQ_HEAD, this.cqHead);
    return out;
  }
}

let clock: VirtualClock;
let fabric: Fabric;
let a: Node;
let b: Node;

function runAll(): void {
  for (let i = 0; i < 100_000 && clock.runNext(); i++);
}
const fillA = (at: number, n: number, seed: number): Uint8Array => {
  const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);
  a.cpu.ram.set(bytes, at);
  return bytes;
};

beforeEach(() => {
  clock = new VirtualClock();
  fabric = new Fabric(clock);
  a = new Node(1, clock, fabric, "a");
  b = new Node(2, clock, fabric, "b");
  a.start();
  b.start();
});

describe("cluster port: identity and registers", () => {
  it("is a PCI function with the documented IDs, class, fabric address and vectors, enabled with all links up", () => {
    expect(a.cpu.cfgRead(SLOT, 0, 2)).toBe(CLUSTER_PORT_VENDOR_ID);
    expect(a.cpu.cfgRead(SLOT, 2, 2)).toBe(CLUSTER_PORT_DEVICE_ID);
    expect(a.cpu.cfgRead(SLOT, 8) >>> 8).toBe(CLUSTER_PORT_CLASS_CODE);
    expect(b.reg(CP_FABRIC_ADDRESS)).toBe(2);
    expect(a.reg(CP_STATUS)).toBe(CP_STATUS_LINK0_UP | 2 | CP_STATUS_ENABLED);
  });

  it("refuses ring setup while enabled and a ring size that is not a power of two", () => {
    a.setReg(CP_SQ_SIZE, 8);
    expect(a.reg(CP_SQ_SIZE)).toBe(RING);
    a.setReg(CP_CTRL, 0);
    a.setReg(CP_SQ_SIZE, 6);
    expect(a.reg(CP_SQ_SIZE)).toBe(RING);
    expect(a.port.guestErrorCount).toBe(2);
  });

  it("hands out a fresh key per registration, and never the same one twice, resets included", () => {
    const first = b.register(0, 0x10000, 4096, CP_ACCESS_REMOTE_WRITE);
    b.revoke(0);
    const second = b.register(0, 0x10000, 4096, CP_ACCESS_REMOTE_WRITE);
    b.setReg(CP_CTRL, CP_CTRL_RESET);
    expect(b.reg(CP_REGION_KEY)).toBe(0);
    const third = b.register(0, 0x10000, 4096, CP_ACCESS_REMOTE_WRITE);
    expect(new Set([first, second, third]).size).toBe(3);
    expect(first & 0xff).toBe(0);
    expect(b.register(1, 0x20000, 0, CP_ACCESS_REMOTE_WRITE)).toBe(0); // length 0: refused
  });
});

describe("cluster port: RDMA and SEND", () => {
  it("RDMA WRITE puts A's bytes at B's region base + offset and completes Ok after a round trip", () => {
    const key = b.register(3, 0x40000, 0x10000, CP_ACCESS_REMOTE_WRITE);
    const data = fillA(0x80000, 8192, 1);
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, offset: 0x100n, length: 8192, tag: 77 });
    runAll();
    expect([...b.cpu.ram.subarray(0x40100, 0x40100 + 8192)]).toEqual([...data]);
    expect(a.completions()).toEqual([{ tag: 77, status: FabricStatus.Ok, opcode: FabricOpcode.Write, peer: 2, length: 8192 }]);
    expect(clock.nowNs).toBeGreaterThanOrEqual(2 * FABRIC_LATENCY_NS);
    expect(a.reg(CP_SQ_HEAD)).toBe(1);
    expect(b.port.stats.writes).toBe(1);
  });

  it("RDMA READ brings B's region bytes into A's memory", () => {
    const key = b.register(1, 0x40000, 0x1000, CP_ACCESS_REMOTE_READ);
    b.cpu.ram.fill(0x5a, 0x40800, 0x40800 + 512);
    a.post({ opcode: FabricOpcode.Read, destination: 2, key, local: 0x90000, offset: 0x800n, length: 512, tag: 5 });
    runAll();
    expect(a.cpu.ram.subarray(0x90000, 0x90000 + 512).every((x) => x === 0x5a)).toBe(true);
    expect(a.completions()).toEqual([{ tag: 5, status: FabricStatus.Ok, opcode: FabricOpcode.Read, peer: 2, length: 512 }]);
  });

  it("SEND lands in B's next posted buffer with a Receive completion; none posted: ReceiverNotReady; too long: ReceiveLength", () => {
    const frame = fillA(0x80000, 128, 9);
    a.post({ opcode: FabricOpcode.Send, destination: 2, local: 0x80000, length: 128, tag: 1 });
    runAll();
    expect(a.completions()[0]!.status).toBe(FabricStatus.ReceiverNotReady);
    b.postReceive(0x50000, 64, 40);
    a.post({ opcode: FabricOpcode.Send, destination: 2, local: 0x80000, length: 128, tag: 2 });
    runAll();
    expect(a.completions()[0]!.status).toBe(FabricStatus.ReceiveLength);
    b.postReceive(0x60000, 256, 41);
    b.completions();
    a.post({ opcode: FabricOpcode.Send, destination: 2, local: 0x80000, length: 64, tag: 3 });
    a.post({ opcode: FabricOpcode.Send, destination: 2, local: 0x80000, length: 128, tag: 4 });
    runAll();
    expect(a.completions().map((c) => c.status)).toEqual([FabricStatus.Ok, FabricStatus.Ok]);
    expect(b.completions()).toEqual([
      { tag: 40, status: FabricStatus.Ok, opcode: FabricOpcode.Receive, peer: 1, length: 64 },
      { tag: 41, status: FabricStatus.Ok, opcode: FabricOpcode.Receive, peer: 1, length: 128 },
    ]);
    expect([...b.cpu.ram.subarray(0x60000, 0x60000 + 128)]).toEqual([...frame]);
    expect(b.irqSnapshots.filter((s) => s.vector === 10)).toHaveLength(2); // vector 0, data 10
  });
});

describe("cluster port: keys", () => {
  it("an unregistered, revoked or forged key, a range past the region and a forbidden access fault, are counted and touch nothing", () => {
    const key = b.register(2, 0x40000, 0x1000, CP_ACCESS_REMOTE_READ);
    const old = b.register(4, 0x44000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    b.revoke(4);
    const before = b.cpu.ram.slice();
    fillA(0x80000, 0x2000, 3);
    const cases: [number, bigint, number, FabricOpcode, FabricStatus][] = [
      [0x1234_5602, 0n, 16, FabricOpcode.Write, FabricStatus.KeyFault], // never issued
      [old, 0n, 16, FabricOpcode.Write, FabricStatus.KeyFault], // revoked
      [(key & 0xff) | 0x7700, 0n, 16, FabricOpcode.Read, FabricStatus.KeyFault], // right slot, forged generation
      [key, 0xff8n, 16, FabricOpcode.Read, FabricStatus.RangeFault],
      [key, 0xffff_ffff_ffff_fff0n, 0x20, FabricOpcode.Read, FabricStatus.RangeFault], // wraps
      [key, 0n, 16, FabricOpcode.Write, FabricStatus.AccessFault], // read-only region
    ];
    cases.forEach(([k, offset, length, opcode], tag) => a.post({ opcode, destination: 2, key: k, local: 0x80000, offset, length, tag }));
    runAll();
    expect(a.completions().map((c) => c.status)).toEqual(cases.map((c) => c[4]));
    expect(Buffer.from(b.cpu.ram).equals(Buffer.from(before))).toBe(true);
    expect(b.reg(CP_FAULT_COUNT)).toBe(6);
    expect(b.port.stats).toMatchObject({ keyFaults: 3, revokedKeyFaults: 1, rangeFaults: 2, accessFaults: 1, writes: 0, reads: 0 });
  });

  it("a bad work request completes without anything sent: unknown opcode, length 0, over 1 MiB, vector 8, local range not memory", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    a.post({ opcode: 9, destination: 2, tag: 1 });
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, length: 0, tag: 2 });
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, length: (1 << 20) + 1, tag: 3 });
    a.post({ opcode: FabricOpcode.Interrupt, destination: 2, offset: 8n, tag: 4 });
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0xd000_0000, length: 16, tag: 5 });
    runAll();
    expect(a.completions().map((c) => c.status)).toEqual([FabricStatus.BadRequest, FabricStatus.BadRequest, FabricStatus.BadRequest, FabricStatus.BadRequest, FabricStatus.LocalFault]);
    expect(fabric.stats.sent).toBe(0);
  });

  it("(property) no sequence of hostile requests changes a byte of B outside its registered region", () => {
    fc.assert(fc.property(
      fc.array(fc.record({
        opcode: fc.integer({ min: 0, max: 6 }),
        key: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 0xffff_ffff })),
        offset: fc.oneof(fc.bigInt({ min: 0n, max: 0x3000n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
        length: fc.oneof(fc.integer({ min: 0, max: 0x3000 }), fc.integer({ min: 0, max: 0xffff_ffff })),
        vector: fc.integer({ min: 0, max: 300 }),
      }), { maxLength: 12 }),
      (requests) => {
        clock = new VirtualClock();
        fabric = new Fabric(clock);
        a = new Node(1, clock, fabric, "a");
        b = new Node(2, clock, fabric, "b");
        a.start();
        b.start();
        const key = b.register(1, 0x40000, 0x2000, CP_ACCESS_REMOTE_READ | CP_ACCESS_REMOTE_WRITE);
        b.postReceive(0x48000, 0x800, 1);
        fillA(0x80000, 0x4000, 7);
        const before = b.cpu.ram.slice();
        requests.forEach((r, tag) => a.post({ opcode: r.opcode, destination: 2, key: r.key === -1 ? key : r.key, local: 0x80000, offset: r.opcode === FabricOpcode.Interrupt ? BigInt(r.vector) : r.offset, length: Math.min(r.length, 0x4000), tag }));
        runAll();
        const after = b.cpu.ram;
        const outside = (i: number): boolean => !(i >= 0x40000 && i < 0x42000) && !(i >= 0x48000 && i < 0x48800) && !(i >= CQ && i < CQ + RING * CP_CQE_BYTES);
        for (let i = 0; i < after.length; i += 1) if (after[i] !== before[i] && outside(i)) return false;
        return a.completions().length === requests.length;
      },
    ), { numRuns: 60 });
  });
});

describe("cluster port: tunneled interrupts", () => {
  it("raises B's vector 1 + v with B's own MSI-X data, after the write before it is in B's memory", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    fillA(0x80000, 256, 4);
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 256, tag: 1 });
    a.post({ opcode: FabricOpcode.Interrupt, destination: 2, offset: 3n, tag: 2 });
    runAll();
    const raised = b.irqSnapshots.filter((s) => s.vector === 14); // vector 1 + 3, data 10 + 4
    expect(raised).toHaveLength(1);
    expect([...raised[0]!.ram.subarray(0x40000, 0x40100)]).toEqual([...a.cpu.ram.subarray(0x80000, 0x80100)]);
    expect(a.completions().map((c) => c.status)).toEqual([FabricStatus.Ok, FabricStatus.Ok]);
  });

  it("is fenced, not raised, when a request before it was lost on a link that dropped", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 256, tag: 1 });
    clock.runNext(); // the doorbell: the write is on link 0
    fabric.setLink(1, 0, false); // lost with it
    a.post({ opcode: FabricOpcode.Interrupt, destination: 2, offset: 0n, tag: 2 });
    a.post({ opcode: FabricOpcode.Interrupt, destination: 2, offset: 0n, tag: 3 });
    runAll();
    const done = a.completions();
    expect(done.map((c) => [c.tag, c.status])).toEqual([[2, FabricStatus.Fenced], [3, FabricStatus.Ok], [1, FabricStatus.LinkDown]]);
    expect(b.irqSnapshots.filter((s) => s.vector === 11)).toHaveLength(1); // only the second interrupt
    expect(a.port.stats.timeouts).toBe(1);
    expect(clock.nowNs).toBeGreaterThanOrEqual(FABRIC_TIMEOUT_NS);
  });
});

describe("cluster port: a fabric of connections (tcp_fabric.ts)", () => {
  it("a packet the fabric refuses at once completes LinkDown, takes no sequence number, and fences nothing", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    const send = fabric.send.bind(fabric);
    let refuse = 1;
    fabric.send = (sender, link, packet) => (refuse-- > 0 ? false : send(sender, link, packet)); // no connection yet
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 256, tag: 1 });
    a.post({ opcode: FabricOpcode.Interrupt, destination: 2, offset: 0n, tag: 2 });
    runAll();
    expect(a.completions().map((c) => [c.tag, c.status])).toEqual([[1, FabricStatus.LinkDown], [2, FabricStatus.Ok]]);
    expect(b.irqSnapshots.filter((s) => s.vector === 11)).toHaveLength(1);
    expect(b.port.stats.fenced).toBe(0);
  });

  it("waits for an answer while the fabric still hears its board (lastHeardNs), and times out once that falls silent", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    let heardNs = 0;
    (fabric as FabricSwitch).lastHeardNs = () => heardNs;
    fabric.inject({ kind: "drop-next", count: 1 }); // behind others on the connection, as far as the port can tell
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 256, tag: 1 });
    clock.runNext(); // the doorbell
    for (let i = 0; i < 3; i++) {
      clock.advanceTo(clock.nowNs + FABRIC_TIMEOUT_NS * 0.9);
      heardNs = clock.nowNs; // b still talking
    }
    expect(a.completions()).toEqual([]);
    runAll();
    expect(a.completions().map((c) => [c.tag, c.status])).toEqual([[1, FabricStatus.LinkDown]]);
    expect(clock.nowNs).toBe(heardNs + FABRIC_TIMEOUT_NS);
    expect(a.port.stats.timeouts).toBe(1);
  });

  it("peerLost ends every request in flight to that board LinkDown at once, and only those", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    fabric.inject({ kind: "drop-next", count: 2 }); // on the wire when the connection closed
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 256, tag: 1 });
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 256, tag: 2 });
    clock.runNext(); // the doorbell: both sent, both lost
    a.port.peerLost(3); // another board: nothing of ours
    expect(a.completions()).toEqual([]);
    const before = clock.nowNs;
    a.port.peerLost(2);
    expect(a.completions().map((c) => [c.tag, c.status])).toEqual([[1, FabricStatus.LinkDown], [2, FabricStatus.LinkDown]]);
    expect(clock.nowNs).toBe(before);
    expect(a.port.stats).toMatchObject({ lostWithPeer: 2, timeouts: 0 });
    runAll(); // their timers were cancelled: nothing more
    expect(a.completions()).toEqual([]);
  });
});

describe("cluster port: the bond", () => {
  it("fails over to link 1 when link 0 drops, completes LinkDown at once with both down, and is back when a link is", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    fabric.setLink(1, 0, false);
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 64, tag: 1 });
    runAll();
    expect(a.completions()[0]!.status).toBe(FabricStatus.Ok);
    expect(a.reg(CP_FAILOVER_COUNT)).toBe(1);
    expect(a.reg(CP_STATUS) & CP_STATUS_ACTIVE_LINK1).toBe(CP_STATUS_ACTIVE_LINK1);
    fabric.setLink(1, 1, false);
    const at = clock.nowNs;
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 64, tag: 2 });
    runAll();
    expect(a.completions()[0]!.status).toBe(FabricStatus.LinkDown);
    expect(clock.nowNs - at).toBeLessThan(FABRIC_TIMEOUT_NS);
    fabric.setLink(1, 0, true);
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 64, tag: 3 });
    runAll();
    expect(a.completions()[0]!.status).toBe(FabricStatus.Ok);
    expect(a.reg(CP_FAILOVER_COUNT)).toBe(2);
  });

  it("applies a duplicated request once, and drops the answer of a request from before a reset", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    b.postReceive(0x50000, 256, 1);
    b.postReceive(0x51000, 256, 2);
    fabric.inject({ kind: "duplicate-next", count: 1 });
    a.post({ opcode: FabricOpcode.Send, destination: 2, local: 0x80000, length: 32, tag: 1 });
    runAll();
    expect(b.completions()).toHaveLength(1);
    expect(b.port.stats.duplicates).toBe(1);
    expect(a.completions()).toHaveLength(1);
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 32, tag: 2 });
    clock.runNext();
    a.setReg(CP_CTRL, CP_CTRL_RESET);
    a.start();
    a.sqTail = 0;
    a.cqHead = 0;
    runAll();
    expect(a.completions()).toEqual([]);
    // A's sequence started again after its reset: B accepts it as a new incarnation.
    a.post({ opcode: FabricOpcode.Write, destination: 2, key, local: 0x80000, length: 32, tag: 3 });
    runAll();
    expect(a.completions().map((c) => c.status)).toEqual([FabricStatus.Ok]);
  });
});

describe("cluster port: the window", () => {
  it("a DMA into window slot i lands in the peer's region at the slot offset, at once; reads come back the same way", () => {
    const key = b.register(5, 0x40000, 0x10000, CP_ACCESS_REMOTE_READ | CP_ACCESS_REMOTE_WRITE);
    a.setReg(CP_WINDOW_SELECT, 3);
    a.setReg(CP_WINDOW_DESTINATION, 2);
    a.setReg(CP_WINDOW_KEY, key);
    const slot = a.window + BigInt(3 * CP_WINDOW_SLOT_BYTES);
    const data = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff);
    expect(a.cpu.bus.dmaWrite("test", slot + 0x2000n, data).ok).toBe(true);
    expect([...b.cpu.ram.subarray(0x42000, 0x43000)]).toEqual([...data]);
    const back = a.cpu.bus.dmaRead("test", slot + 0x2000n, 4096);
    expect(back.ok && [...back.bytes]).toEqual([...data]);
    expect(clock.nowNs).toBe(0);
    expect(b.port.stats).toMatchObject({ writes: 1, reads: 1 });
  });

  it("faults, touching nothing, through a closed slot, past the region, with a revoked key or after the peer's reset", () => {
    const key = b.register(0, 0x40000, 0x1000, CP_ACCESS_REMOTE_WRITE);
    a.setReg(CP_WINDOW_SELECT, 0);
    a.setReg(CP_WINDOW_DESTINATION, 2);
    a.setReg(CP_WINDOW_KEY, key);
    const before = b.cpu.ram.slice();
    const bytes = new Uint8Array(512).fill(0xee);
    expect(a.cpu.bus.dmaWrite("test", a.window + BigInt(CP_WINDOW_SLOT_BYTES), bytes).ok).toBe(false); // slot 1 closed
    expect(a.cpu.bus.dmaWrite("test", a.window + 0xf00n, bytes).ok).toBe(false); // past the region's 4 KiB
    expect(a.cpu.bus.dmaRead("test", a.window, 16).ok).toBe(false); // a write-only region
    b.revoke(0);
    expect(a.cpu.bus.dmaWrite("test", a.window, bytes).ok).toBe(false);
    expect(Buffer.from(b.cpu.ram).equals(Buffer.from(before))).toBe(true);
    expect(b.port.stats).toMatchObject({ rangeFaults: 1, accessFaults: 1, keyFaults: 1, revokedKeyFaults: 1 });
  });
});
