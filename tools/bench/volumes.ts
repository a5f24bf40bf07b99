// `wasm-iop bench --volumes`: the board's volumes against its single disk, with and without the XOR engine. One
// board file (boards/bench-volumes.json: a disk LUN, a RAID-0 and a RAID-5 over both storage processors, every disk
// alike) is served by two emulator processes, one as the file says and one with its XOR engine left out, so parity
// is XORed by the firmware loop. Every round runs each workload on every (LUN, engine) configuration, one run at a
// time, in an order reversed from one round to the next, so the drift of a busy machine falls on all alike; each
// round gives each configuration's ratio against the disk LUN of the same board, and RAID's with/without the engine.
// After the rounds, every LUN of both boards is written with a random image and compared (qemu-img): wrong data is
// a finding, reported, never smoothed over. Speed is never asserted in tests (DESIGN-NOTES §10).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadBoardFile, targetLuns } from "../../host/board/load.ts";
import { volumeCapacityBytes } from "../../host/board/volume_geometry.ts";
import { buildFirmware } from "../build/firmware.ts";
import { boardRun, BenchInterrupted, type BenchResult, type DiskConfig, firstCount, loadAverage, machineInfo, median, nextCount,
  type SideRun, type Spread, spread } from "./bench.ts";
import { type RunFigures, runWorkload, type Workload } from "./clients.ts";
import { Emulator } from "./emulator.ts";

const run = promisify(execFile);

export const VOLUMES_BOARD_PATH = "boards/bench-volumes.json";

export interface VolumesOptions {
  boardPath: string;
  luns: readonly number[] | undefined; // the first target's LUNs to drive (undefined: all); the first is the baseline
  engines: readonly boolean[]; // true: the board as its file says (XOR engine on the bus); false: without it
  disks: DiskConfig;
  durationS: number; // length of each measured run
  rounds: number;
  quick: boolean; // no warm-up
  workloads: readonly Workload[];
  progress: (line: string) => void;
  interrupted?: () => boolean;
}

/** One measured run of one workload on one configuration, with what the emulator serving it spent. */
export type VolumeRun = Required<SideRun>;

export interface VolumeRow {
  workload: string;
  lun: number;
  volume: string; // the volume's name in the board file
  type: string; // disk, raid0, raid1, raid5, thin
  xorEngine: boolean;
  runs: VolumeRun[]; // one per round
  median: Omit<VolumeRun, "ios" | "seconds" | "layersUsPerIo" | "processorsUsPerIo">;
  vsBaseline: Spread; // IOPS / the baseline LUN's IOPS on the same board, in the same round
  vsWithoutEngine?: Spread; // with the engine: IOPS / the same LUN's IOPS without it, in the same round
}

export interface VerifyResult {
  lun: number;
  xorEngine: boolean;
  bytes: number;
  identical: boolean;
  detail: string; // qemu-img compare's words
}

export interface VolumesResult {
  format: "wasm-iop-bench-volumes/1";
  startedAt: string;
  seconds: number;
  machine: BenchResult["machine"];
  options: { board: string; boardPath: string; disks: DiskConfig; durationS: number; rounds: number; quick: boolean; luns: number[] };
  rows: VolumeRow[];
  verify: VerifyResult[];
  panics: number;
}

interface Config {
  lun: number;
  xorEngine: boolean;
  emulator: Emulator;
  url: string;
}

function checkInterrupted(options: VolumesOptions): void {
  if (options.interrupted?.() === true) throw new BenchInterrupted("interrupted: stopped between runs, the emulators shut down");
}

