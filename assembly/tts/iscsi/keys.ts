// The text keys of login and Text PDUs (RFC 7143, "Text Mode Negotiation" and "Login/Text Operational Text Keys"):
// walking `key=value\0` pairs, writing answers, and the negotiation rules of every operational key, which leave their
// results in a NegotiatedParams record. login.ts drives these during login; the engine calls keysTextRequest for Text
// Requests in full feature phase and sendTargetsWrite for discovery.
//
// Answers follow RFC 7143, "Text Mode Negotiation": a key not understood (unknown, X- and X# keys) → key=NotUnderstood;
// a value that is not admissible (out of range, not in the list, malformed, too long) → key=Reject; a key that does not
// apply (a session key in a discovery session, a leading-only key on another connection) → key=Irrelevant.
// Protocol errors (a key sent twice, a key in the wrong stage, "Reject"/"Irrelevant"/"NotUnderstood" offered as values)
// fail the login (LOGIN_INITIATOR_ERROR) or, in full feature phase, are answered with a Reject PDU by the engine.
import {
  bytesEqualIgnoreCase, ISCSI_NAME_BYTES_MAX, TARGET_NONE, TargetConfig, targetConfigAt, targetConfigCount,
  targetConfigDiscovery, targetConfigFind,
} from "./config";
import { LOGIN_INITIATOR_ERROR, LOGIN_OUT_OF_RESOURCES, LOGIN_SUCCESS } from "./pdu";
import { carve } from "../../kernel/carve";
import { portalAddressCount, portalAddressWrite } from "./portals";

export const KEY_NAME_BYTES_MAX: u32 = 63; // RFC 7143, "Text Format"
export const VALUE_BYTES_MAX: u32 = 255; // simple values; names and CHAP binaries have their own limits
export const CHAP_BINARY_BYTES_MAX: u32 = 1024; // RFC 7143, CHAP: CHAP_C and CHAP_R decode to at most 1024 bytes
export const CHAP_VALUE_BYTES_MAX: u32 = 2 + 2 * CHAP_BINARY_BYTES_MAX; // "0x" and two hex digits a byte
export const DATA_SEGMENT_LENGTH_MIN: u32 = 512; // MaxRecvDataSegmentLength, MaxBurstLength, FirstBurstLength range
export const DATA_SEGMENT_LENGTH_MAX: u32 = 0xff_ffff;
export const MAX_RECV_DATA_SEGMENT_LENGTH_DEFAULT: u32 = 8192; // also in force during login
export const NUMBER_INVALID: u64 = u64.MAX_VALUE;

// ---- Walking key=value pairs ----

/** What TextCursor.next found. */
export enum TextItem {
  Pair = 0, // key at keyPtr/keyBytes, value at valuePtr/valueBytes (maybe empty)
  NoEquals = 1, // a string without '=': it is all in keyPtr/keyBytes; answer NotUnderstood
  KeyEmpty = 2, // "=value": a protocol error
  KeyTooLong = 3, // a key beyond KEY_NAME_BYTES_MAX: a protocol error
  Unterminated = 4, // bytes after the last NUL (RFC 7143: every pair, the last included, ends with a NUL)
  End = 5,
}

/** Walks `key=value\0` strings. Empty strings (NUL NUL) are skipped. Every call advances: bounded by the length. */
export class TextCursor {
  keyPtr: usize = 0;
  keyBytes: u32 = 0;
  valuePtr: usize = 0;
  valueBytes: u32 = 0;
  private at: usize = 0;
  private endAt: usize = 0;

  reset(ptr: usize, lengthBytes: u32): TextCursor {
    this.at = ptr;
    this.endAt = ptr + lengthBytes;
    return this;
  }

  next(): TextItem {
    while (this.at < this.endAt && load<u8>(this.at) == 0) this.at += 1;
    if (this.at >= this.endAt) return TextItem.End;
    const start = this.at;
    let nul = start;
    let equals: usize = 0;
    let equalsSeen = false;
    while (nul < this.endAt && load<u8>(nul) != 0) {
      if (!equalsSeen && load<u8>(nul) == 0x3d) { equals = nul; equalsSeen = true; }
      nul += 1;
    }
    this.keyPtr = start;
    this.valuePtr = nul;
    this.valueBytes = 0;
    if (nul == this.endAt) {
      this.at = this.endAt;
      this.keyBytes = <u32>(nul - start);
      return TextItem.Unterminated;
    }
    this.at = nul + 1;
    if (!equalsSeen) {
      this.keyBytes = <u32>(nul - start);
      return this.keyBytes > KEY_NAME_BYTES_MAX ? TextItem.KeyTooLong : TextItem.NoEquals;
    }
    this.keyBytes = <u32>(equals - start);
    this.valuePtr = equals + 1;
    this.valueBytes = <u32>(nul - equals - 1);
    if (this.keyBytes == 0) return TextItem.KeyEmpty;
    return this.keyBytes > KEY_NAME_BYTES_MAX ? TextItem.KeyTooLong : TextItem.Pair;
  }
}

// ---- Writing answers ----

/**
 * Appends text into a fixed buffer. Past the capacity nothing is written and `overflow` stays set; a pair begun with
 * `mark()` and ended with `commit(mark)` is either written whole or not at all.
 */
export class TextWriter {
  ptr: usize = 0;
  capacity: u32 = 0;
  lengthBytes: u32 = 0;
  overflow: bool = false;

  reset(ptr: usize, capacity: u32): TextWriter {
    this.ptr = ptr;
    this.capacity = capacity;
    this.lengthBytes = 0;
    this.overflow = false;
    return this;
  }

  mark(): u32 { return this.lengthBytes; }

