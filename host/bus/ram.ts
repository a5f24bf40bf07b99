// RAM on a bus: a processor's shared memory as devices address it (bus address 0 on its own bus), and the MSI
// region that turns a device's MSI-X write into the processor's irq(vector).
import type { AccessSize, BusRegion } from "./bus.ts";
import { readLe, writeLe } from "./pci_function.ts";

export class RamRegion implements BusRegion {
  readonly name: string;

  constructor(owner: string, private readonly memory: WebAssembly.Memory) {
    this.name = `${owner}.ram`;
  }

  private bytes(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
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
