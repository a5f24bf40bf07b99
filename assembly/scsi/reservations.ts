// Reservations per logical unit: RESERVE(6)/RELEASE(6) (SPC-2) and persistent reservations (SPC-4, Persistent
// reservations): registrations, one reservation of the six types, the generation, and the conflict rules.
// Registrations are kept per I_T nexus id; they survive a nexus going away and LU or target resets (SPC-4), and a
// power cycle when the last valid APTPL bit was one and the board has an NVRAM (pr_record.ts keeps them there; PTPL_C
// says whether it can). SPC-2 reservations end with their nexus and with resets.
// CRH is 0: RESERVE(6)/RELEASE(6) conflict while any registration exists, and PERSISTENT RESERVE IN/OUT conflict
// while a RESERVE(6) reservation exists.
//
// A registration covers the I_T nexuses nexusCovers says (identities.ts): its own, or with ALL_TG_PT its initiator
// port at every target port, or (from a format 00b TransportID) every port of an initiator device. One record
// stands for all of them, so a target port added later is covered too; READ FULL STATUS reports it once with
// ALL_TG_PT set (SPC-4 allows that), and READ KEYS lists its key once. The reservation holder is a registration.
//
// LUN state, 16 bytes: |0 spc2Holder u16|2 type u8|3 aptpl u8|4 holder u16 (registrant index)|6 -|8 generation u32|12 -|
// Registrant, 16 bytes: |0 inUse u8|1 flags u8 (REGISTRANT_ALL_TARGET_PORTS)|2 nexus u16|4 -|8 key u64|
// Both are read and written only through the record accessors below (unit… and registrant… on a record's address).
import { VOLUMES_MAX } from "../volumes/volume";
import { carve } from "../kernel/carve";
import { Access, putBe16, putBe32, putBe64 } from "./cdb";
import {
  nexusCovers, nexusIdentify, nexusIdentityRelease, nexusIsDevice, nexusPortName, nexusPortNameBytes, nexusSamePort,
  nexusTargetPort,
} from "./identities";
import {
  NEXUS_MAX, NEXUS_NONE, nexusOfSlot, nexusSlotGone, nexusSlotInUse, UA_REGISTRATIONS_PREEMPTED, UA_RESERVATIONS_PREEMPTED,
  UA_RESERVATIONS_RELEASED, uaSet,
} from "./nexus";
import { BIT_NONE } from "./sense";
import { targetPortPresents } from "./target_luns";
import { localTargetPort, relativeTargetPort } from "./alua";
import {
  TRANSPORT_ID_BYTES_MIN, transportIdDevice, transportIdFieldByte, transportIdInit, transportIdName, transportIdNameBytes,
  transportIdRead,
} from "./transport_id";

export const REGISTRANTS_MAX: u32 = 32; // per logical unit
const REGISTRANT_NONE: u32 = REGISTRANTS_MAX;
export const PR_REGISTRANT_NONE: u32 = REGISTRANT_NONE;
const REGISTRANT_ALL_TARGET_PORTS: u8 = 0x01; // ALL_TG_PT: the initiator port at every target port
const LUN_BYTES: u32 = 16;
const AT_UNIT_SPC2_HOLDER: usize = 0;
const AT_UNIT_TYPE: usize = 2;
const AT_UNIT_APTPL: usize = 3;
const AT_UNIT_HOLDER: usize = 4;
const AT_UNIT_GENERATION: usize = 8;
const UNIT_UNUSED_BYTES: u32 = 4; // |12-15|
if (AT_UNIT_GENERATION + 4 + UNIT_UNUSED_BYTES != LUN_BYTES) ERROR("reservations LUN state: generation and the unused tail end it");
@inline function unitSpc2Holder(at: usize): u32 { return <u32>load<u16>(at, AT_UNIT_SPC2_HOLDER); }
@inline function unitType(at: usize): u32 { return <u32>load<u8>(at, AT_UNIT_TYPE); }
@inline function unitAptpl(at: usize): bool { return load<u8>(at, AT_UNIT_APTPL) != 0; }
@inline function unitHolder(at: usize): u32 { return <u32>load<u16>(at, AT_UNIT_HOLDER); }
@inline function unitGeneration(at: usize): u32 { return load<u32>(at, AT_UNIT_GENERATION); }
@inline function unitSetSpc2Holder(at: usize, nexus: u32): void { store<u16>(at, <u16>nexus, AT_UNIT_SPC2_HOLDER); }
@inline function unitSetType(at: usize, type: u32): void { store<u8>(at, <u8>type, AT_UNIT_TYPE); }
@inline function unitSetAptpl(at: usize, aptpl: bool): void { store<u8>(at, aptpl ? 1 : 0, AT_UNIT_APTPL); }
@inline function unitSetHolder(at: usize, r: u32): void { store<u16>(at, <u16>r, AT_UNIT_HOLDER); }
@inline function unitSetGeneration(at: usize, generation: u32): void { store<u32>(at, generation, AT_UNIT_GENERATION); }

