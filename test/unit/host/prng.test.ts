// Proves the seeded generator replays: the same seed gives the same numbers (pinned against values computed once
// from the reference C code of splitmix64 and xoshiro128**), different seeds and forks give different streams,
// a fork depends only on the seed and label, and intBelow stays in range and covers it.
import { describe, expect, it } from "vitest";
import { Prng } from "../../../host/sim/prng.ts";

function drawU32(prng: Prng, count: number): number[] {
  return Array.from({ length: count }, () => prng.nextU32());
}

describe("Prng", () => {
  it("yields the pinned first values for seed 1 (same as the C reference)", () => {
    expect(drawU32(new Prng(1), 8)).toEqual([
      0x650941ba, 0x54d30301, 0x25d2f321, 0x3fabdca9, 0x2ab8e0a6, 0xf9890067, 0xe12b0ad9, 0xa193d86a,
    ]);
  });

  it("replays the same sequence from the same seed, whatever its spelling", () => {
    const expected = drawU32(new Prng(42), 100);
    expect(drawU32(new Prng(42), 100)).toEqual(expected);
    expect(drawU32(new Prng(42n), 100)).toEqual(expected);
    expect(drawU32(new Prng("42"), 100)).toEqual(expected);
    expect(drawU32(new Prng("run-a"), 10)).toEqual(drawU32(new Prng("run-a"), 10));
  });

  it("gives different sequences for different seeds", () => {
    const seeds: Array<number | bigint | string> = [0, 1, 2, 2n ** 63n, "a", "b", "042"];
    const heads = seeds.map((seed) => drawU32(new Prng(seed), 4).join(","));
    expect(new Set(heads).size).toBe(seeds.length);
  });

  it("rejects a seed that is not an integer", () => {
    expect(() => new Prng(1.5)).toThrow(RangeError);
    expect(() => new Prng(Number.NaN)).toThrow(RangeError);
  });

  it("forks from the seed and label, not from the parent's state", () => {
    const fresh = new Prng(7);
    const used = new Prng(7);
    drawU32(used, 1000);
    const forkExpected = drawU32(fresh.fork("nic"), 20);
    expect(drawU32(used.fork("nic"), 20)).toEqual(forkExpected);
    // Drawing from the fork does not move the parent either.
    const parent = new Prng(7);
    drawU32(parent.fork("nic"), 50);
    expect(drawU32(parent, 20)).toEqual(drawU32(new Prng(7), 20));
  });

  it("gives distinct streams for distinct labels, for the parent, and for forks of forks", () => {
    const root = new Prng(7);
    const streams = [
      drawU32(new Prng(7), 4),
      drawU32(root.fork("nic"), 4),
      drawU32(root.fork("disk"), 4),
      drawU32(new Prng(8).fork("nic"), 4),
      drawU32(root.fork("nic").fork("nic"), 4),
      drawU32(new Prng("nic"), 4),
    ].map((draws) => draws.join(","));
    expect(new Set(streams).size).toBe(streams.length);
  });

  it("keeps intBelow within [0, n) and reaches every value of a small range", () => {
    const prng = new Prng(3);
    for (const n of [1, 2, 3, 7, 1000, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32]) {
      for (let i = 0; i < 200; i += 1) {
        const value = prng.intBelow(n);
        expect(Number.isInteger(value)).toBe(true);
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThan(n);
      }
    }
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i += 1) seen.add(prng.intBelow(6));
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("rejects intBelow bounds outside [1, 2^32]", () => {
    const prng = new Prng(3);
    for (const n of [0, -1, 2.5, 2 ** 32 + 1, Number.NaN]) expect(() => prng.intBelow(n)).toThrow(RangeError);
  });

  it("keeps nextFloat within [0, 1)", () => {
    const prng = new Prng(5);
    let sum = 0;
    for (let i = 0; i < 10_000; i += 1) {
      const value = prng.nextFloat();
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThan(1);
      sum += value;
    }
    // A mean far from 1/2 would mean the bits are not spread over the range (tolerance is many standard errors).
    expect(Math.abs(sum / 10_000 - 0.5)).toBeLessThan(0.02);
  });

  it("fills bytes from the same words nextU32 yields, least significant byte first", () => {
    const bytes = new Uint8Array(7);
    new Prng(1).fill(bytes);
    expect(Array.from(bytes)).toEqual([0xba, 0x41, 0x09, 0x65, 0x01, 0x03, 0xd3]);
  });
});
