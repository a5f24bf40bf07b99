// A replica with its copies on two boards (docs/volumes.md, "Copies on two boards"), end to end: clusters/pair.json run
// by `wasm-iop run --cluster` in one process (one clock, the fabric), on free loopback ports. A qemu-io write load in
// flushed rounds goes through board a; `wasm-iop fault board b off` in the middle of it: the replica goes degraded and
// the load goes on without a failed write; `board b on`: only the regions written meanwhile are copied to b's disk.
// Then qemu-img reads the volume back through a and every acknowledged write is there, and after the run the two
// boards' disk images (a's rep-a, b's rep-b) are byte-identical past their metadata.
// Skipped, with a message, without Debian's qemu-utils and qemu-block-extra (a failure under CI).
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { runCli, startCli } from "../support/cli.ts";
import { scaled, until } from "../support/time.ts";
import { WriteLoad } from "../support/write_load.ts";
import { freePorts } from "../support/free_ports.ts";

const run = promisify(execFile);
const missing = ["qemu-io", "qemu-img", "stdbuf"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `replica cluster tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const METADATA_BYTES = 1 << 20;
const AREA_BYTES = 63 << 20; // each 64 MiB copy after its metadata MiB
const LOAD_BYTES = 32 << 20;
const TARGET = "iqn.2026-12.org.wasm-iop:pair";
const LINE = /\[a\/host\] volume index=0 name=rep [^\n]*state=(\w+) copies=(\S+) pending=(\d+)/g;

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-replica-cluster-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function area(path: string): Buffer {
  return readFileSync(path).subarray(METADATA_BYTES, METADATA_BYTES + AREA_BYTES);
}

describe.skipIf(missing.length > 0)("a replica across two boards with real clients", () => {
  it("runs degraded while board b is off, copies back only what was written meanwhile, and ends byte-identical", async () => {
    const ports = await freePorts(2);
    const cluster = JSON.parse(readFileSync(join(ROOT, "clusters/pair.json"), "utf8"));
    cluster.boards.forEach((b: { file: string; portals: { port: number }[] }, i: number) => {
      b.file = join(ROOT, "clusters", b.file);
      b.portals[0]!.port = ports[i]!;
    });
    const file = join(tmp, "pair.json");
    writeFileSync(file, JSON.stringify(cluster));
    const dataDir = join(tmp, "data");
    const fault = async (...args: string[]): Promise<string> => {
      const answer = await runCli(["fault", "--data-dir", dataDir, ...args]);
      expect(answer.code, answer.stdout + answer.stderr).toBe(0);
      return answer.stdout;
    };
    const started = startCli(["run", "--cluster", file, "--data-dir", dataDir]);
    const lineAfter = (from: number) => [...started.output().slice(from).matchAll(LINE)].at(-1);
    const url = `iscsi://127.0.0.1:${ports[0]}/${TARGET}/0`;
    let load: WriteLoad | undefined;
    let checker: WriteLoad | undefined;
    try {
      await started.waitFor(/a: iscsi:\/\/\S+\/0\n/, 120_000);
      await started.waitFor(/b: iscsi:\/\/\S+\/0\n/, 60_000);
      expect(started.output()).toMatch(/\[a\/host\] inventory volume index=0 name=rep type=replica .*state=optimal copies=current,current/);
      load = new WriteLoad(url, "pair", LOAD_BYTES, 0, 24);
      checker = load;
      await until(() => load!.roundsDurable >= 4, "4 flushed rounds", 120_000);
      const offMark = started.output().length;
      expect(await fault("board", "b", "off")).toMatch(/board b powered off/);
      await until(() => lineAfter(offMark)?.[1] === "degraded", "rep degraded", 120_000);
      expect(lineAfter(offMark)![2]).toBe("current,failed");
      await until(() => load!.roundsDurable >= 12, "12 flushed rounds with b off", 120_000);
      const onMark = started.output().length;
      expect(await fault("board", "b", "on")).toMatch(/board b powered on/);
      await until(() => load!.done, "24 flushed rounds", 180_000);
      await until(() => lineAfter(onMark)?.[1] === "optimal", "rep optimal again", 180_000);
      const copied = /copying (\d+) regions of volume 0 from copy 0 to copy 1/.exec(started.output().slice(onMark));
      expect(copied, started.output().slice(onMark)).not.toBeNull();
      expect(Number(copied![1])).toBeGreaterThan(0);
      expect(Number(copied![1]), "only the regions written while b was off").toBeLessThan(AREA_BYTES / (64 << 10) / 2);
      expect(load.outputSoFar(), "no write failed").not.toMatch(/failed/i);
      process.stderr.write(`replica across boards: ${copied![1]} of ${AREA_BYTES / (64 << 10)} regions copied back to b\n`);
      await load.stop();
      load = undefined;
      await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", url, join(tmp, "out.bin")], { timeout: 300_000 });
      const back = readFileSync(join(tmp, "out.bin"));
      expect(back.length).toBe(AREA_BYTES);
      expect(checker.check(back.subarray(0, LOAD_BYTES)), "blocks read back through a not as acknowledged").toEqual([]);
    } finally {
      await load?.stop();
      started.child.kill("SIGINT");
      const stopped = await started.result;
      expect(stopped.code, stopped.stderr).toBe(0);
    }
    const copy0 = area(join(dataDir, "a", "rep-a.img"));
    const copy1 = area(join(dataDir, "b", "rep-b.img"));
    expect(Buffer.compare(copy0, copy1), "the two boards' copies differ").toBe(0);
    expect(checker!.check(copy1.subarray(0, LOAD_BYTES)), "copy 1 on b: blocks not as acknowledged").toEqual([]);
  }, scaled(600_000));
});
