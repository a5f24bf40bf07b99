// A processor's DMA engine (docs/hardware.md, "DMA engine"): it walks a chain of descriptors in local RAM and copies
// between any two local bus addresses (RAM, the outbound window, BARs) through the bus's DMA port, one descriptor
// per step of board time. Map it at 0xF001_0000 on the processor's bus.
//
// Timing: a descriptor is read when its turn comes, and its copy and status write-back happen `lengthBytes / 4 GB/s`
// later, so nothing at the destination changes before the board time it costs has passed.
// Interpretations where docs/hardware.md is silent:
// - Start while busy is a guest error and ignored; start does not clear STATUS.done/error (they are RW1C).
// - Abort stops the chain at once: the descriptor in flight is neither copied nor given a status, STATUS.busy
//   clears, done and error stay as they were, and no interrupt is raised (the firmware asked for it).
// - A descriptor that cannot be read, or is not 16-aligned, ends the chain with STATUS.error (no status is written:
//   there is no descriptor to write it to); so does a chain longer than DMA_CHAIN_DESCRIPTORS_MAX.
import type { AccessSize, Bus, BusRegion } from "../bus/bus.ts";
import type { EventHandle, VirtualClock } from "../sim/clock.ts";
import { hex } from "../sim/trace.ts";

export const DMA_REGISTERS_SIZE_BYTES = 4096;
export const DMA_CTRL = 0x00;
export const DMA_STATUS = 0x04;
export const DMA_DESC_LO = 0x08;
export const DMA_DESC_HI = 0x0c;
export const DMA_LVEC = 0x10;
export const DMA_CTRL_START = 1 << 0;
export const DMA_CTRL_ABORT = 1 << 1;
export const DMA_STATUS_BUSY = 1 << 0;
export const DMA_STATUS_DONE = 1 << 1;
export const DMA_STATUS_ERROR = 1 << 2;
export const DMA_LVEC_RESET = 0x21;

// Descriptor, 32 bytes, 16-aligned: |0 source u64|8 destination u64|16 lengthBytes u32|20 control u32|24 next u32|28 status u32|
export const DMA_DESC_BYTES = 32;
const DMA_DESC_ALIGN_BYTES = 16;
export const DMA_DESC_SOURCE = 0;
export const DMA_DESC_DESTINATION = 8;
export const DMA_DESC_LENGTH = 16;
export const DMA_DESC_CONTROL = 20;
export const DMA_DESC_NEXT = 24;
export const DMA_DESC_STATUS = 28;
export const DMA_CONTROL_INTERRUPT = 1 << 0;
export const DMA_DESC_STATUS_DONE = 1;
export const DMA_DESC_STATUS_SOURCE_FAULT = 2;
export const DMA_DESC_STATUS_DESTINATION_FAULT = 3;

/** A chain ends with a fault after this many descriptors: a loop of descriptors must not run forever. */
export const DMA_CHAIN_DESCRIPTORS_MAX = 4096;
/** 4 GB/s is 4 bytes per nanosecond of board time. */
export const DMA_BYTES_PER_NS = 4;
/** Copies move through a buffer of at most this size, so a 4 GiB descriptor never allocates 4 GiB at once. */
const DMA_CHUNK_BYTES = 64 * 1024;

export interface DmaEngineOptions {
  name: string;
  bus: Bus; // the processor's own bus: descriptors, sources and destinations are addresses on it
  clock: VirtualClock;
  raiseIrq: (vector: number) => void;
  log: (message: string) => void;
}

interface Descriptor {
  address: bigint; // where it sits, for the status write-back
  source: bigint;
  destination: bigint;
  lengthBytes: number;
  control: number;
  next: number;
}

export class DmaEngine implements BusRegion {
  readonly name: string;
  guestErrorCount = 0;
  private readonly bus: Bus;
  private readonly clock: VirtualClock;
  private readonly raiseIrq: (vector: number) => void;
  private readonly log: (message: string) => void;

