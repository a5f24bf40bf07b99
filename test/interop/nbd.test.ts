// The NBD server end to end with Debian's clients, against the default board that `wasm-iop run` serves:
// - nbdinfo --list sees every export the board file names, with base:allocation, the block sizes and the flags;
// - qemu-img convert writes a 64 MiB random image over nbd:// and qemu-img compare reads it back identical;
// - qemu-io with aio writes, reads (pattern-checked), write-zeroes, discard and flush runs clean;
// - nbdinfo --map on the thin export shows exactly the chunks written as data and the rest as holes;
// - nbdcopy copies a 64 MiB image in and out byte-identical (four connections, multi-conn);
// - a 64 MiB image written through NBD reads back identical through iSCSI (qemu's iSCSI driver), and the other way.
// Skipped, with a message, without qemu-utils, qemu-block-extra and libnbd-bin (a failure under CI).
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Prng } from "../../host/sim/prng.ts";
import { startCli, type StartedCli } from "../support/cli.ts";

const run = promisify(execFile);
const missing = ["qemu-img", "qemu-io", "nbdinfo", "nbdcopy"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `NBD interop tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install qemu-utils qemu-block-extra libnbd-bin)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const IMAGE_BYTES = 64 << 20;
const THIN_BYTES = 256 << 20; // thin0's sizeMiB on the default board
const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-nbd-"));
let board: StartedCli | undefined;
let nbd = "";
let iscsi = "";

function randomImage(name: string, seed: number): string {
  const bytes = new Uint8Array(IMAGE_BYTES);
  const prng = new Prng(seed);
  for (let i = 0; i < bytes.length; i += 4) new DataView(bytes.buffer).setUint32(i, prng.nextU32(), true);
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

async function tool(command: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const { stdout, stderr } = await run(command, args, { timeout: timeoutMs, maxBuffer: 16 << 20 });
  return stdout + stderr;
}

describe.skipIf(missing.length > 0)("NBD with Debian's clients", () => {
  beforeAll(async () => {
    board = startCli(["run", "--portal", "127.0.0.1:0", "--nbd-portal", "127.0.0.1:0", "--data-dir", join(tmp, "data")]);
    await board.waitFor(/nbd:\/\/127\.0\.0\.1:\d+\/thin0\n/, 60_000);
    nbd = /(nbd:\/\/127\.0\.0\.1:\d+)\/host-disk0\n/.exec(board.output())![1]!;
    iscsi = /(iscsi:\/\/127\.0\.0\.1:\d+\/\S+)\/0\n/.exec(board.output())![1]!;
  }, 120_000);

  afterAll(async () => {
    if (board !== undefined) {
      board.child.kill("SIGINT");
      const stopped = await board.result;
      expect(stopped.code, stopped.stderr).toBe(0); // a clean power-off, not a panic
      expect(stopped.stdout + stopped.stderr).not.toMatch(/PANIC/);
    }
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it("lists every export with its flags, block sizes and base:allocation", async () => {
    const out = await tool("nbdinfo", ["--list", `${nbd}/`]);
    for (const name of ["host-disk0", "sp1-disk0", "sp2-disk0", "r5", "thin0"]) expect(out).toContain(`export="${name}"`);
    expect(out).toContain("base:allocation");
    expect(out).toMatch(/block_size_minimum: 512/);
    expect(out).toMatch(/block_size_maximum: 1048576/);
    expect(out).toMatch(/can_multi_conn: true/);
    expect(out).toMatch(/can_fua: true/);
    expect(out).toMatch(/export-size: 268435456/); // thin0's virtual size
  });

  it("qemu-img convert writes 64 MiB over nbd:// and qemu-img compare reads it back identical", async () => {
    const image = randomImage("convert.img", 18);
    await tool("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, `${nbd}/host-disk0`]);
    // host-disk0 is 64 MiB: the same size, so compare is strict about every byte.
    const out = await tool("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, `${nbd}/host-disk0`]);
    expect(out).toContain("Images are identical");
  }, 180_000);

  it("qemu-io: aio writes and pattern-checked reads, write-zeroes, discard and flush", async () => {
    const out = await tool("qemu-io", ["-f", "raw",
      "-c", "aio_write -P 0x5a 0 1M", "-c", "aio_write -P 0xa5 1M 64k", "-c", "aio_write -P 0x3c 8M 512k", "-c", "aio_flush",
      "-c", "aio_read -P 0x5a 0 1M", "-c", "aio_read -P 0xa5 1M 64k", "-c", "aio_read -P 0x3c 8M 512k", "-c", "aio_flush",
      "-c", "write -z 8M 4k", "-c", "read -P 0 8M 4k", "-c", "read -P 0x3c 8196k 508k",
      "-c", "write -P 0x11 -f 16M 4k", "-c", "discard 16M 4k", "-c", "flush", `${nbd}/sp2-disk0`]);
    expect(out).not.toMatch(/fail|error|Pattern verification/i);
    expect(out.match(/^read /gm)?.length).toBe(5);
  }, 120_000);

  it("nbdinfo --map shows the thin export's written chunks as data and the rest as holes", async () => {
    await tool("qemu-io", ["-f", "raw", "-c", "write -P 0x77 0 4k", "-c", "write -P 0x78 5M 1M", `${nbd}/thin0`]);
    const map = (await tool("nbdinfo", ["--map", `${nbd}/thin0`])).trim().split("\n").map((l) => l.trim().split(/\s+/).slice(0, 3).map(Number));
    // 1 MiB chunks (thin0's chunkKiB): the chunk at 0 and the one at 5 MiB hold data, everything else is a hole.
    expect(map).toEqual([[0, 1 << 20, 0], [1 << 20, 4 << 20, 3], [5 << 20, 1 << 20, 0], [6 << 20, THIN_BYTES - (6 << 20), 3]]);
  }, 60_000);

  it("nbdcopy copies 64 MiB in and out byte-identical", async () => {
    const image = randomImage("nbdcopy.img", 19);
    await tool("nbdcopy", [image, `${nbd}/sp1-disk0`]);
    const back = join(tmp, "nbdcopy-back.img");
    await tool("nbdcopy", [`${nbd}/sp1-disk0`, back]);
    expect(Buffer.compare(readFileSync(back), readFileSync(image))).toBe(0);
  }, 180_000);

  it("64 MiB written through NBD reads back identical through iSCSI, and the other way", async () => {
    const viaNbd = randomImage("via-nbd.img", 20);
    await tool("nbdcopy", [viaNbd, `${nbd}/r5`]);
    // r5 is 126 MiB: its first 64 MiB through qemu's iSCSI driver, cut with qemu-img's image options.
    const cut = (url: string) => `json:{"driver":"raw","size":${IMAGE_BYTES},"file":{"driver":"iscsi","transport":"tcp","portal":"${url.split("/")[2]}","target":"${url.split("/")[3]}","lun":${url.split("/")[4]}}}`;
    let out = await tool("qemu-img", ["compare", "-f", "raw", viaNbd, cut(`${iscsi}/3`)]);
    expect(out).toContain("Images are identical");

    const viaIscsi = randomImage("via-iscsi.img", 21);
    await tool("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", viaIscsi, `${iscsi}/4`]); // thin0
    const back = join(tmp, "via-iscsi-back.img");
    await tool("nbdcopy", [`${nbd}/thin0`, back]);
    const read = readFileSync(back);
    expect(read.length).toBe(THIN_BYTES);
    expect(Buffer.compare(read.subarray(0, IMAGE_BYTES), readFileSync(viaIscsi))).toBe(0);
    out = read.subarray(IMAGE_BYTES).some((b) => b !== 0) ? "non-zero past the image" : "zeros";
    expect(out).toBe("zeros");
  }, 240_000);
});
