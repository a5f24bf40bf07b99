// The XOR engine (docs/hardware.md, "xor-engine"): a PCI function after the application accelerator unit (AAU) of
// the Intel IOP33x/IOP34x (REFERENCE.md §7): it walks a chain of descriptors in the processor's RAM, XORs up to
// XOR_SOURCES_MAX sources into one destination, can report whether the result is all zeros, and signals MSI-X
// vector 0 when its interrupt cause register gains a bit. BAR 0 holds the registers, BAR 4 the MSI-X table.
//
// Timing: a descriptor is read when its turn comes; its work and its status write-back happen
// XOR_DESCRIPTOR_NS + (sources + 1) × byteCount / XOR_BYTES_PER_NS later (every source read, the destination
// written), so a bench sees the engine's cost grow with the bytes.
// Interpretations (each chosen so that a fault never leaves a half-written destination):
// - A descriptor is checked whole before anything moves: a count of 0 or over XOR_BYTE_COUNT_MAX, 0 or more than
//   XOR_SOURCES_MAX sources, an address or count not a multiple of 8, no operation, or a source or destination no
//   window decodes as memory: the chain stops with a fault, nothing is written but the descriptor's status.
// - Sources are read whole, then the destination is written in one transfer, so a destination equal to a source
//   (accumulate in place) works, and a destination outside RAM writes nothing.
// - A fault sets STATUS.error, ERROR (the code), ERROR_DESC (the descriptor), the cause's error bit, and stops the
//   chain; a descriptor that cannot be read gets no status (there is nothing to write it to). A chain that ends
//   without a fault sets the cause's chain-end bit; a descriptor with the interrupt bit sets descriptor-done.
// - START while busy is a guest error and ignored. RESET stops the chain at once (the descriptor in flight does no
//   work and gets no status) and restores every register to its power-on value; the PCI header and MSI-X stay.
// - Registers are 32 bits; other sizes, unknown offsets and writes to read-only registers are guest errors.
import type { AccessSize } from "../bus/bus.ts";
import { PciFunctionBase } from "../bus/pci_function.ts";
import type { EventHandle, VirtualClock } from "../sim/clock.ts";
import { hex } from "../sim/trace.ts";

export const XOR_VENDOR_ID = 0x1234;
export const XOR_DEVICE_ID = 0x11a5;
export const XOR_CLASS_CODE = 0x0b4000; // processor, co-processor
export const XOR_BAR_REGISTERS = 0;
export const XOR_BAR_MSIX = 4;
export const XOR_VECTOR_COUNT = 1;
const BAR_SIZE_BYTES = 4096;
const MSIX_TABLE_OFFSET = 0x000;
const MSIX_PBA_OFFSET = 0x800;

// BAR 0 registers, all 32 bits.
export const XOR_CTRL = 0x00;
export const XOR_STATUS = 0x04;
export const XOR_DESC_BASE_LO = 0x08;
export const XOR_DESC_BASE_HI = 0x0c;
export const XOR_INT_CAUSE = 0x10;
export const XOR_ERROR = 0x14;
export const XOR_ERROR_DESC_LO = 0x18;
export const XOR_ERROR_DESC_HI = 0x1c;

export const XOR_CTRL_START = 1 << 0;
export const XOR_CTRL_RESET = 1 << 1;
export const XOR_STATUS_BUSY = 1 << 0;
export const XOR_STATUS_ERROR = 1 << 1;
export const XOR_CAUSE_DESCRIPTOR_DONE = 1 << 0;
export const XOR_CAUSE_CHAIN_END = 1 << 1;
export const XOR_CAUSE_ERROR = 1 << 2;

// Descriptor, 96 bytes, 32-aligned, in RAM:
// |0 next u64 (0 ends)|8 destination u64|16 byteCount u32|20 control u32|24 sourceCount u32|28 status u32|
// |32 source[0] u64| … |88 source[7] u64|
export const XOR_DESC_BYTES = 96;
export const XOR_DESC_ALIGN_BYTES = 32;
export const XOR_DESC_NEXT = 0;
export const XOR_DESC_DESTINATION = 8;
export const XOR_DESC_BYTE_COUNT = 16;
export const XOR_DESC_CONTROL = 20;
export const XOR_DESC_SOURCE_COUNT = 24;
export const XOR_DESC_STATUS = 28;
export const XOR_DESC_SOURCES = 32;
export const XOR_SOURCES_MAX = 8;
export const XOR_BYTE_COUNT_MAX = 1 << 20;
export const XOR_ADDRESS_ALIGN_BYTES = 8;
export const XOR_CONTROL_XOR = 1 << 0; // write the XOR of the sources to the destination
export const XOR_CONTROL_ZERO_CHECK = 1 << 1; // report in the status whether that XOR is all zeros
export const XOR_CONTROL_INTERRUPT = 1 << 2; // set the cause's descriptor-done bit when this descriptor completes
export const XOR_DESC_STATUS_DONE = 1 << 0;
export const XOR_DESC_STATUS_ZERO = 1 << 1; // the result was all zeros (only with ZERO_CHECK)
export const XOR_DESC_STATUS_ERROR = 1 << 2; // bits 8-15 hold the error code
export const XOR_DESC_STATUS_CODE_SHIFT = 8;

