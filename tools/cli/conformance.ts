// wasm-iop conformance: runs libiscsi's iscsi-test-cu against the board and compares with the committed baseline.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../build/firmware.ts";
import { parseCunitOutput, regressions, tally, testSelection, type TestOutcome, type TestResult } from "../conformance/cunit.ts";
import { serveBoard } from "../conformance/serve.ts";
import { NATIVE_ONE_DISK_BOARD, serveNativeBoard } from "../conformance/serve_native.ts";
import { serveCluster } from "../conformance/serve_cluster.ts";
import { DEFAULT_BOARD_PATH, loadBoardFile, targetLuns, type TargetSpec } from "../../host/board/load.ts";
import type { Command } from "./command.ts";

export const BASELINE_PATH = join(ROOT, "test/interop/conformance-baseline.json");

const help = `usage: wasm-iop conformance [--board FILE | --cluster FILE] [--lun N] [--tests PATTERN] [--baseline FILE] [--update-baseline] [--native] [--json]

Starts the board on a free loopback port, runs libiscsi's iscsi-test-cu (Debian package libiscsi-bin) against LUN 0
(or --lun N) of its first target with --dataloss and --allow-sanitize (the same LUN given again as the multipath URL),
prints pass, skip and fail per test and in total, and compares the results with the baseline file committed in the
repository: a new failure, or a test that passed in the baseline and does not now, fails the run. The ReadOnly tests
run again, alone, against a read-only LUN (an extra target the conformance run adds to the board over the volume of
the LUN under test): against the writable LUN they skip, and their result there replaces it.

options:
  --board FILE        board description (default: boards/iop-dev.json); its disks start empty in a temporary directory
  --cluster FILE      a cluster file (clusters/*.json): every board runs in this process on one clock and fabric, on
                      the portals the file names, and the suite runs through each board's portal in turn, each
                      board's results compared with the baseline; the ReadOnly family is not run (a cluster has no
                      read-only LUN to give it); not with --board, --native or --update-baseline
  --lun N             the LUN of the board's first target to test (default: 0), e.g. 3 for the default board's RAID-5
  --tests PATTERN     iscsi-test-cu's test pattern (default: ALL), e.g. ALL.Read10 or ALL.iSCSITMF
  --baseline FILE     the baseline (default: test/interop/conformance-baseline.json)
  --update-baseline   write this run's results as the new baseline instead of comparing
  --timeout SECONDS   give up on iscsi-test-cu after this long (default: 900)
  --native            test the native board (boards/native, built if needed) instead of the JS board; the board
                      file defaults to boards/native/one-disk.json, which the JS board also runs for a comparison
  --json              print a summary object instead of the table
  -h, --help          this help

Exit status: 0 when nothing regressed; 1 on a regression, a crash of the initiator, or a board panic; 3 when
iscsi-test-cu is not installed.`;

export function iscsiTestCuAvailable(): boolean {
  return spawnSync("iscsi-test-cu", ["--help"], { stdio: "ignore" }).error === undefined;
}

/** iscsi-test-cu's tests, as its --list prints them: FAMILY.Suite.Test, in the order it runs them. */
function listIscsiTestCu(): string[] {
  const listed = spawnSync("iscsi-test-cu", ["--list"], { encoding: "utf8" });
  return listed.stdout.split("\n").map((line) => line.trim()).filter((name) => name.split(".").length === 3);
}

/** Runs iscsi-test-cu against `url`; resolves with its output and exit status. */
function runIscsiTestCu(url: string, pattern: string, timeoutMs: number): Promise<{ output: string; code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    // The same LUN again as the second path: the multipath tests log in twice, as two initiators on two paths would.
    // The board's disks are scratch: data loss is allowed, SANITIZE too (its tests skip without --allow-sanitize).
    const child = spawn("iscsi-test-cu", ["--dataloss", "--allow-sanitize", "-t", pattern, url, url], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ output, code, signal });
    });
  });
}

export interface ConformanceResult {
  outcomes: TestOutcome[];
  regressions: string[];
  crashed: string | undefined; // the initiator died (a signal) before the end of the run, or the board panicked
  notRun: string[]; // tests the pattern selects that the baseline says not to run
}

/**
 * The committed baseline: each test's result; the tests run but not judged, and the tests not run at all (they
 * crash the initiator, which would end the run), each with why.
 */
