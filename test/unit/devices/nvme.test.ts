// The NVMe controller model against NVMe 1.4, with the test as the driver (docs/hardware.md, "NVMe controller").
// What it proves: CAP/VS read as documented; CC.EN brings up the admin queue from AQA/ASQ/ACQ and CSTS.RDY follows;
// IDENTIFY returns the controller, namespace and active-namespace data; I/O queues are created on their own MSI-X
// vectors; READ and WRITE move data through PRP1/PRP2, PRP lists (chained over a page) and SGLs byte for byte; the
// phase tag inverts at each wrap; FLUSH, DATASET MANAGEMENT (deallocate) and WRITE ZEROES reach the disk; every
// documented refusal answers its status; ABORT ends a held command; interrupt coalescing holds interrupts to its
// threshold; every injected fault shows as documented (CSTS.CFS, wrong CIDs, stale phase, duplicates); and CC.EN 0
// resets the controller.
// How: the bus harness (RAM, ECAM, MSI region, clock); the test writes queue entries into RAM and rings doorbells.
import { randomBytes } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { memoryDisk } from "../../../host/devices/disk_backend.ts";
import {
  ADMIN_ABORT, ADMIN_ASYNC_EVENT_REQUEST, ADMIN_CREATE_CQ, ADMIN_CREATE_SQ, ADMIN_DELETE_CQ, ADMIN_DELETE_SQ, ADMIN_GET_FEATURES,
  ADMIN_GET_LOG_PAGE, ADMIN_IDENTIFY, ADMIN_SET_FEATURES, CNS_ACTIVE_NAMESPACES, CNS_CONTROLLER, CNS_NAMESPACE, CSTS_CFS, CSTS_RDY,
  FEATURE_INTERRUPT_COALESCING, FEATURE_NUMBER_OF_QUEUES, IO_DATASET_MANAGEMENT, IO_FLUSH, IO_READ, IO_WRITE, IO_WRITE_ZEROES,
  LOG_CHANGED_NAMESPACES, NVME_CLASS_CODE, NVME_VERSION_1_4, NvmeDevice, REG_ACQ, REG_AQA, REG_ASQ, REG_CAP, REG_CC, REG_CSTS,
  REG_VS, SC_ABORT_REQUESTED, SC_CQ_INVALID, SC_DATA_TRANSFER_ERROR, SC_INVALID_NAMESPACE, SC_INVALID_OPCODE, SC_INVALID_QUEUE_DELETION,
  SC_INVALID_QUEUE_ID, SC_LBA_OUT_OF_RANGE, SC_PRP_OFFSET_INVALID, SC_UNRECOVERED_READ_ERROR, SCT_COMMAND_SPECIFIC, SCT_GENERIC,
  SCT_MEDIA, statusField,
} from "../../../host/devices/nvme.ts";
import { BusHarness } from "../../support/bus_harness.ts";

const SLOT = 3;
const PAGE = 4096;
const ASQ = 0x10_000;
const ACQ = 0x11_000;
const IOSQ = 0x12_000;
const IOCQ = 0x13_000;
const DATA = 0x100_000; // data pages from here
const ADMIN_ENTRIES = 8;
const IO_ENTRIES = 16;
const CC_READY = 1 | (6 << 16) | (4 << 20); // EN, IOSQES 64 B, IOCQES 16 B, MPS 4 KiB, NVM command set

interface Cqe { dw0: number; sqHead: number; sqId: number; cid: number; phase: number; status: number }

class Driver {
  readonly h = new BusHarness(16);
  readonly disks = [memoryDisk("d0", 8 << 20, 512), memoryDisk("d1", 4 << 20, 4096)];
  readonly device: NvmeDevice;
  readonly log: string[] = [];
  bar0 = 0n;
  private readonly tails = new Map<number, number>();
  private readonly heads = new Map<number, number>();
  private readonly phases = new Map<number, number>();
  private readonly sizes = new Map<number, number>();
  private readonly bases = new Map<number, number>();
  private cid = 1;

