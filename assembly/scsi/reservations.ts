// Reservations per logical unit: RESERVE(6)/RELEASE(6) (SPC-2) and persistent reservations (SPC-4, Persistent
// reservations): registrations, one reservation of the six types, the generation, and the conflict rules.
// Registrations are kept per I_T nexus id; they survive a nexus going away and LU or target resets (SPC-4), but
// not a power cycle (APTPL is not supported: PTPL_C 0). SPC-2 reservations end with their nexus and with resets.
// CRH is 0: RESERVE(6)/RELEASE(6) conflict while any registration exists, and PERSISTENT RESERVE IN/OUT conflict
// while a RESERVE(6) reservation exists.
//
// LUN state, 16 bytes: |0 spc2Holder u16|2 type u8|3 -|4 holder u16|6 -|8 generation u32|12 -|
// Registrant, 16 bytes: |0 inUse u8|1 -|2 nexus u16|4 -|8 key u64|
import { VOLUMES_MAX } from "../cta/volumes";
import { carve } from "../kernel/carve";
import { Access, putBe16, putBe32, putBe64 } from "./cdb";
import { nexusPortName, nexusPortNameBytes, nexusTargetPort } from "./identities";
import { NEXUS_NONE, UA_REGISTRATIONS_PREEMPTED, UA_RESERVATIONS_PREEMPTED, UA_RESERVATIONS_RELEASED, uaSetNexus } from "./nexus";

export const REGISTRANTS_MAX: u32 = 32; // per logical unit
const LUN_BYTES: u32 = 16;
const REGISTRANT_BYTES: u32 = 16;

// SPC-4, Persistent reservations type codes.
export const PR_TYPE_NONE: u32 = 0;
export const PR_WRITE_EXCLUSIVE: u32 = 1;
export const PR_EXCLUSIVE_ACCESS: u32 = 3;
export const PR_WRITE_EXCLUSIVE_REGISTRANTS_ONLY: u32 = 5;
export const PR_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: u32 = 6;
export const PR_WRITE_EXCLUSIVE_ALL_REGISTRANTS: u32 = 7;
export const PR_EXCLUSIVE_ACCESS_ALL_REGISTRANTS: u32 = 8;

// PERSISTENT RESERVE OUT service actions.
export const PR_OUT_REGISTER: u32 = 0;
export const PR_OUT_RESERVE: u32 = 1;
export const PR_OUT_RELEASE: u32 = 2;
export const PR_OUT_CLEAR: u32 = 3;
export const PR_OUT_PREEMPT: u32 = 4;
export const PR_OUT_PREEMPT_AND_ABORT: u32 = 5;
export const PR_OUT_REGISTER_AND_IGNORE: u32 = 6;

/** How a PERSISTENT RESERVE OUT ends; the target turns it into status and sense. */
export enum PrResult {
  Good = 0,
  Conflict = 1, // RESERVATION CONFLICT
  InvalidType = 2, // INVALID FIELD IN CDB, the TYPE field
  InvalidScope = 3, // INVALID FIELD IN CDB, the SCOPE field
  InvalidRelease = 4, // INVALID RELEASE OF PERSISTENT RESERVATION
  InvalidKey = 5, // INVALID FIELD IN PARAMETER LIST, SERVICE ACTION RESERVATION KEY
  NoRoom = 6, // INSUFFICIENT REGISTRATION RESOURCES
}

let lunStates: usize = 0;
let registrants: usize = 0;
// Nexuses a PREEMPT removed, for PREEMPT AND ABORT to abort their tasks.
const preempted = new StaticArray<u16>(REGISTRANTS_MAX);
let preemptedCount: u32 = 0;

export function reservationsInit(): void {
  lunStates = carve(VOLUMES_MAX * LUN_BYTES, 16);
  registrants = carve(VOLUMES_MAX * REGISTRANTS_MAX * REGISTRANT_BYTES, 16);
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) store<u16>(lunAt(lun), <u16>NEXUS_NONE, 0);
}

@inline function lunAt(lun: u32): usize {
  assert(lun < VOLUMES_MAX, "reservations: LUN out of range");
  return lunStates + <usize>lun * LUN_BYTES;
}
@inline function registrantAt(lun: u32, r: u32): usize {
  assert(r < REGISTRANTS_MAX);
  return registrants + (<usize>lun * REGISTRANTS_MAX + r) * REGISTRANT_BYTES;
}