export interface Baseline {
  note: string;
  notJudged: Record<string, string>;
  notRun?: Record<string, string>;
  totals: { pass: number; skip: number; fail: number };
  results: Record<string, TestResult>;
}

export function readBaseline(path: string = BASELINE_PATH): Baseline {
  return JSON.parse(readFileSync(path, "utf8")) as Baseline;
}

// The ReadOnly family tests the LUN it is given and skips unless MODE SENSE reports it write-protected: it gets a LUN
// of its own, read-only, in a target the board file need not have.
const READ_ONLY_FAMILY = "ALL.ReadOnly";
function readOnlyTarget(boardName: string, volume: number): TargetSpec {
  return { name: `iqn.2026-11.org.wasm-iop:${boardName}-read-only`, alias: "", luns: [{ volume, readOnly: true }], chap: undefined, initiators: [] };
}

/** The read-only family's part of `pattern` (ALL, ALL.ReadOnly, ALL.ReadOnly.ReadOnlySBC), or undefined for none. */
function readOnlyPattern(pattern: string): string | undefined {
  if (pattern === "ALL" || pattern === READ_ONLY_FAMILY) return READ_ONLY_FAMILY;
  return pattern.startsWith(`${READ_ONLY_FAMILY}.`) ? pattern : undefined;
}

export async function runConformance(options: {
  boardPath?: string;
  lun?: number; // the LUN of the first target under test; 0 when absent
  pattern: string;
  baseline: Baseline | undefined;
  notRun: readonly string[]; // Suite.Test names not to run (the baseline's notRun)
  timeoutMs: number;
  native?: boolean; // the native board (boards/native) instead of the JS board
}): Promise<ConformanceResult> {
  const board = loadBoardFile(options.boardPath ?? (options.native === true ? NATIVE_ONE_DISK_BOARD : DEFAULT_BOARD_PATH));
  const lun = options.lun ?? 0;
  const luns = targetLuns(board, board.targets[0]!);
  if (!Number.isInteger(lun) || lun < 0 || lun >= luns.length) throw new Error(`no LUN ${lun}: the first target of board ${board.name} has LUNs 0 to ${luns.length - 1}`);
  const extraTargets = [readOnlyTarget(board.name, luns[lun]!.volume)];
  const serving = options.native === true
    ? await serveNativeBoard({ boardPath: options.boardPath, extraTargets })
    : await serveBoard({ boardPath: options.boardPath, extraTargets });
  try {
    const { selection, skipped, count } = testSelection(options.pattern, listIscsiTestCu(), options.notRun);
    const run = await runIscsiTestCu(serving.urls[lun]!, selection, options.timeoutMs);
    let outcomes = parseCunitOutput(run.output);
    const readOnly = readOnlyPattern(options.pattern);
    if (readOnly !== undefined && run.signal === null) {
      const readOnlyUrl = serving.urls[serving.urls.length - 1]!;
      const again = parseCunitOutput((await runIscsiTestCu(readOnlyUrl, readOnly, options.timeoutMs)).output);
      const names = new Set(again.map((o) => o.name));
      outcomes = [...outcomes.filter((o) => !names.has(o.name)), ...again];
    }
    let crashed: string | undefined;
    // libiscsi 1.19.0 can crash on its way out, after every test has its verdict (its async TMF test destroys the
    // first path's session): only a crash that cut the run short counts.
    if (run.signal !== null && (count === 0 || outcomes.length < count)) crashed = `iscsi-test-cu ended by ${run.signal} after ${outcomes.length} of ${count} tests`;
    if (serving.panics.length > 0) crashed = `the board panicked: ${serving.panics[0]!.message}`;
    if (options.baseline === undefined) return { outcomes, regressions: [], crashed, notRun: skipped };
    const flaky = Object.keys(options.baseline.notJudged);
    return { outcomes, regressions: regressions(outcomes, filterBaseline(options.baseline.results, options.pattern), flaky), crashed, notRun: skipped };
  } finally {
    await serving.stop();
  }
}

export interface ClusterConformanceResult {
  boards: { name: string; outcomes: TestOutcome[]; regressions: string[] }[];
  crashed: string | undefined;
  notRun: string[];
}