  /** True if everything since `mark` fit; otherwise drops it (overflow stays set). */
  commit(mark: u32): bool {
    if (!this.overflow) return true;
    assert(mark <= this.lengthBytes, "commit: a mark of this writer");
    this.lengthBytes = mark;
    return false;
  }

  /** Appends ASCII text. */
  s(text: string): TextWriter {
    const count = <u32>text.length;
    for (let i: u32 = 0; i < count; i++) this.byte(<u32>text.charCodeAt(i) & 0x7f);
    return this;
  }

  bytes(source: usize, count: u32): TextWriter {
    if (count > this.capacity - this.lengthBytes) {
      this.overflow = true;
      return this;
    }
    memory.copy(this.ptr + this.lengthBytes, source, count);
    this.lengthBytes += count;
    return this;
  }

  u64(value: u64): TextWriter {
    let divisor: u64 = 1;
    let digits: u32 = 1;
    while (digits < 20 && value / divisor >= 10) { divisor *= 10; digits += 1; }
    for (let i: u32 = 0; i < digits; i++) {
      this.byte(<u32>(0x30 + (value / divisor) % 10));
      divisor /= 10;
    }
    return this;
  }

  /** "0x" and two lower-case hex digits per byte. */
  hex(source: usize, count: u32): TextWriter {
    this.s("0x");
    for (let i: u32 = 0; i < count; i++) {
      const b = <u32>load<u8>(source + i);
      this.byte(hexDigit(b >> 4));
      this.byte(hexDigit(b & 15));
    }
    return this;
  }

  /** Ends a pair. */
  end(): TextWriter { this.byte(0); return this; }

  pair(key: string, value: string): TextWriter { return this.s(key).s("=").s(value).end(); }
  pairU64(key: string, value: u64): TextWriter { return this.s(key).s("=").u64(value).end(); }

  private byte(b: u32): void {
    if (this.lengthBytes >= this.capacity) {
      this.overflow = true;
      return;
    }
    store<u8>(this.ptr + this.lengthBytes, <u8>b);
    this.lengthBytes += 1;
  }
}

@inline function hexDigit(nibble: u32): u32 { return nibble < 10 ? 0x30 + nibble : 0x57 + nibble; }

// ---- Reading values ----

/** Do the `count` bytes at `ptr` spell `text` exactly? */
export function bytesIs(ptr: usize, count: u32, text: string): bool {
  if (count != <u32>text.length) return false;
  for (let i: u32 = 0; i < count; i++) if (<u32>load<u8>(ptr + i) != <u32>text.charCodeAt(i)) return false;
  return true;
}

/** A numerical value (RFC 7143, "Text Format": decimal-constant or hex-constant), or NUMBER_INVALID. */
export function parseNumber(ptr: usize, count: u32): u64 {
  if (count == 0 || count > 40) return NUMBER_INVALID;
  if (count > 2 && load<u8>(ptr) == 0x30 && lowerChar(ptr + 1) == 0x78) {
    let value: u64 = 0;
    for (let i: u32 = 2; i < count; i++) {
      const d = hexValue(<u32>load<u8>(ptr + i));
      if (d > 15 || (value >> 60) != 0) return NUMBER_INVALID;
      value = (value << 4) | <u64>d;
    }
    return value;
  }
  let value: u64 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const c = <u32>load<u8>(ptr + i);
    if (c < 0x30 || c > 0x39) return NUMBER_INVALID;
    const d = <u64>(c - 0x30);
    if (value > (u64.MAX_VALUE - d) / 10) return NUMBER_INVALID;
    value = value * 10 + d;
  }
  return value;
}

@inline function lowerChar(at: usize): u32 { return <u32>load<u8>(at) | 0x20; }

function hexValue(c: u32): u32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return 16;
}

function base64Value(c: u32): u32 {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (c == 0x2b) return 62;
  if (c == 0x2f) return 63;
  return 64;
}

/**
 * Decodes a binary value (RFC 7143, "Text Format": "0x" hex-constant, an odd digit count meaning a leading zero
 * nibble, or "0b" base64-constant) into `out`; returns the byte count, or -1 when malformed, empty, or longer than
 * `capacity`.
 */
export function decodeBinary(ptr: usize, count: u32, out: usize, capacity: u32): i32 {
  if (count < 3 || load<u8>(ptr) != 0x30) return -1;
  const form = lowerChar(ptr + 1);
  if (form == 0x78) return decodeHex(ptr + 2, count - 2, out, capacity);
  if (form == 0x62) return decodeBase64(ptr + 2, count - 2, out, capacity);
  return -1;
}

function decodeHex(ptr: usize, digits: u32, out: usize, capacity: u32): i32 {
  const bytes = (digits + 1) / 2;
  if (bytes > capacity) return -1;
  let nibble: u32 = digits & 1; // an odd count: the first digit is a low nibble
  let acc: u32 = 0;
  let written: u32 = 0;
  for (let i: u32 = 0; i < digits; i++) {
    const d = hexValue(<u32>load<u8>(ptr + i));
    if (d > 15) return -1;
    acc = (acc << 4) | d;
    nibble += 1;
    if (nibble == 2) {
      store<u8>(out + written, <u8>acc);
      written += 1;
      acc = 0;
      nibble = 0;
    }
  }
  return <i32>written;
}

