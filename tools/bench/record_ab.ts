// `wasm-iop bench --record-ab`: what recording (run --record, docs/replay.md) costs the emulator per I/O, measured
// on one board in one process: the emulator records from power-on, and the recorder is switched off and on between
// runs (Recorder.watch), in alternating pairs (off, on; then on, off; ...) so a busy machine's drift falls on both
// sides alike. Each pair gives the ratio of emulator CPU per I/O, on over off; the result is the medians of each side
// and of the ratios. No tgt. The recording made has gaps: it measures the cost and is not replayable (its end record
// says so); it is removed with the data directory.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_BOARD_PATH } from "../../host/board/load.ts";
import { buildFirmware } from "../build/firmware.ts";
import { BenchInterrupted, boardRun, firstCount, loadAverage, machineInfo, median, nextCount, spread, type BenchResult, type DiskConfig, type SideRun, type Spread } from "./bench.ts";
import { type RunFigures, runWorkload, type Workload } from "./clients.ts";
import { Emulator } from "./emulator.ts";

export interface RecordAbOptions {
  durationS: number;
  pairs: number;
  lun: number;
  boardPath?: string;
  quick: boolean;
  disks: DiskConfig;
  workloads: readonly Workload[];
  progress: (line: string) => void;
  interrupted?: () => boolean;
}

/** One run: the figures, the emulator's main thread's CPU per I/O, and the bytes recorded per I/O. */
export interface RecordAbRun extends SideRun {
  mainUsPerIo: number; // the main thread's time on a CPU per I/O (/proc/self/schedstat; 0 where there is none)
  recordedBytesPerIo: number; // bytes of records handed to the file per I/O (0 with recording off)
  recordWaitMsPerS: number; // ms a second of the run the board's thread waited for the writer thread's slabs
}

/** One pair: the same workload with recording off and on, in the order given. */
export interface RecordAbPair {
  off: RecordAbRun;
  on: RecordAbRun;
  onFirst: boolean;
  cpuRatio: number; // on / off, emulator CPU µs per I/O
  loadAverage: number[]; // after the pair
}

export interface RecordAbWorkload extends Workload {
  pairs: RecordAbPair[];
  offCpuUsPerIo: Spread;
  onCpuUsPerIo: Spread;
  offMainUsPerIo: number; // medians
  onMainUsPerIo: number;
  onRecordedBytesPerIo: number;
  cpuRatio: Spread; // of the pairs' ratios
  offIops: number;
  onIops: number;
  loadAverage: { start: number[]; end: number[] };
}

export interface RecordAbResult {
  format: "wasm-iop-bench-record-ab/1";
  startedAt: string;
  seconds: number;
  machine: BenchResult["machine"];
  options: { durationS: number; pairs: number; lun: number; quick: boolean; board: string; disks: DiskConfig };
  workloads: RecordAbWorkload[];
  /** The target: recording costs at most 10% more emulator CPU per I/O (median ratio <= 1.10). */
  targets: { what: string; value: number; goal: string; met: boolean }[];
}

export async function runRecordAb(options: RecordAbOptions): Promise<RecordAbResult> {
  const started = Date.now();
  const loadAtStart = loadAverage();
  await buildFirmware(["release"]);
  const dir = mkdtempSync(join(tmpdir(), "wasm-iop-bench-record-ab-"));
  const progress = options.progress;
  const dataDir = join(dir, `board-${options.disks}`);
  const recordPath = join(dataDir, "session.rec");
  const workloads: RecordAbWorkload[] = [];
  let emulator: Emulator | undefined;
  try {
    emulator = await Emulator.start({ boardPath: options.boardPath, memoryDisks: options.disks === "memory", dataDir, recordPath, log: (line) => progress(`emulator: ${line}`) });
    const url = emulator.urls[options.lun];
    if (url === undefined) throw new Error(`the board has no LUN ${options.lun}`);
    progress(`board: serving ${url} (pid ${emulator.pid}), recording to ${recordPath} in turns`);
    for (const workload of options.workloads) workloads.push(await abWorkload(workload, emulator, url, options));
  } finally {
    await emulator?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    format: "wasm-iop-bench-record-ab/1",
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine: machineInfo(loadAtStart),
    options: { durationS: options.durationS, pairs: options.pairs, lun: options.lun, quick: options.quick, board: options.boardPath ?? DEFAULT_BOARD_PATH, disks: options.disks },
    workloads,
    targets: workloads.map((w) => ({ what: `${w.name}: emulator CPU per I/O recording / not`, value: w.cpuRatio.median, goal: "<= 1.10", met: w.cpuRatio.median <= 1.10 })),
  };
}

function checkInterrupted(options: RecordAbOptions): void {
  if (options.interrupted?.() === true) throw new BenchInterrupted("interrupted: stopped between runs, the emulator shut down");
}