  constructor() {
    this.device = new NvmeDevice({ name: "nvme0", clock: this.h.clock, disks: this.disks, physicalBlockBytes: [4096, 4096], log: (m) => this.log.push(m), queueEntriesMax: 64, ioQueuesMax: 2 });
    this.h.plug(SLOT, this.device);
    const bars = this.h.enable(SLOT);
    this.bar0 = bars.get(0)!;
    this.h.enableMsix(SLOT, bars.get(4)!, 3);
  }

  get view(): DataView { return new DataView(this.h.ram.buffer); }
  r32(offset: number): number { return Number(this.h.bus.read(this.bar0 + BigInt(offset), 4)); }
  r64(offset: number): bigint { return BigInt(this.h.bus.read(this.bar0 + BigInt(offset), 8)); }
  w32(offset: number, value: number): void { this.h.bus.write(this.bar0 + BigInt(offset), 4, value); }
  w64(offset: number, value: bigint): void { this.h.bus.write(this.bar0 + BigInt(offset), 8, value); }

  enable(): void {
    this.h.ram.fill(0, ASQ, ASQ + 2 * PAGE);
    this.w32(REG_AQA, ((ADMIN_ENTRIES - 1) << 16) | (ADMIN_ENTRIES - 1));
    this.w64(REG_ASQ, BigInt(ASQ));
    this.w64(REG_ACQ, BigInt(ACQ));
    this.w32(REG_CC, CC_READY);
    this.track(0, ASQ, ACQ, ADMIN_ENTRIES);
  }

  track(qid: number, sq: number, cq: number, entries: number): void {
    this.tails.set(qid, 0);
    this.heads.set(qid, 0);
    this.phases.set(qid, 1);
    this.sizes.set(qid, entries);
    this.bases.set(qid, sq);
    this.bases.set(1000 + qid, cq);
  }

  /** Writes a command into SQ `qid` and rings its doorbell; returns its CID. */
  submit(qid: number, fields: { opcode: number; nsid?: number; prp1?: bigint; prp2?: bigint; cdw10?: number; cdw11?: number; cdw12?: number; psdt?: number; cid?: number; sgl?: Uint8Array }, ring = true): number {
    const cid = fields.cid ?? (this.cid++ & 0xffff);
    const tail = this.tails.get(qid)!;
    const at = this.bases.get(qid)! + tail * 64;
    this.h.ram.fill(0, at, at + 64);
    const v = this.view;
    v.setUint32(at, fields.opcode | ((fields.psdt ?? 0) << 14) | (cid << 16), true);
    v.setUint32(at + 4, fields.nsid ?? 0, true);
    v.setBigUint64(at + 24, fields.prp1 ?? 0n, true);
    v.setBigUint64(at + 32, fields.prp2 ?? 0n, true);
    if (fields.sgl !== undefined) this.h.ram.set(fields.sgl, at + 24);
    v.setUint32(at + 40, fields.cdw10 ?? 0, true);
    v.setUint32(at + 44, fields.cdw11 ?? 0, true);
    v.setUint32(at + 48, fields.cdw12 ?? 0, true);
    this.tails.set(qid, (tail + 1) % this.sizes.get(qid)!);
    if (ring) this.w32(0x1000 + 8 * qid, this.tails.get(qid)!);
    return cid;
  }

  /** The completions with the expected phase from CQ `qid`'s head; advances the head and rings its doorbell. */
  reap(qid: number): Cqe[] {
    const out: Cqe[] = [];
    const base = this.bases.get(1000 + qid)!;
    for (let n = 0; n < 64; n++) {
      const head = this.heads.get(qid)!;
      const at = base + head * 16;
      const dw3 = this.view.getUint32(at + 12, true);
      if (((dw3 >>> 16) & 1) !== this.phases.get(qid)) break;
      const dw2 = this.view.getUint32(at + 8, true);
      out.push({ dw0: this.view.getUint32(at, true), sqHead: dw2 & 0xffff, sqId: dw2 >>> 16, cid: dw3 & 0xffff, phase: (dw3 >>> 16) & 1, status: dw3 >>> 17 });
      const next = (head + 1) % this.sizes.get(qid)!;
      if (next === 0) this.phases.set(qid, this.phases.get(qid)! ^ 1);
      this.heads.set(qid, next);
    }
    if (out.length > 0) this.w32(0x1000 + 8 * qid + 4, this.heads.get(qid)!);
    return out;
  }