function decodeBase64(ptr: usize, chars: u32, out: usize, capacity: u32): i32 {
  if (chars == 0 || chars % 4 != 0) return -1;
  let padding: u32 = 0;
  if (load<u8>(ptr + chars - 1) == 0x3d) padding = load<u8>(ptr + chars - 2) == 0x3d ? 2 : 1;
  const bytes = chars / 4 * 3 - padding;
  if (bytes > capacity) return -1;
  let written: u32 = 0;
  for (let group: u32 = 0; group < chars; group += 4) {
    let acc: u32 = 0;
    for (let j: u32 = 0; j < 4; j++) {
      const c = <u32>load<u8>(ptr + group + j);
      const last = group + 4 == chars;
      let v = base64Value(c);
      if (c == 0x3d && last && j >= 4 - padding) v = 0;
      else if (v > 63) return -1;
      acc = (acc << 6) | v;
    }
    const take = group + 4 == chars ? 3 - padding : 3;
    if (take >= 1) store<u8>(out + written, <u8>(acc >> 16));
    if (take >= 2) store<u8>(out + written + 1, <u8>(acc >> 8));
    if (take >= 3) store<u8>(out + written + 2, <u8>acc);
    written += take;
  }
  return <i32>written;
}

/** "Reject", "Irrelevant" and "NotUnderstood" are answers; offering one is a protocol error (RFC 7143). */
export function valueIsReserved(ptr: usize, count: u32): bool {
  return bytesIs(ptr, count, "Reject") || bytesIs(ptr, count, "Irrelevant") || bytesIs(ptr, count, "NotUnderstood");
}

// ---- The keys ----

export enum KeyId {
  HeaderDigest = 0,
  DataDigest = 1,
  MaxConnections = 2,
  SendTargets = 3,
  TargetName = 4,
  InitiatorName = 5,
  TargetAlias = 6,
  InitiatorAlias = 7,
  TargetAddress = 8,
  TargetPortalGroupTag = 9,
  InitialR2T = 10,
  ImmediateData = 11,
  MaxRecvDataSegmentLength = 12,
  MaxBurstLength = 13,
  FirstBurstLength = 14,
  DefaultTime2Wait = 15,
  DefaultTime2Retain = 16,
  MaxOutstandingR2T = 17,
  DataPDUInOrder = 18,
  DataSequenceInOrder = 19,
  ErrorRecoveryLevel = 20,
  SessionType = 21,
  AuthMethod = 22,
  ChapA = 23,
  ChapI = 24,
  ChapC = 25,
  ChapN = 26,
  ChapR = 27,
  TaskReporting = 28,
  IscsiProtocolLevel = 29,
  IFMarker = 30,
  OFMarker = 31,
  IFMarkInt = 32,
  OFMarkInt = 33,
  Unknown = 34,
}
export const KEY_COUNT: u32 = 34;

const KEY_NAMES: StaticArray<string> = [
  "HeaderDigest", "DataDigest", "MaxConnections", "SendTargets", "TargetName", "InitiatorName", "TargetAlias",
  "InitiatorAlias", "TargetAddress", "TargetPortalGroupTag", "InitialR2T", "ImmediateData", "MaxRecvDataSegmentLength",
  "MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait", "DefaultTime2Retain", "MaxOutstandingR2T", "DataPDUInOrder",
  "DataSequenceInOrder", "ErrorRecoveryLevel", "SessionType", "AuthMethod", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N",
  "CHAP_R", "TaskReporting", "iSCSIProtocolLevel", "IFMarker", "OFMarker", "IFMarkInt", "OFMarkInt",
];

// Where a key may appear and whom it concerns (RFC 7143, "Login/Text Operational Text Keys", Use and Senders).
export const KEY_SECURITY: u32 = 1; // valid in the SecurityNegotiation stage
export const KEY_OPERATIONAL: u32 = 2; // valid in the LoginOperationalNegotiation stage
export const KEY_FULL_FEATURE: u32 = 4; // valid in a Text Request after login
export const KEY_LEADING_ONLY: u32 = 8; // LO: session-wide, negotiated on the leading connection only
export const KEY_DISCOVERY_IRRELEVANT: u32 = 16; // "Irrelevant when: SessionType=Discovery"
export const KEY_TARGET_SENDS: u32 = 32; // only a target sends it: an initiator's offer is answered Reject
export const KEY_OBSOLETE: u32 = 64; // RFC 7143, "Obsoleted Keys": answered Reject
export const KEY_IDENTITY: u32 = 128; // names and session type: login.ts reads them before anything else
export const KEY_AUTH: u32 = 256; // AuthMethod and the CHAP keys: login.ts runs authentication itself

const OP: u32 = KEY_OPERATIONAL;
const SEC: u32 = KEY_SECURITY;
const LO_SESSION: u32 = KEY_OPERATIONAL | KEY_LEADING_ONLY | KEY_DISCOVERY_IRRELEVANT;
const KEY_FLAGS: StaticArray<u32> = [
  OP, OP, // HeaderDigest, DataDigest
  LO_SESSION, // MaxConnections
  KEY_FULL_FEATURE, // SendTargets
  SEC | OP | KEY_IDENTITY, SEC | OP | KEY_IDENTITY, // TargetName, InitiatorName
  KEY_TARGET_SENDS, // TargetAlias
  SEC | OP | KEY_FULL_FEATURE, // InitiatorAlias
  KEY_TARGET_SENDS, KEY_TARGET_SENDS, // TargetAddress, TargetPortalGroupTag
  LO_SESSION, LO_SESSION, // InitialR2T, ImmediateData
  OP | KEY_FULL_FEATURE, // MaxRecvDataSegmentLength
  LO_SESSION, LO_SESSION, // MaxBurstLength, FirstBurstLength
  OP | KEY_LEADING_ONLY, OP | KEY_LEADING_ONLY, // DefaultTime2Wait, DefaultTime2Retain
  LO_SESSION, LO_SESSION, LO_SESSION, // MaxOutstandingR2T, DataPDUInOrder, DataSequenceInOrder
  OP | KEY_LEADING_ONLY, // ErrorRecoveryLevel
  SEC | OP | KEY_LEADING_ONLY | KEY_IDENTITY, // SessionType
  SEC | KEY_AUTH, SEC | KEY_AUTH, SEC | KEY_AUTH, SEC | KEY_AUTH, SEC | KEY_AUTH, SEC | KEY_AUTH, // AuthMethod, CHAP_*
  LO_SESSION, LO_SESSION, // TaskReporting, iSCSIProtocolLevel
  KEY_OBSOLETE, KEY_OBSOLETE, KEY_OBSOLETE, KEY_OBSOLETE, // IFMarker, OFMarker, IFMarkInt, OFMarkInt
];

