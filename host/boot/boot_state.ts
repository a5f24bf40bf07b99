// The boot state: which slot is confirmed, which waits for its trial, which is on trial, and the anti-rollback
// security counter. Kept as an append-only log of 32-byte records in the flash's boot-state blocks, so an update is
// one program step: a torn record fails its CRC and the record before it still stands.
//
// Record, little-endian:
// |0 magic u32 "BSTA"|4 sequence u32|8 activeSlot u8|9 pendingSlot u8|10 trialSlot u8|11 zero|12 securityCounter u32|
// |16-27 zero|28 CRC-32 of bytes 0-27 u32|
// Slot codes: 0 = A, 1 = B, 0xFF = none (so an erased byte reads as "none").
import { Flash, FLASH_ERASED_BYTE, type SlotName } from "../devices/flash.ts";

export const BOOT_RECORD_MAGIC = 0x41545342; // "BSTA"
export const BOOT_RECORD_SIZE_BYTES = 32;
const REC_MAGIC = 0;
const REC_SEQUENCE = 4;
const REC_ACTIVE_SLOT = 8;
const REC_PENDING_SLOT = 9;
const REC_TRIAL_SLOT = 10;
const REC_SECURITY_COUNTER = 12;
const REC_CRC = 28;
const SLOT_CODE_NONE = 0xff;
const SEQUENCE_MAX = 0xffffffff;

export interface BootState {
  /** 0 when no record has ever been written; each record raises it by one. */
  sequence: number;
  /** The confirmed image: what boots when nothing is pending or on trial. */
  activeSlot: SlotName | null;
  /** A freshly flashed image that has not been started yet. */
  pendingSlot: SlotName | null;
  /** An image started once as a trial and not yet confirmed; found set at boot, it failed and is reverted. */
  trialSlot: SlotName | null;
  /** The lowest security counter an image may carry; raised only when an image is confirmed. */
  securityCounter: number;
}

export type BootStateFields = Omit<BootState, "sequence">;

export const BOOT_STATE_BLANK: BootState = {
  sequence: 0,
  activeSlot: null,
  pendingSlot: null,
  trialSlot: null,
  securityCounter: 0,
};

// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the zlib and PNG CRC; Node 20's zlib does not export it.
const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let index = 0; index < 256; index += 1) {
    let crc = index;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
    table[index] = crc >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function slotCode(slot: SlotName | null): number {
  return slot === null ? SLOT_CODE_NONE : slot === "A" ? 0 : 1;
}

/** Returns undefined for a code that is no slot, which makes the record invalid. */
function slotFromCode(code: number): SlotName | null | undefined {
  if (code === SLOT_CODE_NONE) return null;
  if (code === 0) return "A";
  if (code === 1) return "B";
  return undefined;
}

export function encodeBootRecord(state: BootState): Uint8Array {
  const bytes = new Uint8Array(BOOT_RECORD_SIZE_BYTES); // reserved bytes stay zero
  const v = new DataView(bytes.buffer);
  v.setUint32(REC_MAGIC, BOOT_RECORD_MAGIC, true);
  v.setUint32(REC_SEQUENCE, state.sequence, true);
  v.setUint8(REC_ACTIVE_SLOT, slotCode(state.activeSlot));
  v.setUint8(REC_PENDING_SLOT, slotCode(state.pendingSlot));
  v.setUint8(REC_TRIAL_SLOT, slotCode(state.trialSlot));
  v.setUint32(REC_SECURITY_COUNTER, state.securityCounter, true);
  v.setUint32(REC_CRC, crc32(bytes.subarray(0, REC_CRC)), true);
  return bytes;
}

/** The state a record holds, or null when it is erased, torn or otherwise not a whole valid record. */
export function decodeBootRecord(bytes: Uint8Array): BootState | null {
  if (bytes.length !== BOOT_RECORD_SIZE_BYTES) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(REC_MAGIC, true) !== BOOT_RECORD_MAGIC) return null;
  if (v.getUint32(REC_CRC, true) !== crc32(bytes.subarray(0, REC_CRC))) return null;
  const activeSlot = slotFromCode(v.getUint8(REC_ACTIVE_SLOT));
  const pendingSlot = slotFromCode(v.getUint8(REC_PENDING_SLOT));
  const trialSlot = slotFromCode(v.getUint8(REC_TRIAL_SLOT));
  const sequence = v.getUint32(REC_SEQUENCE, true);
  if (activeSlot === undefined || pendingSlot === undefined || trialSlot === undefined || sequence === 0) return null;
  return { sequence, activeSlot, pendingSlot, trialSlot, securityCounter: v.getUint32(REC_SECURITY_COUNTER, true) };
}

