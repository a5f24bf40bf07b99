// The SHA-256 hashed on a worker thread (host/sim/hash_thread.ts) equals node:crypto's of the same bytes: strings (as
// UTF-8, characters of 1 to 4 bytes cut at slab edges) and byte arrays mixed, larger than a slab and than the whole
// ring, a digest in the middle that the hashing continues after, and the final digest kept after close().
import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Sha256Thread } from "../../../host/sim/hash_thread.ts";

describe("Sha256Thread", () => {
  it("gives node:crypto's digest of the same strings and bytes, across slab edges, mid-way and after close", () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.string({ unit: "binary", maxLength: 300 }), fc.uint8Array({ maxLength: 700 })), { maxLength: 40 }), (pieces) => {
      const thread = new Sha256Thread({ slabBytes: 64, slabCount: 3 });
      const reference = createHash("sha256");
      try {
        pieces.forEach((piece, i) => {
          thread.update(piece);
          reference.update(piece);
          if (i === pieces.length >> 1) expect(thread.digest()).toBe(reference.copy().digest("hex"));
        });
        expect(thread.digest()).toBe(reference.copy().digest("hex"));
      } finally {
        expect(thread.close()).toBe(reference.digest("hex"));
      }
      expect(thread.digest()).toBe(createHash("sha256").update(Buffer.concat(pieces.map((p) => (typeof p === "string" ? Buffer.from(p) : p)))).digest("hex"));
      expect(() => thread.update("more")).toThrow(/update after close/);
    }), { numRuns: 60 });
  });

  it("hashes 40 MiB given in 1 MiB sends as node:crypto does (the ring of 8 slabs refilled many times)", () => {
    const thread = new Sha256Thread();
    const reference = createHash("sha256");
    const chunk = randomBytes(1 << 20);
    for (let i = 0; i < 40; i++) {
      chunk[0] = i;
      thread.update(chunk);
      reference.update(chunk);
    }
    expect(thread.close()).toBe(reference.digest("hex"));
  });
});