/** The key named by the `count` bytes at `ptr` (case-sensitive, as RFC 7143 spells them), or KeyId.Unknown. */
export function keyLookup(ptr: usize, count: u32): KeyId {
  for (let i: u32 = 0; i < KEY_COUNT; i++) {
    if (bytesIs(ptr, count, unchecked(KEY_NAMES[i]))) return <KeyId>i;
  }
  return KeyId.Unknown;
}

export function keyName(key: KeyId): string {
  assert(<u32>key < KEY_COUNT, "keyName: a known key");
  return unchecked(KEY_NAMES[<u32>key]);
}

export function keyFlags(key: KeyId): u32 {
  assert(<u32>key < KEY_COUNT, "keyFlags: a known key");
  return unchecked(KEY_FLAGS[<u32>key]);
}

// ---- What the target will accept ----

/** Which digests the target allows: the initiator's list order picks among them (RFC 7143, list negotiation). */
export enum DigestPolicy {
  NoneOnly = 0,
  Crc32cOnly = 1,
  Either = 2,
}

/**
 * The target's side of every negotiation. Set at boot, then checked with negotiationLimitsCheck. For keys whose
 * result is the minimum, the target's value is at least the RFC default: an initiator that does not offer a key gets
 * the default, so the target must be able to live with it (this target never proposes keys of its own).
 */
export class NegotiationLimits {
  headerDigest: DigestPolicy = DigestPolicy.Either;
  dataDigest: DigestPolicy = DigestPolicy.Either;
  maxRecvDataSegmentLength: u32 = MAX_RECV_DATA_SEGMENT_LENGTH_DEFAULT; // declared: what we can take per PDU
  maxConnections: u32 = 1;
  initialR2t: bool = true; // OR: Yes forces R2T before any Data-Out
  immediateData: bool = true; // AND: No forbids immediate data when the initiator offers it
  maxBurstLength: u32 = 262144;
  firstBurstLength: u32 = 65536;
  defaultTime2Wait: u32 = 2;
  defaultTime2Retain: u32 = 20;
  maxOutstandingR2t: u32 = 1;
  dataPduInOrder: bool = true; // OR: Yes insists on in-order Data PDUs
  dataSequenceInOrder: bool = true; // OR: Yes insists on in-order sequences
  errorRecoveryLevel: u32 = 0;
  iscsiProtocolLevel: u32 = 1; // RFC 7143 itself

  /** Back to the defaults above: those of a fresh instance, so they are written once. */
  reset(): void {
    const d = limitsDefault;
    this.headerDigest = d.headerDigest;
    this.dataDigest = d.dataDigest;
    this.maxRecvDataSegmentLength = d.maxRecvDataSegmentLength;
    this.maxConnections = d.maxConnections;
    this.initialR2t = d.initialR2t;
    this.immediateData = d.immediateData;
    this.maxBurstLength = d.maxBurstLength;
    this.firstBurstLength = d.firstBurstLength;
    this.defaultTime2Wait = d.defaultTime2Wait;
    this.defaultTime2Retain = d.defaultTime2Retain;
    this.maxOutstandingR2t = d.maxOutstandingR2t;
    this.dataPduInOrder = d.dataPduInOrder;
    this.dataSequenceInOrder = d.dataSequenceInOrder;
    this.errorRecoveryLevel = d.errorRecoveryLevel;
    this.iscsiProtocolLevel = d.iscsiProtocolLevel;
  }
}

const limitsDefault = new NegotiationLimits();
export const negotiationLimits = new NegotiationLimits();

/** Asserts the limits are within the RFC's ranges and no tighter than its defaults (see NegotiationLimits). Boot. */
export function negotiationLimitsCheck(): void {
  const l = negotiationLimits;
  assert(l.maxRecvDataSegmentLength >= DATA_SEGMENT_LENGTH_MIN && l.maxRecvDataSegmentLength <= DATA_SEGMENT_LENGTH_MAX, "limits: MaxRecvDataSegmentLength");
  assert(l.maxBurstLength >= 262144 && l.maxBurstLength <= DATA_SEGMENT_LENGTH_MAX, "limits: MaxBurstLength");
  assert(l.firstBurstLength >= 65536 && l.firstBurstLength <= l.maxBurstLength, "limits: FirstBurstLength");
  assert(l.maxConnections >= 1 && l.maxConnections <= 65535, "limits: MaxConnections");
  assert(l.defaultTime2Wait <= 2 && l.defaultTime2Retain >= 20 && l.defaultTime2Retain <= 3600, "limits: times");
  assert(l.maxOutstandingR2t >= 1 && l.maxOutstandingR2t <= 65535, "limits: MaxOutstandingR2T");
  assert(l.errorRecoveryLevel <= 2 && l.iscsiProtocolLevel >= 1 && l.iscsiProtocolLevel <= 31, "limits: levels");
}

// ---- Results ----

export enum SessionType {
  Normal = 0,
  Discovery = 1,
}

