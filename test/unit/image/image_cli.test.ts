// Proves `wasm-iop image` end to end on temporary files: keygen writes a usable pair, build wraps a .wasm with
// producer metadata, verify refuses the unsigned image and accepts it once signed, verify names the reason for
// each board mismatch, info shows the fields, and bad usage throws UsageError. Output is captured, not printed.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { UsageError } from "../../../tools/cli/command.ts";
import { createImageCommand, imageCommand } from "../../../tools/cli/image.ts";
import { decodeImage } from "../../../host/image/format.ts";
import { fakeWasm } from "./fixtures.ts";

function capture() {
  const io = { stdout: "", stderr: "", out: (text: string) => void (io.stdout += text), err: (text: string) => void (io.stderr += text) };
  return { io, command: createImageCommand(io) };
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { io, command } = capture();
  const code = await command.run(argv);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "wasm-iop-image-"));
  writeFileSync(join(dir, "fw.wasm"), fakeWasm("cli-firmware", 10));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("wasm-iop image", () => {
  it("keygen, build, sign, verify and info work together", async () => {
    // The whole release path on one fake firmware; each step's exit code and its key output are checked.
    const key = join(dir, "release");
    const keygen = await run(["keygen", "--out", key]);
    expect(keygen.code).toBe(0);
    expect(keygen.stdout).toMatch(/key id [0-9a-f]{16}/);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${key}.pub`, "utf8")).toContain("BEGIN PUBLIC KEY");

    const image = join(dir, "fw.img");
    const build = await run(["build", "--wasm", join(dir, "fw.wasm"), "--out", image, "--version", "1.2.3",
      "--security-counter", "5", "--git-commit", "deadbeef", "--board-compat", "test-board"]);
    expect(build.code).toBe(0);

    const unsigned = await run(["verify", "--key", `${key}.pub`, image]);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toMatch(/refused: unsigned:/);

    expect((await run(["sign", "--key", key, image])).code).toBe(0);
    const verified = await run(["verify", "--key", `${key}.pub`, "--board-compat", "test-board", "--abi", "2", image]);
    expect(verified.stderr).toBe("");
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/good: version 1\.2\.3, board "test-board", ABI 2, security counter 5/);

    const info = await run(["info", image]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/version\s+1\.2\.3/);
    expect(info.stdout).toMatch(/security counter\s+5/);
    expect(info.stdout).toMatch(/processed-by: wasm-iop 1\.2\.3\+git\.deadbeef/);
    expect(info.stdout).toMatch(/\(matches\)/);
  });

  it("verify exits 1 naming the reason for a wrong board, a rollback and an untrusted key", async () => {
    // One signed image checked against three boards it does not suit.
    const key = join(dir, "k2");
    const other = join(dir, "k3");
    await run(["keygen", "--out", key]);
    await run(["keygen", "--out", other]);
    const image = join(dir, "k2.img");
    await run(["build", "--wasm", join(dir, "fw.wasm"), "--out", image, "--security-counter", "3"]);
    await run(["sign", "--key", key, image]);
    const board = await run(["verify", "--key", `${key}.pub`, "--board-compat", "elsewhere", image]);
    expect([board.code, board.stderr]).toEqual([1, expect.stringMatching(/refused: board-mismatch:/)]);
    const rollback = await run(["verify", "--key", `${key}.pub`, "--security-counter", "4", image]);
    expect([rollback.code, rollback.stderr]).toEqual([1, expect.stringMatching(/refused: rollback:/)]);
    const unknown = await run(["verify", "--key", `${other}.pub`, image]);
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringMatching(/refused: unknown-key:/)]);
    const either = await run(["verify", "--key", `${other}.pub`, "--key", `${key}.pub`, image]);
    expect(either.code).toBe(0);
  });

  it("build defaults the version to package.json's and records it", async () => {
    // No --version: the header carries the package version.
    const packageVersion = (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
    const image = join(dir, "default.img");
    expect((await run(["build", "--wasm", join(dir, "fw.wasm"), "--out", image])).code).toBe(0);
    const { major, minor, revision } = decodeImage(new Uint8Array(readFileSync(image))).header.version;
    expect(`${major}.${minor}.${revision}`).toBe(packageVersion.replace(/\+.*$/, ""));
  });

  it("keygen refuses to overwrite a key without --force; files that are not images exit 1", async () => {
    const key = join(dir, "kept");
    await run(["keygen", "--out", key]);
    const again = await run(["keygen", "--out", key]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists; pass --force/);
    expect((await run(["keygen", "--out", key, "--force"])).code).toBe(0);
    const info = await run(["info", join(dir, "fw.wasm")]);
    expect(info.code).toBe(1);
    expect(info.stderr).toMatch(/bad-magic/);
    const missing = await run(["sign", "--key", join(dir, "nope"), join(dir, "fw.wasm")]);
    expect(missing.code).toBe(1);
  });

  it("explains each subcommand with --help and throws UsageError for bad usage", async () => {
    // Help goes to stdout with exit 0; missing options and unknown subcommands are usage errors (exit 2 in main).
    for (const sub of ["keygen", "build", "sign", "verify", "info"]) {
      const help = await run([sub, "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`usage: wasm-iop image ${sub}`);
    }
    const { command } = capture();
    await expect(command.run([])).rejects.toThrow(UsageError);
    await expect(command.run(["bogus"])).rejects.toThrow(UsageError);
    await expect(command.run(["build"])).rejects.toThrow(/--out is required/);
    await expect(command.run(["build", "--out", "x", "--abi", "nine"])).rejects.toThrow(UsageError);
    await expect(command.run(["verify", join(dir, "fw.wasm")])).rejects.toThrow(/--key is required/);
    await expect(command.run(["info", "--bogus", "x"])).rejects.toThrow(UsageError);
    expect(imageCommand.name).toBe("image");
    expect(imageCommand.help).toContain("usage: wasm-iop image verify");
  });
});
