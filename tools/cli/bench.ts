// wasm-iop bench: the board against Debian's tgt, same initiators, alternating pairs; see tools/bench/bench.ts.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type BenchOptions, type DiskConfig, formatTable, runBench } from "../bench/bench.ts";
import { NBD_WORKLOADS, REQUIRED_TOOLS, VOLUME_WORKLOADS, WORKLOADS } from "../bench/clients.ts";
import { formatRecordAb, type RecordAbOptions, runRecordAb } from "../bench/record_ab.ts";
import { formatVolumesTable, runVolumesBench, VOLUMES_BOARD_PATH, type VolumesOptions } from "../bench/volumes.ts";
import { type Command, UsageError } from "./command.ts";

const DEFAULT_OUT = "var/bench/latest.json";

const help = `usage: wasm-iop bench [options]

Measures the board against Debian's tgt on this machine. The default board (boards/iop-dev.json) is served by the
emulator in a child process on a free loopback port, once with its disks in files and once in memory; tgtd runs in
the foreground on another free loopback port, with its own management port, over a sparse file the size of the
board's disk. Both are driven by the same clients, one run at a time, alternating board, tgt, board, tgt, ... so the
drift of a busy machine falls on both alike:

  4k-read-qd1, 4k-write-qd1     qemu-img bench, 4 KiB requests, 1 in flight        (latency)
  4k-read-qd32, 4k-write-qd32   qemu-img bench, 4 KiB requests, 32 in flight       (IOPS)
  1m-read-qd8, 1m-write-qd8     qemu-img bench, 1 MiB sequential requests, 8 in flight (MiB/s)
  perf-4k-read-qd32             iscsi-perf, 4 KiB sequential reads, 32 in flight

qemu-img bench goes through QEMU's iscsi:// driver; its requests are sequential, stepping by their size and
wrapping at the end of the disk. Each side's first run of a workload is a warm-up that also sizes the measured
runs (a request count that lasts about --duration on that side). Every measured pair gives a ratio board/tgt.

The table shows, per workload: each side's median IOPS, MiB/s and mean latency (Little's law: depth / IOPS); the
median ratio of the pairs and its spread (min-max); the latency ratio; the emulator process's CPU time per I/O
(user + system, every thread); the WebAssembly time per I/O ("wasm µs/IO": host time inside the firmware's irq()
and run() calls less their bus accesses) and the time in those bus accesses ("bus µs/IO": the import calls and the
device work a register access sets off, such as a virtio doorbell running the request); the firmware's turns (interrupts delivered, then one run() call) and
bus accesses per I/O, every processor together; and tgtd's CPU time per I/O. A second table splits the board's CPU
per I/O by layer: NIC model, firmware, messaging unit, disk controller model, disk I/O, other devices, the rest of
the main thread (sockets, the pacer, GC) and the other threads; the split, like wasm and bus µs/IO, comes from one
more board run after the pairs with the layer meter on (it reads a clock at every layer switch, which the measured
pairs are spared). Then the emulator's RSS over the run and the performance targets of the project, met or not.
Absolute figures depend on the machine and its load; the ratios and the CPU per I/O are what to compare.

options:
  --duration S      seconds per measured run (default 5; iscsi-perf rounds to whole seconds)
  --pairs N         alternating pairs per workload (default 5)
  --quick           smoke run of about 20 s: 1 pair, no warm-up, short runs; figures are rough
  --lun N           the board's LUN to drive (default 1: a storage processor's disk, the whole path through the
                    bridge; 0 is the host processor's own disk)
  --board FILE      the board file to serve (default boards/iop-dev.json; with --volumes ${VOLUMES_BOARD_PATH})
  --disks WHICH     file, memory or both (default both)
  --only NAMES      run only these workloads, comma-separated (default: all; the targets need all)
  --soak S          after the first configuration's pairs, S seconds of mixed I/O on that board alone, its RSS
                    sampled after every run (the RSS target is measured with --soak 300; default 0: none)
  --record          the emulator records each session as run --record does (docs/replay.md), into its data
                    directory: compare emu CPU µs/IO with a run without it for what recording costs
  --record-ab       what recording costs, measured on one board: the emulator records, and the recorder is switched
                    off and on between runs in alternating pairs (off, on; on, off; ...); the table gives emu CPU
                    µs/IO each way and the median of the pairs' ratios (the goal: at most 1.10). No tgt. --disks file
                    or memory (default memory); --pairs (default 5), --duration, --only, --lun, --board, --out as above
  --profile FILE    write a V8 CPU profile (.cpuprofile) of the emulator during the first configuration's pairs
                    and print its top self-time functions; docs/performance.md explains how to read it
  --out FILE        where the JSON result goes (default ${DEFAULT_OUT})
  --json            print the result object on stdout instead of the table
  --nbd             the board's NBD export of the LUN's volume against Debian's nbdkit (file plugin) on a file of
                    its size, over nbd:// (qemu-img bench): 4k-read-qd32, 4k-write-qd32 and 1m-read-qd8 (docs/nbd.md)
  -h, --help        this help

--volumes: the board's volumes against its first LUN instead of against tgt. Two emulators serve --board (default
${VOLUMES_BOARD_PATH}: LUN 0 a disk, LUN 1 a RAID-0 and LUN 2 a RAID-5 over both storage processors, every disk
alike), one as the file says and one with its XOR engine left out (the firmware then XORs parity in a loop). Each
round runs a workload on every LUN of both, one at a time, the order reversed every other round; the table gives
each LUN's medians, its ratio to LUN 0 on the same board and, with the engine, to the same LUN without it (medians
of the rounds' ratios, min-max), and the emulator's CPU, WebAssembly and bus time per I/O. Then every LUN of both
boards is written with a random image and compared back (qemu-img compare). No tgt.

  4k-scatter-read-qd32, 4k-scatter-write-qd32   4 KiB requests 1 021 x 4 KiB apart (qemu-img bench -S), 32 in flight
  1m-read-qd8, 1m-write-qd8                     1 MiB sequential requests, 8 in flight

  --luns LIST       the LUNs to drive, comma-separated, the first the baseline (default: every LUN of the first target)
  --xor WHICH       with, without or both (default): the boards served, with the XOR engine or without it
  --rounds N        rounds (default 5; --quick 1)
  --disks WHICH     file or memory (default memory); --duration (default 3), --only and --out as above

Needs qemu-img only. Exit status 1 also when a LUN did not read back what was written.

Needs qemu-img (Debian: qemu-utils, qemu-block-extra), iscsi-perf (libiscsi-bin) and tgtd/tgtadm (tgt), and root
for tgtd. Progress lines go to stderr. Exit status: 0 when the bench ran (whether or not the targets were met),
1 when it could not (a tool missing, a target that failed to start), 2 for a usage error, 130 when SIGINT or
SIGTERM stopped it (after the run in progress; tgtd and the emulator are shut down cleanly either way).`;

