// A bare processor bus for device-model tests: RAM, ECAM, the MSI region and a clock, with the test acting as the
// driver (config cycles, BAR programming, register accesses) the way the firmware would.
import type { AccessSize } from "../../host/bus/bus.ts";
import { Bus } from "../../host/bus/bus.ts";
import { EcamRegion } from "../../host/bus/ecam.ts";
import type { PciFunctionBase } from "../../host/bus/pci_function.ts";
import { MsiRegion, RamRegion } from "../../host/bus/ram.ts";
import { VirtualClock } from "../../host/sim/clock.ts";
import { Trace } from "../../host/sim/trace.ts";

export const ECAM_BASE = 0xe000_0000n;
export const PCI_MEM_BASE = 0xc000_0000n;
export const MSI_ADDRESS = 0xfee0_0000n;

export class BusHarness {
  readonly clock = new VirtualClock();
  readonly memory: WebAssembly.Memory;
  readonly ram: Uint8Array;
  readonly bus: Bus;
  readonly ecam = new EcamRegion(1);
  readonly irqs: number[] = []; // vectors raised, in order
  readonly log: string[] = [];
  private nextBarAddress = PCI_MEM_BASE;

  // `trace`: a Trace({ enabled: false }) for a bus nobody traces (as a board serving real clients): quiet views then exist.
  constructor(ramMiB = 4, name = "cpu", readonly trace = new Trace()) {
    this.memory = new WebAssembly.Memory({ initial: ramMiB * 16, maximum: ramMiB * 16, shared: true });
    this.ram = new Uint8Array(this.memory.buffer);
    this.bus = new Bus(name, this.trace, () => this.clock.nowNs, (m) => this.log.push(m));
    this.bus.map(0n, BigInt(ramMiB) << 20n, new RamRegion(name, this.memory));
    this.bus.map(ECAM_BASE, 1n << 20n, this.ecam);
    this.bus.map(MSI_ADDRESS, 4096n, new MsiRegion((vector) => this.irqs.push(vector)));
  }

  plug(slot: number, fn: PciFunctionBase): void {
    this.ecam.plug(0, slot, 0, fn);
    fn.attach(this.bus);
  }

  cfgRead(slot: number, register: number, sizeBytes: AccessSize = 4): number {
    return Number(this.bus.read(ECAM_BASE + BigInt((slot << 15) | register), sizeBytes));
  }

  cfgWrite(slot: number, register: number, value: number, sizeBytes: AccessSize = 4): void {
    this.bus.write(ECAM_BASE + BigInt((slot << 15) | register), sizeBytes, value);
  }

  /** Sizes and places every BAR the function has, turns on memory space and bus master; returns BAR addresses by index. */
  enable(slot: number): Map<number, bigint> {
    const addresses = new Map<number, bigint>();
    for (let index = 0; index < 6; index++) {
      const register = 0x10 + index * 4;
      const original = this.cfgRead(slot, register);
      this.cfgWrite(slot, register, 0xffff_ffff);
      const sized = this.cfgRead(slot, register);
      const is64 = (original & 0b110) === 0b100;
      if (is64) this.cfgWrite(slot, register + 4, 0xffff_ffff);
      const high = is64 ? this.cfgRead(slot, register + 4) : 0xffff_ffff;
      const mask = (BigInt(high) << 32n) | BigInt(sized & ~0xf);
      if ((sized & ~0xf) === 0) {
        if (is64) index += 1;
        continue;
      }
      const size = BigInt.asUintN(64, ~mask + 1n) & (is64 ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn);
      const address = ((this.nextBarAddress + size - 1n) / size) * size;
      this.nextBarAddress = address + size;
      this.cfgWrite(slot, register, Number(address & 0xffff_ffffn));
      if (is64) this.cfgWrite(slot, register + 4, Number(address >> 32n));
      addresses.set(index, address);
      if (is64) index += 1;
    }
    this.cfgWrite(slot, 0x04, 0b110, 2);
    return addresses;
  }

  /** Enables MSI-X on the function and points vector v at the MSI region with data `base + v`. */
  enableMsix(slot: number, tableAddress: bigint, vectorCount: number, base = 0): void {
    for (let v = 0; v < vectorCount; v++) {
      const entry = tableAddress + BigInt(v * 16);
      this.bus.write(entry, 4, Number(MSI_ADDRESS & 0xffff_ffffn));
      this.bus.write(entry + 4n, 4, 0);
      this.bus.write(entry + 8n, 4, base + v);
      this.bus.write(entry + 12n, 4, 0);
    }
    let cap = this.cfgRead(slot, 0x34, 1);
    while (cap !== 0 && this.cfgRead(slot, cap, 1) !== 0x11) cap = this.cfgRead(slot, cap + 1, 1);
    if (cap === 0) throw new Error("no MSI-X capability");
    this.cfgWrite(slot, cap + 2, 0x8000 | this.cfgRead(slot, cap + 2, 2), 2);
  }
}