  // Registers; reset() restores each.
  private status = 0;
  private descLo = 0;
  private descHi = 0;
  private lvec = DMA_LVEC_RESET;

  // The running chain.
  private inFlight: EventHandle | undefined;
  private descriptorCount = 0; // descriptors taken from this chain so far
  private interruptWanted = false; // some descriptor of this chain asked for an interrupt

  constructor(options: DmaEngineOptions) {
    this.name = options.name;
    this.bus = options.bus;
    this.clock = options.clock;
    this.raiseIrq = options.raiseIrq;
    this.log = options.log;
  }

  /** Power-on: idle, no chain, every register at its reset value. */
  reset(): void {
    if (this.inFlight !== undefined) this.clock.cancel(this.inFlight);
    this.inFlight = undefined;
    this.status = 0;
    this.descLo = 0;
    this.descHi = 0;
    this.lvec = DMA_LVEC_RESET;
    this.descriptorCount = 0;
    this.interruptWanted = false;
  }

  read(offset: number, sizeBytes: AccessSize): number | bigint {
    if (sizeBytes !== 4) return this.badRead(`read of ${sizeBytes} at ${hex(offset)}`, sizeBytes);
    switch (offset) {
      case DMA_CTRL: return 0; // start self-clears; abort acts at once
      case DMA_STATUS: return this.status;
      case DMA_DESC_LO: return this.descLo;
      case DMA_DESC_HI: return this.descHi;
      case DMA_LVEC: return this.lvec;
      default: return this.badRead(`read of unknown register ${hex(offset)}`, sizeBytes);
    }
  }

  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (sizeBytes !== 4) {
      this.guestError(`write of ${sizeBytes} at ${hex(offset)}`);
      return;
    }
    const v = Number(value) >>> 0;
    switch (offset) {
      case DMA_CTRL: this.writeCtrl(v); break;
      case DMA_STATUS: this.status &= ~(v & (DMA_STATUS_DONE | DMA_STATUS_ERROR)); break; // RW1C; busy is read-only
      case DMA_DESC_LO: this.descLo = v; break;
      case DMA_DESC_HI: this.descHi = v; break;
      case DMA_LVEC: this.lvec = v & 0xff; break;
      default: this.guestError(`write of unknown register ${hex(offset)}`);
    }
  }

  private writeCtrl(value: number): void {
    // Abort wins over a start in the same write: stopping is what the firmware needs to be sure of.
    if ((value & DMA_CTRL_ABORT) !== 0) {
      this.abort();
      return;
    }
    if ((value & DMA_CTRL_START) === 0) return;
    if ((this.status & DMA_STATUS_BUSY) !== 0) {
      this.guestError("start while busy: ignored");
      return;
    }
    this.status |= DMA_STATUS_BUSY;
    this.descriptorCount = 0;
    this.interruptWanted = false;
    this.beginDescriptor((BigInt(this.descHi) << 32n) | BigInt(this.descLo));
  }

  private abort(): void {
    if (this.inFlight !== undefined) this.clock.cancel(this.inFlight);
    this.inFlight = undefined;
    this.status &= ~DMA_STATUS_BUSY;
  }

  // Reads the descriptor at `address` and schedules its copy after the board time it costs.
  private beginDescriptor(address: bigint): void {
    if (this.descriptorCount >= DMA_CHAIN_DESCRIPTORS_MAX) {
      this.endChain(`chain longer than ${DMA_CHAIN_DESCRIPTORS_MAX} descriptors (a loop?) at ${hex(address)}`);
      return;
    }
    this.descriptorCount += 1;
    const descriptor = this.readDescriptor(address);
    if (descriptor === undefined) return; // readDescriptor ended the chain
    if ((descriptor.control & DMA_CONTROL_INTERRUPT) !== 0) this.interruptWanted = true;
    const delayNs = Math.ceil(descriptor.lengthBytes / DMA_BYTES_PER_NS);
    this.inFlight = this.clock.after(delayNs, () => this.completeDescriptor(descriptor));
  }

  private readDescriptor(address: bigint): Descriptor | undefined {
    if (address % BigInt(DMA_DESC_ALIGN_BYTES) !== 0n) {
      this.endChain(`descriptor at ${hex(address)} is not ${DMA_DESC_ALIGN_BYTES}-aligned`);
      return undefined;
    }
    const result = this.bus.dmaRead(this.name, address, DMA_DESC_BYTES);
    if (!result.ok) {
      this.endChain(`descriptor at ${hex(address)} cannot be read: ${result.fault}`);
      return undefined;
    }
    const view = new DataView(result.bytes.buffer, result.bytes.byteOffset, DMA_DESC_BYTES);
    return {
      address,
      source: view.getBigUint64(DMA_DESC_SOURCE, true),
      destination: view.getBigUint64(DMA_DESC_DESTINATION, true),
      lengthBytes: view.getUint32(DMA_DESC_LENGTH, true),
      control: view.getUint32(DMA_DESC_CONTROL, true),
      next: view.getUint32(DMA_DESC_NEXT, true),
    };
  }

  // The descriptor's time has passed: copy, write its status back, then go on to the next or end the chain.
  private completeDescriptor(descriptor: Descriptor): void {
    this.inFlight = undefined;
    const status = this.copy(descriptor);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, status, true);
    this.bus.dmaWrite(this.name, descriptor.address + BigInt(DMA_DESC_STATUS), bytes); // it was readable there a moment ago
    if (status === DMA_DESC_STATUS_SOURCE_FAULT) this.endChain(`source fault in descriptor at ${hex(descriptor.address)}`);
    else if (status === DMA_DESC_STATUS_DESTINATION_FAULT) this.endChain(`destination fault in descriptor at ${hex(descriptor.address)}`);
    else if (descriptor.next === 0) this.endChain(undefined);
    else this.beginDescriptor(BigInt(descriptor.next));
  }

  /** Copies the descriptor's bytes chunk by chunk; answers the descriptor status (done, or which side faulted). */
  private copy(descriptor: Descriptor): number {
    // Bounded: at most ceil(2^32 / DMA_CHUNK_BYTES) passes for the largest u32 length.
    for (let doneBytes = 0; doneBytes < descriptor.lengthBytes; doneBytes += DMA_CHUNK_BYTES) {
      const chunkBytes = Math.min(DMA_CHUNK_BYTES, descriptor.lengthBytes - doneBytes);
      const read = this.bus.dmaRead(this.name, descriptor.source + BigInt(doneBytes), chunkBytes);
      if (!read.ok) return DMA_DESC_STATUS_SOURCE_FAULT;
      const written = this.bus.dmaWrite(this.name, descriptor.destination + BigInt(doneBytes), read.bytes);
      if (!written.ok) return DMA_DESC_STATUS_DESTINATION_FAULT;
    }
    return DMA_DESC_STATUS_DONE;
  }

  /** Ends the chain: `fault` undefined is a normal end (done), otherwise an error. Interrupts if asked or on error. */
  private endChain(fault: string | undefined): void {
    this.status &= ~DMA_STATUS_BUSY;
    if (fault === undefined) this.status |= DMA_STATUS_DONE;
    else {
      this.status |= DMA_STATUS_ERROR;
      this.guestError(fault);
    }
    if (fault !== undefined || this.interruptWanted) this.raiseIrq(this.lvec);
  }

  private badRead(message: string, sizeBytes: AccessSize): number | bigint {
    this.guestError(message);
    return sizeBytes === 8 ? 0xffff_ffff_ffff_ffffn : 2 ** (sizeBytes * 8) - 1;
  }

  private guestError(message: string): void {
    this.guestErrorCount += 1;
    if (this.guestErrorCount <= 8) this.log(`${this.name}: guest error: ${message}`);
  }
}
