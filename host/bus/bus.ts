// A processor's local bus: address regions decoded to handlers. What nothing decodes reads as all ones (a PCI
// master abort) and drops writes; both are logged as guest errors. Every access lands in the trace.
import type { Layer, LayerMeter } from "../sim/layer_meter.ts";
import { hex, type Trace } from "../sim/trace.ts";

export type AccessSize = 1 | 2 | 4 | 8;

/** A decoded region: offsets are relative to the region's base. Values up to 32 bits are numbers, 64-bit are bigints. */
export interface BusRegion {
  readonly name: string;
  read(offset: number, sizeBytes: AccessSize): number | bigint;
  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void;
  /** write(offset, 8, high * 2^32 + low) with the halves as 32-bit integers (signed or not), no BigInt made. Optional. */
  write64?(offset: number, low: number, high: number): void;
  /** Memory-like regions (RAM, windows into another processor's RAM) also take bulk DMA. */
  readBytes?(offset: number, lengthBytes: number): Uint8Array;
  writeBytes?(offset: number, bytes: Uint8Array): void;
  /** Like readBytes, straight into `into` (its whole length): no buffer made per transfer. Optional. */
  readInto?(offset: number, into: Uint8Array): void;
  /**
   * The bytes [offset, offset + lengthBytes) as a view of the memory itself, read (and reported read) now; valid as
   * long as the memory is, its bytes whatever that memory holds when the view is looked at. Optional: only a region
   * that is one piece of host memory (RAM, the bridge's inbound window onto a storage processor's RAM) has it; it
   * throws WindowFault as readInto does.
   */
  view?(offset: number, lengthBytes: number): Uint8Array;
  /** Bus.quietView: a view of the memory itself, undefined while anyone watches it. Optional (RAM has it). */
  quietView?(offset: number, lengthBytes: number): Uint8Array | undefined;
  /** The layer a bus access to this region is charged to when a meter runs (layer_meter.ts); none: the caller's. */
  readonly layer?: Layer;
}

/** What DMA answers: the bytes, or the reason it faulted. Never an exception, never a silent clamp. */
export type DmaResult = { ok: true; bytes: Uint8Array } | { ok: false; fault: string };

/**
 * Thrown by a window region's readBytes/writeBytes when the far side refuses the transfer (a window onto another
 * bus whose target faulted, or a range past the memory behind the window). Bus.dmaRead/dmaWrite turn it into a
 * `{ ok: false }` result, so it never escapes to a DMA master.
 */
export class WindowFault extends Error {
  override readonly name = "WindowFault";
}

interface Mapping {
  base: bigint;
  end: bigint; // exclusive
  // The same as numbers, exact below 2^53 (every board's map lies there): a register access decodes without BigInt
  // arithmetic, which allocates on every operation. Addresses at or above 2^53 take the BigInt path.
  baseNumber: number;
  endNumber: number;
  region: BusRegion;
}

const NUMBER_EXACT_LIMIT = 2 ** 53;
const NUMBER_EXACT_LIMIT_BIG = 2n ** 53n;
const TWO_POW_32 = 2 ** 32;
const HIGH_EXACT_LIMIT = 2 ** 21; // a high half below it makes an address below 2^53

/** A 64-bit value from its u32 halves, as regions without write64 take it. */
export function joinHalves(low: number, high: number): bigint {
  return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
}

/** hex(joinHalves(low, high)) without the BigInt: the trace's text of a 64-bit value. */
export function hexHalves(low: number, high: number): string {
  return high === 0 ? hex(low >>> 0) : hex(high >>> 0) + (low >>> 0).toString(16).padStart(8, "0");
}

const ALL_ONES: Record<AccessSize, number | bigint> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff, 8: 0xffff_ffff_ffff_ffffn };

export class Bus {
  private readonly mappings: Mapping[] = [];
  private lastHit: Mapping | undefined; // the mapping the last decode found
  guestErrorCount = 0;
  /**
   * Set by the processor just before the firmware's own read or write (a board import), cleared by that access: any
   * other cycle on this bus is a device's (an MSI-X message, a window forwarding another bus's cycle), and the
   * replayable trace marks it so (a "dev" replay line before its hashed line, docs/trace-format.md).
   */
  firmwareCycle = false;
  /** Benchmarks only: an access to a region that names a layer is charged to it (layer_meter.ts). */
  meter: LayerMeter | undefined;

  constructor(
    readonly owner: string,
    private readonly trace: Trace,
    private readonly nowNs: () => number,
    private readonly log: (message: string) => void,
  ) {}

