// I_T nexus identities: the transport names each I_T nexus by its initiator port name and the relative target port
// (iSCSI: "InitiatorName,i,0xISID" through the target's one port group), and the SCSI layer gives the same name the
// same nexus id every time, in a fixed table that outlives sessions. So persistent reservation registrations, kept
// per nexus id, find an initiator port again when it logs in anew, and READ FULL STATUS can name it (SPC-4,
// TransportID). An entry is live while a session uses it (scsiNexusIdentify counts up, scsiNexusGone down); when
// the table is full, the least recently identified entry that is neither live nor registered anywhere is reused.
// PERSISTENT RESERVE OUT enters names too, from TransportIDs: an initiator port (iSCSI format 01b, the same
// "InitiatorName,i,0xISID" form) or a whole initiator device (format 00b, the bare iSCSI name, marked `device`), which
// stands for every port of that initiator name (nexusCovers).
//
// Entry, 256 bytes: |0 inUse u8|1 liveCount u8|2 targetPort u16|4 nameBytes u16|6 device u8|7 -|8 lastUsed u32|
// |12 lostLuns u16|14 -|16 name[240]|; read and written only through the entry accessors below.
import { carve } from "../kernel/carve";
import { NEXUS_NONE } from "./nexus";
import { prRegistered } from "./reservations";

export const NEXUS_IDENTITIES_MAX: u32 = 128;
export const PORT_NAME_BYTES_MAX: u32 = 240; // an iSCSI name (223) with ",i,0x" and twelve hexadecimal digits
const ENTRY_BYTES: u32 = 256;
const AT_IN_USE: usize = 0;
const AT_LIVE_COUNT: usize = 1;
const AT_TARGET_PORT: usize = 2;
const AT_NAME_BYTES: usize = 4;
const AT_DEVICE: usize = 6;
const AT_LAST_USED: usize = 8;
const AT_LOST_LUNS: usize = 12;
const AT_NAME: usize = 16;
if (AT_NAME + PORT_NAME_BYTES_MAX != ENTRY_BYTES) ERROR("identities entry: the name ends the entry");

@inline function entryInUse(at: usize): bool { return load<u8>(at, AT_IN_USE) != 0; }
@inline function entryLiveCount(at: usize): u32 { return <u32>load<u8>(at, AT_LIVE_COUNT); }
@inline function entryTargetPort(at: usize): u32 { return <u32>load<u16>(at, AT_TARGET_PORT); }
@inline function entryNameBytes(at: usize): u32 { return <u32>load<u16>(at, AT_NAME_BYTES); }
@inline function entryDevice(at: usize): bool { return load<u8>(at, AT_DEVICE) != 0; }
@inline function entryLastUsed(at: usize): u32 { return load<u32>(at, AT_LAST_USED); }
@inline function entryLostLuns(at: usize): u32 { return <u32>load<u16>(at, AT_LOST_LUNS); }
@inline function entryName(at: usize): usize { return at + AT_NAME; }
@inline function entrySetLiveCount(at: usize, count: u32): void { store<u8>(at, <u8>count, AT_LIVE_COUNT); }
@inline function entrySetLastUsed(at: usize, tick: u32): void { store<u32>(at, tick, AT_LAST_USED); }
@inline function entrySetLostLuns(at: usize, luns: u32): void { store<u16>(at, <u16>luns, AT_LOST_LUNS); }
// A new entry (over a zeroed one): in use, one session, its name.
@inline function entrySet(at: usize, targetPort: u32, name: usize, nameBytes: u32, device: bool, tick: u32): void {
  store<u8>(at, 1, AT_IN_USE);
  entrySetLiveCount(at, 1);
  store<u16>(at, <u16>targetPort, AT_TARGET_PORT);
  store<u16>(at, <u16>nameBytes, AT_NAME_BYTES);
  store<u8>(at, device ? 1 : 0, AT_DEVICE);
  entrySetLastUsed(at, tick);
  memory.copy(entryName(at), name, nameBytes);
}

let entries: usize = 0;
let clock: u32 = 0;

export function identitiesInit(): void {
  entries = carve(NEXUS_IDENTITIES_MAX * ENTRY_BYTES, 16);
}

@inline function entryAt(id: u32): usize {
  assert(id < NEXUS_IDENTITIES_MAX, "identities: id out of range");
  return entries + <usize>id * ENTRY_BYTES;
}

const PORT_SEPARATOR_BYTES: u32 = 17; // ",i,0x" and twelve hexadecimal digits after an initiator name

function nameIs(at: usize, name: usize, nameBytes: u32, targetPort: u32, device: bool): bool {
  if (entryNameBytes(at) != nameBytes || entryTargetPort(at) != targetPort) return false;
  if (entryDevice(at) != device) return false;
  return memory.compare(entryName(at), name, nameBytes) == 0;
}

/**
 * The nexus id of initiator port `name` (`nameBytes`, at most PORT_NAME_BYTES_MAX) at relative target port
 * `targetPort`, entered if new; counts one more session using it (a PERSISTENT RESERVE OUT holds it the same way
 * while it works, so the entry cannot be reused under it). `device`: `name` is an initiator device's bare name.
 * NEXUS_NONE when the name is too long or the table holds no entry it may reuse (the transport refuses the login:
 * out of resources).
 */
