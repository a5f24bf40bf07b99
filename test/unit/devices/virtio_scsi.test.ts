// The virtio-scsi controller against docs/hardware.md ("virtio-scsi controller") and the virtio spec (REFERENCE.md
// §4): a bare bus with the device plugged, the test playing the firmware's driver through config cycles, BAR
// accesses and split virtqueues it lays out in RAM itself, over in-memory disks. Each case checks what lands in RAM
// (responses, data, used ring), in the registers and as MSI-X interrupts, in the order a driver would see them.
import { beforeEach, describe, expect, it } from "vitest";
import { memoryDisk, type DiskBackend } from "../../../host/devices/disk_backend.ts";
import { naaFromName, ScsiDisk } from "../../../host/devices/scsi_disk.ts";
import { VirtioScsiDevice } from "../../../host/devices/virtio_scsi.ts";
import { BusHarness } from "../../support/bus_harness.ts";

// Offsets and codes spelled out from the spec rather than imported, so a wrong constant in the model cannot agree
// with itself. §4.1.4.3 common configuration:
const C = {
  DFSELECT: 0x00, DF: 0x04, GFSELECT: 0x08, GF: 0x0c, MSIX: 0x10, NUMQ: 0x12, STATUS: 0x14, GEN: 0x15,
  Q_SELECT: 0x16, Q_SIZE: 0x18, Q_MSIX: 0x1a, Q_ENABLE: 0x1c, Q_NOFF: 0x1e, Q_DESC: 0x20, Q_DRIVER: 0x28, Q_DEVICE: 0x30,
};
const ISR = 0x1000;
const DEVCFG = 0x2000;
const NOTIFY = 0x3000;
const S = { ACK: 1, DRIVER: 2, DRIVER_OK: 4, FEATURES_OK: 8, NEEDS_RESET: 64, FAILED: 128 };
const RESP = { OK: 0, ABORTED: 2, BAD_TARGET: 3, TRANSPORT_FAILURE: 6, FAILURE: 9 };
const GOOD = 0;
const CHECK_CONDITION = 2;
const VQ_CONTROL = 0;
const VQ_EVENT = 1;
const VQ_REQUEST = 2;
const SLOT = 1;
const QUEUE_SIZE = 16;
const BLOCK = 512;
const DISK_BYTES = 1 << 20;
const MSI_BASE = 0x20; // vector v arrives as irq 0x20 + v
const VECTOR = { config: 0, control: 1, event: 2, request: 3 };
const RESP_HEADER_BYTES = 108; // 12 + sense_size 96
const UNMAPPED = 0x8000_0000n; // between RAM (4 MiB) and the PCI window: nothing decodes it
const LATENCY_NS = { read: 20_000, write: 30_000, flush: 200_000 };

interface Buffer {
  address: bigint;
  length: number;
  write: boolean;
}

// The driver side: rings at fixed places in RAM, buffers from a bump allocator, descriptors handed out in a ring.
class Driver {
  readonly h = new BusHarness();
  readonly view = new DataView(this.h.memory.buffer);
  readonly device: VirtioScsiDevice;
  readonly backends: DiskBackend[];
  readonly disks: ScsiDisk[];
  readonly log: string[] = [];
  bar0 = 0n;
  bar4 = 0n;
  private heap = 0x10_0000;
  private descNext = [0, 0, 0];
  private availIdx = [0, 0, 0];
  size = [QUEUE_SIZE, QUEUE_SIZE, QUEUE_SIZE];

  constructor(diskCount = 1, latencyNs: { read: number; write: number; flush: number } = LATENCY_NS) {
    this.backends = Array.from({ length: diskCount }, (_, i) => memoryDisk(`d${i}`, DISK_BYTES, BLOCK));
    this.disks = this.backends.map((b, i) => new ScsiDisk(b, { vendor: "WASMIOP", product: "VDISK", serial: `S${i}`, naa: naaFromName(`d${i}`) }));
    this.device = new VirtioScsiDevice({ name: "vscsi", clock: this.h.clock, disks: this.disks, queueSize: QUEUE_SIZE, log: (m) => this.log.push(m), latencyNs });
    this.h.plug(SLOT, this.device);
  }

  descAddress(q: number): bigint { return BigInt(0x1_0000 * (q + 1)); }
  availAddress(q: number): bigint { return this.descAddress(q) + 0x1000n; }
  usedAddress(q: number): bigint { return this.descAddress(q) + 0x2000n; }

  r(offset: number, size: 1 | 2 | 4 | 8): number { return Number(this.h.bus.read(this.bar0 + BigInt(offset), size)); }
  w(offset: number, size: 1 | 2 | 4, value: number): void { this.h.bus.write(this.bar0 + BigInt(offset), size, value); }

  /** PCI enable, MSI-X pointed at the MSI region, and nothing else. */
  enable(): void {
    const bars = this.h.enable(SLOT);
    this.bar0 = bars.get(0)!;
    this.bar4 = bars.get(4)!;
    this.h.enableMsix(SLOT, this.bar4, 4, MSI_BASE);
  }