/** What ERROR and a faulted descriptor's status say. */
export enum XorError {
  None = 0,
  DescriptorUnreadable = 1, // the descriptor's address is outside every memory window
  DescriptorMisaligned = 2, // not XOR_DESC_ALIGN_BYTES-aligned
  ByteCountZero = 3,
  ByteCountOversize = 4, // over XOR_BYTE_COUNT_MAX
  SourceCount = 5, // 0, or over XOR_SOURCES_MAX
  Misaligned = 6, // a source, the destination or the count not a multiple of XOR_ADDRESS_ALIGN_BYTES
  NoOperation = 7, // neither XOR nor ZERO_CHECK
  SourceFault = 8, // a source outside every memory window
  DestinationFault = 9, // the destination outside every memory window
  ChainTooLong = 10, // more than XOR_CHAIN_DESCRIPTORS_MAX descriptors: a loop
}

/** A chain stops with a fault after this many descriptors: a loop of descriptors must not run forever. */
export const XOR_CHAIN_DESCRIPTORS_MAX = 4096;
export const XOR_DESCRIPTOR_NS = 500; // reading and checking a descriptor
export const XOR_BYTES_PER_NS = 2; // 2 GB/s through the XOR unit, counting every source read and the write
const DESCRIPTORS_SEEN_MAX = 32;

/** Lies a test or the fuzzer arms; each applies once, to the next chance it names, in the order armed. */
export type XorEngineFault =
  | { kind: "status-garbage-next"; value: number } // the next descriptor's status is written as `value`, no work done
  | { kind: "destination-garbage-next"; value: number } // the next XOR writes `value`'s byte pattern instead
  | { kind: "complete-unsubmitted"; seen: number; value: number } // writes `value` as the status of descriptorsSeen[seen % length] (none yet: nothing), and the cause's descriptor-done bit
  | { kind: "interrupt-storm"; count: number } // vector 0 signalled `count` extra times, now
  | { kind: "never-complete-next" } // the next descriptor is taken and never finished: busy forever, until reset
  | { kind: "error-next"; code: number } // the next descriptor faults with `code`, and its status says so
  | { kind: "cause-garbage"; value: number }; // the cause register gains `value`'s bits, and the vector is signalled

export interface XorEngineStats {
  descriptors: number; // descriptors completed without a fault
  bytes: number; // destination bytes computed
  faults: number; // chains stopped by a fault
}

export interface XorEngineOptions {
  name: string;
  clock: VirtualClock;
  log: (message: string) => void;
}

interface Descriptor {
  address: bigint; // where it sits, for the status write-back
  next: bigint;
  destination: bigint;
  byteCount: number;
  control: number;
  sourceCount: number;
  sources: bigint[];
}

export class XorEngine extends PciFunctionBase {
  readonly stats: XorEngineStats = { descriptors: 0, bytes: 0, faults: 0 };
  /** Distinct descriptor addresses read since power-on, the first DESCRIPTORS_SEEN_MAX: where a lie can land. */
  readonly descriptorsSeen: bigint[] = [];
  private readonly clock: VirtualClock;
  private readonly logLine: (message: string) => void;
  private readonly faults: XorEngineFault[] = [];
  // Registers; resetEngine() restores each.
  private status = 0;
  private descBaseLo = 0;
  private descBaseHi = 0;
  private cause = 0;
  private error = 0;
  private errorDesc = 0n;
  // The running chain.
  private inFlight: EventHandle | undefined;
  private descriptorCount = 0; // descriptors taken from this chain so far
  private readonly wordScratch = new Uint8Array(4);
  private resultScratch = new Uint8Array(0); // compute()'s, kept between descriptors
  private sourceScratch = new Uint8Array(0);

