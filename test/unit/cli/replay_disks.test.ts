// A recording of a board whose file disks are not blank (docs/replay.md, "Disks"): with --record-disks the recording
// holds their non-zero chunks and replays on its own, sealed; without it the checking replay cannot have the disks,
// so the recording stays unsealed and `wasm-iop replay` names the disk in one line, until --disks gives the images as
// they were before the run (a copy taken first), which must hash as recorded.
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../support/cli.ts";
import { testTempDir } from "../../support/temp_dir.ts";
import { scaled } from "../../support/time.ts";

describe("recording a board's disks", () => {
  it("replays with --record-disks alone, and without it only with the images as they were", async () => {
    const dir = testTempDir("wasm-iop-record-disks-");
    const data = join(dir, "data");
    mkdirSync(data);
    // A disk image with data in it: 64 MiB, a few non-zero blocks (the rest sparse).
    const image = new Uint8Array(64 << 20);
    image.fill(0xa5, 4096, 8192);
    image.fill(0x5a, 40 << 20, (40 << 20) + 512);
    writeFileSync(join(data, "host-disk0.img"), image);
    const pristine = join(dir, "pristine");
    cpSync(data, pristine, { recursive: true });
    const copied = join(dir, "copied.rec");
    const board = ["--board", "boards/iop-dev.json", "--firmware", "build/firmware.wasm"];
    const first = await runCli(["run", ...board, "--data-dir", data, "--for", "0.5", "--record", copied, "--record-disks"]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/recording: sealed by a checking replay/);
    const replayed = await runCli(["replay", copied]);
    expect(replayed.code, replayed.stdout + replayed.stderr).toBe(0);
    expect(replayed.stdout).toMatch(/identical: every send, the 0 bytes sent and the trace hash match the recording/);

    // Without the chunks: the run has changed the images since, so only the pristine copy will do.
    rmSync(data, { recursive: true });
    cpSync(pristine, data, { recursive: true });
    const bare = join(dir, "bare.rec");
    const second = await runCli(["run", ...board, "--data-dir", data, "--for", "0.5", "--record", bare]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/recording: not sealed: \S+bare\.rec: disk host-disk0: its initial contents hash [0-9a-f]{16}\.\.\., and it was not copied/);
    const refused = await runCli(["replay", bare]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    expect(refused.stderr).toMatch(/disk host-disk0: .* not copied \(record with --record-disks, or give its image with --disks DIR\)/);
    const changed = await runCli(["replay", bare, "--disks", data]);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/the image given hashes [0-9a-f]{16}\.\.\./);
    const withImages = await runCli(["replay", bare, "--disks", pristine]);
    expect(withImages.code, withImages.stdout + withImages.stderr).toBe(0);
    expect(withImages.stdout).toMatch(/identical: every send, the 0 bytes sent match the recording \(it holds no trace hash: unsealed\)/);
  }, scaled(120_000));
});