/** What a connection's login settled: every field holds the RFC default until a negotiation changes it. */
export class NegotiatedParams {
  headerDigest: bool = false; // CRC32C header digests, from the first PDU after the final Login Response
  dataDigest: bool = false;
  maxRecvDataSegmentLength: u32 = MAX_RECV_DATA_SEGMENT_LENGTH_DEFAULT; // ours: the longest segment we accept
  maxSendDataSegmentLength: u32 = MAX_RECV_DATA_SEGMENT_LENGTH_DEFAULT; // the initiator's: the longest we may send
  maxConnections: u32 = 1;
  initialR2t: bool = true;
  immediateData: bool = true;
  maxBurstLength: u32 = 262144;
  firstBurstLength: u32 = 65536;
  defaultTime2Wait: u32 = 2;
  defaultTime2Retain: u32 = 20;
  maxOutstandingR2t: u32 = 1;
  dataPduInOrder: bool = true;
  dataSequenceInOrder: bool = true;
  errorRecoveryLevel: u32 = 0;
  iscsiProtocolLevel: u32 = 1;
  sessionType: SessionType = SessionType.Normal;

  reset(): void {
    this.headerDigest = false;
    this.dataDigest = false;
    this.maxRecvDataSegmentLength = MAX_RECV_DATA_SEGMENT_LENGTH_DEFAULT;
    this.maxSendDataSegmentLength = MAX_RECV_DATA_SEGMENT_LENGTH_DEFAULT;
    this.maxConnections = 1;
    this.initialR2t = true;
    this.immediateData = true;
    this.maxBurstLength = 262144;
    this.firstBurstLength = 65536;
    this.defaultTime2Wait = 2;
    this.defaultTime2Retain = 20;
    this.maxOutstandingR2t = 1;
    this.dataPduInOrder = true;
    this.dataSequenceInOrder = true;
    this.errorRecoveryLevel = 0;
    this.iscsiProtocolLevel = 1;
    this.sessionType = SessionType.Normal;
  }

  copyFrom(other: NegotiatedParams): void {
    this.headerDigest = other.headerDigest;
    this.dataDigest = other.dataDigest;
    this.maxRecvDataSegmentLength = other.maxRecvDataSegmentLength;
    this.maxSendDataSegmentLength = other.maxSendDataSegmentLength;
    this.maxConnections = other.maxConnections;
    this.initialR2t = other.initialR2t;
    this.immediateData = other.immediateData;
    this.maxBurstLength = other.maxBurstLength;
    this.firstBurstLength = other.firstBurstLength;
    this.defaultTime2Wait = other.defaultTime2Wait;
    this.defaultTime2Retain = other.defaultTime2Retain;
    this.maxOutstandingR2t = other.maxOutstandingR2t;
    this.dataPduInOrder = other.dataPduInOrder;
    this.dataSequenceInOrder = other.dataSequenceInOrder;
    this.errorRecoveryLevel = other.errorRecoveryLevel;
    this.iscsiProtocolLevel = other.iscsiProtocolLevel;
    this.sessionType = other.sessionType;
  }
}

/** One connection's negotiation: the results, and what has been said so far (a login, or one Text exchange). */
export class Negotiation {
  readonly params: NegotiatedParams = new NegotiatedParams();
  seen: u64 = 0; // keys the initiator has offered or declared (bit KeyId)
  leading: bool = true; // the leading connection of its session (TSIH 0 in the login)
  maxBurstCap: u32 = 0; // the MaxBurstLength result of the text being negotiated, 0 when not offered there
  maxRecvDeclared: bool = false; // our MaxRecvDataSegmentLength has been declared
  failStatus: u32 = LOGIN_SUCCESS; // why the last negotiation failed the login (LOGIN_*)
  // A SendTargets request of the last Text Request (keysTextRequest), copied out of the request's buffer.
  readonly sendTargetsValue: usize = carve(VALUE_BYTES_MAX + 1);
  sendTargetsValueBytes: u32 = 0;

  /** Back to the defaults, for a new login. */
  reset(leading: bool): void {
    this.params.reset();
    this.seen = 0;
    this.leading = leading;
    this.maxBurstCap = 0;
    this.maxRecvDeclared = false;
    this.failStatus = LOGIN_SUCCESS;
    this.sendTargetsValueBytes = 0;
  }

  @inline discovery(): bool { return this.params.sessionType == SessionType.Discovery; }

  /** Records that the initiator sent `key`; false if it already had (a protocol error). */
  see(key: KeyId): bool {
    const bit = (<u64>1) << <u64>key;
    if ((this.seen & bit) != 0) return false;
    this.seen |= bit;
    return true;
  }

  @inline saw(key: KeyId): bool { return (this.seen & ((<u64>1) << <u64>key)) != 0; }

  fail(status: u32): bool {
    this.failStatus = status;
    return false;
  }
}

/**
 * Looks ahead in the text about to be negotiated for a MaxBurstLength offer, so that FirstBurstLength, wherever it
 * comes, is answered no larger than the MaxBurstLength result (RFC 7143: FirstBurstLength MUST NOT exceed it).
 */
export function negotiationPrescan(n: Negotiation, text: usize, textBytes: u32, cursor: TextCursor): void {
  n.maxBurstCap = 0;
  cursor.reset(text, textBytes);
  for (let guard: u32 = 0; guard <= textBytes; guard++) {
    const item = cursor.next();
    if (item == TextItem.End || item == TextItem.Unterminated) break;
    if (item != TextItem.Pair || !bytesIs(cursor.keyPtr, cursor.keyBytes, "MaxBurstLength")) continue;
    const offer = parseNumber(cursor.valuePtr, cursor.valueBytes);
    if (offer >= <u64>DATA_SEGMENT_LENGTH_MIN && offer <= <u64>DATA_SEGMENT_LENGTH_MAX) {
      n.maxBurstCap = min(<u32>offer, negotiationLimits.maxBurstLength);
    }
    break;
  }
}

