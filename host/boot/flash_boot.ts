// A board's flash as the emulator boots from it: the part in the data directory, the ROM's policy from the board
// file, the first population from the current build, and the choice of image at every power-on and reset.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ABI_VERSION } from "../abi/board_imports.ts";
import { compileImage } from "../abi/image_module.ts";
import { buildImage, parseVersion, signImage } from "../image/format.ts";
import { loadPrivateKey, loadPublicKey, trustedKey } from "../image/keys.ts";
import { addFirmwareProducer } from "../image/producers.ts";
import type { FlashSpec } from "../board/load.ts";
import { Flash, FLASH_ERASE_BLOCK_SIZE_DEFAULT_BYTES, BOOT_STATE_BLOCK_COUNT, type SlotName } from "../devices/flash.ts";
import { readBootState } from "./boot_state.ts";
import { bootSelect, confirm, flashImage, type BootPolicy } from "./rom.ts";

/** The board ABI images must need to boot here (the one definition: host/abi/board_imports.ts). */
export const BOARD_ABI_VERSION = ABI_VERSION;

/** What the ROM chose: the module to run and whether it is on trial. */
export interface BootSelection {
  module: WebAssembly.Module;
  slot: SlotName | undefined; // undefined: not booted from flash
  trial: boolean;
  payload?: Uint8Array; // the image's WebAssembly bytes, for a recording's firmware hash (docs/replay.md)
}

export class FlashBoot {
  readonly flash: Flash;
  readonly policy: BootPolicy;
  /** Lines the ROM logged, for the console. */
  readonly log: string[] = [];
  confirmedCount = 0;

  constructor(readonly spec: FlashSpec, dataDir: string) {
    const slotBytes = spec.slotSizeMiB * 1024 * 1024;
    this.flash = Flash.openFile(join(dataDir, spec.image), {
      geometry: {
        eraseBlockSizeBytes: FLASH_ERASE_BLOCK_SIZE_DEFAULT_BYTES,
        sizeBytes: BOOT_STATE_BLOCK_COUNT * FLASH_ERASE_BLOCK_SIZE_DEFAULT_BYTES + 2 * slotBytes,
      },
      onGuestError: (message) => this.log.push(`flash: ${message}`),
    });
    this.policy = {
      trustedKeys: spec.trustedKeys.map((path) => trustedKey(loadPublicKey(path))),
      boardCompat: spec.boardCompat,
      abiVersion: BOARD_ABI_VERSION,
    };
  }

  /** True when neither slot has ever been written and nothing is pending: a factory-fresh part. */
  isBlank(): boolean {
    const state = readBootState(this.flash);
    return state.sequence === 0;
  }

  /**
   * Writes the first image from `wasmPath`, signed with the board's populate key, as the pending image of slot A:
   * the next boot runs it as a trial and the firmware's confirm makes it the active image.
   */
  populate(wasmPath: string, version: string, gitCommit: string | null): void {
    if (this.spec.populateKey === undefined) throw new Error("the board's flash is blank and the board file names no populateKey to sign a first image with");
    const payload = addFirmwareProducer(new Uint8Array(readFileSync(wasmPath)), { name: "wasm-iop", version, gitCommit });
    const unsigned = buildImage({ payload, version: parseVersion(version), abiVersion: BOARD_ABI_VERSION, boardCompat: this.spec.boardCompat, securityCounter: 0 });
    const image = signImage(unsigned, loadPrivateKey(this.spec.populateKey));
    const { slot } = flashImage(this.flash, "A", image, { policy: this.policy });
    this.log.push(`flash: blank part populated: slot ${slot} holds ${version} from ${wasmPath}`);
  }

  /** The ROM's choice for this power-on: verifies, records a trial, reverts an unconfirmed one. Throws when nothing boots. */
  select(): BootSelection {
    const result = bootSelect(this.flash, this.policy);
    for (const line of result.log) this.log.push(`rom: ${line}`);
    if (!result.ok) throw new FlashBootError(result.error);
    this.log.push(`rom: booting slot ${result.slot}${result.trial ? " (trial)" : ""}, version ${result.decoded.header.version.major}.${result.decoded.header.version.minor}.${result.decoded.header.version.revision}`);
    const payload = new Uint8Array(result.payload);
    return { module: compileImage(payload), slot: result.slot, trial: result.trial, payload };
  }

  /** The firmware confirmed its image (a write to the system controller). */
  confirm(): void {
    const result = confirm(this.flash);
    if (result.confirmed) {
      this.confirmedCount += 1;
      this.log.push(`rom: slot ${result.slot} confirmed (security counter ${result.securityCounter})`);
    } else {
      this.log.push(`rom: confirm ignored: ${result.reason}`);
    }
  }

  close(): void {
    this.flash.close();
  }
}

export class FlashBootError extends Error {
  override name = "FlashBootError";
}
