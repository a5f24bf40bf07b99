// wasm-iop simulate: seeded whole-board runs with a random iSCSI workload and injected faults (tools/simulate/).
import { fork, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadClusterFile } from "../../host/cluster/cluster_file.ts";
import { Trace } from "../../host/sim/trace.ts";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { buildFirmware, FIRMWARE_PATH, packageVersion, ROOT } from "../build/firmware.ts";
import { PcapWriter } from "../replay/pcap.ts";
import { Recorder } from "../replay/recorder.ts";
import { SIM_BOARD_KINDS, type SimBoardKind } from "../simulate/boards.ts";
import { FAULT_HELP, FAULT_KINDS, type FaultKind, parseFaults } from "../simulate/faults.ts";
import { passed, simulate, simulateInterruptible, stalledResult, type SimulationResult } from "../simulate/simulation.ts";

const SEED_TIMEOUT_S_DEFAULT = 1800; // wall time for one seed in a worker: 10 000 ops take 5-60 s on a loaded 2-core VM
import { type Command, UsageError } from "./command.ts";

const help = `usage: wasm-iop simulate [options]

Runs a simulation board on its virtual clock, with no sockets: 2 initiators with 2 sessions each log in over
the loopback network and send random READ(10) and WRITE(10) of 1 to 256 blocks (a quarter with FUA) and
SYNCHRONIZE CACHE(10) to every LUN, up to 4 commands in flight per session, while faults are injected (about one
per 50 commands). Every completed read is checked against a shadow model of what each block may hold; after the
last command and a quiet period every block a write touched is checked: on the disk images for disk LUNs, and
for volumes read back over iSCSI once every RAID volume is optimal again. The same seed gives the same run and
the same trace. Details: docs/simulation.md.

boards (--board):
  disks          a host processor with the NIC and a disk, two storage processors with a disk each; LUNs 0-2
  volumes        the same three disk LUNs, plus LUN 3 a RAID-5 (3 members: sp1, sp2 and the host, 6 MiB,
                 a hot spare) and LUN 4 a thin volume (8 MiB) on a second RAID-5 whose pool holds 32 of its 128
                 chunks: the workload fills it, and writes that need a chunk then fail with 27h/07h
  replica        the same three disk LUNs, plus LUN 3 a replica (3 MiB; copy 0 on sp1's virtio-scsi disk, copy 1
                 on sp2's NVMe disk): the member fault fails a copy and restores it (or a blank disk, or both copies
                 out, the stale one back first)

  --cluster FILE every board of a cluster file (clusters/*.json) in one run on one clock and fabric, each disk in
                 memory: one initiator per board with a session on it and one on the next, the LUNs of the first
                 target (a partitioned volume's pages on their owners; hot blocks straddle its first page end);
                 every read checked against one shadow, after the run each block on its owner's disk. Adds the
                 fabric and board faults (link-drop, link-dup, link-down, partition, board-off). Not with --board,
                 --nbd, --record or --pcap
  --rdma         with --cluster: cluster ports without a window (revision 2): a remote request's data moves by
                 RDMA through the serving board's bounce buffers, as between processes over TCP

options:
  --seed S       the first seed (default 1)
  --seeds K      run K seeds: S, S+1, ... S+K-1 (default 1); progress goes to stderr, one line per seed
  --ops N        commands per seed (default 10000)
  --board B      disks (default), volumes or replica
  --nbd N        N NBD sessions beside the iSCSI ones (default 0): each opens one NBD connection per LUN's export
                 on the board's NBD portal and sends the same workload (READ, WRITE with FUA, FLUSH for SYNCHRONIZE
                 CACHE), checked against the same shadow model (docs/nbd.md)
  --faults LIST  all (default), none, or a comma-separated list of:
${FAULT_KINDS.map((k) => `                   ${k.padEnd(10)} ${FAULT_HELP[k]}`).join("\n")}
  --jobs J       run seeds in J worker processes (default 1)
  --seed-timeout S
                 with --jobs: a worker with no result after S s of wall time is killed and its seed counted as a
                 hang (default 1800). Every run also stops itself, as a hang, once the board has run far more
                 events than its commands need (board time crawling: a livelock)
  --json         print a summary object on stdout: seeds, ops, faultsInjected, lostWrites, wrongReads, hangs,
                 traceHash and the other counters (with --seeds, totals and one result per seed); after a
                 signal also stoppedBy (SIGINT or SIGTERM) and seedsAsked
  --trace FILE   write the bus trace of the run as JSON lines (one seed only); the simulator's own events
                 (faults, resets, lost connections, failures) are in it with src "sim"; replayable under wasmtime
                 with \`wasm-iop trace replay FILE\` (docs/trace-format.md)
  --verbose      print the board's console, with board time (one seed only)
  --record FILE  record the run for \`wasm-iop replay\` (one seed only): what the simulated initiators sent, the
                 faults injected and the simulator's trace lines, where each entered the board (docs/replay.md)
  --pcap FILE    write the NIC's traffic as a pcap file (one seed only; synthesized TCP/IP, board-time stamps)
  -h, --help     this help

A failing seed prints its failures and the command that replays it with the trace. SIGINT or SIGTERM stops the
run at once: no seed is started after it, the seeds in progress are dropped (their workers are stopped), and the
summary covers the seeds done (a second signal ends the process without one). Exit status: 0 when every
seed passed (no lost acknowledged write, wrong read, hang, protocol error, unexpected panic or heap growth),
1 when one failed, 2 for a usage error, 130 after SIGINT and 143 after SIGTERM. On the volumes board a seed also fails when a RAID volume is not
optimal 120 s of board time after the run; the replay line names the board.`;