interface LogScan {
  latest: BootState;
  /** Where the latest record sits; null when there is none. */
  blockIndex: number | null;
  recordIndex: number;
}

function stateGeometry(flash: Flash): { blockBytes: number; blockCount: number; recordsPerBlock: number; baseBytes: number } {
  const blockBytes = flash.geometry.eraseBlockSizeBytes;
  const region = flash.layout.bootState;
  return {
    blockBytes,
    blockCount: region.sizeBytes / blockBytes,
    recordsPerBlock: Math.floor(blockBytes / BOOT_RECORD_SIZE_BYTES),
    baseBytes: region.offsetBytes,
  };
}

function scanLog(flash: Flash, area: Uint8Array): LogScan {
  const { blockBytes, blockCount, recordsPerBlock } = stateGeometry(flash);
  let scan: LogScan = { latest: BOOT_STATE_BLANK, blockIndex: null, recordIndex: 0 };
  for (let blockIndex = 0; blockIndex < blockCount; blockIndex += 1) {
    for (let recordIndex = 0; recordIndex < recordsPerBlock; recordIndex += 1) {
      const at = blockIndex * blockBytes + recordIndex * BOOT_RECORD_SIZE_BYTES;
      const state = decodeBootRecord(area.subarray(at, at + BOOT_RECORD_SIZE_BYTES));
      if (state !== null && state.sequence > scan.latest.sequence) scan = { latest: state, blockIndex, recordIndex };
    }
  }
  return scan;
}

/** The newest valid record's state, or BOOT_STATE_BLANK on a part that has none. */
export function readBootState(flash: Flash): BootState {
  const region = flash.layout.bootState;
  return scanLog(flash, flash.read(region.offsetBytes, region.sizeBytes)).latest;
}

function isErased(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte === FLASH_ERASED_BYTE);
}

/**
 * Appends `fields` as the next record and returns the new state. Writes the first erased record slot after the
 * newest record in its block (skipping slots a torn write left dirty); when the block is full, erases the next
 * block and writes its first slot. That erase only ever hits a block older than the newest record, so a cut
 * during it (or during the program) leaves the newest record readable and the update simply not made.
 */
export function writeBootState(flash: Flash, fields: BootStateFields): BootState {
  const region = flash.layout.bootState;
  const area = flash.read(region.offsetBytes, region.sizeBytes);
  const scan = scanLog(flash, area);
  if (scan.latest.sequence >= SEQUENCE_MAX) throw new Error("boot state: sequence exhausted"); // 4 billion updates
  const next: BootState = { ...fields, sequence: scan.latest.sequence + 1 };
  const record = encodeBootRecord(next);
  const { blockBytes, blockCount, recordsPerBlock, baseBytes } = stateGeometry(flash);
  const blockIndex = scan.blockIndex ?? 0;
  const firstRecordIndex = scan.blockIndex === null ? 0 : scan.recordIndex + 1;
  for (let recordIndex = firstRecordIndex; recordIndex < recordsPerBlock; recordIndex += 1) {
    const at = blockIndex * blockBytes + recordIndex * BOOT_RECORD_SIZE_BYTES;
    if (isErased(area.subarray(at, at + BOOT_RECORD_SIZE_BYTES))) {
      flash.program(baseBytes + at, record);
      return next;
    }
  }
  const nextBlockIndex = (blockIndex + 1) % blockCount;
  flash.erase(baseBytes / blockBytes + nextBlockIndex);
  flash.program(baseBytes + nextBlockIndex * blockBytes, record);
  return next;
}
