// Persistent reservations through power loss (SPC-4, Preserving persistent reservations and registrations): when the
// last valid APTPL bit a logical unit received is one, its registrations and reservation are kept in the board's
// NVRAM (board/nvram.ts) and restored at the next boot; when it is zero, a power cycle loses them. A PERSISTENT
// RESERVE OUT that changes such a unit's state (or turns APTPL off) is answered only after its record is durable.
//
// NVRAM layout: per volume (the SCSI target's logical unit number), two copies of PR_RECORD_COPY_BYTES, copy 0 of
// volume v at v × 2 × PR_RECORD_COPY_BYTES. A record is written whole to the copy that does not hold the newest
// valid one, with a higher sequence, then SYNC: a write torn by a power cut leaves the other copy, the state before
// that command, which was never answered. At boot the valid copy of higher sequence wins; a copy that is not blank
// but fails a check is refused with a console line naming the volume, the copy and the check.
//
// Record, little-endian, a multiple of 8 bytes, checked by FNV-1a 64 over its 8-byte words with the checksum read as 0:
//   header, 64 bytes: |0 magic u32 "WPRR"|4 version u16 (1)|6 entryCount u16|8 sequence u64|16 recordBytes u32|
//   |20 type u8|21 holder u8 (entry index; 0xFF none)|22 aptpl u8|23 nameBytes u8|24 volume name[32]|56 checksum u64|
//   entry: |0 key u64|8 flags u8 (bit 0 ALL_TG_PT, bit 1 an initiator device's name)|9 -|10 targetPort u16|
//   |12 nameBytes u16|14 -|16 the initiator port's (or device's) name, zero-padded to a multiple of 8|
// The name is what identities.ts holds ("InitiatorName,i,0xISID"), so an initiator that logs in after the restart
// finds its registration again. The PR generation is not kept: SPC-4 sets it to zero at power on.
import { nvramBoot, nvramRead64, nvramSizeBytes, nvramSync, nvramWrite64 } from "../board/nvram";
import { carve } from "../kernel/carve";
import { line } from "../kernel/console";
import { VOLUME_NAME_BYTES_MAX, VOLUMES_MAX, volumeAt, volumesCount } from "../volumes/volume";
import { nexusIdentify, nexusIdentityRelease, nexusIsDevice, nexusPortName, nexusPortNameBytes, nexusTargetPort, PORT_NAME_BYTES_MAX } from "./identities";
import { NEXUS_NONE } from "./nexus";
import {
  PR_EXCLUSIVE_ACCESS_ALL_REGISTRANTS, PR_REGISTRANT_NONE, PR_TYPE_NONE, PR_WRITE_EXCLUSIVE_ALL_REGISTRANTS, prAptpl, prRegistrantAllTargetPorts, prRegistrantInUse, prRegistrantKey, prRegistrantNexus,
  prReservationHolder, prReservationType, prRestoreRegistrant, prRestoreReservation, prTypeValid, REGISTRANTS_MAX,
  reservationsPersistCapable,
} from "./reservations";

export const PR_RECORD_COPY_BYTES: u32 = 16384;
export const PR_RECORD_MAGIC: u32 = 0x5252_5057; // "WPRR"
export const PR_RECORD_VERSION: u32 = 1;
export const PR_RECORD_HEADER_BYTES: u32 = 64;
export const PR_RECORD_ENTRY_HEADER_BYTES: u32 = 16;
export const PR_RECORD_NVRAM_BYTES: u32 = VOLUMES_MAX * 2 * PR_RECORD_COPY_BYTES;
const AT_MAGIC: usize = 0;
const AT_VERSION: usize = 4;
const AT_ENTRY_COUNT: usize = 6;
const AT_SEQUENCE: usize = 8;
const AT_RECORD_BYTES: usize = 16;
const AT_TYPE: usize = 20;
const AT_HOLDER: usize = 21;
const AT_APTPL: usize = 22;
const AT_NAME_BYTES: usize = 23;
const AT_NAME: usize = 24;
const AT_CHECKSUM: usize = 56;
const ENTRY_AT_KEY: usize = 0;
const ENTRY_AT_FLAGS: usize = 8;
const ENTRY_AT_TARGET_PORT: usize = 10;
const ENTRY_AT_NAME_BYTES: usize = 12;
const ENTRY_FLAG_ALL_TARGET_PORTS: u8 = 0x01;
const ENTRY_FLAG_DEVICE: u8 = 0x02;
const HOLDER_NONE: u32 = 0xff;
const COPY_NONE: u32 = 0xff;
// The longest record fits a copy: every registration with the longest name.
if (PR_RECORD_HEADER_BYTES + REGISTRANTS_MAX * (PR_RECORD_ENTRY_HEADER_BYTES + PORT_NAME_BYTES_MAX) > PR_RECORD_COPY_BYTES) {
  ERROR("a persistent reservation record must fit its copy");
}
if (VOLUME_NAME_BYTES_MAX > 32) ERROR("a volume name fits the record header's 32 bytes");

