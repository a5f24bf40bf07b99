// copyBytes and copyOf (host/bus/shared_copy.ts) copy exactly what TypedArray set and slice copy, between shared and
// unshared buffers at every alignment of either side, for lengths below, at and across the scratch buffers' chunk
// (256 KiB), and overlapping ranges of one shared buffer as set()'s memmove does; a source that does not fit throws
// as set() does.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { copyBytes, copyOf } from "../../../host/bus/shared_copy.ts";

function buffer(length: number, shared: boolean): Uint8Array {
  return new Uint8Array(shared ? new SharedArrayBuffer(length) : new ArrayBuffer(length));
}

describe("copyBytes", () => {
  it("copies as set() does, shared or not, at any alignment and length", () => {
    const lengths = fc.oneof(fc.integer({ min: 0, max: 600 }), fc.integer({ min: (256 << 10) - 20, max: (256 << 10) * 2 + 20 }));
    fc.assert(fc.property(lengths, fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 }), fc.boolean(), fc.boolean(), fc.integer(),
      (length, sourceAt, targetAt, sourceShared, targetShared, seed) => {
        const source = buffer(length + sourceAt + 8, sourceShared).subarray(sourceAt, sourceAt + length);
        for (let i = 0; i < length; i++) source[i] = (seed + i * 131 + (i >> 8)) & 0xff;
        const target = buffer(length + targetAt + 24, targetShared);
        target.fill(0xa5);
        const expected = new Uint8Array(target.length).fill(0xa5);
        expected.set(source, targetAt + 3);
        copyBytes(target.subarray(3), targetAt, source);
        expect(Buffer.from(target).equals(Buffer.from(expected))).toBe(true);
        const copy = copyOf(source);
        expect(copy.byteOffset).toBe(0);
        expect(copy.buffer instanceof SharedArrayBuffer).toBe(false);
        expect(Buffer.from(copy).equals(Buffer.from(source.slice()))).toBe(true);
      }), { numRuns: 200 });
  });

  it("copies as set() does (a memmove) when source and target overlap in one shared buffer, across the chunk", () => {
    const length = (256 << 10) * 2 + 100; // three chunks
    for (const [from, to] of [[0, 1], [1, 0], [3, 1000], [1000, 3], [5, 5 + (256 << 10) + 1]]) {
      const shared = buffer(length + 2 * (256 << 10) + 16, true);
      for (let i = 0; i < shared.length; i++) shared[i] = (i * 131 + (i >> 8)) & 0xff;
      const expected = Uint8Array.from(shared);
      expected.set(expected.subarray(from!, from! + length), to!);
      copyBytes(shared, to!, shared.subarray(from!, from! + length));
      expect(Buffer.from(shared).equals(Buffer.from(expected)), `from ${from} to ${to}`).toBe(true);
    }
  });

  it("throws as set() does for a source that does not fit", () => {
    const target = buffer(1000, true);
    expect(() => copyBytes(target, 900, new Uint8Array(300))).toThrow(RangeError);
    expect(() => copyBytes(target, 901, buffer(300, true).subarray(1))).toThrow(RangeError);
  });
});
