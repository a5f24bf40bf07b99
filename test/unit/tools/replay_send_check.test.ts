// The replay's send checker (tools/replay/send_check.ts): each send's CRC-32 and the SHA-256 of every byte sent,
// computed on a worker thread, equal node:zlib's and node:crypto's of the same sends: sends cut across slab edges,
// larger than a slab, headers that would not fit at a slab's end, more sends than the ring holds; sends gathered in
// the room space() gives (not copied) mixed with sends copied, and a room given but never submitted.
import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RING, SendCheckThread } from "../../../tools/replay/send_check.ts";

describe("SendCheckThread", () => {
  it("gives each send's CRC-32 and the SHA-256 of all of them, across slab edges", () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 60 }), (sends) => {
      const check = new SendCheckThread({ slabBytes: 64, slabCount: 3 });
      try {
        const ordinals = sends.map((bytes) => check.submit(bytes));
        expect(ordinals).toEqual(sends.map((_, i) => i));
        // Asked in order, and the last first (it waits for the worker to get there).
        if (sends.length > 0) expect(check.crc(sends.length - 1)).toBe(crc32(sends[sends.length - 1]!));
        sends.forEach((bytes, i) => expect(check.crc(i)).toBe(crc32(bytes)));
        expect(check.sha256()).toBe(createHash("sha256").update(Buffer.concat(sends)).digest("hex"));
      } finally {
        check.close();
      }
    }), { numRuns: 40 });
  });

  it("takes sends gathered in the room space() gives as they are, mixed with copied ones", () => {
    const send = fc.record({ bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }), how: fc.constantFrom("space", "copy", "abandoned") });
    fc.assert(fc.property(fc.array(send, { maxLength: 60 }), (steps) => {
      const check = new SendCheckThread({ slabBytes: 64, slabCount: 3 });
      try {
        const submitted: Uint8Array[] = [];
        for (const { bytes, how } of steps) {
          const room = check.space(bytes.length);
          expect(room.length).toBe(bytes.length);
          if (how === "abandoned") { // the NIC asked for room and its connection went: nothing is submitted
            room.fill(0xee);
            continue;
          }
          if (how === "space") {
            room.set(bytes);
            expect(check.submit(room)).toBe(submitted.length);
          } else {
            expect(check.submit(bytes)).toBe(submitted.length);
          }
          submitted.push(bytes);
        }
        submitted.forEach((bytes, i) => expect(check.crc(i)).toBe(crc32(bytes)));
        expect(check.sha256()).toBe(createHash("sha256").update(Buffer.concat(submitted)).digest("hex"));
      } finally {
        check.close();
      }
    }), { numRuns: 60 });
  });

  it("keeps the board's thread at most a ring of sends ahead, and hashes megabytes as node:crypto does", () => {
    const check = new SendCheckThread();
    const reference = createHash("sha256");
    const big = randomBytes(3 << 20); // larger than a slab
    const small = new Uint8Array([1, 2, 3]);
    let last = 0;
    for (let i = 0; i < RING + 1000; i++) last = check.submit(small); // more sends than the ring holds
    for (let i = 0; i < RING + 1000; i++) reference.update(small);
    expect(check.crc(last)).toBe(crc32(small));
    expect(() => check.crc(0)).toThrow(/not in the ring/);
    const ordinal = check.submit(big);
    reference.update(big);
    expect(check.crc(ordinal)).toBe(crc32(big));
    expect(check.sha256()).toBe(reference.digest("hex"));
    check.close();
  });
});