/** What a copy read at boot turned out to be. */
enum CopyCheck {
  Valid = 0,
  Blank = 1, // never written: all zeros where the magic is
  BadMagic = 2,
  BadVersion = 3,
  BadLength = 4, // recordBytes or an entry's length does not fit
  BadChecksum = 5,
  BadField = 6, // a type, holder or name the record cannot hold
}

let available = false;
let staging: usize = 0; // one record, built here before it is stored, or read here at boot
const sequences = new StaticArray<u64>(VOLUMES_MAX); // the newest record's sequence, per volume
const activeCopies = new StaticArray<u8>(VOLUMES_MAX); // the copy holding it, COPY_NONE for none
const restoring = new StaticArray<u16>(REGISTRANTS_MAX); // the identities of the record being restored
let savedCount: u64 = 0;
let saveFailedCount: u64 = 0;

/**
 * Boot, after reservationsInit and identitiesInit, with the volume table configured: finds the NVRAM and restores
 * every volume's valid record whose APTPL was one. Without an NVRAM (or one too small) APTPL is refused (PTPL_C 0).
 */
export function prRecordsBoot(): void {
  staging = carve(PR_RECORD_COPY_BYTES, 16);
  for (let v: u32 = 0; v < VOLUMES_MAX; v++) unchecked(activeCopies[v] = <u8>COPY_NONE);
  if (!nvramBoot()) return;
  if (nvramSizeBytes() < PR_RECORD_NVRAM_BYTES) {
    line().s("pr: the NVRAM holds ").u32(nvramSizeBytes() / 1024).s(" KiB, the persistent reservation records need ")
      .u32(PR_RECORD_NVRAM_BYTES / 1024).s(" KiB: APTPL is refused").err();
    return;
  }
  available = true;
  reservationsPersistCapable(true);
  const count = volumesCount();
  for (let lun: u32 = 0; lun < count; lun++) loadRecord(lun);
}

/** True when an NVRAM keeps the records (APTPL may be one). */
export function prRecordsAvailable(): bool { return available; }
export function prRecordsSavedCount(): u64 { return savedCount; }
export function prRecordsSaveFailedCount(): u64 { return saveFailedCount; }

@inline function copyOffset(lun: u32, copy: u32): u32 {
  assert(lun < VOLUMES_MAX && copy < 2, "pr_record: copy out of range");
  return (lun * 2 + copy) * PR_RECORD_COPY_BYTES;
}

/** FNV-1a 64 over the record's `recordBytes` at `at` in 8-byte words, the checksum word read as zero. */
export function prRecordChecksum(at: usize, recordBytes: u32): u64 {
  let h: u64 = 0xcbf2_9ce4_8422_2325;
  for (let i: usize = 0; i < <usize>recordBytes; i += 8) {
    const word = i == AT_CHECKSUM ? <u64>0 : load<u64>(at + i);
    h = (h ^ word) * 0x0000_0100_0000_01b3;
  }
  return h;
}

@inline function entryBytes(nameBytes: u32): u32 { return PR_RECORD_ENTRY_HEADER_BYTES + ((nameBytes + 7) & ~7); }

/**
 * Stores `lun`'s state (its registrations, its reservation and APTPL) as a new record and makes it durable. False
 * when the NVRAM did not read back what was stored (the caller answers HARDWARE ERROR); the old copy stays valid.
 */
