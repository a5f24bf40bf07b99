// I_T nexuses the target has seen, and their unit attention conditions per logical unit (SAM-5, Unit attention
// conditions). A nexus enters the table with its first command, with POWER ON, RESET, OR BUS DEVICE RESET OCCURRED
// pending on every logical unit (the target was reset as far as this nexus knows), or I_T NEXUS LOSS OCCURRED where
// its initiator port's previous nexus was lost after hearing POWER ON, and leaves it when its transport says it is
// gone. A condition is reported once, on the next command to that logical unit other than INQUIRY,
// REPORT LUNS and REQUEST SENSE (which returns it as its data instead).
// Slot, 48 bytes: |0 inUse u8|1 gone u8|2 nexus u16|4 lunCountSeen u32|8 -|16 pending[VOLUMES_MAX] u16|
import { VOLUMES_MAX } from "../volumes/volume";
import { carve } from "../kernel/carve";
import {
  ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR, ASC_I_T_NEXUS_LOSS_OCCURRED, ASC_MODE_PARAMETERS_CHANGED, ASC_POWER_ON_RESET, ASC_REGISTRATIONS_PREEMPTED,
  ASC_REPORTED_LUNS_DATA_HAS_CHANGED, ASC_RESERVATIONS_PREEMPTED, ASC_THIN_PROVISIONING_SOFT_THRESHOLD_REACHED, ASC_RESERVATIONS_RELEASED,
} from "./sense";

export const NEXUS_MAX: u32 = 64;
export const NEXUS_SLOT_NONE: u32 = 0xffff;
export const NEXUS_NONE: u32 = 0xffff;
const SLOT_BYTES: u32 = 48;

// Pending conditions, one bit each; the lowest bit set is reported first.
export const UA_POWER_ON_RESET: u32 = 1 << 0;
export const UA_RESERVATIONS_PREEMPTED: u32 = 1 << 1;
export const UA_RESERVATIONS_RELEASED: u32 = 1 << 2;
export const UA_REGISTRATIONS_PREEMPTED: u32 = 1 << 3;
export const UA_MODE_PARAMETERS_CHANGED: u32 = 1 << 4;
export const UA_COMMANDS_CLEARED: u32 = 1 << 5;
export const UA_REPORTED_LUNS_CHANGED: u32 = 1 << 6;
// Reported right after POWER ON (both are 29h; SPC-4 ranks them above the rest), which supersedes it.
export const UA_NEXUS_LOSS: u32 = 1 << 7;
// A thin volume's pool crossed its soft threshold (SBC-3, Thin provisioning thresholds; 38h/07h), after the rest.
export const UA_SOFT_THRESHOLD: u32 = 1 << 8;
export const UA_NONE: u32 = 0;

let slots: usize = 0;
let goneCount: u32 = 0; // slots marked gone and not yet closed: the target's sweep looks only while there are some

export function nexusInit(): void {
  slots = carve(NEXUS_MAX * SLOT_BYTES, 16);
}

@inline function slotAt(slot: u32): usize {
  assert(slot < NEXUS_MAX, "nexus slot out of range");
  return slots + <usize>slot * SLOT_BYTES;
}

export function nexusSlotInUse(slot: u32): bool { return load<u8>(slotAt(slot), 0) != 0; }
export function nexusSlotGone(slot: u32): bool { return load<u8>(slotAt(slot), 1) != 0; }
export function nexusOfSlot(slot: u32): u32 { return load<u16>(slotAt(slot), 2); }

/** The slot of `nexus`, or NEXUS_SLOT_NONE. A slot marked gone no longer answers: the target's sweep finds it. */
export function nexusFind(nexus: u32): u32 {
  for (let s: u32 = 0; s < NEXUS_MAX; s++) {
    const at = slotAt(s);
    if (load<u8>(at, 0) != 0 && load<u8>(at, 1) == 0 && <u32>load<u16>(at, 2) == nexus) return s;
  }
  return NEXUS_SLOT_NONE;
}

/**
 * The slot of `nexus`, entering it if new with POWER ON pending on every LUN, or I_T NEXUS LOSS OCCURRED on those in
 * `lostLuns` (a bit each: its initiator port's previous nexus was lost after hearing POWER ON there);
 * NEXUS_SLOT_NONE when full.
 */
export function nexusOpen(nexus: u32, lunCount: u32, lostLuns: u32 = 0): u32 {
  const found = nexusFind(nexus);
  if (found != NEXUS_SLOT_NONE) return found;
  for (let s: u32 = 0; s < NEXUS_MAX; s++) {
    const at = slotAt(s);
    if (load<u8>(at, 0) != 0) continue;
    memory.fill(at, 0, SLOT_BYTES);
    store<u8>(at, 1, 0);
    store<u16>(at, <u16>nexus, 2);
    store<u32>(at, lunCount, 4);
    for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) {
      store<u16>(pendingAt(s, lun), <u16>(((lostLuns >> lun) & 1) != 0 ? UA_NEXUS_LOSS : UA_POWER_ON_RESET));
    }
    return s;
  }
  return NEXUS_SLOT_NONE;
}

