// A battery-backed NVRAM card (docs/hardware.md, "nvram"): a PCI function whose BAR 2 is the non-volatile array
// itself, byte-addressable, and whose BAR 0 holds three registers. A store to the array is in the array when the
// bus write returns, and it stays there across resets and power cycles; the controller keeps there what must
// survive one (persistent reservations, SPC-4 APTPL), as storage controllers keep such state in their NVRAM.
//
// The emulator backs the array by a file in the board's data directory (or by memory the Board keeps across its
// resets, for tests): every store is written through to the file at once (so a killed emulator loses nothing the
// firmware stored), and a write to SYNC makes the file durable on the host too (fdatasync). Reads come from a copy
// in memory. No interrupt, no DMA: the firmware reads and writes the array with bus accesses, and a DMA master
// (another function, the DMA engine) may read or write it as memory too.
//
// Registers (BAR 0, 32-bit): |0x00 ID "NVRM" (RO)|0x04 SIZE, the array's bytes (RO)|0x08 SYNC (W: any value; the
// write returns when every earlier store is durable; reads 0)|. Other sizes, unknown offsets and writes to the
// read-only registers are guest errors. The array takes 1, 2, 4 and 8-byte naturally aligned accesses.
import { closeSync, existsSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import type { AccessSize, BusRegion } from "../bus/bus.ts";
import { PciFunctionBase } from "../bus/pci_function.ts";
import { hex } from "../sim/trace.ts";

export const NVRAM_VENDOR_ID = 0x1234;
export const NVRAM_DEVICE_ID = 0x11c0;
export const NVRAM_CLASS_CODE = 0x058000; // memory controller, other
export const NVRAM_BAR_REGISTERS = 0;
export const NVRAM_BAR_ARRAY = 2;
export const NVRAM_ID = 0x4d52_564e; // "NVRM"
export const NVRAM_REG_ID = 0x00;
export const NVRAM_REG_SIZE = 0x04;
export const NVRAM_REG_SYNC = 0x08;
export const NVRAM_SIZE_DEFAULT_KIB = 512;
const REGISTERS_BYTES = 4096;

/** An NVRAM file that exists with the wrong size, or cannot be opened. */
export class NvramFileError extends Error {
  override name = "NvramFileError";
}

/** What the array is kept in: a file (write-through) or memory. */
export interface NvramBacking {
  readonly bytes: Uint8Array; // the array, as the firmware sees it
  /** Writes [offset, offset + length) of `bytes` through to the backing store. */
  writeThrough(offsetBytes: number, lengthBytes: number): void;
  sync(): void;
  close(): void;
}

/** Memory that outlives the card's power cycles as long as its owner keeps it (tests; the Board keeps it). */
export function memoryNvram(sizeBytes: number): NvramBacking {
  const bytes = new Uint8Array(sizeBytes);
  return { bytes, writeThrough: () => {}, sync: () => {}, close: () => {} };
}

/** The file at `path`: made (zeros, as a new card reads) when absent; it must be `sizeBytes` long when present. */
export function fileNvram(path: string, sizeBytes: number): NvramBacking {
  const bytes = new Uint8Array(sizeBytes);
  let fd: number;
  try {
    const exists = existsSync(path);
    fd = openSync(path, exists ? "r+" : "w+");
    if (exists) {
      const found = fstatSync(fd).size;
      if (found !== sizeBytes) {
        closeSync(fd);
        throw new NvramFileError(`${path}: an NVRAM image of ${found} bytes, the board file's nvram is ${sizeBytes} bytes`);
      }
      let done = 0;
      while (done < sizeBytes) { // bounded: each read returns at least one byte of a file this long
        const n = readSync(fd, bytes, done, sizeBytes - done, done);
        if (n <= 0) break;
        done += n;
      }
    } else {
      writeSync(fd, bytes, 0, sizeBytes, 0);
      fdatasyncSync(fd);
    }
  } catch (error) {
    if (error instanceof NvramFileError) throw error;
    throw new NvramFileError(`${path}: cannot open the NVRAM image: ${(error as Error).message}`);
  }
  return {
    bytes,
    writeThrough: (offsetBytes, lengthBytes) => { writeSync(fd, bytes, offsetBytes, lengthBytes, offsetBytes); },
    sync: () => { fdatasyncSync(fd); },
    close: () => { closeSync(fd); },
  };
}

export interface NvramOptions {
  name: string;
  backing: NvramBacking;
  log: (message: string) => void;
}

export class NvramDevice extends PciFunctionBase {
  private readonly backing: NvramBacking;
  private readonly array: BusRegion;
  storeCount = 0;
  syncCount = 0;
  droppedStoreCount = 0;
  /** Stores the array still takes before an injected power cut drops the rest (undefined: no cut armed). */
  private storesBeforeCut: number | undefined;

  constructor(options: NvramOptions) {
    const sizeBytes = options.backing.bytes.length;
    if (sizeBytes < 4096 || (sizeBytes & (sizeBytes - 1)) !== 0) throw new RangeError(`${options.name}: NVRAM size ${sizeBytes} is not a power of two of at least 4 KiB`);
    super({
      name: options.name,
      vendorId: NVRAM_VENDOR_ID,
      deviceId: NVRAM_DEVICE_ID,
      classCode: NVRAM_CLASS_CODE,
      bars: [
        { index: NVRAM_BAR_REGISTERS, sizeBytes: REGISTERS_BYTES },
        { index: NVRAM_BAR_ARRAY, sizeBytes },
      ],
    }, options.log);
    this.backing = options.backing;
    const bytes = this.backing.bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.array = {
      name: `${options.name}.array`,
      read: (offset, sizeBytes) => readArray(view, offset, sizeBytes),
      write: (offset, sizeBytes, value) => {
        if (this.cut()) return;
        writeArray(view, offset, sizeBytes, value);
        this.stored(offset, sizeBytes);
      },
      readBytes: (offset, lengthBytes) => bytes.slice(offset, offset + lengthBytes),
      readInto: (offset, into) => { into.set(bytes.subarray(offset, offset + into.length)); },
      writeBytes: (offset, data) => {
        if (this.cut()) return;
        bytes.set(data, offset);
        this.stored(offset, data.length);
      },
    };
  }

  /** The array (for tests and tools: what a power cycle keeps). */
  get bytes(): Uint8Array { return this.backing.bytes; }

  /**
   * A power cut in the middle of an update, for tests: the array takes `stores` more stores, then drops every later
   * one (as the part would once its supply failed) until reset(). A torn record is what the firmware then finds.
   */
  cutPowerAfter(stores: number): void {
    this.storesBeforeCut = stores;
  }

  /** Power-on values of the header; the array keeps what it holds (it is non-volatile). A power cut is over. */
  reset(): void {
    this.resetFunction();
    this.storesBeforeCut = undefined;
  }

  // True when an injected power cut drops this store.
  private cut(): boolean {
    if (this.storesBeforeCut === undefined) return false;
    if (this.storesBeforeCut > 0) {
      this.storesBeforeCut -= 1;
      return false;
    }
    this.droppedStoreCount += 1;
    return true;
  }

  protected override barRegion(bar: number): BusRegion | undefined {
    return bar === NVRAM_BAR_ARRAY ? this.array : undefined;
  }

  protected mmioRead(bar: number, offset: number, sizeBytes: AccessSize): number | bigint {
    if (bar !== NVRAM_BAR_REGISTERS || sizeBytes !== 4) return this.guestError(`read of ${sizeBytes} bytes at BAR${bar}+${hex(offset)}`, sizeBytes);
    switch (offset) {
      case NVRAM_REG_ID: return NVRAM_ID;
      case NVRAM_REG_SIZE: return this.backing.bytes.length;
      case NVRAM_REG_SYNC: return 0;
      default: return this.guestError(`read of unknown register ${hex(offset)}`, sizeBytes);
    }
  }

  protected mmioWrite(bar: number, offset: number, sizeBytes: AccessSize, _value: number | bigint): void {
    if (bar !== NVRAM_BAR_REGISTERS || sizeBytes !== 4 || offset !== NVRAM_REG_SYNC) {
      this.guestError(`write of ${sizeBytes} bytes at BAR${bar}+${hex(offset)}`, sizeBytes);
      return;
    }
    this.syncCount += 1;
    this.backing.sync();
  }

  private stored(offset: number, lengthBytes: number): void {
    this.storeCount += 1;
    this.backing.writeThrough(offset, lengthBytes);
  }
}

function readArray(view: DataView, offset: number, sizeBytes: AccessSize): number | bigint {
  switch (sizeBytes) {
    case 1: return view.getUint8(offset);
    case 2: return view.getUint16(offset, true);
    case 4: return view.getUint32(offset, true);
    case 8: return view.getBigUint64(offset, true);
  }
}

function writeArray(view: DataView, offset: number, sizeBytes: AccessSize, value: number | bigint): void {
  switch (sizeBytes) {
    case 1: view.setUint8(offset, Number(value) & 0xff); break;
    case 2: view.setUint16(offset, Number(value) & 0xffff, true); break;
    case 4: view.setUint32(offset, Number(BigInt.asUintN(32, BigInt(value))), true); break;
    case 8: view.setBigUint64(offset, BigInt.asUintN(64, BigInt(value)), true); break;
  }
}
