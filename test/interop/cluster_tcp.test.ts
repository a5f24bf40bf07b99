// The example cluster as three processes (docs/cluster.md, "Across processes"): `wasm-iop run --cluster trio.json
// --board a|b|c`, each board's cluster port on a fabric carried over TCP (host/fabric/tcp_fabric.ts), on free
// loopback ports. qemu-img writes a 64 MiB random image through board a and reads it back through board c
// byte-identical, every 1 MiB page on its owner's disk image only (so two thirds of it crossed processes by RDMA
// through the serving board's bounce buffers). Then board b's process is killed: a read through a fails within
// seconds with sense data (COMMAND ABORTED, LOGICAL UNIT COMMUNICATION FAILURE), it does not hang; b started again
// with the same data directory rejoins and the whole image reads back identical through a.
// Skipped, with a message, without Debian's qemu-utils and qemu-block-extra (a failure under CI).
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { type StartedCli } from "../support/cli.ts";
import { clusterProcesses } from "../support/cluster_processes.ts";

const run = promisify(execFile);
const missing = ["qemu-img"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `cluster over TCP tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-cluster-tcp-"));
const started: StartedCli[] = [];
afterAll(async () => {
  for (const s of started) if (s.child.exitCode === null) s.child.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});
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

// Quarantined at the end of stop 28 (the first write got COMMAND ABORTED with every board up); the cause, found in
// stop 29: a reply's SEND and its tunneled INTERRUPT crossed TCP as two packets, the receiving process read them in two
// turns, and its board time (following wall time, up to a 1 ms lead) passed the 500 µs hold in between: 109 of 305
// replies dropped at load 9, each retransmitted 200 ms later; RDMAs stuck behind MiBs of data on a loaded host passed the
// 250 ms answer timeout and the serving RTA abandoned the transaction, until the CTA gave up after 5 s. Now a burst
// crosses whole (fabric_wire.ts) and a request is given up when its connection closes or its board falls silent for 2 s
// (tcp_fabric.ts). The stop lines below show it: no interrupt fenced on a or c.
describe.skipIf(missing.length > 0)("the example cluster as three processes over TCP", () => {
  it("64 MiB written through a reads back through c; b killed: a clear error; b restarted: everything back", async () => {
    const { portals: ports, start, dataDir } = await clusterProcesses("clusters/trio.json", tmp, started,
      () => join(ROOT, "boards/cluster-node.json"));
    const boards = new Map(["a", "b", "c"].map((b) => [b, start(b)]));
    const url = (i: number) => `iscsi://127.0.0.1:${ports[i]}/${TARGET}/0`;
    for (const [name, s] of boards) await s.waitFor(new RegExp(`${name}: iscsi://\\S+/0\\n`), 120_000);
    const image = randomBytes(IMAGE_BYTES);
    writeFileSync(join(tmp, "in.bin"), image);
    await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", join(tmp, "in.bin"), url(0)], { timeout: 300_000 });
    await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", url(2), join(tmp, "out.bin")], { timeout: 300_000 });
    expect(readFileSync(join(tmp, "out.bin")).subarray(0, IMAGE_BYTES).equals(image)).toBe(true);
    for (let p = 0; p < IMAGE_BYTES / PAGE_BYTES; p++) {
      const expected = image.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES);
      const holders = ["a", "b", "c"].filter((b) => page(join(dataDir, b, "pv0.img"), p).equals(expected));
      expect(holders, `page ${p}`).toEqual([["a", "b", "c"][p % 3]]);
    }

    // b's process goes away (killed, not stopped): a's clients get sense data, within the CTA's give-up time.
    const b = boards.get("b")!;
    b.child.kill("SIGKILL");
    await b.result;
    const t0 = Date.now();
    const failed = await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", url(0), join(tmp, "down.bin")], { timeout: 120_000 })
      .then(() => undefined, (error: { stderr?: string; killed?: boolean }) => error);
    expect(failed, "a read of b's pages through a while b is down").toBeDefined();
    expect(failed!.killed ?? false).toBe(false); // qemu-img ended by itself: no hang
    expect(failed!.stderr).toMatch(/SENSE KEY:COMMAND ABORTED/);
    expect(Date.now() - t0).toBeLessThan(60_000);

    // b again, on its data directory: a serves the whole image again.
    const again = start("b");
    await again.waitFor(/b: iscsi:\/\/\S+\/0\n/, 120_000);
    let back: Buffer | undefined;
    for (let attempt = 0; attempt < 10 && back === undefined; attempt++) {
      try {
        await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", url(0), join(tmp, "again.bin")], { timeout: 300_000 });
        back = readFileSync(join(tmp, "again.bin")).subarray(0, IMAGE_BYTES);
      } catch {
        await new Promise((r) => setTimeout(r, 1000)); // the hellos may not have crossed yet
      }
    }
    expect(back?.equals(image)).toBe(true);

    for (const s of [boards.get("a")!, boards.get("c")!, again]) s.child.kill("SIGINT");
    for (const s of [boards.get("a")!, boards.get("c")!, again]) {
      const stopped = await s.result;
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stdout).toMatch(/fabric: \d+ packets sent, \d+ delivered, \d+ refused \(no connection\), 0 connections closed for bad frames/);
      expect(stopped.stdout).toMatch(/cluster port: \d+ requests unanswered in time, \d+ lost with their board's connection, \d+ interrupts fenced/);
    }
    // A packet refused for want of a connection (b down, or not dialed yet at start) never left: no sequence gap, so
    // no interrupt of a's or c's peers was fenced (the restarted b may see one: a's sequence to it goes on).
    for (const s of [boards.get("a")!, boards.get("c")!]) expect((await s.result).stdout).toMatch(/, 0 interrupts fenced/);
  }, 900_000);
});
