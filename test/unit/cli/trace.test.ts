// `wasm-iop trace` as a user runs it: `boot` records a replayable trace and prints its size and hash; `replay` of it
// reports no difference (when python3 has wasmtime); usage errors exit 2 and name what is wrong.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../../support/cli.ts";
import { scaled } from "../../support/time.ts";

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-cli-trace-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const wasmtimeMissing = spawnSync("python3", ["-c", "import wasmtime"], { stdio: "ignore" }).status !== 0;

describe("wasm-iop trace", () => {
  it("records the boot trace, and replays it with no difference under wasmtime", async () => {
    const path = join(tmp, "boot.jsonl.gz");
    const recorded = await runCli(["trace", "boot", path, "--seconds", "0.5"]);
    expect(recorded.code).toBe(0);
    const hash = /\(sha256 ([0-9a-f]{64})\)/.exec(recorded.stdout)?.[1];
    expect(recorded.stdout).toMatch(/boot, 0\.500 s of board time, \d+ hashed lines .* and \d+ replay lines, \d+\.\d\d MiB/);
    expect(readFileSync(path).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // gzip, as the name asks
    if (wasmtimeMissing) return; // test/interop/trace_board.test.ts says so, and fails under CI
    const replayed = await runCli(["trace", "replay", path]);
    expect(replayed.stdout).toContain(`no difference: `);
    expect(replayed.stdout).toContain(`trace sha256 ${hash}`);
    expect(replayed.code).toBe(0);
  }, scaled(60_000));

  it("exits 2 naming what is wrong: no action, an unknown one, no file, a file that is not there", async () => {
    const none = await runCli(["trace"]);
    expect([none.code, none.stderr]).toEqual([2, expect.stringContaining("expected boot, iscsi or replay")]);
    const unknown = await runCli(["trace", "record", "x.jsonl"]);
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining("unknown action 'record'")]);
    const noFile = await runCli(["trace", "boot"]);
    expect([noFile.code, noFile.stderr]).toEqual([2, expect.stringContaining("expected one FILE, got 0")]);
    const badSeconds = await runCli(["trace", "iscsi", "x.jsonl", "--seconds", "0"]);
    expect([badSeconds.code, badSeconds.stderr]).toEqual([2, expect.stringContaining("--seconds: expected a number > 0")]);
    if (wasmtimeMissing) return;
    const missing = await runCli(["trace", "replay", join(tmp, "nothing.jsonl")]);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringContaining("nothing.jsonl: No such file or directory")]);
  }, scaled(60_000));
});
