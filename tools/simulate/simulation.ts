// One seed of `wasm-iop simulate`: a board (host processor with the NIC and a disk, two storage processors with a
// disk each) serves iSCSI on its loopback network; several initiators, each with its own sessions, send a random
// workload (READ and WRITE of random ranges, some with FUA, and SYNCHRONIZE CACHE) to the three LUNs while faults
// are injected; every completed read is checked against the shadow model (shadow.ts) as it completes, and after the
// last operation and a quiet period every block any write touched is read from the disk images and checked too.
// Everything (board, workload, faults, latencies) derives from the seed, so a seed replays exactly, trace and all.
import { readFileSync } from "node:fs";
import { Board } from "../../host/board/board.ts";
import { parseBoard } from "../../host/board/load.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import type { LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import { Prng } from "../../host/sim/prng.ts";
import { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../build/firmware.ts";
import { FaultInjector, type FaultKind } from "./faults.ts";
import { BLOCK_BYTES } from "../iscsi/pdu.ts";
import { Session, type Outcome, type Task } from "./session.ts";
import { ShadowDisk, type WriteRecord } from "./shadow.ts";

export const BOARD_NAME = "sim-board";
const TARGET = `iqn.2026-11.org.wasm-iop:${BOARD_NAME}`;
const DISK_NAMES = ["host-disk0", "sp1-disk0", "sp2-disk0"]; // LUN n is volume n is disk n
const DISK_MIB = 8;
const LUN_BLOCKS = (DISK_MIB * 1024 * 1024) / BLOCK_BYTES;
const HOT_BLOCKS = 1024; // most I/O goes here, so writes and reads of different sessions overlap
const TRANSFER_BLOCKS_MAX = 256; // 128 KiB: within the sessions' MaxBurstLength, so one R2T per write

// Board time.
const BOOT_LIMIT_NS = 5_000_000_000; // the firmware must serve iSCSI within this after power-on or a reset
const THINK_NS_MAX = 20_000; // an initiator waits up to this between a completion and its next command
const RECONNECT_NS = 2_000_000; // after a lost connection or a refused login
const RESET_DELAY_NS = 1_000_000; // from a processor's stop to the board's reset
const WATCH_PERIOD_NS = 100_000_000;
/** A command with no answer (and its connection still up) for this long is a hang; so is a session not logged in. */
export const HANG_NS = 20_000_000_000;
/**
 * How long a write whose connection was lost may still land: longer than the target holds any request (the DDM's
 * 2 s device deadline and reset, the CTA's retransmissions). After it, an acknowledged write may not be undone.
 */
export const SETTLE_NS = 10_000_000_000;
const RUN_LIMIT_NS = 3_600_000_000_000; // an hour of board time: a run stuck beyond every hang is stopped
const PRUNE_EVERY_OPS = 1000;
const FAILURES_KEPT = 20;

export interface SimulationOptions {
  seed: number;
  ops: number;
  faults: readonly FaultKind[];
  initiators?: number; // default 2
  sessionsPerInitiator?: number; // default 2
  queueDepth?: number; // commands in flight per session, default 4
  faultEveryOps?: number; // one fault per this many operations issued, on average (default 50)
  trace?: Trace; // default: hashed, not kept
  onConsole?: (line: string) => void; // the board's console, for --verbose
}

export interface SimulationResult {
  seed: number;
  ops: number;
  opsGood: number; // GOOD status
  opsFailed: number; // failed visibly: CHECK CONDITION, or lost with the connection
  failedBy: Record<string, number>; // "check 06/29/00" (sense key/ASC/ASCQ), "status 0x08", "lost"
  reads: number;
  writes: number;
  syncs: number;
  faultsInjected: number;
  faultsByKind: Record<FaultKind, number>;
  resets: number;
  logins: number;
  lostWrites: number; // blocks that, after the run, do not hold what the acknowledged writes say
  wrongReads: number; // blocks a GOOD read returned that no write could have left there
  hangs: number;
  protocolErrors: number;
  panics: number; // processor stops that were not injected
  heapGrowth: number; // processors whose heap moved after boot
  boardTimeNs: number;
  traceEvents: number;
  traceHash: string;
  failures: string[]; // the first few, each with its board time
}

let firmware: WebAssembly.Module | undefined;

function firmwareModule(): WebAssembly.Module {
  firmware ??= new WebAssembly.Module(readFileSync(FIRMWARE_PATH));
  return firmware;
}

/** The simulation board: its description is fixed; the seed varies everything that happens on it. */
export function simulationBoard(seed: number, trace: Trace, onConsole: (processor: string, fd: 1 | 2, line: string) => void, onStop: (processor: string, report: PanicReport | undefined) => void): Board {
  const processors = [
    {
      name: "host", role: "host", ramMiB: 64, pci: [
        { slot: 1, model: "iop-bridge", processor: "sp1" }, { slot: 2, model: "iop-bridge", processor: "sp2" },
        { slot: 4, model: "nic" }, { slot: 8, model: "virtio-scsi", disks: ["host-disk0"] },
      ],
    },
    { name: "sp1", role: "storage", ramMiB: 32, pci: [{ slot: 8, model: "virtio-scsi", disks: ["sp1-disk0"] }] },
    { name: "sp2", role: "storage", ramMiB: 32, pci: [{ slot: 8, model: "virtio-scsi", disks: ["sp2-disk0"] }] },
  ];
  const disks = DISK_NAMES.map((name) => ({ name, sizeMiB: DISK_MIB, blockSize: 512, backend: "memory" }));
  const spec = parseBoard({ name: BOARD_NAME, seed, processors, disks }, `${BOARD_NAME}.json`);
  return new Board({ spec, firmware: firmwareModule(), trace, onConsole, onStop });
}

export function simulate(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly board: Board;
  private readonly network: LoopbackBackend;
  private readonly trace: Trace;
  private readonly workload: Prng;
  private readonly injector: FaultInjector;
  private readonly shadows: ShadowDisk[];
  private readonly sessions: Session[] = [];
  private readonly notReadySince = new Map<Session, number>();
  private readonly open = new Set<WriteRecord>(); // writes that may still land
  private readonly reads = new Set<Task>(); // reads in flight, for pruning
  private readonly faultEveryOps: number;
  private serving = false;
  private resetPending = false;
  private finished = false;
  private writeIdNext = 1;
  private opsIssued = 0;
  private opsEnded = 0;
  private readonly result: SimulationResult;

  constructor(private readonly options: SimulationOptions) {
    this.trace = options.trace ?? new Trace();
    const root = new Prng(options.seed);
    this.workload = root.fork("workload");
    this.faultEveryOps = options.faultEveryOps ?? 50;
    this.result = {
      seed: options.seed, ops: options.ops, opsGood: 0, opsFailed: 0, reads: 0, writes: 0, syncs: 0, faultsInjected: 0,
      faultsByKind: {} as Record<FaultKind, number>, failedBy: {}, resets: 0, logins: 0,
      lostWrites: 0, wrongReads: 0, hangs: 0, protocolErrors: 0, panics: 0, heapGrowth: 0, boardTimeNs: 0, traceEvents: 0, traceHash: "", failures: [],
    };
    this.board = simulationBoard(options.seed, this.trace, (processor, fd, line) => this.onConsole(processor, fd, line), (processor, report) => this.onStop(processor, report));
    this.network = this.board.network as LoopbackBackend;
    const key = root.fork("content").nextU32();
    this.shadows = DISK_NAMES.map((_, lun) => new ShadowDisk(lun, LUN_BLOCKS, key));
    this.injector = new FaultInjector(this.board, root.fork("faults"), options.faults, { dropConnection: (prng) => this.dropConnection(prng) });
  }

  run(): SimulationResult {
    const { board } = this;
    board.powerOn();
    this.awaitServing();
    const initiators = this.options.initiators ?? 2;
    const perInitiator = this.options.sessionsPerInitiator ?? 2;
    for (let i = 0; i < initiators; i++) {
      for (let s = 0; s < perInitiator; s++) {
        const session: Session = new Session({
          board, network: this.network, targetName: TARGET, initiatorName: `iqn.2026-11.org.wasm-iop:sim-initiator-${i}`,
          isid: 0x100 * (i + 1) + s, queueDepth: this.options.queueDepth ?? 4,
          onReady: () => this.onReady(session),
          onLost: (reason) => this.onLost(session, reason),
          onViolation: (message) => this.fail("protocolErrors", `session ${session === undefined ? "?" : this.sessions.indexOf(session)}: ${message}`),
        });
        this.sessions.push(session);
        this.notReadySince.set(session, board.clock.nowNs);
        session.connect();
      }
    }
    board.clock.after(WATCH_PERIOD_NS, () => this.watch());
    while (!this.finished && board.clock.nowNs < RUN_LIMIT_NS) board.runFor(100_000_000);
    if (!this.finished) this.fail("hangs", `the run did not finish within ${RUN_LIMIT_NS / 1e9} s of board time`);
    // Quiet period: whatever a lost connection left in the target lands (or not) before the disks are checked.
    board.runFor(SETTLE_NS + 1_000_000_000);
    this.checkDisks();
    for (const p of board.processors) if (p.state === "running" && p.heapTop() !== p.heapTopAtBoot) this.fail("heapGrowth", `${p.name}: heap top moved from ${p.heapTopAtBoot} to ${p.heapTop()}`);
    board.powerOff();
    this.result.faultsInjected = this.injector.injected;
    this.result.faultsByKind = { ...this.injector.byKind };
    this.result.boardTimeNs = board.clock.nowNs;
    this.result.traceEvents = this.trace.count;
    this.result.traceHash = this.trace.digest();
    return this.result;
  }

  // --- The board ---

  private awaitServing(): void {
    const limit = this.board.clock.nowNs + BOOT_LIMIT_NS;
    while (!this.serving && this.board.clock.nowNs < limit) this.board.runFor(5_000_000);
    if (!this.serving) throw new Error(`seed ${this.options.seed}: the firmware did not serve iSCSI within ${BOOT_LIMIT_NS / 1e9} s of board time`);
  }

  private onConsole(processor: string, fd: 1 | 2, line: string): void {
    if (line.startsWith("tts: serving")) this.serving = true;
    this.options.onConsole?.(`${(this.board.clock.nowNs / 1e9).toFixed(6)} [${processor}] ${line}`);
  }

  private onStop(processor: string, report: PanicReport | undefined): void {
    if (report === undefined) return;
    if (report.kind !== "fault") this.fail("panics", `${processor} stopped: ${report.kind}, task ${report.task}, code ${report.code}: ${report.message}`);
    if (this.resetPending) return;
    this.resetPending = true;
    // As `run --reset-on-panic` does: the board resets; in-flight commands fail with their connections.
    this.board.clock.after(RESET_DELAY_NS, () => {
      this.resetPending = false;
      this.result.resets += 1;
      const now = this.board.clock.nowNs;
      for (const record of this.open) record.endNs = Math.min(record.endNs, now); // nothing lands after the reset
      this.open.clear();
      this.serving = false;
      this.trace.record(now, "sim", "reset", { after: processor });
      this.board.reset();
    });
  }

  // --- Sessions ---

  private onReady(session: Session): void {
    this.result.logins += 1;
    this.notReadySince.delete(session);
    this.fill(session);
  }

  private onLost(session: Session, reason: string): void {
    this.trace.record(this.board.clock.nowNs, "sim", "lost", { session: this.sessions.indexOf(session), reason });
    if (!this.notReadySince.has(session)) this.notReadySince.set(session, this.board.clock.nowNs);
    if (this.finishedIssuing()) return this.checkFinished();
    this.board.clock.after(RECONNECT_NS, () => {
      if (session.state === "closed") session.connect();
    });
  }

  private dropConnection(prng: Prng): string | undefined {
    const live = this.sessions.filter((s) => s.state === "full");
    if (live.length === 0) return undefined;
    const session = live[prng.intBelow(live.length)]!;
    session.abort("injected connection drop");
    return `session ${this.sessions.indexOf(session)}`;
  }

  private finishedIssuing(): boolean {
    return this.opsIssued >= this.options.ops;
  }

  private fill(session: Session): void {
    while (session.canSubmit && !this.finishedIssuing()) this.issue(session);
  }

  // --- The workload ---

  private issue(session: Session): void {
    const w = this.workload;
    const draw = w.intBelow(100);
    const kind = draw < 45 ? "read" : draw < 90 ? "write" : "sync";
    const lun = w.intBelow(this.shadows.length);
    const size = w.intBelow(100);
    const blocks = kind === "sync" ? (w.intBelow(2) === 0 ? 0 : 1 + w.intBelow(TRANSFER_BLOCKS_MAX)) : size < 70 ? 1 + w.intBelow(16) : size < 95 ? 17 + w.intBelow(112) : 129 + w.intBelow(TRANSFER_BLOCKS_MAX - 128);
    const span = w.intBelow(10) < 6 ? HOT_BLOCKS : LUN_BLOCKS;
    const lba = w.intBelow(span - Math.max(blocks, 1) + 1);
    const fua = w.intBelow(4) === 0;
    const now = this.board.clock.nowNs;
    const data = new Uint8Array(kind === "sync" ? 0 : blocks * BLOCK_BYTES);
    const task: Task = { kind, lun, lba, blocks, fua, data, issueNs: now, done: () => {} };
    this.opsIssued += 1;
    if (kind === "write") {
      this.result.writes += 1;
      const record = this.shadows[lun]!.issueWrite(this.writeIdNext++, lba, blocks, now, data);
      this.open.add(record);
      task.done = (outcome) => this.writeDone(session, task, record, outcome);
    } else if (kind === "read") {
      this.result.reads += 1;
      this.reads.add(task);
      task.done = (outcome) => this.readDone(session, task, outcome);
    } else {
      this.result.syncs += 1;
      task.done = (outcome) => this.ended(session, outcome);
    }
    session.submit(task);
    if (this.opsIssued % PRUNE_EVERY_OPS === 0) this.prune();
    this.injector.maybeInject(this.faultEveryOps);
  }

  private writeDone(session: Session, task: Task, record: WriteRecord, outcome: Outcome): void {
    const now = this.board.clock.nowNs;
    const shadow = this.shadows[task.lun]!;
    if (outcome.kind === "good") {
      shadow.ended(record, now, true);
      this.open.delete(record);
    } else if (outcome.kind === "status") {
      shadow.ended(record, Math.min(record.endNs, now), false);
      this.open.delete(record);
    } else {
      shadow.ended(record, Math.min(record.endNs, now + SETTLE_NS), false); // stays open: a reset can end it sooner
    }
    this.ended(session, outcome);
  }

  private readDone(session: Session, task: Task, outcome: Outcome): void {
    this.reads.delete(task);
    if (outcome.kind === "good") {
      const shadow = this.shadows[task.lun]!;
      const now = this.board.clock.nowNs;
      for (let b = 0; b < task.blocks; b++) {
        const block = task.data.subarray(b * BLOCK_BYTES, (b + 1) * BLOCK_BYTES);
        const verdict = shadow.check(task.lba + b, block, task.issueNs, now);
        if (verdict !== "ok") {
          this.fail("wrongReads", `READ LUN ${task.lun} LBA ${task.lba}+${task.blocks} (issued ${task.issueNs}): block ${task.lba + b} is ${verdict} (holds write ${new DataView(block.buffer, block.byteOffset).getUint32(0, true)})`);
          break; // one wrong read, however many of its blocks are wrong
        }
      }
    }
    this.ended(session, outcome);
  }

  private ended(session: Session, outcome: Outcome): void {
    this.opsEnded += 1;
    if (outcome.kind === "good") this.result.opsGood += 1;
    else {
      this.result.opsFailed += 1;
      const hex = (n: number) => n.toString(16).padStart(2, "0");
      const why = outcome.kind === "lost" ? "lost" : outcome.status === 2 ? `check ${hex(outcome.senseKey)}/${hex(outcome.asc)}/${hex(outcome.ascq)}` : `status 0x${hex(outcome.status)}`;
      this.result.failedBy[why] = (this.result.failedBy[why] ?? 0) + 1;
    }
    if (this.finishedIssuing()) return this.checkFinished();
    if (session.state === "full") this.board.clock.after(this.workload.intBelow(THINK_NS_MAX), () => this.fill(session));
  }

  private checkFinished(): void {
    if (this.finished || this.opsEnded < this.options.ops) return;
    this.finished = true;
    this.trace.record(this.board.clock.nowNs, "sim", "finished", { ops: this.opsEnded });
  }

  private prune(): void {
    let horizon = this.board.clock.nowNs;
    for (const read of this.reads) horizon = Math.min(horizon, read.issueNs);
    for (const shadow of this.shadows) shadow.prune(horizon);
  }

  // Every WATCH_PERIOD_NS: a command unanswered, or a session not logged in, for HANG_NS is a hang; the session is
  // dropped so the run goes on (its commands count as failed).
  private watch(): void {
    if (this.finished) return;
    const now = this.board.clock.nowNs;
    this.sessions.forEach((session, index) => {
      for (const task of session.pending()) {
        if (now - task.issueNs < HANG_NS) continue;
        this.fail("hangs", `session ${index}: ${task.kind.toUpperCase()} LUN ${task.lun} LBA ${task.lba}+${task.blocks} (ITT ${task.itt}) unanswered since ${(task.issueNs / 1e9).toFixed(6)} s`);
        session.abort("hang");
        return;
      }
      const since = this.notReadySince.get(session);
      if (since !== undefined && now - since >= HANG_NS && !this.finishedIssuing()) {
        this.fail("hangs", `session ${index}: not logged in since ${(since / 1e9).toFixed(6)} s`);
        this.notReadySince.set(session, now);
      }
    });
    this.board.clock.after(WATCH_PERIOD_NS, () => this.watch());
  }

  // --- After the run ---

  private checkDisks(): void {
    const block = new Uint8Array(BLOCK_BYTES);
    this.shadows.forEach((shadow, lun) => {
      const disk = this.board.disk(DISK_NAMES[lun]!)!;
      for (const lba of [...shadow.writtenBlocks()].sort((a, b) => a - b)) {
        disk.read(lba * BLOCK_BYTES, block);
        const verdict = shadow.check(lba, block, Infinity, Infinity);
        if (verdict !== "ok") this.fail("lostWrites", `after the run, LUN ${lun} block ${lba} is ${verdict} (holds write ${new DataView(block.buffer).getUint32(0, true)})`);
      }
    });
  }

  private fail(counter: "lostWrites" | "wrongReads" | "hangs" | "protocolErrors" | "panics" | "heapGrowth", message: string): void {
    this.result[counter] += 1;
    const line = `${(this.board.clock.nowNs / 1e9).toFixed(6)} s: ${counter}: ${message}`;
    this.trace.record(this.board.clock.nowNs, "sim", "failure", { counter, message });
    if (this.result.failures.length < FAILURES_KEPT) this.result.failures.push(line);
  }
}

/** True when a result shows no lost write, wrong read, hang, protocol error, unexpected panic or heap growth. */
export function passed(result: SimulationResult): boolean {
  return result.lostWrites + result.wrongReads + result.hangs + result.protocolErrors + result.panics + result.heapGrowth === 0;
}
