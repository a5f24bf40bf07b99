// ROD tokens (SPC-4, ROD tokens; SBC-3, POPULATE TOKEN and WRITE USING TOKEN): the table of the tokens this copy
// manager created, carved at boot, and the 512 bytes of each token as an initiator sees them. A token stands for
// block ranges of one logical unit, as ROD type ACCESS UPON REFERENCE: the data is read when WRITE USING TOKEN uses
// it, not when POPULATE TOKEN made it (a virtual disk has no snapshot to hold a point-in-time copy in). A token lives
// until its inactivity timeout passes with no use, or a WRITE USING TOKEN with DEL_TKN deletes it; its slot then
// remembers why (expired, deleted) until a new token takes it. A full table is INSUFFICIENT RESOURCES TO CREATE ROD
// TOKEN at the caller, never a trap: live tokens are not evicted.
//
// Token, 512 bytes: |0-3 ROD TYPE|4-5 -|6-7 ROD TOKEN LENGTH (01F8h)|8-15 COPY MANAGER ROD TOKEN IDENTIFIER|
// |16-47 CREATOR LOGICAL UNIT DESCRIPTOR (identification descriptor E4h: the unit's NAA designator, block length)|
// |48-63 NUMBER OF BYTES REPRESENTED|64-95 -|96-127 DEVICE TYPE SPECIFIC DATA (READ CAPACITY (16) data from byte 8:
// |96-99 LOGICAL BLOCK LENGTH|100 P_TYPE,PROT_EN|101 LBPPBE|102 LBPME,LBPRZ|)|128-511 check bytes|.
// The check bytes are an FNV-1a chain over bytes 0-127: a token is valid only byte for byte as it was made (TOKEN
// CORRUPT otherwise). They detect damage; they are no secret (the firmware has no entropy source).
//
// Table entry, 176 bytes: |0 state u8|1 rangeCount u8|2 lun u16|4 blockBytes u32|8 id u64|16 lastUseNs u64|
// |24 timeoutSeconds u32|28 users u16 (WRITE USING TOKENs running)|30 -|32 blocks u64|40 ranges[8]: lba u64, blocks u64|
// |168-175 -|; the entry and the token's fields are read and written only through the accessors below.
import { clockNowNs } from "../board/wasi";
import { volumeAt } from "../volumes/volume";
import { carve } from "../kernel/carve";
import { getBe16, getBe32, getBe64, putBe16, putBe32, putBe64 } from "./cdb";
import {
  ASC_NO_ADDITIONAL_SENSE, ASC_TOKEN_CORRUPT, ASC_TOKEN_DELETED, ASC_TOKEN_EXPIRED, ASC_TOKEN_INVALID_LENGTH,
  ASC_TOKEN_UNKNOWN, ASC_TOKEN_UNSUPPORTED_TYPE,
} from "./sense";
import { targetDescriptorWrite } from "./target_descriptor";
import { lunNaa } from "./vpd";

export const ROD_TOKEN_BYTES: u32 = 512;
export const ROD_TOKEN_LENGTH: u32 = ROD_TOKEN_BYTES - 8; // ROD TOKEN LENGTH: the bytes after byte 7
// SPC-4, ROD type codes.
export const ROD_TYPE_ACCESS_UPON_REFERENCE: u32 = 0x0001_0000;
export const ROD_TYPE_BLOCK_DEVICE_ZERO: u32 = 0xffff_0001; // SBC-3: the well-known token that reads as zeros

export const ROD_TOKENS_MAX: u32 = 8;
export const ROD_TOKEN_RANGES_MAX: u32 = 8; // MAXIMUM RANGE DESCRIPTORS
export const ROD_TOKEN_BYTES_MAX: u64 = 256 << 20; // MAXIMUM TOKEN TRANSFER SIZE, in bytes
export const ROD_TOKEN_TIMEOUT_DEFAULT_SECONDS: u32 = 60; // DEFAULT INACTIVITY TIMEOUT
export const ROD_TOKEN_TIMEOUT_MAX_SECONDS: u32 = 600; // MAXIMUM INACTIVITY TIMEOUT
export const ROD_TOKEN_NONE: u32 = 0xffff_ffff;

