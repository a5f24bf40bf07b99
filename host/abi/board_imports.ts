// The board ABI's `board` module: bus reads and writes of 8 to 64 bits, and nothing else (docs/board-abi.md).
// ABI 2: addresses and values cross as 32-bit halves, so V8 hands these functions numbers; an i64 (ABI 1) arrived
// as a BigInt made on the JS heap at every access.
import type { AccessSize } from "../bus/bus.ts";

/** The board ABI this board implements; the firmware's `abiVersion()` must answer it (assembly/config.ts, checked by test/unit/abi). */
export const ABI_VERSION = 2;

/**
 * What the imports call. Addresses and 64-bit values come as the firmware's 32-bit halves, as V8 passes i32s
 * (signed; only their 32 bits count): small integers, where a whole address past 2^31 would be a heap number.
 */
export interface BusPort {
  busRead(addressLow: number, addressHigh: number, sizeBytes: AccessSize): number | bigint;
  busWrite(addressLow: number, addressHigh: number, sizeBytes: 1 | 2 | 4, value: number): void;
  busWrite64(addressLow: number, addressHigh: number, valueLow: number, valueHigh: number): void;
}

const TWO_POW_32 = 2 ** 32;

export function boardImports(port: BusPort): WebAssembly.ModuleImports {
  let read64High = 0; // the high half of the last bus_read64's value, for bus_read64_high
  return {
    bus_read8: (low: number, high: number) => Number(port.busRead(low, high, 1)),
    bus_read16: (low: number, high: number) => Number(port.busRead(low, high, 2)),
    bus_read32: (low: number, high: number) => Number(port.busRead(low, high, 4)) | 0,
    // 64-bit values are BigInts inside the host still (NVRAM records and an NVMe controller's CAP: none per I/O).
    bus_read64: (low: number, high: number) => {
      const value = port.busRead(low, high, 8);
      if (typeof value === "number") {
        read64High = Math.floor(value / TWO_POW_32) | 0;
        return value % TWO_POW_32 | 0;
      }
      read64High = Number(BigInt.asIntN(32, value >> 32n));
      return Number(BigInt.asIntN(32, value));
    },
    bus_read64_high: () => read64High,
    bus_write8: (low: number, high: number, value: number) => port.busWrite(low, high, 1, value & 0xff),
    bus_write16: (low: number, high: number, value: number) => port.busWrite(low, high, 2, value & 0xffff),
    bus_write32: (low: number, high: number, value: number) => port.busWrite(low, high, 4, value >>> 0),
    bus_write64: (low: number, high: number, valueLow: number, valueHigh: number) => port.busWrite64(low, high, valueLow, valueHigh),
  };
}

/**
 * Every function import of the ABI with its signature: parameter and result types in the letters the C boards'
 * tables use (i: i32, I: i64). The ABI test checks the built images, docs/board-abi.md, the native board's and
 * the trace boards' tables against this one list.
 */
export const ABI_FUNCTION_SIGNATURES: Record<string, Record<string, { params: string; results: string }>> = {
  wasi_snapshot_preview1: {
    fd_write: { params: "iiii", results: "i" },
    clock_time_get: { params: "iIi", results: "i" },
    random_get: { params: "ii", results: "i" },
    proc_exit: { params: "i", results: "" },
  },
  board: {
    bus_read8: { params: "ii", results: "i" },
    bus_read16: { params: "ii", results: "i" },
    bus_read32: { params: "ii", results: "i" },
    bus_read64: { params: "ii", results: "i" },
    bus_read64_high: { params: "", results: "i" },
    bus_write8: { params: "iii", results: "" },
    bus_write16: { params: "iii", results: "" },
    bus_write32: { params: "iii", results: "" },
    bus_write64: { params: "iiii", results: "" },
  },
};

/** The import modules and names a board provides; the ABI test compares the image against this list. */
export const ABI_IMPORTS: Record<string, string[]> = {
  env: ["memory"],
  ...Object.fromEntries(Object.entries(ABI_FUNCTION_SIGNATURES).map(([module, functions]) => [module, Object.keys(functions)])),
};

export const ABI_EXPORTS = ["abiVersion", "boot", "irq", "run", "heapTop"];
