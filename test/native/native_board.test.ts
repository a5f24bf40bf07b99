// The native board (boards/native/, C): built with CMake, it boots the signed image from the flash file that
// `wasm-iop flash` writes, applies trial, confirm and revert as the JS boot ROM does (the JS ROM, host/boot/rom.ts,
// is the oracle: each case compares the native ROM's lines with bootSelect's on a copy of the same flash), refuses a
// board file it does not support by name, and its ARMv7 build boots under qemu-arm. Without cmake (or, for the ARM
// case, without the cross compiler and qemu-arm) these tests say what they skipped; under CI (CI=true) that is a
// failure.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildNative, nativeBoardPath, qemuArmPrefix } from "../../tools/build/native.mjs";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { Flash, FLASH_ERASE_BLOCK_SIZE_DEFAULT_BYTES, BOOT_STATE_BLOCK_COUNT } from "../../host/devices/flash.ts";
import { bootSelect, confirm, flashImage, type BootPolicy } from "../../host/boot/rom.ts";
import { buildImage, signImage } from "../../host/image/format.ts";
import { ABI_VERSION } from "../../host/abi/board_imports.ts";
import { startCli } from "../support/cli.ts";
import { generateKeyPair, loadPrivateKey, loadPublicKey, privateKeyFromPem, trustedKey } from "../../host/image/keys.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const DEV_KEY = join(ROOT, "keys", "dev-DO-NOT-SHIP");
const has = (tool: string, args = ["--version"]) => spawnSync(tool, args, { stdio: "ignore" }).error === undefined;