const NS_PER_SECOND: u64 = 1_000_000_000;

// Entry states.
const STATE_FREE: u8 = 0; // never used
const STATE_LIVE: u8 = 1; // usable
const STATE_EXPIRED: u8 = 2; // its inactivity timeout passed: TOKEN EXPIRED
const STATE_DELETED: u8 = 3; // DEL_TKN: TOKEN DELETED

const ENTRY_BYTES: u32 = 176;
const AT_STATE: usize = 0;
const AT_RANGE_COUNT: usize = 1;
const AT_LUN: usize = 2;
const AT_BLOCK_BYTES: usize = 4;
const AT_ID: usize = 8;
const AT_LAST_USE_NS: usize = 16;
const AT_TIMEOUT_SECONDS: usize = 24;
const AT_USERS: usize = 28;
const AT_BLOCKS: usize = 32;
const AT_RANGES: usize = 40;
const RANGE_BYTES: u32 = 16; // |0 lba u64|8 blocks u64|
const AT_RANGE_LBA: usize = 0;
const AT_RANGE_BLOCKS: usize = 8;
const ENTRY_UNUSED_BYTES: u32 = 8; // |168-175|
if (AT_RANGES + ROD_TOKEN_RANGES_MAX * RANGE_BYTES + ENTRY_UNUSED_BYTES != ENTRY_BYTES) ERROR("rod token entry: the ranges and the unused tail end the entry");

@inline function entryState(at: usize): u8 { return load<u8>(at, AT_STATE); }
@inline function entryRangeCount(at: usize): u32 { return <u32>load<u8>(at, AT_RANGE_COUNT); }
@inline function entryLun(at: usize): u32 { return <u32>load<u16>(at, AT_LUN); }
@inline function entryBlockBytes(at: usize): u32 { return load<u32>(at, AT_BLOCK_BYTES); }
@inline function entryId(at: usize): u64 { return load<u64>(at, AT_ID); }
@inline function entryLastUseNs(at: usize): u64 { return load<u64>(at, AT_LAST_USE_NS); }
@inline function entryTimeoutSeconds(at: usize): u32 { return load<u32>(at, AT_TIMEOUT_SECONDS); }
@inline function entryUsers(at: usize): u32 { return <u32>load<u16>(at, AT_USERS); }
@inline function entryBlocks(at: usize): u64 { return load<u64>(at, AT_BLOCKS); }
@inline function entryRange(at: usize, i: u32): usize { return at + AT_RANGES + <usize>i * RANGE_BYTES; }
@inline function entryRangeLba(at: usize, i: u32): u64 { return load<u64>(entryRange(at, i), AT_RANGE_LBA); }
@inline function entryRangeBlocks(at: usize, i: u32): u64 { return load<u64>(entryRange(at, i), AT_RANGE_BLOCKS); }

@inline function entrySetState(at: usize, state: u8): void { store<u8>(at, state, AT_STATE); }
@inline function entrySetRangeCount(at: usize, count: u32): void { store<u8>(at, <u8>count, AT_RANGE_COUNT); }
@inline function entrySetLun(at: usize, lun: u32): void { store<u16>(at, <u16>lun, AT_LUN); }
@inline function entrySetBlockBytes(at: usize, blockBytes: u32): void { store<u32>(at, blockBytes, AT_BLOCK_BYTES); }
@inline function entrySetId(at: usize, id: u64): void { store<u64>(at, id, AT_ID); }
@inline function entrySetLastUseNs(at: usize, atNs: u64): void { store<u64>(at, atNs, AT_LAST_USE_NS); }
@inline function entrySetTimeoutSeconds(at: usize, seconds: u32): void { store<u32>(at, seconds, AT_TIMEOUT_SECONDS); }
@inline function entrySetUsers(at: usize, users: u32): void { store<u16>(at, <u16>users, AT_USERS); }
@inline function entrySetBlocks(at: usize, blocks: u64): void { store<u64>(at, blocks, AT_BLOCKS); }
@inline function entrySetRange(at: usize, i: u32, lba: u64, blocks: u64): void {
  store<u64>(entryRange(at, i), lba, AT_RANGE_LBA);
  store<u64>(entryRange(at, i), blocks, AT_RANGE_BLOCKS);
}

