// WASI preview1, the four calls the board ABI takes from it, tied to the board clock and seed (node:wasi cannot
// give virtual time). Anything else a module imports from WASI fails instantiation: the image must not need it.
import { writeWatch } from "../bus/ram.ts";

export const WASI_ERRNO_SUCCESS = 0;
export const WASI_ERRNO_BADF = 8;
export const WASI_ERRNO_INVAL = 28;
export const WASI_ERRNO_FAULT = 21;

/** Thrown by proc_exit to unwind the firmware; the processor then reads the panic record. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
    this.name = "ProcExit";
  }
}

export interface WasiHost {
  /** The processor's RAM. */
  readonly memory: WebAssembly.Memory;
  /** The board clock as the firmware sees it now (an integer below 2^53); the host charges the read's cost. */
  clockReadNs(): number;
  randomFill(bytes: Uint8Array): void;
  consoleWrite(fd: 1 | 2, bytes: Uint8Array): void;
}

export function wasiImports(host: WasiHost): WebAssembly.ModuleImports {
  // Made once: the processor's memory has its maximum size from the start and never grows (docs/board-abi.md), and
  // a shared memory's `buffer` getter makes a new object at every call (clock_time_get is on the data path).
  const dataView = new DataView(host.memory.buffer);
  const watch = writeWatch(host.memory);
  const view = () => dataView;
  const inRange = (ptr: number, lengthBytes: number) => ptr >= 0 && lengthBytes >= 0 && ptr + lengthBytes <= dataView.byteLength;
  return {
    fd_write(fd: number, iovs: number, iovsLength: number, writtenPtr: number): number {
      if (fd !== 1 && fd !== 2) return WASI_ERRNO_BADF;
      if (!inRange(iovs, iovsLength * 8) || !inRange(writtenPtr, 4)) return WASI_ERRNO_FAULT;
      const v = view();
      let written = 0;
      for (let i = 0; i < iovsLength; i++) {
        const buf = v.getUint32(iovs + i * 8, true);
        const lengthBytes = v.getUint32(iovs + i * 8 + 4, true);
        if (!inRange(buf, lengthBytes)) return WASI_ERRNO_FAULT;
        // slice() copies out of the shared buffer: the firmware may reuse its line buffer at once.
        host.consoleWrite(fd, new Uint8Array(dataView.buffer).slice(buf, buf + lengthBytes));
        written += lengthBytes;
      }
      v.setUint32(writtenPtr, written, true);
      watch.onWrite?.(writtenPtr, 4, true);
      return WASI_ERRNO_SUCCESS;
    },
    clock_time_get(clockId: number, _precision: bigint, timePtr: number): number {
      if (clockId !== 0 && clockId !== 1) return WASI_ERRNO_INVAL;
      if (!inRange(timePtr, 8)) return WASI_ERRNO_FAULT;
      // Two 32-bit halves, not setBigUint64: no BigInt made per read (the firmware reads the clock ~10 times a turn).
      const nowNs = host.clockReadNs();
      const v = view();
      v.setUint32(timePtr, nowNs >>> 0, true);
      v.setUint32(timePtr + 4, Math.floor(nowNs / 0x1_0000_0000), true);
      watch.onWrite?.(timePtr, 8, true);
      return WASI_ERRNO_SUCCESS;
    },
    random_get(buf: number, lengthBytes: number): number {
      if (!inRange(buf, lengthBytes)) return WASI_ERRNO_FAULT;
      const bytes = new Uint8Array(lengthBytes);
      host.randomFill(bytes);
      new Uint8Array(dataView.buffer).set(bytes, buf);
      watch.onWrite?.(buf, lengthBytes, true);
      return WASI_ERRNO_SUCCESS;
    },
    proc_exit(code: number): never {
      throw new ProcExit(code);
    },
  };
}
