// PCI configuration space as an ECAM window: offset = bus << 20 | device << 15 | function << 12 | register.
// Functions plug in by (bus, device, function); an empty slot reads all ones, so enumeration sees vendor 0xFFFF.
import type { AccessSize, BusRegion } from "./bus.ts";

/** What a PCI function answers in its 4 KiB of config space. */
export interface PciFunction {
  readonly name: string;
  configRead(register: number, sizeBytes: AccessSize): number;
  configWrite(register: number, sizeBytes: AccessSize, value: number): void;
}

export class EcamRegion implements BusRegion {
  readonly name = "pci-ecam";
  private readonly functions = new Map<number, PciFunction>();

  constructor(readonly busCount: number) {}

  plug(bus: number, device: number, fn: number, pciFunction: PciFunction): void {
    if (bus >= this.busCount || device > 31 || fn > 7) throw new RangeError(`no PCI slot ${bus}:${device}.${fn}`);
    const key = (bus << 8) | (device << 3) | fn;
    if (this.functions.has(key)) throw new Error(`PCI slot ${bus}:${device}.${fn} is taken`);
    this.functions.set(key, pciFunction);
  }

  read(offset: number, sizeBytes: AccessSize): number | bigint {
    if (sizeBytes === 8) return 0xffff_ffff_ffff_ffffn; // config space is accessed in up to 32 bits
    const target = this.functions.get(offset >>> 12);
    if (target === undefined) return sizeBytes === 4 ? 0xffff_ffff : (1 << (sizeBytes * 8)) - 1;
    return target.configRead(offset & 0xfff, sizeBytes);
  }

  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (sizeBytes === 8) return;
    this.functions.get(offset >>> 12)?.configWrite(offset & 0xfff, sizeBytes, Number(value));
  }
}
