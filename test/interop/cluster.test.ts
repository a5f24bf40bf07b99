// The example cluster end to end (docs/cluster.md, "Proxy I/O"): clusters/trio.json run by `wasm-iop run --cluster`
// in one process, on free loopback ports. qemu-img writes a 64 MiB random image through board a and reads it back
// through board c byte-identical; every 1 MiB page of it lies on the disk image of the board the routing table names
// (round robin from a: a, b, c, a, …) and on no other, so both boards served most of it by proxy over the fabric.
// Skipped, with a message, without Debian's qemu-utils and qemu-block-extra (a failure under CI).
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { startCli } from "../support/cli.ts";
import { freePorts } from "../support/free_ports.ts";

const run = promisify(execFile);
const missing = ["qemu-img"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `cluster tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-cluster-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const IMAGE_BYTES = 64 << 20;
const PAGE_BYTES = 2048 * 512;
const TARGET = "iqn.2026-12.org.wasm-iop:trio";

function page(path: string, index: number): Buffer {
  const bytes = Buffer.alloc(PAGE_BYTES);
  const fd = openSync(path, "r");
  readSync(fd, bytes, 0, PAGE_BYTES, index * PAGE_BYTES);
  closeSync(fd);
  return bytes;
}

describe.skipIf(missing.length > 0)("the example cluster with qemu-img", () => {
  it("writes 64 MiB through board a and reads it back through board c, byte-identical, each page on its owner", async () => {
    const ports = await freePorts(3);
    const cluster = JSON.parse(readFileSync(join(ROOT, "clusters/trio.json"), "utf8"));
    cluster.boards.forEach((b: { file: string; portals: { port: number }[] }, i: number) => {
      b.file = join(ROOT, "boards/cluster-node.json");
      b.portals[0]!.port = ports[i]!;
    });
    const file = join(tmp, "trio.json");
    writeFileSync(file, JSON.stringify(cluster));
    const dataDir = join(tmp, "data");
    const started = startCli(["run", "--cluster", file, "--data-dir", dataDir]);
    try {
      await started.waitFor(/c: iscsi:\/\/\S+\/0\n/, 120_000);
      await started.waitFor(/a: iscsi:\/\/\S+\/0\n/, 1_000);
      const image = randomBytes(IMAGE_BYTES);
      writeFileSync(join(tmp, "in.bin"), image);
      await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", join(tmp, "in.bin"), `iscsi://127.0.0.1:${ports[0]}/${TARGET}/0`], { timeout: 300_000 });
      await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", `iscsi://127.0.0.1:${ports[2]}/${TARGET}/0`, join(tmp, "out.bin")], { timeout: 300_000 });
      const back = readFileSync(join(tmp, "out.bin")).subarray(0, IMAGE_BYTES);
      expect(back.equals(image)).toBe(true);
      const boards = ["a", "b", "c"];
      for (let p = 0; p < IMAGE_BYTES / PAGE_BYTES; p++) {
        const expected = image.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES);
        const holders = boards.filter((b) => page(join(dataDir, b, "pv0.img"), p).equals(expected));
        expect(holders, `page ${p}`).toEqual([boards[p % 3]]);
      }
    } finally {
      started.child.kill("SIGINT");
      const stopped = await started.result;
      expect(stopped.code, stopped.stderr).toBe(0);
    }
    expect(started.output()).toMatch(/fabric: \d+ packets sent, \d+ delivered, 0 lost/);
  }, 600_000);
});
