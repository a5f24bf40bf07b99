// The boot ROM: picks the slot to boot, runs a new image once as a trial and reverts it unless the firmware
// confirms it, and writes new images to the inactive slot. Plain functions over a Flash, so tests can cut the
// power at every step. The state machine is drawn in docs/image-format.md ("Trial, confirm, revert").
import { decodeImage, ImageError, verifyImage, type DecodedImage } from "../image/format.ts";
import type { TrustedKey } from "../image/keys.ts";
import { Flash, type SlotName } from "../devices/flash.ts";
import { readBootState, writeBootState, type BootState } from "./boot_state.ts";

/** What the board trusts and is: the ROM's whole configuration. */
export interface BootPolicy {
  trustedKeys: readonly TrustedKey[];
  boardCompat: string;
  abiVersion: number;
}

export type BootResult =
  | {
      ok: true;
      slot: SlotName;
      image: Uint8Array; // the whole image, header to trailer
      payload: Uint8Array; // the firmware .wasm
      decoded: DecodedImage;
      /** True when this boot is the image's one trial: it must confirm before the next reset or be reverted. */
      trial: boolean;
      log: string[];
    }
  | { ok: false; error: string; log: string[] };

export function otherSlot(slot: SlotName): SlotName {
  return slot === "A" ? "B" : "A";
}

/** The slot's image bytes (exactly the image, without the slot's unused tail), or an ImageError for its structure. */
export function readSlotImage(flash: Flash, slot: SlotName): Uint8Array {
  const region = flash.layout.slots[slot];
  const slotBytes = flash.read(region.offsetBytes, region.sizeBytes);
  const decoded = decodeImage(slotBytes, { slotSizeBytes: region.sizeBytes, trailingBytes: "allow" });
  return slotBytes.slice(0, decoded.totalSizeBytes);
}

type SlotCheck = { ok: true; image: Uint8Array; decoded: DecodedImage } | { ok: false; reason: string };

/** Verifies the slot against the policy and the stored security counter; the reason names the refusal. */
function checkSlot(flash: Flash, slot: SlotName, policy: BootPolicy, state: BootState): SlotCheck {
  try {
    const image = readSlotImage(flash, slot);
    const decoded = verifyImage(image, {
      trustedKeys: policy.trustedKeys,
      boardCompat: policy.boardCompat,
      abiVersion: policy.abiVersion,
      securityCounterMin: state.securityCounter,
      slotSizeBytes: flash.layout.slots[slot].sizeBytes,
    });
    return { ok: true, image, decoded };
  } catch (error) {
    if (error instanceof ImageError) return { ok: false, reason: error.message };
    throw error; // a PowerLoss or a bug, not a bad image
  }
}

/**
 * Chooses the image to boot, in this order:
 * 1. A trial recorded at the last boot and never confirmed failed: clear it (revert).
 * 2. A pending image that verifies is recorded as on trial, then booted as the trial; one that does not is dropped.
 * 3. The confirmed (active) slot boots when it verifies.
 * 4. Otherwise the other slot, when it verifies, boots as a trial: it has not been confirmed on this board.
 * Each refusal is logged with its reason. State is written before the image is handed over, so a reset after
 * that point is counted against the trial. A PowerLoss from the flash propagates; booting again is always safe.
 */
export function bootSelect(flash: Flash, policy: BootPolicy): BootResult {
  const log: string[] = [];
  let state = readBootState(flash);
  if (state.trialSlot !== null) {
    log.push(`slot ${state.trialSlot}: the trial boot was not confirmed before this reset; reverting`);
    state = writeBootState(flash, { ...state, trialSlot: null });
  }
  if (state.pendingSlot !== null) {
    const slot = state.pendingSlot;
    const check = checkSlot(flash, slot, policy, state);
    if (check.ok) {
      writeBootState(flash, { ...state, pendingSlot: null, trialSlot: slot });
      log.push(`slot ${slot}: booting the new image as a trial`);
      return { ok: true, slot, image: check.image, payload: check.decoded.payload, decoded: check.decoded, trial: true, log };
    }
    log.push(`slot ${slot}: refused the new image: ${check.reason}`);
    state = writeBootState(flash, { ...state, pendingSlot: null });
  }
  const candidates: SlotName[] = state.activeSlot === null ? ["A", "B"] : [state.activeSlot, otherSlot(state.activeSlot)];
  const refusals: string[] = [];
  for (const slot of candidates) {
    const check = checkSlot(flash, slot, policy, state);
    if (!check.ok) {
      log.push(`slot ${slot}: refused: ${check.reason}`);
      refusals.push(`slot ${slot}: ${check.reason}`);
      continue;
    }
    const trial = slot !== state.activeSlot;
    if (trial) {
      writeBootState(flash, { ...state, trialSlot: slot });
      log.push(`slot ${slot}: no confirmed image boots; booting this one as a trial`);
    }
    return { ok: true, slot, image: check.image, payload: check.decoded.payload, decoded: check.decoded, trial, log };
  }
  return { ok: false, error: `no bootable slot (${refusals.join("; ")})`, log };
}