/**
 * The suite through each board's portal of a cluster in turn (one after the other: the boards present the same
 * volume, so two runs at once would write each other's blocks), LUN `lun` of each board's first target. The ReadOnly
 * family joins the tests not run: a cluster has no read-only LUN for it, and against a writable one it skips.
 */
export async function runClusterConformance(options: {
  clusterPath: string;
  lun: number;
  pattern: string;
  baseline: Baseline | undefined;
  notRun: readonly string[];
  timeoutMs: number;
}): Promise<ClusterConformanceResult> {
  const serving = await serveCluster({ clusterPath: options.clusterPath });
  try {
    const listed = listIscsiTestCu();
    const readOnly = listed.filter((name) => name.startsWith(`${READ_ONLY_FAMILY}.`)).map((name) => name.split(".").slice(1).join("."));
    const { selection, skipped, count } = testSelection(options.pattern, listed, [...options.notRun, ...readOnly]);
    const boards: ClusterConformanceResult["boards"] = [];
    let crashed: string | undefined;
    for (const board of serving.boards) {
      const url = board.urls[options.lun];
      if (url === undefined) throw new Error(`no LUN ${options.lun}: the first target of board ${board.name} has LUNs 0 to ${board.urls.length - 1}`);
      const run = await runIscsiTestCu(url, selection, options.timeoutMs);
      const outcomes = parseCunitOutput(run.output);
      if (run.signal !== null && (count === 0 || outcomes.length < count)) crashed ??= `board ${board.name}: iscsi-test-cu ended by ${run.signal} after ${outcomes.length} of ${count} tests`;
      if (serving.panics.length > 0) crashed ??= `board ${serving.panics[0]!.board} panicked: ${serving.panics[0]!.report.message}`;
      const judged = options.baseline === undefined ? []
        : regressions(outcomes, filterBaseline(options.baseline.results, options.pattern), Object.keys(options.baseline.notJudged))
          .filter((r) => !readOnly.some((name) => r.startsWith(`${name}:`)));
      boards.push({ name: board.name, outcomes, regressions: judged.map((r) => `board ${board.name}: ${r}`) });
      if (crashed !== undefined) break;
    }
    return { boards, crashed, notRun: skipped };
  } finally {
    await serving.stop();
  }
}

// Only the baseline's tests the pattern selects: ALL.Read10 selects Read10.*.
function filterBaseline(baseline: Record<string, TestResult>, pattern: string): Record<string, TestResult> {
  const prefix = pattern.replace(/^ALL\.?/, "");
  return Object.fromEntries(Object.entries(baseline).filter(([name]) => prefix === "" || name === prefix || name.startsWith(`${prefix}.`)));
}

export const conformanceCommand: Command = {
  name: "conformance",
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        board: { type: "string" },
        cluster: { type: "string" },
        lun: { type: "string", default: "0" },
        tests: { type: "string", default: "ALL" },
        baseline: { type: "string" },
        "update-baseline": { type: "boolean", default: false },
        timeout: { type: "string", default: "900" },
        json: { type: "boolean", default: false },
        native: { type: "boolean", default: false },
      },
      strict: true,
    });
    const lun = Number(values.lun);
    if (values.cluster !== undefined) return clusterRun(values.cluster, values);
    const board = loadBoardFile(values.board ?? (values.native ? NATIVE_ONE_DISK_BOARD : DEFAULT_BOARD_PATH));
    const lunCount = targetLuns(board, board.targets[0]!).length;
    if (!/^\d+$/.test(values.lun!) || lun >= lunCount) {
      process.stderr.write(`wasm-iop conformance: --lun: expected a LUN of the first target, 0 to ${lunCount - 1}, got "${values.lun}"\n`);
      return 2;
    }
    if (!iscsiTestCuAvailable()) {
      process.stderr.write("wasm-iop conformance: iscsi-test-cu is not installed (Debian: apt-get install libiscsi-bin)\n");
      return 3;
    }
    const baselinePath = values.baseline ?? BASELINE_PATH;
    const previous = existsSync(baselinePath) ? readBaseline(baselinePath) : undefined;
    const baseline = values["update-baseline"] ? undefined : previous;
    // With --update-baseline nothing is compared, but the tests not to run stay unrun.
    const notRun = Object.keys(previous?.notRun ?? {});
    const result = await runConformance({ boardPath: values.board, lun, pattern: values.tests!, baseline, notRun, timeoutMs: Number(values.timeout) * 1000, native: values.native });
    const counts = tally(result.outcomes);
    if (values["update-baseline"]) {
      const results = Object.fromEntries(result.outcomes.map((o) => [o.name, o.result]));
      const updated: Baseline = {
        note: "wasm-iop conformance --update-baseline: iscsi-test-cu --dataloss --allow-sanitize results per test; tests in notJudged are run but not judged; tests in notRun are not run",
        notJudged: previous?.notJudged ?? {},
        notRun: previous?.notRun ?? {},
        totals: counts,
        results,
      };
      writeFileSync(baselinePath, JSON.stringify(updated, null, 2) + "\n");
    }
    if (values.json) {
      process.stdout.write(JSON.stringify({ ...counts, tests: result.outcomes.length, notRun: result.notRun, regressions: result.regressions, crashed: result.crashed ?? null }, null, 2) + "\n");
    } else {
      for (const o of result.outcomes) process.stdout.write(`${o.result.padEnd(4)}  ${o.name}${o.detail !== "" && o.result !== "pass" ? `  (${o.detail})` : ""}\n`);
      process.stdout.write(`\n${result.outcomes.length} tests: ${counts.pass} passed, ${counts.skip} skipped, ${counts.fail} failed\n`);
      for (const name of result.notRun) process.stdout.write(`not run: ${name} (${previous?.notRun?.[name] ?? "baseline"})\n`);
      for (const r of result.regressions) process.stdout.write(`regression: ${r}\n`);
      if (result.crashed !== undefined) process.stdout.write(`crash: ${result.crashed}\n`);
    }
    return result.regressions.length > 0 || result.crashed !== undefined ? 1 : 0;
  },
};

