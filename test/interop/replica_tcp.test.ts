// A replica across two processes (docs/volumes.md, "Copies on two boards"; docs/cluster.md, "Across processes"):
// `wasm-iop run --cluster pair.json --board a` and `--board b`, the fabric carried over TCP, copy 1 written on b by
// RDMA through b's bounce buffers. A qemu-io write load in flushed rounds goes through a; b's process is killed
// (kill -9) in the middle of it: the replica goes degraded and the load goes on without a failed write; b started
// again on its data directory: only the regions written meanwhile are copied to it. After both stop, the two
// processes' disk images are byte-identical past their metadata and hold every acknowledged write.
// Skipped, with a message, without Debian's qemu-utils and qemu-block-extra (a failure under CI).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { runCli, type StartedCli } from "../support/cli.ts";
import { scaled, until } from "../support/time.ts";
import { WriteLoad } from "../support/write_load.ts";
import { clusterProcesses } from "../support/cluster_processes.ts";

const missing = ["qemu-io", "stdbuf"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `replica over TCP tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const METADATA_BYTES = 1 << 20;
const AREA_BYTES = 63 << 20;
const LOAD_BYTES = 16 << 20;
const TARGET = "iqn.2026-12.org.wasm-iop:pair";
const LINE = /\[a\/host\] volume index=0 name=rep [^\n]*state=(\w+) copies=(\S+) pending=(\d+)/g;

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-replica-tcp-"));
const started: StartedCli[] = [];
afterAll(() => {
  for (const s of started) if (s.child.exitCode === null) s.child.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

const area = (path: string): Buffer => readFileSync(path).subarray(METADATA_BYTES, METADATA_BYTES + AREA_BYTES);

describe.skipIf(missing.length > 0)("a replica across two processes over TCP", () => {
  it("runs degraded while b's process is gone, copies back only what was written meanwhile, and ends byte-identical", async () => {
    const { portals: ports, start, dataDir } = await clusterProcesses("clusters/pair.json", tmp, started,
      (b) => join(ROOT, "clusters", b.file));
    const a = start("a");
    let b = start("b");
    await b.waitFor(/b: iscsi:\/\/\S+\/0\n/, 120_000);
    await a.waitFor(/a: iscsi:\/\/\S+\/0\n/, 120_000);
    const lineAfter = (from: number) => [...a.output().slice(from).matchAll(LINE)].at(-1);
    await until(() => lineAfter(0)?.[1] === "optimal", "rep optimal (copy 1 reached over TCP)", 120_000);
    // Each process takes its own board's control commands (wasm-iop fault --data-dir DIR); a's copy 1 is b's disk.
    const status = await runCli(["fault", "--data-dir", join(dataDir, "a"), "status"]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/name=rep .*state=optimal/);
    const remote = await runCli(["fault", "--data-dir", join(dataDir, "a"), "copy", "rep:1", "fail"]);
    expect(remote.code, remote.stdout).toBe(2);
    expect(remote.stderr).toMatch(/copy rep:1 is board b's disk rep-b: fail it on that board \(disk host:0 on its control\)/);
    const load = new WriteLoad(`iscsi://127.0.0.1:${ports[0]}/${TARGET}/0`, "pair-tcp", LOAD_BYTES, 0, 16);
    try {
      await until(() => load.roundsDurable >= 3, "3 flushed rounds", 120_000);
      const killMark = a.output().length;
      b.child.kill("SIGKILL");
      await b.result;
      await until(() => lineAfter(killMark)?.[1] === "degraded", "rep degraded", 120_000);
      expect(lineAfter(killMark)![2]).toBe("current,failed");
      await until(() => load.roundsDurable >= 8, "8 flushed rounds with b gone", 180_000);
      const backMark = a.output().length;
      b = start("b");
      await b.waitFor(/b: iscsi:\/\/\S+\/0\n/, 120_000);
      const bStatus = await runCli(["fault", "--data-dir", join(dataDir, "b"), "status"]); // the killed one's socket replaced
      expect(bStatus.code, bStatus.stderr).toBe(0);
      expect(bStatus.stdout).toMatch(/^board b at /m);
      await until(() => load.done, "16 flushed rounds", 240_000);
      await until(() => lineAfter(backMark)?.[1] === "optimal", "rep optimal again", 180_000);
      const copied = /copying (\d+) regions of volume 0 from copy 0 to copy 1/.exec(a.output().slice(backMark));
      expect(copied, a.output().slice(backMark)).not.toBeNull();
      expect(Number(copied![1])).toBeGreaterThan(0);
      expect(Number(copied![1]), "only the regions written while b was gone").toBeLessThan(AREA_BYTES / (64 << 10) / 2);
      expect(load.outputSoFar(), "no write failed").not.toMatch(/failed/i);
      process.stderr.write(`replica over TCP: ${copied![1]} of ${AREA_BYTES / (64 << 10)} regions copied back to b\n`);
    } finally {
      await load.stop();
      for (const s of [a, b]) s.child.kill("SIGINT");
      for (const s of [a, b]) {
        const stopped = await s.result;
        expect(stopped.code, stopped.stderr).toBe(0);
      }
    }
    const copy0 = area(join(dataDir, "a", "rep-a.img"));
    const copy1 = area(join(dataDir, "b", "rep-b.img"));
    expect(Buffer.compare(copy0, copy1), "the two processes' copies differ").toBe(0);
    expect(load.check(copy1.subarray(0, LOAD_BYTES)), "copy 1 on b: blocks not as acknowledged").toEqual([]);
  }, scaled(900_000));
});
