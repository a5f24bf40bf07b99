// The iSCSI targets this processor offers, as the board's configuration describes them: fixed-capacity records in
// static memory, filled at boot (targetConfigAdd and the TargetConfig setters), read by login and discovery.
// Nothing here allocates after the module starts, so tests may also fill it after boot (targetConfigClear, then add).
// Every field is validated when it is set: a configuration the firmware cannot honour is refused, not truncated.
//
// One record, TARGET_RECORD_BYTES:
//   |0 name[224]|224 alias[256]|480 chapUser[256]|736 chapSecret[256]|992 mutualUser[256]|1248 mutualSecret[256]|
//   |1504 allowed initiator names [ALLOWED_INITIATORS_MAX][224]|
// Lengths and LUNs live in the TargetConfig object that owns the record.

import { carve } from "../../kernel/carve";
import { SCSI_LUN_WRITE_PROTECTED } from "../../scsi/interface";

export const TARGETS_MAX: u32 = 8;
export const TARGET_NONE: u32 = 0xffff_ffff;
export const ISCSI_NAME_BYTES_MAX: u32 = 223; // RFC 7143, "iSCSI Names": at most 223 bytes
export const ALIAS_BYTES_MAX: u32 = 255;
export const CHAP_NAME_BYTES_MAX: u32 = 255;
export const CHAP_SECRET_BYTES_MAX: u32 = 255;
export const ALLOWED_INITIATORS_MAX: u32 = 8;
export const TARGET_LUNS_MAX: u32 = 16;
export const TARGET_LUN_MAX: u32 = 16383; // flat space addressing (pdu.ts, lunEncode)

const NAME_SLOT_BYTES: u32 = 224;
const TEXT_SLOT_BYTES: u32 = 256;
const AT_NAME: usize = 0;
const AT_ALIAS: usize = 224;
const AT_CHAP_USER: usize = 480;
const AT_CHAP_SECRET: usize = 736;
const AT_MUTUAL_USER: usize = 992;
const AT_MUTUAL_SECRET: usize = 1248;
const AT_ALLOWED: usize = 1504;
const TARGET_RECORD_BYTES: u32 = 1504 + ALLOWED_INITIATORS_MAX * NAME_SLOT_BYTES;

// One more record than targets: the last holds the discovery session's CHAP settings and allow list. Carved when
// the module starts, before boot: static data would not fit the image's first memory page.
const RECORDS: usize = carve((TARGETS_MAX + 1) * TARGET_RECORD_BYTES, 16);

/** One target (or the discovery settings): fixed-capacity byte fields in its record, lengths here. */
export class TargetConfig {
  readonly name: usize;
  readonly alias: usize;
  readonly chapUser: usize;
  readonly chapSecret: usize;
  readonly mutualUser: usize;
  readonly mutualSecret: usize;
  nameBytes: u32 = 0;
  aliasBytes: u32 = 0;
  chapUserBytes: u32 = 0; // 0: no CHAP, AuthMethod=None
  chapSecretBytes: u32 = 0;
  mutualUserBytes: u32 = 0; // 0: the target cannot authenticate itself, mutual CHAP is refused
  mutualSecretBytes: u32 = 0;
  allowedCount: u32 = 0; // 0: every initiator may log in
  readonly allowedBytes: StaticArray<u32> = new StaticArray<u32>(ALLOWED_INITIATORS_MAX);
  lunCount: u32 = 0;
  readonly luns: StaticArray<u32> = new StaticArray<u32>(TARGET_LUNS_MAX); // LUN numbers the initiator sees
  // What each maps to: the engine's volume, with SCSI_LUN_WRITE_PROTECTED when the LUN is read-only, as the SCSI
  // target takes it in a command's lun (scsi/interface.ts).
  readonly volumes: StaticArray<u32> = new StaticArray<u32>(TARGET_LUNS_MAX);

  constructor(readonly record: usize) {
    this.name = record + AT_NAME;
    this.alias = record + AT_ALIAS;
    this.chapUser = record + AT_CHAP_USER;
    this.chapSecret = record + AT_CHAP_SECRET;
    this.mutualUser = record + AT_MUTUAL_USER;
    this.mutualSecret = record + AT_MUTUAL_SECRET;
  }

  /** Does this target (or discovery) demand CHAP? */
  @inline chapRequired(): bool { return this.chapUserBytes > 0; }

  /** The address of allowed initiator name `index`. */
  allowed(index: u32): usize {
    assert(index < this.allowedCount, "allowed initiator index");
    return this.record + AT_ALLOWED + <usize>index * NAME_SLOT_BYTES;
  }

