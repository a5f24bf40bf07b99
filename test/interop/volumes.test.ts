// RAID-5 and thin volumes end to end, with real initiators (QEMU's qemu-img and qemu-io over its iSCSI driver) and
// faults injected with `wasm-iop fault` into the board `wasm-iop run` serves, as a test engineer would script them:
// - a member of the default board's RAID-5 (LUN 3, with a hot spare) is pulled: a 64 MiB random image written before
//   reads back byte-identical while the volume is degraded and rebuilding onto the spare, and again once it is optimal;
// - the same without a spare (a copy of the board file without `spares`): degraded reads, `replace`, the firmware's
//   probe finds the blank disk and rebuilds onto it; then the board is stopped, one member's image file deleted, and
//   the board comes up degraded, reads back identical, and rebuilds onto the blank file;
// - kill -9 under a random-write load on LUN 3 (RAID-5) and LUN 4 (thin on another RAID-5): every block written
//   before the last completed SYNCHRONIZE CACHE reads back, and once the firmware has resynchronized the rows its
//   write-intent bitmaps left dirty, a scrub of the member image files finds every stripe row's parity right.
// Skipped, with a message, without Debian's qemu-utils and qemu-block-extra (a failure under CI).
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_BOARD_PATH } from "../../host/board/load.ts";
import { iscsiTestCuAvailable, readBaseline, runConformance } from "../../tools/cli/conformance.ts";
import { Prng } from "../../host/sim/prng.ts";
import { runCli, startCli, type StartedCli } from "../support/cli.ts";
import { scrubRaid5 } from "../support/raid_scrub.ts";
import { WriteLoad } from "../support/write_load.ts";
import { scaled, until } from "../support/time.ts";

