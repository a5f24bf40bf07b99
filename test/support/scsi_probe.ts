// The test side of the SCSI probe (test/firmware/scsi_probe.ts): an initiator that submits CDBs to the SCSI target
// of the test build as nexuses would, stages Data-Out, and reads back status, fixed-format sense, Data-In and the
// residual; plus the CDBs, patterns and constants the SCSI unit tests share. Board: one virtio-scsi controller with
// two in-memory disks (16 MiB and 8 MiB, 512-byte blocks).
import { expect } from "vitest";
import { testBoard, type TestBoard, type TestBoardOptions } from "./board.ts";

export const GOOD = 0x00;
export const CHECK_CONDITION = 0x02;
export const BUSY = 0x08;
export const RESERVATION_CONFLICT = 0x18;
export const TASK_ABORTED = 0x40;
export const Dir = { None: 0, Read: 1, Write: 2 } as const;
export const Residual = { None: 0, Underflow: 1, Overflow: 2 } as const;
export const Key = { NoSense: 0x0, IllegalRequest: 0x5, UnitAttention: 0x6, Miscompare: 0xe } as const;
export const Tmf = { AbortTask: 1, AbortTaskSet: 2, ClearAca: 3, ClearTaskSet: 4, LunReset: 5, TargetWarmReset: 6, TargetColdReset: 7 } as const;
export const TmfResponse = { Complete: 0, TaskDoesNotExist: 1, LunDoesNotExist: 2, NotSupported: 5 } as const;
export const TASK_NONE = 0xffff_ffff;
const ASKED_NONE = 0xffff_ffff; // test/firmware/scsi_probe.ts: no ScsiDataOut for the task
export const BLOCK = 512;
export const LUN0_BLOCKS = 32768; // 16 MiB
export const LUN1_BLOCKS = 16384; // 8 MiB
export const A = 1; // nexus ids
export const B = 2;

export interface Options {
  nexus?: number;
  lun?: number;
  direction?: number;
  expected?: number; // expected data transfer length; by default the Data-Out's length, or 0 with no Data-Out
  data?: Uint8Array; // Data-Out
  hold?: boolean; // keep the Data-Out back until sendData
  tag?: number;
}

export interface Sense {
  key: number;
  asc: number;
  ascq: number;
  information?: number; // when VALID
  field?: { inCdb: boolean; byte: number; bit?: number }; // when SKSV
}

export interface Result {
  status: number;
  sense: Uint8Array;
  data: Uint8Array;
  residualKind: number;
  residual: number;
  aborted: boolean;
  /** Aborted by another nexus's action with TAS 1: the transport sends its TASK ABORTED status. */
  abortReported: boolean;
  dataOutAsked: number | null; // bytes of Data-Out the target asked for (ScsiDataOut), null when it asked for none
}

export function parseSense(s: Uint8Array): Sense {
  const out: Sense = { key: s[2]! & 0x0f, asc: s[12]!, ascq: s[13]! };
  if ((s[0]! & 0x80) !== 0) out.information = new DataView(s.buffer, s.byteOffset).getUint32(3);
  if ((s[15]! & 0x80) !== 0) {
    out.field = { inCdb: (s[15]! & 0x40) !== 0, byte: (s[16]! << 8) | s[17]! };
    if ((s[15]! & 0x08) !== 0) out.field.bit = s[15]! & 0x07;
  }
  return out;
}

/** A pattern of `blocks` blocks that differs per seed and per block. */
export function pattern(seed: number, blocks: number): Uint8Array {
  const bytes = new Uint8Array(blocks * BLOCK);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

export function be16(v: number): number[] { return [(v >>> 8) & 0xff, v & 0xff]; }
export function be32(v: number): number[] { return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]; }
export function be64(v: bigint | number): number[] {
  const b = BigInt(v);
  return [...be32(Number((b >> 32n) & 0xffff_ffffn)), ...be32(Number(b & 0xffff_ffffn))];
}

// CDBs.
export const tur = (): number[] => [0x00, 0, 0, 0, 0, 0];
export const inquiry = (evpd: number, page: number, alloc: number): number[] => [0x12, evpd, page, ...be16(alloc), 0];
export const read10 = (lba: number, n: number, flags = 0): number[] => [0x28, flags, ...be32(lba), 0, ...be16(n), 0];
export const write10 = (lba: number, n: number, flags = 0): number[] => [0x2a, flags, ...be32(lba), 0, ...be16(n), 0];
export const read16 = (lba: number | bigint, n: number): number[] => [0x88, 0, ...be64(lba), ...be32(n), 0, 0];
export const write16 = (lba: number | bigint, n: number, flags = 0): number[] => [0x8a, flags, ...be64(lba), ...be32(n), 0, 0];
export const requestSense = (alloc = 18): number[] => [0x03, 0, 0, 0, alloc, 0];
export const modeSense6 = (pcPage: number, alloc = 255, flags = 0, subpage = 0): number[] => [0x1a, flags, pcPage, subpage, alloc, 0];
export const modeSense10 = (pcPage: number, alloc = 255, flags = 0): number[] => [0x5a, flags, pcPage, 0, 0, 0, 0, ...be16(alloc), 0];
export const prIn = (action: number, alloc = 4096): number[] => [0x5e, action, 0, 0, 0, 0, 0, ...be16(alloc), 0];
export const prOut = (action: number, type = 0): number[] => [0x5f, action, type, 0, 0, ...be32(24), 0];
export function prList(key: bigint, saKey: bigint, flags = 0): Uint8Array {
  return Uint8Array.from([...be64(key), ...be64(saKey), 0, 0, 0, 0, flags, 0, 0, 0]);
}

