// Proves the image format: a signed image decodes to the fields it was built with and verifies; each refusal
// reason is produced by an image broken in exactly that way, with a message that names the reason; and no prefix
// or single-byte change of a good image is ever accepted or makes the decoder fail other than with ImageError.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  buildImage,
  decodeImage,
  formatVersion,
  IMAGE_HEADER_SIZE_BYTES,
  IMAGE_SIZE_MAX_BYTES,
  ImageError,
  parseVersion,
  signImage,
  TLV_ED25519,
  verifyImage,
  type ImageRefusal,
  type VerifyPolicy,
} from "../../../host/image/format.ts";
import { keyIdOf } from "../../../host/image/keys.ts";
import { boardKey, boardPolicy, fakeWasm, otherKey, testImage } from "./fixtures.ts";

function refusal(run: () => unknown): { reason: ImageRefusal; message: string } {
  try {
    run();
  } catch (error) {
    if (error instanceof ImageError) return { reason: error.reason, message: error.message };
    throw error;
  }
  throw new Error("the image was accepted");
}

function flipped(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const copy = bytes.slice();
  copy[index] = (copy[index] as number) ^ mask;
  return copy;
}

describe("round trip", () => {
  it("decodes the fields an image was built with and verifies its signature", () => {
    // Build and sign with every field set to a non-default value, then read each back.
    const payload = fakeWasm("round-trip", 4); // 25 bytes, so the 4-byte padding is exercised
    const image = signImage(
      buildImage({ payload, version: { major: 2, minor: 3, revision: 400, build: 7 }, abiVersion: 1, boardCompat: "wasm-iop", securityCounter: 9 }),
      boardKey.privateKey,
    );
    const decoded = verifyImage(image, { ...boardPolicy, securityCounterMin: 9 });
    expect(decoded.header.headerSizeBytes).toBe(IMAGE_HEADER_SIZE_BYTES);
    expect(decoded.header.payloadSizeBytes).toBe(payload.length);
    expect(Buffer.from(decoded.payload).equals(Buffer.from(payload))).toBe(true);
    expect(formatVersion(decoded.header.version)).toBe("2.3.400+7");
    expect(decoded.header.boardCompat).toBe("wasm-iop");
    expect(decoded.securityCounter).toBe(9);
    expect(Buffer.from(decoded.keyId as Uint8Array).equals(Buffer.from(keyIdOf(boardKey.publicKey)))).toBe(true);
    expect(decoded.totalSizeBytes).toBe(image.length);
    expect((IMAGE_HEADER_SIZE_BYTES + payload.length) % 4).not.toBe(0);
  });

  it("signs deterministically and re-signing with another key replaces the key id", () => {
    // Ed25519 is deterministic (RFC 8032), so two signatures of the same image are byte-identical.
    const unsigned = testImage({ key: null });
    expect(Buffer.from(signImage(unsigned, boardKey.privateKey)).equals(Buffer.from(signImage(unsigned, boardKey.privateKey)))).toBe(true);
    const resigned = signImage(signImage(unsigned, boardKey.privateKey), otherKey.privateKey);
    expect(verifyImage(resigned, { trustedKeys: [otherKey.trusted] }).keyId).toEqual(keyIdOf(otherKey.publicKey));
  });

  it("parses and formats versions", () => {
    expect(parseVersion("1.2.3")).toEqual({ major: 1, minor: 2, revision: 3, build: 0 });
    expect(formatVersion(parseVersion("0.1.0+42"))).toBe("0.1.0+42");
    expect(() => parseVersion("1.2")).toThrow(RangeError);
    expect(() => parseVersion("256.0.0")).toThrow(RangeError);
  });
});