  /** Maps `region` at [base, base + sizeBytes). Overlaps are a board-construction bug. */
  map(base: bigint, sizeBytes: bigint, region: BusRegion): void {
    const end = base + sizeBytes;
    for (const m of this.mappings) {
      if (base < m.end && m.base < end) {
        throw new Error(`${this.owner} bus: ${region.name} at ${hex(base)} overlaps ${m.region.name} at ${hex(m.base)}`);
      }
    }
    this.mappings.push({ base, end, region, baseNumber: Number(base), endNumber: end <= BigInt(NUMBER_EXACT_LIMIT) ? Number(end) : NUMBER_EXACT_LIMIT });
  }

  unmap(region: BusRegion): void {
    const index = this.mappings.findIndex((m) => m.region === region);
    if (index >= 0) this.mappings.splice(index, 1);
    this.lastHit = undefined;
  }

  /** A DMA read by `master` of [address, address + lengthBytes): one memory-like region must hold all of it. */
  dmaRead(master: string, address: bigint, lengthBytes: number): DmaResult {
    return this.dmaReadInto(master, address, new Uint8Array(Math.max(lengthBytes, 0)));
  }

  /**
   * A DMA read by `master` into `into` (its whole length): the same access, trace record and faults as dmaRead,
   * without a buffer made per transfer when the region can copy straight into `into`. False (after the fault is
   * logged and counted, as dmaRead does) when it faulted; `into` may then hold part of the data.
   */
  dmaReadInto(master: string, address: bigint, into: Uint8Array): DmaResult {
    const at = Number(address);
    const fast = at + into.length <= NUMBER_EXACT_LIMIT; // decoded in numbers: exact there
    const m = fast ? this.decodeNumber(at, 1, into.length) : this.decode(address, 1, into.length);
    if (this.trace.enabled) this.trace.record(this.nowNs(), master, "dma.r", { addr: hex(address), len: into.length, ok: m?.region.readBytes !== undefined ? 1 : 0 });
    if (m === undefined || m.region.readBytes === undefined) return this.dmaFault(master, "read", address, into.length);
    try {
      const offset = fast ? at - m.baseNumber : Number(address - m.base);
      if (m.region.readInto !== undefined) m.region.readInto(offset, into);
      else into.set(m.region.readBytes(offset, into.length));
      return { ok: true, bytes: into };
    } catch (error) {
      if (error instanceof WindowFault) return this.dmaFault(master, "read", address, into.length, error.message);
      throw error;
    }
  }

  /**
   * A DMA read by `master` of [address, address + lengthBytes) that takes the bytes later: the same access, trace
   * record and faults as dmaReadInto now, and a view of the memory itself instead of a copy, for a master that hands
   * the bytes on once its transfer time has passed (the NIC's transmit, to a socket). Undefined, with nothing
   * recorded, when the region has no view (a window onto another bus): the caller then copies with dmaReadInto.
   */
  dmaView(master: string, address: bigint, lengthBytes: number): DmaResult | undefined {
    const at = Number(address);
    const fast = at + lengthBytes <= NUMBER_EXACT_LIMIT;
    const m = fast ? this.decodeNumber(at, 1, lengthBytes) : this.decode(address, 1, lengthBytes);
    if (m === undefined || m.region.view === undefined || lengthBytes <= 0) return undefined;
    if (this.trace.enabled) this.trace.record(this.nowNs(), master, "dma.r", { addr: hex(address), len: lengthBytes, ok: 1 });
    try {
      return { ok: true, bytes: m.region.view(fast ? at - m.baseNumber : Number(address - m.base), lengthBytes) };
    } catch (error) {
      if (error instanceof WindowFault) return this.dmaFault(master, "read", address, lengthBytes, error.message);
      throw error;
    }
  }

  /**
   * The memory at [address, address + lengthBytes) as a view, with no access made, recorded or reported: for a device
   * that fills it ahead of the DMA that later writes it (dmaWrite of this very view then records and reports the
   * write, and copies nothing). Undefined when the trace is on, when the range is not in one region that gives such
   * views (RAM), or when someone watches that memory's writes (the fuzzer's snapshot, the replayable trace): for
   * them, memory changes only when the DMA happens.
   */
  quietView(address: bigint, lengthBytes: number): Uint8Array | undefined {
    if (this.trace.enabled) return undefined;
    const at = Number(address);
    if (lengthBytes <= 0 || at + lengthBytes > NUMBER_EXACT_LIMIT) return undefined;
    const m = this.decodeNumber(at, 1, lengthBytes);
    return m?.region.quietView?.(at - m.baseNumber, lengthBytes);
  }

