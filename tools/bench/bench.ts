// `wasm-iop bench`: the board against Debian's tgt on the same machine, driven by the same initiators, run in
// alternating pairs (board, tgt, board, tgt, ...) so slow drift of a busy machine falls on both sides alike. Each
// pair gives a ratio board/tgt; the result reports each side's medians, the ratios' median and spread, the
// emulator's CPU time and WebAssembly time per I/O, its RSS over the run, and the targets met or not.
// Benchmarks are never asserted in tests (DESIGN-NOTES §10): a test only checks that --quick produces figures.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { DEFAULT_BOARD_PATH, loadBoardFile, targetLuns } from "../../host/board/load.ts";
import { volumeCapacityBytes } from "../../host/board/volume_geometry.ts";
import { buildFirmware, ROOT } from "../build/firmware.ts";
import { type RunFigures, runWorkload, type Workload, WORKLOADS } from "./clients.ts";
import { Emulator, type EmulatorStats } from "./emulator.ts";
import { type CpuProfile, type ProfileItem, topSelfTime } from "./profile.ts";
import { Nbdkit } from "./nbdkit.ts";
import { Tgt } from "./tgt.ts";

/** What the board is measured against: tgt (iSCSI) or nbdkit's file plugin (NBD), on a file of the LUN's size. */
interface Reference {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface BenchOptions {
  durationS: number; // length of each measured run
  pairs: number; // alternating board/tgt pairs per workload
  lun: number; // the board's LUN driven (tgt has one disk)
  boardPath?: string; // default boards/iop-dev.json
  quick: boolean; // smoke run: no warm-up, tiny runs
  soakS: number; // after the first configuration's pairs, a mixed run on the board alone this long, RSS sampled (0: none)
  profilePath: string | undefined; // V8 CPU profile of the emulator during the file-disk pairs
  configs: readonly DiskConfig[];
  workloads: readonly Workload[]; // WORKLOADS, or the ones --only names
  protocol?: "iscsi" | "nbd"; // iscsi (default): the board's LUN against tgt; nbd: its export of that volume against nbdkit
  progress: (line: string) => void;
  /** The emulator records its session (run --record) into its data directory: what recording costs, per I/O. */
  record?: boolean;
  /** True once the run should stop (SIGINT, SIGTERM): checked between runs, then both targets are shut down. */
  interrupted?: () => boolean;
}

/** The run was stopped by a signal; the targets were shut down cleanly. */
export class BenchInterrupted extends Error {
  override name = "BenchInterrupted";
}

function checkInterrupted(options: BenchOptions): void {
  if (options.interrupted?.() === true) throw new BenchInterrupted("interrupted: stopped between runs, tgtd and the emulator shut down");
}

export type DiskConfig = "file" | "memory";

/** A side's figures for one run, with what the target process spent on it. */
export interface SideRun extends RunFigures {
  cpuUsPerIo: number; // the target process's user + system CPU time per request
  firmwareUsPerIo?: number; // board only: WebAssembly time per request (irq()/run() calls less their bus accesses)
  busUsPerIo?: number; // board only: time in the firmware's bus accesses per request (device work they set off)
  turnsPerIo?: number; // board only: firmware turns (irq deliveries and a run() call), every processor
  busAccessesPerIo?: number; // board only: bus reads and writes by the firmware, every processor
  /**
   * Board only: host µs per request by layer of the board (host/sim/layer_meter.ts: nic, firmware, mu, controller,
   * disk, other), and "rest": the CPU time per request outside them (sockets' callbacks, the pacer, GC between events).
   */
  layersUsPerIo?: Record<string, number>;
  /** Board only: host µs per request inside each processor's firmware calls (its WebAssembly and the bus accesses it made). */
  processorsUsPerIo?: Record<string, number>;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface WorkloadResult extends Workload {
  pairs: { board: SideRun; tgt: SideRun; ratio: number }[]; // ratio: board IOPS / tgt IOPS (= MiB/s ratio); unmetered
  layerRun: SideRun; // one board run after the pairs with the layer meter on: the split by layer, wasm and bus µs/IO
  board: { iops: number; mibPerS: number; latencyUs: number; cpuUsPerIo: number; firmwareUsPerIo: number; busUsPerIo: number; turnsPerIo: number; busAccessesPerIo: number; layersUsPerIo: Record<string, number> }; // medians
  tgt: { iops: number; mibPerS: number; latencyUs: number; cpuUsPerIo: number };
  throughputRatio: Spread; // board/tgt IOPS (and MiB/s): higher is better for the board
  latencyRatio: Spread; // board/tgt mean latency: lower is better for the board
}

export interface RssReport {
  // Every sample is taken after a full garbage collection, so growth is memory still held, not garbage not yet taken.
  firstBytes: number; // after the first measured run
  lastBytes: number;
  maxBytes: number;
  // RSS after a full GC still swings by ~10% from sample to sample (malloc arenas, freed 1 MiB buffers), so growth is
  // the envelope's: the highest sample of the last minute against the highest of the first minute (the whole run when
  // shorter than two minutes), not the last sample against the first, which only tells where in a swing each fell.
  firstWindowMaxBytes: number;
  lastWindowMaxBytes: number;
  growthPercent: number; // (lastWindowMax - firstWindowMax) / firstWindowMax
  seconds: number; // between the first and the last sample
  samples: number;
  heapUsedFirstBytes: number; // V8's heap in use at the first and the last sample
  heapUsedLastBytes: number;
}

export interface ConfigResult {
  disks: DiskConfig;
  workloads: WorkloadResult[];
  rss: RssReport;
  soak?: RssReport;
  panics: number;
}

export interface TargetCheck {
  what: string;
  disks: DiskConfig;
  value: number;
  goal: string;
  met: boolean;
}

export interface BenchResult {
  format: "wasm-iop-bench/1";
  startedAt: string;
  seconds: number;
  machine: { cpu: string; cpuCount: number; memoryGiB: number; kernel: string; node: string; loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  options: { durationS: number; pairs: number; lun: number; quick: boolean; soakS: number; board: string; protocol?: "iscsi" | "nbd" };
  configs: ConfigResult[];
  targets: TargetCheck[];
  profile?: { path: string; top: ProfileItem[] };
}

/** Finds a free TCP port on loopback (bound and released at once; tgtd takes it right after). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const CLOCK_TICKS_PER_S = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;

/** A process's user + system CPU time in µs, from /proc (every thread of it). */
function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // after "pid (comm) ": field 3 is state
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1e6; // utime, stime: fields 14, 15
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

// The first run's request count, before any rate is known: about 0.1 s on the slower side.
export function firstCount(workload: Workload): number {
  return workload.sizeBytes >= 1 << 20 ? 16 : Math.max(32, workload.depth * 8);
}

// Sizes the next run from the last one's rate so it lasts about `durationS`; at least two full queues.
export function nextCount(workload: Workload, last: RunFigures | undefined, durationS: number): number {
  if (last === undefined) return firstCount(workload);
  return Math.max(workload.depth * 2, Math.round(last.iops * durationS));
}

interface MemorySample {
  atMs: number;
  rssBytes: number;
  heapUsedBytes: number;
}

const RSS_WINDOW_MS = 60_000;

function rssReport(samples: MemorySample[]): RssReport {
  const first = samples[0] ?? { atMs: 0, rssBytes: 0, heapUsedBytes: 0 };
  const last = samples[samples.length - 1] ?? first;
  const windowMs = Math.min(RSS_WINDOW_MS, (last.atMs - first.atMs) / 2);
  const peak = (from: number, to: number) => Math.max(0, ...samples.filter((s) => s.atMs >= from && s.atMs <= to).map((s) => s.rssBytes));
  const firstWindowMax = peak(first.atMs, first.atMs + windowMs);
  const lastWindowMax = peak(last.atMs - windowMs, last.atMs);
  return {
    firstBytes: first.rssBytes,
    lastBytes: last.rssBytes,
    maxBytes: Math.max(...samples.map((s) => s.rssBytes), 0),
    firstWindowMaxBytes: firstWindowMax,
    lastWindowMaxBytes: lastWindowMax,
    growthPercent: firstWindowMax > 0 ? (100 * (lastWindowMax - firstWindowMax)) / firstWindowMax : 0,
    seconds: (last.atMs - first.atMs) / 1000,
    samples: samples.length,
    heapUsedFirstBytes: first.heapUsedBytes,
    heapUsedLastBytes: last.heapUsedBytes,
  };
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const started = Date.now();
  const loadAverageAtStart = loadAverage();
  const spec = loadBoardFile(options.boardPath ?? DEFAULT_BOARD_PATH);
  // tgt's one disk is the size of the LUN's volume (a RAID or thin LUN is not the size of any one disk).
  const lunSpecs = targetLuns(spec, spec.targets[0]!);
  const lunSpec = lunSpecs[options.lun];
  if (lunSpec === undefined) throw new Error(`the board has no LUN ${options.lun} (its first target has ${lunSpecs.length})`);
  const lunBytes = volumeCapacityBytes(spec.volumes[lunSpec.volume]!, spec.disks, spec.volumes);
  const progress = options.progress;
  await buildFirmware(["release"]); // once, here, rather than inside a child's start-up wait
  const dir = mkdtempSync(join(tmpdir(), "wasm-iop-bench-"));
  const port = await freePort();
  progress(`${options.protocol === "nbd" ? "nbdkit" : "tgt: tgtd"} on 127.0.0.1:${port}, backing file ${lunBytes / 2 ** 20} MiB in ${dir}`);
  // tgtd takes management ports up to 32767; one per bench process keeps two benches (or a system tgtd, on 0) apart.
  const controlPort = 1000 + (process.pid % 30000);
  const nbd = options.protocol === "nbd";
  if (nbd && !(spec.nbd?.exports ?? []).some((e) => e.volume === lunSpec.volume)) throw new Error(`the board exports no NBD export of LUN ${options.lun}'s volume`);
  const referenceStarting: Promise<Reference> = nbd ? Nbdkit.start({ dir, sizeBytes: lunBytes, port, log: (line) => progress(`nbdkit: ${line}`) })
    : Tgt.start({ dir, sizeBytes: lunBytes, port, controlPort, log: (line) => progress(`tgtd: ${line}`) });
  const tgt = await referenceStarting
    .catch((error: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    });
  const configs: ConfigResult[] = [];
  let profile: BenchResult["profile"];
  try {
    for (const disks of options.configs) {
      const profilePath = disks === options.configs[0] ? options.profilePath : undefined;
      const { result, top } = await benchConfig(disks, tgt, dir, profilePath, options);
      configs.push(result);
      if (profilePath !== undefined) profile = { path: profilePath, top };
    }
  } finally {
    await tgt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    format: "wasm-iop-bench/1",
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine: machineInfo(loadAverageAtStart),
    options: { durationS: options.durationS, pairs: options.pairs, lun: options.lun, quick: options.quick, soakS: options.soakS, board: spec.name, protocol: options.protocol ?? "iscsi" },
    configs,
    targets: checkTargets(configs, nbd),
    ...(profile !== undefined ? { profile } : {}),
  };
}

// One board configuration against tgt: the emulator in its own process, every workload in alternating pairs.
async function benchConfig(disks: DiskConfig, tgt: Reference, dir: string, profilePath: string | undefined, options: BenchOptions):
  Promise<{ result: ConfigResult; top: ProfileItem[] }> {
  const progress = options.progress;
  const dataDir = join(dir, `board-${disks}`);
  progress(`board: starting the emulator with ${disks} disks`);
  const nbd = options.protocol === "nbd";
  // The board in the scheduler's group its reference has: nbdkit runs in the bench's session, tgtd in its own.
  const emulator = await Emulator.start({ boardPath: options.boardPath, memoryDisks: disks === "memory", dataDir, nbd, ownSession: !nbd, log: (line) => progress(`emulator: ${line}`),
    recordPath: options.record === true ? join(dataDir, "session.rec") : undefined });
  const boardUrl = nbd ? emulator.nbdUrls[nbdExportIndex(options)]! : emulator.urls[options.lun]!;
  progress(`board: serving ${boardUrl} (pid ${emulator.pid})`);
  const rssSamples: MemorySample[] = [];
  const workloads: WorkloadResult[] = [];
  let top: ProfileItem[] = [];
  let soak: RssReport | undefined;
  let panics = 0;
  try {
    if (!options.quick) {
      // The emulator's first thousands of requests run slower while V8 compiles its path: a few short runs of every
      // workload first, so the first measured pair is not the slowest. Each workload still has its own warm-up.
      progress("board: warming up the emulator");
      for (const workload of options.workloads) {
        checkInterrupted(options);
        await runWorkload(workload, boardUrl, firstCount(workload) * 4, 1);
      }
    }
    if (profilePath !== undefined) await emulator.profileStart();
    for (const workload of options.workloads) {
      workloads.push(await benchWorkload(workload, emulator, boardUrl, tgt, options, rssSamples, disks));
    }
    if (profilePath !== undefined) {
      await emulator.profileStop(profilePath);
      top = topSelfTime(JSON.parse(readFileSync(profilePath, "utf8")) as CpuProfile, 15, ROOT);
      progress(`profile: ${profilePath}`);
    }
    if (options.soakS > 0 && disks === options.configs[0]) soak = await soakRun(emulator, boardUrl, options);
  } finally {
    const last = await emulator.stats().catch(() => undefined);
    await emulator.stop();
    panics = last?.panics ?? 0;
    if (panics > 0) progress(`board: ${panics} processor panics during the run (see the emulator lines above)`);
  }
  return { result: { disks, workloads, rss: rssReport(rssSamples), ...(soak !== undefined ? { soak } : {}), panics }, top };
}

async function benchWorkload(workload: Workload, emulator: Emulator, boardUrl: string, tgt: Reference, options: BenchOptions,
  rssSamples: MemorySample[], disks: DiskConfig): Promise<WorkloadResult> {
  const { durationS } = options;
  let lastBoard: RunFigures | undefined;
  let lastTgt: RunFigures | undefined;
  if (!options.quick) {
    // Warm-up, unmeasured: a short probe for each side's rate, then half a run, so V8 has compiled the emulator's
    // path for this workload (its first thousands of requests run slower) and the measured runs can be sized.
    checkInterrupted(options);
    lastBoard = await runWorkload(workload, boardUrl, firstCount(workload), 1);
    lastTgt = await runWorkload(workload, tgt.url, firstCount(workload), 1);
    lastBoard = await runWorkload(workload, boardUrl, nextCount(workload, lastBoard, durationS / 2), durationS / 2);
    lastTgt = await runWorkload(workload, tgt.url, nextCount(workload, lastTgt, durationS / 2), durationS / 2);
  }
  const pairs: WorkloadResult["pairs"] = [];
  // The pairs run without the layer meter (two clock reads per layer switch: ~15 µs per 4 KiB request at a load of
  // 10); one more board run after them, metered, gives the split by layer (layerRun).
  await emulator.meter(false);
  for (let index = 0; index < options.pairs; index += 1) {
    checkInterrupted(options);
    const before: EmulatorStats = await emulator.stats();
    const board = await runWorkload(workload, boardUrl, nextCount(workload, lastBoard, durationS), durationS);
    const after: EmulatorStats = await emulator.stats();
    const memory = await emulator.stats(true);
    rssSamples.push({ atMs: Date.now(), rssBytes: memory.rssBytes, heapUsedBytes: memory.heapUsedBytes });
    const tgtCpuBefore = processCpuUs(tgt.pid);
    const reference = await runWorkload(workload, tgt.url, nextCount(workload, lastTgt, durationS), durationS);
    const tgtCpuUs = processCpuUs(tgt.pid) - tgtCpuBefore;
    lastBoard = board;
    lastTgt = reference;
    const boardSide = boardRun(board, before, after);
    const tgtSide: SideRun = { ...reference, cpuUsPerIo: tgtCpuUs / reference.ios };
    const ratio = board.iops / reference.iops;
    pairs.push({ board: boardSide, tgt: tgtSide, ratio });
    reportPair(options, disks, workload, index, board, reference, ratio);
  }
  checkInterrupted(options);
  await emulator.meter(true);
  const meteredBefore = await emulator.stats();
  const metered = await runWorkload(workload, boardUrl, nextCount(workload, lastBoard, durationS), durationS);
  const layerRun = boardRun(metered, meteredBefore, await emulator.stats());
  const pick = (side: "board" | "tgt", key: keyof SideRun) => median(pairs.map((p) => (p[side][key] as number | undefined) ?? 0));
  return {
    ...workload,
    pairs,
    layerRun,
    board: { iops: pick("board", "iops"), mibPerS: pick("board", "mibPerS"), latencyUs: pick("board", "latencyUs"), cpuUsPerIo: pick("board", "cpuUsPerIo"),
      firmwareUsPerIo: layerRun.firmwareUsPerIo, busUsPerIo: layerRun.busUsPerIo,
      turnsPerIo: pick("board", "turnsPerIo"), busAccessesPerIo: pick("board", "busAccessesPerIo"), layersUsPerIo: layerRun.layersUsPerIo },
    tgt: { iops: pick("tgt", "iops"), mibPerS: pick("tgt", "mibPerS"), latencyUs: pick("tgt", "latencyUs"), cpuUsPerIo: pick("tgt", "cpuUsPerIo") },
    throughputRatio: spread(pairs.map((p) => p.ratio)),
    latencyRatio: spread(pairs.map((p) => p.board.latencyUs / p.tgt.latencyUs)),
  };
}

// The board's NBD export of the benchmarked LUN's volume, by its index in the board file's exports (the emulator's
// nbdUrls are in that order).
function nbdExportIndex(options: BenchOptions): number {
  const spec = loadBoardFile(options.boardPath ?? DEFAULT_BOARD_PATH);
  const volume = targetLuns(spec, spec.targets[0]!)[options.lun]!.volume;
  return spec.nbd!.exports.findIndex((e) => e.volume === volume);
}

/** A board run's figures with what the emulator spent on it, from its counters before and after the run. */
export function boardRun(run: RunFigures, before: EmulatorStats, after: EmulatorStats): Required<SideRun> {
  const cpuUs = after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs;
  return {
    ...run,
    cpuUsPerIo: cpuUs / run.ios,
    firmwareUsPerIo: ((after.firmwareCallMs - before.firmwareCallMs - (after.firmwareBusMs - before.firmwareBusMs)) * 1000) / run.ios,
    busUsPerIo: ((after.firmwareBusMs - before.firmwareBusMs) * 1000) / run.ios,
    turnsPerIo: (after.firmwareRunCount - before.firmwareRunCount) / run.ios,
    busAccessesPerIo: (after.busAccessCount - before.busAccessCount) / run.ios,
    layersUsPerIo: layersPerIo(cpuUs, run.ios, before, after),
    processorsUsPerIo: Object.fromEntries(Object.entries(after.processorCallMs).map(([name, ms]) => [name, ((ms - (before.processorCallMs[name] ?? 0)) * 1000) / run.ios])),
  };
}

/**
 * The layers' host time per request over a run, and the rest of the CPU time: what no layer holds. The layers are
 * timed in wall time; on a loaded machine the main thread also waits for a CPU in the middle of them, so each layer's
 * wall time is scaled by the main thread's CPU time over its event loop's active (not idle) wall time ("on-CPU"):
 * an estimate of the layer's CPU time that assumes the waits fall evenly on the loop's active time.
 */
export function layersPerIo(cpuUs: number, ios: number, before: EmulatorStats, after: EmulatorStats): Record<string, number> {
  const out: Record<string, number> = {};
  const runMs = (after.schedRunNs - before.schedRunNs) / 1e6;
  const activeMs = after.loopActiveMs - before.loopActiveMs;
  const onCpu = runMs > 0 && activeMs > 0 ? Math.min(1, runMs / activeMs) : 1;
  let counted = 0;
  for (const [name, ms] of Object.entries(after.layerMs)) {
    const us = (ms - (before.layerMs[name] ?? 0)) * 1000 * onCpu;
    counted += us;
    out[name] = us / ios;
  }
  // The rest: the main thread's CPU time outside the layers; the process's other threads (V8's compiler and GC
  // helpers, libuv's) apart. Without schedstat both are in the rest.
  const mainUs = runMs > 0 ? runMs * 1000 : cpuUs;
  out.rest = (mainUs - counted) / ios;
  out.threads = (cpuUs - mainUs) / ios;
  out.onCpu = onCpu;
  return out;
}

function medianLayers(runs: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of Object.keys(runs[0] ?? {})) out[name] = median(runs.map((r) => r[name] ?? 0));
  return out;
}

/** The order and headings of the layer table's columns. */
export const LAYER_COLUMNS: readonly [string, string][] = [
  ["nic", "NIC"], ["firmware", "firmware"], ["mu", "MU"], ["controller", "disk ctrl"], ["disk", "disk I/O"], ["other", "other dev"], ["rest", "rest"],
  ["threads", "threads"],
];

/** This machine, and its load average now (at the start) and at the end. */
export function machineInfo(loadAverageAtStart: number[]): BenchResult["machine"] {
  const cpuList = cpus();
  return {
    cpu: cpuList[0]?.model ?? "unknown",
    cpuCount: cpuList.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadAverageAtStart,
    loadAverageAtEnd: loadAverage(),
  };
}

export function loadAverage(): number[] {
  return loadavg().map((value) => Math.round(value * 100) / 100);
}

function reportPair(options: BenchOptions, disks: DiskConfig, workload: Workload, index: number, board: RunFigures, tgt: RunFigures, ratio: number): void {
  const side = (f: RunFigures) => `${f.iops.toFixed(0)} IOPS ${f.mibPerS.toFixed(1)} MiB/s ${f.latencyUs.toFixed(0)} µs`;
  const reference = options.protocol === "nbd" ? "nbdkit" : "tgt";
  options.progress(`${disks} ${workload.name} pair ${index + 1}/${options.pairs}: board ${side(board)} | ${reference} ${side(tgt)} | ratio ${ratio.toFixed(3)}`);
}

// The board alone under a mix of every qemu-img workload, for `soakS` seconds, RSS sampled after each run.
async function soakRun(emulator: Emulator, boardUrl: string, options: BenchOptions): Promise<RssReport> {
  const mix = WORKLOADS.filter((w) => w.tool === "qemu-img");
  const samples: MemorySample[] = [];
  const endMs = Date.now() + options.soakS * 1000;
  const lastRuns = new Map<string, RunFigures>();
  options.progress(`soak: ${options.soakS} s of mixed I/O on the board, RSS sampled after each run`);
  for (let index = 0; Date.now() < endMs; index += 1) { // bounded by the clock: each pass is one ~2 s run
    checkInterrupted(options);
    const workload = mix[index % mix.length]!;
    const figures = await runWorkload(workload, boardUrl, nextCount(workload, lastRuns.get(workload.name), 2), 2);
    lastRuns.set(workload.name, figures);
    const { rssBytes, heapUsedBytes } = await emulator.stats(true);
    samples.push({ atMs: Date.now(), rssBytes, heapUsedBytes });
    if (index % mix.length === mix.length - 1) options.progress(`soak: ${Math.round((endMs - Date.now()) / 1000)} s left, RSS ${(rssBytes / 2 ** 20).toFixed(1)} MiB`);
  }
  return rssReport(samples);
}

// The targets, on the file-disk board when it ran (else the first configuration).
function checkTargets(configs: ConfigResult[], nbd: boolean): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const config of configs) {
    if (nbd) {
      // The goal for NBD: at least nbdkit's file plugin, on these three.
      for (const [name, what] of [["4k-read-qd32", "4 KiB read IOPS at QD32"], ["4k-write-qd32", "4 KiB write IOPS at QD32"], ["1m-read-qd8", "1 MiB sequential read MiB/s at QD8"]] as const) {
        const w = config.workloads.find((each) => each.name === name);
        if (w !== undefined) checks.push({ what: `${what}, board/nbdkit over NBD`, disks: config.disks, value: w.throughputRatio.median, goal: ">= 1.0", met: w.throughputRatio.median >= 1.0 });
      }
      continue;
    }
    const find = (name: string) => config.workloads.find((w) => w.name === name);
    const ratio = (name: string, goal: number, what: string) => {
      const w = find(name);
      if (w !== undefined) checks.push({ what, disks: config.disks, value: w.throughputRatio.median, goal: `>= ${goal}`, met: w.throughputRatio.median >= goal });
    };
    ratio("4k-read-qd32", 1.2, "4 KiB read IOPS at QD32, board/tgt");
    ratio("4k-write-qd32", 1.2, "4 KiB write IOPS at QD32, board/tgt");
    ratio("1m-read-qd8", 1.0, "1 MiB sequential read MiB/s at QD8, board/tgt");
    ratio("1m-write-qd8", 1.0, "1 MiB sequential write MiB/s at QD8, board/tgt");
    const qd1 = find("4k-read-qd1");
    if (qd1 !== undefined) checks.push({ what: "4 KiB read latency at QD1, board/tgt", disks: config.disks, value: qd1.latencyRatio.median, goal: "<= 1.0", met: qd1.latencyRatio.median <= 1.0 });
    const rss = config.soak ?? config.rss;
    checks.push({ what: `emulator RSS growth over ${config.soak !== undefined ? "the soak" : "the run"} (${rss.seconds.toFixed(0)} s), %`, disks: config.disks, value: rss.growthPercent, goal: "< 5 (over 300 s)", met: rss.growthPercent < 5 && rss.seconds >= 300 });
  }
  return checks;
}