@inline function prType(lun: u32): u32 { return load<u8>(lunAt(lun), 2); }
@inline function prHolder(lun: u32): u32 { return load<u16>(lunAt(lun), 4); }
export function prGeneration(lun: u32): u32 { return load<u32>(lunAt(lun), 8); }
function generationBump(lun: u32): void { store<u32>(lunAt(lun), prGeneration(lun) + 1, 8); }
function reservationSet(lun: u32, type: u32, holder: u32): void {
  store<u8>(lunAt(lun), <u8>type, 2);
  store<u16>(lunAt(lun), <u16>holder, 4);
}

function allRegistrants(type: u32): bool {
  return type == PR_WRITE_EXCLUSIVE_ALL_REGISTRANTS || type == PR_EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
}
function registrantsOnly(type: u32): bool {
  return type == PR_WRITE_EXCLUSIVE_REGISTRANTS_ONLY || type == PR_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY;
}
export function prTypeValid(type: u32): bool {
  return type == PR_WRITE_EXCLUSIVE || type == PR_EXCLUSIVE_ACCESS || type == PR_WRITE_EXCLUSIVE_REGISTRANTS_ONLY
    || type == PR_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY || allRegistrants(type);
}

/** The registrant slot of `nexus` on `lun`, or REGISTRANTS_MAX. */
function registrantFind(lun: u32, nexus: u32): u32 {
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) {
    const at = registrantAt(lun, r);
    if (load<u8>(at, 0) != 0 && <u32>load<u16>(at, 2) == nexus) return r;
  }
  return REGISTRANTS_MAX;
}

/** True when `nexus` holds a registration on any logical unit (its identity must not be given to another port). */
export function prRegistered(nexus: u32): bool {
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) if (registrantFind(lun, nexus) != REGISTRANTS_MAX) return true;
  return false;
}

function registrantCount(lun: u32): u32 {
  let count: u32 = 0;
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) if (load<u8>(registrantAt(lun, r), 0) != 0) count += 1;
  return count;
}

/** True when `nexus` holds the persistent reservation of `lun` (every registrant does, for all-registrants types). */
function prHolds(lun: u32, nexus: u32): bool {
  const type = prType(lun);
  if (type == PR_TYPE_NONE) return false;
  if (allRegistrants(type)) return registrantFind(lun, nexus) != REGISTRANTS_MAX;
  return prHolder(lun) == nexus;
}

/**
 * SPC-4, the tables of commands allowed in the presence of reservations: true when a command of `access` from
 * `nexus` must end with RESERVATION CONFLICT.
 */
export function reservationConflict(lun: u32, nexus: u32, access: Access): bool {
  if (access == Access.Always) return false;
  const spc2 = <u32>load<u16>(lunAt(lun), 0);
  if (access == Access.Persistent) return spc2 != NEXUS_NONE;
  if (access == Access.Reserve) return registrantCount(lun) > 0;
  if (spc2 != NEXUS_NONE) return spc2 != nexus;
  const type = prType(lun);
  if (type == PR_TYPE_NONE || access == Access.Info || prHolds(lun, nexus)) return false;
  const registered = registrantFind(lun, nexus) != REGISTRANTS_MAX;
  const exclusiveAccess = type == PR_EXCLUSIVE_ACCESS || type == PR_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY
    || type == PR_EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
  if ((registrantsOnly(type) || allRegistrants(type)) && registered) return false;
  return access == Access.Write || exclusiveAccess;
}

/** RESERVE(6): false when another nexus holds it (RESERVATION CONFLICT). Reserving again is allowed. */
export function reserve6(lun: u32, nexus: u32): bool {
  const holder = <u32>load<u16>(lunAt(lun), 0);
  if (holder != NEXUS_NONE && holder != nexus) return false;
  store<u16>(lunAt(lun), <u16>nexus, 0);
  return true;
}

/** RELEASE(6): releases the reservation if `nexus` holds it; from anyone else it does nothing (SPC-2). */
export function release6(lun: u32, nexus: u32): void {
  if (<u32>load<u16>(lunAt(lun), 0) == nexus) store<u16>(lunAt(lun), <u16>NEXUS_NONE, 0);
}

/** A logical unit reset ends its RESERVE(6) reservation; persistent reservations stay. */
export function reservationsLunReset(lun: u32): void { store<u16>(lunAt(lun), <u16>NEXUS_NONE, 0); }

/** A nexus gone ends the RESERVE(6) reservations it held. */
export function reservationsNexusLost(nexus: u32): void {
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) release6(lun, nexus);
}