/**
 * Negotiates one operational key the initiator offered during login (not a security or identity key: login.ts
 * handles those), writing the answer, if any, to `out`. False when the login must fail: n.failStatus says why.
 * The caller has already checked the key's stage and recorded it with n.see().
 */
export function negotiateOperationalKey(n: Negotiation, key: KeyId, value: usize, valueBytes: u32, out: TextWriter): bool {
  const flags = keyFlags(key);
  assert((flags & (KEY_AUTH | KEY_IDENTITY)) == 0, "negotiateOperationalKey: identity and authentication keys are login's");
  if (valueIsReserved(value, valueBytes)) return n.fail(LOGIN_INITIATOR_ERROR);
  if ((flags & (KEY_TARGET_SENDS | KEY_OBSOLETE)) != 0) return answer(n, out, key, "Reject");
  if ((flags & KEY_FULL_FEATURE) != 0 && (flags & KEY_OPERATIONAL) == 0) return answer(n, out, key, "Irrelevant");
  if ((flags & KEY_DISCOVERY_IRRELEVANT) != 0 && n.discovery()) return answer(n, out, key, "Irrelevant");
  if ((flags & KEY_LEADING_ONLY) != 0 && !n.leading) return answer(n, out, key, "Irrelevant");
  if (valueBytes > VALUE_BYTES_MAX) return answer(n, out, key, "Reject");
  const p = n.params;
  const l = negotiationLimits;
  switch (key) {
    case KeyId.HeaderDigest: return negotiateDigest(n, out, key, value, valueBytes, l.headerDigest, true);
    case KeyId.DataDigest: return negotiateDigest(n, out, key, value, valueBytes, l.dataDigest, false);
    case KeyId.MaxConnections: return negotiateNumber(n, out, key, value, valueBytes, 1, 65535, l.maxConnections, false);
    case KeyId.InitialR2T: return negotiateBoolean(n, out, key, value, valueBytes, l.initialR2t, true);
    case KeyId.ImmediateData: return negotiateBoolean(n, out, key, value, valueBytes, l.immediateData, false);
    case KeyId.DataPDUInOrder: return negotiateBoolean(n, out, key, value, valueBytes, l.dataPduInOrder, true);
    case KeyId.DataSequenceInOrder: return negotiateBoolean(n, out, key, value, valueBytes, l.dataSequenceInOrder, true);
    case KeyId.MaxRecvDataSegmentLength: return declareMaxRecv(n, out, value, valueBytes);
    case KeyId.MaxBurstLength:
      return negotiateNumber(n, out, key, value, valueBytes, DATA_SEGMENT_LENGTH_MIN, DATA_SEGMENT_LENGTH_MAX, l.maxBurstLength, false);
    case KeyId.FirstBurstLength: {
      const cap = n.maxBurstCap != 0 ? n.maxBurstCap : p.maxBurstLength;
      return negotiateNumber(n, out, key, value, valueBytes, DATA_SEGMENT_LENGTH_MIN, DATA_SEGMENT_LENGTH_MAX, min(l.firstBurstLength, cap), false);
    }
    case KeyId.DefaultTime2Wait: return negotiateNumber(n, out, key, value, valueBytes, 0, 3600, l.defaultTime2Wait, true);
    case KeyId.DefaultTime2Retain: return negotiateNumber(n, out, key, value, valueBytes, 0, 3600, l.defaultTime2Retain, false);
    case KeyId.MaxOutstandingR2T: return negotiateNumber(n, out, key, value, valueBytes, 1, 65535, l.maxOutstandingR2t, false);
    case KeyId.ErrorRecoveryLevel: return negotiateNumber(n, out, key, value, valueBytes, 0, 2, l.errorRecoveryLevel, false);
    case KeyId.IscsiProtocolLevel: return negotiateNumber(n, out, key, value, valueBytes, 0, 31, l.iscsiProtocolLevel, false);
    case KeyId.TaskReporting: return answer(n, out, key, listHas(value, valueBytes, "RFC3720") ? "RFC3720" : "Reject");
    case KeyId.InitiatorAlias: return true; // declarative: nothing to answer, nothing this target uses
    default: assert(false, "negotiateOperationalKey: not an operational key");
  }
  return false;
}

/** Writes key=text; false (out of resources) when the answer does not fit. */
function answer(n: Negotiation, out: TextWriter, key: KeyId, text: string): bool {
  const mark = out.mark();
  out.s(keyName(key)).s("=").s(text).end();
  return out.commit(mark) ? true : n.fail(LOGIN_OUT_OF_RESOURCES);
}

function answerNumber(n: Negotiation, out: TextWriter, key: KeyId, value: u32): bool {
  const mark = out.mark();
  out.s(keyName(key)).s("=").u64(<u64>value).end();
  return out.commit(mark) ? true : n.fail(LOGIN_OUT_OF_RESOURCES);
}

/** Numerical negotiation: the result is the minimum (or with `maximum`, the maximum) of the offer and ours. */
function negotiateNumber(n: Negotiation, out: TextWriter, key: KeyId, value: usize, valueBytes: u32,
  low: u32, high: u32, ours: u32, maximum: bool): bool {
  assert(ours >= low && ours <= high, "negotiateNumber: our value in range");
  const offer = parseNumber(value, valueBytes);
  if (offer < <u64>low || offer > <u64>high) return answer(n, out, key, "Reject"); // NUMBER_INVALID included
  const result = maximum ? max(<u32>offer, ours) : min(<u32>offer, ours);
  setNumber(n.params, key, result);
  return answerNumber(n, out, key, result);
}