export type ConfirmResult =
  | { confirmed: true; slot: SlotName; securityCounter: number }
  | { confirmed: false; reason: string };

/**
 * The firmware on trial confirms itself: its slot becomes the active one and the stored security counter rises to
 * the image's (never falls). One record, so a power cut leaves either the trial or the confirmation, never half.
 */
export function confirm(flash: Flash): ConfirmResult {
  const state = readBootState(flash);
  const slot = state.trialSlot;
  if (slot === null) return { confirmed: false, reason: "no image is on trial (already confirmed, or reverted)" };
  let securityCounter: number;
  try {
    securityCounter = decodeImage(readSlotImage(flash, slot), {}).securityCounter;
  } catch (error) {
    if (error instanceof ImageError) return { confirmed: false, reason: `slot ${slot} no longer holds an image: ${error.message}` };
    throw error;
  }
  const raised = Math.max(state.securityCounter, securityCounter);
  writeBootState(flash, { activeSlot: slot, pendingSlot: null, trialSlot: null, securityCounter: raised });
  return { confirmed: true, slot, securityCounter: raised };
}

/** A flash request the ROM refuses before touching the part: the target is the confirmed slot, or the image does not fit. */
export class FlashImageError extends Error {
  override name = "FlashImageError";
}

export interface FlashImageOptions {
  /** Bytes per program step. Default 4 KiB. */
  chunkSizeBytes?: number;
  /** When given, the image is verified against it (with the stored security counter) before anything is erased. */
  policy?: BootPolicy;
}

export const FLASH_CHUNK_SIZE_DEFAULT_BYTES = 4096;

/** 'auto' is the slot that does not hold the confirmed image; on a board with none, slot A. */
export function inactiveSlot(state: BootState): SlotName {
  return state.activeSlot === null ? "A" : otherSlot(state.activeSlot);
}

/**
 * Writes `image` to a slot that is not the confirmed one and marks it pending, so the next boot tries it once.
 * Steps, each its own flash operation: (if the slot was pending or on trial) a record forgetting that; one erase
 * per block of the slot; one program per chunk; then the record marking it pending. A cut anywhere leaves the
 * confirmed slot and its record untouched, so the board boots what it booted before.
 */
export function flashImage(flash: Flash, target: SlotName | "auto", image: Uint8Array, options: FlashImageOptions = {}): { slot: SlotName } {
  const chunkSizeBytes = options.chunkSizeBytes ?? FLASH_CHUNK_SIZE_DEFAULT_BYTES;
  if (!Number.isInteger(chunkSizeBytes) || chunkSizeBytes <= 0) throw new RangeError(`chunk size ${chunkSizeBytes} is not a positive integer`);
  let state = readBootState(flash);
  const slot = target === "auto" ? inactiveSlot(state) : target;
  if (slot === state.activeSlot) {
    throw new FlashImageError(`slot ${slot} holds the confirmed image; write slot ${otherSlot(slot)} (or 'auto')`);
  }
  const region = flash.layout.slots[slot];
  try {
    // Structure always, so the slot holds exactly one whole image; signature and board only when a policy is given.
    decodeImage(image, { slotSizeBytes: region.sizeBytes });
    if (options.policy !== undefined) {
      verifyImage(image, { ...options.policy, slotSizeBytes: region.sizeBytes, securityCounterMin: state.securityCounter });
    }
  } catch (error) {
    if (error instanceof ImageError) throw new FlashImageError(`refused the image for slot ${slot}: ${error.message}`);
    throw error;
  }
  // Forget a pending or trial image in this slot first, or a confirm could vouch for bytes that never ran.
  if (state.pendingSlot === slot || state.trialSlot === slot) {
    state = writeBootState(flash, {
      ...state,
      pendingSlot: state.pendingSlot === slot ? null : state.pendingSlot,
      trialSlot: state.trialSlot === slot ? null : state.trialSlot,
    });
  }
  flash.eraseRegion(region);
  for (let offsetBytes = 0; offsetBytes < image.length; offsetBytes += chunkSizeBytes) {
    flash.program(region.offsetBytes + offsetBytes, image.subarray(offsetBytes, offsetBytes + chunkSizeBytes));
  }
  const readBack = flash.read(region.offsetBytes, image.length);
  if (!readBack.every((byte, index) => byte === image[index])) {
    throw new FlashImageError(`slot ${slot} reads back different bytes than were written; not marking it pending`);
  }
  writeBootState(flash, { ...state, pendingSlot: slot });
  return { slot };
}