  /** May the initiator named by the `nameBytes` at `name` log in? Names compare case-insensitively. */
  initiatorAllowed(name: usize, nameBytes: u32): bool {
    if (this.allowedCount == 0) return true;
    for (let i: u32 = 0; i < this.allowedCount; i++) {
      if (bytesEqualIgnoreCase(this.allowed(i), unchecked(this.allowedBytes[i]), name, nameBytes)) return true;
    }
    return false;
  }

  /** Adds an initiator to the allow list; false when the list is full or the name is not an iSCSI name. */
  allowInitiator(name: usize, nameBytes: u32): bool {
    if (this.allowedCount >= ALLOWED_INITIATORS_MAX || !iscsiNameValid(name, nameBytes)) return false;
    memory.copy(this.record + AT_ALLOWED + <usize>this.allowedCount * NAME_SLOT_BYTES, name, nameBytes);
    unchecked(this.allowedBytes[this.allowedCount] = nameBytes);
    this.allowedCount += 1;
    return true;
  }

  /**
   * Maps LUN `lun` to the engine's `volume`, read-only (writes refused with DATA PROTECT) when `readOnly`; false when
   * full, out of range, or the LUN is already mapped.
   */
  addLun(lun: u32, volume: u32, readOnly: bool = false): bool {
    if (this.lunCount >= TARGET_LUNS_MAX || lun > TARGET_LUN_MAX || this.lunIndex(lun) != TARGET_NONE) return false;
    if ((volume & SCSI_LUN_WRITE_PROTECTED) != 0) volume = 0x7fff_ffff; // no such volume: LOGICAL UNIT NOT SUPPORTED
    unchecked(this.luns[this.lunCount] = lun);
    unchecked(this.volumes[this.lunCount] = readOnly ? volume | SCSI_LUN_WRITE_PROTECTED : volume);
    this.lunCount += 1;
    return true;
  }

  /** The index of `lun` in luns/volumes, or TARGET_NONE. */
  lunIndex(lun: u32): u32 {
    for (let i: u32 = 0; i < this.lunCount; i++) if (unchecked(this.luns[i]) == lun) return i;
    return TARGET_NONE;
  }

  /**
   * Sets the CHAP credentials: the initiator's user and secret (one-way), and the target's own for mutual CHAP.
   * Empty user and secret mean none. False (nothing changed) when a user lacks its secret or the reverse, a field is
   * too long, mutual is set without one-way, or both directions share a secret (RFC 7143, CHAP Considerations: a
   * secret that authenticates initiators must not authenticate targets).
   */
  setChap(user: usize, userBytes: u32, secret: usize, secretBytes: u32,
    mutualUser: usize, mutualUserBytes: u32, mutualSecret: usize, mutualSecretBytes: u32): bool {
    if ((userBytes == 0) != (secretBytes == 0) || (mutualUserBytes == 0) != (mutualSecretBytes == 0)) return false;
    if (userBytes > CHAP_NAME_BYTES_MAX || secretBytes > CHAP_SECRET_BYTES_MAX) return false;
    if (mutualUserBytes > CHAP_NAME_BYTES_MAX || mutualSecretBytes > CHAP_SECRET_BYTES_MAX) return false;
    if (mutualUserBytes > 0 && userBytes == 0) return false;
    if (secretBytes > 0 && bytesEqual(secret, secretBytes, mutualSecret, mutualSecretBytes)) return false;
    memory.copy(this.chapUser, user, userBytes);
    memory.copy(this.chapSecret, secret, secretBytes);
    memory.copy(this.mutualUser, mutualUser, mutualUserBytes);
    memory.copy(this.mutualSecret, mutualSecret, mutualSecretBytes);
    this.chapUserBytes = userBytes;
    this.chapSecretBytes = secretBytes;
    this.mutualUserBytes = mutualUserBytes;
    this.mutualSecretBytes = mutualSecretBytes;
    return true;
  }

  clear(): void {
    memory.fill(this.record, 0, TARGET_RECORD_BYTES);
    this.nameBytes = 0;
    this.aliasBytes = 0;
    this.chapUserBytes = 0;
    this.chapSecretBytes = 0;
    this.mutualUserBytes = 0;
    this.mutualSecretBytes = 0;
    this.allowedCount = 0;
    this.lunCount = 0;
  }
}

const targets = new StaticArray<TargetConfig>(TARGETS_MAX);
for (let i: u32 = 0; i < TARGETS_MAX; i++) unchecked(targets[i] = new TargetConfig(RECORDS + <usize>i * TARGET_RECORD_BYTES));
const discovery = new TargetConfig(RECORDS + <usize>TARGETS_MAX * TARGET_RECORD_BYTES);
let targetCount: u32 = 0;