export function spc2Holder(lun: u32): u32 { return load<u16>(lunAt(lun), 0); }

// PERSISTENT RESERVE IN.

/** READ KEYS parameter data at `at` (room for `capacity` bytes); answers its full length (it may not all fit). */
export function prReadKeys(lun: u32, at: usize, capacity: u32): u32 {
  putBe32(at, prGeneration(lun));
  let lengthBytes: u32 = 8;
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) {
    const reg = registrantAt(lun, r);
    if (load<u8>(reg, 0) == 0) continue;
    if (lengthBytes + 8 <= capacity) putBe64(at + lengthBytes, load<u64>(reg, 8));
    lengthBytes += 8;
  }
  putBe32(at + 4, lengthBytes - 8); // ADDITIONAL LENGTH
  return lengthBytes;
}

/** READ RESERVATION parameter data at `at` (24 bytes of room); answers its length, 8 or 24. */
export function prReadReservation(lun: u32, at: usize): u32 {
  memory.fill(at, 0, 24);
  putBe32(at, prGeneration(lun));
  const type = prType(lun);
  if (type == PR_TYPE_NONE) return 8;
  putBe32(at + 4, 16);
  // SPC-4: the all-registrants types report a reservation key of zero.
  if (!allRegistrants(type)) {
    const r = registrantFind(lun, prHolder(lun));
    if (r != REGISTRANTS_MAX) putBe64(at + 8, load<u64>(registrantAt(lun, r), 8));
  }
  store<u8>(at + 21, <u8>type); // SCOPE 0h (LU_SCOPE), TYPE
  return 24;
}

// SPC-4, READ FULL STATUS descriptor, 24 bytes and a TransportID: |0-7 RESERVATION KEY|8-11 -|12 ALL_TG_PT,R_HOLDER|
// 13 SCOPE,TYPE|14-17 -|18-19 RELATIVE TARGET PORT IDENTIFIER|20-23 ADDITIONAL DESCRIPTOR LENGTH|24- TransportID|
// The TransportID is iSCSI's (protocol identifier 5h) initiator port form, format 01b: |0 FORMAT CODE,PROTOCOL
// IDENTIFIER|1 -|2-3 ADDITIONAL LENGTH|4- "name,i,0xISID", null-terminated, padded with zeros to a multiple of 4|.
// A nexus the transport never named (identities.ts) gets format 00b with an empty name, 24 bytes.
const FULL_STATUS_DESCRIPTOR_BYTES: u32 = 24;
const TRANSPORT_ID_BYTES_MIN: u32 = 24;

function transportIdBytes(nexus: u32): u32 {
  const nameBytes = nexusPortNameBytes(nexus);
  return nameBytes == 0 ? TRANSPORT_ID_BYTES_MIN : max(TRANSPORT_ID_BYTES_MIN, 4 + ((nameBytes + 1 + 3) & ~3));
}

/**
 * READ FULL STATUS parameter data at `at`: one descriptor per registrant, while they fit in `capacity`; answers
 * the length of all of it (which may be more than was written, as ADDITIONAL LENGTH says).
 */
export function prReadFullStatus(lun: u32, at: usize, capacity: u32): u32 {
  putBe32(at, prGeneration(lun));
  const type = prType(lun);
  let lengthBytes: u32 = 8;
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) {
    const reg = registrantAt(lun, r);
    if (load<u8>(reg, 0) == 0) continue;
    const nexus = <u32>load<u16>(reg, 2);
    const idBytes = transportIdBytes(nexus);
    const descriptorBytes = FULL_STATUS_DESCRIPTOR_BYTES + idBytes;
    if (lengthBytes + descriptorBytes <= capacity) {
      const d = at + lengthBytes;
      memory.fill(d, 0, descriptorBytes);
      putBe64(d, load<u64>(reg, 8));
      if (prHolds(lun, nexus)) {
        store<u8>(d + 12, 0x01); // R_HOLDER
        store<u8>(d + 13, <u8>type); // SCOPE 0h (LU_SCOPE), TYPE
      }
      putBe16(d + 18, nexusTargetPort(nexus)); // RELATIVE TARGET PORT IDENTIFIER
      putBe32(d + 20, idBytes);
      const nameBytes = nexusPortNameBytes(nexus);
      store<u8>(d + 24, nameBytes == 0 ? 0x05 : 0x45); // FORMAT CODE 00b or 01b, PROTOCOL IDENTIFIER 5h (iSCSI)
      putBe16(d + 26, idBytes - 4); // ADDITIONAL LENGTH
      if (nameBytes > 0) memory.copy(d + 28, nexusPortName(nexus), nameBytes);
    }
    lengthBytes += descriptorBytes;
  }
  putBe32(at + 4, lengthBytes - 8); // ADDITIONAL LENGTH
  return lengthBytes;
}