  constructor(options: XorEngineOptions) {
    super(
      {
        name: options.name,
        vendorId: XOR_VENDOR_ID,
        deviceId: XOR_DEVICE_ID,
        classCode: XOR_CLASS_CODE,
        revision: 1,
        bars: [
          { index: XOR_BAR_REGISTERS, sizeBytes: BAR_SIZE_BYTES },
          { index: XOR_BAR_MSIX, sizeBytes: BAR_SIZE_BYTES },
        ],
        msix: { vectorCount: XOR_VECTOR_COUNT, bar: XOR_BAR_MSIX, tableOffset: MSIX_TABLE_OFFSET, pbaOffset: MSIX_PBA_OFFSET },
      },
      options.log,
    );
    this.clock = options.clock;
    this.logLine = options.log;
  }

  /** Power-on reset from the board: the PCI header and the engine; a chain in flight vanishes with the power. */
  reset(): void {
    this.resetFunction();
    this.resetEngine();
    this.faults.length = 0;
    this.descriptorsSeen.length = 0;
  }

  /** Arms `fault`; several apply in the order armed. An interrupt storm or garbage cause acts at once. */
  inject(fault: XorEngineFault): void {
    if (fault.kind === "interrupt-storm") {
      this.logLine(`${this.name}: injected fault: interrupt-storm ${fault.count}`);
      for (let i = 0; i < fault.count; i++) this.signal(0);
      return;
    }
    if (fault.kind === "cause-garbage") {
      this.logLine(`${this.name}: injected fault: cause-garbage ${hex(fault.value)}`);
      this.raise(fault.value >>> 0);
      return;
    }
    if (fault.kind === "complete-unsubmitted") {
      const address = this.descriptorsSeen[fault.seen % Math.max(this.descriptorsSeen.length, 1)];
      this.logLine(`${this.name}: injected fault: complete-unsubmitted at ${address === undefined ? "none" : hex(address)}`);
      if (address !== undefined) this.writeStatus(address, fault.value);
      this.raise(XOR_CAUSE_DESCRIPTOR_DONE);
      return;
    }
    this.faults.push(fault);
  }

  /** Lies armed and not yet told. */
  get armedFaultCount(): number {
    return this.faults.length;
  }

  get busy(): boolean {
    return (this.status & XOR_STATUS_BUSY) !== 0;
  }

  protected mmioRead(bar: number, offset: number, sizeBytes: AccessSize): number {
    if (bar !== XOR_BAR_REGISTERS || sizeBytes !== 4) return this.guestError(`read of ${sizeBytes} at BAR${bar} ${hex(offset)}`, sizeBytes);
    switch (offset) {
      case XOR_CTRL: return 0; // start and reset act at once
      case XOR_STATUS: return this.status;
      case XOR_DESC_BASE_LO: return this.descBaseLo;
      case XOR_DESC_BASE_HI: return this.descBaseHi;
      case XOR_INT_CAUSE: return this.cause;
      case XOR_ERROR: return this.error;
      case XOR_ERROR_DESC_LO: return Number(this.errorDesc & 0xffff_ffffn);
      case XOR_ERROR_DESC_HI: return Number(this.errorDesc >> 32n);
      default: return this.guestError(`read of unknown register ${hex(offset)}`, sizeBytes);
    }
  }

  protected mmioWrite(bar: number, offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (bar !== XOR_BAR_REGISTERS || sizeBytes !== 4) {
      this.guestError(`write of ${sizeBytes} at BAR${bar} ${hex(offset)}`, 4);
      return;
    }
    const v = Number(BigInt.asUintN(32, BigInt(value)));
    switch (offset) {
      case XOR_CTRL: this.writeCtrl(v); break;
      case XOR_DESC_BASE_LO: this.descBaseLo = v; break;
      case XOR_DESC_BASE_HI: this.descBaseHi = v; break;
      case XOR_INT_CAUSE: this.cause &= ~v; break; // RW1C
      default: this.guestError(`write of ${hex(v)} to ${hex(offset)} (unknown or read-only)`, 4);
    }
  }

  private writeCtrl(value: number): void {
    // Reset wins over a start in the same write: stopping is what the driver needs to be sure of.
    if ((value & XOR_CTRL_RESET) !== 0) {
      this.resetEngine();
      return;
    }
    if ((value & XOR_CTRL_START) === 0) return;
    if (this.busy) {
      this.guestError("start while busy: ignored", 4);
      return;
    }
    this.status = XOR_STATUS_BUSY; // a start clears the last chain's error
    this.error = XorError.None;
    this.errorDesc = 0n;
    this.descriptorCount = 0;
    this.beginDescriptor((BigInt(this.descBaseHi) << 32n) | BigInt(this.descBaseLo));
  }

