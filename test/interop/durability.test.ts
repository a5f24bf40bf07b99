// Durability: data acknowledged after SYNCHRONIZE CACHE, or written with FUA, survives kill -9 of the emulator and
// a restart on the same data directory. QEMU's qemu-io writes through the target (one range with FUA, one followed
// by a flush), the emulator process is killed with SIGKILL, a new one boots the same board and disks, and qemu-io
// reads both ranges back with pattern verification. Skipped, with a message, without Debian's qemu-utils.
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { startCli } from "../support/cli.ts";
import { scaled } from "../support/time.ts";
import { testTempDir } from "../support/temp_dir.ts";

const run = promisify(execFile);
const missing = ["qemu-io"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `durability test skipped: ${missing.join(", ")} not installed (Debian: apt-get install qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have it`);
  process.stderr.write(`${message}\n`);
}

async function startBoard(dataDir: string) {
  const started = startCli(["run", "--portal", "127.0.0.1:0", "--data-dir", dataDir]);
  await started.waitFor(/iscsi:\/\/127\.0\.0\.1:\d+\/\S+\/2\n/);
  const url = /(iscsi:\/\/127\.0\.0\.1:\d+\/\S+)\/2\n/.exec(started.output())![1]!;
  return { ...started, lun: (n: number) => `${url}/${n}` };
}

describe.skipIf(missing.length > 0)("durability", () => {
  it("keeps FUA writes and flushed writes across kill -9 and a restart", async () => {
    const dataDir = testTempDir("wasm-iop-durable-");
    const first = await startBoard(dataDir);
    // LUN 1 lives on storage processor sp1: the data crosses the bus before it reaches the disk file.
    await run("qemu-io", ["-f", "raw", "-c", "write -f -P 0x3c 0 4M", first.lun(1)]);
    await run("qemu-io", ["-f", "raw", "-c", "write -P 0xc3 4M 4M", "-c", "flush", first.lun(1)]);
    first.child.kill("SIGKILL");
    const killed = await first.result;
    expect(killed.code).toBeNull(); // it died; it did not shut down

    const second = await startBoard(dataDir);
    try {
      const fua = await run("qemu-io", ["-f", "raw", "-c", "read -P 0x3c 0 4M", second.lun(1)]);
      const flushed = await run("qemu-io", ["-f", "raw", "-c", "read -P 0xc3 4M 4M", second.lun(1)]);
      expect(fua.stdout + flushed.stdout).not.toMatch(/Pattern verification failed/);
      expect(fua.stdout).toMatch(/read 4194304\/4194304 bytes/);
      expect(flushed.stdout).toMatch(/read 4194304\/4194304 bytes/);
    } finally {
      second.child.kill("SIGTERM");
      await second.result;
    }
  }, scaled(120_000));
});