// The token's fields (drawn above) this copy manager reads back or fills in.
const AT_TOKEN_ROD_TYPE: usize = 0;
const AT_TOKEN_LENGTH: usize = 6;
const AT_TOKEN_ID: usize = 8;
const AT_TOKEN_CREATOR: usize = 16;
const AT_TOKEN_BYTES_REPRESENTED_LOW: usize = 56; // the low 64 of NUMBER OF BYTES REPRESENTED's 128 bits (48-63)
const AT_TOKEN_BLOCK_LENGTH: usize = 96; // DEVICE TYPE SPECIFIC DATA: READ CAPACITY (16) data from its byte 8
const AT_TOKEN_LBPPBE: usize = 101;
const AT_TOKEN_LBPME: usize = 102;
const AT_TOKEN_CHECK: usize = 128;
@inline function tokenRodType(token: usize): u32 { return getBe32(token + AT_TOKEN_ROD_TYPE); }
@inline function tokenLength(token: usize): u32 { return getBe16(token + AT_TOKEN_LENGTH); }
@inline function tokenId(token: usize): u64 { return getBe64(token + AT_TOKEN_ID); }

// A block device range descriptor of POPULATE TOKEN's list, 16 bytes: |0-7 LBA|8-11 NUMBER OF LOGICAL BLOCKS|12-15 -|.
const AT_DESCRIPTOR_LBA: usize = 0;
const AT_DESCRIPTOR_BLOCKS: usize = 8;
@inline function descriptorLba(d: usize): u64 { return getBe64(d + AT_DESCRIPTOR_LBA); }
@inline function descriptorBlocks(d: usize): u32 { return getBe32(d + AT_DESCRIPTOR_BLOCKS); }

let entries: usize = 0;
let idNext: u64 = 1;
let refusal: u32 = ASC_NO_ADDITIONAL_SENSE; // why the last rodTokenFind found nothing

export function rodTokensInit(): void {
  entries = carve(ROD_TOKENS_MAX * ENTRY_BYTES, 16);
}

@inline function entryAt(e: u32): usize {
  assert(e < ROD_TOKENS_MAX, "rod token: entry out of range");
  return entries + <usize>e * ENTRY_BYTES;
}

// A live token whose inactivity timeout passed, with no WRITE USING TOKEN running on it, becomes expired.
function expireIfIdle(at: usize, nowNs: u64): void {
  if (entryState(at) != STATE_LIVE || entryUsers(at) != 0) return;
  const idleNs = nowNs - entryLastUseNs(at);
  if (idleNs >= <u64>entryTimeoutSeconds(at) * NS_PER_SECOND) entrySetState(at, STATE_EXPIRED);
}

/**
 * Makes a token for `rangeCount` block device range descriptors (16 bytes each: |0-7 LBA|8-11 NUMBER OF LOGICAL
 * BLOCKS|12-15 -|) at `ranges`, checked by the caller, of logical unit `lun`, living `timeoutSeconds` after its last
 * use. Answers its entry, or ROD_TOKEN_NONE when every entry holds a live token (INSUFFICIENT RESOURCES TO CREATE ROD
 * TOKEN). A free entry is taken first, else the one whose token ended longest ago.
 */