const REGISTRANT_BYTES: u32 = 16;
const AT_REGISTRANT_IN_USE: usize = 0;
const AT_REGISTRANT_FLAGS: usize = 1;
const AT_REGISTRANT_NEXUS: usize = 2;
const AT_REGISTRANT_KEY: usize = 8;
if (AT_REGISTRANT_KEY + 8 != REGISTRANT_BYTES) ERROR("reservations registrant: the key ends it");
@inline function registrantInUse(at: usize): bool { return load<u8>(at, AT_REGISTRANT_IN_USE) != 0; }
@inline function registrantAllTargetPorts(at: usize): bool { return (load<u8>(at, AT_REGISTRANT_FLAGS) & REGISTRANT_ALL_TARGET_PORTS) != 0; }
@inline function registrantNexus(at: usize): u32 { return <u32>load<u16>(at, AT_REGISTRANT_NEXUS); }
@inline function registrantKeyOf(at: usize): u64 { return load<u64>(at, AT_REGISTRANT_KEY); }
@inline function registrantSetUnused(at: usize): void { store<u8>(at, 0, AT_REGISTRANT_IN_USE); }
@inline function registrantSetKey(at: usize, key: u64): void { store<u64>(at, key, AT_REGISTRANT_KEY); }

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
export const PR_OUT_REGISTER_AND_MOVE: u32 = 7;

/** How a PERSISTENT RESERVE OUT ends; the target turns it into status and sense. */
export enum PrResult {
  Good = 0,
  Conflict = 1, // RESERVATION CONFLICT
  InvalidType = 2, // INVALID FIELD IN CDB, the TYPE field
  InvalidScope = 3, // INVALID FIELD IN CDB, the SCOPE field
  InvalidRelease = 4, // INVALID RELEASE OF PERSISTENT RESERVATION
  InvalidKey = 5, // INVALID FIELD IN PARAMETER LIST, SERVICE ACTION RESERVATION KEY
  NoRoom = 6, // INSUFFICIENT REGISTRATION RESOURCES
  InvalidParameter = 7, // INVALID FIELD IN PARAMETER LIST, at prFieldByte/prFieldBit
  NoReservation = 8, // INVALID FIELD IN CDB: REGISTER AND MOVE with no persistent reservation to move
}

let lunStates: usize = 0;
let persistCapable = false; // an NVRAM keeps the state of units whose last APTPL was one (pr_record.ts)
let registrants: usize = 0;
// Nexuses a PREEMPT removed, for PREEMPT AND ABORT to abort their tasks.
const preempted = new StaticArray<u16>(NEXUS_MAX);
let preemptedCount: u32 = 0;
// I_T nexuses a SPEC_I_PT register names, held (nexusIdentify) until it ends, so none is reused under it.
const specified = new StaticArray<u16>(REGISTRANTS_MAX);
let specifiedCount: u32 = 0;
let fieldByte: u32 = 0; // where PrResult.InvalidParameter points, in the parameter list
let backup: usize = 0; // one unit's state and registrants, kept while a PERSISTENT RESERVE OUT may need undoing
let backupLun: u32 = VOLUMES_MAX;
let fieldBit: u32 = BIT_NONE;

export function reservationsInit(): void {
  lunStates = carve(VOLUMES_MAX * LUN_BYTES, 16);
  registrants = carve(VOLUMES_MAX * REGISTRANTS_MAX * REGISTRANT_BYTES, 16);
  backup = carve(LUN_BYTES + REGISTRANTS_MAX * REGISTRANT_BYTES, 16);
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) {
    unitSetSpc2Holder(lunAt(lun), NEXUS_NONE);
    unitSetHolder(lunAt(lun), REGISTRANT_NONE);
  }
  transportIdInit();
}

/** The field a PrResult.InvalidParameter is about: byte of the parameter list, and bit (0xff: the whole byte). */
export function prFieldByte(): u32 { return fieldByte; }
export function prFieldBit(): u32 { return fieldBit; }
function invalidParameter(byteIndex: u32, bitIndex: u32 = BIT_NONE): PrResult {
  fieldByte = byteIndex;
  fieldBit = bitIndex;
  return PrResult.InvalidParameter;
}

@inline function lunAt(lun: u32): usize {
  assert(lun < VOLUMES_MAX, "reservations: LUN out of range");
  return lunStates + <usize>lun * LUN_BYTES;
}
@inline function registrantAt(lun: u32, r: u32): usize {
  assert(r < REGISTRANTS_MAX);
  return registrants + (<usize>lun * REGISTRANTS_MAX + r) * REGISTRANT_BYTES;
}

