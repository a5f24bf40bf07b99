// wasm-iop run, as a user runs it: boots the default board (every processor prints its banner with role, RAM and
// ABI version), idles until SIGINT or SIGTERM and exits 0; a bad board file is one clear error; a panicking
// firmware makes it exit non-zero, or reset the board with --reset-on-panic.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, startCli } from "../../support/cli.ts";
import { writeTrapFirmware } from "../../support/trap_firmware.ts";
import { fileTempDir } from "../../support/temp_dir.ts";

const BANNERS = [
  /\[host\] wasm-iop 0\.1\.0 abi 2: processor host #0 role host ram 64 MiB board iop-dev/,
  /\[sp1\] wasm-iop 0\.1\.0 abi 2: processor sp1 #1 role storage ram 32 MiB board iop-dev/,
  /\[sp2\] wasm-iop 0\.1\.0 abi 2: processor sp2 #2 role storage ram 32 MiB board iop-dev/,
];

const tmp = fileTempDir("wasm-iop-cli-");

describe("wasm-iop", () => {
  it("lists its commands, and explains each with --help", async () => {
    const overview = await runCli(["--help"]);
    expect(overview.code).toBe(0);
    expect(overview.stdout).toMatch(/run\s+boot a board/);
    const help = await runCli(["run", "--help"]);
    expect(help.code).toBe(0);
    for (const option of ["--board FILE", "--portal HOST:PORT", "--data-dir DIR", "--reset-on-panic"]) expect(help.stdout).toContain(option);
    const unknown = await runCli(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });
});

describe("wasm-iop run", () => {
  it("boots every processor of the default board and stops cleanly on SIGINT", async () => {
    const { child, result, waitFor } = startCli(["run", "--portal", "127.0.0.1:0", "--data-dir", join(tmp, "a")]);
    await waitFor(/Ctrl-C stops the board/);
    await waitFor(/\[sp2\] wasm-iop/);
    child.kill("SIGINT");
    const { code, stdout } = await result;
    expect(code).toBe(0);
    for (const banner of BANNERS) expect(stdout).toMatch(banner);
    expect(stdout).toMatch(/SIGINT: stopping\nboard iop-dev stopped after \d+\.\d{3} s of board time/);
  });

  it("stops cleanly on SIGTERM", async () => {
    const { child, result, waitFor } = startCli(["run", "--portal", "127.0.0.1:0", "--data-dir", join(tmp, "b")]);
    await waitFor(/\[sp2\] wasm-iop/);
    child.kill("SIGTERM");
    expect((await result).code).toBe(0);
  });

  it("runs a stretch of board time in simulation mode with --for, with a trace fingerprint", async () => {
    const traceFile = join(tmp, "trace.jsonl");
    const { code, stdout } = await runCli(["run", "--for", "2.5", "--trace", traceFile, "--data-dir", join(tmp, "c")]);
    expect(code).toBe(0);
    for (const banner of BANNERS) expect(stdout).toMatch(banner);
    expect(stdout).toMatch(/stopped after 2\.500 s of board time, trace \d+ events, sha256 [0-9a-f]{64}/);
  });

  it("names the file, the field and what was expected for a bad board file", async () => {
    const board = join(tmp, "bad.json");
    writeFileSync(board, JSON.stringify({ name: "bad", processors: [{ name: "host", role: "host", ramMiB: "lots", pci: [] }], disks: [] }));
    const { code, stderr } = await runCli(["run", "--board", board]);
    expect(code).toBe(1);
    expect(stderr).toContain(`${board}: processors[0].ramMiB: expected an integer from 4 to 4096, got "lots"`);
  });

  it("refuses a malformed option with the command's help", async () => {
    const { code, stderr } = await runCli(["run", "--portal", "nowhere"]);
    expect(code).toBe(2);
    expect(stderr).toContain('--portal: expected HOST:PORT with a port from 0 to 65535, got "nowhere"');
  });

  it("refuses an image of board ABI 1 before boot, in one line per processor", async () => {
    const image = join(tmp, "abi1.wasm");
    await writeTrapFirmware(image, { abiVersion: 1 });
    const { code, stderr } = await runCli(["run", "--firmware", image, "--for", "1", "--data-dir", join(tmp, "abi1")]);
    expect(code).toBe(1);
    const refusals = stderr.split("\n").filter((line) => line.includes("board ABI"));
    expect(refusals[0]).toMatch(/^PANIC on processor host at 0\.000000 s: boot, task -, code 2: the image implements board ABI 1; this board provides ABI 2 \(docs\/board-abi\.md\)$/);
    expect(stderr).not.toMatch(/BigInt|TypeError|unreachable/);
  });

  describe("with a firmware that traps", async () => {
    const image = join(tmp, "trap.wasm");
    await writeTrapFirmware(image);

    it("reports processor, task, code and message, and exits non-zero", async () => {
      const { code, stderr } = await runCli(["run", "--firmware", image, "--for", "1", "--data-dir", join(tmp, "d")]);
      expect(code).toBe(1);
      expect(stderr).toMatch(/PANIC on processor host at 0\.000000 s: trap, task -, code 5: unreachable/);
    });

    it("resets the board instead with --reset-on-panic", async () => {
      const { code, stdout } = await runCli(["run", "--firmware", image, "--for", "0.05", "--reset-on-panic", "--data-dir", join(tmp, "e")]);
      expect(code).toBe(0);
      expect(stdout).toMatch(/resetting the board \(reset 1\)/);
      expect(stdout).toMatch(/stopped after 0\.050 s of board time, \d+ resets/);
    });
  });
});
