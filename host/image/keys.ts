// Ed25519 signing keys for firmware images: generation, PEM loading, and the 8-byte key id that names a key in an
// image and in a board's list of trusted keys.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";

/** Length of a raw Ed25519 public key (RFC 8032, section 5.1.5). */
export const PUBLIC_KEY_RAW_SIZE_BYTES = 32;
/** Length of a key id: the first bytes of SHA-256 over the raw public key. */
export const KEY_ID_SIZE_BYTES = 8;

/** A key file that cannot be read, is not PEM, or holds a key other than Ed25519. */
export class KeyError extends Error {
  override name = "KeyError";
}

/** A public key the boot ROM (or `image verify`) accepts signatures from, with its precomputed id. */
export interface TrustedKey {
  keyId: Uint8Array;
  publicKey: KeyObject;
}

export interface KeyPairPem {
  privateKeyPem: string; // PKCS#8
  publicKeyPem: string; // SubjectPublicKeyInfo
}

/** Makes a new Ed25519 key pair from the operating system's random source. */
export function generateKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
  };
}

function requireEd25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== "ed25519") {
    throw new KeyError(`${what} is a ${key.asymmetricKeyType ?? "symmetric"} key; images are signed with Ed25519`);
  }
  return key;
}

export function privateKeyFromPem(pem: string, what = "private key"): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: "pem" });
  } catch (error) {
    throw new KeyError(`${what} is not a PEM private key (${(error as Error).message})`);
  }
  return requireEd25519(key, what);
}

/** Accepts a public key PEM; a private key PEM is refused so a secret never ends up in a list of trusted keys. */
export function publicKeyFromPem(pem: string, what = "public key"): KeyObject {
  if (pem.includes("PRIVATE KEY")) throw new KeyError(`${what} holds a private key; give the .pub file`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: "pem" });
  } catch (error) {
    throw new KeyError(`${what} is not a PEM public key (${(error as Error).message})`);
  }
  return requireEd25519(key, what);
}

/** Builds a public key from its 32 raw bytes, the form a board file may list. */
export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== PUBLIC_KEY_RAW_SIZE_BYTES) {
    throw new KeyError(`a raw Ed25519 public key is ${PUBLIC_KEY_RAW_SIZE_BYTES} bytes, not ${raw.length}`);
  }
  const x = Buffer.from(raw).toString("base64url");
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
}

/** The 32 raw bytes of an Ed25519 public key (the JWK `x` member holds exactly them). */
export function rawPublicKey(publicKey: KeyObject): Uint8Array {
  requireEd25519(publicKey, "public key");
  const jwk = publicKey.export({ format: "jwk" });
  if (typeof jwk.x !== "string") throw new KeyError("public key has no raw form");
  const raw = new Uint8Array(Buffer.from(jwk.x, "base64url"));
  if (raw.length !== PUBLIC_KEY_RAW_SIZE_BYTES) throw new KeyError(`raw public key is ${raw.length} bytes`);
  return raw;
}

/** Key id: the first 8 bytes of SHA-256 over the raw 32-byte public key. */
export function keyIdOf(publicKey: KeyObject): Uint8Array {
  const digest = createHash("sha256").update(rawPublicKey(publicKey)).digest();
  return new Uint8Array(digest.subarray(0, KEY_ID_SIZE_BYTES));
}

export function trustedKey(publicKey: KeyObject): TrustedKey {
  return { keyId: keyIdOf(publicKey), publicKey };
}

export function keyIdHex(keyId: Uint8Array): string {
  return Buffer.from(keyId).toString("hex");
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new KeyError(`cannot read key file ${path}: ${(error as Error).message}`);
  }
}

export function loadPrivateKey(path: string): KeyObject {
  return privateKeyFromPem(readKeyFile(path), path);
}

export function loadPublicKey(path: string): KeyObject {
  return publicKeyFromPem(readKeyFile(path), path);
}

/**
 * Writes PREFIX (the private key, readable by its owner only) and PREFIX.pub. Refuses to replace either file unless
 * `force` is set, because losing a signing key strands every board that trusts only it.
 */
export function writeKeyPair(prefix: string, pair: KeyPairPem, force: boolean): void {
  const publicPath = `${prefix}.pub`;
  if (!force) {
    for (const path of [prefix, publicPath]) {
      if (existsSync(path)) throw new KeyError(`${path} exists; pass --force to replace it`);
    }
  }
  writeFileSync(prefix, pair.privateKeyPem, { mode: 0o600 });
  chmodSync(prefix, 0o600); // `mode` above applies only when the file is new
  writeFileSync(publicPath, pair.publicKeyPem, { mode: 0o644 });
}