  /** Submits, runs the clock, and returns the one completion. */
  run(qid: number, fields: Parameters<Driver["submit"]>[1]): Cqe {
    const cid = this.submit(qid, fields);
    this.h.clock.advanceTo(this.h.clock.nowNs + 1_000_000);
    const done = this.reap(qid);
    expect(done.map((c) => c.cid)).toEqual([cid]);
    return done[0]!;
  }

  ioQueues(entries = IO_ENTRIES): void {
    this.h.ram.fill(0, IOSQ, IOCQ + PAGE);
    expect(this.run(0, { opcode: ADMIN_CREATE_CQ, prp1: BigInt(IOCQ), cdw10: ((entries - 1) << 16) | 1, cdw11: (1 << 16) | 3 }).status).toBe(0);
    expect(this.run(0, { opcode: ADMIN_CREATE_SQ, prp1: BigInt(IOSQ), cdw10: ((entries - 1) << 16) | 1, cdw11: (1 << 16) | 1 }).status).toBe(0);
    this.track(1, IOSQ, IOCQ, entries);
  }
}

const generic = (sc: number, dnr = true): number => statusField(SCT_GENERIC, sc, dnr);

describe("NVMe controller model", () => {
  let d: Driver;
  beforeEach(() => { d = new Driver(); });

  it("is an NVM Express function whose CAP and VS read as documented (NVMe 1.4 §3.1.1, §3.1.2)", () => {
    expect(d.h.cfgRead(SLOT, 0x08) >>> 8).toBe(NVME_CLASS_CODE);
    const cap = d.r64(REG_CAP);
    expect(Number(cap & 0xffffn)).toBe(63); // MQES
    expect((cap >> 16n) & 1n).toBe(1n); // CQR
    expect((cap >> 37n) & 1n).toBe(1n); // NVM command set
    expect(Number((cap >> 32n) & 0xfn)).toBe(0); // DSTRD
    expect(d.r32(REG_VS)).toBe(NVME_VERSION_1_4);
    expect(d.r32(REG_CSTS) & CSTS_RDY).toBe(0);
  });

  it("sets CSTS.RDY on CC.EN with a valid admin queue, and leaves it clear with a bad one", () => {
    d.w32(REG_CC, CC_READY); // AQA and ASQ still 0
    expect(d.r32(REG_CSTS) & CSTS_RDY).toBe(0);
    expect(d.device.guestErrorCount).toBe(1);
    d.w32(REG_CC, 0);
    d.enable();
    expect(d.r32(REG_CSTS) & CSTS_RDY).toBe(CSTS_RDY);
    d.w32(REG_AQA, 0); // refused while enabled
    expect(d.r32(REG_AQA)).toBe(((ADMIN_ENTRIES - 1) << 16) | (ADMIN_ENTRIES - 1));
  });

  it("answers IDENTIFY controller, namespace and active namespace list", () => {
    d.enable();
    const buffer = DATA;
    let c = d.run(0, { opcode: ADMIN_IDENTIFY, prp1: BigInt(buffer), cdw10: CNS_CONTROLLER });
    expect(c.status).toBe(0);
    expect(d.view.getUint32(buffer + 516, true)).toBe(2); // NN
    expect(d.h.ram[buffer + 77]).toBe(8); // MDTS
    expect(d.view.getUint16(buffer + 520, true) & 0x0c).toBe(0x0c); // ONCS: DSM, Write Zeroes
    c = d.run(0, { opcode: ADMIN_IDENTIFY, nsid: 2, prp1: BigInt(buffer), cdw10: CNS_NAMESPACE });
    expect(d.view.getBigUint64(buffer, true)).toBe(1024n); // 4 MiB of 4 KiB blocks
    expect((d.view.getUint32(buffer + 128, true) >> 16) & 0xff).toBe(12);
    c = d.run(0, { opcode: ADMIN_IDENTIFY, nsid: 1, prp1: BigInt(buffer), cdw10: CNS_NAMESPACE });
    expect(d.view.getUint16(buffer + 64, true)).toBe(7); // NPWG: 4 KiB physical blocks of 512-byte ones
    d.device.pull(0);
    c = d.run(0, { opcode: ADMIN_IDENTIFY, nsid: 0, prp1: BigInt(buffer), cdw10: CNS_ACTIVE_NAMESPACES });
    expect([d.view.getUint32(buffer, true), d.view.getUint32(buffer + 4, true)]).toEqual([2, 0]);
    expect(d.run(0, { opcode: ADMIN_IDENTIFY, nsid: 3, prp1: BigInt(buffer), cdw10: CNS_NAMESPACE }).status).toBe(generic(SC_INVALID_NAMESPACE));
    expect(d.run(0, { opcode: 0x7f }).status).toBe(generic(SC_INVALID_OPCODE));
  });

  it("creates I/O queues with their own vector and refuses bad queue commands (NVMe 1.4 §5.3-§5.6)", () => {
    d.enable();
    expect(d.run(0, { opcode: ADMIN_SET_FEATURES, cdw10: FEATURE_NUMBER_OF_QUEUES, cdw11: 0 }).dw0).toBe(0x0001_0001);
    expect(d.run(0, { opcode: ADMIN_CREATE_SQ, prp1: BigInt(IOSQ), cdw10: (15 << 16) | 1, cdw11: (1 << 16) | 1 }).status).toBe(statusField(SCT_COMMAND_SPECIFIC, SC_CQ_INVALID, true));
    expect(d.run(0, { opcode: ADMIN_CREATE_CQ, prp1: BigInt(IOCQ), cdw10: (15 << 16) | 3, cdw11: 3 }).status).toBe(statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_ID, true));
    d.ioQueues();
    expect(d.device.queues().cq.map((q) => [q.id, q.vector])).toEqual([[0, 0], [1, 1]]);
    expect(d.run(0, { opcode: ADMIN_SET_FEATURES, cdw10: FEATURE_NUMBER_OF_QUEUES }).status).toBe(generic(0x0c)); // after queues exist
    expect(d.run(0, { opcode: ADMIN_DELETE_CQ, cdw10: 1 }).status).toBe(statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_DELETION, true));
    expect(d.run(0, { opcode: ADMIN_DELETE_SQ, cdw10: 1 }).status).toBe(0);
    expect(d.run(0, { opcode: ADMIN_DELETE_CQ, cdw10: 1 }).status).toBe(0);
  });

  it("moves data through PRP1/PRP2, a chained PRP list and an SGL, and signals the queue's vector", () => {
    d.enable();
    d.ioQueues();
    const cases: { bytes: number; offset: number }[] = [{ bytes: 512, offset: 512 }, { bytes: 8192, offset: 0 }, { bytes: 5120, offset: 3584 }, { bytes: 3 * 1024 * 1024 / 4, offset: 1024 }];
    let lba = 0;
    for (const { bytes, offset } of cases) {
      const data = randomBytes(bytes);
      const pages = Math.ceil((offset + bytes) / PAGE);
      // Data pages deliberately not contiguous: every other page.
      const pageAt = (i: number): number => DATA + i * 2 * PAGE;
      let at = 0;
      for (let i = 0; i < pages; i++) {
        const start = i === 0 ? offset : 0;
        const take = Math.min(PAGE - start, bytes - at);
        d.h.ram.set(data.subarray(at, at + take), pageAt(i) + start);
        at += take;
      }
      // A PRP list that spills over a page: it starts 8 entries before a page's end, the last entry chaining on.
      const list = 0x80_0000 - 64;
      let slot = 0;
      let entry = list;
      for (let i = 1; i < pages; i++) {
        if (((entry + 8) & 0xfff) === 0 && i < pages - 1) {
          d.view.setBigUint64(entry, BigInt(0x81_0000), true);
          entry = 0x81_0000;
        }
        d.view.setBigUint64(entry, BigInt(pageAt(i)), true);
        entry += 8;
        slot += 1;
      }
      const prp2 = pages === 1 ? 0n : pages === 2 ? BigInt(pageAt(1)) : BigInt(list);
      const blocks = bytes / 512;
      const irqsBefore = d.h.irqs.length;
      const w = d.run(1, { opcode: IO_WRITE, nsid: 1, prp1: BigInt(pageAt(0) + offset), prp2, cdw10: lba, cdw12: blocks - 1 });
      expect(w.status).toBe(0);
      expect(d.h.irqs.slice(irqsBefore)).toEqual([1]);
      const back = new Uint8Array(bytes);
      d.disks[0]!.read(lba * 512, back);
      expect(Buffer.from(back).equals(data)).toBe(true);
      // Read it back through an SGL: one Data Block descriptor per 1 KiB, in a Last Segment list.
      const pieces = Math.ceil(bytes / 1024);
      const sglList = 0x90_0000;
      for (let i = 0; i < pieces; i++) {
        d.view.setBigUint64(sglList + i * 16, BigInt(0xa0_0000 + i * 1040), true);
        d.view.setUint32(sglList + i * 16 + 8, Math.min(1024, bytes - i * 1024), true);
        d.h.ram[sglList + i * 16 + 15] = 0x00;
      }
      const sgl = new Uint8Array(16);
      new DataView(sgl.buffer).setBigUint64(0, BigInt(sglList), true);
      new DataView(sgl.buffer).setUint32(8, pieces * 16, true);
      sgl[15] = 0x30; // Last Segment
      const r = d.run(1, { opcode: IO_READ, nsid: 1, psdt: 1, sgl, cdw10: lba, cdw12: blocks - 1 });
      expect(r.status).toBe(0);
      const got = Buffer.concat(Array.from({ length: pieces }, (_, i) => d.h.ram.subarray(0xa0_0000 + i * 1040, 0xa0_0000 + i * 1040 + Math.min(1024, bytes - i * 1024))));
      expect(got.equals(data)).toBe(true);
      lba += blocks;
    }
  });

  it("refuses a PRP with an offset where none is allowed, and I/O outside the namespace or to an inactive one", () => {
    d.enable();
    d.ioQueues();
    expect(d.run(1, { opcode: IO_READ, nsid: 1, prp1: BigInt(DATA), prp2: BigInt(DATA + PAGE + 8), cdw12: 15 }).status).toBe(generic(SC_PRP_OFFSET_INVALID));
    expect(d.run(1, { opcode: IO_READ, nsid: 1, prp1: BigInt(DATA + 2), cdw12: 0 }).status).toBe(generic(SC_PRP_OFFSET_INVALID));
    expect(d.run(1, { opcode: IO_READ, nsid: 1, prp1: BigInt(DATA), cdw10: 16383, cdw12: 1 }).status).toBe(generic(SC_LBA_OUT_OF_RANGE));
    expect(d.run(1, { opcode: IO_READ, nsid: 9, prp1: BigInt(DATA) }).status).toBe(generic(SC_INVALID_NAMESPACE));
    d.device.pull(1);
    expect(d.run(1, { opcode: IO_READ, nsid: 2, prp1: BigInt(DATA) }).status).toBe(generic(SC_INVALID_NAMESPACE));
  });

  it("inverts the phase tag at each wrap of a completion queue", () => {
    d.enable();
    d.ioQueues(4);
    const phases: number[] = [];
    for (let i = 0; i < 9; i++) phases.push(d.run(1, { opcode: IO_FLUSH, nsid: 1 }).phase);
    expect(phases).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 1]);
  });

  it("holds completions while the completion queue is full and posts them when its head moves", () => {
    d.enable();
    d.ioQueues(4);
    const cids = [0, 1, 2, 3].map(() => d.submit(1, { opcode: IO_FLUSH, nsid: 1 }, false));
    d.w32(0x1000 + 8, 0); // tail wraps to 0: 4 entries... the SQ holds at most 3
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    // An SQ of 4 entries with tail back at its head is empty: nothing was fetched.
    expect(d.device.stats.commands).toBe(0);
    expect(cids.length).toBe(4);
    const d2 = new Driver();
    d2.enable();
    d2.ioQueues(4);
    const first = [0, 1, 2].map(() => d2.submit(1, { opcode: IO_FLUSH, nsid: 1 }));
    d2.h.clock.advanceTo(d2.h.clock.nowNs + 1_000_000);
    const more = [0, 1].map(() => d2.submit(1, { opcode: IO_FLUSH, nsid: 1 }));
    d2.h.clock.advanceTo(d2.h.clock.nowNs + 1_000_000);
    const got = d2.reap(1).map((c) => c.cid); // 3 fit (one slot stays empty), the rest wait for the head doorbell
    expect(got).toEqual(first);
    d2.h.clock.advanceTo(d2.h.clock.nowNs + 1_000_000);
    expect(d2.reap(1).map((c) => c.cid)).toEqual(more);
  });

  it("deallocates with DATASET MANAGEMENT and zeroes with WRITE ZEROES", () => {
    d.enable();
    d.ioQueues();
    d.disks[0]!.write(0, new Uint8Array(64 * 1024).fill(0xab));
    const ranges = DATA;
    d.view.setUint32(ranges + 4, 8, true);
    d.view.setBigUint64(ranges + 8, 8n, true);
    d.view.setUint32(ranges + 16 + 4, 8, true);
    d.view.setBigUint64(ranges + 16 + 8, 32n, true);
    expect(d.run(1, { opcode: IO_DATASET_MANAGEMENT, nsid: 1, prp1: BigInt(ranges), cdw10: 1, cdw11: 4 }).status).toBe(0);
    const back = new Uint8Array(64 * 1024);
    d.disks[0]!.read(0, back);
    expect(back.subarray(4096, 8192).every((b) => b === 0)).toBe(true);
    expect(back.subarray(16384, 20480).every((b) => b === 0)).toBe(true);
    expect(back[0]).toBe(0xab);
    expect(d.run(1, { opcode: IO_WRITE_ZEROES, nsid: 1, cdw10: 100, cdw12: 9 }).status).toBe(0);
    d.disks[0]!.read(0, back);
    expect(back.subarray(100 * 512, 110 * 512).every((b) => b === 0)).toBe(true);
    expect(back[110 * 512]).toBe(0xab);
    d.view.setBigUint64(ranges + 8, 1n << 40n, true);
    expect(d.run(1, { opcode: IO_DATASET_MANAGEMENT, nsid: 1, prp1: BigInt(ranges), cdw10: 0, cdw11: 4 }).status).toBe(generic(SC_LBA_OUT_OF_RANGE));
  });

  it("ends a held command with ABORT, and says so in ABORT's DW0 (NVMe 1.4 §5.1)", () => {
    d.enable();
    d.ioQueues();
    d.device.inject({ kind: "never-complete-next" });
    const held = d.submit(1, { opcode: IO_READ, nsid: 1, prp1: BigInt(DATA) });
    d.h.clock.advanceTo(d.h.clock.nowNs + 10_000_000);
    expect(d.reap(1)).toEqual([]);
    const abort = d.run(0, { opcode: ADMIN_ABORT, cdw10: 1 | (held << 16) });
    expect(abort.dw0 & 1).toBe(0);
    const done = d.reap(1);
    expect(done.map((c) => [c.cid, c.status])).toEqual([[held, generic(SC_ABORT_REQUESTED, false)]]);
    expect(d.run(0, { opcode: ADMIN_ABORT, cdw10: 1 | (held << 16) }).dw0 & 1).toBe(1);
  });

  it("reports a pulled and a replaced namespace through an AER and the Changed Namespace List", () => {
    d.enable();
    const aer = d.submit(0, { opcode: ADMIN_ASYNC_EVENT_REQUEST });
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    expect(d.reap(0)).toEqual([]);
    d.device.insert(1, memoryDisk("d1b", 4 << 20, 4096));
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    const event = d.reap(0);
    expect(event.map((c) => [c.cid, c.dw0])).toEqual([[aer, 0x04_00_02]]);
    expect(d.run(0, { opcode: ADMIN_GET_LOG_PAGE, prp1: BigInt(DATA), cdw10: LOG_CHANGED_NAMESPACES | (1023 << 16) }).status).toBe(0);
    expect([d.view.getUint32(DATA, true), d.view.getUint32(DATA + 4, true)]).toEqual([2, 0]);
  });

  it("coalesces I/O interrupts to THR + 1 completions or TIME, and keeps the admin queue uncoalesced", () => {
    d.enable();
    d.ioQueues();
    expect(d.run(0, { opcode: ADMIN_SET_FEATURES, cdw10: FEATURE_INTERRUPT_COALESCING, cdw11: 3 | (10 << 8) }).status).toBe(0);
    expect(d.run(0, { opcode: ADMIN_GET_FEATURES, cdw10: FEATURE_INTERRUPT_COALESCING }).dw0).toBe(3 | (10 << 8));
    const before = d.h.irqs.length;
    for (let i = 0; i < 8; i++) d.submit(1, { opcode: IO_FLUSH, nsid: 1 });
    d.h.clock.advanceTo(d.h.clock.nowNs + 500_000);
    expect(d.h.irqs.slice(before)).toEqual([1, 1]);
    d.submit(1, { opcode: IO_FLUSH, nsid: 1 });
    d.h.clock.advanceTo(d.h.clock.nowNs + 500_000);
    expect(d.h.irqs.slice(before)).toEqual([1, 1]);
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_500_000); // 1 ms after the lone one
    expect(d.h.irqs.slice(before)).toEqual([1, 1, 1]);
  });

  it("shows each injected completion fault as documented", () => {
    d.enable();
    d.ioQueues();
    d.device.inject({ kind: "unknown-cid" });
    let cid = d.submit(1, { opcode: IO_FLUSH, nsid: 1 });
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    expect(d.reap(1)[0]!.cid).not.toBe(cid);
    d.device.inject({ kind: "duplicate-cqe" });
    cid = d.submit(1, { opcode: IO_FLUSH, nsid: 1 });
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    expect(d.reap(1).map((c) => c.cid)).toEqual([cid, cid]);
    d.device.inject({ kind: "stale-phase" });
    d.submit(1, { opcode: IO_FLUSH, nsid: 1 });
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    expect(d.reap(1)).toEqual([]);
    expect(d.h.irqs.at(-1)).toBe(1); // the interrupt still came
    d.device.inject({ kind: "dma-fault-next" });
    expect(d.run(0, { opcode: ADMIN_GET_FEATURES, cdw10: FEATURE_NUMBER_OF_QUEUES }).status).toBe(0); // admin unaffected
    const dead = new Driver();
    dead.enable();
    dead.ioQueues();
    dead.device.inject({ kind: "dma-fault-next" });
    expect(dead.run(1, { opcode: IO_READ, nsid: 1, prp1: BigInt(DATA) }).status).toBe(generic(SC_DATA_TRANSFER_ERROR, false));
    dead.device.inject({ kind: "media-error-next" });
    expect(dead.run(1, { opcode: IO_READ, nsid: 1, prp1: BigInt(DATA) }).status).toBe(statusField(SCT_MEDIA, SC_UNRECOVERED_READ_ERROR));
    dead.device.inject({ kind: "csts-lie" });
    expect(dead.r32(REG_CSTS) & CSTS_CFS).toBe(CSTS_CFS);
    expect(dead.r32(REG_CSTS) & CSTS_CFS).toBe(0);
  });

  it("sets CSTS.CFS on a fatal fault and processes nothing until CC.EN 0 resets it (NVMe 1.4 §7.3.2)", () => {
    d.enable();
    d.ioQueues();
    d.device.inject({ kind: "fatal-next" });
    d.submit(1, { opcode: IO_FLUSH, nsid: 1 });
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    expect(d.r32(REG_CSTS) & CSTS_CFS).toBe(CSTS_CFS);
    d.submit(1, { opcode: IO_FLUSH, nsid: 1 });
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    expect(d.reap(1)).toEqual([]);
    d.w32(REG_CC, 0);
    expect(d.r32(REG_CSTS)).toBe(0);
    expect(d.device.queues()).toEqual({ sq: [], cq: [] });
    d.enable();
    d.ioQueues();
    expect(d.run(1, { opcode: IO_FLUSH, nsid: 1 }).status).toBe(0);
  });

  it("holds everything while hung, and resume() writes what it held", () => {
    d.enable();
    d.ioQueues();
    d.device.hang();
    const cid = d.submit(1, { opcode: IO_FLUSH, nsid: 1 });
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    expect(d.reap(1)).toEqual([]);
    d.device.resume();
    d.h.clock.advanceTo(d.h.clock.nowNs + 1_000_000);
    expect(d.reap(1).map((c) => c.cid)).toEqual([cid]);
  });
});
