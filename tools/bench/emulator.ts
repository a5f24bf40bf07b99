// The parent's handle on the emulator child (emulator_child.ts): fork it, wait for its portal, ask it for its
// counters, have it write a CPU profile, stop it. One request at a time; each is answered by one reply.
import { type ChildProcess, fork } from "node:child_process";
import { childEntry } from "../build/entry.ts";

export interface EmulatorStats {
  cpuUserUs: number; // process.cpuUsage() of the emulator process since it started
  cpuSystemUs: number;
  rssBytes: number;
  heapUsedBytes: number; // V8's heap in use (after a full collection when the request asked for one)
  firmwareCallMs: number; // host wall time inside the firmware's irq() and run() calls, every processor
  firmwareBusMs: number; // the part of it spent in bus accesses (device models run by a register access)
  firmwareRunCount: number; // turns (irq deliveries then one run) on every processor
  busAccessCount: number; // bus reads and writes by the firmware, every processor
  layerMs: Record<string, number>; // host ms per layer of the board (host/sim/layer_meter.ts), since it started
  processorCallMs: Record<string, number>; // host ms inside each processor's irq()/run() calls (with their bus accesses)
  // The main thread's time on a CPU (Linux /proc/self/schedstat; 0 elsewhere) and its event loop's time not waiting
  // for I/O (performance.eventLoopUtilization): the layers are timed in wall time, which a loaded machine stretches
  // while the thread waits for a CPU, so the bench scales them by the one over the other.
  schedRunNs: number;
  loopActiveMs: number;
  panics: number;
  recordedBytes: number; // bytes of records handed to the recording's file (bench --record, --record-ab)
  recordWaitMs: number; // how long the board's thread waited for the recording's writer thread (a slab to fill)
}

export type EmulatorRequest =
  | { kind: "stats"; collect?: boolean } // collect: a full garbage collection first, so RSS shows what is live
  | { kind: "meter"; on: boolean } // the board's layer meter on or off (host/sim/layer_meter.ts)
  | { kind: "record"; on: boolean } // recording on or off (started with recordPath; bench --record-ab)
  | { kind: "profile-start" }
  | { kind: "profile-stop"; path: string }
  | { kind: "stop" };

export type EmulatorReply =
  | { kind: "ready"; urls: string[]; nbdUrls: string[]; pid: number }
  | { kind: "stats"; stats: EmulatorStats }
  | { kind: "meter-set" }
  | { kind: "record-set" }
  | { kind: "profile-started" }
  | { kind: "profile-written"; path: string }
  | { kind: "stopped" }
  | { kind: "error"; message: string };

export interface EmulatorOptions {
  boardPath?: string; // default boards/iop-dev.json
  withoutXorEngine?: boolean; // the board file's XOR engine left out (bench --volumes)
  nbd?: boolean; // the board's NBD exports served too (bench --nbd)
  memoryDisks: boolean;
  dataDir: string;
  recordPath?: string; // the session recorded there (bench --record)
  // false: the emulator stays in the bench's session and process group (it ignores the terminal's SIGINT; the bench
  // stops it), as nbdkit does, so both servers share the scheduler's group with the clients (bench --nbd). Default
  // true: a session of its own, as tgtd has. Linux puts each session in its own autogroup: on a loaded machine an
  // emulator in its own spent ~20% more CPU per 4 KiB request than in the clients' (docs/performance.md).
  ownSession?: boolean;
  log: (line: string) => void; // the child's stderr, line by line
}

const CHILD = childEntry("emulator_child", "tools/bench/emulator_child.ts");
const READY_TIMEOUT_MS = 60_000; // boot, and a firmware build when the image is stale

export class Emulator {
  private waiting: ((reply: EmulatorReply) => void) | undefined;
  private exited = false;