export async function runVolumesBench(options: VolumesOptions): Promise<VolumesResult> {
  const started = Date.now();
  const loadAverageAtStart = loadAverage();
  const spec = loadBoardFile(options.boardPath);
  const lunSpecs = targetLuns(spec, spec.targets[0]!);
  const luns = [...(options.luns ?? lunSpecs.map((_, index) => index))];
  for (const lun of luns) if (lun >= lunSpecs.length) throw new Error(`${options.boardPath}: no LUN ${lun} (its first target has ${lunSpecs.length})`);
  const volumeOf = (lun: number) => spec.volumes[lunSpecs[lun]!.volume]!;
  await buildFirmware(["release"]);
  const dir = mkdtempSync(join(tmpdir(), "wasm-iop-bench-volumes-"));
  const emulators = new Map<boolean, Emulator>();
  const rows: VolumeRow[] = [];
  const verify: VerifyResult[] = [];
  let panics = 0;
  try {
    for (const xorEngine of options.engines) {
      const name = xorEngine ? "with" : "without";
      options.progress(`board: starting ${spec.name} ${name} the XOR engine, ${options.disks} disks`);
      const emulator = await Emulator.start({ boardPath: options.boardPath, withoutXorEngine: !xorEngine, memoryDisks: options.disks === "memory",
        dataDir: join(dir, `board-${name}-xor`), log: (line) => options.progress(`emulator ${name} xor: ${line}`) });
      emulators.set(xorEngine, emulator);
    }
    // Adjacent configurations differ in one thing (the engine, then the LUN), and the order reverses every round.
    const configs: Config[] = luns.flatMap((lun) => options.engines.map((xorEngine) => {
      const emulator = emulators.get(xorEngine)!;
      return { lun, xorEngine, emulator, url: emulator.urls[lun]! };
    }));
    for (const workload of options.workloads) {
      const runs = await benchWorkload(workload, configs, options);
      rows.push(...workloadRows(workload, configs, runs, luns[0]!, (lun) => volumeOf(lun)));
    }
    for (const config of configs) {
      checkInterrupted(options);
      const bytes = volumeCapacityBytes(volumeOf(config.lun), spec.disks, spec.volumes);
      verify.push(await verifyLun(config, bytes, dir, options));
    }
  } finally {
    for (const emulator of emulators.values()) {
      const last = await emulator.stats().catch(() => undefined);
      await emulator.stop();
      panics += last?.panics ?? 0;
    }
    rmSync(dir, { recursive: true, force: true });
    if (panics > 0) options.progress(`board: ${panics} processor panics during the run (see the emulator lines above)`);
  }
  return {
    format: "wasm-iop-bench-volumes/1",
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine: machineInfo(loadAverageAtStart),
    options: { board: spec.name, boardPath: options.boardPath, disks: options.disks, durationS: options.durationS, rounds: options.rounds, quick: options.quick, luns },
    rows,
    verify,
    panics,
  };
}

// Every configuration's runs of one workload: runs[round][config index].
async function benchWorkload(workload: Workload, configs: readonly Config[], options: VolumesOptions): Promise<VolumeRun[][]> {
  const last = new Map<Config, RunFigures>();
  if (!options.quick) {
    // Warm-up, unmeasured: a probe for each configuration's rate, then half a run, so V8 has compiled this workload's
    // path in both emulators and the measured runs can be sized.
    for (const config of configs) {
      checkInterrupted(options);
      const probe = await runWorkload(workload, config.url, firstCount(workload), 1);
      last.set(config, await runWorkload(workload, config.url, nextCount(workload, probe, options.durationS / 2), options.durationS / 2));
    }
  }
  const rounds: VolumeRun[][] = [];
  for (let round = 0; round < options.rounds; round += 1) {
    const order = round % 2 === 0 ? [...configs] : [...configs].reverse();
    const results = new Map<Config, VolumeRun>();
    for (const config of order) {
      checkInterrupted(options);
      const before = await config.emulator.stats();
      const figures = await runWorkload(workload, config.url, nextCount(workload, last.get(config), options.durationS), options.durationS);
      const after = await config.emulator.stats();
      last.set(config, figures);
      const measured = boardRun(figures, before, after);
      results.set(config, measured);
      options.progress(`${workload.name} round ${round + 1}/${options.rounds} LUN ${config.lun} ${config.xorEngine ? "with" : "without"} xor: ` +
        `${measured.iops.toFixed(0)} IOPS ${measured.mibPerS.toFixed(1)} MiB/s, ${measured.cpuUsPerIo.toFixed(1)} µs CPU/IO`);
    }
    rounds.push(configs.map((config) => results.get(config)!));
  }
  return rounds;
}