const missing = ["cmake", "gcc", "g++"].filter((tool) => !has(tool));
const missingArm = ["arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-g++", "qemu-arm"].filter((tool) => !has(tool));
function announce(message: string): void {
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them (.ci/run installs them)`);
  process.stderr.write(`${message}\n`);
}
if (missing.length > 0) announce(`native board tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install cmake gcc g++ wabt libsodium-dev libcjson-dev)`);
else if (missingArm.length > 0) announce(`native ARMv7 test skipped: ${missingArm.join(", ")} not installed (Debian: apt-get install gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf qemu-user)`);

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-native-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const SLOT_MIB = 1;
const BOARD_COMPAT = "native-test";

/** A board file the native board supports: one host processor, no PCI functions, a flash with 1 MiB slots. */
function boardFile(dir: string, extra: Record<string, unknown> = {}, processorExtra: Record<string, unknown> = {}): string {
  const path = join(dir, "board.json");
  const board = {
    name: "native-test",
    seed: 7,
    processors: [{ name: "host", role: "host", ramMiB: 8, pci: [], ...processorExtra }],
    disks: [],
    flash: { image: "flash.bin", slotSizeMiB: SLOT_MIB, boardCompat: BOARD_COMPAT, trustedKeys: [`${DEV_KEY}.pub`], populateKey: DEV_KEY },
    ...extra,
  };
  writeFileSync(path, JSON.stringify(board));
  return path;
}

function openFlash(path: string): Flash {
  const blockBytes = FLASH_ERASE_BLOCK_SIZE_DEFAULT_BYTES;
  return Flash.openFile(path, { geometry: { eraseBlockSizeBytes: blockBytes, sizeBytes: BOOT_STATE_BLOCK_COUNT * blockBytes + 2 * SLOT_MIB * 1024 * 1024 } });
}

const policy = (): BootPolicy => ({ trustedKeys: [trustedKey(loadPublicKey(`${DEV_KEY}.pub`))], boardCompat: BOARD_COMPAT, abiVersion: ABI_VERSION });

function image(options: { securityCounter?: number; boardCompat?: string; key?: "dev" | "other" | "none"; abiVersion?: number } = {}): Uint8Array {
  const unsigned = buildImage({
    payload: new Uint8Array(readFileSync(FIRMWARE_PATH)),
    version: { major: 0, minor: 1, revision: 0, build: 0 },
    abiVersion: options.abiVersion ?? ABI_VERSION,
    boardCompat: options.boardCompat ?? BOARD_COMPAT,
    securityCounter: options.securityCounter ?? 0,
  });
  if (options.key === "none") return unsigned;
  const key = options.key === "other" ? privateKeyFromPem(generateKeyPair().privateKeyPem) : loadPrivateKey(DEV_KEY);
  return signImage(unsigned, key);
}

let caseIndex = 0;
/** A data directory with a fresh flash; `prepare` writes it with the JS ROM's functions. */
function caseDir(prepare: (flash: Flash) => void): { dir: string; board: string; flashPath: string } {
  const dir = join(tmp, `case${caseIndex++}`);
  mkdirSync(dir);
  const flashPath = join(dir, "flash.bin");
  const flash = openFlash(flashPath);
  prepare(flash);
  flash.close();
  return { dir, board: boardFile(dir), flashPath };
}

/** What the JS ROM logs and decides for this flash (run on a copy, so the native board sees the original). */
function jsRomLines(flashPath: string): string[] {
  const copy = `${flashPath}.js-copy`;
  copyFileSync(flashPath, copy);
  const flash = openFlash(copy);
  try {
    const result = bootSelect(flash, policy());
    return [...result.log.map((line) => `rom: ${line}`), ...(result.ok ? [] : [`error: ${result.error}`])];
  } finally {
    flash.close();
  }
}

interface Run { status: number | null; stdout: string; stderr: string; rom: string[] }
/** Runs the native board to its end (asynchronously: a board run under qemu-arm on a busy machine must not block the
 * worker's event loop, test/support/stall_guard.ts); killed after 120 s, as spawnSync's timeout did. */
async function runNative(c: { dir: string; board: string }, args: string[] = [], prefix: string[] = [], arch: "x86_64" | "armv7" = "x86_64"): Promise<Run> {
  const command = [...prefix, nativeBoardPath(arch), "--board", c.board, "--data-dir", c.dir, "--no-pace", ...args];
  const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"], timeout: 120_000 });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const status = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve(code));
  });
  const result = { status, stdout, stderr };
  const rom = result.stdout.split("\n").filter((line) => line.startsWith("rom: ") && !line.startsWith("rom: booting slot"));
  const error = result.stderr.split("\n").find((line) => line.startsWith("iop-native-board: no bootable slot"));
  if (error !== undefined) rom.push(`error: ${error.slice("iop-native-board: ".length)}`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, rom };
}

describe.skipIf(missing.length > 0)("the native board", () => {
  beforeAll(async () => {
    await buildNative({ quiet: true });
  }, 600_000);

  it("boots the image `wasm-iop flash` writes as a trial, and the firmware confirms it", async () => {
    const dir = join(tmp, "cli");
    mkdirSync(dir);
    const board = boardFile(dir);
    const flashed = await startCli(["flash", "--board", board, "--data-dir", dir, "--build"]).result;
    expect(flashed.stderr).toBe("");
    expect(flashed.code).toBe(0);
    const expected = jsRomLines(join(dir, "flash.bin"));
    const first = await runNative({ dir, board }, ["--stop-after-ms", "100"]);
    expect(first.status).toBe(0);
    expect(first.rom).toEqual([...expected, "rom: slot A confirmed (security counter 0)"]);
    expect(first.stdout).toContain("rom: booting slot A (trial), version 0.1.0");
    expect(first.stdout).toContain("[host] wasm-iop 0.1.0 abi 2: processor host #0 role host ram 8 MiB board native-test");
    expect(first.stdout).toContain("[host] uma: self-test passed; image confirmed");
    expect(first.stdout).toContain("[host] iscsi: target iqn.2026-11.org.wasm-iop:native-test, 0 LUNs");
    // Confirmed: the next start boots it as the active image, no trial.
    const second = await runNative({ dir, board }, ["--stop-after-ms", "100"]);
    expect(second.status).toBe(0);
    expect(second.stdout).toContain("rom: booting slot A, version 0.1.0");
    expect(second.stdout).not.toContain("confirmed (security counter");
  });

  it("reverts a trial that never confirmed, at the next start, as the JS ROM does", async () => {
    const c = caseDir((flash) => {
      flashImage(flash, "A", image());
      bootSelect(flash, policy());
      confirm(flash); // A is the confirmed image
      flashImage(flash, "B", image({ securityCounter: 1 }));
    });
    // Stopped before its first run(): the firmware never reached its self-test, so B stays on trial.
    const trial = await runNative(c, ["--stop-after-ms", "0"]);
    expect(trial.status).toBe(0);
    expect(trial.stdout).toContain("rom: booting slot B (trial)");
    const expected = jsRomLines(c.flashPath);
    expect(expected[0]).toBe("rom: slot B: the trial boot was not confirmed before this reset; reverting");
    const next = await runNative(c, ["--stop-after-ms", "0"]);
    expect(next.rom).toEqual(expected);
    expect(next.stdout).toContain("rom: booting slot A, version 0.1.0");
  });

  const refusals: { name: string; reason: string; prepare: (flash: Flash) => void }[] = [
    { name: "an image with a flipped payload byte", reason: "bad-hash", prepare: (flash) => { const bytes = image(); bytes[1000]! ^= 1; flashImage(flash, "A", bytes); } },
    { name: "an image signed by a key the board does not trust", reason: "unknown-key", prepare: (flash) => flashImage(flash, "A", image({ key: "other" })) },
    { name: "an unsigned image", reason: "unsigned", prepare: (flash) => flashImage(flash, "A", image({ key: "none" })) },
    { name: "an image for another board", reason: "board-mismatch", prepare: (flash) => flashImage(flash, "A", image({ boardCompat: "another-board" })) },
    { name: "an image of board ABI 1 (i64 bus imports)", reason: "abi-mismatch", prepare: (flash) => flashImage(flash, "A", image({ abiVersion: 1 })) },
    { name: "a tampered signature", reason: "bad-signature", prepare: (flash) => { const bytes = image(); bytes[bytes.length - 1]! ^= 1; flashImage(flash, "A", bytes); } },
    { name: "a blank part", reason: "empty", prepare: () => {} },
    {
      name: "an older image after a newer one was confirmed",
      reason: "rollback",
      prepare: (flash) => {
        flashImage(flash, "A", image({ securityCounter: 5 }));
        bootSelect(flash, policy());
        confirm(flash);
        flashImage(flash, "B", image({ securityCounter: 2 }));
      },
    },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name} (${r.reason}) with the JS ROM's words`, async () => {
      const c = caseDir(r.prepare);
      const expected = jsRomLines(c.flashPath);
      expect(expected.join("\n")).toContain(`${r.reason}: `);
      const run = await runNative(c, ["--stop-after-ms", "0"]);
      expect(run.rom).toEqual(expected);
      expect(run.status).toBe(expected.some((line) => line.startsWith("error: ")) ? 1 : 0);
    });
  }

  it("refuses what it does not model, naming the field", async () => {
    const dir = join(tmp, "refuse");
    mkdirSync(dir);
    const cases: [Record<string, unknown>, Record<string, unknown>, string][] = [
      [{}, { pci: [{ slot: 1, model: "xor-engine" }] }, `"processors"[0]."pci"[0]: model "xor-engine" is not supported by the native board`],
      [{ volumes: [{ name: "v", type: "raid5", members: ["a", "b", "c"], chunkKiB: 64 }] }, {}, `"volumes"[0]."type": "raid5" is not supported by the native board yet (only "disk" volumes)`],
      [{ disks: [{ name: "d", sizeMiB: 1, blockSize: 512, backend: "memory" }] }, {}, `"disks"[0]."backend": "memory" is not supported by the native board (use "file")`],
      [{}, { pci: [{ slot: 1, model: "iop-bridge", processor: "sp1" }] }, `"processors"[0]."pci"[0]: model "iop-bridge" is not supported by the native board yet`],
      [{ colour: "blue" }, {}, `"colour" is not a board-file field the native board knows`],
      [{}, { ramMiB: 0 }, `"processors"[0]."ramMiB": expected an integer from 1 to 4095`],
    ];
    for (const [extra, processorExtra, message] of cases) {
      const board = boardFile(dir, extra, processorExtra);
      const run = await runNative({ dir, board });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain(`${board}: ${message}`);
    }
  });

  it.skipIf(missingArm.length > 0)("its ARMv7 build boots under qemu-arm and prints the boot banner", async () => {
    await buildNative({ arm: true, quiet: true });
    expect(existsSync(nativeBoardPath("armv7"))).toBe(true);
    const c = caseDir((flash) => flashImage(flash, "A", image()));
    const run = await runNative(c, ["--stop-after-ms", "100"], qemuArmPrefix(), "armv7");
    expect(run.stderr).not.toContain("stopped:");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("[host] wasm-iop 0.1.0 abi 2: processor host #0 role host ram 8 MiB board native-test");
    expect(run.stdout).toContain("rom: slot A confirmed (security counter 0)");
  }, 600_000);
});