  private constructor(private readonly child: ChildProcess, readonly urls: string[], readonly nbdUrls: string[], readonly pid: number) {
    child.on("message", (reply: EmulatorReply) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.(reply);
    });
    child.on("exit", (code, signal) => {
      this.exited = true;
      this.waiting?.({ kind: "error", message: `the emulator exited (${signal ?? `code ${code}`})` });
      this.waiting = undefined;
    });
  }

  /** Forks the emulator and resolves once its board serves iSCSI. */
  static async start(options: EmulatorOptions): Promise<Emulator> {
    const args = ["--data-dir", options.dataDir, ...(options.memoryDisks ? ["--memory-disks"] : []),
      ...(options.boardPath !== undefined ? ["--board", options.boardPath] : []), ...(options.withoutXorEngine === true ? ["--without-xor-engine"] : []),
      ...(options.recordPath !== undefined ? ["--record", options.recordPath] : []),
      ...(options.nbd === true ? ["--nbd"] : []), ...(options.ownSession === false ? ["--ignore-sigint"] : [])];
    // Either way a Ctrl-C at the terminal reaches the bench and not the board, which the bench then stops itself.
    const child = fork(CHILD.path, args, { execArgv: [...CHILD.execArgv, "--expose-gc"], stdio: ["ignore", "pipe", "pipe", "ipc"], detached: options.ownSession !== false });
    let output = "";
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString();
      let newline = output.indexOf("\n");
      while (newline >= 0) {
        options.log(output.slice(0, newline));
        output = output.slice(newline + 1);
        newline = output.indexOf("\n");
      }
    };
    child.stdout!.on("data", onOutput);
    child.stderr!.on("data", onOutput);
    const ready = await new Promise<EmulatorReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the emulator did not serve within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      child.once("message", (reply: EmulatorReply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the emulator exited with code ${code} before serving`));
      });
    });
    if (ready.kind !== "ready") throw new Error(`the emulator answered ${JSON.stringify(ready)} instead of ready`);
    return new Emulator(child, ready.urls, ready.nbdUrls, ready.pid);
  }

  /** The child's counters; with `collect`, after a full garbage collection (a few ms: never inside a measured run). */
  async stats(collect = false): Promise<EmulatorStats> {
    const reply = await this.request({ kind: "stats", collect });
    if (reply.kind !== "stats") throw new Error(`stats: the emulator answered ${JSON.stringify(reply)}`);
    return reply.stats;
  }

  /** The layer meter on or off: off for the measured pairs (it costs two clock reads per layer switch). */
  async meter(on: boolean): Promise<void> {
    const reply = await this.request({ kind: "meter", on });
    if (reply.kind !== "meter-set") throw new Error(`meter: the emulator answered ${JSON.stringify(reply)}`);
  }

  /** Recording on or off from now on (an emulator started with recordPath; bench --record-ab). */
  async record(on: boolean): Promise<void> {
    const reply = await this.request({ kind: "record", on });
    if (reply.kind !== "record-set") throw new Error(`record: the emulator answered ${JSON.stringify(reply)}`);
  }

  async profileStart(): Promise<void> {
    const reply = await this.request({ kind: "profile-start" });
    if (reply.kind !== "profile-started") throw new Error(`profile-start: the emulator answered ${JSON.stringify(reply)}`);
  }

  async profileStop(path: string): Promise<void> {
    const reply = await this.request({ kind: "profile-stop", path });
    if (reply.kind !== "profile-written") throw new Error(`profile-stop: the emulator answered ${JSON.stringify(reply)}`);
  }

  /** Powers the board off (file disks flushed and closed) and waits for the process to exit; kills it after 10 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    try {
      await this.request({ kind: "stop" });
    } catch {
      // already gone: the exit wait below settles it
    }
    await exited;
    clearTimeout(timer);
  }

  private request(message: EmulatorRequest): Promise<EmulatorReply> {
    if (this.exited) return Promise.reject(new Error("the emulator has exited"));
    if (this.waiting !== undefined) return Promise.reject(new Error("one emulator request at a time"));
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.child.send(message);
    });
  }
}
