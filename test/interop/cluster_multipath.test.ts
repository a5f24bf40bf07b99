// One disk's connections over several NIC ports (docs/cluster.md, "Several NIC ports"): clusters/trio-mpath.json (the
// example cluster with two portals per board) run by `wasm-iop run --cluster` on free loopback ports, reached with
// Debian's libiscsi tools and qemu-img as a multipath initiator would:
// - SendTargets through any port lists all six portals, each its own portal group: tags 1, 4097, 2, 4098, 3, 4099;
// - every port serves the disk (VPD 83h through each names its target port and group), and what qemu-img writes
//   through one port of a reads back byte-identical through a's other port and through b's second one;
// - `wasm-iop fault port a:1 down` resets the one connection on a's port 1 (qemu-io's session, holding the disk open)
//   and refuses new logins there, while a qemu-img read through a's port 0 under way at the same time completes
//   byte-identical: the initiator's other path keeps working; `port a:1 up` and the port serves again.
// Skipped, with a message, without libiscsi-bin, qemu-utils and qemu-block-extra (a failure under CI).
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { startCli } from "../support/cli.ts";
import { freePorts } from "../support/free_ports.ts";
import { scaled } from "../support/time.ts";

const run = promisify(execFile);
const missing = ["qemu-img", "qemu-io", "iscsi-ls", "iscsi-inq", "stdbuf"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `cluster multipath tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install libiscsi-bin qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}
const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-mpath-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const TARGET = "iqn.2026-12.org.wasm-iop:trio";
const IMAGE_BYTES = 16 << 20;

describe.skipIf(missing.length > 0)("one disk over several NIC ports (libiscsi, qemu-img)", () => {
  it("six portals in six portal groups; every port serves the disk; a port down leaves the other path working", async () => {
    const ports = await freePorts(6);
    const cluster = JSON.parse(readFileSync(join(ROOT, "clusters/trio-mpath.json"), "utf8"));
    cluster.boards.forEach((b: { file: string; portals: { port: number }[]; fabric?: unknown }, i: number) => {
      b.file = join(ROOT, "boards/cluster-node.json");
      b.portals.forEach((p, n) => (p.port = ports[2 * i + n]!));
      delete b.fabric; // one process: the fabric is in memory
    });
    const file = join(tmp, "trio-mpath.json");
    writeFileSync(file, JSON.stringify(cluster));
    const dataDir = join(tmp, "data");
    const url = (board: number, nicPort: number) => `iscsi://127.0.0.1:${ports[2 * board + nicPort]}/${TARGET}/0`;
    const started = startCli(["run", "--cluster", file, "--data-dir", dataDir]);
    const reads: ChildProcess[] = [];
    try {
      await started.waitFor(new RegExp(`c: iscsi://127.0.0.1:${ports[5]}/\\S+/0\\n`), 120_000);
      // SendTargets through b's second port: every board's every portal, each its own tag.
      const { stdout: listed } = await run("iscsi-ls", [`iscsi://127.0.0.1:${ports[3]}`]);
      const tags = [1, 4097, 2, 4098, 3, 4099];
      for (const [k, tag] of tags.entries()) expect(listed).toContain(`Target:${TARGET} Portal:127.0.0.1:${ports[k]},${tag}`);
      // Every port answers VPD 83h with its target port and group designators.
      for (let k = 0; k < 6; k++) {
        const { stdout } = await run("iscsi-inq", ["-e", "1", "-c", "131", url(k >> 1, k & 1)]);
        expect(stdout, `port ${k}`).toContain("Designator Type:(4) RELATIVE_TARGET_PORT");
        expect(stdout, `port ${k}`).toContain("Designator Type:(5) TARGET_PORT_GROUP");
      }
      // Written through a's port 0, read back through a's port 1 and b's port 1.
      const image = randomBytes(IMAGE_BYTES);
      writeFileSync(join(tmp, "in.bin"), image);
      await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", join(tmp, "in.bin"), url(0, 0)], { timeout: scaled(300_000) });
      for (const [board, nicPort] of [[0, 1], [1, 1]] as const) {
        const out = join(tmp, `out-${board}-${nicPort}.bin`);
        await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", url(board, nicPort), out], { timeout: scaled(300_000) });
        expect(readFileSync(out).subarray(0, IMAGE_BYTES).equals(image), `through board ${board} port ${nicPort}`).toBe(true);
      }
      // Two paths to the disk through a's two ports: qemu-io holds a session on port 1 (a read, then a pause), a
      // qemu-img read runs through port 0; port 1 goes down under them.
      // (stdbuf: qemu-io's stdout to a pipe is otherwise held until it exits.)
      const path1 = spawn("stdbuf", ["-oL", "qemu-io", "-f", "raw", "-c", "read 0 1M", "-c", "sleep 120000", url(0, 1)], { stdio: ["ignore", "pipe", "pipe"] });
      reads.push(path1);
      let said = "";
      await new Promise<void>((resolve, reject) => {
        path1.stdout!.on("data", (chunk: Buffer) => { said += chunk.toString(); if (said.includes("read 1048576/1048576 bytes at offset 0")) resolve(); });
        path1.on("close", (code) => reject(new Error(`qemu-io ended (${code}) before its read: ${said}`)));
      });
      const path0 = spawn("qemu-img", ["convert", "-f", "raw", "-O", "raw", url(0, 0), join(tmp, "path-0.bin")], { stdio: "ignore" });
      reads.push(path0);
      const path0Done = new Promise<number | null>((resolve) => path0.on("close", (code) => resolve(code)));
      const down = await run(process.execPath, [join(ROOT, "bin/wasm-iop.js"), "fault", "--data-dir", dataDir, "port", "a:1", "down"]);
      expect(down.stdout).toBe("a:1 (NIC port 1) link down: 1 connections reset\n"); // qemu-io's, not qemu-img's
      expect(await path0Done).toBe(0);
      expect(readFileSync(join(tmp, "path-0.bin")).subarray(0, IMAGE_BYTES).equals(image)).toBe(true);
      // A new login through the port that is down fails; through the other it works.
      await expect(run("iscsi-inq", [url(0, 1)], { timeout: scaled(30_000) })).rejects.toThrow();
      expect((await run("iscsi-inq", [url(0, 0)])).stdout).toContain("Vendor:WASM-IOP");
      path1.kill("SIGKILL"); // still pausing, or trying to reconnect to a port that is down
      await run(process.execPath, [join(ROOT, "bin/wasm-iop.js"), "fault", "--data-dir", dataDir, "port", "a:1", "up"]);
      expect((await run("iscsi-inq", [url(0, 1)])).stdout).toContain("Vendor:WASM-IOP");
    } finally {
      for (const child of reads) if (child.exitCode === null) child.kill("SIGKILL");
      started.child.kill("SIGINT");
      const stopped = await started.result;
      expect(stopped.code, stopped.stderr).toBe(0);
    }
  }, 600_000);
});