export class Initiator {
  constructor(readonly t: TestBoard) {}

  ram(): Uint8Array { return new Uint8Array(this.t.host.memory.buffer); }

  submit(cdb: number[], o: Options = {}): number {
    const data = o.data;
    if (data !== undefined) {
      expect(this.t.call("testScsiStage", data.length)).toBe(1);
      for (let off = 0, i = 0; off < data.length; off += 65536, i++) {
        this.ram().set(data.subarray(off, Math.min(off + 65536, data.length)), this.t.call("testScsiStageAddress", i) as number);
      }
    }
    const padded = new Uint8Array(16);
    padded.set(cdb);
    this.ram().set(padded, this.t.call("testScsiCdbAddress") as number);
    const direction = o.direction ?? (data !== undefined ? Dir.Write : (o.expected ?? 0) > 0 ? Dir.Read : Dir.None);
    const expected = o.expected ?? data?.length ?? 0;
    return this.t.call("testScsiSubmit", o.nexus ?? A, o.lun ?? 0, direction, expected, 16, o.tag ?? 0x100, o.hold ? 1 : 0) as number;
  }

  done(task: number): boolean { return this.t.call("testScsiDone", task) === 1; }

  wait(task: number, steps = 4000): void {
    for (let i = 0; i < steps && !this.done(task); i++) this.t.board.runFor(50_000);
    expect(this.t.stops).toEqual([]);
    expect(this.done(task)).toBe(true);
  }

  result(task: number): Result {
    const asked = (this.t.call("testScsiDataOutAsked", task) as number) >>> 0;
    const senseLength = this.t.call("testScsiSenseLength", task) as number;
    const senseAt = this.t.call("testScsiSenseAddress", task) as number;
    const dataBytes = this.t.call("testScsiDataInBytes", task) as number;
    const data = new Uint8Array(dataBytes);
    if (dataBytes > 0) {
      const sgl = this.t.call("testScsiSgl", task) as number;
      expect(this.t.call("testSglTotalBytes", sgl)).toBe(BigInt(dataBytes));
      const count = this.t.call("testSglSegmentCount", sgl) as number;
      let off = 0;
      for (let i = 0; i < count; i++) {
        const at = Number(this.t.call("testSglSegmentAddress", sgl, i) as bigint);
        const length = this.t.call("testSglSegmentLength", sgl, i) as number;
        data.set(this.ram().subarray(at, at + length), off);
        off += length;
      }
    }
    return {
      status: this.t.call("testScsiStatus", task) as number,
      sense: this.ram().slice(senseAt, senseAt + senseLength),
      data,
      residualKind: this.t.call("testScsiResidualKind", task) as number,
      residual: this.t.call("testScsiResidualBytes", task) as number,
      aborted: this.t.call("testScsiAborted", task) === 1,
      abortReported: this.t.call("testScsiAborted", task) === 1 && this.t.call("testScsiAbortReported", task) === 1,
      dataOutAsked: asked === ASKED_NONE ? null : asked,
    };
  }

  release(task: number): void { this.t.call("testScsiRelease", task); }

  /** Submits, waits, reads the answer and releases the record. */
  run(cdb: number[], o: Options = {}): Result {
    const task = this.submit(cdb, o);
    expect(task).not.toBe(TASK_NONE);
    this.wait(task);
    const r = this.result(task);
    this.release(task);
    if (o.data !== undefined) this.t.call("testScsiStage", 0); // a refused command leaves the stage unused
    return r;
  }

  good(cdb: number[], o: Options = {}): Uint8Array {
    const r = this.run(cdb, o);
    if (r.status !== GOOD) throw new Error(`status ${r.status} sense ${JSON.stringify(parseSense(r.sense))} for ${cdb.map((b) => b.toString(16))}`);
    return r.data;
  }