describe("refusals", () => {
  const good = testImage();
  const cases: Array<{ reason: ImageRefusal; bytes: () => Uint8Array; policy?: Partial<VerifyPolicy>; words: RegExp }> = [
    { reason: "truncated", bytes: () => good.slice(0, good.length - 10), words: /ends at byte \d+ but only \d+ bytes/ },
    { reason: "truncated", bytes: () => good.slice(0, 20), words: /header alone is 64/ },
    { reason: "oversized", bytes: () => withU32(good, 8, IMAGE_SIZE_MAX_BYTES + 1), words: /payload is \d+ bytes; an image is at most/ },
    { reason: "oversized", bytes: () => good, policy: { slotSizeBytes: 128 }, words: /past the 128-byte slot/ },
    { reason: "empty", bytes: () => new Uint8Array(256).fill(0xff), words: /erased/ },
    { reason: "bad-magic", bytes: () => flipped(good, 0), words: /header magic is 0x474d4956; expected 0x474d4957/ },
    { reason: "bad-header", bytes: () => withU32(good, 12, 0x80), words: /unknown flags 0x80/ },
    { reason: "bad-tlv", bytes: () => flipped(good, good.length - 100 - 4), words: /magic|TLV/ },
    { reason: "trailing-bytes", bytes: () => new Uint8Array([...good, 0]), words: /1 bytes follow the TLV trailer/ },
    { reason: "bad-hash", bytes: () => flipped(good, IMAGE_HEADER_SIZE_BYTES + 9), words: /SHA-256 over header, payload and protected TLVs is [0-9a-f]{64}; the image says/ },
    { reason: "unsigned", bytes: () => testImage({ key: null }), words: /no key id and signature/ },
    { reason: "unknown-key", bytes: () => testImage({ key: otherKey.privateKey }), words: /signed with key [0-9a-f]{16}, which is not among the 1 trusted keys/ },
    { reason: "bad-signature", bytes: () => flipped(good, good.length - 1), words: /signature does not verify with key [0-9a-f]{16}/ },
    { reason: "abi-mismatch", bytes: () => testImage({ abiVersion: 2 }), words: /needs board ABI 2; this board provides ABI 1/ },
    { reason: "board-mismatch", bytes: () => testImage({ boardCompat: "other-board" }), words: /is for board "other-board"; this board is "wasm-iop"/ },
    { reason: "rollback", bytes: () => testImage({ securityCounter: 1 }), policy: { securityCounterMin: 2 }, words: /security counter 1 is below the board's 2/ },
  ];
  for (const testCase of cases) {
    it(`refuses ${testCase.reason} (${testCase.words.source.slice(0, 40)})`, () => {
      // The broken image is refused with exactly this reason, and the message starts with it and says why.
      const { reason, message } = refusal(() => verifyImage(testCase.bytes(), { ...boardPolicy, ...testCase.policy }));
      expect(reason).toBe(testCase.reason);
      expect(message.startsWith(`${testCase.reason}: `)).toBe(true);
      expect(message).toMatch(testCase.words);
    });
  }

  it("refuses a payload that is not WebAssembly when building, and bad-payload when verifying", () => {
    // Build refuses outright; a signed image with a forged payload header fails at verify after the signature.
    expect(refusal(() => buildImage({ ...buildBase(), payload: new Uint8Array([1, 2, 3, 4]) })).reason).toBe("bad-payload");
  });

  it("refuses an image that would exceed the maximum size when building", () => {
    // A payload just under 4 MiB plus header and TLVs passes the maximum: building it must fail with oversized.
    const payload = fakeWasm("big", IMAGE_SIZE_MAX_BYTES - 100);
    expect(refusal(() => buildImage({ ...buildBase(), payload })).reason).toBe("oversized");
  });

  it("refuses duplicate, wrong-length and unknown TLVs", () => {
    // Append a second SHA256 entry to the trailer (raising its total), then rewrite the signature's length and type.
    const decoded = decodeImage(good);
    const trailerAt = decoded.hashedSizeBytes;
    const duplicate = new Uint8Array([...good, 0x10, 0x00, 32, 0x00, ...new Uint8Array(32)]);
    const total = new DataView(good.buffer).getUint16(trailerAt + 2, true);
    expect(refusal(() => decodeImage(withU16(duplicate, trailerAt + 2, total + 36))).message).toMatch(/SHA256 appears twice/);
    const signatureEntryAt = good.length - 64 - 4;
    expect(new DataView(good.buffer).getUint16(signatureEntryAt, true)).toBe(TLV_ED25519);
    expect(refusal(() => decodeImage(withU16(good, signatureEntryAt + 2, 63))).reason).toBe("bad-tlv");
    expect(refusal(() => decodeImage(withU16(good, signatureEntryAt, 0x99))).message).toMatch(/type 0x99 is not allowed/);
  });
});

describe("robustness", () => {
  const good = testImage({ payload: fakeWasm("robust", 37) });

  it("refuses every proper prefix of a good image with an ImageError", () => {
    // Each truncation point is tried; only ImageError may come out (no RangeError from reading past the end).
    for (let length = 0; length < good.length; length += 1) {
      const { reason } = refusal(() => verifyImage(good.subarray(0, length), boardPolicy));
      expect(["truncated", "bad-tlv"]).toContain(reason);
    }
  });

  it("refuses every single-byte change of a good image", () => {
    // Every byte is covered by the hash or is the hash, signature or TLV framing, so any change must be refused.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, mask) => {
        refusal(() => verifyImage(flipped(good, index, mask), boardPolicy));
      }),
      { numRuns: 2000, seed: 1 },
    );
  });

  it("never fails with anything but ImageError on random bytes behind a valid magic", () => {
    // Random tails after the magic stress every bounds check in the decoder.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (tail) => {
        const bytes = new Uint8Array([0x57, 0x49, 0x4d, 0x47, ...tail]);
        refusal(() => verifyImage(bytes, boardPolicy));
      }),
      { numRuns: 2000, seed: 2 },
    );
  });
});

function buildBase() {
  return { payload: fakeWasm("x"), version: { major: 1, minor: 0, revision: 0, build: 0 }, abiVersion: 1, boardCompat: "wasm-iop", securityCounter: 0 };
}

function withU32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(offset, value, true);
  return copy;
}

function withU16(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint16(offset, value, true);
  return copy;
}
