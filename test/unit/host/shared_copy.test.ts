// copyBytes and copyOf (host/bus/shared_copy.ts) copy exactly what TypedArray set and slice copy, between shared and
// unshared buffers at every alignment of either side, for lengths below, at and across the scratch buffers' chunk
// (256 KiB); a source that does not fit throws as set() does.
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

  it("throws as set() does for a source that does not fit", () => {
    const target = buffer(1000, true);
    expect(() => copyBytes(target, 900, new Uint8Array(300))).toThrow(RangeError);
    expect(() => copyBytes(target, 901, buffer(300, true).subarray(1))).toThrow(RangeError);
  });
});