async function abWorkload(workload: Workload, emulator: Emulator, url: string, options: RecordAbOptions): Promise<RecordAbWorkload> {
  const { durationS, progress } = options;
  const loadStart = loadAverage();
  let last: RunFigures | undefined;
  if (!options.quick) {
    // Warm-up, unmeasured, with recording on (so the recorder's path is compiled too), then off.
    checkInterrupted(options);
    await emulator.record(true);
    last = await runWorkload(workload, url, firstCount(workload) * 4, 1);
    last = await runWorkload(workload, url, nextCount(workload, last, durationS / 2), durationS / 2);
    await emulator.record(false);
    last = await runWorkload(workload, url, nextCount(workload, last, durationS / 2), durationS / 2);
  }
  const measure = async (on: boolean): Promise<RecordAbRun> => {
    checkInterrupted(options);
    await emulator.record(on);
    const before = await emulator.stats();
    const run = await runWorkload(workload, url, nextCount(workload, last, durationS), durationS);
    const after = await emulator.stats();
    last = run;
    const { layersUsPerIo: _layers, processorsUsPerIo: _processors, ...side } = boardRun(run, before, after);
    return { ...side, mainUsPerIo: (after.schedRunNs - before.schedRunNs) / 1000 / run.ios, recordedBytesPerIo: (after.recordedBytes - before.recordedBytes) / run.ios,
      recordWaitMsPerS: (after.recordWaitMs - before.recordWaitMs) / run.seconds };
  };
  const pairs: RecordAbPair[] = [];
  for (let index = 0; index < options.pairs; index += 1) {
    const onFirst = index % 2 === 1;
    const first = await measure(onFirst);
    const second = await measure(!onFirst);
    const off = onFirst ? second : first;
    const on = onFirst ? first : second;
    const pair: RecordAbPair = { off, on, onFirst, cpuRatio: on.cpuUsPerIo / off.cpuUsPerIo, loadAverage: loadAverage() };
    pairs.push(pair);
    progress(`${options.disks} ${workload.name} pair ${index + 1}/${options.pairs} (${onFirst ? "on, off" : "off, on"}): emu CPU ${off.cpuUsPerIo.toFixed(1)} -> ${on.cpuUsPerIo.toFixed(1)} µs/IO recording (${((pair.cpuRatio - 1) * 100).toFixed(1)}%), main thread ${off.mainUsPerIo.toFixed(1)} -> ${on.mainUsPerIo.toFixed(1)}, waits for the writer ${on.recordWaitMsPerS.toFixed(1)} ms/s, ${off.iops.toFixed(0)} / ${on.iops.toFixed(0)} IOPS, load ${pair.loadAverage.join(" ")}`);
  }
  await emulator.record(false);
  return {
    ...workload,
    pairs,
    offCpuUsPerIo: spread(pairs.map((p) => p.off.cpuUsPerIo)),
    onCpuUsPerIo: spread(pairs.map((p) => p.on.cpuUsPerIo)),
    offMainUsPerIo: median(pairs.map((p) => p.off.mainUsPerIo)),
    onMainUsPerIo: median(pairs.map((p) => p.on.mainUsPerIo)),
    onRecordedBytesPerIo: median(pairs.map((p) => p.on.recordedBytesPerIo)),
    cpuRatio: spread(pairs.map((p) => p.cpuRatio)),
    offIops: median(pairs.map((p) => p.off.iops)),
    onIops: median(pairs.map((p) => p.on.iops)),
    loadAverage: { start: loadStart, end: loadAverage() },
  };
}

/** The table `wasm-iop bench --record-ab` prints. */
export function formatRecordAb(result: RecordAbResult): string {
  const o = result.options;
  const m = result.machine;
  const f = (value: number, digits = 0) => value.toFixed(digits);
  const lines = [
    `wasm-iop bench --record-ab, ${result.startedAt}: board ${o.board} LUN ${o.lun}, ${o.disks} disks, recording off and on in ${o.pairs} alternating pairs of ${o.durationS} s runs${o.quick ? " (quick)" : ""}`,
    `machine: ${m.cpuCount} x ${m.cpu}, Linux ${m.kernel}, Node ${m.node}, load average ${m.loadAverageAtStart.join(" ")} at the start, ${m.loadAverageAtEnd.join(" ")} at the end`,
    "",
  ];
  const header = ["workload", "emu CPU µs/IO off (min-max)", "on (min-max)", "on/off median of pairs (min-max)", "main thread µs/IO off", "on", "recorded B/IO", "IOPS off", "on", "load (1 min) start-end"];
  const rows = result.workloads.map((w) => [
    w.name,
    `${f(w.offCpuUsPerIo.median, 1)} (${f(w.offCpuUsPerIo.min, 1)}-${f(w.offCpuUsPerIo.max, 1)})`,
    `${f(w.onCpuUsPerIo.median, 1)} (${f(w.onCpuUsPerIo.min, 1)}-${f(w.onCpuUsPerIo.max, 1)})`,
    `${f(w.cpuRatio.median, 3)} (${f(w.cpuRatio.min, 3)}-${f(w.cpuRatio.max, 3)})`,
    f(w.offMainUsPerIo, 1), f(w.onMainUsPerIo, 1), f(w.onRecordedBytesPerIo),
    f(w.offIops), f(w.onIops), `${w.loadAverage.start[0]}-${w.loadAverage.end[0]}`,
  ]);
  const widths = header.map((_, c) => Math.max(...[header, ...rows].map((r) => r[c]!.length)));
  for (const row of [header, ...rows]) lines.push(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
  lines.push("");
  lines.push("targets (median of the pairs' ratios):");
  for (const t of result.targets) lines.push(`  ${t.met ? "met    " : "not met"}  ${t.what}: ${f(t.value, 3)} (goal ${t.goal})`);
  return lines.join("\n");
}