@inline function prType(lun: u32): u32 { return unitType(lunAt(lun)); }
@inline function prHolder(lun: u32): u32 { return unitHolder(lunAt(lun)); }
export function prGeneration(lun: u32): u32 { return unitGeneration(lunAt(lun)); }
function generationBump(lun: u32): void { unitSetGeneration(lunAt(lun), prGeneration(lun) + 1); }
function reservationSet(lun: u32, type: u32, holder: u32): void { // holder: a registrant index, or REGISTRANT_NONE
  unitSetType(lunAt(lun), type);
  unitSetHolder(lunAt(lun), holder);
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

/** True when registrant `r` of `lun` is in use and covers `nexus`. */
function registrantCovers(lun: u32, r: u32, nexus: u32): bool {
  const at = registrantAt(lun, r);
  if (!registrantInUse(at)) return false;
  return nexusCovers(registrantNexus(at), nexus, registrantAllTargetPorts(at));
}

/** The registrant slot that covers `nexus` on `lun`, or REGISTRANT_NONE. */
function registrantFind(lun: u32, nexus: u32): u32 {
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) if (registrantCovers(lun, r, nexus)) return r;
  return REGISTRANT_NONE;
}

function registrantFree(lun: u32): u32 {
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) if (!registrantInUse(registrantAt(lun, r))) return r;
  return REGISTRANT_NONE;
}

function registrantSet(lun: u32, r: u32, nexus: u32, flags: u8, key: u64): void {
  const at = registrantAt(lun, r);
  assert(!registrantInUse(at), "reservations: registrant slot taken");
  store<u8>(at, 1, AT_REGISTRANT_IN_USE);
  store<u8>(at, flags, AT_REGISTRANT_FLAGS);
  store<u16>(at, <u16>nexus, AT_REGISTRANT_NEXUS);
  registrantSetKey(at, key);
}

@inline function registrantKey(lun: u32, r: u32): u64 { return registrantKeyOf(registrantAt(lun, r)); }

/** True when a registration names identity `nexus` (it must not be given to another port or initiator). */
export function prRegistered(nexus: u32): bool {
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) {
    for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) {
      const at = registrantAt(lun, r);
      if (registrantInUse(at) && registrantNexus(at) == nexus) return true;
    }
  }
  return false;
}

function registrantCount(lun: u32): u32 {
  let count: u32 = 0;
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) if (registrantInUse(registrantAt(lun, r))) count += 1;
  return count;
}

/** True when `nexus` holds the persistent reservation of `lun` (every registrant does, for all-registrants types). */
function prHolds(lun: u32, nexus: u32): bool {
  const type = prType(lun);
  if (type == PR_TYPE_NONE) return false;
  if (allRegistrants(type)) return registrantFind(lun, nexus) != REGISTRANT_NONE;
  return registrantCovers(lun, prHolder(lun), nexus);
}

/**
 * SPC-4, the tables of commands allowed in the presence of reservations: true when a command of `access` from
 * `nexus` must end with RESERVATION CONFLICT.
 */
export function reservationConflict(lun: u32, nexus: u32, access: Access): bool {
  if (access == Access.Always) return false;
  const spc2 = unitSpc2Holder(lunAt(lun));
  if (access == Access.Persistent) return spc2 != NEXUS_NONE;
  if (access == Access.Reserve) return registrantCount(lun) > 0;
  if (spc2 != NEXUS_NONE) return spc2 != nexus;
  const type = prType(lun);
  if (type == PR_TYPE_NONE || access == Access.Info || prHolds(lun, nexus)) return false;
  const registered = registrantFind(lun, nexus) != REGISTRANT_NONE;
  const exclusiveAccess = type == PR_EXCLUSIVE_ACCESS || type == PR_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY
    || type == PR_EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
  if ((registrantsOnly(type) || allRegistrants(type)) && registered) return false;
  return access == Access.Write || exclusiveAccess;
}

/** RESERVE(6): false when another nexus holds it (RESERVATION CONFLICT). Reserving again is allowed. */
export function reserve6(lun: u32, nexus: u32): bool {
  const holder = unitSpc2Holder(lunAt(lun));
  if (holder != NEXUS_NONE && holder != nexus) return false;
  unitSetSpc2Holder(lunAt(lun), nexus);
  return true;
}

/** RELEASE(6): releases the reservation if `nexus` holds it; from anyone else it does nothing (SPC-2). */
export function release6(lun: u32, nexus: u32): void {
  if (unitSpc2Holder(lunAt(lun)) == nexus) unitSetSpc2Holder(lunAt(lun), NEXUS_NONE);
}

/** A logical unit reset ends its RESERVE(6) reservation; persistent reservations stay. */
export function reservationsLunReset(lun: u32): void { unitSetSpc2Holder(lunAt(lun), NEXUS_NONE); }

