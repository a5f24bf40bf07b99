// The board ABI's `board` module: bus reads and writes of 8 to 64 bits, and nothing else (docs/board-abi.md).
import type { AccessSize } from "../bus/bus.ts";

export interface BusPort {
  busRead(address: bigint, sizeBytes: AccessSize): number | bigint;
  busWrite(address: bigint, sizeBytes: AccessSize, value: number | bigint): void;
}

export function boardImports(port: BusPort): WebAssembly.ModuleImports {
  // i64 arrives signed; the usual non-negative one is passed as is (BigInt.asUintN makes a new BigInt every call).
  const u = (address: bigint) => (address >= 0n ? address : BigInt.asUintN(64, address));
  return {
    bus_read8: (address: bigint) => Number(port.busRead(u(address), 1)),
    bus_read16: (address: bigint) => Number(port.busRead(u(address), 2)),
    bus_read32: (address: bigint) => Number(port.busRead(u(address), 4)) | 0,
    bus_read64: (address: bigint) => BigInt.asIntN(64, BigInt(port.busRead(u(address), 8))),
    bus_write8: (address: bigint, value: number) => port.busWrite(u(address), 1, value & 0xff),
    bus_write16: (address: bigint, value: number) => port.busWrite(u(address), 2, value & 0xffff),
    bus_write32: (address: bigint, value: number) => port.busWrite(u(address), 4, value >>> 0),
    bus_write64: (address: bigint, value: bigint) => port.busWrite(u(address), 8, value >= 0n ? value : BigInt.asUintN(64, value)),
  };
}

/** The import modules and names a board provides; the ABI test compares the image against this list. */
export const ABI_IMPORTS: Record<string, string[]> = {
  env: ["memory"],
  wasi_snapshot_preview1: ["fd_write", "clock_time_get", "random_get", "proc_exit"],
  board: ["bus_read8", "bus_read16", "bus_read32", "bus_read64", "bus_write8", "bus_write16", "bus_write32", "bus_write64"],
};

export const ABI_EXPORTS = ["abiVersion", "boot", "irq", "run", "heapTop"];