/** The transport says `nexus` is gone (called from the transport's task): marked here, swept by the target's run. */
export function nexusMarkGone(nexus: u32): bool {
  const s = nexusFind(nexus);
  if (s == NEXUS_SLOT_NONE) return false;
  store<u8>(slotAt(s), 1, 1);
  goneCount += 1;
  return true;
}

/** Slots marked gone that the target has not swept yet. */
export function nexusGoneCount(): u32 { return goneCount; }

export function nexusClose(slot: u32): void {
  if (nexusSlotGone(slot)) goneCount -= 1;
  memory.fill(slotAt(slot), 0, SLOT_BYTES);
}

/** Raises REPORTED LUNS DATA HAS CHANGED on every LUN when the number of LUNs moved since the nexus last looked. */
export function nexusLunCountCheck(slot: u32, lunCount: u32): void {
  const at = slotAt(slot);
  if (load<u32>(at, 4) == lunCount) return;
  store<u32>(at, lunCount, 4);
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) uaSet(slot, lun, UA_REPORTED_LUNS_CHANGED);
}

export function uaSet(slot: u32, lun: u32, condition: u32): void {
  if (lun >= VOLUMES_MAX) return;
  const at = pendingAt(slot, lun);
  const superseded = condition == UA_POWER_ON_RESET ? UA_NEXUS_LOSS : 0; // SPC-4: 29h/00h covers the other 29h
  store<u16>(at, (load<u16>(at) & ~<u16>superseded) | <u16>condition);
}

/** The logical units (a bit each) on which the nexus in `slot` has heard POWER ON: none is pending there. */
export function nexusPowerOnHeard(slot: u32): u32 {
  let heard: u32 = 0;
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) if ((uaPending(slot, lun) & UA_POWER_ON_RESET) == 0) heard |= 1 << lun;
  return heard;
}
if (VOLUMES_MAX > 16) ERROR("nexus: the LUN masks of I_T nexus loss hold 16 logical units");

/** Raises `condition` on `lun` for the nexus `nexus` if it is in the table. */
export function uaSetNexus(nexus: u32, lun: u32, condition: u32): void {
  const s = nexusFind(nexus);
  if (s != NEXUS_SLOT_NONE) uaSet(s, lun, condition);
}

/** Raises `condition` on `lun` for every nexus but `exceptNexus` (NEXUS_NONE: for all). */
export function uaSetAll(lun: u32, condition: u32, exceptNexus: u32): void {
  for (let s: u32 = 0; s < NEXUS_MAX; s++) {
    if (!nexusSlotInUse(s) || nexusOfSlot(s) == exceptNexus) continue;
    uaSet(s, lun, condition);
  }
}

/** Takes the highest-priority condition pending for `lun`: its ASC/ASCQ, or UA_NONE (0 is not a UA code). */
export function uaTake(slot: u32, lun: u32): u32 {
  if (lun >= VOLUMES_MAX) return UA_NONE;
  const at = pendingAt(slot, lun);
  const pending = <u32>load<u16>(at);
  if (pending == 0) return UA_NONE;
  const lowest = pending & (0 - pending);
  const bit = lowest != UA_POWER_ON_RESET && (pending & UA_NEXUS_LOSS) != 0 ? UA_NEXUS_LOSS : lowest; // 29h first
  store<u16>(at, <u16>(pending & ~bit));
  return uaAscAscq(bit);
}

export function uaPending(slot: u32, lun: u32): u32 {
  return lun >= VOLUMES_MAX ? 0 : <u32>load<u16>(pendingAt(slot, lun));
}

@inline function pendingAt(slot: u32, lun: u32): usize { return slotAt(slot) + 16 + <usize>lun * 2; }

function uaAscAscq(bit: u32): u32 {
  switch (bit) {
    case UA_POWER_ON_RESET: return ASC_POWER_ON_RESET;
    case UA_NEXUS_LOSS: return ASC_I_T_NEXUS_LOSS_OCCURRED;
    case UA_RESERVATIONS_PREEMPTED: return ASC_RESERVATIONS_PREEMPTED;
    case UA_RESERVATIONS_RELEASED: return ASC_RESERVATIONS_RELEASED;
    case UA_REGISTRATIONS_PREEMPTED: return ASC_REGISTRATIONS_PREEMPTED;
    case UA_MODE_PARAMETERS_CHANGED: return ASC_MODE_PARAMETERS_CHANGED;
    case UA_COMMANDS_CLEARED: return ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR;
    case UA_REPORTED_LUNS_CHANGED: return ASC_REPORTED_LUNS_DATA_HAS_CHANGED;
    case UA_SOFT_THRESHOLD: return ASC_THIN_PROVISIONING_SOFT_THRESHOLD_REACHED;
    default: assert(false, "unknown unit attention"); return UA_NONE;
  }
}