/** REPORT CAPABILITIES parameter data (8 bytes) at `at`. */
export function prReportCapabilities(at: usize): u32 {
  memory.fill(at, 0, 8);
  putBe16(at, 8); // LENGTH
  store<u8>(at + 2, 0x00); // RLR_C 0, CRH 0, SIP_C 0, ATP_C 0, PTPL_C 0
  store<u8>(at + 3, 0x80); // TMV: the type mask is valid; ALLOW COMMANDS 000b; PTPL_A 0
  store<u8>(at + 4, 0x80 | 0x40 | 0x20 | 0x08 | 0x02); // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  store<u8>(at + 5, 0x01); // EX_AC_AR
  return 8;
}

// PERSISTENT RESERVE OUT.

export function prPreemptedCount(): u32 { return preemptedCount; }
export function prPreemptedAt(i: u32): u32 { assert(i < preemptedCount); return unchecked(preempted[i]); }

/**
 * One PERSISTENT RESERVE OUT service action (SPC-4, PERSISTENT RESERVE OUT service actions) from `nexus` with the
 * parameter list's RESERVATION KEY `key` and SERVICE ACTION RESERVATION KEY `saKey`; scope and type are the CDB's.
 * Unit attentions for the other nexuses are raised here; nexuses a PREEMPT removed are left in prPreemptedAt.
 */
export function prOut(lun: u32, nexus: u32, action: u32, scope: u32, type: u32, key: u64, saKey: u64): PrResult {
  preemptedCount = 0;
  const r = registrantFind(lun, nexus);
  const registered = r != REGISTRANTS_MAX;
  if (action == PR_OUT_REGISTER_AND_IGNORE) return prRegister(lun, nexus, r, saKey);
  // Every other action needs the caller's key to match its registration (none: zero).
  const registeredKey: u64 = registered ? load<u64>(registrantAt(lun, r), 8) : 0;
  if (action == PR_OUT_REGISTER) {
    if (key != registeredKey) return PrResult.Conflict;
    return prRegister(lun, nexus, r, saKey);
  }
  if (!registered || key != registeredKey) return PrResult.Conflict;
  switch (action) {
    case PR_OUT_RESERVE: return prReserve(lun, nexus, scope, type);
    case PR_OUT_RELEASE: return prRelease(lun, nexus, scope, type);
    case PR_OUT_CLEAR: return prClear(lun, nexus);
    case PR_OUT_PREEMPT: case PR_OUT_PREEMPT_AND_ABORT: return prPreempt(lun, nexus, scope, type, saKey);
    default: assert(false, "prOut: service action checked by the caller"); return PrResult.Good;
  }
}

// REGISTER and REGISTER AND IGNORE EXISTING KEY, once the key has been checked: a zero key unregisters.
function prRegister(lun: u32, nexus: u32, r: u32, saKey: u64): PrResult {
  if (r == REGISTRANTS_MAX) {
    if (saKey == 0) return PrResult.Good; // nothing to register, nothing to remove
    for (let f: u32 = 0; f < REGISTRANTS_MAX; f++) {
      const at = registrantAt(lun, f);
      if (load<u8>(at, 0) != 0) continue;
      store<u8>(at, 1, 0);
      store<u16>(at, <u16>nexus, 2);
      store<u64>(at, saKey, 8);
      generationBump(lun);
      return PrResult.Good;
    }
    return PrResult.NoRoom;
  }
  if (saKey != 0) {
    store<u64>(registrantAt(lun, r), saKey, 8);
    generationBump(lun);
    return PrResult.Good;
  }
  registrantRemove(lun, r);
  generationBump(lun);
  return PrResult.Good;
}

// Removes a registration. If it made its nexus lose the reservation, the reservation ends (for the all-registrants
// types, with the last registrant), with RESERVATIONS RELEASED to the others for the registrants-only types.
function registrantRemove(lun: u32, r: u32): void {
  const at = registrantAt(lun, r);
  const nexus = <u32>load<u16>(at, 2);
  const type = prType(lun);
  store<u8>(at, 0, 0);
  if (type == PR_TYPE_NONE) return;
  if (allRegistrants(type)) {
    if (registrantCount(lun) == 0) reservationSet(lun, PR_TYPE_NONE, NEXUS_NONE);
    return;
  }
  if (prHolder(lun) != nexus) return;
  reservationSet(lun, PR_TYPE_NONE, NEXUS_NONE);
  if (registrantsOnly(type)) raiseForRegistrants(lun, nexus, UA_RESERVATIONS_RELEASED);
}