  private resetEngine(): void {
    if (this.inFlight !== undefined) this.clock.cancel(this.inFlight);
    this.inFlight = undefined;
    this.status = 0;
    this.descBaseLo = 0;
    this.descBaseHi = 0;
    this.cause = 0;
    this.error = XorError.None;
    this.errorDesc = 0n;
    this.descriptorCount = 0;
  }

  // Reads the descriptor at `address`, checks it, and schedules its work after the board time it costs.
  private beginDescriptor(address: bigint): void {
    if (this.descriptorCount >= XOR_CHAIN_DESCRIPTORS_MAX) return this.fault(address, XorError.ChainTooLong, false);
    this.descriptorCount += 1;
    if (address % BigInt(XOR_DESC_ALIGN_BYTES) !== 0n) return this.fault(address, XorError.DescriptorMisaligned, false);
    const read = this.dmaRead(address, XOR_DESC_BYTES);
    if (!read.ok) return this.fault(address, XorError.DescriptorUnreadable, false);
    const descriptor = parseDescriptor(address, read.bytes);
    if (this.descriptorsSeen.length < DESCRIPTORS_SEEN_MAX && !this.descriptorsSeen.includes(address)) this.descriptorsSeen.push(address);
    if (this.takeFault("never-complete-next") !== undefined) return; // busy until reset: the driver's timeout
    const delayNs = XOR_DESCRIPTOR_NS + Math.ceil(((Math.min(descriptor.sourceCount, XOR_SOURCES_MAX) + 1) * Math.min(descriptor.byteCount, XOR_BYTE_COUNT_MAX)) / XOR_BYTES_PER_NS);
    this.inFlight = this.clock.after(delayNs, () => this.completeDescriptor(descriptor));
  }

  // The descriptor's time has passed: do its work, write its status, go on to the next or end the chain.
  private completeDescriptor(descriptor: Descriptor): void {
    this.inFlight = undefined;
    const garbage = this.takeFault("status-garbage-next");
    if (garbage !== undefined) {
      this.writeStatus(descriptor.address, garbage.value);
      return this.next(descriptor);
    }
    const injected = this.takeFault("error-next");
    const code = injected !== undefined ? injected.code & 0xff : this.check(descriptor);
    if (code !== XorError.None) return this.fault(descriptor.address, code, true);
    const result = this.compute(descriptor);
    if (typeof result === "number") return this.fault(descriptor.address, result, true);
    let status = XOR_DESC_STATUS_DONE;
    if ((descriptor.control & XOR_CONTROL_ZERO_CHECK) !== 0 && result.every((byte) => byte === 0)) status |= XOR_DESC_STATUS_ZERO;
    if ((descriptor.control & XOR_CONTROL_XOR) !== 0) {
      const lie = this.takeFault("destination-garbage-next");
      if (lie !== undefined) result.fill(lie.value & 0xff);
      // check() proved the destination decodes as memory, and nothing between then and now unmaps RAM.
      if (!this.dmaWrite(descriptor.destination, result).ok) return this.fault(descriptor.address, XorError.DestinationFault, true);
    }
    this.writeStatus(descriptor.address, status);
    this.stats.descriptors += 1;
    this.stats.bytes += descriptor.byteCount;
    if ((descriptor.control & XOR_CONTROL_INTERRUPT) !== 0) this.raise(XOR_CAUSE_DESCRIPTOR_DONE);
    this.next(descriptor);
  }

  private next(descriptor: Descriptor): void {
    if (descriptor.next === 0n) {
      this.status &= ~XOR_STATUS_BUSY;
      this.raise(XOR_CAUSE_CHAIN_END);
      return;
    }
    this.beginDescriptor(descriptor.next);
  }

