// RAM on a bus: a processor's shared memory as devices address it (bus address 0 on its own bus), and the MSI
// region that turns a device's MSI-X write into the processor's irq(vector).
import type { AccessSize, BusRegion } from "./bus.ts";
import { readLe, writeLe, writeLe64 } from "./pci_function.ts";
import { copyBytes, copyOf } from "./shared_copy.ts";

const memoryViews = new WeakMap<WebAssembly.Memory, Uint8Array>();

/**
 * One byte view of a processor's RAM for its whole life. Reading `memory.buffer` of a shared memory makes a new
 * SharedArrayBuffer object each time, which on the data path (every DMA, every mailbox entry) is garbage per access;
 * a processor's memory is created at its maximum size and never grows (docs/board-abi.md), so one view stays whole.
 */
export function memoryBytes(memory: WebAssembly.Memory): Uint8Array {
  let view = memoryViews.get(memory);
  if (view === undefined) {
    view = new Uint8Array(memory.buffer);
    memoryViews.set(memory, view);
  }
  return view;
}

/**
 * Who hears of the host's own writes into a processor's memory: DMA, mailbox entries, the results of WASI calls.
 * The fuzzer's snapshot restores only the pages that changed; it tracks the firmware's stores in the image itself
 * (tools/fuzz/instrument.ts) and the host's through this. Every host write into a processor's memory reports here
 * (`watch.onWrite?.(offset, lengthBytes)`: one field read when nobody listens). The replayable trace listens too
 * (host/sim/trace.ts): it records those writes' bytes, and through onRead what devices read in bulk.
 */
export interface WriteWatch {
  /** `byAbi`: the write is a WASI call's out-parameter (a clock value, random bytes, a count), not a device's. */
  onWrite: ((offset: number, lengthBytes: number, byAbi?: boolean) => void) | undefined;
  /** A device read [offset, offset + lengthBytes) in bulk (DMA): the replayable trace records a digest of it. */
  onRead: ((offset: number, lengthBytes: number) => void) | undefined;
  /** A range set to zero (a power-on's RAM): heard here instead of onWrite when set, so a listener that knows which
   * pages were zero already (the fuzzer's snapshot) need not treat the whole range as changed. */
  onZero: ((offset: number, lengthBytes: number) => void) | undefined;
}

const writeWatches = new WeakMap<WebAssembly.Memory, WriteWatch>();

/** The write watch of `memory`, one per memory, made on first use. */
export function writeWatch(memory: WebAssembly.Memory): WriteWatch {
  let watch = writeWatches.get(memory);
  if (watch === undefined) {
    watch = { onWrite: undefined, onRead: undefined, onZero: undefined };
    writeWatches.set(memory, watch);
  }
  return watch;
}

const SMALL_COPY_BYTES_MAX = 64;

export class RamRegion implements BusRegion {
  readonly name: string;
  private readonly ram: Uint8Array;
  private readonly watch: WriteWatch;

  constructor(owner: string, memory: WebAssembly.Memory) {
    this.name = `${owner}.ram`;
    this.ram = memoryBytes(memory);
    this.watch = writeWatch(memory);
  }

  private bytes(): Uint8Array {
    return this.ram;
  }

