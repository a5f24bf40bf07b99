// Proves RamRegion.readInto (host/bus/ram.ts): a DMA read copies exactly [offset, offset + length) of the
// processor's memory into the caller's buffer, whether it is small (copied byte by byte, no view made) or large,
// leaves the rest of the buffer alone, and tells the write watch's onRead of every read (the replayable trace
// records a digest of what devices read in bulk).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { memoryBytes, RamRegion, writeWatch } from "../../../host/bus/ram.ts";

describe("RamRegion.readInto", () => {
  it("copies exactly the range asked, small or large, and reports each read", () => {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
    const ram = memoryBytes(memory);
    for (let i = 0; i < ram.length; i++) ram[i] = (i * 131 + (i >> 9)) & 0xff;
    const reads: [number, number][] = [];
    writeWatch(memory).onRead = (offset, lengthBytes) => reads.push([offset, lengthBytes]);
    const region = new RamRegion("p", memory);
    fc.assert(fc.property(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: ram.length - 4096 }), (lengthBytes, offset) => {
      reads.length = 0;
      const into = new Uint8Array(lengthBytes + 8).fill(0xee);
      region.readInto(offset, into.subarray(4, 4 + lengthBytes));
      expect(Array.from(into.subarray(4, 4 + lengthBytes))).toEqual(Array.from(ram.subarray(offset, offset + lengthBytes)));
      expect(Array.from(into.subarray(0, 4))).toEqual([0xee, 0xee, 0xee, 0xee]);
      expect(Array.from(into.subarray(4 + lengthBytes))).toEqual([0xee, 0xee, 0xee, 0xee]);
      expect(reads).toEqual([[offset, lengthBytes]]);
    }), { numRuns: 300 });
    writeWatch(memory).onRead = undefined;
  });
});