  /** §3.1.1 initialization with VERSION_1, the three queues and their vectors, then DRIVER_OK. */
  init(): void {
    if (this.bar0 === 0n) this.enable();
    this.w(C.STATUS, 1, 0);
    this.w(C.STATUS, 1, S.ACK);
    this.w(C.STATUS, 1, S.ACK | S.DRIVER);
    this.w(C.GFSELECT, 4, 1);
    this.w(C.GF, 4, 1);
    this.w(C.STATUS, 1, S.ACK | S.DRIVER | S.FEATURES_OK);
    expect(this.r(C.STATUS, 1) & S.FEATURES_OK).toBe(S.FEATURES_OK);
    this.w(C.MSIX, 2, VECTOR.config);
    for (let q = 0; q < 3; q++) this.setupQueue(q, this.size[q]!, [VECTOR.control, VECTOR.event, VECTOR.request][q]!);
    this.w(C.STATUS, 1, S.ACK | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  }

  setupQueue(q: number, size: number, vector: number): void {
    this.w(C.Q_SELECT, 2, q);
    if (size !== QUEUE_SIZE) this.w(C.Q_SIZE, 2, size);
    for (const base of [this.descAddress(q), this.availAddress(q), this.usedAddress(q)]) this.h.ram.fill(0, Number(base), Number(base) + 0x1000);
    this.w(C.Q_MSIX, 2, vector);
    for (const [offset, address] of [[C.Q_DESC, this.descAddress(q)], [C.Q_DRIVER, this.availAddress(q)], [C.Q_DEVICE, this.usedAddress(q)]] as const) {
      this.w(offset, 4, Number(address & 0xffff_ffffn));
      this.w(offset + 4, 4, Number(address >> 32n));
    }
    this.w(C.Q_ENABLE, 2, 1);
    this.descNext[q] = 0;
    this.availIdx[q] = 0;
  }

  alloc(length: number, fill?: Uint8Array): bigint {
    const address = this.heap;
    this.heap += Math.ceil(Math.max(length, 1) / 64) * 64;
    if (fill !== undefined) this.h.ram.set(fill, address);
    else this.h.ram.fill(0, address, address + length);
    return BigInt(address);
  }

  /** Writes a descriptor chain and its available-ring entry; returns the head. Does not notify. */
  post(q: number, buffers: Buffer[]): number {
    const size = this.size[q]!;
    const indexes = buffers.map((_, i) => (this.descNext[q]! + i) % size);
    this.descNext[q] = (this.descNext[q]! + buffers.length) % size;
    buffers.forEach((b, i) => this.writeDesc(q, indexes[i]!, b.address, b.length, (b.write ? 2 : 0) | (i + 1 < buffers.length ? 1 : 0), indexes[i + 1] ?? 0));
    this.postHead(q, indexes[0]!);
    return indexes[0]!;
  }

  writeDesc(q: number, index: number, address: bigint, length: number, flags: number, next: number): void {
    const at = Number(this.descAddress(q)) + 16 * index;
    this.view.setBigUint64(at, address, true);
    this.view.setUint32(at + 8, length, true);
    this.view.setUint16(at + 12, flags, true);
    this.view.setUint16(at + 14, next, true);
  }

  postHead(q: number, head: number): void {
    const avail = Number(this.availAddress(q));
    this.view.setUint16(avail + 4 + 2 * (this.availIdx[q]! % this.size[q]!), head, true);
    this.availIdx[q] = (this.availIdx[q]! + 1) & 0xffff;
    this.view.setUint16(avail + 2, this.availIdx[q]!, true);
  }

  notify(q: number): void { this.w(NOTIFY + 4 * q, 2, q); }
  setAvailFlags(q: number, flags: number): void { this.view.setUint16(Number(this.availAddress(q)), flags, true); }
  usedIdx(q: number): number { return this.view.getUint16(Number(this.usedAddress(q)) + 2, true); }
  usedElem(q: number, n: number): { id: number; len: number } {
    const at = Number(this.usedAddress(q)) + 4 + 8 * (n % this.size[q]!);
    return { id: this.view.getUint32(at, true), len: this.view.getUint32(at + 4, true) };
  }
  run(): void { while (this.h.clock.runNext()); }
  status(): number { return this.r(C.STATUS, 1); }
}

// A virtio_scsi_cmd_req with the Linux LUN encoding (§5.6.6.1; drivers/scsi/virtio_scsi.c).
function cmdReq(cdb: number[], lun = 0, tag = 1n, target = 0): Uint8Array {
  const req = new Uint8Array(51);
  req.set([1, target, (lun >> 8) | 0x40, lun & 0xff]);
  new DataView(req.buffer).setBigUint64(8, tag, true);
  req.set(cdb, 19);
  return req;
}

interface Command {
  head: number;
  response: bigint;
  dataIn: { address: bigint; length: number }[];
}

interface Response {
  senseLen: number;
  residual: number;
  status: number;
  response: number;
  sense: Uint8Array;
}

// Submits one command: the request header (optionally split), data-out split in pieces, the response header, then
// data-in split in pieces. Notifies unless told not to.
function submit(d: Driver, req: Uint8Array, options: { out?: Uint8Array[]; inLengths?: number[]; splitHeaderAt?: number; notify?: boolean } = {}): Command {
  const buffers: Buffer[] = [];
  const headerParts = options.splitHeaderAt === undefined ? [req] : [req.subarray(0, options.splitHeaderAt), req.subarray(options.splitHeaderAt)];
  for (const part of headerParts) buffers.push({ address: d.alloc(part.length, part), length: part.length, write: false });
  for (const piece of options.out ?? []) buffers.push({ address: d.alloc(piece.length, piece), length: piece.length, write: false });
  const response = d.alloc(RESP_HEADER_BYTES, new Uint8Array(RESP_HEADER_BYTES).fill(0xee));
  buffers.push({ address: response, length: RESP_HEADER_BYTES, write: true });
  const dataIn = (options.inLengths ?? []).map((length) => ({ address: d.alloc(length), length }));
  for (const b of dataIn) buffers.push({ ...b, write: true });
  const head = d.post(VQ_REQUEST, buffers);
  if (options.notify !== false) d.notify(VQ_REQUEST);
  return { head, response, dataIn };
}

function readResponse(d: Driver, command: Command): Response {
  const at = Number(command.response);
  const senseLen = d.view.getUint32(at, true);
  return { senseLen, residual: d.view.getUint32(at + 4, true), status: d.h.ram[at + 10]!, response: d.h.ram[at + 11]!, sense: d.h.ram.slice(at + 12, at + 12 + senseLen) };
}

function readDataIn(d: Driver, command: Command): Uint8Array {
  const parts = command.dataIn.map((b) => d.h.ram.slice(Number(b.address), Number(b.address) + b.length));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function rw10(opcode: number, lba: number, blocks: number): number[] {
  return [opcode, 0, lba >>> 24, (lba >> 16) & 0xff, (lba >> 8) & 0xff, lba & 0xff, 0, blocks >> 8, blocks & 0xff, 0];
}

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
}

function irqCount(d: Driver, vector: number): number {
  return d.h.irqs.filter((v) => v === MSI_BASE + vector).length;
}

// A control-queue request and its response buffer, notified; on the file-level driver `d`.
function control(request: Uint8Array, responseBytes: number): { head: number; response: bigint } {
  const response = d.alloc(responseBytes, new Uint8Array(responseBytes).fill(0xee));
  const head = d.post(VQ_CONTROL, [{ address: d.alloc(request.length, request), length: request.length, write: false }, { address: response, length: responseBytes, write: true }]);
  d.notify(VQ_CONTROL);
  return { head, response };
}

// A virtio_scsi_ctrl_tmf_req (§5.6.6.2) for `lun`.
function tmf(subtype: number, tag: bigint, lun = 0): Uint8Array {
  const req = new Uint8Array(24);
  const view = new DataView(req.buffer);
  view.setUint32(0, 0, true);
  view.setUint32(4, subtype, true);
  req.set([1, 0, (lun >> 8) | 0x40, lun & 0xff], 8);
  view.setBigUint64(16, tag, true);
  return req;
}

// Walks the capability list from 0x34; returns [offset, id] pairs.
function capabilities(d: Driver): [number, number][] {
  const out: [number, number][] = [];
  let at = d.h.cfgRead(SLOT, 0x34, 1);
  for (let n = 0; at !== 0 && n < 48; n++) {
    out.push([at, d.h.cfgRead(SLOT, at, 1)]);
    at = d.h.cfgRead(SLOT, at + 1, 1);
  }
  return out;
}

let d: Driver;
beforeEach(() => {
  d = new Driver();
});

describe("PCI header and capabilities", () => {
  it("identifies as a modern virtio-scsi function (vendor 1AF4, device 1048, class 010000, revision 1)", () => {
    expect(d.h.cfgRead(SLOT, 0x00, 2)).toBe(0x1af4);
    expect(d.h.cfgRead(SLOT, 0x02, 2)).toBe(0x1048);
    expect(d.h.cfgRead(SLOT, 0x08, 1)).toBe(1);
    expect(d.h.cfgRead(SLOT, 0x08) >>> 8).toBe(0x010000);
    expect(d.h.cfgRead(SLOT, 0x06, 2) & 0x10).toBe(0x10); // capability list
  });

  it("lists COMMON, NOTIFY (multiplier 4), ISR and DEVICE virtio caps in BAR 0 at the documented offsets, and MSI-X", () => {
    const caps = capabilities(d);
    expect(caps.filter(([, id]) => id === 0x11)).toHaveLength(1);
    const virtio = caps.filter(([, id]) => id === 0x09).map(([at]) => ({
      len: d.h.cfgRead(SLOT, at + 2, 1), type: d.h.cfgRead(SLOT, at + 3, 1), bar: d.h.cfgRead(SLOT, at + 4, 1),
      offset: d.h.cfgRead(SLOT, at + 8), length: d.h.cfgRead(SLOT, at + 12), at,
    }));
    const byType = new Map(virtio.map((c) => [c.type, c]));
    expect([...byType.keys()].sort()).toEqual([1, 2, 3, 4]);
    for (const c of virtio) expect(c.bar).toBe(0);
    expect(byType.get(1)).toMatchObject({ len: 16, offset: 0x0000 });
    expect(byType.get(1)!.length).toBeGreaterThanOrEqual(0x38);
    expect(byType.get(2)).toMatchObject({ len: 20, offset: 0x3000 });
    expect(d.h.cfgRead(SLOT, byType.get(2)!.at + 16)).toBe(4); // notify_off_multiplier
    expect(byType.get(2)!.length).toBeGreaterThanOrEqual(2 * 4 + 2); // §4.1.4.4: room for queue 2's notify
    expect(byType.get(3)).toMatchObject({ len: 16, offset: 0x1000 });
    expect(byType.get(3)!.length).toBeGreaterThanOrEqual(1);
    expect(byType.get(4)).toMatchObject({ len: 16, offset: 0x2000, length: 36 });
    // MSI-X: 4 vectors, table at BAR 4 + 0, PBA at BAR 4 + 0x800.
    const msix = caps.find(([, id]) => id === 0x11)![0];
    expect(d.h.cfgRead(SLOT, msix + 2, 2) & 0x7ff).toBe(3);
    expect(d.h.cfgRead(SLOT, msix + 4)).toBe(0x000 | 4);
    expect(d.h.cfgRead(SLOT, msix + 8)).toBe(0x800 | 4);
  });

  it("sizes BAR 0 as 64-bit 16 KiB and BAR 4 as 32-bit 4 KiB, and no other BAR", () => {
    const sized: number[] = [];
    for (let i = 0; i < 6; i++) {
      d.h.cfgWrite(SLOT, 0x10 + 4 * i, 0xffff_ffff);
      sized.push(d.h.cfgRead(SLOT, 0x10 + 4 * i) >>> 0);
    }
    expect(sized[0]).toBe((0xffff_c000 | 0b100) >>> 0);
    expect(sized[1]).toBe(0xffff_ffff); // the upper half of BAR 0
    expect(sized[2]).toBe(0);
    expect(sized[3]).toBe(0);
    expect(sized[4]).toBe(0xffff_f000);
    expect(sized[5]).toBe(0);
  });
});

describe("common configuration", () => {
  beforeEach(() => d.enable());

  it("offers VERSION_1 only and keeps FEATURES_OK only for a subset that includes it (§3.1.1 step 6)", () => {
    const offered = [0, 1, 2].map((sel) => {
      d.w(C.DFSELECT, 4, sel);
      return d.r(C.DF, 4);
    });
    expect(offered).toEqual([0, 1, 0]);
    // INOUT (bit 0) was not offered: refused, and the re-read shows it.
    d.w(C.STATUS, 1, S.ACK | S.DRIVER);
    d.w(C.GFSELECT, 4, 0);
    d.w(C.GF, 4, 1);
    d.w(C.GFSELECT, 4, 1);
    d.w(C.GF, 4, 1);
    d.w(C.STATUS, 1, S.ACK | S.DRIVER | S.FEATURES_OK);
    expect(d.status()).toBe(S.ACK | S.DRIVER);
    d.w(C.GFSELECT, 4, 0);
    expect(d.r(C.GF, 4)).toBe(1); // what the driver wrote reads back
    // Without VERSION_1: refused too.
    d.w(C.STATUS, 1, 0);
    d.w(C.STATUS, 1, S.ACK | S.DRIVER);
    d.w(C.STATUS, 1, S.ACK | S.DRIVER | S.FEATURES_OK);
    expect(d.status() & S.FEATURES_OK).toBe(0);
    // VERSION_1 alone sticks.
    d.w(C.STATUS, 1, 0);
    d.w(C.STATUS, 1, S.ACK | S.DRIVER);
    d.w(C.GFSELECT, 4, 1);
    d.w(C.GF, 4, 1);
    d.w(C.STATUS, 1, S.ACK | S.DRIVER | S.FEATURES_OK);
    expect(d.status()).toBe(S.ACK | S.DRIVER | S.FEATURES_OK);
  });

  it("sets up queues: size down to a smaller power of two, vectors, 64-bit addresses as halves, enable, notify_off", () => {
    expect(d.r(C.NUMQ, 2)).toBe(3);
    d.w(C.Q_SELECT, 2, 2);
    expect(d.r(C.Q_SIZE, 2)).toBe(QUEUE_SIZE);
    d.w(C.Q_SIZE, 2, 12); // not a power of two
    expect(d.r(C.Q_SIZE, 2)).toBe(QUEUE_SIZE);
    d.w(C.Q_SIZE, 2, 32); // above the maximum
    expect(d.r(C.Q_SIZE, 2)).toBe(QUEUE_SIZE);
    d.w(C.Q_SIZE, 2, 4);
    expect(d.r(C.Q_SIZE, 2)).toBe(4);
    expect(d.r(C.Q_NOFF, 2)).toBe(2);
    d.w(C.Q_MSIX, 2, 3);
    expect(d.r(C.Q_MSIX, 2)).toBe(3);
    d.w(C.Q_MSIX, 2, 4); // only vectors 0..3 exist
    expect(d.r(C.Q_MSIX, 2)).toBe(0xffff);
    d.w(C.MSIX, 2, 9);
    expect(d.r(C.MSIX, 2)).toBe(0xffff);
    d.w(C.Q_DESC, 4, 0x1234_5670);
    d.w(C.Q_DESC + 4, 4, 0x9);
    expect([d.r(C.Q_DESC, 4), d.r(C.Q_DESC + 4, 4)]).toEqual([0x1234_5670, 9]);
    expect(d.r(C.Q_ENABLE, 2)).toBe(0);
    d.w(C.Q_DESC, 4, 0x1_0000);
    d.w(C.Q_DESC + 4, 4, 0);
    d.w(C.Q_DRIVER, 4, 0x1_1000);
    d.w(C.Q_DEVICE, 4, 0x1_2000);
    d.w(C.Q_ENABLE, 2, 1);
    expect(d.r(C.Q_ENABLE, 2)).toBe(1);
    d.w(C.Q_SIZE, 2, 8); // ignored while enabled
    expect(d.r(C.Q_SIZE, 2)).toBe(4);
    d.w(C.Q_SELECT, 2, 3); // no such queue
    expect(d.r(C.Q_SIZE, 2)).toBe(0);
    d.w(C.Q_SELECT, 2, 0);
    expect(d.r(C.Q_ENABLE, 2)).toBe(0);
  });

  it("answers a wrong-size or unaligned access as a guest error: all ones, write ignored", () => {
    const before = d.device.guestErrorCount;
    expect(d.r(C.STATUS, 4) >>> 0).toBe(0xffff_ffff);
    expect(d.r(C.Q_SELECT + 1, 1)).toBe(0xff);
    d.w(C.Q_SELECT, 1, 2); // a 16-bit field written with one byte
    expect(d.r(C.Q_SELECT, 2)).toBe(0);
    expect(d.r(0x800, 4) >>> 0).toBe(0xffff_ffff); // a hole in BAR 0
    expect(d.device.guestErrorCount).toBe(before + 4);
    expect(d.log.some((m) => m.includes("guest error"))).toBe(true);
  });

  it("exposes the §5.6.4 device config; sense_size and cdb_size are writable and reset restores them", () => {
    const d2 = new Driver(3);
    d2.enable();
    const fields = [0, 4, 8, 12, 16, 20, 24].map((o) => d2.r(DEVCFG + o, 4));
    expect(fields).toEqual([1, 128, 0xffff, QUEUE_SIZE, 16, 96, 32]);
    expect([d2.r(DEVCFG + 28, 2), d2.r(DEVCFG + 30, 2), d2.r(DEVCFG + 32, 4)]).toEqual([0, 0, 2]);
    d2.w(DEVCFG + 20, 4, 64);
    d2.w(DEVCFG + 24, 4, 16);
    d2.w(DEVCFG + 0, 4, 7); // read-only
    expect([d2.r(DEVCFG + 20, 4), d2.r(DEVCFG + 24, 4), d2.r(DEVCFG + 0, 4)]).toEqual([64, 16, 1]);
    d2.w(C.STATUS, 1, 0);
    expect([d2.r(DEVCFG + 20, 4), d2.r(DEVCFG + 24, 4)]).toEqual([96, 32]);
  });

  it("restores every power-on value when 0 is written to device_status", () => {
    d.init();
    d.w(C.DFSELECT, 4, 1);
    d.w(C.Q_SELECT, 2, 2);
    d.w(C.STATUS, 1, 0);
    expect(d.status()).toBe(0);
    expect([d.r(C.DFSELECT, 4), d.r(C.GF, 4), d.r(C.MSIX, 2), d.r(C.Q_SELECT, 2)]).toEqual([0, 0, 0xffff, 0]);
    for (let q = 0; q < 3; q++) {
      d.w(C.Q_SELECT, 2, q);
      expect([d.r(C.Q_SIZE, 2), d.r(C.Q_ENABLE, 2), d.r(C.Q_MSIX, 2), d.r(C.Q_DESC, 4), d.r(C.Q_DRIVER, 4), d.r(C.Q_DEVICE, 4)]).toEqual([QUEUE_SIZE, 0, 0xffff, 0, 0, 0]);
    }
  });
});

describe("request queue", () => {
  beforeEach(() => d.init());

  it("answers TEST UNIT READY, INQUIRY and READ CAPACITY(16) with GOOD and the disk's data", () => {
    const tur = submit(d, cmdReq([0x00, 0, 0, 0, 0, 0]));
    const inquiry = submit(d, cmdReq([0x12, 0, 0, 0, 96, 0], 0, 2n), { inLengths: [96] });
    const capacity = submit(d, cmdReq([0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], 0, 3n), { inLengths: [32] });
    d.run();
    expect(d.usedIdx(VQ_REQUEST)).toBe(3);
    for (const c of [tur, inquiry, capacity]) expect(readResponse(d, c)).toMatchObject({ response: RESP.OK, status: GOOD, senseLen: 0 });
    expect(d.usedElem(VQ_REQUEST, 0)).toEqual({ id: tur.head, len: RESP_HEADER_BYTES });
    expect(d.usedElem(VQ_REQUEST, 1)).toEqual({ id: inquiry.head, len: RESP_HEADER_BYTES + 96 });
    const inq = readDataIn(d, inquiry);
    expect(inq[0]! & 0x1f).toBe(0); // direct-access block device
    expect(new TextDecoder().decode(inq.subarray(8, 16)).trim()).toBe("WASMIOP");
    const cap = new DataView(readDataIn(d, capacity).buffer);
    expect(cap.getBigUint64(0)).toBe(BigInt(DISK_BYTES / BLOCK - 1));
    expect(cap.getUint32(8)).toBe(BLOCK);
  });

  it("WRITE(10) then READ(10) through chains spanning several buffers return the data written", () => {
    const data = pattern(4 * BLOCK, 3);
    const write = submit(d, cmdReq(rw10(0x2a, 10, 4)), { splitHeaderAt: 7, out: [data.subarray(0, 100), data.subarray(100, 1500), data.subarray(1500)] });
    d.run();
    expect(readResponse(d, write)).toMatchObject({ response: RESP.OK, status: GOOD, residual: 0 });
    expect(d.usedElem(VQ_REQUEST, 0)).toEqual({ id: write.head, len: RESP_HEADER_BYTES });
    const read = submit(d, cmdReq(rw10(0x28, 10, 4), 0, 2n), { inLengths: [512, 1000, 24, 512] });
    d.run();
    expect(readResponse(d, read)).toMatchObject({ response: RESP.OK, status: GOOD, residual: 0 });
    expect(d.usedElem(VQ_REQUEST, 1)).toEqual({ id: read.head, len: RESP_HEADER_BYTES + 4 * BLOCK });
    expect(readDataIn(d, read)).toEqual(data);
    expect(d.device.stats).toMatchObject({ requests: 2, bytesWritten: 4 * BLOCK, bytesRead: 4 * BLOCK, errors: 0 });
  });

  it("reads a large READ into the driver's buffer ahead of its completion only when nobody watches RAM", () => {
    // Proves dataInPlace (32 KiB or more, in one run of adjacent data-in buffers, RAM without a trace or a write
    // watcher): the disk reads straight into the buffer at submission, and the completion records the DMA without
    // copying (the same bytes, response and used length). With the trace on, or buffers that are not adjacent, the
    // buffer changes only at completion.
    const data = pattern(128 * BLOCK, 5);
    submit(d, cmdReq(rw10(0x2a, 20, 128)), { out: [data] });
    d.run();
    const cases: { traced: boolean; inLengths: number[]; early: boolean }[] = [
      { traced: true, inLengths: [32 * 1024, 32 * 1024], early: false },
      { traced: false, inLengths: [32 * 1024, 32 * 1024], early: true },
      { traced: false, inLengths: [100, 64 * 1024 - 100], early: false }, // a 28-byte gap between the two
      { traced: false, inLengths: [16 * BLOCK, 16 * BLOCK, 16 * BLOCK, 80 * BLOCK], early: true },
    ];
    for (const [n, c] of cases.entries()) {
      (d.h.trace as { enabled: boolean }).enabled = c.traced;
      const read = submit(d, cmdReq(rw10(0x28, 20, 128), 0, BigInt(n + 2)), { inLengths: c.inLengths });
      expect(readDataIn(d, read).every((byte) => byte === 0)).toBe(!c.early);
      d.run();
      expect(readResponse(d, read)).toMatchObject({ response: RESP.OK, status: GOOD, residual: 0 });
      expect(d.usedElem(VQ_REQUEST, n + 1)).toEqual({ id: read.head, len: RESP_HEADER_BYTES + data.length });
      expect(readDataIn(d, read)).toEqual(data);
    }
    (d.h.trace as { enabled: boolean }).enabled = true;
  });

  it("writes a WRITE's data from the driver's buffer, without a copy, only when nobody watches RAM", () => {
    // Proves dataOutPlace: data-out in one run of adjacent buffers of RAM without a trace or a write watcher reaches
    // the disk as a view of that RAM (its DMA still made, into itself); with the trace on, or buffers that are not
    // adjacent, it is gathered into a buffer of the device's own first. The disk has the same bytes either way.
    const written: Uint8Array[] = [];
    const backend = d.backends[0]!;
    const write = backend.write.bind(backend);
    backend.write = (offsetBytes, data) => { written.push(data); write(offsetBytes, data); };
    const ram = d.h.ram.buffer;
    const cases: { traced: boolean; outLengths: number[]; inPlace: boolean }[] = [
      { traced: true, outLengths: [8 * BLOCK], inPlace: false },
      { traced: false, outLengths: [8 * BLOCK], inPlace: true },
      { traced: false, outLengths: [2 * BLOCK, 6 * BLOCK], inPlace: true }, // adjacent pieces: one run
      { traced: false, outLengths: [100, 8 * BLOCK - 100], inPlace: false }, // a 28-byte gap between the two
    ];
    for (const [n, c] of cases.entries()) {
      (d.h.trace as { enabled: boolean }).enabled = c.traced;
      const data = pattern(8 * BLOCK, 11 + n);
      const pieces = c.outLengths.map((_, i) => data.subarray(c.outLengths.slice(0, i).reduce((a, b) => a + b, 0)).subarray(0, c.outLengths[i]));
      const command = submit(d, cmdReq(rw10(0x2a, 40, 8), 0, BigInt(n + 1)), { out: pieces });
      d.run();
      expect(readResponse(d, command)).toMatchObject({ response: RESP.OK, status: GOOD, residual: 0 });
      expect(written[n]!.buffer === ram).toBe(c.inPlace);
      const read = submit(d, cmdReq(rw10(0x28, 40, 8), 0, BigInt(n + 10)), { inLengths: [8 * BLOCK] });
      d.run();
      expect(readDataIn(d, read)).toEqual(data);
    }
    (d.h.trace as { enabled: boolean }).enabled = true;
  });

  it("stores the held WRITEs of one notify before answering any, and answers one the host failed MEDIUM ERROR", () => {
    // Proves releaseHeldWrites: with a backend that holds writes (a file disk does), the WRITEs of one notify whose
    // data is in place are handed over held and stored once, at the end of the notify, before any completion; the one
    // whose store fails (index 1 here) is answered CHECK CONDITION, MEDIUM ERROR, WRITE ERROR (03h/0Ch), the others GOOD.
    (d.h.trace as { enabled: boolean }).enabled = false;
    const backend = d.backends[0]!;
    const held: { offsetBytes: number; data: Uint8Array }[] = [];
    const releases: number[] = [];
    backend.writeHeld = (offsetBytes, data) => held.push({ offsetBytes, data }) - 1;
    backend.releaseHeld = () => {
      releases.push(held.length);
      for (const [index, h] of held.entries()) if (index !== 1) backend.write(h.offsetBytes, h.data);
      const failed = held.length > 1 ? [1] : [];
      held.length = 0;
      return failed;
    };
    const data = [pattern(2 * BLOCK, 21), pattern(2 * BLOCK, 22), pattern(2 * BLOCK, 23)];
    const writes = data.map((block, i) => submit(d, cmdReq(rw10(0x2a, 60 + 2 * i, 2), 0, BigInt(i + 1)), { out: [block], notify: i === 2 }));
    expect(releases).toEqual([3]); // one release for the notify, the three held
    expect(d.usedIdx(VQ_REQUEST)).toBe(0); // nothing answered before it
    d.run();
    expect(writes.map((w) => readResponse(d, w).status)).toEqual([GOOD, CHECK_CONDITION, GOOD]);
    const sense = readResponse(d, writes[1]!).sense;
    expect([sense[2]! & 0xf, sense[12], sense[13]]).toEqual([0x3, 0x0c, 0x00]);
    expect(readResponse(d, writes[1]!).residual).toBe(2 * BLOCK);
    const read = submit(d, cmdReq(rw10(0x28, 60, 6), 0, 9n), { inLengths: [6 * BLOCK] });
    d.run();
    expect(readDataIn(d, read)).toEqual(new Uint8Array([...data[0]!, ...new Uint8Array(2 * BLOCK), ...data[2]!]));
    expect(d.device.stats).toMatchObject({ bytesWritten: 4 * BLOCK, errors: 1 });
    (d.h.trace as { enabled: boolean }).enabled = true;
  });

  it("reports a residual when the data-in buffers are larger than the transfer", () => {
    const read = submit(d, cmdReq(rw10(0x28, 0, 1)), { inLengths: [2 * BLOCK] });
    d.run();
    expect(readResponse(d, read)).toMatchObject({ response: RESP.OK, status: GOOD, residual: BLOCK });
    expect(d.usedElem(VQ_REQUEST, 0).len).toBe(RESP_HEADER_BYTES + BLOCK);
  });

  it("returns sense data with CHECK CONDITION for a bad LBA", () => {
    const read = submit(d, cmdReq(rw10(0x28, DISK_BYTES / BLOCK, 1)), { inLengths: [BLOCK] });
    d.run();
    const r = readResponse(d, read);
    expect(r).toMatchObject({ response: RESP.OK, status: CHECK_CONDITION, residual: BLOCK });
    expect(r.senseLen).toBeGreaterThanOrEqual(18);
    expect([r.sense[2]! & 0xf, r.sense[12]]).toEqual([0x5, 0x21]); // ILLEGAL REQUEST, LBA out of range
  });

  it("answers REPORT LUNS for two disks, on LUN 0 and on the well-known LUN C1 01", () => {
    const d2 = new Driver(2);
    d2.init();
    const reportLuns = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0];
    const onLun0 = submit(d2, cmdReq(reportLuns), { inLengths: [64] });
    const wlunReq = cmdReq(reportLuns, 0, 2n);
    wlunReq.set([0xc1, 0x01, 0, 0]);
    const onWlun = submit(d2, wlunReq, { inLengths: [64] });
    d2.run();
    const expected = Uint8Array.from([0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for (const c of [onLun0, onWlun]) {
      expect(readResponse(d2, c)).toMatchObject({ response: RESP.OK, status: GOOD, residual: 64 - 24 });
      expect(readDataIn(d2, c).subarray(0, 24)).toEqual(expected);
    }
    // LUN 1 reaches the second disk: write there, read LUN 0 and LUN 1 back.
    const block = pattern(BLOCK, 9);
    submit(d2, cmdReq(rw10(0x2a, 0, 1), 1, 3n), { out: [block] });
    d2.run();
    const read0 = submit(d2, cmdReq(rw10(0x28, 0, 1), 0, 4n), { inLengths: [BLOCK] });
    const read1 = submit(d2, cmdReq(rw10(0x28, 0, 1), 1, 5n), { inLengths: [BLOCK] });
    d2.run();
    expect(readDataIn(d2, read0)).toEqual(new Uint8Array(BLOCK));
    expect(readDataIn(d2, read1)).toEqual(block);
  });

  it("answers BAD_TARGET for target 1, an unknown LUN, and a LUN address that is not single-level", () => {
    const target1 = submit(d, cmdReq([0, 0, 0, 0, 0, 0], 0, 1n, 1));
    const lun5 = submit(d, cmdReq([0, 0, 0, 0, 0, 0], 5, 2n));
    const bad = cmdReq([0, 0, 0, 0, 0, 0], 0, 3n);
    bad[0] = 2;
    const notSingleLevel = submit(d, bad);
    d.run();
    for (const c of [target1, lun5, notSingleLevel]) expect(readResponse(d, c).response).toBe(RESP.BAD_TARGET);
    expect(d.usedIdx(VQ_REQUEST)).toBe(3);
  });

  it("answers TRANSPORT_FAILURE for data DMA to or from an unmapped address, without a host exception", () => {
    const read: Command = submit(d, cmdReq(rw10(0x28, 0, 1)), { notify: false });
    // Re-point the data-in: a chain of header, response, and one writable buffer at an unmapped address.
    const response = d.alloc(RESP_HEADER_BYTES);
    const header = cmdReq(rw10(0x28, 0, 1), 0, 2n);
    const head = d.post(VQ_REQUEST, [
      { address: d.alloc(51, header), length: 51, write: false },
      { address: response, length: RESP_HEADER_BYTES, write: true },
      { address: UNMAPPED, length: BLOCK, write: true },
    ]);
    const write = d.post(VQ_REQUEST, [
      { address: d.alloc(51, cmdReq(rw10(0x2a, 0, 1), 0, 3n)), length: 51, write: false },
      { address: UNMAPPED, length: BLOCK, write: false },
      { address: d.alloc(RESP_HEADER_BYTES), length: RESP_HEADER_BYTES, write: true },
    ]);
    expect(() => {
      d.notify(VQ_REQUEST);
      d.run();
    }).not.toThrow();
    expect(d.usedIdx(VQ_REQUEST)).toBe(3);
    expect(readResponse(d, read).response).toBe(RESP.OK); // the well-formed one before them is untouched
    expect(d.usedElem(VQ_REQUEST, 1)).toEqual({ id: head, len: RESP_HEADER_BYTES });
    expect(d.h.ram[Number(response) + 11]).toBe(RESP.TRANSPORT_FAILURE);
    expect(d.usedElem(VQ_REQUEST, 2).id).toBe(write);
    expect(d.device.stats.errors).toBe(2);
    expect(d.status() & S.NEEDS_RESET).toBe(0);
  });

  it("completes in submission order after the modelled latency, several in flight at once", () => {
    const read = submit(d, cmdReq(rw10(0x28, 0, 1)), { inLengths: [BLOCK], notify: false });
    const flush = submit(d, cmdReq([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0, 2n), { notify: false });
    const tur = submit(d, cmdReq([0, 0, 0, 0, 0, 0], 0, 3n));
    expect(d.device.inFlightCount).toBe(3);
    d.h.clock.advanceTo(LATENCY_NS.read - 1);
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
    d.h.clock.advanceTo(LATENCY_NS.read);
    expect(d.usedIdx(VQ_REQUEST)).toBe(1);
    d.h.clock.advanceTo(LATENCY_NS.flush - 1);
    expect(d.usedIdx(VQ_REQUEST)).toBe(1); // TUR has no latency of its own but waits for the flush before it
    d.h.clock.advanceTo(LATENCY_NS.flush);
    expect([0, 1, 2].map((n) => d.usedElem(VQ_REQUEST, n).id)).toEqual([read.head, flush.head, tur.head]);
    expect(irqCount(d, VECTOR.request)).toBe(3);
  });

  it("wraps the used ring over more commands than the queue holds, and handles zero latency", () => {
    const d0 = new Driver(1, { read: 0, write: 0, flush: 0 });
    d0.init();
    for (let n = 0; n < 3 * QUEUE_SIZE + 3; n++) {
      const c = submit(d0, cmdReq([0, 0, 0, 0, 0, 0], 0, BigInt(n)));
      expect(d0.usedIdx(VQ_REQUEST)).toBe(n); // never inside the notify write
      d0.run();
      expect(d0.usedElem(VQ_REQUEST, n).id).toBe(c.head);
    }
    expect(d0.usedIdx(VQ_REQUEST)).toBe(3 * QUEUE_SIZE + 3);
  });
});

describe("interrupts", () => {
  beforeEach(() => d.init());

  it("raises the queue's MSI-X vector only after the used ring holds the completion", () => {
    const seen: number[] = [];
    const irqs = d.h.irqs;
    irqs.push = (...vectors: number[]): number => {
      seen.push(d.usedIdx(VQ_REQUEST));
      return Array.prototype.push.apply(irqs, vectors);
    };
    submit(d, cmdReq([0, 0, 0, 0, 0, 0]));
    d.run();
    expect([...irqs]).toEqual([MSI_BASE + VECTOR.request]);
    expect(seen).toEqual([1]);
  });

  it("sets the pending bit while the vector is masked and delivers on unmask, per vector and per function", () => {
    const entry = d.bar4 + BigInt(16 * VECTOR.request);
    d.h.bus.write(entry + 12n, 4, 1); // mask
    submit(d, cmdReq([0, 0, 0, 0, 0, 0]));
    d.run();
    expect(d.h.irqs).toEqual([]);
    expect(Number(d.h.bus.read(d.bar4 + 0x800n, 4))).toBe(1 << VECTOR.request);
    d.h.bus.write(entry + 12n, 4, 0);
    expect(d.h.irqs).toEqual([MSI_BASE + VECTOR.request]);
    expect(Number(d.h.bus.read(d.bar4 + 0x800n, 4))).toBe(0);
    // Function mask (message control bit 14) in config space.
    const msix = capabilities(d).find(([, id]) => id === 0x11)![0];
    const control = d.h.cfgRead(SLOT, msix + 2, 2);
    d.h.cfgWrite(SLOT, msix + 2, control | 0x4000, 2);
    submit(d, cmdReq([0, 0, 0, 0, 0, 0], 0, 2n));
    d.run();
    expect(d.h.irqs).toHaveLength(1);
    d.h.cfgWrite(SLOT, msix + 2, control, 2);
    expect(d.h.irqs).toEqual([MSI_BASE + VECTOR.request, MSI_BASE + VECTOR.request]);
  });

  it("suppresses the interrupt when the available ring says NO_INTERRUPT", () => {
    d.setAvailFlags(VQ_REQUEST, 1);
    submit(d, cmdReq([0, 0, 0, 0, 0, 0]));
    d.run();
    expect(d.usedIdx(VQ_REQUEST)).toBe(1);
    expect(d.h.irqs).toEqual([]);
  });
});

describe("control and event queues", () => {
  beforeEach(() => d.init());

  it("ABORT_TASK completes the pending request ABORTED before the TMF's FUNCTION_COMPLETE, and only once", () => {
    const read = submit(d, cmdReq(rw10(0x28, 0, 1), 0, 7n), { inLengths: [BLOCK] });
    const other = submit(d, cmdReq(rw10(0x28, 0, 1), 0, 8n), { inLengths: [BLOCK] });
    const order: string[] = [];
    const irqs = d.h.irqs;
    irqs.push = (...v: number[]): number => {
      order.push(v[0] === MSI_BASE + VECTOR.request ? "req" : "ctl");
      return Array.prototype.push.apply(irqs, v);
    };
    const answer = control(tmf(0, 7n), 1);
    d.run();
    expect(d.h.ram[Number(answer.response)]).toBe(0); // FUNCTION_COMPLETE
    expect(d.usedElem(VQ_CONTROL, 0)).toEqual({ id: answer.head, len: 1 });
    expect(d.usedIdx(VQ_REQUEST)).toBe(2);
    expect(d.usedElem(VQ_REQUEST, 0).id).toBe(read.head);
    expect(readResponse(d, read).response).toBe(RESP.ABORTED);
    expect(readResponse(d, other)).toMatchObject({ response: RESP.OK, status: GOOD });
    expect(order).toEqual(["req", "ctl", "req"]);
  });

  it("LOGICAL UNIT RESET aborts the LUN's pending requests and leaves a unit attention", () => {
    const read = submit(d, cmdReq(rw10(0x28, 0, 1), 0, 7n), { inLengths: [BLOCK] });
    const answer = control(tmf(5, 0n), 1);
    d.run();
    expect(d.h.ram[Number(answer.response)]).toBe(0);
    expect(readResponse(d, read).response).toBe(RESP.ABORTED);
    const tur = submit(d, cmdReq([0, 0, 0, 0, 0, 0], 0, 9n));
    d.run();
    const r = readResponse(d, tur);
    expect([r.status, r.sense[2]! & 0xf, r.sense[12]]).toEqual([CHECK_CONDITION, 0x6, 0x29]);
  });

  it("answers AN_QUERY with event_actual 0 and response OK", () => {
    const req = new Uint8Array(16);
    const view = new DataView(req.buffer);
    view.setUint32(0, 1, true);
    req.set([1, 0, 0x40, 0], 4);
    view.setUint32(12, 2 | 16, true);
    const answer = control(req, 5);
    d.run();
    expect([...d.h.ram.subarray(Number(answer.response), Number(answer.response) + 5)]).toEqual([0, 0, 0, 0, 0]);
    expect(d.usedElem(VQ_CONTROL, 0)).toEqual({ id: answer.head, len: 5 });
  });

  it("keeps event-queue buffers without posting anything", () => {
    for (let n = 0; n < 4; n++) d.post(VQ_EVENT, [{ address: d.alloc(16), length: 16, write: true }]);
    d.notify(VQ_EVENT);
    d.run();
    expect(d.usedIdx(VQ_EVENT)).toBe(0);
    expect(d.status() & S.NEEDS_RESET).toBe(0);
    expect(d.h.irqs).toEqual([]);
  });
});

describe("protocol violations and reset", () => {
  beforeEach(() => d.init());

  it("a descriptor loop marks the device DEVICE_NEEDS_RESET, signals the config vector, and reset recovers it", () => {
    d.writeDesc(VQ_REQUEST, 0, d.alloc(51, cmdReq([0, 0, 0, 0, 0, 0])), 51, 1, 1);
    d.writeDesc(VQ_REQUEST, 1, d.alloc(RESP_HEADER_BYTES), RESP_HEADER_BYTES, 2 | 1, 0);
    d.postHead(VQ_REQUEST, 0);
    d.notify(VQ_REQUEST);
    d.run();
    expect(d.status() & S.NEEDS_RESET).toBe(S.NEEDS_RESET);
    expect(d.h.irqs).toEqual([MSI_BASE + VECTOR.config]);
    expect(d.r(ISR, 1) & 2).toBe(2);
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
    expect(d.log.some((m) => m.includes("loops"))).toBe(true);
    // Nothing more is processed until reset.
    submit(d, cmdReq([0, 0, 0, 0, 0, 0], 0, 2n));
    d.run();
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
    d.init();
    expect(d.status() & S.NEEDS_RESET).toBe(0);
    const tur = submit(d, cmdReq([0, 0, 0, 0, 0, 0], 0, 3n));
    d.run();
    expect(readResponse(d, tur)).toMatchObject({ response: RESP.OK, status: GOOD });
  });

  it.each([
    ["a descriptor index beyond the queue", (): void => { d.writeDesc(VQ_REQUEST, 0, d.alloc(51, cmdReq([0, 0, 0, 0, 0, 0])), 51, 1, QUEUE_SIZE); d.postHead(VQ_REQUEST, 0); }],
    ["an available head beyond the queue", (): void => d.postHead(VQ_REQUEST, QUEUE_SIZE + 3)],
    ["a readable descriptor after a writable one", (): void => {
      d.post(VQ_REQUEST, [
        { address: d.alloc(51, cmdReq([0, 0, 0, 0, 0, 0])), length: 51, write: false },
        { address: d.alloc(RESP_HEADER_BYTES), length: RESP_HEADER_BYTES, write: true },
        { address: d.alloc(16), length: 16, write: false },
      ]);
    }],
    ["an INDIRECT descriptor", (): void => { d.writeDesc(VQ_REQUEST, 0, d.alloc(64), 64, 4, 0); d.postHead(VQ_REQUEST, 0); }],
    ["a response buffer too short for the header", (): void => {
      d.post(VQ_REQUEST, [{ address: d.alloc(51, cmdReq([0, 0, 0, 0, 0, 0])), length: 51, write: false }, { address: d.alloc(12), length: 12, write: true }]);
    }],
  ])("%s marks the device broken", (_name, corrupt) => {
    corrupt();
    d.notify(VQ_REQUEST);
    d.run();
    expect(d.status() & S.NEEDS_RESET).toBe(S.NEEDS_RESET);
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
  });

  it("a response that cannot be written marks the device broken instead of throwing", () => {
    d.post(VQ_REQUEST, [
      { address: d.alloc(51, cmdReq([0, 0, 0, 0, 0, 0])), length: 51, write: false },
      { address: UNMAPPED, length: RESP_HEADER_BYTES, write: true },
    ]);
    d.notify(VQ_REQUEST);
    d.run();
    expect(d.status() & S.NEEDS_RESET).toBe(S.NEEDS_RESET);
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
  });

  it("a driver reset with requests in flight completes them before the reset is visible, and nothing afterwards", () => {
    const reads = [1n, 2n, 3n].map((tag) => submit(d, cmdReq(rw10(0x28, 0, 1), 0, tag), { inLengths: [BLOCK] }));
    d.h.clock.advanceTo(LATENCY_NS.read / 2);
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
    d.w(C.STATUS, 1, 0);
    expect(d.status()).toBe(0);
    expect(d.usedIdx(VQ_REQUEST)).toBe(3); // completed during the reset, without interrupts
    expect([0, 1, 2].map((n) => d.usedElem(VQ_REQUEST, n).id)).toEqual(reads.map((r) => r.head));
    expect(d.h.irqs).toEqual([]);
    const ram = d.h.ram.slice(0, 0x20_0000);
    d.run();
    d.h.clock.advanceTo(d.h.clock.nowNs + 10 * LATENCY_NS.flush);
    expect(Buffer.from(d.h.ram.slice(0, 0x20_0000)).equals(Buffer.from(ram))).toBe(true);
    expect(d.h.irqs).toEqual([]);
    expect(d.device.inFlightCount).toBe(0);
  });

  it("a board reset drops requests in flight and restores the PCI header", () => {
    submit(d, cmdReq(rw10(0x28, 0, 1)), { inLengths: [BLOCK] });
    d.device.reset();
    expect(d.h.clock.pendingCount()).toBe(0);
    expect(d.h.cfgRead(SLOT, 0x04, 2)).toBe(0);
    expect(d.h.cfgRead(SLOT, 0x10)).toBe(0b100);
    d.run();
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
    d.bar0 = 0n;
    d.init();
    const tur = submit(d, cmdReq([0, 0, 0, 0, 0, 0], 0, 2n));
    d.run();
    expect(readResponse(d, tur).response).toBe(RESP.OK);
  });
});

describe("fault injection", () => {
  beforeEach(() => d.init());

  function tur(tag: number): Command {
    return submit(d, cmdReq([0, 0, 0, 0, 0, 0], 0, BigInt(tag)));
  }

  it("used-index-jump advances used.idx by the extra amount", () => {
    d.device.inject({ kind: "used-index-jump", by: 3 });
    const c = tur(1);
    d.run();
    expect(d.usedIdx(VQ_REQUEST)).toBe(4);
    expect(d.usedElem(VQ_REQUEST, 0).id).toBe(c.head);
    tur(2);
    d.run();
    expect(d.usedIdx(VQ_REQUEST)).toBe(5); // applied once
  });

  it("unknown-id puts an id the driver never posted in the used element", () => {
    d.device.inject({ kind: "unknown-id" });
    tur(1);
    d.run();
    expect(d.usedElem(VQ_REQUEST, 0).id).toBe(QUEUE_SIZE);
    const c = tur(2);
    d.run();
    expect(d.usedElem(VQ_REQUEST, 1).id).toBe(c.head);
  });

  it("dma-fault-next fails the next request's data with TRANSPORT_FAILURE; the disk never sees it", () => {
    d.device.inject({ kind: "dma-fault-next" });
    const write = submit(d, cmdReq(rw10(0x2a, 0, 1)), { out: [pattern(BLOCK, 1)] });
    d.run();
    expect(readResponse(d, write).response).toBe(RESP.TRANSPORT_FAILURE);
    const read = submit(d, cmdReq(rw10(0x28, 0, 1), 0, 2n), { inLengths: [BLOCK] });
    d.run();
    expect(readResponse(d, read).response).toBe(RESP.OK);
    expect(readDataIn(d, read)).toEqual(new Uint8Array(BLOCK));
  });

  it("interrupt-storm signals the vector count extra times", () => {
    d.device.inject({ kind: "interrupt-storm", count: 5 });
    tur(1);
    d.run();
    expect(irqCount(d, VECTOR.request)).toBe(6);
    tur(2);
    d.run();
    expect(irqCount(d, VECTOR.request)).toBe(7);
  });

  it("never-complete-next drops the next request; the one after completes", () => {
    d.device.inject({ kind: "never-complete-next" });
    tur(1);
    const second = tur(2);
    d.run();
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000_000);
    expect(d.usedIdx(VQ_REQUEST)).toBe(1);
    expect(d.usedElem(VQ_REQUEST, 0).id).toBe(second.head);
  });

  it("duplicate-used writes the next completion to the used ring twice", () => {
    d.device.inject({ kind: "duplicate-used" });
    const c = tur(1);
    d.run();
    expect(d.usedIdx(VQ_REQUEST)).toBe(2);
    expect(d.usedElem(VQ_REQUEST, 0)).toEqual(d.usedElem(VQ_REQUEST, 1));
    expect(d.usedElem(VQ_REQUEST, 0).id).toBe(c.head);
  });
});

// The faults a running board's control commands apply (host/board/control.ts, docs/fault.md): a pulled disk is a LUN
// that is gone, a disk put in its place is blank and announces itself once with a unit attention, and a hung
// controller completes nothing until the driver resets it or it is resumed. Each is checked through what a driver
// sees: responses, REPORT LUNS data, the used ring and interrupts.
describe("control faults", () => {
  const REPORT_LUNS = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0];
  const tur = (lun: number, tag: number): Command => submit(d, cmdReq([0, 0, 0, 0, 0, 0], lun, BigInt(tag)));
  const reportedLuns = (c: Command): number[] => {
    const data = readDataIn(d, c);
    const count = new DataView(data.buffer).getUint32(0) / 8;
    return Array.from({ length: count }, (_, i) => data[8 + 8 * i + 1]!);
  };

  beforeEach(() => {
    d = new Driver(2);
    d.init();
  });

  it("a pulled disk answers BAD_TARGET to commands and TMFs, leaves REPORT LUNS, and the other disk works on", () => {
    d.device.pull(1);
    expect(d.device.isPulled(1)).toBe(true);
    const gone = [tur(1, 1), submit(d, cmdReq(rw10(0x28, 0, 1), 1, 2n), { inLengths: [BLOCK] }), submit(d, cmdReq(rw10(0x2a, 0, 1), 1, 3n), { out: [pattern(BLOCK, 1)] })];
    const here = submit(d, cmdReq(rw10(0x28, 0, 1), 0, 4n), { inLengths: [BLOCK] });
    const luns = submit(d, cmdReq(REPORT_LUNS, 0, 5n), { inLengths: [64] });
    const reset = control(tmf(5, 0n, 1), 1);
    d.run();
    for (const c of gone) expect(readResponse(d, c)).toMatchObject({ response: RESP.BAD_TARGET });
    expect(readResponse(d, here)).toMatchObject({ response: RESP.OK, status: GOOD });
    expect(reportedLuns(luns)).toEqual([0]);
    expect(d.h.ram[Number(reset.response)]).toBe(RESP.BAD_TARGET);
    expect(d.backends[1]!.isMapped(0, BLOCK)).toBe(false); // the write never reached the pulled disk
    expect(d.status() & S.NEEDS_RESET).toBe(0); // a missing disk is no protocol violation
  });

  it("REPORT LUNS still answers on a pulled LUN 0, listing the disks that are there (SPC: LUN 0 always answers it)", () => {
    d.device.pull(0);
    const luns = submit(d, cmdReq(REPORT_LUNS, 0, 1n), { inLengths: [64] });
    const inquiry = submit(d, cmdReq([0x12, 0, 0, 0, 96, 0], 0, 2n), { inLengths: [96] });
    d.run();
    expect(readResponse(d, luns)).toMatchObject({ response: RESP.OK, status: GOOD });
    expect(reportedLuns(luns)).toEqual([1]);
    expect(readResponse(d, inquiry).response).toBe(RESP.BAD_TARGET);
  });

  it("a pull stays across a driver reset; a request taken before the pull completes as it executed", () => {
    const before = submit(d, cmdReq(rw10(0x28, 0, 1), 1, 1n), { inLengths: [BLOCK] });
    d.device.pull(1); // the read is off the ring and executed; its completion is still due
    d.run();
    expect(readResponse(d, before)).toMatchObject({ response: RESP.OK, status: GOOD });
    d.w(C.STATUS, 1, 0);
    d.init();
    const after = tur(1, 2);
    d.run();
    expect(readResponse(d, after).response).toBe(RESP.BAD_TARGET);
  });

  it("a disk inserted in a pulled one's place is present and blank, and raises POWER ON OR RESET (29h/00h) once", () => {
    const old = pattern(BLOCK, 5);
    submit(d, cmdReq(rw10(0x2a, 3, 1), 1, 1n), { out: [old] });
    d.run();
    d.device.pull(1);
    const blank = new ScsiDisk(memoryDisk("blank", DISK_BYTES, BLOCK), { vendor: "WASMIOP", product: "VDISK", serial: "S9", naa: naaFromName("blank") });
    d.device.insert(1, blank);
    expect(d.device.isPulled(1)).toBe(false);
    const luns = submit(d, cmdReq(REPORT_LUNS, 0, 2n), { inLengths: [64] });
    const first = submit(d, cmdReq(rw10(0x28, 3, 1), 1, 3n), { inLengths: [BLOCK] });
    d.run();
    expect(reportedLuns(luns)).toEqual([0, 1]);
    const attention = readResponse(d, first);
    expect([attention.response, attention.status, attention.sense[2]! & 0xf, attention.sense[12], attention.sense[13]]).toEqual([RESP.OK, CHECK_CONDITION, 0x6, 0x29, 0x00]);
    const second = submit(d, cmdReq(rw10(0x28, 3, 1), 1, 4n), { inLengths: [BLOCK] });
    const other = submit(d, cmdReq(rw10(0x28, 0, 1), 0, 5n), { inLengths: [BLOCK] });
    d.run();
    expect(readResponse(d, second)).toMatchObject({ response: RESP.OK, status: GOOD });
    expect(readDataIn(d, second)).toEqual(new Uint8Array(BLOCK)); // blank, not the old disk's data
    expect(readResponse(d, other)).toMatchObject({ response: RESP.OK, status: GOOD }); // the unit attention is the new disk's alone
  });

  it("a hung controller takes nothing off the ring and writes nothing to the used ring; resume completes it all in order", () => {
    const due = tur(0, 1); // taken and executed now; its completion is due after the latency
    d.device.hang();
    const posted = [tur(0, 2), tur(1, 3)];
    d.h.clock.advanceTo(d.h.clock.nowNs + 10_000_000_000);
    expect(d.device.isHung).toBe(true);
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
    expect(d.h.irqs).toEqual([]);
    expect(d.device.stats.requests).toBe(1); // the two posted during the hang were never taken
    expect(d.r(C.STATUS, 1)).toBe(S.ACK | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK); // its registers still answer
    d.device.resume();
    d.run();
    expect(d.usedIdx(VQ_REQUEST)).toBe(3);
    expect([0, 1, 2].map((n) => d.usedElem(VQ_REQUEST, n).id)).toEqual([due, ...posted].map((c) => c.head));
    for (const c of [due, ...posted]) expect(readResponse(d, c)).toMatchObject({ response: RESP.OK, status: GOOD });
    expect(irqCount(d, VECTOR.request)).toBeGreaterThanOrEqual(1);
    const after = tur(0, 4);
    d.run();
    expect(readResponse(d, after).response).toBe(RESP.OK);
  });

  it("a driver reset ends a hang: the device comes back and completes new requests", () => {
    d.device.hang();
    tur(0, 1);
    d.h.clock.advanceTo(d.h.clock.nowNs + 10_000_000_000);
    expect(d.usedIdx(VQ_REQUEST)).toBe(0);
    d.w(C.STATUS, 1, 0);
    expect(d.status()).toBe(0);
    expect(d.device.isHung).toBe(false);
    d.init();
    const after = tur(0, 2);
    d.run();
    expect(readResponse(d, after)).toMatchObject({ response: RESP.OK, status: GOOD });
    expect(d.usedIdx(VQ_REQUEST)).toBe(1);
  });

  it("a board reset ends a hang too", () => {
    d.device.hang();
    d.device.reset();
    expect(d.device.isHung).toBe(false);
  });
});
