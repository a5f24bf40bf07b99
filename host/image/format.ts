// The signed firmware image: a 64-byte header, the firmware .wasm as payload, and an MCUboot-style TLV trailer.
// docs/image-format.md draws the layout; this file encodes, decodes and verifies it, and nothing else.
//
// Image, all integers little-endian:
// |0 header (headerSizeBytes)|payload (payloadSizeBytes)|zero pad to 4|protected TLVs|unprotected TLVs|
// The SHA-256 covers everything before the unprotected TLVs, so the security counter and key id (protected TLVs)
// are covered by it; the Ed25519 signature is over that 32-byte hash, as in MCUboot's design ("Protected TLVs").
import { createHash, createPublicKey, KeyObject, sign as signBytes, verify as verifyBytes } from "node:crypto";
import { KEY_ID_SIZE_BYTES, keyIdHex, keyIdOf, type TrustedKey } from "./keys.ts";

/** Header magic, the bytes "WIMG". Distinct from MCUboot's 0x96f3b83d: our header is not MCUboot's. */
export const IMAGE_MAGIC = 0x474d4957;
/** What an erased NOR slot reads as in the magic's place. */
export const IMAGE_MAGIC_ERASED = 0xffffffff;
export const IMAGE_HEADER_SIZE_BYTES = 64;
export const BOARD_COMPAT_SIZE_BYTES = 32;
/** The largest image, header and trailer included; a slot must hold at least this much. */
export const IMAGE_SIZE_MAX_BYTES = 4 * 1024 * 1024;
export const PAYLOAD_ALIGN_BYTES = 4;

// Header field offsets.
const HDR_MAGIC = 0; // u32
const HDR_HEADER_SIZE = 4; // u16, also the payload's offset
const HDR_PROTECTED_TLV_SIZE = 6; // u16, protected block including its 4-byte info header
const HDR_PAYLOAD_SIZE = 8; // u32
const HDR_FLAGS = 12; // u32
const HDR_ABI_VERSION = 16; // u16
const HDR_VERSION_MAJOR = 20; // u8
const HDR_VERSION_MINOR = 21; // u8
const HDR_VERSION_REVISION = 22; // u16
const HDR_VERSION_BUILD = 24; // u32
const HDR_BOARD_COMPAT = 32; // char[32], NUL-padded ASCII

/** No flags are defined yet; the ROM refuses bits it does not know rather than guess what they mean. */
export const IMAGE_FLAGS_KNOWN = 0;

// TLV areas (MCUboot image.h values where the meaning is the same).
export const TLV_INFO_MAGIC = 0x6907; // unprotected block
export const TLV_PROT_INFO_MAGIC = 0x6908; // protected block
const TLV_INFO_SIZE_BYTES = 4; // u16 magic, u16 total size including this header
const TLV_ENTRY_HEADER_SIZE_BYTES = 4; // u16 type, u16 length
export const TLV_KEY_ID = 0x01; // protected; 8 bytes (MCUboot's KEYHASH type, truncated hash)
export const TLV_SHA256 = 0x10; // unprotected; 32 bytes
export const TLV_ED25519 = 0x24; // unprotected; 64 bytes
export const TLV_SEC_CNT = 0x50; // protected; u32
const SHA256_SIZE_BYTES = 32;
const ED25519_SIGNATURE_SIZE_BYTES = 64;

/** Each TLV type the decoder accepts, the block it must sit in, and its exact length. Anything else is refused. */
const TLV_ALLOWED: ReadonlyMap<number, { isProtected: boolean; lengthBytes: number; name: string }> = new Map([
  [TLV_KEY_ID, { isProtected: true, lengthBytes: KEY_ID_SIZE_BYTES, name: "KEY_ID" }],
  [TLV_SEC_CNT, { isProtected: true, lengthBytes: 4, name: "SEC_CNT" }],
  [TLV_SHA256, { isProtected: false, lengthBytes: SHA256_SIZE_BYTES, name: "SHA256" }],
  [TLV_ED25519, { isProtected: false, lengthBytes: ED25519_SIGNATURE_SIZE_BYTES, name: "ED25519" }],
]);

