// The TCP-offload NIC against docs/hardware.md ("TCP-offload NIC"): a bare host bus with the NIC plugged, its BARs
// placed and MSI-X pointed at the MSI region; the test plays the firmware's driver (rings in the bus's RAM, doorbells,
// event handling through EVQ_HEAD/EVQ_TAIL) and the network through LoopbackBackend clients, stepping the board clock
// by hand. One test runs the real TcpBackend against a node:net client on 127.0.0.1.
import { connect as netConnect, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createIopBridge } from "../../../host/devices/iop_bridge.ts";
import { NicDevice } from "../../../host/devices/nic.ts";
import { LoopbackBackend, TcpBackend, type ClientEnd } from "../../../host/devices/tcp_backend.ts";
import { Trace } from "../../../host/sim/trace.ts";
import { BusHarness } from "../../support/bus_harness.ts";

// Registers and layouts spelled out from the table, not imported, so a wrong constant in the model cannot agree with
// itself.
const R = {
  CTRL: 0x00, STATUS: 0x04, CONN_MAX: 0x08,
  EVQ_BASE: 0x10, EVQ_SIZE: 0x18, EVQ_HEAD: 0x1c, EVQ_TAIL: 0x20,
  RXQ_BASE: 0x30, RXQ_SIZE: 0x38, RXQ_HEAD: 0x3c, RXQ_TAIL: 0x40,
  TXQ_BASE: 0x50, TXQ_SIZE: 0x58, TXQ_HEAD: 0x5c, TXQ_TAIL: 0x60, CONN_CLOSE: 0x70,
};
const OPENED = 1;
const CLOSED = 2;
const RECEIVED = 3;
const SENT = 4;
const SLOT = 4;
const MSI_DATA = 0x20; // the NIC's one vector arrives as irq 0x20
const EVQ_AT = 0x1000;
const RXQ_AT = 0x8000;
const TXQ_AT = 0xa000;
const RX_BUFFERS_AT = 0x10_0000; // buffer i at + i * 0x1_0000
const TX_DATA_AT = 0x30_0000;
const UNMAPPED = 0x8000_0000n; // nothing decodes it on the harness bus

interface Ev {
  type: number;
  connection: number;
  lengthBytes: number;
  id: number;
  portal: number;
}
interface TxEntry {
  address: bigint;
  lengthBytes: number;
  id: number;
  connection: number;
  flags?: number;
}

// The firmware's side: rings in RAM, free-running counters, events read between EVQ_TAIL and EVQ_HEAD.
class Driver {
  evqSize = 0;
  rxqSize = 0;
  txqSize = 0;
  evqTail = 0;
  rxHead = 0;
  txHead = 0;
  readonly view: DataView;

  constructor(readonly h: BusHarness, readonly regs: bigint) {
    this.view = new DataView(h.ram.buffer);
  }

  reg(offset: number): number {
    return Number(this.h.bus.read(this.regs + BigInt(offset), 4));
  }

  setReg(offset: number, value: number): void {
    this.h.bus.write(this.regs + BigInt(offset), 4, value);
  }

  setup(evqSize = 64, rxqSize = 16, txqSize = 16): void {
    Object.assign(this, { evqSize, rxqSize, txqSize, evqTail: 0, rxHead: 0, txHead: 0 });
    for (const [base, at, size] of [[R.EVQ_BASE, EVQ_AT, evqSize], [R.RXQ_BASE, RXQ_AT, rxqSize], [R.TXQ_BASE, TXQ_AT, txqSize]] as const) {
      this.setReg(base, at);
      this.setReg(base + 4, 0);
      this.setReg(base + 8, size);
    }
    this.setReg(R.CTRL, 1);
  }

  postRx(buffers: { id: number; lengthBytes: number; address?: bigint }[]): void {
    for (const b of buffers) {
      const at = RXQ_AT + (this.rxHead % this.rxqSize) * 16;
      this.view.setBigUint64(at, b.address ?? BigInt(RX_BUFFERS_AT + b.id * 0x1_0000), true);
      this.view.setUint32(at + 8, b.lengthBytes, true);
      this.view.setUint32(at + 12, b.id, true);
      this.rxHead += 1;
    }
    this.setReg(R.RXQ_HEAD, this.rxHead);
  }

