// Shared by the image and boot tests: fixed Ed25519 keys (from fixed seeds, so every run signs the same bytes),
// small fake firmware modules, and a builder for signed images with any field varied.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { buildImage, signImage, type BuildOptions } from "../../../host/image/format.ts";
import { trustedKey, type TrustedKey } from "../../../host/image/keys.ts";

// RFC 8410: an Ed25519 PKCS#8 private key is this DER prefix followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export function keyFromSeed(seedByte: number): { privateKey: KeyObject; publicKey: KeyObject; trusted: TrustedKey } {
  const der = Buffer.concat([ED25519_PKCS8_PREFIX, Buffer.alloc(32, seedByte)]);
  const privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, trusted: trustedKey(publicKey) };
}

export const boardKey = keyFromSeed(1); // the key the test board trusts
export const otherKey = keyFromSeed(2); // a valid key the board does not trust

export const BOARD_COMPAT = "wasm-iop";
export const ABI_VERSION = 1;

/** A minimal WebAssembly module: the preamble and one custom section named `tag`, so each fake firmware differs. */
export function fakeWasm(tag: string, fillerBytes = 0): Uint8Array {
  const name = Buffer.from(tag, "utf8");
  const content = Buffer.concat([Buffer.from([name.length]), name, Buffer.alloc(fillerBytes, 0x5a)]);
  const size = leb128(content.length);
  return new Uint8Array(Buffer.concat([Buffer.from("\0asm\x01\0\0\0", "latin1"), Buffer.from([0, ...size]), content]));
}

function leb128(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    const byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
    out.push(rest === 0 ? byte : byte | 0x80);
  } while (rest !== 0);
  return out;
}

export interface TestImageOptions extends Partial<BuildOptions> {
  tag?: string;
  key?: KeyObject | null; // null: leave unsigned
}

/** A signed image for the test board; every field can be overridden to make a bad one. */
export function testImage(options: TestImageOptions = {}): Uint8Array {
  const unsigned = buildImage({
    payload: options.payload ?? fakeWasm(options.tag ?? "firmware"),
    version: options.version ?? { major: 1, minor: 0, revision: 0, build: 0 },
    abiVersion: options.abiVersion ?? ABI_VERSION,
    boardCompat: options.boardCompat ?? BOARD_COMPAT,
    securityCounter: options.securityCounter ?? 0,
  });
  const key = options.key === undefined ? boardKey.privateKey : options.key;
  return key === null ? unsigned : signImage(unsigned, key);
}

export const boardPolicy = {
  trustedKeys: [boardKey.trusted],
  boardCompat: BOARD_COMPAT,
  abiVersion: ABI_VERSION,
};