/** A nexus gone ends the RESERVE(6) reservations it held. */
export function reservationsNexusLost(nexus: u32): void {
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) release6(lun, nexus);
}

export function spc2Holder(lun: u32): u32 { return unitSpc2Holder(lunAt(lun)); }

// PERSISTENT RESERVE IN.

/** READ KEYS parameter data at `at` (room for `capacity` bytes); answers its full length (it may not all fit). */
export function prReadKeys(lun: u32, at: usize, capacity: u32): u32 {
  putBe32(at, prGeneration(lun));
  let lengthBytes: u32 = 8;
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) {
    const reg = registrantAt(lun, r);
    if (!registrantInUse(reg)) continue;
    if (lengthBytes + 8 <= capacity) putBe64(at + lengthBytes, registrantKeyOf(reg));
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
  if (!allRegistrants(type)) putBe64(at + 8, registrantKey(lun, prHolder(lun)));
  store<u8>(at + 21, <u8>type); // SCOPE 0h (LU_SCOPE), TYPE
  return 24;
}

// SPC-4, READ FULL STATUS descriptor, 24 bytes and a TransportID: |0-7 RESERVATION KEY|8-11 -|12 ALL_TG_PT,R_HOLDER|
// 13 SCOPE,TYPE|14-17 -|18-19 RELATIVE TARGET PORT IDENTIFIER|20-23 ADDITIONAL DESCRIPTOR LENGTH|24- TransportID|
// The TransportID is iSCSI's (protocol identifier 5h) initiator port form, format 01b: |0 FORMAT CODE,PROTOCOL
// IDENTIFIER|1 -|2-3 ADDITIONAL LENGTH|4- "name,i,0xISID", null-terminated, padded with zeros to a multiple of 4|;
// an initiator device's registration (transport_id.ts) gets format 00b with its name, and a nexus the transport
// never named (identities.ts) format 00b with an empty name, 24 bytes.
const FULL_STATUS_DESCRIPTOR_BYTES: u32 = 24;

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
    if (!registrantInUse(reg)) continue;
    const nexus = registrantNexus(reg);
    const allTargetPorts = registrantAllTargetPorts(reg);
    const holds = type != PR_TYPE_NONE && (allRegistrants(type) || prHolder(lun) == r);
    const idBytes = transportIdBytes(nexus);
    const descriptorBytes = FULL_STATUS_DESCRIPTOR_BYTES + idBytes;
    if (lengthBytes + descriptorBytes <= capacity) {
      const d = at + lengthBytes;
      memory.fill(d, 0, descriptorBytes);
      putBe64(d, registrantKeyOf(reg));
      store<u8>(d + 12, (allTargetPorts ? 0x02 : 0) | (holds ? 0x01 : 0)); // ALL_TG_PT, R_HOLDER
      if (holds) store<u8>(d + 13, <u8>type); // SCOPE 0h (LU_SCOPE), TYPE
      putBe16(d + 18, relativeTargetPort(nexusTargetPort(nexus))); // RELATIVE TARGET PORT IDENTIFIER (the registering port's, as on the wire: alua.ts)
      putBe32(d + 20, idBytes);
      const nameBytes = nexusPortNameBytes(nexus);
      const port = nameBytes != 0 && !nexusIsDevice(nexus);
      store<u8>(d + 24, port ? 0x45 : 0x05); // FORMAT CODE 01b or 00b, PROTOCOL IDENTIFIER 5h (iSCSI)
      putBe16(d + 26, idBytes - 4); // ADDITIONAL LENGTH
      if (nameBytes > 0) memory.copy(d + 28, nexusPortName(nexus), nameBytes);
    }
    lengthBytes += descriptorBytes;
  }
  putBe32(at + 4, lengthBytes - 8); // ADDITIONAL LENGTH
  return lengthBytes;
}

/** REPORT CAPABILITIES parameter data (8 bytes) at `at`. */
export function prReportCapabilities(lun: u32, at: usize): u32 {
  memory.fill(at, 0, 8);
  putBe16(at, 8); // LENGTH
  store<u8>(at + 2, 0x0c | (persistCapable ? 0x01 : 0)); // RLR_C 0, CRH 0, SIP_C 1, ATP_C 1, PTPL_C (an NVRAM)
  store<u8>(at + 3, 0x80 | (prAptpl(lun) ? 0x01 : 0)); // TMV: the type mask is valid; ALLOW COMMANDS 000b; PTPL_A
  store<u8>(at + 4, 0x80 | 0x40 | 0x20 | 0x08 | 0x02); // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  store<u8>(at + 5, 0x01); // EX_AC_AR
  return 8;
}

