// wasm-iop flash: writes a signed image into the inactive slot of a board's flash and marks it for one trial boot.
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_BOARD_PATH, loadBoardFile } from "../../host/board/load.ts";
import { BOARD_ABI_VERSION, FlashBoot } from "../../host/boot/flash_boot.ts";
import { readBootState } from "../../host/boot/boot_state.ts";
import { FlashImageError, flashImage } from "../../host/boot/rom.ts";
import { buildImage, parseVersion, signImage } from "../../host/image/format.ts";
import { loadPrivateKey } from "../../host/image/keys.ts";
import { addFirmwareProducer } from "../../host/image/producers.ts";
import { buildFirmware, FIRMWARE_PATH, packageVersion } from "../build/firmware.ts";
import { type Command, UsageError } from "./command.ts";

const help = `usage: wasm-iop flash [--board FILE] [--data-dir DIR] [--slot a|b|auto] (IMAGE | --build)

Writes a signed firmware image into a slot of the board's flash and marks it pending: the next boot (wasm-iop run)
runs it once as a trial, and the firmware confirms it after its self-test; an image that does not confirm is
reverted at the next reset. The image is verified against the board's trusted keys, board compatibility string,
ABI version and stored security counter before anything is erased. The confirmed slot is never overwritten.

options:
  --board FILE      board description with a "flash" section (default: boards/iop-dev.json)
  --data-dir DIR    where the board's flash file lives (default: ./var/<board name>)
  --slot a|b|auto   the slot to write (default auto: the one not holding the confirmed image)
  --build           instead of IMAGE: wrap build/firmware.wasm (rebuilt if stale) and sign it with the board's
                    populateKey (a development convenience; ship images signed with your own key)
  -h, --help        this help

Exit status: 0 when written and marked; 1 when the image was refused (the message says why) or the flash failed;
2 for a usage error.`;

export const flashCommand: Command = {
  name: "flash",
  help,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { board: { type: "string" }, "data-dir": { type: "string" }, slot: { type: "string", default: "auto" }, build: { type: "boolean", default: false } },
      allowPositionals: true,
      strict: true,
    });
    const slot = values.slot!.toLowerCase();
    if (slot !== "a" && slot !== "b" && slot !== "auto") throw new UsageError(`--slot: expected a, b or auto, got "${values.slot}"`);
    if (positionals.length > 1 || (positionals.length === 1) === values.build) throw new UsageError("give one IMAGE file, or --build");
    const spec = loadBoardFile(values.board ?? DEFAULT_BOARD_PATH);
    if (spec.flash === undefined) {
      process.stderr.write(`wasm-iop flash: ${spec.file}: the board has no "flash" section\n`);
      return 1;
    }
    const dataDir = resolve(values["data-dir"] ?? join("var", spec.name));
    mkdirSync(dataDir, { recursive: true }); // as `run` does: a new data directory is where a new flash file goes
    const flashBoot = new FlashBoot(spec.flash, dataDir);
    try {
      let image: Uint8Array;
      if (values.build) {
        if (spec.flash.populateKey === undefined) {
          process.stderr.write(`wasm-iop flash: ${spec.file}: --build needs flash.populateKey to sign with\n`);
          return 1;
        }
        await buildFirmware(["release"]);
        const version = packageVersion();
        const payload = addFirmwareProducer(new Uint8Array(readFileSync(FIRMWARE_PATH)), { name: "wasm-iop", version, gitCommit: null });
        const unsigned = buildImage({ payload, version: parseVersion(version), abiVersion: BOARD_ABI_VERSION, boardCompat: spec.flash.boardCompat, securityCounter: 0 });
        image = signImage(unsigned, loadPrivateKey(spec.flash.populateKey));
      } else {
        image = new Uint8Array(readFileSync(positionals[0]!));
      }
      const written = flashImage(flashBoot.flash, slot === "auto" ? "auto" : slot === "a" ? "A" : "B", image, { policy: flashBoot.policy });
      const state = readBootState(flashBoot.flash);
      process.stdout.write(`wrote slot ${written.slot} of ${join(dataDir, spec.flash.image)} (${image.length} bytes); it boots as a trial next` +
        ` (confirmed slot: ${state.activeSlot ?? "none"})\n`);
      return 0;
    } catch (error) {
      if (error instanceof FlashImageError) {
        process.stderr.write(`wasm-iop flash: ${error.message}\n`);
        return 1;
      }
      throw error;
    } finally {
      flashBoot.close();
    }
  },
};
