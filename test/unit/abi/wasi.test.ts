// The WASI calls the board implements: clock_time_get writes the board clock as a little-endian u64, whole, for
// times past 2^32 ns (4.3 s) as well; a bad clock id or pointer is refused without writing.
import { describe, expect, it } from "vitest";
import { WASI_ERRNO_FAULT, WASI_ERRNO_INVAL, WASI_ERRNO_SUCCESS, wasiImports } from "../../../host/abi/wasi.ts";

function clockAt(nowNs: number) {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const wasi = wasiImports({ memory, clockReadNs: () => nowNs, randomFill: () => {}, consoleWrite: () => {} });
  const clockTimeGet = wasi.clock_time_get as (id: number, precision: bigint, ptr: number) => number;
  return { memory, clockTimeGet };
}

describe("clock_time_get", () => {
  it.each([0, 7, 0xffff_ffff, 0x1_0000_0000, 5_000_000_123, Number.MAX_SAFE_INTEGER])("writes %i ns as a u64", (nowNs) => {
    const { memory, clockTimeGet } = clockAt(nowNs);
    expect(clockTimeGet(1, 0n, 64)).toBe(WASI_ERRNO_SUCCESS);
    expect(new DataView(memory.buffer).getBigUint64(64, true)).toBe(BigInt(nowNs));
  });

  it("refuses an unknown clock and a pointer past memory, writing nothing", () => {
    const { memory, clockTimeGet } = clockAt(5_000_000_123);
    expect(clockTimeGet(2, 0n, 64)).toBe(WASI_ERRNO_INVAL);
    expect(clockTimeGet(1, 0n, 65536 - 4)).toBe(WASI_ERRNO_FAULT);
    expect(new Uint8Array(memory.buffer).every((b) => b === 0)).toBe(true);
  });
});