// Persistence through power loss (SPC-4, Preserving persistent reservations and registrations): what pr_record.ts
// reads to write a unit's record, and restores from one at boot.

/** Says whether an NVRAM keeps the state of units with APTPL (PTPL_C); at boot. */
export function reservationsPersistCapable(capable: bool): void { persistCapable = capable; }
export function prPersistCapable(): bool { return persistCapable; }
/** The last valid APTPL bit `lun` received (PTPL_A): its state is to survive a power cycle. */
export function prAptpl(lun: u32): bool { return unitAptpl(lunAt(lun)); }
export function prAptplSet(lun: u32, aptpl: bool): void { unitSetAptpl(lunAt(lun), aptpl); }
export function prReservationType(lun: u32): u32 { return prType(lun); }
/** The registrant index holding the reservation, PR_REGISTRANT_NONE for none or an all-registrants type. */
export function prReservationHolder(lun: u32): u32 { return prHolder(lun); }
export function prRegistrantInUse(lun: u32, r: u32): bool { return registrantInUse(registrantAt(lun, r)); }
export function prRegistrantNexus(lun: u32, r: u32): u32 { return registrantNexus(registrantAt(lun, r)); }
export function prRegistrantAllTargetPorts(lun: u32, r: u32): bool { return registrantAllTargetPorts(registrantAt(lun, r)); }
export function prRegistrantKey(lun: u32, r: u32): u64 { return registrantKey(lun, r); }

/** Keeps `lun`'s state (reservation, generation, APTPL, registrations) so prRollback can put it back. */
export function prBackup(lun: u32): void {
  memory.copy(backup, lunAt(lun), LUN_BYTES);
  memory.copy(backup + LUN_BYTES, registrantAt(lun, 0), REGISTRANTS_MAX * REGISTRANT_BYTES);
  backupLun = lun;
}

/**
 * Puts back the state prBackup kept: a PERSISTENT RESERVE OUT whose record the NVRAM did not keep is undone, so the
 * initiator's HARDWARE ERROR means nothing changed. Unit attentions it raised for others stay (they make the others
 * look, and find the state as it was).
 */
export function prRollback(lun: u32): void {
  assert(backupLun == lun, "reservations: rollback of a unit not backed up");
  memory.copy(lunAt(lun), backup, LUN_BYTES);
  memory.copy(registrantAt(lun, 0), backup + LUN_BYTES, REGISTRANTS_MAX * REGISTRANT_BYTES);
  backupLun = VOLUMES_MAX;
}

/** At boot, from a valid record: registration `r` of `lun` for identity `nexus`. */
export function prRestoreRegistrant(lun: u32, r: u32, nexus: u32, allTargetPorts: bool, key: u64): void {
  registrantSet(lun, r, nexus, allTargetPorts ? REGISTRANT_ALL_TARGET_PORTS : 0, key);
}

/** At boot, from a valid record: the reservation of `lun` (type, holder registrant or PR_REGISTRANT_NONE) and APTPL. */
export function prRestoreReservation(lun: u32, type: u32, holder: u32): void {
  assert(type == PR_TYPE_NONE || prTypeValid(type), "reservations: restoring an invalid type");
  assert(type == PR_TYPE_NONE || allRegistrants(type) || (holder < REGISTRANTS_MAX && prRegistrantInUse(lun, holder)), "reservations: restored holder");
  reservationSet(lun, type, allRegistrants(type) || type == PR_TYPE_NONE ? REGISTRANT_NONE : holder);
  prAptplSet(lun, true);
}

// PERSISTENT RESERVE OUT.

export function prPreemptedCount(): u32 { return preemptedCount; }
export function prPreemptedAt(i: u32): u32 { assert(i < preemptedCount); return unchecked(preempted[i]); }

/**
 * One PERSISTENT RESERVE OUT service action (SPC-4, PERSISTENT RESERVE OUT service actions) from `nexus` with the
 * parameter list's RESERVATION KEY `key`, SERVICE ACTION RESERVATION KEY `saKey` and ALL_TG_PT `allTargetPorts`
 * (which only a new registration uses); scope and type are the CDB's. Not REGISTER AND MOVE, nor SPEC_I_PT.
 * Unit attentions for the other nexuses are raised here; nexuses a PREEMPT removed are left in prPreemptedAt.
 */