  read(offset: number, sizeBytes: AccessSize): number | bigint {
    return readLe(this.bytes(), offset, sizeBytes);
  }

  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    writeLe(this.bytes(), offset, sizeBytes, value);
    this.watch.onWrite?.(offset, sizeBytes);
  }

  write64(offset: number, low: number, high: number): void {
    writeLe64(this.bytes(), offset, low, high);
    this.watch.onWrite?.(offset, 8);
  }

  readBytes(offset: number, lengthBytes: number): Uint8Array {
    this.watch.onRead?.(offset, lengthBytes);
    return copyOf(this.bytes().subarray(offset, offset + lengthBytes));
  }

  readInto(offset: number, into: Uint8Array): void {
    this.watch.onRead?.(offset, into.length);
    const ram = this.bytes();
    const lengthBytes = into.length;
    // Ring entries and descriptors (16-64 bytes, ~10 per 4 KiB request) byte by byte: no view made per access.
    if (lengthBytes <= SMALL_COPY_BYTES_MAX && offset + lengthBytes <= ram.length) {
      for (let i = 0; i < lengthBytes; i++) into[i] = ram[offset + i]!;
      return;
    }
    // A quietView read into itself (a WRITE's data used where it lies, its DMA still made): nothing to copy.
    if (into.buffer === ram.buffer && into.byteOffset === ram.byteOffset + offset) return;
    copyBytes(into, 0, ram.subarray(offset, offset + lengthBytes));
  }

  view(offset: number, lengthBytes: number): Uint8Array {
    if (offset + lengthBytes > this.ram.length) throw new RangeError(`${this.name}: view past the end`);
    this.watch.onRead?.(offset, lengthBytes);
    return this.ram.subarray(offset, offset + lengthBytes);
  }

  quietView(offset: number, lengthBytes: number): Uint8Array | undefined {
    if (this.watch.onWrite !== undefined || this.watch.onRead !== undefined || offset + lengthBytes > this.ram.length) return undefined;
    return this.ram.subarray(offset, offset + lengthBytes);
  }

  writeBytes(offset: number, bytes: Uint8Array): void {
    // A quietView's bytes written back where they are (a READ's data read into place ahead of its DMA): no copy.
    if (bytes.buffer !== this.ram.buffer || bytes.byteOffset !== this.ram.byteOffset + offset) copyBytes(this.bytes(), offset, bytes);
    this.watch.onWrite?.(offset, bytes.length);
  }
}

/** The MSI address window: a 32-bit write of message data raises interrupt vector (data & 63). */
export class MsiRegion implements BusRegion {
  readonly name = "msi";

  constructor(private readonly raise: (vector: number) => void) {}

  read(): number {
    return 0xffff_ffff;
  }

  write(_offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (sizeBytes === 4) this.raise(Number(value) & 63);
  }
}

// (module (import "m" "m" (memory 0 65536 shared))
//   (func (export "fill") (param i32 i32) (memory.fill (local.get 0) (i32.const 0) (local.get 1))))
// A typed array's fill() over a shared memory runs ~30 times slower than over a plain one (~4 GB/s: 2 ms for
// 8 MiB); WebAssembly's memory.fill does not.
const ZERO_FILL_WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x06, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x00, // types: (i32, i32) -> ()
  0x02, 0x0b, 0x01, 0x01, 0x6d, 0x01, 0x6d, 0x02, 0x03, 0x00, 0x80, 0x80, 0x04, // import m.m: shared memory 0..65536
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x07, 0x08, 0x01, 0x04, 0x66, 0x69, 0x6c, 0x6c, 0x00, 0x00, // export "fill"
  0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x41, 0x00, 0x20, 0x01, 0xfc, 0x0b, 0x00, 0x0b, // code
]);
let zeroFillModule: WebAssembly.Module | undefined;
const zeroFills = new WeakMap<WebAssembly.Memory, (offset: number, lengthBytes: number) => void>();

/** Zeroes [offset, offset + lengthBytes) of a processor's (shared) memory, and tells its write watch. */
export function zeroMemory(memory: WebAssembly.Memory, offset: number, lengthBytes: number): void {
  let fill = zeroFills.get(memory);
  if (fill === undefined) {
    zeroFillModule ??= new WebAssembly.Module(ZERO_FILL_WASM);
    fill = new WebAssembly.Instance(zeroFillModule, { m: { m: memory } }).exports.fill as (offset: number, lengthBytes: number) => void;
    zeroFills.set(memory, fill);
  }
  fill(offset, lengthBytes);
  const watch = writeWatch(memory);
  if (watch.onZero !== undefined) watch.onZero(offset, lengthBytes);
  else watch.onWrite?.(offset, lengthBytes);
}