  check(cdb: number[], o: Options = {}): Sense {
    const r = this.run(cdb, o);
    expect(r.status).toBe(CHECK_CONDITION);
    expect(r.sense.length).toBe(18);
    expect(r.sense[0]! & 0x7f).toBe(0x70);
    expect(r.sense[7]).toBe(10);
    expect(r.data.length).toBe(0);
    return parseSense(r.sense);
  }

  /**
   * Clears the unit attention a new nexus starts with, on both LUNs: POWER ON (29h/00h), or I_T NEXUS LOSS OCCURRED
   * (29h/07h, `ascq` 7) when its initiator port's previous nexus was lost after hearing POWER ON.
   */
  login(nexus: number, ascq = 0x00): void {
    for (const lun of [0, 1]) {
      const s = this.check(tur(), { nexus, lun });
      expect(s).toMatchObject({ key: Key.UnitAttention, asc: 0x29, ascq });
      expect(this.run(tur(), { nexus, lun }).status).toBe(GOOD);
    }
  }

  tmf(nexus: number, lun: number, fn: number, tag = 0): number {
    const task = this.t.call("testScsiTmf", nexus, lun, fn, tag) as number;
    expect(task).not.toBe(TASK_NONE);
    return task;
  }

  readBlocks(lun: number, lba: number, blocks: number, nexus = A): Uint8Array {
    return this.good(read16(lba, blocks), { lun, nexus, expected: blocks * BLOCK });
  }

  writeBlocks(lun: number, lba: number, data: Uint8Array, nexus = A): void {
    this.good(write16(lba, data.length / BLOCK), { lun, nexus, data });
  }

  /** Everything back where boot left it. */
  quiescent(): void {
    this.t.call("testScsiStage", 0); // Data-Out staged for tasks that were aborted before taking it
    this.t.board.runFor(1_000_000);
    expect(this.t.stops).toEqual([]);
    expect(this.t.call("testScsiTasksFree")).toBe(256);
    expect(this.t.call("testScsiServicesActive")).toBe(0);
    expect(this.t.call("testScsiLargeBuffersHeld")).toBe(0);
    expect(this.t.call("testBuffersAllFree")).toBe(1);
    expect(this.t.host.heapTop()).toBe(this.t.host.heapTopAtBoot);
  }
}

/** The probe's board; `board` adds to it (an NVRAM, file disks in a data directory). */
export function boot(physicalBlockSize?: number, board: TestBoardOptions = {}): Initiator {
  const t = testBoard({ ramMiB: [64], disksMiB: [[16, 8]], physicalBlockSize, ...board });
  for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
  expect(t.call("testUmaReady")).toBe(1);
  expect(t.call("testVolumeCount")).toBe(2);
  return new Initiator(t);
}

// Persistent reservations by initiator port name (SPC-4; iSCSI TransportIDs).
export const IQN = "iqn.2026-01.org.example:";
export const portName = (host: string, isid: number): string => `${IQN}${host},i,0x${isid.toString(16).padStart(12, "0")}`;

/** The nexus id the transport would get for `name` at `port` (what iSCSI does at login). */
export function identify(i: Initiator, name: string, port = 1): number {
  const bytes = Uint8Array.from(Buffer.from(name, "latin1"));
  expect(i.t.call("testScsiStage", bytes.length)).toBe(1);
  i.ram().set(bytes, i.t.call("testScsiStageAddress", 0) as number);
  const id = i.t.call("testScsiNexusIdentify", bytes.length, port) as number;
  i.t.call("testScsiStage", 0);
  expect(id).toBeLessThan(128);
  return id;
}

/** READ KEYS as [generation, keys]. */
export function readKeys(i: Initiator, nexus: number, lun = 0): [number, bigint[]] {
  const d = i.good(prIn(0), { nexus, lun, expected: 4096 });
  const v = new DataView(d.buffer, d.byteOffset);
  return [v.getUint32(0), Array.from({ length: v.getUint32(4) / 8 }, (_, k) => v.getBigUint64(8 + k * 8))];
}

/** READ FULL STATUS as one record per descriptor: key, flags byte (ALL_TG_PT, R_HOLDER), type, port, TransportID. */
export function fullStatus(i: Initiator, nexus: number, lun = 0): { key: bigint; flags: number; type: number; port: number; format: number; name: string }[] {
  const d = i.good(prIn(3), { nexus, lun, expected: 4096 });
  const v = new DataView(d.buffer, d.byteOffset);
  const out = [];
  for (let at = 8; at < 8 + v.getUint32(4);) {
    const idBytes = v.getUint32(at + 20);
    const text = Buffer.from(d.subarray(at + 28, at + 24 + idBytes)).toString("latin1").replace(/\0+$/, "");
    out.push({ key: v.getBigUint64(at), flags: d[at + 12]!, type: d[at + 13]! & 0x0f, port: v.getUint16(at + 18), format: d[at + 24]!, name: text });
    at += 24 + idBytes;
  }
  return out;
}