  /** A DMA write by `master`; small writes to register regions (an MSI-X message) go through write(). */
  dmaWrite(master: string, address: bigint, bytes: Uint8Array): DmaResult {
    const at = Number(address);
    const fast = at + bytes.length <= NUMBER_EXACT_LIMIT; // decoded in numbers: exact there
    const m = fast ? this.decodeNumber(at, 1, bytes.length) : this.decode(address, 1, bytes.length);
    const offset = m === undefined ? 0 : fast ? at - m.baseNumber : Number(address - m.base);
    if (this.trace.enabled) this.trace.record(this.nowNs(), master, "dma.w", { addr: hex(address), len: bytes.length, ok: m !== undefined ? 1 : 0 });
    if (m === undefined) return this.dmaFault(master, "write", address, bytes.length);
    if (m.region.writeBytes !== undefined) {
      try {
        m.region.writeBytes(offset, bytes);
      } catch (error) {
        if (error instanceof WindowFault) return this.dmaFault(master, "write", address, bytes.length, error.message);
        throw error;
      }
    } else if (bytes.length === 4) m.region.write(offset, 4, new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true));
    else return this.dmaFault(master, "write", address, bytes.length);
    return { ok: true, bytes };
  }

  /** A register-sized read of `address` (a number is exact below 2^53). */
  read(address: number | bigint, sizeBytes: AccessSize): number | bigint {
    if (typeof address === "bigint" && address >= NUMBER_EXACT_LIMIT_BIG) return this.readAt(0, 0, address, sizeBytes);
    const at = Number(address);
    return this.readAt(at % TWO_POW_32, Math.floor(at / TWO_POW_32), undefined, sizeBytes);
  }

  /**
   * read() of the address `high` * 2^32 + `low`, given as the firmware's 32-bit halves (signed or not): the board
   * imports' path. Halves are small integers to V8, and the whole address is made only inside, so no BigInt or
   * heap number is made per access.
   */
  readHalves(low: number, high: number, sizeBytes: AccessSize): number | bigint {
    return high >>> 0 < HIGH_EXACT_LIMIT ? this.readAt(low, high, undefined, sizeBytes) : this.read(joinHalves(low, high), sizeBytes);
  }

  /** A register-sized write of `value` at `address`. */
  write(address: number | bigint, sizeBytes: AccessSize, value: number | bigint): void {
    if (typeof address === "bigint" && address >= NUMBER_EXACT_LIMIT_BIG) return this.writeAt(0, 0, address, sizeBytes, value, undefined);
    const at = Number(address);
    this.writeAt(at % TWO_POW_32, Math.floor(at / TWO_POW_32), undefined, sizeBytes, value, undefined);
  }

  /** write() at an address given in halves, as readHalves(). */
  writeHalves(low: number, high: number, sizeBytes: AccessSize, value: number): void {
    if (high >>> 0 < HIGH_EXACT_LIMIT) this.writeAt(low, high, undefined, sizeBytes, value, undefined);
    else this.write(joinHalves(low, high), sizeBytes, value);
  }

  /**
   * The 64-bit write of `valueHigh` * 2^32 + `valueLow` (32-bit integers, signed or not) at an address in halves:
   * the same access, trace line and region write as write(address, 8, value), and no BigInt made when the region
   * takes halves (RAM, the windows onto it).
   */
  write64Halves(low: number, high: number, valueLow: number, valueHigh: number): void {
    if (high >>> 0 < HIGH_EXACT_LIMIT) this.writeAt(low, high, undefined, 8, valueLow, valueHigh);
    else this.writeAt(0, 0, joinHalves(low, high), 8, valueLow, valueHigh);
  }

  // The address is `big` when it is at or past 2^53 (decoded in BigInts), else (high >>> 0) * 2^32 + (low >>> 0).
  private readAt(low: number, high: number, big: bigint | undefined, sizeBytes: AccessSize): number | bigint {
    const byFirmware = this.firmwareCycle;
    this.firmwareCycle = false;
    const at = (high >>> 0) * TWO_POW_32 + (low >>> 0);
    const m = big === undefined ? this.decodeNumber(at, sizeBytes, sizeBytes) : this.decode(big, sizeBytes);
    let value: number | bigint;
    if (m === undefined) value = this.abort("read", big ?? at, sizeBytes);
    else {
      const offset = big === undefined ? at - m.baseNumber : Number(big - m.base);
      if (this.meter === undefined || m.region.layer === undefined) value = m.region.read(offset, sizeBytes);
      else {
        const outer = this.meter.enter(m.region.layer);
        value = m.region.read(offset, sizeBytes);
        this.meter.leave(outer);
      }
    }
    if (this.trace.enabled) {
      if (!byFirmware) this.trace.replayMark(this.owner, "dev");
      this.trace.record(this.nowNs(), this.owner, `r${sizeBytes * 8}`, { addr: big === undefined ? hexHalves(low, high) : hex(big), val: hex(value) });
    }
    return value;
  }

  // `valueHigh` is undefined for a whole value, else `value` is the low half of a 64-bit one. The address as readAt's.
  private writeAt(low: number, high: number, big: bigint | undefined, sizeBytes: AccessSize, value: number | bigint, valueHigh: number | undefined): void {
    const byFirmware = this.firmwareCycle;
    this.firmwareCycle = false;
    if (this.trace.enabled) {
      if (!byFirmware) this.trace.replayMark(this.owner, "dev");
      const text = valueHigh === undefined ? hex(value) : hexHalves(value as number, valueHigh);
      this.trace.record(this.nowNs(), this.owner, `w${sizeBytes * 8}`, { addr: big === undefined ? hexHalves(low, high) : hex(big), val: text });
    }
    const at = (high >>> 0) * TWO_POW_32 + (low >>> 0);
    const m = big === undefined ? this.decodeNumber(at, sizeBytes, sizeBytes) : this.decode(big, sizeBytes);
    if (m === undefined) {
      this.abort("write", big ?? at, sizeBytes);
      return;
    }
    const offset = big === undefined ? at - m.baseNumber : Number(big - m.base);
    const outer = this.meter === undefined || m.region.layer === undefined ? undefined : this.meter.enter(m.region.layer);
    const region = m.region;
    if (valueHigh === undefined) region.write(offset, sizeBytes, value);
    else if (region.write64 !== undefined) region.write64(offset, value as number, valueHigh);
    else region.write(offset, 8, joinHalves(value as number, valueHigh));
    if (outer !== undefined) this.meter!.leave(outer);
  }

  // decode() for an address below 2^53, in numbers: the same answer, no BigInt made.
  private decodeNumber(address: number, alignBytes: number, lengthBytes: number): Mapping | undefined {
    if (lengthBytes <= 0 || (alignBytes > 1 && address % alignBytes !== 0)) return undefined; // unaligned: nothing decodes it
    const last = this.lastHit;
    if (last !== undefined && address >= last.baseNumber && address + lengthBytes <= last.endNumber) return last;
    for (const m of this.mappings) {
      if (address >= m.baseNumber && address + lengthBytes <= m.endNumber) return (this.lastHit = m);
    }
    return undefined;
  }

  private decode(address: bigint, alignBytes: number, lengthBytes: number = alignBytes): Mapping | undefined {
    if (lengthBytes <= 0 || (alignBytes > 1 && (address & BigInt(alignBytes - 1)) !== 0n)) return undefined; // unaligned: nothing decodes it
    // Accesses come in runs to one region (a ring in RAM, a device's registers): the last hit is tried first.
    const last = this.lastHit;
    if (last !== undefined && address >= last.base && address + BigInt(lengthBytes) <= last.end) return last;
    for (const m of this.mappings) {
      if (address >= m.base && address + BigInt(lengthBytes) <= m.end) return (this.lastHit = m);
    }
    return undefined;
  }

  private dmaFault(master: string, kind: string, address: bigint, lengthBytes: number, beyond?: string): DmaResult {
    const fault = `${kind} of ${lengthBytes} bytes at ${hex(address)} ${beyond === undefined ? "is outside every window" : `faulted beyond its window: ${beyond}`}`;
    this.guestErrorCount += 1;
    if (this.guestErrorCount <= 8) this.log(`DMA fault by ${master}: ${fault}`);
    return { ok: false, fault };
  }

  private abort(kind: string, address: number | bigint, sizeBytes: AccessSize): number | bigint {
    this.guestErrorCount += 1;
    // The first few are worth a line each; after that, a count in the stats is enough.
    if (this.guestErrorCount <= 8) this.log(`guest error: ${kind} of ${sizeBytes} bytes at ${hex(address)} decodes to nothing`);
    return ALL_ONES[sizeBytes];
  }
}