function positive(name: string, text: string | undefined, fallback: number, integer: boolean): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(value > 0) || (integer && !Number.isInteger(value))) throw new UsageError(`--${name}: expected a ${integer ? "whole " : ""}number > 0, got "${text}"`);
  return value;
}

export const benchCommand: Command = {
  name: "bench",
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        duration: { type: "string" },
        pairs: { type: "string" },
        quick: { type: "boolean", default: false },
        lun: { type: "string" },
        disks: { type: "string" },
        only: { type: "string" },
        soak: { type: "string" },
        profile: { type: "string" },
        record: { type: "boolean", default: false },
        "record-ab": { type: "boolean", default: false },
        out: { type: "string" },
        json: { type: "boolean", default: false },
        board: { type: "string" },
        volumes: { type: "boolean", default: false },
        nbd: { type: "boolean", default: false },
        luns: { type: "string" },
        xor: { type: "string" },
        rounds: { type: "string" },
      },
      strict: true,
    });
    const quick = values.quick;
    if (values.volumes) return runVolumes(values, quick);
    if (values["record-ab"]) return runRecordAbCommand(values, quick);
    for (const only of ["luns", "xor", "rounds"] as const) if (values[only] !== undefined) throw new UsageError(`--${only}: only with --volumes`);
    const lun = values.lun === undefined ? 1 : Number(values.lun);
    if (!(Number.isInteger(lun) && lun >= 0)) throw new UsageError(`--lun: expected an integer >= 0, got "${values.lun}"`);
    const disksText = values.disks ?? "both";
    const configs: DiskConfig[] | undefined = { file: ["file"], memory: ["memory"], both: ["file", "memory"] }[disksText] as DiskConfig[] | undefined;
    if (configs === undefined) throw new UsageError(`--disks: expected file, memory or both, got "${disksText}"`);
    const offered = values.nbd ? NBD_WORKLOADS : WORKLOADS;
    const names = values.only?.split(",") ?? offered.map((w) => w.name);
    const unknown = names.filter((name) => !offered.some((w) => w.name === name));
    if (unknown.length > 0) throw new UsageError(`--only: no workload ${unknown.join(", ")}; the workloads are ${offered.map((w) => w.name).join(", ")}`);
    const soakS = values.soak === undefined ? 0 : positive("soak", values.soak, 0, false);
    const required = values.nbd ? [REQUIRED_TOOLS[0]!, { tool: "nbdkit", probe: ["--version"], pkg: "nbdkit" }] : REQUIRED_TOOLS;
    const missing = required.filter((t) => spawnSync(t.tool, t.probe, { stdio: "ignore" }).error !== undefined);
    if (missing.length > 0) {
      process.stderr.write(`wasm-iop bench: ${missing.map((t) => `${t.tool} (Debian: ${t.pkg})`).join(", ")} not installed\n`);
      return 1;
    }
    const options: BenchOptions = {
      durationS: positive("duration", values.duration, quick ? 0.25 : 5, false),
      pairs: positive("pairs", values.pairs, quick ? 1 : 5, true),
      lun,
      ...(values.board !== undefined ? { boardPath: resolve(values.board) } : {}),
      quick,
      soakS,
      profilePath: values.profile === undefined ? undefined : resolve(values.profile),
      configs,
      workloads: offered.filter((w) => names.includes(w.name)),
      protocol: values.nbd ? "nbd" : "iscsi",
      progress: (line) => process.stderr.write(`[bench] ${line}\n`),
      record: values.record,
    };
    const result = await runReported(options, runBench, values.out, values.json, formatTable);
    return typeof result === "number" ? result : 0;
  },
};

