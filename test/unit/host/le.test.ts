// Proves readLe/writeLe, which assemble register-sized values from bytes instead of through a DataView, agree with
// a DataView for every size, offset and value (fast-check), including values wider than the access and out-of-range
// offsets (reads all ones, writes dropped).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AccessSize } from "../../../host/bus/bus.ts";
import { readLe, writeLe } from "../../../host/bus/pci_function.ts";

const sizes: AccessSize[] = [1, 2, 4, 8];

describe("readLe / writeLe", () => {
  it("write then read matches a DataView's little-endian store and load of the low bits", () => {
    fc.assert(fc.property(fc.constantFrom(...sizes), fc.integer({ min: 0, max: 24 }), fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }), fc.boolean(),
      (sizeBytes, offset, wide, asNumber) => {
        const bytes = new Uint8Array(32).fill(0xee);
        const reference = new Uint8Array(32).fill(0xee);
        const value = asNumber && sizeBytes !== 8 ? Number(BigInt.asIntN(53, wide)) : wide;
        writeLe(bytes, offset, sizeBytes, value);
        const low = BigInt.asUintN(sizeBytes * 8, BigInt(value));
        const view = new DataView(reference.buffer);
        if (sizeBytes === 1) view.setUint8(offset, Number(low));
        if (sizeBytes === 2) view.setUint16(offset, Number(low), true);
        if (sizeBytes === 4) view.setUint32(offset, Number(low), true);
        if (sizeBytes === 8) view.setBigUint64(offset, low, true);
        expect(bytes).toEqual(reference);
        expect(readLe(bytes, offset, sizeBytes)).toEqual(sizeBytes === 8 ? low : Number(low));
      }));
  });

  it("reads past the end as all ones and drops writes past the end", () => {
    const bytes = new Uint8Array(6);
    expect(readLe(bytes, 4, 4)).toBe(0xffff_ffff);
    expect(readLe(bytes, 0, 8)).toBe(0xffff_ffff_ffff_ffffn);
    writeLe(bytes, 4, 4, 0x1234_5678);
    expect(bytes).toEqual(new Uint8Array(6));
  });
});