const run = promisify(execFile);
const missing = ["qemu-img", "qemu-io", "stdbuf"].filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `volume tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-volumes-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const IMAGE_BYTES = 64 << 20;
const CHUNK_BYTES = 64 << 10; // r5's and pool5's chunkKiB on the default board
const R5_LUN = 3;
const THIN_LUN = 4;
const R5_MEMBERS = ["sp1-disk1.img", "sp2-disk1.img", "sp1-disk2.img"];
const POOL5_MEMBERS = ["sp1-disk3.img", "sp2-disk3.img", "host-disk1.img"];
const LOAD_REGION_BYTES = 64 << 20; // r5: half the LUN; thin0: 64 of its 124 allocatable chunks, under its 80 % threshold
const ROUNDS_BEFORE_KILL = 12;
const R5_LINE = /volume index=3 name=r5 [^\n]*state=(\w+)/g;

interface Board extends StartedCli {
  lun: (n: number) => string;
  dataDir: string;
}

async function startBoard(dataDir: string, boardPath = DEFAULT_BOARD_PATH): Promise<Board> {
  const started = startCli(["run", "--board", boardPath, "--portal", "127.0.0.1:0", "--data-dir", dataDir]);
  await started.waitFor(/iscsi:\/\/127\.0\.0\.1:\d+\/\S+\/4\n/, 60_000);
  const url = /(iscsi:\/\/127\.0\.0\.1:\d+\/\S+)\/4\n/.exec(started.output())![1]!;
  return { ...started, dataDir, lun: (n: number) => `${url}/${n}` };
}

async function stopBoard(board: Board): Promise<void> {
  board.child.kill("SIGINT");
  const stopped = await board.result;
  expect(stopped.code, stopped.stderr).toBe(0); // a clean power-off, not a panic
}

/** r5's state as `wasm-iop fault status --json` reports it. */
async function r5Status(dataDir: string): Promise<string> {
  const answer = await runCli(["fault", "--data-dir", dataDir, "status", "--json"]);
  expect(answer.code, answer.stderr).toBe(0);
  const status = JSON.parse(answer.stdout) as { status: { volumes: { record: { name: string; state: string } }[] } };
  return status.status.volumes.find((v) => v.record.name === "r5")!.record.state;
}

async function fault(dataDir: string, ...args: string[]): Promise<void> {
  const answer = await runCli(["fault", "--data-dir", dataDir, ...args]);
  expect(answer.code, answer.stdout + answer.stderr).toBe(0);
}

/** Waits until the console, after its first `from` characters, prints r5's state line with a state matching `state`. */
async function r5StateAfter(board: Board, from: number, state: RegExp, quietMs: number): Promise<void> {
  const printed = () => [...board.output().slice(from).matchAll(R5_LINE)].some((m) => state.test(m[1]!));
  await until(printed, `r5 ${state} after console offset ${from}`, quietMs);
}

/** The first `bytes` of a LUN, read with qemu-img. */
async function readLun(url: string, bytes: number): Promise<Buffer> {
  const back = join(tmp, `back-${process.hrtime.bigint()}.img`);
  await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", url, back]);
  const data = readFileSync(back).subarray(0, bytes);
  rmSync(back);
  return data;
}

async function expectLunHolds(url: string, image: Buffer): Promise<void> {
  const back = await readLun(url, image.length);
  expect(back.length).toBe(image.length);
  expect(Buffer.compare(back, image), "the LUN reads back what was written").toBe(0);
}

/** A 64 MiB random image written to LUN 3 with qemu-img; returns its bytes. */
async function writeImage(board: Board, seed: string): Promise<Buffer> {
  const image = Buffer.alloc(IMAGE_BYTES);
  new Prng(seed).fill(image);
  const path = join(tmp, `${seed}.img`);
  writeFileSync(path, image);
  await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", path, board.lun(R5_LUN)]);
  return image;
}

/** Pulls sp2-disk1 (r5's member 1) and makes the firmware notice: a read of row 0 touches every data chunk. */
async function failMember(board: Board): Promise<void> {
  await fault(board.dataDir, "disk", "sp2:1", "fail");
  await run("qemu-io", ["-f", "raw", "-c", `read 0 ${2 * CHUNK_BYTES}`, board.lun(R5_LUN)]);
}

describe.skipIf(missing.length > 0)("RAID-5 and thin volumes with real initiators and injected faults", () => {
  it("reads a 64 MiB image back identical while a member is down and the spare rebuilds, and after", async () => {
    const board = await startBoard(mkdtempSync(join(tmp, "spare-")));
    try {
      const image = await writeImage(board, "raid5-spare");
      const mark = board.output().length;
      // The read-back is what finds the member gone: it reconstructs, and the spare's rebuild starts under it (the
      // rebuild of 63 MiB takes about a second here, so the read races it; the test without a spare reads degraded).
      await fault(board.dataDir, "disk", "sp2:1", "fail");
      await expectLunHolds(board.lun(R5_LUN), image);
      await r5StateAfter(board, mark, /^degraded$/, 30_000);
      expect(board.output().slice(mark)).toMatch(/volumes: a spare takes member 1 of volume 3/);
      await r5StateAfter(board, mark, /^rebuilding$/, 30_000);
      await r5StateAfter(board, mark, /^optimal$/, 120_000);
      expect(await r5Status(board.dataDir)).toBe("optimal");
      await expectLunHolds(board.lun(R5_LUN), image);
    } finally {
      await stopBoard(board);
    }
  }, scaled(240_000));

  describe("without a spare", () => {
    const noSpare = JSON.parse(readFileSync(DEFAULT_BOARD_PATH, "utf8")) as Record<string, unknown> & { volumes: Record<string, unknown>[] };
    delete noSpare.$schema; // the copy lives elsewhere: no schema path and no flash (its keys are paths relative to boards/)
    delete noSpare.flash;
    for (const volume of noSpare.volumes) delete volume.spares;
    const boardPath = join(tmp, "no-spare.json");
    writeFileSync(boardPath, JSON.stringify(noSpare));
    const dataDir = mkdtempSync(join(tmp, "no-spare-"));
    let image: Buffer | undefined;

    it("stays degraded until the pulled member is replaced, then rebuilds onto the new disk; identical throughout", async () => {
      const board = await startBoard(dataDir, boardPath);
      try {
        image = await writeImage(board, "raid5-no-spare");
        const mark = board.output().length;
        await failMember(board);
        await r5StateAfter(board, mark, /^degraded$/, 30_000);
        await expectLunHolds(board.lun(R5_LUN), image);
        expect(await r5Status(dataDir)).toBe("degraded"); // no spare: nothing to rebuild onto
        expect(board.output().slice(mark)).not.toMatch(/state=rebuilding/);
        const replaced = board.output().length;
        await fault(dataDir, "disk", "sp2:1", "replace");
        await until(() => /member 1 of volume 3 answers again/.test(board.output().slice(replaced)), "the probe to find the new disk", 30_000);
        await r5StateAfter(board, replaced, /^optimal$/, 120_000);
        expect(await r5Status(dataDir)).toBe("optimal");
        await expectLunHolds(board.lun(R5_LUN), image);
      } finally {
        await stopBoard(board);
      }
    }, scaled(240_000));

    it("comes up degraded when a member's image file is gone, reads back identical, and rebuilds", async () => {
      expect(image, "the test before wrote the image").toBeDefined();
      rmSync(join(dataDir, "sp1-disk2.img")); // r5's member 2: the board starts with a blank disk in its slot
      const board = await startBoard(dataDir, boardPath);
      try {
        expect(board.output()).toMatch(/inventory volume index=3 name=r5 [^\n]*state=degraded/);
        await expectLunHolds(board.lun(R5_LUN), image!);
        await r5StateAfter(board, 0, /^optimal$/, 120_000);
        expect(await r5Status(dataDir)).toBe("optimal");
        await expectLunHolds(board.lun(R5_LUN), image!);
      } finally {
        await stopBoard(board);
      }
    }, scaled(240_000));
  });

  it("keeps every write flushed before kill -9, and the parity of both RAID-5s is right after the resync", async () => {
    const dataDir = mkdtempSync(join(tmp, "crash-"));
    const first = await startBoard(dataDir);
    const loads = [new WriteLoad(first.lun(R5_LUN), "r5", LOAD_REGION_BYTES), new WriteLoad(first.lun(THIN_LUN), "thin0", LOAD_REGION_BYTES)];
    await until(() => loads.every((l) => l.roundsDurable >= ROUNDS_BEFORE_KILL), `${ROUNDS_BEFORE_KILL} flushed rounds on each LUN`, 120_000);
    const beforeKill = loads.map((l) => l.outputSoFar()); // what qemu-io said while the target was up
    first.child.kill("SIGKILL"); // mid-round: each load has a round of writes in flight
    expect((await first.result).code).toBeNull();
    await Promise.all(loads.map((l) => l.stop()));
    for (const [i, said] of beforeKill.entries()) expect(said, `${loads[i]!.name}: no write failed before the kill`).not.toMatch(/failed/i);

    const second = await startBoard(dataDir);
    try {
      // Both volumes had writes in flight: the bitmap says where, and those rows are resynchronized.
      expect(second.output()).toMatch(/volumes: r5: stopped with writes in flight; the rows they touched are resynchronized/);
      expect(second.output()).toMatch(/volumes: pool5: stopped with writes in flight; the rows they touched are resynchronized/);
      await until(() => /volumes: volume 3 resynchronized/.test(second.output()) && /volumes: volume 4 resynchronized/.test(second.output()), "both resyncs", 120_000);
      for (const load of loads) {
        const back = await readLun(second.lun(load.name === "r5" ? R5_LUN : THIN_LUN), LOAD_REGION_BYTES).catch((error: Error) => {
          throw new Error(`${error.message}\nboard console:\n${second.output().slice(-4000)}`);
        });
        const wrong = load.check(back);
        expect(load.check(Buffer.alloc(LOAD_REGION_BYTES)).length, `${load.name}: the check tells a blank region`).toBeGreaterThan(0);
        expect(wrong, `${load.name}: blocks that do not read back as flushed (of ${load.roundsDurable} flushed rounds)`).toEqual([]);
      }
    } finally {
      await stopBoard(second);
    }
    for (const [name, members] of [["r5", R5_MEMBERS], ["pool5", POOL5_MEMBERS]] as const) {
      const images = members.map((file) => readFileSync(join(dataDir, file)));
      const scrub = scrubRaid5(images, CHUNK_BYTES);
      expect(scrub.rows, name).toBe(1008); // 63 MiB of data area per member
      expect(scrub.rowsWithData, `${name}: the load reached its members`).toBeGreaterThan(10);
      expect(scrub.mismatches, `${name}: stripe rows whose parity is wrong`).toEqual([]);
      images[0]![(1 << 20) + 12345] ^= 0x40; // the scrub itself sees one flipped bit
      expect(scrubRaid5(images, CHUNK_BYTES).mismatches).toEqual([0]);
    }
  }, scaled(300_000));
});

// The whole suite against each LUN takes 1-3 minutes here, beside the full run against LUN 0 in interop.test.ts: this
// runs one family per LUN, the one that exercises what the volume adds (docs/volumes.md, "Conformance", has the full
// runs' numbers and what keeps them from matching the baseline).
describe.skipIf(!iscsiTestCuAvailable())("iscsi-test-cu against the RAID-5 and the thin LUN", () => {
  const baseline = readBaseline();
  for (const [lun, volume, pattern] of [[R5_LUN, "RAID-5", "ALL.WriteSame16"], [THIN_LUN, "thin", "ALL.Unmap"], [THIN_LUN, "thin", "ALL.GetLBAStatus"]] as const) {
    it(`${pattern} on the ${volume} LUN: every test runs, no regression against the baseline`, async () => {
      const result = await runConformance({ lun, pattern, baseline, notRun: Object.keys(baseline.notRun ?? {}), timeoutMs: scaled(300_000) });
      expect(result.crashed).toBeUndefined();
      const family = Object.keys(baseline.results).filter((name) => `ALL.${name}`.startsWith(`${pattern}.`));
      expect(family.length).toBeGreaterThan(2);
      expect(result.outcomes.map((o) => o.name).sort()).toEqual(family.sort());
      expect(result.outcomes.filter((o) => o.result === "skip").map((o) => o.name)).toEqual([]); // provisioning runs
      expect(result.regressions).toEqual([]);
    }, scaled(180_000));
  }
});