interface Job {
  seed: number;
  ops: number;
  faults: FaultKind[];
  board: SimBoardKind;
  nbd: number; // NBD sessions
  cluster?: string; // a cluster file, resolved
  rdma?: boolean; // with cluster: ports without a window
}

function parseCount(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name}: expected an integer >= ${min}, got "${text}"`);
  return value;
}

function faultList(faults: readonly FaultKind[]): string {
  return faults.length === 0 ? "none" : faults.length === FAULT_KINDS.length - 1 && !faults.includes("lie") ? "all" : faults.join(",");
}

export function replayCommand(job: Job): string {
  return `wasm-iop simulate --seed ${job.seed} --ops ${job.ops}${job.cluster === undefined ? "" : ` --cluster ${job.cluster}${job.rdma === true ? " --rdma" : ""}`}${job.board === "disks" ? "" : ` --board ${job.board}`}${job.nbd === 0 ? "" : ` --nbd ${job.nbd}`} --faults ${faultList(job.faults)} --trace seed-${job.seed}.jsonl --verbose`;
}

function describe(result: SimulationResult, wallMs: number): string {
  const verdict = passed(result) ? "ok  " : "FAIL";
  return `seed ${result.seed}: ${verdict} ${result.ops} ops (${result.opsFailed} failed visibly), ${result.faultsInjected} faults, ${result.resets} resets, ` +
    `lostWrites ${result.lostWrites}, wrongReads ${result.wrongReads}, hangs ${result.hangs}` +
    (result.protocolErrors + result.panics + result.heapGrowth > 0 ? `, protocolErrors ${result.protocolErrors}, panics ${result.panics}, heapGrowth ${result.heapGrowth}` : "") +
    (result.memberPulls > 0 || result.volumesNotOptimal > 0 || result.spaceRefused > 0 ? `, member pulls ${result.memberPulls}, thin full ${result.thinFullNs === null ? "no" : `at ${(result.thinFullNs / 1e9).toFixed(1)} s`}, refused 27h/07h ${result.spaceRefused}, volumesNotOptimal ${result.volumesNotOptimal}` : "") +
    `, ${(wallMs / 1000).toFixed(1)} s`;
}

// The hidden worker mode of --jobs: seeds arrive over IPC, results go back the same way. A seed runs synchronously,
// so SIGINT (a terminal's, to the whole process group) and SIGTERM (the parent's, when it stops) keep their default
// action and end the worker at once; the parent drops its seed.
function runWorker(): Promise<number> {
  return new Promise((resolve) => {
    process.on("message", (job: Job | "stop") => {
      if (job === "stop") {
        process.disconnect(); // the IPC channel would keep the worker alive
        return resolve(0);
      }
      const started = performance.now();
      const result = simulate({ seed: job.seed, ops: job.ops, faults: job.faults, board: job.board, nbdSessions: job.nbd, cluster: job.cluster, rdma: job.rdma });
      process.send!({ result, wallMs: performance.now() - started });
    });
    process.send!("ready");
  });
}

export const simulateCommand: Command = {
  name: "simulate",
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        seed: { type: "string" },
        seeds: { type: "string" },
        ops: { type: "string" },
        faults: { type: "string" },
        board: { type: "string" },
        cluster: { type: "string" },
        rdma: { type: "boolean", default: false },
        nbd: { type: "string" },
        jobs: { type: "string" },
        "seed-timeout": { type: "string" },
        json: { type: "boolean", default: false },
        trace: { type: "string" },
        verbose: { type: "boolean", default: false },
        record: { type: "string" },
        pcap: { type: "string" },
        worker: { type: "boolean", default: false },
      },
      strict: true,
    });
    if (values.worker) return runWorker();
    const first = parseCount("seed", values.seed, 1, 0);
    const count = parseCount("seeds", values.seeds, 1, 1);
    const ops = parseCount("ops", values.ops, 10_000, 1);
    const jobs = parseCount("jobs", values.jobs, 1, 1);
    const seedTimeoutS = parseCount("seed-timeout", values["seed-timeout"], SEED_TIMEOUT_S_DEFAULT, 1);
    const nbd = parseCount("nbd", values.nbd, 0, 0);
    let faults: FaultKind[];
    try {
      faults = parseFaults(values.faults ?? "all");
    } catch (error) {
      throw new UsageError(`--faults: ${(error as Error).message}`);
    }
    const board = (values.board ?? "disks") as SimBoardKind;
    if (!SIM_BOARD_KINDS.includes(board)) throw new UsageError(`--board: expected ${SIM_BOARD_KINDS.join(" or ")}, got "${values.board}"`);
    if (count > 1 && (values.trace !== undefined || values.verbose || values.record !== undefined || values.pcap !== undefined)) {
      throw new UsageError("--trace, --verbose, --record and --pcap take one seed (replay the one you want to look at)");
    }
    const cluster = values.cluster === undefined ? undefined : resolve(values.cluster);
    if (cluster !== undefined && (values.board !== undefined || nbd > 0 || values.record !== undefined || values.pcap !== undefined)) {
      throw new UsageError("--cluster runs the boards of its file: not with --board, --nbd, --record or --pcap");
    }
    if (values.rdma && cluster === undefined) throw new UsageError("--rdma takes --cluster (it changes the cluster ports)");
    if (cluster !== undefined) {
      try {
        loadClusterFile(cluster);
      } catch (error) {
        throw new UsageError(`--cluster: ${(error as Error).message}`);
      }
    }
    await buildFirmware(["release"]);

    const progress = (line: string) => process.stderr.write(line + "\n");
    const queue: Job[] = Array.from({ length: count }, (_, i) => ({ seed: first + i, ops, faults, board, nbd, cluster, rdma: values.rdma }));
    const results: SimulationResult[] = [];
    const started = performance.now();
    let stopping: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      stopping ??= signal;
      progress(`${signal}: stopping; the seeds in progress are dropped (another signal ends the process at once)`);
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    progress(`simulate: ${count} seed${count === 1 ? "" : "s"} from ${first}, ${ops} ops each, ${cluster === undefined ? `board ${board}` : `cluster ${values.cluster}${values.rdma ? " (RDMA, no windows)" : ""}`}, faults ${faultList(faults)}, ${jobs} job${jobs === 1 ? "" : "s"}`);
    const done = (job: Job, result: SimulationResult, wallMs: number) => {
      results.push(result);
      const elapsed = (performance.now() - started) / 1000;
      progress(`[${results.length}/${count}] ${describe(result, wallMs)}; ${(results.length / elapsed).toFixed(3)} seeds/s`);
      if (!passed(result)) {
        for (const failure of result.failures) progress(`  ${failure}`);
        progress(`  replay: ${replayCommand(job)}`);
      }
    };

    if (jobs === 1 || count === 1) {
      for (const job of queue) {
        await new Promise((r) => setImmediate(r)); // lets a signal in between seeds
        if (stopping !== undefined) break;
        const trace = new Trace({ path: values.trace });
        const t0 = performance.now();
        let recorder: Recorder | undefined;
        let pcap: PcapWriter | undefined;
        const result = await simulateInterruptible({
          seed: job.seed, ops: job.ops, faults: job.faults, board: job.board, nbdSessions: job.nbd, cluster: job.cluster, rdma: job.rdma, trace, onConsole: values.verbose ? (line) => progress(line) : undefined,
          attach: (board) => {
            if (values.pcap !== undefined) board.ingress.observe((pcap = new PcapWriter(resolve(values.pcap))));
            if (values.record === undefined) return;
            recorder = new Recorder({
              path: resolve(values.record), command: `simulate --seed ${job.seed} --ops ${job.ops} --board ${job.board} --faults ${faultList(job.faults)}`,
              tool: `wasm-iop ${packageVersion()}`, boardFile: board.spec.file, spec: board.spec, seed: board.seed, portals: board.spec.portals,
              verbose: false, dataDir: ".", copyDisks: false, hashSent: true,
            });
            recorder.begin(board, new Uint8Array(readFileSync(FIRMWARE_PATH)));
          },
          detach: (board) => recorder?.end(board.ingress.position, stopping ?? "end of simulation", trace),
        }, () => stopping !== undefined);
        recorder?.close();
        pcap?.finish();
        if (recorder !== undefined) progress(`recording: ${recorder.path} (replay: wasm-iop replay ${values.record})`);
        if (pcap !== undefined) progress(`packet capture: ${pcap.path}, ${pcap.packetCount} packets`);
        await trace.close();
        if (result === undefined) break; // stopped by a signal
        done(job, result, performance.now() - t0);
      }
    } else {
      await runJobs(queue, jobs, done, () => stopping, seedTimeoutS * 1000);
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);

    results.sort((a, b) => a.seed - b.seed);
    const failed = results.filter((r) => !passed(r));
    const total = (key: "ops" | "faultsInjected" | "lostWrites" | "wrongReads" | "hangs" | "protocolErrors" | "panics" | "heapGrowth" | "resets" | "opsFailed" | "volumesNotOptimal" | "memberPulls" | "spaceRefused") =>
      results.reduce((sum, r) => sum + r[key], 0);
    const wallS = (performance.now() - started) / 1000;
    progress(`simulate: ${stopping === undefined ? "" : `stopped by ${stopping}: `}${results.length} of ${count} seeds in ${wallS.toFixed(1)} s (${(results.length / wallS).toFixed(3)} seeds/s), ` +
      `${failed.length} failed; lostWrites ${total("lostWrites")}, wrongReads ${total("wrongReads")}, hangs ${total("hangs")}` +
      (failed.length > 0 ? `; failing seeds: ${failed.map((r) => r.seed).join(" ")}` : ""));
    if (values.json) {
      const stopped = stopping === undefined ? {} : { stoppedBy: stopping, seedsAsked: count };
      const summary = results.length === 1 ? { ...results[0]!, seeds: [results[0]!.seed], ...stopped } : {
        seeds: results.map((r) => r.seed), ops: total("ops"), opsFailed: total("opsFailed"), faultsInjected: total("faultsInjected"), resets: total("resets"),
        lostWrites: total("lostWrites"), wrongReads: total("wrongReads"), hangs: total("hangs"), protocolErrors: total("protocolErrors"),
        panics: total("panics"), heapGrowth: total("heapGrowth"), volumesNotOptimal: total("volumesNotOptimal"), memberPulls: total("memberPulls"),
        spaceRefused: total("spaceRefused"), thinFullSeeds: results.filter((r) => r.thinFullNs !== null).length, failedSeeds: failed.map((r) => r.seed), wallSeconds: Number(wallS.toFixed(1)),
        // One fingerprint for the set: the SHA-256 of the seeds' trace hashes, in seed order.
        traceHash: createHash("sha256").update(results.map((r) => r.traceHash).join("\n")).digest("hex"),
        ...stopped,
        results,
      };
      process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
    }
    if (stopping !== undefined) return stopping === "SIGINT" ? 130 : 143;
    return failed.length > 0 ? 1 : 0;
  },
};

// Seeds over `jobs` child processes (this CLI in worker mode), each taking the next seed when it finishes one. A
// worker that sends no result within `seedWallMs` of wall time is killed and its seed counted as a hang (a loop
// inside one board event never returns to the simulator's own watchdog); a new worker takes its place. Once
// `stopping()` names a signal, no seed is handed out and every worker is sent SIGTERM: their seeds are dropped.
async function runJobs(queue: Job[], jobs: number, done: (job: Job, result: SimulationResult, wallMs: number) => void, stopping: () => NodeJS.Signals | undefined, seedWallMs: number): Promise<void> {
  const bin = join(ROOT, "bin/wasm-iop.js");
  let live = 0;
  const children = new Set<ChildProcess>();
  const stopAll = () => {
    for (const child of children) child.kill("SIGTERM");
  };
  process.on("SIGINT", stopAll);
  process.on("SIGTERM", stopAll);
  try {
    await runWorkers();
  } finally {
    process.off("SIGINT", stopAll);
    process.off("SIGTERM", stopAll);
  }

  function runWorkers(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const start = () => {
        live += 1;
        const child: ChildProcess = fork(bin, ["simulate", "--worker"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
        children.add(child);
        let current: Job | undefined;
        let timer: NodeJS.Timeout | undefined;
        let sentAt = 0;
        let killed = false;
        const next = () => {
          current = stopping() !== undefined ? undefined : queue.shift();
          if (!child.connected) return; // stopped by a signal just now
          if (current === undefined) {
            child.send("stop");
            return;
          }
          child.send(current);
          sentAt = performance.now();
          timer = setTimeout(() => {
            killed = true;
            child.kill("SIGKILL");
          }, seedWallMs);
        };
        child.on("message", (message: "ready" | { result: SimulationResult; wallMs: number }) => {
          clearTimeout(timer);
          if (message !== "ready") done(current!, message.result, message.wallMs);
          next();
        });
        child.on("exit", (code) => {
          clearTimeout(timer);
          children.delete(child);
          live -= 1;
          if (stopping() !== undefined) {
            // Stopped: its seed, if any, is dropped.
          } else if (killed && current !== undefined) {
            const wallMs = performance.now() - sentAt;
            done(current, stalledResult(current.seed, current.ops, wallMs), wallMs);
            if (queue.length > 0) start();
          } else if (current !== undefined || code !== 0) {
            reject(new Error(`simulate worker exited with ${code} during seed ${current?.seed}`));
            return;
          }
          if (live === 0) resolve();
        });
      };
      for (let w = 0; w < Math.min(jobs, queue.length); w++) start();
    });
  }
}