export function rodTokenCreate(lun: u32, ranges: usize, rangeCount: u32, timeoutSeconds: u32): u32 {
  assert(rangeCount <= ROD_TOKEN_RANGES_MAX, "rod token: ranges checked against the limit");
  assert(timeoutSeconds > 0 && timeoutSeconds <= ROD_TOKEN_TIMEOUT_MAX_SECONDS, "rod token: timeout checked");
  const nowNs = clockNowNs();
  let pick = ROD_TOKEN_NONE;
  let pickId: u64 = 0xffff_ffff_ffff_ffff;
  for (let e: u32 = 0; e < ROD_TOKENS_MAX; e++) {
    const at = entryAt(e);
    expireIfIdle(at, nowNs);
    if (entryState(at) == STATE_LIVE || entryUsers(at) != 0) continue; // in use, even when deleted
    const id: u64 = entryState(at) == STATE_FREE ? 0 : entryId(at);
    if (id < pickId) { pick = e; pickId = id; }
  }
  if (pick == ROD_TOKEN_NONE) return ROD_TOKEN_NONE;
  const at = entryAt(pick);
  memory.fill(at, 0, ENTRY_BYTES);
  entrySetState(at, STATE_LIVE);
  entrySetRangeCount(at, rangeCount);
  entrySetLun(at, lun);
  entrySetBlockBytes(at, volumeAt(lun).blockSizeBytes);
  entrySetId(at, idNext);
  idNext += 1;
  entrySetLastUseNs(at, nowNs);
  entrySetTimeoutSeconds(at, timeoutSeconds);
  let blocks: u64 = 0;
  for (let i: u32 = 0; i < rangeCount; i++) {
    const d = ranges + <usize>i * RANGE_BYTES;
    entrySetRange(at, i, descriptorLba(d), <u64>descriptorBlocks(d));
    blocks += <u64>descriptorBlocks(d);
  }
  entrySetBlocks(at, blocks);
  return pick;
}

/** The token of entry `e` (live, or ended: the bytes it had) at `at`, 512 bytes. */
export function rodTokenWrite(e: u32, at: usize): void {
  const entry = entryAt(e);
  assert(entryState(entry) != STATE_FREE, "rod token: writing a token never made");
  const lun = entryLun(entry);
  const blockBytes = entryBlockBytes(entry);
  memory.fill(at, 0, ROD_TOKEN_BYTES);
  putBe32(at + AT_TOKEN_ROD_TYPE, ROD_TYPE_ACCESS_UPON_REFERENCE);
  putBe16(at + AT_TOKEN_LENGTH, ROD_TOKEN_LENGTH);
  putBe64(at + AT_TOKEN_ID, entryId(entry));
  // CREATOR LOGICAL UNIT DESCRIPTOR: as an EXTENDED COPY target descriptor names the unit (copy.ts).
  targetDescriptorWrite(at + AT_TOKEN_CREATOR, lunNaa(lun), blockBytes);
  putBe64(at + AT_TOKEN_BYTES_REPRESENTED_LOW, entryBlocks(entry) * <u64>blockBytes);
  putBe32(at + AT_TOKEN_BLOCK_LENGTH, blockBytes);
  store<u8>(at, <u8>volumeAt(lun).physicalExponent, AT_TOKEN_LBPPBE);
  store<u8>(at, 0x80 | 0x40, AT_TOKEN_LBPME); // LBPME, LBPRZ, as READ CAPACITY (16) says
  checkBytes(at);
}

// Bytes 128-511: FNV-1a over bytes 0-127, then over the previous eight check bytes, eight bytes at a time.
function checkBytes(token: usize): void {
  let h: u64 = 0xcbf2_9ce4_8422_2325;
  for (let i: usize = 0; i < AT_TOKEN_CHECK; i++) h = (h ^ <u64>load<u8>(token + i)) * 0x100_0000_01b3;
  for (let at: usize = AT_TOKEN_CHECK; at < ROD_TOKEN_BYTES; at += 8) {
    putBe64(token + at, h);
    for (let b: u32 = 0; b < 8; b++) h = (h ^ ((h >> (b * 8)) & 0xff)) * 0x100_0000_01b3;
  }
}

/**
 * Finds the live token the 512 bytes at `token` are; answers its entry, or ROD_TOKEN_NONE with the reason in
 * rodTokenRefusal(): UNSUPPORTED TOKEN TYPE (not a type this copy manager makes), INVALID TOKEN LENGTH, TOKEN UNKNOWN
 * (no such identifier here), TOKEN CORRUPT (the identifier's token had other bytes), TOKEN EXPIRED, TOKEN DELETED.
 * `scratch` (512 bytes) holds the token as it was made, for the comparison.
 */