// conformance --cluster FILE: the suite through every board's portal, one board after the other.
async function clusterRun(clusterPath: string, values: { board?: string; lun?: string; tests?: string; baseline?: string; "update-baseline"?: boolean;
  timeout?: string; json?: boolean; native?: boolean }): Promise<number> {
  if (values.board !== undefined || values.native === true || values["update-baseline"] === true) {
    process.stderr.write("wasm-iop conformance: --cluster goes without --board, --native and --update-baseline\n");
    return 2;
  }
  if (!/^\d+$/.test(values.lun!)) {
    process.stderr.write(`wasm-iop conformance: --lun: expected a LUN number, got "${values.lun}"\n`);
    return 2;
  }
  if (!iscsiTestCuAvailable()) {
    process.stderr.write("wasm-iop conformance: iscsi-test-cu is not installed (Debian: apt-get install libiscsi-bin)\n");
    return 3;
  }
  const baselinePath = values.baseline ?? BASELINE_PATH;
  const baseline = existsSync(baselinePath) ? readBaseline(baselinePath) : undefined;
  const result = await runClusterConformance({ clusterPath, lun: Number(values.lun), pattern: values.tests!, baseline,
    notRun: Object.keys(baseline?.notRun ?? {}), timeoutMs: Number(values.timeout) * 1000 });
  const all = result.boards.flatMap((b) => b.regressions);
  if (values.json) {
    const boards = result.boards.map((b) => ({ board: b.name, ...tally(b.outcomes), tests: b.outcomes.length, regressions: b.regressions }));
    process.stdout.write(JSON.stringify({ boards, notRun: result.notRun, regressions: all, crashed: result.crashed ?? null }, null, 2) + "\n");
  } else {
    for (const b of result.boards) {
      const counts = tally(b.outcomes);
      for (const o of b.outcomes.filter((x) => x.result === "fail")) process.stdout.write(`board ${b.name}: fail  ${o.name}${o.detail !== "" ? `  (${o.detail})` : ""}\n`);
      process.stdout.write(`board ${b.name}: ${b.outcomes.length} tests: ${counts.pass} passed, ${counts.skip} skipped, ${counts.fail} failed\n`);
    }
    for (const name of result.notRun) process.stdout.write(`not run: ${name} (${baseline?.notRun?.[name] ?? "no read-only LUN in a cluster"})\n`);
    for (const r of all) process.stdout.write(`regression: ${r}\n`);
    if (result.crashed !== undefined) process.stdout.write(`crash: ${result.crashed}\n`);
  }
  return all.length > 0 || result.crashed !== undefined ? 1 : 0;
}