  postTx(entries: TxEntry[]): void {
    for (const e of entries) {
      const at = TXQ_AT + (this.txHead % this.txqSize) * 24;
      this.view.setBigUint64(at, e.address, true);
      this.view.setUint32(at + 8, e.lengthBytes, true);
      this.view.setUint32(at + 12, e.id, true);
      this.view.setUint16(at + 16, e.connection, true);
      this.view.setUint16(at + 18, e.flags ?? 0, true);
      this.txHead += 1;
    }
    this.setReg(R.TXQ_HEAD, this.txHead);
  }

  // Reads every event the NIC has written and hands the entries back, as the firmware's Nic.next() does.
  poll(): Ev[] {
    const head = this.reg(R.EVQ_HEAD);
    const events: Ev[] = [];
    while (this.evqTail !== head) {
      events.push(this.peek(this.evqTail));
      this.evqTail += 1;
    }
    this.setReg(R.EVQ_TAIL, this.evqTail);
    return events;
  }

  peek(index: number): Ev {
    const at = EVQ_AT + (index % this.evqSize) * 16;
    return { type: this.view.getUint8(at), connection: this.view.getUint16(at + 2, true), lengthBytes: this.view.getUint32(at + 4, true), id: this.view.getUint32(at + 8, true), portal: this.view.getUint16(at + 12, true) };
  }

  rxBytes(e: Ev): Uint8Array {
    return this.h.ram.slice(RX_BUFFERS_AT + e.id * 0x1_0000, RX_BUFFERS_AT + e.id * 0x1_0000 + e.lengthBytes);
  }
}

let h: BusHarness;
let backend: LoopbackBackend;
let nic: NicDevice;
let d: Driver;
let msix: bigint; // BAR 4: the MSI-X table, PBA at + 0x800

function pattern(lengthBytes: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: lengthBytes }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);
}
function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}
// Runs every pending event; bounded so a model that reschedules forever fails the test instead of hanging it.
function runAll(): void {
  for (let i = 0; i < 1_000_000 && h.clock.runNext(); i++);
  expect(h.clock.pendingCount()).toBe(0);
}
function summary(events: Ev[]): string[] {
  return events.map((e) => `${["", "Opened", "Closed", "Received", "Sent"][e.type]} c${e.connection}` + (e.type === RECEIVED || e.type === SENT ? ` #${e.id} ${e.lengthBytes}B` : "") + (e.type === OPENED ? ` p${e.portal}` : ""));
}
// Opens a client and handles its Opened event.
function open(portal = 0): ClientEnd {
  const client = backend.connect(portal);
  runAll();
  expect(summary(d.poll())).toEqual([`Opened c${client.connection} p${portal}`]);
  return client;
}

// A fresh bus with the NIC plugged and its rings set up; `trace` off gives quiet views (a board serving real clients).
function build(options: { copyBytesPerNs?: number; trace?: Trace } = {}): void {
  h = new BusHarness(4, "host", options.trace);
  backend = new LoopbackBackend(h.clock);
  nic = new NicDevice({ name: "nic0", clock: h.clock, backend, log: (m) => h.log.push(m), ...(options.copyBytesPerNs !== undefined ? { copyBytesPerNs: options.copyBytesPerNs } : {}) });
  backend.attach(nic);
  h.plug(SLOT, nic);
  const bars = h.enable(SLOT);
  msix = bars.get(4)!;
  h.enableMsix(SLOT, msix, 1, MSI_DATA);
  d = new Driver(h, bars.get(0)!);
  d.setup();
}

beforeEach(() => build());

describe("NIC registers", () => {
  it("presents the table's identity, 64 slots, and ignores an invalid ring size", () => {
    // Proves the config header and CONN_MAX match docs/hardware.md, and that EVQ_SIZE outside powers of two 2..4096
    // is refused as a guest error while the earlier value stays.
    expect(h.cfgRead(SLOT, 0x00)).toBe(0x11e0_1234);
    expect(h.cfgRead(SLOT, 0x08) >>> 8).toBe(0x020000);
    expect(h.cfgRead(SLOT, 0x08) & 0xff).toBe(1);
    expect(d.reg(R.CONN_MAX)).toBe(64);
    expect(d.reg(R.STATUS)).toBe(1); // enabled by setup()
    d.setReg(R.EVQ_SIZE, 3);
    d.setReg(R.EVQ_SIZE, 8192);
    expect(d.reg(R.EVQ_SIZE)).toBe(64);
    expect(nic.guestErrorCount).toBe(2);
  });
});