function setNumber(p: NegotiatedParams, key: KeyId, result: u32): void {
  switch (key) {
    case KeyId.MaxConnections: p.maxConnections = result; break;
    case KeyId.MaxBurstLength: p.maxBurstLength = result; break;
    case KeyId.FirstBurstLength: p.firstBurstLength = result; break;
    case KeyId.DefaultTime2Wait: p.defaultTime2Wait = result; break;
    case KeyId.DefaultTime2Retain: p.defaultTime2Retain = result; break;
    case KeyId.MaxOutstandingR2T: p.maxOutstandingR2t = result; break;
    case KeyId.ErrorRecoveryLevel: p.errorRecoveryLevel = result; break;
    case KeyId.IscsiProtocolLevel: p.iscsiProtocolLevel = result; break;
    default: assert(false, "setNumber: not a numerical key");
  }
}

/** Boolean negotiation: `or` (InitialR2T, DataPDUInOrder, DataSequenceInOrder) or AND (ImmediateData). */
function negotiateBoolean(n: Negotiation, out: TextWriter, key: KeyId, value: usize, valueBytes: u32, ours: bool, or: bool): bool {
  const yes = bytesIs(value, valueBytes, "Yes");
  if (!yes && !bytesIs(value, valueBytes, "No")) return answer(n, out, key, "Reject");
  const result = or ? (yes || ours) : (yes && ours);
  const p = n.params;
  switch (key) {
    case KeyId.InitialR2T: p.initialR2t = result; break;
    case KeyId.ImmediateData: p.immediateData = result; break;
    case KeyId.DataPDUInOrder: p.dataPduInOrder = result; break;
    case KeyId.DataSequenceInOrder: p.dataSequenceInOrder = result; break;
    default: assert(false, "negotiateBoolean: not a boolean key");
  }
  return answer(n, out, key, result ? "Yes" : "No");
}

/** List negotiation: the first of the initiator's values the policy allows; Reject when none. */
function negotiateDigest(n: Negotiation, out: TextWriter, key: KeyId, value: usize, valueBytes: u32,
  policy: DigestPolicy, header: bool): bool {
  let chosen: i32 = -1; // 0 None, 1 CRC32C
  let start: u32 = 0;
  for (let i: u32 = 0; i <= valueBytes && chosen < 0; i++) {
    if (i < valueBytes && load<u8>(value + i) != 0x2c) continue;
    const item = value + start;
    const itemBytes = i - start;
    start = i + 1;
    if (bytesIs(item, itemBytes, "None") && policy != DigestPolicy.Crc32cOnly) chosen = 0;
    else if (bytesIs(item, itemBytes, "CRC32C") && policy != DigestPolicy.NoneOnly) chosen = 1;
  }
  if (chosen < 0) return answer(n, out, key, "Reject");
  if (header) n.params.headerDigest = chosen == 1;
  else n.params.dataDigest = chosen == 1;
  return answer(n, out, key, chosen == 1 ? "CRC32C" : "None");
}

/** Is `item` one of the comma-separated values? */
export function listHas(value: usize, valueBytes: u32, item: string): bool {
  let start: u32 = 0;
  for (let i: u32 = 0; i <= valueBytes; i++) {
    if (i < valueBytes && load<u8>(value + i) != 0x2c) continue;
    if (bytesIs(value + start, i - start, item)) return true;
    start = i + 1;
  }
  return false;
}

/** The initiator's MaxRecvDataSegmentLength: declarative, no answer but Reject for an out-of-range value. */
function declareMaxRecv(n: Negotiation, out: TextWriter, value: usize, valueBytes: u32): bool {
  const offer = parseNumber(value, valueBytes);
  if (offer < <u64>DATA_SEGMENT_LENGTH_MIN || offer > <u64>DATA_SEGMENT_LENGTH_MAX) {
    return answer(n, out, KeyId.MaxRecvDataSegmentLength, "Reject");
  }
  n.params.maxSendDataSegmentLength = <u32>offer;
  return true;
}

/**
 * Declares this target's MaxRecvDataSegmentLength (once per login, in the operational stage): from the next PDU on,
 * the initiator may send data segments that long. Also used by Text exchanges that redeclare it.
 */
export function declareTargetMaxRecv(n: Negotiation, out: TextWriter): bool {
  if (n.maxRecvDeclared) return true;
  n.maxRecvDeclared = true;
  n.params.maxRecvDataSegmentLength = negotiationLimits.maxRecvDataSegmentLength;
  return answerNumber(n, out, KeyId.MaxRecvDataSegmentLength, negotiationLimits.maxRecvDataSegmentLength);
}

/** The answer for a key this target does not know: key=NotUnderstood, the key echoed as sent. */
export function answerNotUnderstood(n: Negotiation, out: TextWriter, keyPtr: usize, keyBytes: u32): bool {
  const mark = out.mark();
  out.bytes(keyPtr, keyBytes).s("=NotUnderstood").end();
  return out.commit(mark) ? true : n.fail(LOGIN_OUT_OF_RESOURCES);
}

// ---- Text Requests in full feature phase ----

export enum TextOutcome {
  Ok = 0, // `out` holds the answers; send them (F=1 unless the engine continues)
  SendTargets = 1, // as Ok, and SendTargets was asked: its value is in n.sendTargetsValue; call sendTargetsWrite
  ProtocolError = 2, // a malformed text or a key sent twice: Reject (protocol error), no Text Response
  OutOfResources = 3, // the answers do not fit `out`: Reject (long op reject) or a smaller exchange
}

/**
 * Answers the keys of one complete Text Request (the engine has joined any C-bit continuations) in full feature
 * phase. Only keys RFC 7143 allows after login are negotiated (MaxRecvDataSegmentLength redeclared, InitiatorAlias,
 * SendTargets); login-only keys are answered Reject, unknown ones NotUnderstood.
 */