export function prRecordSave(lun: u32): bool {
  assert(available, "pr_record: save without an NVRAM");
  const recordBytes = build(lun, unchecked(sequences[lun]) + 1);
  const active = <u32>unchecked(activeCopies[lun]);
  const copy: u32 = active == 0 ? 1 : 0;
  const base = copyOffset(lun, copy);
  for (let i: u32 = 0; i < recordBytes; i += 8) nvramWrite64(base + i, load<u64>(staging + i));
  nvramSync();
  for (let i: u32 = 0; i < recordBytes; i += 8) {
    if (nvramRead64(base + i) != load<u64>(staging + i)) {
      saveFailedCount += 1;
      line().s("pr: volume ").u32(lun).s(": the NVRAM did not keep record copy ").u32(copy).s(" (byte ").u32(i).s(")").err();
      return false;
    }
  }
  unchecked(sequences[lun] = load<u64>(staging + AT_SEQUENCE));
  unchecked(activeCopies[lun] = <u8>copy);
  savedCount += 1;
  return true;
}

// Builds `lun`'s record in the staging buffer; answers its length. With APTPL zero it holds no registrations: a
// power cycle is to lose them.
function build(lun: u32, sequence: u64): u32 {
  memory.fill(staging, 0, PR_RECORD_HEADER_BYTES);
  const aptpl = prAptpl(lun);
  const holder = prReservationHolder(lun);
  let at: u32 = PR_RECORD_HEADER_BYTES;
  let count: u32 = 0;
  let holderEntry: u32 = HOLDER_NONE;
  for (let r: u32 = 0; aptpl && r < REGISTRANTS_MAX; r++) {
    if (!prRegistrantInUse(lun, r)) continue;
    const nexus = prRegistrantNexus(lun, r);
    const nameBytes = nexusPortNameBytes(nexus);
    if (nameBytes == 0) continue; // a nexus its transport never named: nothing could find it again after a restart
    const entry = staging + at;
    const bytes = entryBytes(nameBytes);
    memory.fill(entry, 0, bytes);
    store<u64>(entry + ENTRY_AT_KEY, prRegistrantKey(lun, r));
    const flags = (prRegistrantAllTargetPorts(lun, r) ? ENTRY_FLAG_ALL_TARGET_PORTS : 0) | (nexusIsDevice(nexus) ? ENTRY_FLAG_DEVICE : 0);
    store<u8>(entry + ENTRY_AT_FLAGS, flags);
    store<u16>(entry + ENTRY_AT_TARGET_PORT, <u16>nexusTargetPort(nexus));
    store<u16>(entry + ENTRY_AT_NAME_BYTES, <u16>nameBytes);
    if (nameBytes > 0) memory.copy(entry + PR_RECORD_ENTRY_HEADER_BYTES, nexusPortName(nexus), nameBytes);
    if (r == holder) holderEntry = count;
    at += bytes;
    count += 1;
  }
  assert(at <= PR_RECORD_COPY_BYTES, "pr_record: record longer than its copy");
  const v = volumeAt(lun);
  store<u32>(staging + AT_MAGIC, PR_RECORD_MAGIC);
  store<u16>(staging + AT_VERSION, <u16>PR_RECORD_VERSION);
  store<u16>(staging + AT_ENTRY_COUNT, <u16>count);
  store<u64>(staging + AT_SEQUENCE, sequence);
  store<u32>(staging + AT_RECORD_BYTES, at);
  const type = prReservationType(lun);
  const holderKept = holder == PR_REGISTRANT_NONE || holderEntry != HOLDER_NONE; // not an unnamed nexus's
  store<u8>(staging + AT_TYPE, <u8>(aptpl && holderKept ? type : PR_TYPE_NONE));
  store<u8>(staging + AT_HOLDER, <u8>holderEntry);
  store<u8>(staging + AT_APTPL, aptpl ? 1 : 0);
  store<u8>(staging + AT_NAME_BYTES, <u8>v.nameBytes);
  for (let i: u32 = 0; i < v.nameBytes; i++) store<u8>(staging + AT_NAME + i, unchecked(v.name[i]));
  store<u64>(staging + AT_CHECKSUM, prRecordChecksum(staging, at));
  return at;
}