export function prOut(lun: u32, nexus: u32, action: u32, scope: u32, type: u32, key: u64, saKey: u64, allTargetPorts: bool): PrResult {
  preemptedCount = 0;
  const r = registrantFind(lun, nexus);
  const registered = r != REGISTRANT_NONE;
  if (action == PR_OUT_REGISTER_AND_IGNORE) return prRegister(lun, nexus, r, saKey, allTargetPorts);
  // Every other action needs the caller's key to match its registration (none: zero).
  const registeredKey: u64 = registered ? registrantKey(lun, r) : 0;
  if (action == PR_OUT_REGISTER) {
    if (key != registeredKey) return PrResult.Conflict;
    return prRegister(lun, nexus, r, saKey, allTargetPorts);
  }
  if (!registered || key != registeredKey) return PrResult.Conflict;
  switch (action) {
    case PR_OUT_RESERVE: return prReserve(lun, nexus, r, scope, type);
    case PR_OUT_RELEASE: return prRelease(lun, nexus, scope, type);
    case PR_OUT_CLEAR: return prClear(lun, nexus);
    case PR_OUT_PREEMPT: case PR_OUT_PREEMPT_AND_ABORT: return prPreempt(lun, nexus, r, scope, type, saKey);
    default: assert(false, "prOut: service action checked by the caller"); return PrResult.Good;
  }
}

// REGISTER and REGISTER AND IGNORE EXISTING KEY, once the key has been checked: a zero key unregisters.
function prRegister(lun: u32, nexus: u32, r: u32, saKey: u64, allTargetPorts: bool): PrResult {
  if (r == REGISTRANT_NONE) {
    if (saKey == 0) return PrResult.Good; // nothing to register, nothing to remove
    const f = registrantFree(lun);
    if (f == REGISTRANT_NONE) return PrResult.NoRoom;
    registrantSet(lun, f, nexus, allTargetPorts ? REGISTRANT_ALL_TARGET_PORTS : 0, saKey);
    generationBump(lun);
    return PrResult.Good;
  }
  if (saKey != 0) {
    registrantSetKey(registrantAt(lun, r), saKey);
    generationBump(lun);
    return PrResult.Good;
  }
  registrantRemove(lun, r, nexus);
  generationBump(lun);
  return PrResult.Good;
}

/**
 * REGISTER with SPEC_I_PT (SPC-4, Registering): registers `nexus` and every I_T nexus the `listBytes` of TransportIDs
 * at `list` name (`listOffset` bytes into the parameter list) with `saKey`, at this target port or, with
 * `allTargetPorts`, at all of them; all or nothing. A TransportID naming `nexus` or a nexus registered with the same
 * key adds nothing; one registered with another key is a RESERVATION CONFLICT.
 */
export function prRegisterSpecified(lun: u32, nexus: u32, key: u64, saKey: u64, allTargetPorts: bool, list: usize, listBytes: u32, listOffset: u32): PrResult {
  preemptedCount = 0;
  const r = registrantFind(lun, nexus);
  if (r != REGISTRANT_NONE) {
    if (key != registrantKey(lun, r)) return PrResult.Conflict;
    return invalidParameter(20, 3); // SPEC_I_PT from a registered I_T nexus
  }
  if (key != 0) return PrResult.Conflict;
  if (saKey == 0) return PrResult.Good; // SPC-4: an unregistered nexus registering key zero does nothing
  specifiedCount = 0;
  const result = specifiedCollect(lun, nexus, saKey, list, listBytes, listOffset);
  if (result == PrResult.Good) {
    const flags = allTargetPorts ? REGISTRANT_ALL_TARGET_PORTS : 0;
    registrantSet(lun, registrantFree(lun), nexus, flags, saKey);
    for (let i: u32 = 0; i < specifiedCount; i++) registrantSet(lun, registrantFree(lun), unchecked(specified[i]), flags, saKey);
    generationBump(lun);
  }
  for (let i: u32 = 0; i < specifiedCount; i++) nexusIdentityRelease(unchecked(specified[i]));
  specifiedCount = 0;
  return result;
}

// Reads every TransportID and holds the identities of the nexuses to register in `specified`; Good when all of them
// and `nexus` itself fit in the free registrant slots.
function specifiedCollect(lun: u32, nexus: u32, saKey: u64, list: usize, listBytes: u32, listOffset: u32): PrResult {
  const port = nexusTargetPort(nexus);
  let at: u32 = 0;
  while (at < listBytes) { // each TransportID is at least TRANSPORT_ID_BYTES_MIN bytes
    const idBytes = transportIdRead(list + at, listBytes - at, listOffset + at);
    if (idBytes == 0) return invalidParameter(transportIdFieldByte());
    assert(idBytes >= TRANSPORT_ID_BYTES_MIN);
    at += idBytes;
    const id = nexusIdentify(transportIdName(), transportIdNameBytes(), port, transportIdDevice());
    if (id == NEXUS_NONE) return PrResult.NoRoom; // the identities table is full of live or registered names
    const existing = registrantFind(lun, id);
    if (id == nexus || specifiedHas(id) || existing != REGISTRANT_NONE) {
      nexusIdentityRelease(id);
      if (existing != REGISTRANT_NONE && registrantKey(lun, existing) != saKey) return PrResult.Conflict;
      continue;
    }
    if (specifiedCount == REGISTRANTS_MAX) { nexusIdentityRelease(id); return PrResult.NoRoom; }
    unchecked(specified[specifiedCount] = <u16>id);
    specifiedCount += 1;
  }
  return registrantCount(lun) + 1 + specifiedCount <= REGISTRANTS_MAX ? PrResult.Good : PrResult.NoRoom;
}