  /** The descriptor's fields against the limits, and its ranges against the bus: XorError.None when it may run. */
  private check(d: Descriptor): XorError {
    if (d.byteCount === 0) return XorError.ByteCountZero;
    if (d.byteCount > XOR_BYTE_COUNT_MAX) return XorError.ByteCountOversize;
    if (d.sourceCount === 0 || d.sourceCount > XOR_SOURCES_MAX) return XorError.SourceCount;
    if ((d.control & (XOR_CONTROL_XOR | XOR_CONTROL_ZERO_CHECK)) === 0) return XorError.NoOperation;
    const align = BigInt(XOR_ADDRESS_ALIGN_BYTES);
    if (d.byteCount % XOR_ADDRESS_ALIGN_BYTES !== 0 || d.destination % align !== 0n) return XorError.Misaligned;
    for (let s = 0; s < d.sourceCount; s++) if (d.sources[s]! % align !== 0n) return XorError.Misaligned;
    // The destination must decode as memory before any work: a zero-length probe is not a transfer, so its first and
    // last words are read (RAM windows are contiguous: a range whose both ends are in one is in it).
    if ((d.control & XOR_CONTROL_XOR) !== 0
      && (!this.dmaRead(d.destination, 8).ok || !this.dmaRead(d.destination + BigInt(d.byteCount - 8), 8).ok)) return XorError.DestinationFault;
    return XorError.None;
  }

  // The XOR of the descriptor's sources, or the fault that stopped it (nothing is written either way): 32-bit word by
  // word (byteCount is a multiple of 8: check()), into scratch buffers kept between descriptors (grown to the largest
  // count seen), so the result is valid until the next call.
  private compute(d: Descriptor): Uint8Array | XorError {
    if (this.resultScratch.length < d.byteCount) {
      this.resultScratch = new Uint8Array(d.byteCount);
      this.sourceScratch = new Uint8Array(d.byteCount);
    }
    const result = this.resultScratch.subarray(0, d.byteCount);
    const source = this.sourceScratch.subarray(0, d.byteCount);
    const resultWords = new Uint32Array(result.buffer, 0, d.byteCount / 4);
    const sourceWords = new Uint32Array(source.buffer, 0, d.byteCount / 4);
    for (let s = 0; s < d.sourceCount; s++) {
      if (!this.dmaReadInto(d.sources[s]!, s === 0 ? result : source).ok) return XorError.SourceFault;
      if (s > 0) for (let i = 0; i < resultWords.length; i++) resultWords[i]! ^= sourceWords[i]!;
    }
    return result;
  }

  private fault(address: bigint, code: number, writeBack: boolean): void {
    if (writeBack) this.writeStatus(address, XOR_DESC_STATUS_ERROR | ((code & 0xff) << XOR_DESC_STATUS_CODE_SHIFT));
    this.status = (this.status & ~XOR_STATUS_BUSY) | XOR_STATUS_ERROR;
    this.error = code;
    this.errorDesc = address;
    this.stats.faults += 1;
    this.guestError(`descriptor at ${hex(address)}: ${XorError[code] ?? `error ${code}`}`, 4);
    this.raise(XOR_CAUSE_ERROR);
  }

  private writeStatus(address: bigint, value: number): void {
    new DataView(this.wordScratch.buffer).setUint32(0, value >>> 0, true);
    this.dmaWrite(address + BigInt(XOR_DESC_STATUS), this.wordScratch); // a fault here is the descriptor's to answer for
  }

  // Sets cause bits and signals the vector: one message per event, whether or not the bit was already set.
  private raise(bits: number): void {
    this.cause = (this.cause | bits) >>> 0;
    this.signal(0);
  }

  private takeFault<K extends XorEngineFault["kind"]>(kind: K): Extract<XorEngineFault, { kind: K }> | undefined {
    if (this.faults.length === 0) return undefined; // the common case, on every request: no closure, no scan
    const index = this.faults.findIndex((fault) => fault.kind === kind);
    if (index < 0) return undefined;
    const [fault] = this.faults.splice(index, 1);
    this.logLine(`${this.name}: injected fault: ${kind}`);
    return fault as Extract<XorEngineFault, { kind: K }>;
  }
}

function parseDescriptor(address: bigint, bytes: Uint8Array): Descriptor {
  const view = new DataView(bytes.buffer, bytes.byteOffset, XOR_DESC_BYTES);
  const sources: bigint[] = [];
  for (let s = 0; s < XOR_SOURCES_MAX; s++) sources.push(view.getBigUint64(XOR_DESC_SOURCES + 8 * s, true));
  return {
    address,
    next: view.getBigUint64(XOR_DESC_NEXT, true),
    destination: view.getBigUint64(XOR_DESC_DESTINATION, true),
    byteCount: view.getUint32(XOR_DESC_BYTE_COUNT, true),
    control: view.getUint32(XOR_DESC_CONTROL, true),
    sourceCount: view.getUint32(XOR_DESC_SOURCE_COUNT, true),
    sources,
  };
}