async function runRecordAbCommand(values: { duration?: string; pairs?: string; lun?: string; disks?: string; only?: string; board?: string; out?: string; json: boolean;
  soak?: string; profile?: string; record: boolean; nbd: boolean }, quick: boolean): Promise<number> {
  for (const other of ["soak", "profile"] as const) if (values[other] !== undefined) throw new UsageError(`--${other}: not with --record-ab`);
  if (values.record || values.nbd) throw new UsageError("--record-ab: not with --record or --nbd");
  const lun = values.lun === undefined ? 1 : Number(values.lun);
  if (!(Number.isInteger(lun) && lun >= 0)) throw new UsageError(`--lun: expected an integer >= 0, got "${values.lun}"`);
  const disks = values.disks ?? "memory";
  if (disks !== "file" && disks !== "memory") throw new UsageError(`--disks: with --record-ab, expected file or memory, got "${disks}"`);
  const names = values.only?.split(",") ?? WORKLOADS.filter((w) => w.tool === "qemu-img").map((w) => w.name);
  const unknown = names.filter((name) => !WORKLOADS.some((w) => w.name === name));
  if (unknown.length > 0) throw new UsageError(`--only: no workload ${unknown.join(", ")}; the workloads are ${WORKLOADS.map((w) => w.name).join(", ")}`);
  const missing = REQUIRED_TOOLS.filter((t) => names.some((n) => WORKLOADS.find((w) => w.name === n)!.tool === t.tool) && spawnSync(t.tool, t.probe, { stdio: "ignore" }).error !== undefined);
  if (missing.length > 0) {
    process.stderr.write(`wasm-iop bench: ${missing.map((t) => `${t.tool} (Debian: ${t.pkg})`).join(", ")} not installed\n`);
    return 1;
  }
  const options: RecordAbOptions = {
    durationS: positive("duration", values.duration, quick ? 0.25 : 3, false),
    pairs: positive("pairs", values.pairs, quick ? 1 : 5, true),
    lun,
    ...(values.board !== undefined ? { boardPath: resolve(values.board) } : {}),
    quick,
    disks,
    workloads: WORKLOADS.filter((w) => names.includes(w.name)),
    progress: (line) => process.stderr.write(`[bench] ${line}\n`),
  };
  const result = await runReported(options, runRecordAb, values.out, values.json, formatRecordAb);
  return typeof result === "number" ? result : 0;
}