function specifiedHas(id: u32): bool {
  for (let i: u32 = 0; i < specifiedCount; i++) if (<u32>unchecked(specified[i]) == id) return true;
  return false;
}

/**
 * REGISTER AND MOVE (SPC-4, Registering and moving the reservation): the holder `nexus` registers the I_T nexus the
 * TransportID at `transportId` (`idListBytes`, `offset` bytes into the parameter list) and relative target port
 * `targetPort` name with `saKey`, moves the reservation to it with its type and scope, and with `unregister` drops
 * its own registration.
 */
export function prRegisterAndMove(lun: u32, nexus: u32, key: u64, saKey: u64, targetPort: u32, unregister: bool, transportId: usize, idListBytes: u32, offset: u32): PrResult {
  preemptedCount = 0;
  const r = registrantFind(lun, nexus);
  if (r == REGISTRANT_NONE || key != registrantKey(lun, r)) return PrResult.Conflict;
  if (saKey == 0) return PrResult.InvalidKey;
  const type = prType(lun);
  if (type == PR_TYPE_NONE) return PrResult.NoReservation;
  if (allRegistrants(type) || !prHolds(lun, nexus)) return PrResult.Conflict;
  const idBytes = transportIdRead(transportId, idListBytes, offset);
  if (idBytes == 0) return invalidParameter(transportIdFieldByte());
  if (idBytes != idListBytes) return invalidParameter(20); // TRANSPORTID PARAMETER DATA LENGTH: one TransportID
  if (transportIdDevice()) return invalidParameter(offset, 7); // FORMAT CODE: a move needs an initiator port
  // RELATIVE TARGET PORT IDENTIFIER: 0 is reserved, and a port that does not exist or does not present this unit
  // could never use the reservation. On a board of a cluster it names this board's ports only (alua.ts): the
  // reservations are each board's own, so a move to another board's port is refused.
  const port = localTargetPort(targetPort);
  if (!targetPortPresents(port, lun)) return invalidParameter(18);
  const destination = nexusIdentify(transportIdName(), transportIdNameBytes(), port);
  if (destination == NEXUS_NONE) return PrResult.NoRoom;
  const result = moveTo(lun, nexus, r, destination, saKey, unregister, offset);
  nexusIdentityRelease(destination);
  return result;
}

function moveTo(lun: u32, nexus: u32, r: u32, destination: u32, saKey: u64, unregister: bool, offset: u32): PrResult {
  // SPC-4: a TransportID naming the initiator port the command came from is an invalid field.
  if (nexusSamePort(destination, nexus) || registrantCovers(lun, r, destination)) return invalidParameter(offset + 4);
  let d = registrantFind(lun, destination);
  if (d == REGISTRANT_NONE) {
    d = registrantFree(lun);
    if (d == REGISTRANT_NONE) return PrResult.NoRoom;
    registrantSet(lun, d, destination, 0, saKey);
  } else {
    registrantSetKey(registrantAt(lun, d), saKey); // SPC-4: registered already, with this key or another, is no error
  }
  reservationSet(lun, prType(lun), d);
  if (unregister) registrantSetUnused(registrantAt(lun, r)); // the reservation is no longer its own: nothing released
  generationBump(lun);
  return PrResult.Good;
}

// Removes registration `r`, as `nexus` asked. If it held the reservation, the reservation ends (for the
// all-registrants types, with the last registrant), with RESERVATIONS RELEASED to the others for the registrants-only
// types.
function registrantRemove(lun: u32, r: u32, nexus: u32): void {
  const type = prType(lun);
  registrantSetUnused(registrantAt(lun, r));
  if (type == PR_TYPE_NONE) return;
  if (allRegistrants(type)) {
    if (registrantCount(lun) == 0) reservationSet(lun, PR_TYPE_NONE, REGISTRANT_NONE);
    return;
  }
  if (prHolder(lun) != r) return;
  reservationSet(lun, PR_TYPE_NONE, REGISTRANT_NONE);
  if (registrantsOnly(type)) raiseForRegistrants(lun, nexus, UA_RESERVATIONS_RELEASED);
}

// Raises `condition` on `lun` for every I_T nexus in the nexus table that a registration covers, but `exceptNexus`.
function raiseForRegistrants(lun: u32, exceptNexus: u32, condition: u32): void {
  for (let s: u32 = 0; s < NEXUS_MAX; s++) {
    if (!nexusSlotInUse(s) || nexusSlotGone(s)) continue;
    const other = nexusOfSlot(s);
    if (other != exceptNexus && registrantFind(lun, other) != REGISTRANT_NONE) uaSet(s, lun, condition);
  }
}