export function targetConfigCount(): u32 { return targetCount; }

export function targetConfigAt(index: u32): TargetConfig {
  assert(index < targetCount, "target index out of range");
  return unchecked(targets[index]);
}

/** The discovery session's settings: CHAP (setChap) and allow list (allowInitiator); its name, alias and LUNs are unused. */
export function targetConfigDiscovery(): TargetConfig { return discovery; }

/**
 * Adds a target at boot from the board's configuration: its iSCSI name, alias, and CHAP credentials as in setChap
 * (lengths 0 for none). Returns its index, or TARGET_NONE (nothing added) when the table is full, the name is not a
 * valid iSCSI name or is taken, or a field is refused. Allowed initiators and LUNs follow through the returned
 * record's allowInitiator and addLun.
 */
export function targetConfigAdd(name: usize, nameBytes: u32, alias: usize, aliasBytes: u32,
  chapUser: usize, chapUserBytes: u32, chapSecret: usize, chapSecretBytes: u32,
  mutualUser: usize, mutualUserBytes: u32, mutualSecret: usize, mutualSecretBytes: u32): u32 {
  if (targetCount >= TARGETS_MAX || !iscsiNameValid(name, nameBytes) || aliasBytes > ALIAS_BYTES_MAX) return TARGET_NONE;
  if (targetConfigFind(name, nameBytes) != TARGET_NONE) return TARGET_NONE;
  const t = unchecked(targets[targetCount]);
  t.clear();
  if (!t.setChap(chapUser, chapUserBytes, chapSecret, chapSecretBytes, mutualUser, mutualUserBytes, mutualSecret, mutualSecretBytes)) {
    return TARGET_NONE;
  }
  memory.copy(t.name, name, nameBytes);
  t.nameBytes = nameBytes;
  memory.copy(t.alias, alias, aliasBytes);
  t.aliasBytes = aliasBytes;
  targetCount += 1;
  return targetCount - 1;
}

/** Forgets every target and the discovery settings (boot, and tests). */
export function targetConfigClear(): void {
  for (let i: u32 = 0; i < TARGETS_MAX; i++) unchecked(targets[i]).clear();
  discovery.clear();
  targetCount = 0;
}

/** The index of the target named by the `nameBytes` at `name` (case-insensitively), or TARGET_NONE. */
export function targetConfigFind(name: usize, nameBytes: u32): u32 {
  for (let i: u32 = 0; i < targetCount; i++) {
    const t = unchecked(targets[i]);
    if (bytesEqualIgnoreCase(t.name, t.nameBytes, name, nameBytes)) return i;
  }
  return TARGET_NONE;
}

// ---- Byte strings ----

export function bytesEqual(a: usize, aBytes: u32, b: usize, bBytes: u32): bool {
  return aBytes == bBytes && memory.compare(a, b, aBytes) == 0;
}

export function bytesEqualIgnoreCase(a: usize, aBytes: u32, b: usize, bBytes: u32): bool {
  if (aBytes != bBytes) return false;
  for (let i: u32 = 0; i < aBytes; i++) {
    if (lowerAscii(<u32>load<u8>(a + i)) != lowerAscii(<u32>load<u8>(b + i))) return false;
  }
  return true;
}

@inline export function lowerAscii(c: u32): u32 { return c >= 0x41 && c <= 0x5a ? c + 0x20 : c; }

/**
 * Is this an iSCSI name (RFC 7143, "iSCSI Names"; RFC 3722 normalises to lower case, so upper case is accepted and
 * compared case-insensitively)? 1..223 bytes of letters, digits, '-', '.', ':', starting "iqn.", "eui." or "naa.".
 */
export function iscsiNameValid(name: usize, nameBytes: u32): bool {
  if (nameBytes < 5 || nameBytes > ISCSI_NAME_BYTES_MAX) return false;
  const p0 = lowerAscii(<u32>load<u8>(name));
  const p1 = lowerAscii(<u32>load<u8>(name, 1));
  const p2 = lowerAscii(<u32>load<u8>(name, 2));
  const dot = <u32>load<u8>(name, 3);
  const prefixOk = dot == 0x2e && ((p0 == 0x69 && p1 == 0x71 && p2 == 0x6e) || // iqn
    (p0 == 0x65 && p1 == 0x75 && p2 == 0x69) || // eui
    (p0 == 0x6e && p1 == 0x61 && p2 == 0x61)); // naa
  if (!prefixOk) return false;
  for (let i: u32 = 4; i < nameBytes; i++) {
    const c = lowerAscii(<u32>load<u8>(name + i));
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2e || c == 0x3a;
    if (!ok) return false;
  }
  return true;
}