export function nexusIdentify(name: usize, nameBytes: u32, targetPort: u32, device: bool = false): u32 {
  if (nameBytes == 0 || nameBytes > PORT_NAME_BYTES_MAX || targetPort > 0xffff) return NEXUS_NONE;
  clock += 1;
  let free = NEXUS_NONE;
  for (let id: u32 = 0; id < NEXUS_IDENTITIES_MAX; id++) {
    const at = entryAt(id);
    if (!entryInUse(at)) { if (free == NEXUS_NONE) free = id; continue; }
    if (!nameIs(at, name, nameBytes, targetPort, device)) continue;
    assert(entryLiveCount(at) < 0xff, "identities: live count");
    entrySetLiveCount(at, entryLiveCount(at) + 1);
    entrySetLastUsed(at, clock);
    return id;
  }
  const reuse = free != NEXUS_NONE ? free : oldestIdle();
  if (reuse == NEXUS_NONE) return NEXUS_NONE;
  const at = entryAt(reuse);
  memory.fill(at, 0, ENTRY_BYTES);
  entrySet(at, targetPort, name, nameBytes, device, clock);
  return reuse;
}

// The least recently identified entry no session uses and no persistent reservation registration names.
function oldestIdle(): u32 {
  let oldest = NEXUS_NONE;
  let oldestAge: u32 = 0;
  for (let id: u32 = 0; id < NEXUS_IDENTITIES_MAX; id++) {
    const at = entryAt(id);
    if (entryLiveCount(at) != 0 || prRegistered(id)) continue;
    const age = clock - entryLastUsed(at);
    if (oldest == NEXUS_NONE || age > oldestAge) { oldest = id; oldestAge = age; }
  }
  return oldest;
}

/**
 * SAM-5, I_T nexus loss: nexus `id` was lost; on the logical units in `luns` (a bit each) its initiator port had
 * heard POWER ON, so its next nexus starts there with I_T NEXUS LOSS OCCURRED instead (nexusOpen). A reused entry
 * starts without any.
 */
export function nexusIdentityLossSet(id: u32, luns: u32): void {
  assert(luns <= 0xffff, "identities: a LUN mask fits 16 bits");
  if (id < NEXUS_IDENTITIES_MAX) entrySetLostLuns(entryAt(id), luns); // kept in a free entry too (the probe's ids)
}
export function nexusIdentityLostLuns(id: u32): u32 { return id < NEXUS_IDENTITIES_MAX ? entryLostLuns(entryAt(id)) : 0; }
export function nexusIdentityLossClear(id: u32): void { if (id < NEXUS_IDENTITIES_MAX) entrySetLostLuns(entryAt(id), 0); }

/** One session fewer uses nexus `id` (its transport said it is gone); ids the table never gave are ignored. */
export function nexusIdentityRelease(id: u32): void {
  if (id >= NEXUS_IDENTITIES_MAX) return;
  const at = entryAt(id);
  if (entryInUse(at) && entryLiveCount(at) > 0) entrySetLiveCount(at, entryLiveCount(at) - 1);
}

/** The initiator port name of nexus `id` and its length (0: the table does not know it). */
export function nexusPortName(id: u32): usize { return entryName(entryAt(id)); }
export function nexusPortNameBytes(id: u32): u32 {
  if (id >= NEXUS_IDENTITIES_MAX || !entryInUse(entryAt(id))) return 0;
  return entryNameBytes(entryAt(id));
}

/** The relative target port identifier of nexus `id` (1, the one port, when the table does not know it). */
export function nexusTargetPort(id: u32): u32 {
  if (id >= NEXUS_IDENTITIES_MAX || !entryInUse(entryAt(id))) return 1;
  return entryTargetPort(entryAt(id));
}

/** True when nexus `id` is an initiator device's bare name (a format 00b TransportID), not a port. */
export function nexusIsDevice(id: u32): bool {
  return id < NEXUS_IDENTITIES_MAX && entryInUse(entryAt(id)) && entryDevice(entryAt(id));
}

/** True when `a` and `b` name the same initiator port (at any target port); unknown ids name nothing. */
export function nexusSamePort(a: u32, b: u32): bool {
  const bytes = nexusPortNameBytes(a);
  if (bytes == 0 || bytes != nexusPortNameBytes(b) || nexusIsDevice(a) != nexusIsDevice(b)) return false;
  return memory.compare(nexusPortName(a), nexusPortName(b), bytes) == 0;
}

/**
 * True when a registration made for `registered` covers nexus `nexus` (SPC-4, Registering): the same nexus; with
 * `allTargetPorts` (ALL_TG_PT) the same initiator port at any target port; for an initiator device's registration,
 * every port of that initiator name (at its target port, or any with `allTargetPorts`).
 */
export function nexusCovers(registered: u32, nexus: u32, allTargetPorts: bool): bool {
  if (registered == nexus) return true;
  if (!allTargetPorts && !nexusIsDevice(registered)) return false; // one port, one name: one id (the common case)
  const bytes = nexusPortNameBytes(registered);
  const nexusBytes = nexusPortNameBytes(nexus);
  if (bytes == 0 || nexusBytes == 0 || nexusIsDevice(nexus)) return false;
  if (!allTargetPorts && nexusTargetPort(registered) != nexusTargetPort(nexus)) return false;
  if (!nexusIsDevice(registered)) return nexusSamePort(registered, nexus);
  if (nexusBytes != bytes + PORT_SEPARATOR_BYTES) return false;
  if (memory.compare(nexusPortName(registered), nexusPortName(nexus), bytes) != 0) return false;
  return load<u8>(nexusPortName(nexus) + bytes) == 0x2c; // "," then "i,0x": what the transport writes
}