// Boot: reads both copies of `lun`, restores the valid one of higher sequence, and says what it refused.
function loadRecord(lun: u32): void {
  let best: u32 = COPY_NONE;
  let bestSequence: u64 = 0;
  for (let copy: u32 = 0; copy < 2; copy++) {
    const check = readCopy(lun, copy);
    if (check == CopyCheck.Blank) continue;
    if (check != CopyCheck.Valid) {
      refused(lun, copy, check);
      continue;
    }
    const sequence = load<u64>(staging + AT_SEQUENCE);
    if (!nameMatches(lun)) {
      line().s("pr: volume ").u32(lun).s(": NVRAM record copy ").u32(copy).s(" is for volume \"")
        .bytes(staging + AT_NAME, min(<u32>load<u8>(staging + AT_NAME_BYTES), VOLUME_NAME_BYTES_MAX)).s("\": refused").err();
      continue;
    }
    if (best == COPY_NONE || sequence > bestSequence) { best = copy; bestSequence = sequence; }
  }
  if (best == COPY_NONE) return;
  unchecked(sequences[lun] = bestSequence);
  unchecked(activeCopies[lun] = <u8>best);
  const check = readCopy(lun, best);
  assert(check == CopyCheck.Valid, "pr_record: a copy changed while the board booted");
  if (load<u8>(staging + AT_APTPL) == 0) return; // APTPL zero: the power cycle lost the state, as SPC-4 asks
  restore(lun);
}

function refused(lun: u32, copy: u32, check: CopyCheck): void {
  const l = line().s("pr: volume ").u32(lun).s(": NVRAM record copy ").u32(copy).s(" refused: ");
  switch (check) {
    case CopyCheck.BadMagic: l.s("bad magic"); break;
    case CopyCheck.BadVersion: l.s("unknown version"); break;
    case CopyCheck.BadLength: l.s("a length out of range"); break;
    case CopyCheck.BadChecksum: l.s("checksum mismatch"); break;
    case CopyCheck.BadField: l.s("an invalid type, holder or name"); break;
    default: assert(false, "pr_record: refusing a valid copy");
  }
  l.err();
}

function nameMatches(lun: u32): bool {
  const v = volumeAt(lun);
  if (<u32>load<u8>(staging + AT_NAME_BYTES) != v.nameBytes) return false;
  for (let i: u32 = 0; i < v.nameBytes; i++) if (load<u8>(staging + AT_NAME + i) != unchecked(v.name[i])) return false;
  return true;
}

// Reads copy `copy` of `lun` into the staging buffer and checks it whole: header, checksum, every entry.
function readCopy(lun: u32, copy: u32): CopyCheck {
  const base = copyOffset(lun, copy);
  for (let i: u32 = 0; i < PR_RECORD_HEADER_BYTES; i += 8) store<u64>(staging + i, nvramRead64(base + i));
  const magic = load<u32>(staging + AT_MAGIC);
  if (magic == 0) return CopyCheck.Blank;
  if (magic != PR_RECORD_MAGIC) return CopyCheck.BadMagic;
  if (<u32>load<u16>(staging + AT_VERSION) != PR_RECORD_VERSION) return CopyCheck.BadVersion;
  const recordBytes = load<u32>(staging + AT_RECORD_BYTES);
  if (recordBytes < PR_RECORD_HEADER_BYTES || recordBytes > PR_RECORD_COPY_BYTES || recordBytes % 8 != 0) return CopyCheck.BadLength;
  for (let i: u32 = PR_RECORD_HEADER_BYTES; i < recordBytes; i += 8) store<u64>(staging + i, nvramRead64(base + i));
  if (prRecordChecksum(staging, recordBytes) != load<u64>(staging + AT_CHECKSUM)) return CopyCheck.BadChecksum;
  return fieldsCheck(recordBytes);
}

