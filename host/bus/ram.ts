// RAM on a bus: a processor's shared memory as devices address it (bus address 0 on its own bus), and the MSI
// region that turns a device's MSI-X write into the processor's irq(vector).
import type { AccessSize, BusRegion } from "./bus.ts";
import { readLe, writeLe } from "./pci_function.ts";

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

export class RamRegion implements BusRegion {
  readonly name: string;
  private readonly ram: Uint8Array;

  constructor(owner: string, memory: WebAssembly.Memory) {
    this.name = `${owner}.ram`;
    this.ram = memoryBytes(memory);
  }

  private bytes(): Uint8Array {
    return this.ram;
  }

  read(offset: number, sizeBytes: AccessSize): number | bigint {
    return readLe(this.bytes(), offset, sizeBytes);
  }

  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    writeLe(this.bytes(), offset, sizeBytes, value);
  }

  readBytes(offset: number, lengthBytes: number): Uint8Array {
    return this.bytes().slice(offset, offset + lengthBytes);
  }

  readInto(offset: number, into: Uint8Array): void {
    into.set(this.bytes().subarray(offset, offset + into.length));
  }

  writeBytes(offset: number, bytes: Uint8Array): void {
    this.bytes().set(bytes, offset);
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