export function keysTextRequest(n: Negotiation, text: usize, textBytes: u32, cursor: TextCursor, out: TextWriter): TextOutcome {
  n.seen = 0; // duplicates count within one exchange
  n.sendTargetsValueBytes = 0;
  let sendTargets = false;
  cursor.reset(text, textBytes);
  for (let guard: u32 = 0; guard <= textBytes; guard++) {
    const item = cursor.next();
    if (item == TextItem.End) break;
    if (item == TextItem.NoEquals) {
      if (!answerNotUnderstood(n, out, cursor.keyPtr, cursor.keyBytes)) return TextOutcome.OutOfResources;
      continue;
    }
    if (item != TextItem.Pair) return TextOutcome.ProtocolError;
    const key = keyLookup(cursor.keyPtr, cursor.keyBytes);
    if (key == KeyId.Unknown) {
      if (!answerNotUnderstood(n, out, cursor.keyPtr, cursor.keyBytes)) return TextOutcome.OutOfResources;
      continue;
    }
    if (!n.see(key) || valueIsReserved(cursor.valuePtr, cursor.valueBytes)) return TextOutcome.ProtocolError;
    let ok = true;
    if (key == KeyId.SendTargets) {
      if (cursor.valueBytes > VALUE_BYTES_MAX) ok = answer(n, out, key, "Reject");
      else {
        memory.copy(n.sendTargetsValue, cursor.valuePtr, cursor.valueBytes);
        n.sendTargetsValueBytes = cursor.valueBytes;
        sendTargets = true;
      }
    } else if (key == KeyId.MaxRecvDataSegmentLength) ok = declareMaxRecv(n, out, cursor.valuePtr, cursor.valueBytes);
    else if (key != KeyId.InitiatorAlias) ok = answer(n, out, key, "Reject");
    if (!ok) return TextOutcome.OutOfResources;
  }
  return sendTargets ? TextOutcome.SendTargets : TextOutcome.Ok;
}

// ---- SendTargets (RFC 7143, Appendix C, "SendTargets Operation") ----

export const SEND_TARGETS_DONE: u32 = 0xffff_ffff;
// Where a SendTargets answer resumes: the target index << 8 | the next part of its entry (0 its TargetName, k + 1 its
// address k). A cluster's entry (every board's portals) may not fit one piece, so it can be split between two
// addresses; a piece always holds at least one pair, since MaxRecvDataSegmentLength is at least 512.
const RESUME_PART_BITS: u32 = 8;
const RESUME_PART_MASK: u32 = (1 << RESUME_PART_BITS) - 1;

/**
 * Writes the SendTargets answer for the request recorded in `n` (keysTextRequest), starting at `resume` (0 at first):
 * "TargetName=<name>\0" then "TargetAddress=<portal>\0" for each of its portals (portals.ts: the engine's
 * "address:port,tpgt" text `portal` on a single board; every board's portals on a board of a cluster for a target
 * presenting a partitioned volume, this board's for another), for each target
 * the initiator may log in to. "All" lists every such target (discovery sessions only; a normal session is answered
 * SendTargets=Reject), a target name lists that target, an empty value lists the session's own target
 * (`sessionTarget`; a discovery session has none: Reject). Returns where the next Text Response resumes (a pair is
 * never split), or SEND_TARGETS_DONE.
 */
export function sendTargetsWrite(n: Negotiation, sessionTarget: u32, initiator: usize, initiatorBytes: u32,
  portal: usize, portalBytes: u32, resume: u32, out: TextWriter): u32 {
  const value = n.sendTargetsValue;
  const valueBytes = n.sendTargetsValueBytes;
  const discovery = n.discovery();
  let only = TARGET_NONE;
  if (bytesIs(value, valueBytes, "All")) {
    if (!discovery) { answer(n, out, KeyId.SendTargets, "Reject"); return SEND_TARGETS_DONE; }
  } else if (valueBytes == 0) {
    if (discovery || sessionTarget == TARGET_NONE) { answer(n, out, KeyId.SendTargets, "Reject"); return SEND_TARGETS_DONE; }
    only = sessionTarget;
  } else {
    only = valueBytes <= ISCSI_NAME_BYTES_MAX ? targetConfigFind(value, valueBytes) : TARGET_NONE;
    if (only == TARGET_NONE) return SEND_TARGETS_DONE; // an unknown name: an empty answer
  }
  const count = targetConfigCount();
  let part = resume & RESUME_PART_MASK;
  for (let i = resume >> RESUME_PART_BITS; i < count; i++) {
    if (only != TARGET_NONE && i != only) { part = 0; continue; }
    const t = targetConfigAt(i);
    if (!t.initiatorAllowed(initiator, initiatorBytes)) { part = 0; continue; }
    if (discovery && !targetConfigDiscovery().initiatorAllowed(initiator, initiatorBytes)) { part = 0; continue; }
    const addresses = portalAddressCount(t);
    assert(addresses < RESUME_PART_MASK, "sendTargetsWrite: an entry's parts fit the resume point");
    for (; part <= addresses; part++) {
      const mark = out.mark();
      if (part == 0) out.s("TargetName=").bytes(t.name, t.nameBytes).end();
      else portalAddressWrite(out, t, part - 1, portal, portalBytes);
      if (!out.commit(mark)) {
        out.overflow = false; // the pair waits for the next Text Response
        assert(mark > 0, "sendTargetsWrite: the buffer holds at least one pair");
        return (i << RESUME_PART_BITS) | part;
      }
    }
    part = 0;
  }
  return SEND_TARGETS_DONE;
}
