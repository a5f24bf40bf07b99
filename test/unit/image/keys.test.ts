// Proves the key helpers: a key id is the first 8 bytes of SHA-256 over the raw 32-byte public key, PEM and raw
// forms load back to the same key, and files holding the wrong kind of key are refused with KeyError.
import { createHash, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  generateKeyPair,
  KeyError,
  keyIdOf,
  privateKeyFromPem,
  publicKeyFromPem,
  publicKeyFromRaw,
  rawPublicKey,
} from "../../../host/image/keys.ts";
import { boardKey } from "./fixtures.ts";

describe("keys", () => {
  it("derives the key id from the raw public key", () => {
    // Compute the id by hand from the SPKI's last 32 bytes (RFC 8410: the raw key ends the structure).
    const spki = boardKey.publicKey.export({ format: "der", type: "spki" });
    const raw = spki.subarray(spki.length - 32);
    expect(Buffer.from(rawPublicKey(boardKey.publicKey)).equals(raw)).toBe(true);
    const expected = createHash("sha256").update(raw).digest().subarray(0, 8);
    expect(Buffer.from(keyIdOf(boardKey.publicKey)).equals(expected)).toBe(true);
  });

  it("round-trips a generated pair through PEM and the raw form", () => {
    // The public key from the PEM, from the private key, and from its raw bytes all give one key id.
    const pair = generateKeyPair();
    const publicKey = publicKeyFromPem(pair.publicKeyPem);
    const privateKey = privateKeyFromPem(pair.privateKeyPem);
    expect(keyIdOf(publicKeyFromRaw(rawPublicKey(publicKey)))).toEqual(keyIdOf(publicKey));
    expect(privateKey.asymmetricKeyType).toBe("ed25519");
  });

  it("refuses other key types, a private key as public, and garbage", () => {
    // Each of these would let a board trust the wrong thing or sign with the wrong algorithm.
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(() => publicKeyFromPem(ec.publicKey.export({ format: "pem", type: "spki" }).toString())).toThrow(/images are signed with Ed25519/);
    expect(() => publicKeyFromPem(generateKeyPair().privateKeyPem)).toThrow(/holds a private key/);
    expect(() => privateKeyFromPem("not a key")).toThrow(KeyError);
    expect(() => publicKeyFromRaw(new Uint8Array(31))).toThrow(/32 bytes, not 31/);
  });
});