describe("NIC connections and receive", () => {
  it("posts Opened with the portal, on the clock and then through the vector", () => {
    // Proves a client connecting is seen as an Opened event carrying slot and portal, written only when the clock
    // runs (not inside the backend's call) and followed by the NIC's MSI-X message.
    const client = backend.connect(3);
    expect(client.connection).toBe(0);
    expect(d.reg(R.EVQ_HEAD)).toBe(0);
    runAll();
    expect(summary(d.poll())).toEqual(["Opened c0 p3"]);
    expect(h.irqs).toEqual([MSI_DATA]);
  });

  it("holds its MSI-X message while masked or while Bus Master is off, and sends it once both allow", () => {
    // Proves the vector obeys the PCI rules: masked, the event still lands and the PBA bit sets; unmasked while Bus
    // Master is off (an MSI-X message is a memory write), nothing goes out; Bus Master back on delivers it once.
    h.bus.write(msix + 12n, 4, 1);
    backend.connect(0);
    runAll();
    expect(d.reg(R.EVQ_HEAD)).toBe(1);
    expect(h.irqs).toEqual([]);
    expect(Number(h.bus.read(msix + 0x800n, 4))).toBe(1);
    h.cfgWrite(SLOT, 0x04, 0b010, 2); // memory space only
    h.bus.write(msix + 12n, 4, 0);
    expect(h.irqs).toEqual([]);
    h.cfgWrite(SLOT, 0x04, 0b110, 2);
    expect(h.irqs).toEqual([MSI_DATA]);
    expect(Number(h.bus.read(msix + 0x800n, 4))).toBe(0);
  });

  it("fills posted buffers in posting order with one connection's bytes each, across several buffers", () => {
    // Proves Received events name buffers in posting order, each holding bytes of one connection only, and that each
    // stream reassembles exactly: two clients write 250 and 120 bytes into 100-byte buffers.
    const a = open();
    const b = open();
    const dataA = pattern(250, 1);
    const dataB = pattern(120, 2);
    d.postRx(Array.from({ length: 8 }, (_, id) => ({ id, lengthBytes: 100 })));
    a.write(dataA);
    b.write(dataB);
    runAll();
    const events = d.poll();
    expect(events.every((e) => e.type === RECEIVED)).toBe(true);
    expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i)); // posting order
    expect(events.map((e) => e.lengthBytes).reduce((x, y) => x + y)).toBe(370);
    const streamOf = (c: ClientEnd) => concat(events.filter((e) => e.connection === c.connection).map((e) => d.rxBytes(e)));
    expect(streamOf(a)).toEqual(dataA);
    expect(streamOf(b)).toEqual(dataB);
    expect(events.filter((e) => e.connection === a.connection).length).toBe(3);
    expect(d.reg(R.RXQ_TAIL)).toBe(events.length);
    expect(backend.pauseCalls).toEqual([]);
  });

  it("holds bytes and pauses the connection while no buffer is posted, and resumes once buffers take them all", () => {
    // Proves backpressure without loss: 200 KiB written with no buffer posted produces no Received, pauses the
    // connection (the rest stays with the client), and posting and re-posting 4 KiB buffers delivers every byte in
    // order, then resumes reading.
    const client = open();
    const data = pattern(200 * 1024, 3);
    client.write(data);
    runAll();
    expect(d.poll()).toEqual([]);
    expect(backend.pauseCalls).toEqual([{ connection: 0, paused: true }]);
    expect(client.outbox.length).toBeGreaterThan(0);
    const parts: Uint8Array[] = [];
    let receivedBytes = 0;
    d.postRx(Array.from({ length: 16 }, (_, id) => ({ id, lengthBytes: 4096 })));
    for (let round = 0; round < 1000 && receivedBytes < data.length; round++) {
      runAll();
      const events = d.poll();
      for (const e of events) parts.push(d.rxBytes(e));
      receivedBytes += events.reduce((n, e) => n + e.lengthBytes, 0);
      d.postRx(events.map((e) => ({ id: e.id, lengthBytes: 4096 })));
    }
    expect(Buffer.from(concat(parts)).equals(Buffer.from(data))).toBe(true);
    expect(backend.pauseCalls.at(-1)).toEqual({ connection: 0, paused: false });
    expect(client.paused).toBe(false);
  });

  it("posts Closed after the peer closes, only once the bytes it sent before are delivered", () => {
    // Proves a peer close is a FIN: bytes still waiting for a buffer come first, then Closed; nothing is posted while
    // no buffer is there to take the bytes. The loopback client holds its FIN behind the paused bytes, as TCP does, so
    // a second connection calls NicPort directly to show the NIC keeps the order even when FIN arrives first.
    const client = open();
    client.write(pattern(10, 4));
    client.end();
    const direct = nic.opened(0)!;
    nic.received(direct, pattern(5, 13));
    nic.closed(direct);
    runAll();
    expect(summary(d.poll())).toEqual(["Opened c1 p0"]);
    d.postRx([{ id: 0, lengthBytes: 100 }, { id: 1, lengthBytes: 100 }]);
    runAll();
    const events = d.poll();
    expect(summary(events.filter((e) => e.connection === 0))).toEqual(["Received c0 #1 10B", "Closed c0"]);
    expect(summary(events.filter((e) => e.connection === 1))).toEqual(["Received c1 #0 5B", "Closed c1"]);
    expect(backend.closeCalls).toEqual([]); // the peer closed both; the NIC has nothing to close
  });

  it("hears an aborted connection as a peer close at once; the client loses what was on the wire and is told", () => {
    // Proves LoopbackBackend.abort (the simulator's connection drop): the client is closed and its onClose runs
    // before any event, bytes it wrote but the NIC had not taken are gone, and the NIC posts Closed for the slot.
    d.postRx([{ id: 0, lengthBytes: 100 }]);
    const client = open();
    let told = 0;
    client.onClose = () => (told += 1);
    client.write(pattern(10, 5));
    backend.abort(client);
    expect(client.closed).toBe(true);
    expect(told).toBe(1);
    runAll();
    expect(summary(d.poll())).toEqual([`Closed c${client.connection}`]);
    backend.abort(client); // a second abort is a no-op
    expect(told).toBe(1);
  });
});

