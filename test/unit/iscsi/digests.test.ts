// The iSCSI digests and the CHAP hash: CRC32C against RFC 3720 Appendix B.4's vectors (which RFC 7143 keeps) and a
// bitwise reference over random data at every alignment; MD5 against RFC 1321's test suite and node:crypto over random
// data split at random points. Bytes go into the test build's scratch RAM; the probes hash them in place.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { iscsiScratch, testBoard } from "../../support/board.ts";


/** Bit-at-a-time CRC32C: the definition, not a table. */
function crc32cReference(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe("CRC32C (RFC 7143, Digests)", () => {
  const t = testBoard();
  const s = iscsiScratch(t);
  const crc = (bytes: Uint8Array, offset = 0) => t.call("testIscsiCrc32c", s.write(offset, bytes), bytes.length) as number;

  it("gives RFC 3720 Appendix B.4's values", () => {
    const incrementing = Uint8Array.from({ length: 32 }, (_, i) => i);
    const decrementing = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
    // An iSCSI SCSI Read (10) command PDU, the appendix's last vector.
    const read10 = Uint8Array.from([
      0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x14, 0, 0, 0, 0x18,
      0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(crc(new Uint8Array(32)).toString(16)).toBe("8a9136aa"); // wire bytes aa 36 91 8a
    expect(crc(new Uint8Array(32).fill(0xff)).toString(16)).toBe("62a8ab43");
    expect(crc(incrementing).toString(16)).toBe("46dd794e");
    expect(crc(decrementing).toString(16)).toBe("113fdb5c");
    expect(crc(read10).toString(16)).toBe("d9963a56");
    expect(crc(new Uint8Array(0))).toBe(0);
    expect(t.stops).toEqual([]);
  });

  it("matches the bitwise definition for any data at any alignment", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat({ max: 7 }), (bytes, offset) => {
        expect(crc(bytes, offset)).toBe(crc32cReference(bytes));
      }),
      { numRuns: 200, seed: 7143 },
    );
    expect(t.stops).toEqual([]);
  });
});

describe("MD5 (RFC 1321)", () => {
  const t = testBoard();
  const s = iscsiScratch(t);
  const md5 = (text: Uint8Array, splitAt = 0) => {
    const at = s.write(0, text);
    t.call("testIscsiMd5", at, text.length, s.base + 65536, splitAt);
    return Buffer.from(s.read(65536, 16)).toString("hex");
  };

  it("gives the RFC 1321 test suite's digests", () => {
    const suite: [string, string][] = [
      ["", "d41d8cd98f00b204e9800998ecf8427e"],
      ["a", "0cc175b9c0f1b6a831c399e269772661"],
      ["abc", "900150983cd24fb0d6963f7d28e17f72"],
      ["message digest", "f96b697d7cb7938d525a2f31aaf161d0"],
      ["abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"],
      ["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"],
      ["12345678901234567890123456789012345678901234567890123456789012345678901234567890", "57edf4a22be3c955ac49da2e2107b67a"],
    ];
    for (const [text, digest] of suite) expect(md5(new TextEncoder().encode(text)), text).toBe(digest);
    expect(t.stops).toEqual([]);
  });

  it("matches node:crypto for any data, however the updates split it (padding at 55, 56, 63, 64 bytes included)", () => {
    for (const n of [55, 56, 57, 63, 64, 65, 119, 120, 128]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
      expect(md5(bytes, n >> 1)).toBe(createHash("md5").update(bytes).digest("hex"));
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), fc.nat({ max: 1300 }), (bytes, split) => {
        expect(md5(bytes, split)).toBe(createHash("md5").update(bytes).digest("hex"));
      }),
      { numRuns: 150, seed: 1321 },
    );
    expect(t.stops).toEqual([]);
  });
});