function raiseForRegistrants(lun: u32, exceptNexus: u32, condition: u32): void {
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) {
    const at = registrantAt(lun, r);
    if (load<u8>(at, 0) == 0 || <u32>load<u16>(at, 2) == exceptNexus) continue;
    uaSetNexus(load<u16>(at, 2), lun, condition);
  }
}

function prReserve(lun: u32, nexus: u32, scope: u32, type: u32): PrResult {
  if (scope != 0) return PrResult.InvalidScope;
  if (!prTypeValid(type)) return PrResult.InvalidType;
  const current = prType(lun);
  if (current == PR_TYPE_NONE) {
    reservationSet(lun, type, allRegistrants(type) ? NEXUS_NONE : nexus);
    return PrResult.Good;
  }
  // Reserving again with the same type is allowed to the holder; anything else conflicts.
  return prHolds(lun, nexus) && current == type ? PrResult.Good : PrResult.Conflict;
}

function prRelease(lun: u32, nexus: u32, scope: u32, type: u32): PrResult {
  const current = prType(lun);
  if (current == PR_TYPE_NONE || !prHolds(lun, nexus)) return PrResult.Good; // SPC-4: nothing to release
  if (scope != 0 || type != current) return PrResult.InvalidRelease;
  reservationSet(lun, PR_TYPE_NONE, NEXUS_NONE);
  if (registrantsOnly(current) || allRegistrants(current)) raiseForRegistrants(lun, nexus, UA_RESERVATIONS_RELEASED);
  return PrResult.Good;
}

function prClear(lun: u32, nexus: u32): PrResult {
  raiseForRegistrants(lun, nexus, UA_RESERVATIONS_PREEMPTED);
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) store<u8>(registrantAt(lun, r), 0, 0);
  reservationSet(lun, PR_TYPE_NONE, NEXUS_NONE);
  generationBump(lun);
  return PrResult.Good;
}

// PREEMPT (SPC-4, Preempting): removes the registrations with key saKey and, when they include the reservation
// holder (or saKey is zero under an all-registrants reservation), gives the reservation to the preempting nexus.
function prPreempt(lun: u32, nexus: u32, scope: u32, type: u32, saKey: u64): PrResult {
  const current = prType(lun);
  const takesReservation = current != PR_TYPE_NONE
    && (allRegistrants(current) ? saKey == 0 : holderKey(lun) == saKey);
  if (takesReservation) {
    if (scope != 0) return PrResult.InvalidScope;
    if (!prTypeValid(type)) return PrResult.InvalidType;
  } else if (saKey == 0) {
    return PrResult.InvalidKey;
  }
  let removed: u32 = 0;
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) {
    const at = registrantAt(lun, r);
    const other = <u32>load<u16>(at, 2);
    if (load<u8>(at, 0) == 0 || other == nexus) continue;
    if (!(takesReservation && allRegistrants(current)) && load<u64>(at, 8) != saKey) continue;
    store<u8>(at, 0, 0);
    uaSetNexus(other, lun, UA_REGISTRATIONS_PREEMPTED);
    assert(preemptedCount < REGISTRANTS_MAX);
    unchecked(preempted[preemptedCount] = <u16>other);
    preemptedCount += 1;
    removed += 1;
  }
  if (!takesReservation) {
    if (removed == 0) return PrResult.Conflict; // SPC-4: no registration had that key
    if (current != PR_TYPE_NONE && allRegistrants(current) && registrantCount(lun) == 0) {
      reservationSet(lun, PR_TYPE_NONE, NEXUS_NONE);
    }
    generationBump(lun);
    return PrResult.Good;
  }
  // The preempting nexus now holds the reservation; if its type changed, the remaining registrants hear of it.
  reservationSet(lun, type, allRegistrants(type) ? NEXUS_NONE : nexus);
  if (type != current) raiseForRegistrants(lun, nexus, UA_RESERVATIONS_RELEASED);
  generationBump(lun);
  return PrResult.Good;
}

function holderKey(lun: u32): u64 {
  const r = registrantFind(lun, prHolder(lun));
  return r == REGISTRANTS_MAX ? 0 : load<u64>(registrantAt(lun, r), 8);
}