describe("NIC transmit", () => {
  it("gathers entries in ring order from host RAM and through a bridge window, then posts Sent for each", () => {
    // Proves transmit: three entries (the middle one in a storage processor's RAM behind an iop-bridge BAR 2, zero
    // copy) reach the client in ring order, each finishing as Sent{id} with its length; nothing happens inside the
    // TXQ_HEAD write itself.
    const storage = new BusHarness(4, "storage");
    const bridge = createIopBridge({ name: "iop0", storageMemory: storage.memory, storageRamBytes: 4 << 20, raiseLocalIrq: () => {}, log: (m) => h.log.push(m) });
    h.plug(1, bridge.hostFunction);
    const window = h.enable(1).get(2)!;
    const client = open();
    const one = pattern(1000, 5);
    const two = pattern(3000, 6);
    const three = pattern(17, 7);
    h.ram.set(one, TX_DATA_AT);
    storage.ram.set(two, 0x2_0000);
    h.ram.set(three, TX_DATA_AT + 0x1_0000);
    d.postTx([
      { address: BigInt(TX_DATA_AT), lengthBytes: 1000, id: 10, connection: 0 },
      { address: window + 0x2_0000n, lengthBytes: 3000, id: 11, connection: 0 },
      { address: BigInt(TX_DATA_AT + 0x1_0000), lengthBytes: 17, id: 12, connection: 0 },
    ]);
    expect(d.reg(R.TXQ_TAIL)).toBe(0);
    expect(client.received().length).toBe(0);
    runAll();
    expect(client.received()).toEqual(concat([one, two, three]));
    expect(summary(d.poll())).toEqual(["Sent c0 #10 1000B", "Sent c0 #11 3000B", "Sent c0 #12 17B"]);
    expect(d.reg(R.TXQ_TAIL)).toBe(3);
    expect(client.closed).toBe(false);
  });

  it("hands a large payload to sendView as a view of RAM or of a bridge window, a small one through sendSpace", () => {
    // Proves the zero-copy transmit (NIC_TX_VIEW_BYTES_MIN, 32 KiB): a 64 KiB payload in host RAM and one behind an
    // iop-bridge BAR 2 reach the backend's sendView as views of that memory (no copy), a small one is gathered into
    // sendSpace; all arrive in ring order, intact. A large payload past the window's RAM faults as a small one does:
    // Sent with 0 bytes, one guest error, nothing sent.
    const storage = new BusHarness(4, "storage");
    const bridge = createIopBridge({ name: "iop0", storageMemory: storage.memory, storageRamBytes: 4 << 20, raiseLocalIrq: () => {}, log: (m) => h.log.push(m) });
    h.plug(1, bridge.hostFunction);
    const window = h.enable(1).get(2)!;
    const views: { buffer: ArrayBufferLike; lengthBytes: number }[] = [];
    const sendView = backend.sendView.bind(backend);
    backend.sendView = (connection, bytes) => {
      views.push({ buffer: bytes.buffer, lengthBytes: bytes.length });
      sendView(connection, bytes);
    };
    const client = open();
    const one = pattern(64 * 1024, 1);
    const two = pattern(32 * 1024, 2);
    const three = pattern(32 * 1024 - 1, 3);
    h.ram.set(one, TX_DATA_AT);
    storage.ram.set(two, 0x2_0000);
    h.ram.set(three, TX_DATA_AT + 0x2_0000);
    d.postTx([
      { address: BigInt(TX_DATA_AT), lengthBytes: one.length, id: 1, connection: 0 },
      { address: window + 0x2_0000n, lengthBytes: two.length, id: 2, connection: 0 },
      { address: window + BigInt((4 << 20) - 0x8000), lengthBytes: 0x1_0000, id: 3, connection: 0 },
      { address: BigInt(TX_DATA_AT + 0x2_0000), lengthBytes: three.length, id: 4, connection: 0 },
    ]);
    runAll();
    expect(client.received()).toEqual(concat([one, two, three]));
    expect(summary(d.poll())).toEqual([`Sent c0 #1 ${one.length}B`, `Sent c0 #2 ${two.length}B`, "Sent c0 #3 0B", `Sent c0 #4 ${three.length}B`]);
    expect(views).toEqual([{ buffer: h.memory.buffer, lengthBytes: one.length }, { buffer: storage.memory.buffer, lengthBytes: two.length }]);
    expect(nic.guestErrorCount).toBe(1);
  });

  it("offers sendView the large payloads posted next for the same connection, untraced, up to a small entry or a close", () => {
    // Proves sendView's `ahead` (a reply's 64 KiB segments in one writev, TcpBackend): on a bus nobody traces, the
    // call for a 64 KiB entry offers views of the same memory as the later calls for the entries posted after it on
    // that connection, passing over another connection's entry, and stops before a small entry and after the close
    // flag; each entry still reaches sendView at its own call, with its Sent at the same time as without the offer.
    // Under a trace nothing is offered (the bus sees each payload when its entry starts).
    const run = (traced: boolean): { calls: string[]; sentNs: number[] } => {
      build({ trace: new Trace({ enabled: traced }) });
      const calls: string[] = [];
      const sendView = backend.sendView.bind(backend);
      const at = (bytes: Uint8Array): string => `${bytes.buffer === h.memory.buffer ? "" : "?"}${(bytes.byteOffset - TX_DATA_AT) >> 16}`;
      backend.sendView = (connection: number, bytes: Uint8Array, ahead?: () => readonly Uint8Array[]) => {
        calls.push(`c${connection} ${at(bytes)} ahead [${(ahead?.() ?? []).map(at).join(" ")}]`);
        sendView(connection, bytes);
      };
      const c0 = open();
      const c1 = open();
      const big = (i: number): Uint8Array => pattern(64 * 1024, i);
      for (let i = 0; i < 9; i++) h.ram.set(big(i), TX_DATA_AT + i * 0x1_0000);
      const small = pattern(1000, 99);
      h.ram.set(small, TX_DATA_AT + 9 * 0x1_0000);
      const entry = (i: number, connection: number, flags = 0): TxEntry => ({ address: BigInt(TX_DATA_AT + i * 0x1_0000), lengthBytes: 64 * 1024, id: i, connection, flags });
      d.postTx([entry(0, 0), entry(1, 1), entry(2, 0), entry(3, 0), { address: BigInt(TX_DATA_AT + 9 * 0x1_0000), lengthBytes: small.length, id: 9, connection: 0 }, entry(4, 0), entry(5, 0, 1), entry(6, 0)]);
      const sentNs: number[] = [];
      for (let i = 0; i < 1_000_000 && h.clock.runNext(); i++) for (const e of d.poll()) if (e.type === SENT) sentNs.push(h.clock.nowNs);
      expect(c0.received()).toEqual(concat([big(0), big(2), big(3), small, big(4), big(5)]));
      expect(c1.received()).toEqual(big(1));
      return { calls, sentNs };
    };
    const quiet = run(false);
    expect(quiet.calls).toEqual(["c0 0 ahead [2 3]", "c1 1 ahead []", "c0 2 ahead [3]", "c0 3 ahead []", "c0 4 ahead [5]", "c0 5 ahead []"]);
    const traced = run(true);
    expect(traced.calls).toEqual(["c0 0 ahead []", "c1 1 ahead []", "c0 2 ahead []", "c0 3 ahead []", "c0 4 ahead []", "c0 5 ahead []"]);
    expect(quiet.sentNs).toEqual(traced.sentNs);
    expect(quiet.sentNs.length).toBe(8);
  });

  it("keeps the engine busy for a payload's length over its copy rate: 1 byte per ns unless the board file names more", () => {
    // Proves copyGBps: the same 1 MiB entry's Sent lands 1 MiB of ns after it is posted at the default rate, and a
    // quarter of that on a NIC built with 4 bytes per ns; both deliver the same bytes.
    const payload = pattern(1 << 20, 9);
    const sentAfterNs = (): number => {
      const client = open();
      h.ram.set(payload, TX_DATA_AT);
      const postedNs = h.clock.nowNs;
      d.postTx([{ address: BigInt(TX_DATA_AT), lengthBytes: payload.length, id: 1, connection: 0 }]);
      let sentNs = -1;
      for (let i = 0; i < 1_000_000 && h.clock.runNext(); i++) if (sentNs < 0 && d.poll().some((e) => e.type === SENT)) sentNs = h.clock.nowNs;
      expect(client.received()).toEqual(payload);
      return sentNs - postedNs;
    };
    const atDefault = sentAfterNs();
    expect(atDefault).toBeGreaterThanOrEqual(1 << 20);
    build({ copyBytesPerNs: 4 });
    const atFour = sentAfterNs();
    expect(atFour).toBeGreaterThanOrEqual((1 << 20) / 4);
    expect(atFour).toBeLessThan(atDefault - (1 << 20) / 2);
  });

  it("closes on CONN_CLOSE after the data queued before it, and on the TX close flag after that entry", () => {
    // Proves both firmware closes: the backend is told to close after every byte posted before the request was
    // handed to it, the client sees the bytes then FIN, and Closed follows the Sent events.
    const a = open();
    const b = open();
    h.ram.set(pattern(64, 8), TX_DATA_AT);
    d.postTx([{ address: BigInt(TX_DATA_AT), lengthBytes: 64, id: 1, connection: 0 }]);
    d.setReg(R.CONN_CLOSE, 0);
    d.postTx([{ address: BigInt(TX_DATA_AT), lengthBytes: 32, id: 2, connection: 1, flags: 1 }]);
    runAll();
    const events = summary(d.poll());
    expect(events.indexOf("Sent c0 #1 64B")).toBeLessThan(events.indexOf("Closed c0"));
    expect(events.indexOf("Sent c1 #2 32B")).toBeLessThan(events.indexOf("Closed c1"));
    expect(events).toHaveLength(4);
    expect([...backend.closeCalls].sort()).toEqual([0, 1]);
    expect(a.received()).toEqual(pattern(64, 8));
    expect(b.received()).toEqual(pattern(32, 8));
    expect(a.closed && b.closed).toBe(true);
  });

  it("finishes a transmit entry whose payload faults as Sent with 0 bytes, without throwing, and goes on", () => {
    // Proves a DMA fault on a transmit entry is contained: logged as a guest error, nothing handed to the client for
    // it, Sent{id} still posted so the firmware can reclaim it, and the next entry goes through.
    const client = open();
    h.ram.set(pattern(20, 9), TX_DATA_AT);
    d.postTx([
      { address: UNMAPPED, lengthBytes: 16, id: 1, connection: 0 },
      { address: BigInt(TX_DATA_AT), lengthBytes: 20, id: 2, connection: 0 },
    ]);
    expect(() => runAll()).not.toThrow();
    expect(summary(d.poll())).toEqual(["Sent c0 #1 0B", "Sent c0 #2 20B"]);
    expect(client.received()).toEqual(pattern(20, 9));
    expect(nic.guestErrorCount).toBe(1);
    expect(h.log.some((m) => m.includes("transmit entry 1"))).toBe(true);
  });
});