const WASM_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]; // "\0asm", version 1

/** Why an image was refused; docs/image-format.md lists each with its cause. */
export type ImageRefusal =
  | "truncated"
  | "oversized"
  | "empty"
  | "bad-magic"
  | "bad-header"
  | "bad-tlv"
  | "trailing-bytes"
  | "bad-hash"
  | "unsigned"
  | "unknown-key"
  | "bad-signature"
  | "bad-payload"
  | "abi-mismatch"
  | "board-mismatch"
  | "rollback";

/** An image refused for `reason`; the message starts with the reason and says what was found and what was wanted. */
export class ImageError extends Error {
  override name = "ImageError";
  constructor(
    readonly reason: ImageRefusal,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

export interface FirmwareVersion {
  major: number; // u8
  minor: number; // u8
  revision: number; // u16
  build: number; // u32
}

export interface ImageHeader {
  headerSizeBytes: number;
  protectedTlvSizeBytes: number;
  payloadSizeBytes: number;
  flags: number;
  abiVersion: number;
  version: FirmwareVersion;
  boardCompat: string;
}

/** An image whose structure is sound; its hash and signature are not yet checked (see `verifyImage`). */
export interface DecodedImage {
  header: ImageHeader;
  payload: Uint8Array; // a view into the decoded bytes
  securityCounter: number;
  keyId: Uint8Array | null; // null until signed
  hash: Uint8Array; // as stored in the SHA256 TLV
  signature: Uint8Array | null;
  hashedSizeBytes: number; // header, payload, padding and protected TLVs
  totalSizeBytes: number;
}

export interface DecodeOptions {
  /** The slot the image must fit in; the limit is the smaller of this and IMAGE_SIZE_MAX_BYTES. */
  slotSizeBytes?: number;
  /** "allow" when decoding a slot, whose unused tail follows the image; "refuse" for a file. Default "refuse". */
  trailingBytes?: "allow" | "refuse";
}

export interface VerifyPolicy extends DecodeOptions {
  trustedKeys: readonly TrustedKey[];
  /** Checked when given: the board's ABI version and compatibility string, and its stored security counter. */
  abiVersion?: number;
  boardCompat?: string;
  securityCounterMin?: number;
}

export interface BuildOptions {
  payload: Uint8Array;
  version: FirmwareVersion;
  abiVersion: number;
  boardCompat: string;
  securityCounter: number;
  flags?: number;
}

export function alignUp(valueBytes: number, alignBytes: number): number {
  return Math.ceil(valueBytes / alignBytes) * alignBytes;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

// ---- versions ----

const U8_MAX = 0xff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

/** Parses "MAJOR.MINOR.REVISION" with an optional "+BUILD" (a number); pre-release tags are refused. */
export function parseVersion(text: string): FirmwareVersion {
  const match = /^(\d+)\.(\d+)\.(\d+)(?:\+(\d+))?$/.exec(text);
  if (match === null) throw new RangeError(`version '${text}' is not MAJOR.MINOR.REVISION[+BUILD]`);
  const version = {
    major: Number(match[1]),
    minor: Number(match[2]),
    revision: Number(match[3]),
    build: match[4] === undefined ? 0 : Number(match[4]),
  };
  if (version.major > U8_MAX || version.minor > U8_MAX) throw new RangeError(`version '${text}': major and minor are at most 255`);
  if (version.revision > U16_MAX) throw new RangeError(`version '${text}': revision is at most 65535`);
  if (version.build > U32_MAX) throw new RangeError(`version '${text}': build is at most 4294967295`);
  return version;
}

export function formatVersion(version: FirmwareVersion): string {
  const base = `${version.major}.${version.minor}.${version.revision}`;
  return version.build === 0 ? base : `${base}+${version.build}`;
}

// ---- encoding ----

interface Tlv {
  type: number;
  value: Uint8Array;
}

function boardCompatBytes(boardCompat: string): Uint8Array {
  // Printable ASCII and one NUL at least, so the field reads back as the same string on any board.
  if (!/^[\x20-\x7e]*$/.test(boardCompat) || boardCompat.length === 0) {
    throw new RangeError(`board compatibility '${boardCompat}' must be non-empty printable ASCII`);
  }
  if (boardCompat.length > BOARD_COMPAT_SIZE_BYTES - 1) {
    throw new RangeError(`board compatibility '${boardCompat}' is longer than ${BOARD_COMPAT_SIZE_BYTES - 1} characters`);
  }
  const field = new Uint8Array(BOARD_COMPAT_SIZE_BYTES);
  field.set(Buffer.from(boardCompat, "ascii"));
  return field;
}

function encodeHeader(header: ImageHeader): Uint8Array {
  const bytes = new Uint8Array(header.headerSizeBytes);
  const v = view(bytes);
  v.setUint32(HDR_MAGIC, IMAGE_MAGIC, true);
  v.setUint16(HDR_HEADER_SIZE, header.headerSizeBytes, true);
  v.setUint16(HDR_PROTECTED_TLV_SIZE, header.protectedTlvSizeBytes, true);
  v.setUint32(HDR_PAYLOAD_SIZE, header.payloadSizeBytes, true);
  v.setUint32(HDR_FLAGS, header.flags, true);
  v.setUint16(HDR_ABI_VERSION, header.abiVersion, true);
  v.setUint8(HDR_VERSION_MAJOR, header.version.major);
  v.setUint8(HDR_VERSION_MINOR, header.version.minor);
  v.setUint16(HDR_VERSION_REVISION, header.version.revision, true);
  v.setUint32(HDR_VERSION_BUILD, header.version.build, true);
  bytes.set(boardCompatBytes(header.boardCompat), HDR_BOARD_COMPAT);
  return bytes;
}

function tlvBlockSizeBytes(tlvs: readonly Tlv[]): number {
  return tlvs.reduce((sum, tlv) => sum + TLV_ENTRY_HEADER_SIZE_BYTES + tlv.value.length, TLV_INFO_SIZE_BYTES);
}

function encodeTlvBlock(magic: number, tlvs: readonly Tlv[]): Uint8Array {
  const bytes = new Uint8Array(tlvBlockSizeBytes(tlvs));
  const v = view(bytes);
  v.setUint16(0, magic, true);
  v.setUint16(2, bytes.length, true);
  let offset = TLV_INFO_SIZE_BYTES;
  for (const tlv of tlvs) {
    v.setUint16(offset, tlv.type, true);
    v.setUint16(offset + 2, tlv.value.length, true);
    bytes.set(tlv.value, offset + TLV_ENTRY_HEADER_SIZE_BYTES);
    offset += TLV_ENTRY_HEADER_SIZE_BYTES + tlv.value.length;
  }
  return bytes;
}

function u32Bytes(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  view(bytes).setUint32(0, value, true);
  return bytes;
}

/** Lays out header, payload, padding and protected TLVs: the bytes the hash covers. */
function encodeHashed(options: BuildOptions, keyId: Uint8Array | null): Uint8Array {
  const protectedTlvs: Tlv[] = [{ type: TLV_SEC_CNT, value: u32Bytes(options.securityCounter) }];
  if (keyId !== null) protectedTlvs.push({ type: TLV_KEY_ID, value: keyId });
  const protectedBlock = encodeTlvBlock(TLV_PROT_INFO_MAGIC, protectedTlvs);
  const header = encodeHeader({
    headerSizeBytes: IMAGE_HEADER_SIZE_BYTES,
    protectedTlvSizeBytes: protectedBlock.length,
    payloadSizeBytes: options.payload.length,
    flags: options.flags ?? 0,
    abiVersion: options.abiVersion,
    version: options.version,
    boardCompat: options.boardCompat,
  });
  const paddedPayloadSizeBytes = alignUp(options.payload.length, PAYLOAD_ALIGN_BYTES);
  const bytes = new Uint8Array(header.length + paddedPayloadSizeBytes + protectedBlock.length); // padding stays zero
  bytes.set(header, 0);
  bytes.set(options.payload, header.length);
  bytes.set(protectedBlock, header.length + paddedPayloadSizeBytes);
  return bytes;
}

function assemble(options: BuildOptions, privateKey: KeyObject | null): Uint8Array {
  const keyId = privateKey === null ? null : keyIdOf(createPublicKey(privateKey));
  const hashed = encodeHashed(options, keyId);
  const hash = sha256(hashed);
  const unprotectedTlvs: Tlv[] = [{ type: TLV_SHA256, value: hash }];
  if (privateKey !== null) {
    unprotectedTlvs.push({ type: TLV_ED25519, value: new Uint8Array(signBytes(null, hash, privateKey)) });
  }
  const unprotectedBlock = encodeTlvBlock(TLV_INFO_MAGIC, unprotectedTlvs);
  const image = new Uint8Array(hashed.length + unprotectedBlock.length);
  image.set(hashed, 0);
  image.set(unprotectedBlock, hashed.length);
  if (image.length > IMAGE_SIZE_MAX_BYTES) {
    throw new ImageError("oversized", `image would be ${image.length} bytes; the limit is ${IMAGE_SIZE_MAX_BYTES}`);
  }
  return image;
}

function checkBuildOptions(options: BuildOptions): void {
  const { securityCounter, abiVersion } = options;
  if (!Number.isInteger(securityCounter) || securityCounter < 0 || securityCounter > U32_MAX) {
    throw new RangeError(`security counter ${securityCounter} is not a u32`);
  }
  if (!Number.isInteger(abiVersion) || abiVersion < 0 || abiVersion > U16_MAX) {
    throw new RangeError(`ABI version ${abiVersion} is not a u16`);
  }
  if (((options.flags ?? 0) & ~IMAGE_FLAGS_KNOWN) !== 0) throw new RangeError(`unknown image flags 0x${(options.flags ?? 0).toString(16)}`);
  if (!startsWithWasmPreamble(options.payload)) {
    throw new ImageError("bad-payload", "payload is not a WebAssembly 1.0 module (no \\0asm version 1 preamble)");
  }
}

/** Builds an unsigned image (SEC_CNT and SHA256 TLVs only); `signImage` adds the key id and signature. */
export function buildImage(options: BuildOptions): Uint8Array {
  checkBuildOptions(options);
  return assemble(options, null);
}

/** Signs an image (signed or not) with an Ed25519 private key, replacing any earlier key id and signature. */
export function signImage(image: Uint8Array, privateKey: KeyObject): Uint8Array {
  const decoded = decodeImage(image);
  const options: BuildOptions = {
    payload: decoded.payload,
    version: decoded.header.version,
    abiVersion: decoded.header.abiVersion,
    boardCompat: decoded.header.boardCompat,
    securityCounter: decoded.securityCounter,
    flags: decoded.header.flags,
  };
  return assemble(options, privateKey);
}

// ---- decoding ----

function startsWithWasmPreamble(payload: Uint8Array): boolean {
  return payload.length >= WASM_PREAMBLE.length && WASM_PREAMBLE.every((byte, index) => payload[index] === byte);
}

function decodeHeader(bytes: Uint8Array): ImageHeader {
  if (bytes.length < 4) throw new ImageError("truncated", `image is ${bytes.length} bytes; even the magic needs 4`);
  const v = view(bytes);
  const magic = v.getUint32(HDR_MAGIC, true);
  if (magic === IMAGE_MAGIC_ERASED) throw new ImageError("empty", "no image: the magic reads 0xffffffff (erased flash)");
  if (magic !== IMAGE_MAGIC) {
    throw new ImageError("bad-magic", `header magic is 0x${magic.toString(16).padStart(8, "0")}; expected 0x${IMAGE_MAGIC.toString(16)}`);
  }
  if (bytes.length < IMAGE_HEADER_SIZE_BYTES) {
    throw new ImageError("truncated", `image is ${bytes.length} bytes; the header alone is ${IMAGE_HEADER_SIZE_BYTES}`);
  }
  const compatField = bytes.subarray(HDR_BOARD_COMPAT, HDR_BOARD_COMPAT + BOARD_COMPAT_SIZE_BYTES);
  const compatLength = compatField.indexOf(0);
  const header: ImageHeader = {
    headerSizeBytes: v.getUint16(HDR_HEADER_SIZE, true),
    protectedTlvSizeBytes: v.getUint16(HDR_PROTECTED_TLV_SIZE, true),
    payloadSizeBytes: v.getUint32(HDR_PAYLOAD_SIZE, true),
    flags: v.getUint32(HDR_FLAGS, true),
    abiVersion: v.getUint16(HDR_ABI_VERSION, true),
    version: {
      major: v.getUint8(HDR_VERSION_MAJOR),
      minor: v.getUint8(HDR_VERSION_MINOR),
      revision: v.getUint16(HDR_VERSION_REVISION, true),
      build: v.getUint32(HDR_VERSION_BUILD, true),
    },
    boardCompat: compatLength < 0 ? "" : Buffer.from(compatField.subarray(0, compatLength)).toString("latin1"),
  };
  if (header.headerSizeBytes < IMAGE_HEADER_SIZE_BYTES || header.headerSizeBytes % PAYLOAD_ALIGN_BYTES !== 0) {
    throw new ImageError("bad-header", `header size ${header.headerSizeBytes} is not a multiple of 4 of at least ${IMAGE_HEADER_SIZE_BYTES}`);
  }
  if ((header.flags & ~IMAGE_FLAGS_KNOWN) !== 0) {
    throw new ImageError("bad-header", `unknown flags 0x${header.flags.toString(16)}`);
  }
  if (compatLength <= 0 || !/^[\x20-\x7e]*$/.test(header.boardCompat)) {
    throw new ImageError("bad-header", "board compatibility field is not NUL-terminated printable ASCII");
  }
  return header;
}

/** The size limit for this decode: the image maximum, or the slot when it is smaller. */
function sizeLimitBytes(options: DecodeOptions): { limitBytes: number; what: string } {
  const slot = options.slotSizeBytes;
  if (slot !== undefined && slot < IMAGE_SIZE_MAX_BYTES) return { limitBytes: slot, what: `the ${slot}-byte slot` };
  return { limitBytes: IMAGE_SIZE_MAX_BYTES, what: `the image maximum ${IMAGE_SIZE_MAX_BYTES}` };
}

function requireWithin(endBytes: number, bytes: Uint8Array, options: DecodeOptions, what: string): void {
  const { limitBytes, what: limitWhat } = sizeLimitBytes(options);
  if (endBytes > limitBytes) throw new ImageError("oversized", `${what} ends at byte ${endBytes}, past ${limitWhat}`);
  if (endBytes > bytes.length) throw new ImageError("truncated", `${what} ends at byte ${endBytes} but only ${bytes.length} bytes are present`);
}

/** Reads one TLV block at `offset`, checking its magic, its total against `sizeBytes` when known, and each entry. */
function decodeTlvBlock(
  bytes: Uint8Array,
  offset: number,
  magic: number,
  isProtected: boolean,
  options: DecodeOptions,
): { tlvs: Map<number, Uint8Array>; sizeBytes: number } {
  const blockName = isProtected ? "protected TLV block" : "TLV trailer";
  requireWithin(offset + TLV_INFO_SIZE_BYTES, bytes, options, `${blockName} info`);
  const v = view(bytes);
  const foundMagic = v.getUint16(offset, true);
  if (foundMagic !== magic) {
    throw new ImageError("bad-tlv", `${blockName} magic at byte ${offset} is 0x${foundMagic.toString(16)}; expected 0x${magic.toString(16)}`);
  }
  const sizeBytes = v.getUint16(offset + 2, true);
  if (sizeBytes < TLV_INFO_SIZE_BYTES) throw new ImageError("bad-tlv", `${blockName} total ${sizeBytes} is smaller than its info header`);
  requireWithin(offset + sizeBytes, bytes, options, blockName);
  const tlvs = new Map<number, Uint8Array>();
  const end = offset + sizeBytes;
  let at = offset + TLV_INFO_SIZE_BYTES;
  // Each pass consumes at least the 4-byte entry header, so the loop runs at most sizeBytes / 4 times.
  while (at < end) {
    if (at + TLV_ENTRY_HEADER_SIZE_BYTES > end) throw new ImageError("bad-tlv", `${blockName}: entry header at byte ${at} crosses the block end`);
    const type = v.getUint16(at, true);
    const lengthBytes = v.getUint16(at + 2, true);
    const valueEnd = at + TLV_ENTRY_HEADER_SIZE_BYTES + lengthBytes;
    if (valueEnd > end) throw new ImageError("bad-tlv", `${blockName}: TLV 0x${type.toString(16)} at byte ${at} crosses the block end`);
    const allowed = TLV_ALLOWED.get(type);
    if (allowed === undefined) throw new ImageError("bad-tlv", `${blockName}: TLV type 0x${type.toString(16)} is not allowed`);
    if (allowed.isProtected !== isProtected) {
      throw new ImageError("bad-tlv", `TLV ${allowed.name} belongs in the ${allowed.isProtected ? "protected" : "unprotected"} block`);
    }
    if (lengthBytes !== allowed.lengthBytes) {
      throw new ImageError("bad-tlv", `TLV ${allowed.name} is ${lengthBytes} bytes; it must be ${allowed.lengthBytes}`);
    }
    if (tlvs.has(type)) throw new ImageError("bad-tlv", `TLV ${allowed.name} appears twice`);
    tlvs.set(type, bytes.subarray(at + TLV_ENTRY_HEADER_SIZE_BYTES, valueEnd));
    at = valueEnd;
  }
  return { tlvs, sizeBytes };
}

/**
 * Decodes an image's structure: header, bounds, and the allow-listed TLVs. Throws ImageError; never reads outside
 * `bytes`, whatever the header claims. Does not check the hash or signature.
 */
export function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): DecodedImage {
  const trailing = options.trailingBytes ?? "refuse";
  const header = decodeHeader(bytes);
  if (header.payloadSizeBytes > IMAGE_SIZE_MAX_BYTES) {
    throw new ImageError("oversized", `payload is ${header.payloadSizeBytes} bytes; an image is at most ${IMAGE_SIZE_MAX_BYTES}`);
  }
  const payloadEnd = header.headerSizeBytes + header.payloadSizeBytes;
  requireWithin(payloadEnd, bytes, options, "payload");
  const protectedOffset = header.headerSizeBytes + alignUp(header.payloadSizeBytes, PAYLOAD_ALIGN_BYTES);
  if (header.protectedTlvSizeBytes === 0) throw new ImageError("bad-tlv", "no protected TLV block (the security counter lives there)");
  const protectedBlock = decodeTlvBlock(bytes, protectedOffset, TLV_PROT_INFO_MAGIC, true, options);
  if (protectedBlock.sizeBytes !== header.protectedTlvSizeBytes) {
    throw new ImageError("bad-tlv", `protected TLV block is ${protectedBlock.sizeBytes} bytes; the header says ${header.protectedTlvSizeBytes}`);
  }
  const hashedSizeBytes = protectedOffset + protectedBlock.sizeBytes;
  const unprotectedBlock = decodeTlvBlock(bytes, hashedSizeBytes, TLV_INFO_MAGIC, false, options);
  const totalSizeBytes = hashedSizeBytes + unprotectedBlock.sizeBytes;
  if (trailing === "refuse" && bytes.length > totalSizeBytes) {
    throw new ImageError("trailing-bytes", `${bytes.length - totalSizeBytes} bytes follow the TLV trailer, which ends at byte ${totalSizeBytes}`);
  }
  const secCnt = protectedBlock.tlvs.get(TLV_SEC_CNT);
  if (secCnt === undefined) throw new ImageError("bad-tlv", "no SEC_CNT TLV");
  const hash = unprotectedBlock.tlvs.get(TLV_SHA256);
  if (hash === undefined) throw new ImageError("bad-tlv", "no SHA256 TLV");
  const keyId = protectedBlock.tlvs.get(TLV_KEY_ID) ?? null;
  const signature = unprotectedBlock.tlvs.get(TLV_ED25519) ?? null;
  if ((keyId === null) !== (signature === null)) throw new ImageError("bad-tlv", "a KEY_ID TLV and an ED25519 TLV come together or not at all");
  return {
    header,
    payload: bytes.subarray(header.headerSizeBytes, payloadEnd),
    securityCounter: view(secCnt).getUint32(0, true),
    keyId,
    hash,
    signature,
    hashedSizeBytes,
    totalSizeBytes,
  };
}

/** SHA-256 over the bytes the hash TLV covers: header, payload, padding and protected TLVs. */
export function computeImageHash(bytes: Uint8Array, decoded: DecodedImage): Uint8Array {
  return sha256(bytes.subarray(0, decoded.hashedSizeBytes));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

/**
 * Verifies an image in the boot ROM's order (REFERENCE.md §1.4): bounds, hash, key lookup, signature, payload
 * preamble, ABI, board, security counter. Returns the decoded image or throws ImageError naming the first failure.
 */
export function verifyImage(bytes: Uint8Array, policy: VerifyPolicy): DecodedImage {
  const decoded = decodeImage(bytes, policy);
  const computed = computeImageHash(bytes, decoded);
  if (!sameBytes(computed, decoded.hash)) {
    throw new ImageError("bad-hash", `SHA-256 over header, payload and protected TLVs is ${hex(computed)}; the image says ${hex(decoded.hash)}`);
  }
  if (decoded.keyId === null || decoded.signature === null) {
    throw new ImageError("unsigned", "the image carries no key id and signature; sign it with `wasm-iop image sign`");
  }
  const keyId = decoded.keyId;
  const key = policy.trustedKeys.find((candidate) => sameBytes(candidate.keyId, keyId));
  if (key === undefined) {
    throw new ImageError("unknown-key", `signed with key ${keyIdHex(keyId)}, which is not among the ${policy.trustedKeys.length} trusted keys`);
  }
  if (!verifyBytes(null, decoded.hash, key.publicKey, decoded.signature)) {
    throw new ImageError("bad-signature", `the Ed25519 signature does not verify with key ${keyIdHex(keyId)}`);
  }
  if (!startsWithWasmPreamble(decoded.payload)) {
    throw new ImageError("bad-payload", "payload is not a WebAssembly 1.0 module (no \\0asm version 1 preamble)");
  }
  if (policy.abiVersion !== undefined && decoded.header.abiVersion !== policy.abiVersion) {
    throw new ImageError("abi-mismatch", `the image needs board ABI ${decoded.header.abiVersion}; this board provides ABI ${policy.abiVersion}`);
  }
  if (policy.boardCompat !== undefined && decoded.header.boardCompat !== policy.boardCompat) {
    throw new ImageError("board-mismatch", `the image is for board "${decoded.header.boardCompat}"; this board is "${policy.boardCompat}"`);
  }
  if (policy.securityCounterMin !== undefined && decoded.securityCounter < policy.securityCounterMin) {
    throw new ImageError("rollback", `the image's security counter ${decoded.securityCounter} is below the board's ${policy.securityCounterMin}`);
  }
  return decoded;
}
