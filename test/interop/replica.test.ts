// A replica volume (boards/replica.json: copies sp1-disk0 and sp2-disk0, LUN 0 over iSCSI, export `rep` over NBD)
// with real clients and injected faults, as a test engineer would script them (docs/volumes.md, "Replication"):
// - kill -9 of `wasm-iop run` under a qemu-io write load in flushed rounds: before any restart, both copies' image
//   files hold every write acknowledged before the kill (each 4 KiB block its last flushed fill byte, the round in
//   flight old or new sector by sector); after the restart the logged regions are copied and the two images are
//   byte-identical;
// - `wasm-iop fault copy rep:1 fail` in the middle of a write load, `restore` later: the volume goes degraded, only
//   the regions written meanwhile are copied back, and then both images are byte-identical and hold the load;
// - a qemu-io load over iSCSI and one over NBD writing the same replica at once (each in its half): both hold, and
//   the images are byte-identical.
// Skipped, with a message, without Debian's qemu-utils and qemu-block-extra (a failure under CI).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, startCli, type StartedCli } from "../support/cli.ts";
import { scaled, until } from "../support/time.ts";
import { WriteLoad } from "../support/write_load.ts";

const missing = ["qemu-io", "stdbuf"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `replica tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const BOARD = "boards/replica.json";
const METADATA_BYTES = 1 << 20;
const AREA_BYTES = 63 << 20; // each 64 MiB copy after its metadata MiB
const HALF_BYTES = 31 << 20;
const COPIES = ["sp1-disk0.img", "sp2-disk0.img"];
const LINE = /volume index=0 name=rep [^\n]*state=(\w+) copies=(\S+) pending=(\d+)/g;

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-replica-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Board extends StartedCli { iscsi: string; nbd: string; dataDir: string }

async function startBoard(dataDir: string): Promise<Board> {
  const started = startCli(["run", "--board", BOARD, "--portal", "127.0.0.1:0", "--nbd-portal", "127.0.0.1:0", "--data-dir", dataDir]);
  await started.waitFor(/nbd:\/\/127\.0\.0\.1:\d+\/rep\n/, 60_000);
  const iscsi = /(iscsi:\/\/127\.0\.0\.1:\d+\/\S+\/0)\n/.exec(started.output())![1]!;
  const nbd = /(nbd:\/\/127\.0\.0\.1:\d+\/rep)\n/.exec(started.output())![1]!;
  return { ...started, dataDir, iscsi, nbd };
}

async function stopBoard(board: Board): Promise<void> {
  board.child.kill("SIGINT");
  const stopped = await board.result;
  expect(stopped.code, stopped.stderr).toBe(0);
}

async function fault(dataDir: string, ...args: string[]): Promise<string> {
  const answer = await runCli(["fault", "--data-dir", dataDir, ...args]);
  expect(answer.code, answer.stdout + answer.stderr).toBe(0);
  return answer.stdout;
}

/** The replica's latest state line after console offset `from`: [state, copies, pending]. */
function lineAfter(board: Board, from: number): [string, string, number] | undefined {
  const m = [...board.output().slice(from).matchAll(LINE)].at(-1);
  return m === undefined ? undefined : [m[1]!, m[2]!, Number(m[3])];
}

/** Copy `k`'s data area, from its image file. */
function copyArea(dataDir: string, k: number): Buffer {
  return readFileSync(join(dataDir, COPIES[k]!)).subarray(METADATA_BYTES, METADATA_BYTES + AREA_BYTES);
}

function firstDifference(a: Buffer, b: Buffer): number {
  if (Buffer.compare(a, b) === 0) return -1;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length;
}

describe.skipIf(missing.length > 0)("replica volume with real clients and injected faults", () => {
  it("has every write acknowledged before kill -9 on both copies, and byte-identical copies after the restart", async () => {
    const dataDir = mkdtempSync(join(tmp, "kill-"));
    const first = await startBoard(dataDir);
    const load = new WriteLoad(first.iscsi, "replica-kill", 32 << 20);
    await until(() => load.roundsDurable >= 12, "12 flushed rounds", 120_000);
    const said = load.outputSoFar();
    first.child.kill("SIGKILL"); // mid-round: a round of writes in flight
    expect((await first.result).code).toBeNull();
    await load.stop();
    expect(said, "no write failed before the kill").not.toMatch(/failed/i);
    // Before anything runs again: what was acknowledged is on both copies.
    for (const k of [0, 1]) expect(load.check(copyArea(dataDir, k).subarray(0, 32 << 20)), `copy ${k}: blocks not as acknowledged`).toEqual([]);
    expect(load.check(Buffer.alloc(32 << 20)).length, "the check tells a blank region").toBeGreaterThan(0);

    const second = await startBoard(dataDir);
    try {
      expect(second.output()).toMatch(/volumes: rep: stopped with writes in flight; the regions they touched are copied from copy 0 to copy 1/);
      await until(() => /volumes: volume 0 resynchronized/.test(second.output()), "the resync", 120_000);
    } finally {
      await stopBoard(second);
    }
    expect(firstDifference(copyArea(dataDir, 0), copyArea(dataDir, 1)), "the copies differ at").toBe(-1);
    expect(load.check(copyArea(dataDir, 0).subarray(0, 32 << 20))).toEqual([]);
  }, scaled(300_000));

  it("goes degraded when a copy fails under a write load, copies back only the regions written meanwhile, and ends byte-identical", async () => {
    const dataDir = mkdtempSync(join(tmp, "copy-"));
    const board = await startBoard(dataDir);
    try {
      const load = new WriteLoad(board.iscsi, "replica-copy", 32 << 20, 0, 24);
      await until(() => load.roundsDurable >= 4, "4 flushed rounds", 120_000);
      const mark = board.output().length;
      expect(await fault(dataDir, "copy", "rep:1", "fail")).toMatch(/^copy rep:1 \(sp2-disk0\) pulled at /);
      await until(() => lineAfter(board, mark)?.[0] === "degraded", "rep degraded", 60_000);
      await until(() => load.roundsDurable >= 12, "12 flushed rounds", 120_000);
      const status = await fault(dataDir, "status");
      expect(status).toMatch(/name=rep .*state=degraded copies=current,failed pending=[1-9]/);
      const restoreMark = board.output().length;
      expect(await fault(dataDir, "copy", "rep:1", "restore")).toMatch(/put back at .* with what it held/);
      await until(() => load.done, "24 flushed rounds", 120_000);
      await until(() => lineAfter(board, restoreMark)?.[0] === "optimal", "rep optimal again", 120_000);
      const copied = /copying (\d+) regions of volume 0 from copy 0 to copy 1/.exec(board.output().slice(restoreMark));
      expect(copied, board.output().slice(restoreMark)).not.toBeNull();
      expect(Number(copied![1])).toBeGreaterThan(0);
      expect(Number(copied![1]), "only the regions written while it was down").toBeLessThan(AREA_BYTES / (64 << 10));
      expect(load.outputSoFar()).not.toMatch(/failed/i);
      await load.stop();
      expect(await fault(dataDir, "status")).toMatch(/name=rep .*state=optimal copies=current,current/);
    } finally {
      await stopBoard(board);
    }
    expect(firstDifference(copyArea(dataDir, 0), copyArea(dataDir, 1)), "the copies differ at").toBe(-1);
  }, scaled(300_000));

  it("takes iSCSI and NBD writes into the same replica at once: both hold, the copies byte-identical", async () => {
    const dataDir = mkdtempSync(join(tmp, "both-"));
    const board = await startBoard(dataDir);
    let loads: WriteLoad[] = [];
    try {
      loads = [new WriteLoad(board.iscsi, "replica-iscsi", HALF_BYTES, 0, 16), new WriteLoad(board.nbd, "replica-nbd", HALF_BYTES, HALF_BYTES, 16)];
      await until(() => loads.every((l) => l.done), "16 flushed rounds through each", 180_000);
      for (const l of loads) expect(l.outputSoFar(), l.name).not.toMatch(/failed/i);
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
      await stopBoard(board);
    }
    const area = copyArea(dataDir, 0);
    expect(loads[0]!.check(area.subarray(0, HALF_BYTES)), "iSCSI's half").toEqual([]);
    expect(loads[1]!.check(area.subarray(HALF_BYTES, 2 * HALF_BYTES)), "NBD's half").toEqual([]);
    expect(firstDifference(area, copyArea(dataDir, 1)), "the copies differ at").toBe(-1);
  }, scaled(300_000));
});
