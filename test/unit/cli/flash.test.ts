// Images on a board's flash, end to end through the CLI: the first run populates a blank flash and the firmware
// confirms its image after the self-test; `wasm-iop flash` writes the other slot for a trial, which the firmware
// confirms; a refused image leaves the board booting its good slot; an image that never confirms (it traps) is
// reverted at the next reset.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../support/cli.ts";
import { writeTrapFirmware } from "../../support/trap_firmware.ts";
import { scaled } from "../../support/time.ts";
import { fileTempDir } from "../../support/temp_dir.ts";

const tmp = fileTempDir("wasm-iop-flash-");
const DEV_KEY = "keys/dev-DO-NOT-SHIP";

// Each test runs the CLI three to five times in a row; under load a start alone takes 10-20 s (tsx), so the bound is
// generous: a liveness bound, not a speed check.
describe("booting from flash", { timeout: scaled(240_000) }, () => {
  const dataDir = join(tmp, "board");

  it("populates a blank flash from the current build, boots it as a trial, and the firmware confirms it", async () => {
    const { code, stdout } = await runCli(["run", "--for", "0.5", "--data-dir", dataDir]);
    expect(code).toBe(0);
    expect(stdout).toContain("flash: blank part populated: slot A holds 0.1.0");
    expect(stdout).toContain("rom: booting slot A (trial), version 0.1.0");
    expect(stdout).toContain("[host] uma: self-test passed; image confirmed");
    expect(stdout).toMatch(/rom: slot A confirmed \(security counter 0\)/);
    // The next power-on boots the confirmed image, not as a trial.
    const again = await runCli(["run", "--for", "0.2", "--data-dir", dataDir]);
    expect(again.stdout).toContain("rom: booting slot A, version 0.1.0");
    expect(again.stdout).not.toContain("populated");
  });

  it("writes a signed image to the other slot, which boots as a trial and is confirmed", async () => {
    const image = join(tmp, "next.img");
    expect((await runCli(["image", "build", "--version", "0.1.1", "--out", image])).code).toBe(0);
    expect((await runCli(["image", "sign", "--key", DEV_KEY, image])).code).toBe(0);
    const flashed = await runCli(["flash", "--data-dir", dataDir, image]);
    expect(flashed.code).toBe(0);
    expect(flashed.stdout).toMatch(/wrote slot B of .*flash\.bin .* it boots as a trial next \(confirmed slot: A\)/);
    const run = await runCli(["run", "--for", "0.5", "--data-dir", dataDir]);
    expect(run.stdout).toContain("rom: slot B: booting the new image as a trial");
    expect(run.stdout).toMatch(/rom: slot B confirmed/);
    const after = await runCli(["run", "--for", "0.2", "--data-dir", dataDir]);
    expect(after.stdout).toContain("rom: booting slot B, version 0.1.1");
  });

  it("creates a data directory that does not exist yet, as run does", async () => {
    const image = join(tmp, "fresh.img");
    expect((await runCli(["image", "build", "--out", image])).code).toBe(0);
    expect((await runCli(["image", "sign", "--key", DEV_KEY, image])).code).toBe(0);
    const fresh = join(tmp, "new", "board");
    const flashed = await runCli(["flash", "--data-dir", fresh, image]);
    expect(flashed.stderr).toBe("");
    expect(flashed.code).toBe(0);
    expect(existsSync(join(fresh, "flash.bin"))).toBe(true);
  });

  it("refuses an image signed with a key the board does not trust, and keeps booting its slot", async () => {
    const keyPrefix = join(tmp, "other");
    expect((await runCli(["image", "keygen", "--out", keyPrefix])).code).toBe(0);
    const image = join(tmp, "untrusted.img");
    await runCli(["image", "build", "--out", image]);
    await runCli(["image", "sign", "--key", keyPrefix, image]);
    const flashed = await runCli(["flash", "--data-dir", dataDir, image]);
    expect(flashed.code).toBe(1);
    expect(flashed.stderr).toMatch(/refused the image for slot A: unknown-key/);
    const run = await runCli(["run", "--for", "0.2", "--data-dir", dataDir]);
    expect(run.stdout).toContain("rom: booting slot B, version 0.1.1");
  });

  it("reverts an image that does not confirm before the next reset", async () => {
    // A firmware whose run() traps: it never reaches the self-test, so it never confirms.
    const wasm = join(tmp, "trap.wasm");
    await writeTrapFirmware(wasm);
    const image = join(tmp, "trap.img");
    await runCli(["image", "build", "--wasm", wasm, "--version", "0.1.2", "--out", image]);
    await runCli(["image", "sign", "--key", DEV_KEY, image]);
    expect((await runCli(["flash", "--data-dir", dataDir, image])).code).toBe(0);
    const run = await runCli(["run", "--for", "0.5", "--reset-on-panic", "--data-dir", dataDir]);
    expect(run.stdout).toContain("rom: slot A: booting the new image as a trial");
    expect(run.stderr).toMatch(/PANIC on processor host .* trap/);
    expect(run.stdout).toContain("rom: slot A: the trial boot was not confirmed before this reset; reverting");
    expect(run.stdout).toContain("rom: booting slot B, version 0.1.1");
    expect(run.code).toBe(0);
  });

  it("says why when the board has no flash, or the arguments are wrong", async () => {
    const usage = await runCli(["flash", "--slot", "c", "x.img"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--slot: expected a, b or auto, got "c"');
  });
});