describe("NIC faults and limits", () => {
  it("keeps events inside the NIC while the queue is full: none lost, none overwritten", () => {
    // Proves EVQ_HEAD never passes EVQ_TAIL + EVQ_SIZE: with a 2-entry queue, 5 connections writing 10 bytes each
    // produce 10 events; the two written entries stay untouched while the firmware does not consume, STATUS bit 1 stays
    // clear, and consuming one at a time yields all 10 in a valid order.
    d.setup(2, 16, 16);
    d.postRx(Array.from({ length: 8 }, (_, id) => ({ id, lengthBytes: 100 })));
    const clients = Array.from({ length: 5 }, () => backend.connect(0));
    clients.forEach((c, i) => c.write(pattern(10, i)));
    runAll();
    expect(d.reg(R.EVQ_HEAD)).toBe(2);
    const written = h.ram.slice(EVQ_AT, EVQ_AT + 32);
    h.clock.advanceTo(h.clock.nowNs + 1_000_000);
    expect(h.ram.slice(EVQ_AT, EVQ_AT + 32)).toEqual(written);
    const all: Ev[] = [];
    for (let round = 0; round < 100 && all.length < 10; round++) {
      runAll();
      const head = d.reg(R.EVQ_HEAD);
      expect(head - d.evqTail).toBeLessThanOrEqual(2);
      if (head === d.evqTail) break;
      all.push(d.peek(d.evqTail));
      d.evqTail += 1;
      d.setReg(R.EVQ_TAIL, d.evqTail);
    }
    expect(all).toHaveLength(10);
    expect(d.reg(R.STATUS) & 2).toBe(0);
    for (const c of clients) {
      const mine = summary(all.filter((e) => e.connection === c.connection));
      expect(mine).toHaveLength(2);
      expect(mine[0]).toBe(`Opened c${c.connection} p0`);
      expect(mine[1]).toMatch(/^Received .* 10B$/);
    }
  });

  it("refuses the 65th connection, and reuses a slot only after the firmware consumed its Closed", () => {
    // Proves the 64-slot limit (the backend gets undefined and the client is refused) and the release rule: a slot
    // whose Closed has not been consumed is not handed out; once EVQ_TAIL passes it, the next client gets it.
    d.setup(256, 16, 16);
    const clients = Array.from({ length: 64 }, () => backend.connect(0));
    expect(clients.map((c) => c.connection)).toEqual(clients.map((_, i) => i));
    expect(backend.connect(0).refused).toBe(true);
    runAll();
    expect(d.poll()).toHaveLength(64);
    clients[5]!.end();
    runAll();
    expect(d.reg(R.EVQ_HEAD)).toBe(65); // Closed c5 written, not consumed
    expect(backend.connect(0).refused).toBe(true);
    expect(summary(d.poll())).toEqual(["Closed c5"]);
    const next = backend.connect(1);
    expect(next.connection).toBe(5);
    expect(nic.stats.connectionsRefused).toBe(2);
  });

  it("skips a receive buffer it cannot write and gives its bytes to the next one", () => {
    // Proves a DMA fault on a receive buffer loses no stream bytes and posts nothing for that buffer.
    const client = open();
    d.postRx([{ id: 0, lengthBytes: 100, address: UNMAPPED }, { id: 1, lengthBytes: 100 }]);
    client.write(pattern(40, 10));
    runAll();
    const events = d.poll();
    expect(summary(events)).toEqual(["Received c0 #1 40B"]);
    expect(d.rxBytes(events[0]!)).toEqual(pattern(40, 10));
    expect(nic.guestErrorCount).toBe(1);
  });

  it("flags lost events in STATUS bit 1 when the event queue itself faults, and clears it on write 1", () => {
    // Proves the only way events go missing is reported: an event queue placed where nothing decodes makes the Opened
    // event unwritable, EVQ_HEAD stays put, STATUS bit 1 sets and is write-1-to-clear.
    d.setReg(R.EVQ_BASE, Number(UNMAPPED));
    backend.connect(0);
    expect(() => runAll()).not.toThrow();
    expect(d.reg(R.EVQ_HEAD)).toBe(0);
    expect(d.reg(R.STATUS)).toBe(3);
    d.setReg(R.STATUS, 2);
    expect(d.reg(R.STATUS)).toBe(1);
  });

  it("drops every connection on CTRL reset and forgets the rings; nothing scheduled before it lands after", () => {
    // Proves reset: both backend connections closed at once, registers back to power-on values, work in flight
    // (bytes waiting, a transmit entry) never reaches memory or the network afterwards, and the NIC accepts again
    // once re-programmed, starting from slot 0 and event 0.
    const a = open();
    const b = open();
    d.postRx([{ id: 0, lengthBytes: 100 }]);
    a.write(pattern(50, 11));
    h.clock.advanceTo(h.clock.nowNs + 1_200); // the client's bytes arrived at +1 µs; their copy ends at +1.55 µs
    h.ram.set(pattern(8, 12), TX_DATA_AT);
    d.postTx([{ address: BigInt(TX_DATA_AT), lengthBytes: 8, id: 7, connection: 1 }]);
    const eventsBefore = h.ram.slice(EVQ_AT, EVQ_AT + 64 * 16);
    d.setReg(R.CTRL, 2);
    expect(backend.closeCalls).toEqual([0, 1]);
    for (const r of [R.CTRL, R.STATUS, R.EVQ_SIZE, R.EVQ_HEAD, R.RXQ_HEAD, R.RXQ_TAIL, R.TXQ_HEAD, R.TXQ_TAIL, R.EVQ_BASE]) expect(d.reg(r)).toBe(0);
    runAll();
    expect(h.ram.slice(EVQ_AT, EVQ_AT + 64 * 16)).toEqual(eventsBefore);
    expect(h.ram.slice(RX_BUFFERS_AT, RX_BUFFERS_AT + 50)).toEqual(new Uint8Array(50));
    expect(b.received().length).toBe(0);
    expect(a.closed && b.closed).toBe(true);
    expect(backend.connect(0).refused).toBe(true); // disabled by the reset
    d.setup();
    const c = backend.connect(2);
    expect(c.connection).toBe(0);
    runAll();
    expect(summary(d.poll())).toEqual(["Opened c0 p2"]);
    expect(nic.connectionCount).toBe(1);
  });
});