/** The result as the table `wasm-iop bench` prints. */
export function formatTable(result: BenchResult): string {
  const lines: string[] = [];
  const m = result.machine;
  const o = result.options;
  const ref = o.protocol === "nbd" ? "nbdkit" : "tgt";
  lines.push(`wasm-iop bench, ${result.startedAt}: board ${o.board} LUN ${o.lun}${o.protocol === "nbd" ? " over NBD" : ""} vs ${ref}, ${o.pairs} alternating pairs of ${o.durationS} s runs${o.quick ? " (quick)" : ""}`);
  lines.push(`machine: ${m.cpuCount} x ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, load average ${m.loadAverageAtStart.join(" ")} at the start, ${m.loadAverageAtEnd.join(" ")} at the end`);
  const f = (value: number, digits = 0) => value.toFixed(digits);
  for (const config of result.configs) {
    lines.push("");
    lines.push(`board with ${config.disks} disks vs ${ref} (file backing ${o.protocol === "nbd" ? "file plugin" : "store"})`);
    const header = ["workload", "board IOPS", "MiB/s", "lat µs", `${ref} IOPS`, "MiB/s", "lat µs", "ratio (min-max)", "lat ratio", "emu CPU µs/IO", "wasm µs/IO", "bus µs/IO", "turns/IO", "bus ops/IO", `${ref} CPU µs/IO`];
    const rows = config.workloads.map((w) => [
      w.name, f(w.board.iops), f(w.board.mibPerS, 1), f(w.board.latencyUs), f(w.tgt.iops), f(w.tgt.mibPerS, 1), f(w.tgt.latencyUs),
      `${f(w.throughputRatio.median, 3)} (${f(w.throughputRatio.min, 3)}-${f(w.throughputRatio.max, 3)})`, f(w.latencyRatio.median, 2),
      f(w.board.cpuUsPerIo, 1), f(w.board.firmwareUsPerIo, 1), f(w.board.busUsPerIo, 1), f(w.board.turnsPerIo, 1), f(w.board.busAccessesPerIo, 0), f(w.tgt.cpuUsPerIo, 1),
    ]);
    lines.push(...alignColumns([header, ...rows]));
    if (config.workloads.some((w) => Object.keys(w.board.layersUsPerIo ?? {}).length > 1)) {
      lines.push("board CPU per I/O by layer, µs, in one more board run with the layer meter on (its emu CPU includes the meter's cost): each layer's host");
      lines.push("time, scaled by the main thread's CPU time over its event loop's active time (on-CPU);");
      lines.push("rest: the main thread's CPU time outside them (socket callbacks and writes, the pacer, GC); threads: the process's other threads");
      const layerHeader = ["workload", "emu CPU", ...LAYER_COLUMNS.map(([, heading]) => heading), "on-CPU", `${ref} CPU`];
      const layerRows = config.workloads.map((w) => [w.name, f(w.layerRun.cpuUsPerIo, 1), ...LAYER_COLUMNS.map(([key]) => f(w.board.layersUsPerIo?.[key] ?? 0, 1)),
        f(w.board.layersUsPerIo?.onCpu ?? 1, 2), f(w.tgt.cpuUsPerIo, 1)]);
      lines.push(...alignColumns([layerHeader, ...layerRows]));
    }
    const rss = config.rss;
    const mib = (bytes: number) => f(bytes / 2 ** 20, 1);
    lines.push(`emulator RSS after a full GC: ${mib(rss.firstBytes)} MiB after the first run, ${mib(rss.lastBytes)} MiB at the end, peak ${mib(rss.firstWindowMaxBytes)} -> ${mib(rss.lastWindowMaxBytes)} MiB from the first to the last minute (${f(rss.growthPercent, 1)}% over ${f(rss.seconds)} s), max ${mib(rss.maxBytes)} MiB; JS heap ${mib(rss.heapUsedFirstBytes)} -> ${mib(rss.heapUsedLastBytes)} MiB`);
    if (config.soak !== undefined) {
      const s = config.soak;
      lines.push(`soak: RSS ${mib(s.firstBytes)} -> ${mib(s.lastBytes)} MiB, peak ${mib(s.firstWindowMaxBytes)} -> ${mib(s.lastWindowMaxBytes)} MiB from the first to the last minute (${f(s.growthPercent, 1)}% over ${f(s.seconds)} s, ${s.samples} samples), max ${mib(s.maxBytes)} MiB; JS heap ${mib(s.heapUsedFirstBytes)} -> ${mib(s.heapUsedLastBytes)} MiB`);
    }
  }
  lines.push("");
  lines.push("targets (median ratio of the pairs):");
  for (const t of result.targets) lines.push(`  ${t.met ? "met    " : "not met"}  ${t.disks.padEnd(6)} ${t.what}: ${f(t.value, 3)} (goal ${t.goal})`);
  if (result.profile !== undefined) {
    lines.push("");
    lines.push(`profile of the emulator (${result.profile.path}), top self time:`);
    for (const item of result.profile.top) lines.push(`  ${f(item.selfPercent, 1).padStart(5)}%  ${item.name}  ${item.where}`);
  }
  return lines.join("\n");
}

function alignColumns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  "));
}