function prReserve(lun: u32, nexus: u32, r: u32, scope: u32, type: u32): PrResult {
  if (scope != 0) return PrResult.InvalidScope;
  if (!prTypeValid(type)) return PrResult.InvalidType;
  const current = prType(lun);
  if (current == PR_TYPE_NONE) {
    reservationSet(lun, type, allRegistrants(type) ? REGISTRANT_NONE : r);
    return PrResult.Good;
  }
  // Reserving again with the same type is allowed to the holder; anything else conflicts.
  return prHolds(lun, nexus) && current == type ? PrResult.Good : PrResult.Conflict;
}

function prRelease(lun: u32, nexus: u32, scope: u32, type: u32): PrResult {
  const current = prType(lun);
  if (current == PR_TYPE_NONE || !prHolds(lun, nexus)) return PrResult.Good; // SPC-4: nothing to release
  if (scope != 0 || type != current) return PrResult.InvalidRelease;
  reservationSet(lun, PR_TYPE_NONE, REGISTRANT_NONE);
  if (registrantsOnly(current) || allRegistrants(current)) raiseForRegistrants(lun, nexus, UA_RESERVATIONS_RELEASED);
  return PrResult.Good;
}

function prClear(lun: u32, nexus: u32): PrResult {
  raiseForRegistrants(lun, nexus, UA_RESERVATIONS_PREEMPTED);
  for (let r: u32 = 0; r < REGISTRANTS_MAX; r++) registrantSetUnused(registrantAt(lun, r));
  reservationSet(lun, PR_TYPE_NONE, REGISTRANT_NONE);
  generationBump(lun);
  return PrResult.Good;
}

// PREEMPT (SPC-4, Preempting): removes the registrations with key saKey and, when they include the reservation
// holder (or saKey is zero under an all-registrants reservation), gives the reservation to the preempting nexus's
// registration `r`.
function prPreempt(lun: u32, nexus: u32, r: u32, scope: u32, type: u32, saKey: u64): PrResult {
  const current = prType(lun);
  const takesReservation = current != PR_TYPE_NONE
    && (allRegistrants(current) ? saKey == 0 : registrantKey(lun, prHolder(lun)) == saKey);
  if (takesReservation) {
    if (scope != 0) return PrResult.InvalidScope;
    if (!prTypeValid(type)) return PrResult.InvalidType;
  } else if (saKey == 0) {
    return PrResult.InvalidKey;
  }
  let removed: u32 = 0;
  for (let p: u32 = 0; p < REGISTRANTS_MAX; p++) {
    const at = registrantAt(lun, p);
    if (!registrantInUse(at) || p == r) continue;
    if (!(takesReservation && allRegistrants(current)) && registrantKeyOf(at) != saKey) continue;
    preemptNexuses(lun, p, nexus);
    registrantSetUnused(at);
    removed += 1;
  }
  if (!takesReservation) {
    if (removed == 0) return PrResult.Conflict; // SPC-4: no registration had that key
    if (current != PR_TYPE_NONE && allRegistrants(current) && registrantCount(lun) == 0) {
      reservationSet(lun, PR_TYPE_NONE, REGISTRANT_NONE);
    }
    generationBump(lun);
    return PrResult.Good;
  }
  // The preempting nexus now holds the reservation; if its type changed, the remaining registrants hear of it.
  reservationSet(lun, type, allRegistrants(type) ? REGISTRANT_NONE : r);
  if (type != current) raiseForRegistrants(lun, nexus, UA_RESERVATIONS_RELEASED);
  generationBump(lun);
  return PrResult.Good;
}

// The I_T nexuses in the nexus table that registration `p` covers (but the preempting one) hear REGISTRATIONS
// PREEMPTED and go into `preempted`, once each, for PREEMPT AND ABORT.
function preemptNexuses(lun: u32, p: u32, exceptNexus: u32): void {
  for (let s: u32 = 0; s < NEXUS_MAX; s++) {
    if (!nexusSlotInUse(s) || nexusSlotGone(s)) continue;
    const other = nexusOfSlot(s);
    if (other == exceptNexus || !registrantCovers(lun, p, other)) continue;
    uaSet(s, lun, UA_REGISTRATIONS_PREEMPTED);
    let known = false;
    for (let i: u32 = 0; i < preemptedCount; i++) if (<u32>unchecked(preempted[i]) == other) known = true;
    if (known) continue;
    assert(preemptedCount < NEXUS_MAX);
    unchecked(preempted[preemptedCount] = <u16>other);
    preemptedCount += 1;
  }
}