describe("NIC over real TCP", () => {
  let tcp: TcpBackend | undefined;
  let socket: Socket | undefined;
  afterEach(async () => {
    socket?.destroy();
    await tcp?.stop();
  });

  it("serves a node:net client on 127.0.0.1 port 0: Opened, Received, Sent, then FIN", async () => {
    // Proves TcpBackend end to end: it binds port 0 and reports the port chosen, an accepted socket becomes an
    // Opened event, its bytes land in a receive buffer, a transmit entry with the close flag reaches the client
    // followed by end of stream. The test advances the board clock in a loop while awaiting socket I/O, bounded
    // by a wall-clock deadline well under 5 s.
    const th = new BusHarness(4, "host");
    const log: string[] = [];
    tcp = new TcpBackend({ portals: [{ host: "127.0.0.1", port: 0 }], log: (m) => log.push(m) });
    const tnic = new NicDevice({ name: "nic0", clock: th.clock, backend: tcp, log: (m) => log.push(m) });
    tcp.attach(tnic);
    th.plug(SLOT, tnic);
    const bars = th.enable(SLOT);
    th.enableMsix(SLOT, bars.get(4)!, 1, MSI_DATA);
    const td = new Driver(th, bars.get(0)!);
    td.setup();
    td.postRx([{ id: 0, lengthBytes: 4096 }]);
    const [address] = await tcp.start();
    expect(address!.port).toBeGreaterThan(0);

    const events: Ev[] = [];
    const fromNic: Buffer[] = [];
    let ended = false;
    const deadline = performance.now() + 4000;
    async function until(done: () => boolean, what: string): Promise<void> {
      while (!done()) {
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        th.clock.advanceTo(th.clock.nowNs + 50_000);
        events.push(...td.poll());
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    socket = netConnect(address!.port, "127.0.0.1");
    socket.on("data", (chunk: Buffer) => fromNic.push(chunk));
    socket.on("end", () => (ended = true));
    await until(() => events.some((e) => e.type === OPENED), "Opened");
    socket.write("ping over tcp");
    await until(() => events.some((e) => e.type === RECEIVED), "Received");
    const rx = events.find((e) => e.type === RECEIVED)!;
    expect(new TextDecoder().decode(td.rxBytes(rx))).toBe("ping over tcp");
    th.ram.set(new TextEncoder().encode("pong"), TX_DATA_AT);
    td.postTx([{ address: BigInt(TX_DATA_AT), lengthBytes: 4, id: 9, connection: rx.connection, flags: 1 }]);
    await until(() => ended && events.some((e) => e.type === CLOSED), "end of stream and Closed");
    expect(Buffer.concat(fromNic).toString()).toBe("pong");
    expect(summary(events)).toEqual(["Opened c0 p0", "Received c0 #0 13B", "Sent c0 #9 4B", "Closed c0"]);
    expect(log).toEqual([]);
  });
});