export function rodTokenFind(token: usize, scratch: usize): u32 {
  refusal = ASC_NO_ADDITIONAL_SENSE;
  if (tokenRodType(token) != ROD_TYPE_ACCESS_UPON_REFERENCE) { refusal = ASC_TOKEN_UNSUPPORTED_TYPE; return ROD_TOKEN_NONE; }
  if (tokenLength(token) != ROD_TOKEN_LENGTH) { refusal = ASC_TOKEN_INVALID_LENGTH; return ROD_TOKEN_NONE; }
  const id = tokenId(token);
  const nowNs = clockNowNs();
  for (let e: u32 = 0; e < ROD_TOKENS_MAX; e++) {
    const at = entryAt(e);
    if (entryState(at) == STATE_FREE || entryId(at) != id) continue;
    rodTokenWrite(e, scratch);
    if (memory.compare(scratch, token, ROD_TOKEN_BYTES) != 0) { refusal = ASC_TOKEN_CORRUPT; return ROD_TOKEN_NONE; }
    expireIfIdle(at, nowNs);
    const state = entryState(at);
    if (state == STATE_EXPIRED) { refusal = ASC_TOKEN_EXPIRED; return ROD_TOKEN_NONE; }
    if (state == STATE_DELETED) { refusal = ASC_TOKEN_DELETED; return ROD_TOKEN_NONE; }
    assert(state == STATE_LIVE, "rod token: unknown state");
    return e;
  }
  refusal = ASC_TOKEN_UNKNOWN;
  return ROD_TOKEN_NONE;
}

/** Why the last rodTokenFind answered ROD_TOKEN_NONE (an INVALID TOKEN OPERATION ASC and ASCQ). */
export function rodTokenRefusal(): u32 { return refusal; }

/** True while entry `e` still holds the token with identifier `id` (live or ended), so its bytes can be given. */
export function rodTokenIs(e: u32, id: u64): bool {
  const at = entryAt(e);
  return entryState(at) != STATE_FREE && entryId(at) == id;
}

export function rodTokenId(e: u32): u64 { return entryId(entryAt(e)); }
export function rodTokenLun(e: u32): u32 { return entryLun(entryAt(e)); }
export function rodTokenBlockBytes(e: u32): u32 { return entryBlockBytes(entryAt(e)); }
export function rodTokenBlocks(e: u32): u64 { return entryBlocks(entryAt(e)); }
export function rodTokenRangeCount(e: u32): u32 { return entryRangeCount(entryAt(e)); }
export function rodTokenRangeLba(e: u32, i: u32): u64 {
  assert(i < rodTokenRangeCount(e), "rod token: range out of range");
  return entryRangeLba(entryAt(e), i);
}
export function rodTokenRangeBlocks(e: u32, i: u32): u64 {
  assert(i < rodTokenRangeCount(e), "rod token: range out of range");
  return entryRangeBlocks(entryAt(e), i);
}

/** A WRITE USING TOKEN begins using live token `e`: it does not expire while in use. */
export function rodTokenUseBegin(e: u32): void {
  const at = entryAt(e);
  assert(entryState(at) == STATE_LIVE, "rod token: using a token that is not live");
  entrySetUsers(at, entryUsers(at) + 1);
}

/** The WRITE USING TOKEN that used token `e` (identifier `id`) ended: its inactivity timeout starts again. */
export function rodTokenUseEnd(e: u32, id: u64): void {
  const at = entryAt(e);
  assert(rodTokenIs(e, id) && entryUsers(at) > 0, "rod token: use ended twice");
  entrySetUsers(at, entryUsers(at) - 1);
  entrySetLastUseNs(at, clockNowNs());
}

/** SBC-3, DEL_TKN: the token may not be used again (TOKEN DELETED). */
export function rodTokenDelete(e: u32): void {
  const at = entryAt(e);
  if (entryState(at) == STATE_LIVE) entrySetState(at, STATE_DELETED);
}

/** Live tokens now (for tests and stats). */
export function rodTokensLive(): u32 {
  const nowNs = clockNowNs();
  let count: u32 = 0;
  for (let e: u32 = 0; e < ROD_TOKENS_MAX; e++) {
    const at = entryAt(e);
    expireIfIdle(at, nowNs);
    if (entryState(at) == STATE_LIVE) count += 1;
  }
  return count;
}