function workloadRows(workload: Workload, configs: readonly Config[], rounds: VolumeRun[][], baselineLun: number,
  volumeOf: (lun: number) => { name: string; type: string }): VolumeRow[] {
  return configs.map((config, index) => {
    const runs = rounds.map((round) => round[index]!);
    const baseline = configs.findIndex((c) => c.lun === baselineLun && c.xorEngine === config.xorEngine);
    const without = configs.findIndex((c) => c.lun === config.lun && !c.xorEngine);
    const pick = (key: Exclude<keyof VolumeRun, "layersUsPerIo" | "processorsUsPerIo">) => median(runs.map((r) => r[key]));
    const volume = volumeOf(config.lun);
    return {
      workload: workload.name,
      lun: config.lun,
      volume: volume.name,
      type: volume.type,
      xorEngine: config.xorEngine,
      runs,
      median: { iops: pick("iops"), mibPerS: pick("mibPerS"), latencyUs: pick("latencyUs"), cpuUsPerIo: pick("cpuUsPerIo"),
        firmwareUsPerIo: pick("firmwareUsPerIo"), busUsPerIo: pick("busUsPerIo"), turnsPerIo: pick("turnsPerIo"), busAccessesPerIo: pick("busAccessesPerIo") },
      vsBaseline: spread(rounds.map((round) => round[index]!.iops / round[baseline]!.iops)),
      ...(config.xorEngine && without >= 0 ? { vsWithoutEngine: spread(rounds.map((round) => round[index]!.iops / round[without]!.iops)) } : {}),
    };
  });
}

// A random image the size of the LUN, written through iSCSI and compared back: every byte must come back.
async function verifyLun(config: Config, bytes: number, dir: string, options: VolumesOptions): Promise<VerifyResult> {
  const image = join(dir, `verify-${bytes}.img`);
  writeFileSync(image, randomBytes(bytes));
  const name = `LUN ${config.lun} ${config.xorEngine ? "with" : "without"} xor`;
  options.progress(`verify: ${name}: writing ${bytes} random bytes and comparing them back`);
  await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", "-t", "none", image, config.url], { timeout: 600_000 });
  const compared = await run("qemu-img", ["compare", "-f", "raw", "-F", "raw", image, config.url], { timeout: 600_000 })
    .then(({ stdout }) => ({ identical: true, detail: stdout.trim() }))
    .catch((error: { code?: number; stdout?: string; stderr?: string; message: string }) =>
      ({ identical: false, detail: `${error.stdout ?? ""}${error.stderr ?? ""}`.trim() || error.message }));
  rmSync(image, { force: true });
  options.progress(`verify: ${name}: ${compared.identical ? "identical" : `DIFFERS: ${compared.detail}`}`);
  return { lun: config.lun, xorEngine: config.xorEngine, bytes, ...compared };
}

/** The result as `wasm-iop bench --volumes` prints it. */
export function formatVolumesTable(result: VolumesResult): string {
  const m = result.machine;
  const o = result.options;
  const f = (value: number, digits = 0) => value.toFixed(digits);
  const lines = [
    `wasm-iop bench --volumes, ${result.startedAt}: board ${o.board} (${o.boardPath}), ${o.disks} disks, ${o.rounds} rounds of ${o.durationS} s runs${o.quick ? " (quick)" : ""}`,
    `machine: ${m.cpuCount} x ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, load average ${m.loadAverageAtStart.join(" ")} at the start, ${m.loadAverageAtEnd.join(" ")} at the end`,
    `ratios: medians (min-max) of per-round ratios; "vs LUN ${o.luns[0]}" on the same board, "engine" with / without the XOR engine`,
    "",
  ];
  const header = ["workload", "LUN", "volume", "xor", "IOPS", "MiB/s", "lat µs", `vs LUN ${o.luns[0]} (min-max)`, "engine (min-max)",
    "emu CPU µs/IO", "wasm µs/IO", "bus µs/IO", "turns/IO", "bus ops/IO"];
  const range = (s: Spread | undefined) => (s === undefined ? "" : `${f(s.median, 2)} (${f(s.min, 2)}-${f(s.max, 2)})`);
  const rows = result.rows.map((r) => [
    r.workload, String(r.lun), `${r.volume} (${r.type})`, r.xorEngine ? "engine" : "loop", f(r.median.iops), f(r.median.mibPerS, 1), f(r.median.latencyUs),
    range(r.vsBaseline), range(r.vsWithoutEngine), f(r.median.cpuUsPerIo, 1), f(r.median.firmwareUsPerIo, 1), f(r.median.busUsPerIo, 1),
    f(r.median.turnsPerIo, 1), f(r.median.busAccessesPerIo, 0),
  ]);
  const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) lines.push(row.map((cell, column) => (column <= 3 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ").trimEnd());
  lines.push("");
  for (const v of result.verify) {
    lines.push(`verify LUN ${v.lun} ${v.xorEngine ? "with" : "without"} the engine: ${v.bytes} random bytes written and read back: ${v.identical ? "identical" : `DIFFER (${v.detail})`}`);
  }
  lines.push(`processor panics: ${result.panics}`);
  return lines.join("\n");
}