// The checksum holds, so the fields are as written; still, nothing out of range reaches the tables.
function fieldsCheck(recordBytes: u32): CopyCheck {
  const count = <u32>load<u16>(staging + AT_ENTRY_COUNT);
  if (count > REGISTRANTS_MAX) return CopyCheck.BadLength;
  let at: u32 = PR_RECORD_HEADER_BYTES;
  for (let e: u32 = 0; e < count; e++) {
    if (at + PR_RECORD_ENTRY_HEADER_BYTES > recordBytes) return CopyCheck.BadLength;
    const nameBytes = <u32>load<u16>(staging + at + ENTRY_AT_NAME_BYTES);
    if (nameBytes == 0 || nameBytes > PORT_NAME_BYTES_MAX) return CopyCheck.BadField;
    if ((load<u8>(staging + at + ENTRY_AT_FLAGS) & ~(ENTRY_FLAG_ALL_TARGET_PORTS | ENTRY_FLAG_DEVICE)) != 0) return CopyCheck.BadField;
    at += entryBytes(nameBytes);
  }
  if (at != recordBytes) return CopyCheck.BadLength;
  const type = <u32>load<u8>(staging + AT_TYPE);
  const holder = <u32>load<u8>(staging + AT_HOLDER);
  if (type != PR_TYPE_NONE && !prTypeValid(type)) return CopyCheck.BadField;
  if (holder != HOLDER_NONE && holder >= count) return CopyCheck.BadField;
  const holderNeeded = type != PR_TYPE_NONE && type != PR_WRITE_EXCLUSIVE_ALL_REGISTRANTS && type != PR_EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
  if (holderNeeded != (holder != HOLDER_NONE)) return CopyCheck.BadField;
  if (<u32>load<u8>(staging + AT_NAME_BYTES) > VOLUME_NAME_BYTES_MAX || load<u8>(staging + AT_APTPL) > 1) return CopyCheck.BadField;
  return CopyCheck.Valid;
}

// The checked record in the staging buffer becomes `lun`'s registrations (each initiator name entered in the
// identities table, held there by its registration) and reservation. Every name is entered first, held live, so
// none is reused for the next; with no room for all, none is restored.
function restore(lun: u32): void {
  const count = <u32>load<u16>(staging + AT_ENTRY_COUNT);
  const holder = <u32>load<u8>(staging + AT_HOLDER);
  let at: u32 = PR_RECORD_HEADER_BYTES;
  for (let e: u32 = 0; e < count; e++) {
    const entry = staging + at;
    const nameBytes = <u32>load<u16>(entry + ENTRY_AT_NAME_BYTES);
    const device = (load<u8>(entry + ENTRY_AT_FLAGS) & ENTRY_FLAG_DEVICE) != 0;
    const nexus = nexusIdentify(entry + PR_RECORD_ENTRY_HEADER_BYTES, nameBytes, load<u16>(entry + ENTRY_AT_TARGET_PORT), device);
    if (nexus == NEXUS_NONE) {
      line().s("pr: volume ").u32(lun).s(": no room in the identities table for its registrations' names; starting with none").err();
      for (let i: u32 = 0; i < e; i++) nexusIdentityRelease(unchecked(restoring[i]));
      return;
    }
    unchecked(restoring[e] = <u16>nexus);
    at += entryBytes(nameBytes);
  }
  at = PR_RECORD_HEADER_BYTES;
  for (let e: u32 = 0; e < count; e++) {
    const entry = staging + at;
    const nexus = <u32>unchecked(restoring[e]);
    prRestoreRegistrant(lun, e, nexus, (load<u8>(entry + ENTRY_AT_FLAGS) & ENTRY_FLAG_ALL_TARGET_PORTS) != 0, load<u64>(entry + ENTRY_AT_KEY));
    nexusIdentityRelease(nexus); // no session uses it yet; the registration keeps the name from reuse
    at += entryBytes(<u32>load<u16>(entry + ENTRY_AT_NAME_BYTES));
  }
  const type = <u32>load<u8>(staging + AT_TYPE);
  prRestoreReservation(lun, type, holder == HOLDER_NONE ? PR_REGISTRANT_NONE : holder);
  line().s("pr: volume ").u32(lun).s(": ").u32(count).s(" registrations and ")
    .s(type == PR_TYPE_NONE ? "no reservation" : "its reservation").s(" restored from the NVRAM (APTPL)").out();
}