interface VolumesValues {
  duration?: string;
  rounds?: string;
  pairs?: string;
  lun?: string;
  luns?: string;
  xor?: string;
  disks?: string;
  only?: string;
  soak?: string;
  profile?: string;
  board?: string;
  out?: string;
  json: boolean;
}

async function runVolumes(values: VolumesValues, quick: boolean): Promise<number> {
  for (const other of ["pairs", "lun", "soak", "profile"] as const) if (values[other] !== undefined) throw new UsageError(`--${other}: not with --volumes`);
  const luns = values.luns?.split(",").map((text) => {
    const lun = Number(text);
    if (!(Number.isInteger(lun) && lun >= 0)) throw new UsageError(`--luns: expected integers >= 0, got "${values.luns}"`);
    return lun;
  });
  const engines = { with: [true], without: [false], both: [true, false] }[values.xor ?? "both"];
  if (engines === undefined) throw new UsageError(`--xor: expected with, without or both, got "${values.xor}"`);
  const disks = values.disks ?? "memory";
  if (disks !== "file" && disks !== "memory") throw new UsageError(`--disks: with --volumes, expected file or memory, got "${disks}"`);
  const known = [...VOLUME_WORKLOADS, ...WORKLOADS.filter((w) => w.tool === "qemu-img" && !VOLUME_WORKLOADS.some((v) => v.name === w.name))];
  const names = values.only?.split(",") ?? VOLUME_WORKLOADS.map((w) => w.name);
  const unknown = names.filter((name) => !known.some((w) => w.name === name));
  if (unknown.length > 0) throw new UsageError(`--only: no workload ${unknown.join(", ")}; with --volumes the workloads are ${known.map((w) => w.name).join(", ")}`);
  const missing = REQUIRED_TOOLS.filter((t) => t.tool === "qemu-img" && spawnSync(t.tool, t.probe, { stdio: "ignore" }).error !== undefined);
  if (missing.length > 0) {
    process.stderr.write(`wasm-iop bench: ${missing.map((t) => `${t.tool} (Debian: ${t.pkg})`).join(", ")} not installed\n`);
    return 1;
  }
  const options: VolumesOptions = {
    boardPath: resolve(values.board ?? VOLUMES_BOARD_PATH),
    luns,
    engines,
    disks,
    durationS: positive("duration", values.duration, quick ? 0.25 : 3, false),
    rounds: positive("rounds", values.rounds, quick ? 1 : 5, true),
    quick,
    workloads: known.filter((w) => names.includes(w.name)),
    progress: (line) => process.stderr.write(`[bench] ${line}\n`),
  };
  const result = await runReported(options, runVolumesBench, values.out, values.json, formatVolumesTable);
  if (typeof result === "number") return result;
  return result.verify.every((v) => v.identical) ? 0 : 1;
}

/**
 * Runs a bench with `options`: a signal stops it between two client runs (tgtd and the emulators are then shut down
 * cleanly); the result is written to `out` (default DEFAULT_OUT) and printed as JSON or by `format`. The result, or
 * the exit status when it failed (130 after a signal, 1 otherwise).
 */
async function runReported<O extends { interrupted?: () => boolean }, R>(options: O, run: (options: O) => Promise<R>,
  out: string | undefined, json: boolean, format: (result: R) => string): Promise<R | number> {
  let signalled: string | undefined;
  const onSignal = (signal: string) => {
    if (signalled === undefined) process.stderr.write(`[bench] ${signal}: stopping after the current run\n`);
    signalled ??= signal;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  options.interrupted = () => signalled !== undefined;
  let result: R;
  try {
    result = await run(options);
  } catch (error) {
    process.stderr.write(`wasm-iop bench: ${(error as Error).message}\n`);
    return signalled !== undefined ? 130 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  const path = resolve(out ?? DEFAULT_OUT);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(result, null, 2) + "\n");
  process.stderr.write(`[bench] result written to ${path}\n`);
  process.stdout.write((json ? JSON.stringify(result, null, 2) : format(result)) + "\n");
  return result;
}
