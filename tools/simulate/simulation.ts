// One seed of `wasm-iop simulate`: a board (boards.ts: disks on the host and storage processors, and on the
// `volumes` board a RAID-5 with a spare and a thin volume on a second RAID-5) serves iSCSI on its loopback network;
// several initiators, each with its own sessions, send a random workload (READ and WRITE of random ranges, some with
// FUA, and SYNCHRONIZE CACHE) to the LUNs while faults are injected; every completed read is checked against the
// shadow model (shadow.ts) as it completes, and after the last operation and a quiet period every block any write
// touched is checked again: a disk LUN's on its image, a volume's read back over a fresh iSCSI session once every
// volume is optimal again. Everything (board, workload, faults, latencies) derives from the seed, so a seed replays
// exactly, trace and all.
import type { Board } from "../../host/board/board.ts";
import { BoardControl } from "../../host/board/control.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import { VolumeStates } from "../../host/board/volume_states.ts";
import type { LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import { Prng } from "../../host/sim/prng.ts";
import { Trace } from "../../host/sim/trace.ts";
import type { VirtualClock } from "../../host/sim/clock.ts";
import { ClusterFaults } from "./cluster_faults.ts";
import { type SimCluster, simulationCluster } from "./cluster_plan.ts";
import { SIM_NBD_PORTAL, type SimBoardKind, type SimBoardPlan, simBoardPlan, simNbdExport, simulationBoard } from "./boards.ts";
import { FaultInjector, type FaultKind } from "./faults.ts";
import { BLOCK_BYTES } from "../iscsi/pdu.ts";
import { RAID_METADATA_BYTES as REPLICA_METADATA_BYTES } from "../../host/board/volume_geometry.ts";
import { MemberFaults } from "./member_faults.ts";
import { NbdSession } from "./nbd_session.ts";
import { Session, type Outcome, type Task } from "./session.ts";

/** An initiator's session: iSCSI, or NBD (a connection per LUN's export), driven alike. */
type SimSession = Session | NbdSession;
import { ShadowDisk, type WriteRecord } from "./shadow.ts";

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
const STEP_EVENTS = 256; // board events between the points where an interruptible run may take a turn
const RUN_LIMIT_NS = 3_600_000_000_000; // an hour of board time: a run stuck beyond every hang is stopped
/**
 * The watchdog on progress: a board that runs more events than this (per command issued, plus a floor for boot,
 * rebuilds and the read-back) is spinning, its board time crawling (a request re-sent for ever at the same instant
 * or every few microseconds): the run stops there and counts a hang, rather than take hours of wall time to reach
 * the board-time limits above. Seeds that pass run about 35 events per command, boot and checks included.
 */
export const BOARD_EVENTS_PER_OP_MAX = 200;
export const BOARD_EVENTS_FLOOR = 500_000;
/** After the quiet period, how long every RAID volume has to be optimal again (rebuilds of 3 MiB members). */
export const OPTIMAL_WAIT_NS = 120_000_000_000;
const READBACK_BLOCKS_MAX = 128; // the final read-back of a volume, in reads of at most this many blocks
const READBACK_TRIES_MAX = 8; // a read-back read failing visibly is tried again (unit attentions, first of all)
const SPACE_ALLOCATION_FAILED = "check 07/27/07"; // DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT
const PRUNE_EVERY_OPS = 1000;
const FAILURES_KEPT = 20;

export interface SimulationOptions {
  seed: number;
  ops: number;
  faults: readonly FaultKind[];
  board?: SimBoardKind; // default "disks"
  /** A cluster file: every board of it in one run (cluster_plan.ts) in place of `board`. */
  cluster?: string;
  /** With `cluster`: ports without a window (revision 2), a remote request's data moved by RDMA, as over TCP. */
  rdma?: boolean;
  initiators?: number; // default 2; in a cluster one per board, each with sessions on its board and the next
  sessionsPerInitiator?: number; // default 2
  nbdSessions?: number; // NBD sessions beside the iSCSI ones, each a connection per LUN (default 0: none)
  queueDepth?: number; // commands in flight per session, default 4
  faultEveryOps?: number; // one fault per this many operations issued, on average (default 50)
  trace?: Trace; // default: hashed, not kept
  onConsole?: (line: string) => void; // the board's console, for --verbose
  /** Called with the board before it powers on (a recorder or a packet capture attaches to its door here). */
  attach?: (board: Board) => void;
  /** Called before the board powers off at the end of the run (a recorder writes its end here). */
  detach?: (board: Board) => void;
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
  volumesNotOptimal: number; // RAID volumes not optimal OPTIMAL_WAIT_NS after the quiet period (each says why)
  memberPulls: number; // member faults: pulls and replaces through the control door
  memberReplaces: number;
  spaceRefused: number; // writes refused with 27h/07h (a full thin pool)
  thinFullNs: number | null; // when the thin pool first filled, if it did
  volumes: string[]; // each volume's last state line
  boardTimeNs: number;
  boardEvents: number; // events the board's clock ran (the progress watchdog's measure)
  traceEvents: number;
  traceHash: string;
  failures: string[]; // the first few, each with its board time
}

// Thrown out of the board's event loop by the progress watchdog: the run ends where it is.
class RunStopped extends Error {}

/** A seed's result when its worker made no progress for `wallMs` of wall time and was killed (simulate --jobs). */
export function stalledResult(seed: number, ops: number, wallMs: number): SimulationResult {
  return {
    seed, ops, opsGood: 0, opsFailed: 0, reads: 0, writes: 0, syncs: 0, faultsInjected: 0, faultsByKind: {} as Record<FaultKind, number>,
    failedBy: {}, resets: 0, logins: 0, lostWrites: 0, wrongReads: 0, hangs: 1, protocolErrors: 0, panics: 0, heapGrowth: 0,
    volumesNotOptimal: 0, memberPulls: 0, memberReplaces: 0, spaceRefused: 0, thinFullNs: null, volumes: [], boardTimeNs: 0, boardEvents: 0,
    traceEvents: 0, traceHash: "", failures: [`hangs: the worker made no progress for ${(wallMs / 1000).toFixed(0)} s of wall time and was killed (a loop inside one board event?)`],
  };
}

export function simulate(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

/**
 * simulate() for a caller that must stay responsive (the CLI, to a signal): the same events in the same order (the
 * same trace), but the event loop gets a turn whenever `turnMs` of wall time passed since the last one. When `stop()`
 * answers true at a turn the run ends there: the board powers off and the result is undefined (a seed cut short
 * proves nothing).
 */
export async function simulateInterruptible(options: SimulationOptions, stop: () => boolean, turnMs = 50): Promise<SimulationResult | undefined> {
  return new Simulation(options).runInterruptible(stop, turnMs);
}

class Simulation {
  private readonly board: Board; // the board, or a cluster's first
  private readonly boards: readonly Board[]; // [board], or every board of the cluster
  private readonly clock: VirtualClock;
  private readonly cluster: SimCluster | undefined;
  private readonly clusterFaults: ClusterFaults | undefined;
  private readonly plan: SimBoardPlan;
  private readonly control: BoardControl;
  private readonly volumeStates = new VolumeStates();
  // RAID volumes (by name) that stopped with writes in flight and whose dirty rows are not resynchronized yet: their
  // parity may disagree with their data there, so a member pulled now would be rebuilt (and read) from it.
  private readonly resyncPending = new Set<string>();
  private readonly members: MemberFaults | undefined;
  private readonly trace: Trace;
  private readonly workload: Prng;
  private readonly injector: FaultInjector;
  private readonly shadows: ShadowDisk[];
  private readonly sessions: SimSession[] = [];
  private readonly notReadySince = new Map<SimSession, number>();
  private readonly open = new Set<WriteRecord>(); // writes that may still land
  private readonly reads = new Set<Task>(); // reads in flight, for pruning
  private readonly faultEveryOps: number;
  private readonly serving = new Set<Board>();
  private readonly resetPending = new Set<Board>();
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
      lostWrites: 0, wrongReads: 0, hangs: 0, protocolErrors: 0, panics: 0, heapGrowth: 0,
      volumesNotOptimal: 0, memberPulls: 0, memberReplaces: 0, spaceRefused: 0, thinFullNs: null, volumes: [],
      boardTimeNs: 0, boardEvents: 0, traceEvents: 0, traceHash: "", failures: [],
    };
    const onConsole = (board: Board, processor: string, fd: 1 | 2, line: string) => this.onConsole(board, processor, fd, line);
    const onStop = (board: Board, processor: string, report: PanicReport | undefined) => this.onStop(board, processor, report);
    if (options.cluster !== undefined) {
      this.cluster = simulationCluster(options.cluster, root.fork("cluster"), this.trace, { onConsole, onStop }, options.rdma === true);
      this.plan = this.cluster.plan;
      this.boards = this.cluster.cluster.boards;
      this.board = this.boards[0]!;
      this.clusterFaults = new ClusterFaults(this.cluster.cluster.fabric, this.boards, this.cluster.ids, {
        poweredOff: (board) => this.serving.delete(board),
        poweredOn: () => {},
      });
    } else {
      this.plan = simBoardPlan(options.board ?? "disks");
      this.board = simulationBoard(this.plan, options.seed, this.trace, (processor, fd, line) => onConsole(this.board, processor, fd, line), (processor, report) => onStop(this.board, processor, report), (options.nbdSessions ?? 0) > 0);
      this.boards = [this.board];
    }
    this.clock = this.board.clock;
    this.control = new BoardControl(this.board);
    const key = root.fork("content").nextU32();
    this.shadows = this.plan.luns.map((l) => new ShadowDisk(l.lun, l.blocks, key));
    const clusterFaults = this.clusterFaults;
    this.injector = new FaultInjector(this.cluster === undefined ? this.board : this.boards, root.fork("faults"), options.faults, {
      dropConnection: (prng) => this.dropConnection(prng),
      resetSurvivable: () => this.plan.raid.every((r) => this.isOptimal(r.volume)),
      cluster: clusterFaults === undefined ? undefined : (kind, prng) => clusterFaults.inject(kind, prng),
    });
    // Its own stream: the draws of the other faults stay those of a run without member faults.
    // A cluster's replica loses its copies to the board and fabric faults instead (its copy 1 is another board's).
    if (options.faults.includes("member") && this.plan.raid.length > 0 && this.cluster === undefined) {
      this.members = new MemberFaults(this.board, this.control, root.fork("members"), this.plan.raid, options.ops, (volume) => this.isOptimal(volume) && !this.resyncPending.has(volume) && !this.resetPending.has(this.board));
    }
  }

  run(): SimulationResult {
    const steps = this.begin();
    while (steps.next().done !== true);
    return this.end();
  }

  async runInterruptible(stop: () => boolean, turnMs: number): Promise<SimulationResult | undefined> {
    const steps = this.begin();
    let since = performance.now();
    while (steps.next().done !== true) {
      if (performance.now() - since < turnMs) continue;
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
      if (!stop()) continue;
      steps.return(undefined);
      this.options.detach?.(this.board);
      for (const b of this.boards) b.powerOff();
      return undefined;
    }
    return this.end();
  }

  // Power-on; then the phases, one step (at most STEP_EVENTS board events) per next().
  private begin(): Generator<void> {
    const { board } = this;
    this.options.attach?.(board);
    for (const b of this.boards) b.powerOn();
    board.clock.afterOutside(WATCH_PERIOD_NS, () => this.watchProgress());
    return this.steps();
  }

  private *steps(): Generator<void> {
    try {
      yield* this.runPhases();
    } catch (error) {
      if (!(error instanceof RunStopped)) throw error;
    }
  }

  // The checks after the phases, power-off, the result.
  private end(): SimulationResult {
    const { board } = this;
    this.result.volumes = this.volumeStates.list().map((v) => v.line);
    this.result.memberPulls = this.members?.pulls ?? 0;
    this.result.memberReplaces = this.members?.replaces ?? 0;
    for (const b of this.boards) {
      for (const p of b.processors) if (p.state === "running" && p.heapTop() !== p.heapTopAtBoot) this.fail("heapGrowth", `${this.boardPrefix(b)}${p.name}: heap top moved from ${p.heapTopAtBoot} to ${p.heapTop()}`);
    }
    this.result.boardEvents = this.clock.scheduledCount;
    this.options.detach?.(board);
    for (const b of this.boards) b.powerOff();
    this.result.faultsInjected = this.injector.injected + this.result.memberPulls;
    this.result.faultsByKind = { ...this.injector.byKind, member: this.result.memberPulls };
    this.result.boardTimeNs = board.clock.nowNs;
    this.result.traceEvents = this.trace.count;
    this.result.traceHash = this.trace.digest();
    return this.result;
  }

  // Boot, the workload, the quiet period and the checks; a RunStopped (the progress watchdog) cuts it short.
  private *runPhases(): Generator<void> {
    const { board } = this;
    yield* this.awaitServing();
    const initiators = this.options.initiators ?? (this.cluster === undefined ? 2 : this.boards.length);
    const perInitiator = this.options.sessionsPerInitiator ?? 2;
    for (let i = 0; i < initiators; i++) {
      for (let s = 0; s < perInitiator; s++) {
        // A cluster's initiator i: boards i, i + 1, ... of those presenting the target; session s through the
        // board's NIC port s (mod its portals: a board of several portals gets sessions on each, docs/cluster.md,
        // "Several NIC ports"; one with a single portal, port 0 as before).
        const presenters = this.cluster?.presenters ?? [0];
        const on = this.boards[presenters[(i + s) % presenters.length]!]!;
        const session: Session = new Session({
          board: on, network: on.network as LoopbackBackend, targetName: this.plan.target, initiatorName: `iqn.2026-11.org.wasm-iop:sim-initiator-${i}`,
          isid: 0x100 * (i + 1) + s, queueDepth: this.options.queueDepth ?? 4, portal: this.cluster === undefined ? 0 : s % Math.max(1, on.spec.portals.length),
          onReady: () => this.onReady(session),
          onLost: (reason) => this.onLost(session, reason),
          onViolation: (message) => this.fail("protocolErrors", `session ${session === undefined ? "?" : this.sessions.indexOf(session)}: ${message}`),
        });
        this.sessions.push(session);
        this.notReadySince.set(session, board.clock.nowNs);
        session.connect();
      }
    }
    for (let n = 0; n < (this.options.nbdSessions ?? 0); n++) {
      const session: NbdSession = new NbdSession({
        board, network: board.network as LoopbackBackend, portal: SIM_NBD_PORTAL, exports: this.plan.luns.map((l) => simNbdExport(l.lun)),
        queueDepth: this.options.queueDepth ?? 4,
        onReady: () => this.onReady(session),
        onLost: (reason) => this.onLost(session, reason),
        onViolation: (message) => this.fail("protocolErrors", `NBD session ${this.sessions.indexOf(session)}: ${message}`),
      });
      this.sessions.push(session);
      this.notReadySince.set(session, board.clock.nowNs);
      session.connect();
    }
    board.clock.afterOutside(WATCH_PERIOD_NS, () => this.watch());
    while (!this.finished && board.clock.nowNs < RUN_LIMIT_NS) yield* this.runFor(100_000_000);
    if (!this.finished) this.fail("hangs", `the run did not finish within ${RUN_LIMIT_NS / 1e9} s of board time`);
    // Quiet period: whatever a lost connection left in the target lands (or not) before the disks are checked.
    yield* this.runFor(SETTLE_NS + 1_000_000_000);
    this.checkDisks();
    if (this.plan.raid.length > 0) {
      this.members?.replaceAll();
      yield* this.awaitOptimal();
      this.checkReplicaCopies();
      yield* this.checkVolumes();
    }
  }

  // Every WATCH_PERIOD_NS, in every phase: past the event budget the board is spinning; the run stops (a hang).
  private watchProgress(): void {
    const budget = (BOARD_EVENTS_FLOOR + BOARD_EVENTS_PER_OP_MAX * this.options.ops) * this.boards.length;
    const events = this.clock.scheduledCount;
    if (events > budget) {
      this.fail("hangs", `the board ran ${events} events by ${(this.clock.nowNs / 1e9).toFixed(6)} s of board time, over the budget of ${budget}: it spins (board time crawls); the run is stopped`);
      throw new RunStopped();
    }
    this.clock.afterOutside(WATCH_PERIOD_NS, () => this.watchProgress());
  }

  // --- The board ---

  // board.runFor(durationNs) in steps of at most STEP_EVENTS events: the same events in the same order.
  private *runFor(durationNs: number): Generator<void> {
    const untilNs = this.clock.nowNs + durationNs;
    while (!this.clock.advanceToAtMost(untilNs, STEP_EVENTS)) yield;
    yield;
  }

  private *awaitServing(): Generator<void> {
    const limit = this.clock.nowNs + BOOT_LIMIT_NS;
    while (this.serving.size < this.boards.length && this.clock.nowNs < limit) yield* this.runFor(5_000_000);
    if (this.serving.size < this.boards.length) throw new Error(`seed ${this.options.seed}: the firmware did not serve iSCSI within ${BOOT_LIMIT_NS / 1e9} s of board time`);
  }

  private onConsole(board: Board, processor: string, fd: 1 | 2, line: string): void {
    if (line.startsWith("tts: serving")) this.serving.add(board);
    this.control.observeConsole(processor, line);
    if (board === this.board) {
      // A cluster's volumes are the first board's (another board's volume 0 is another volume).
      this.volumeStates.observe(processor, line);
      this.observeResync(line);
    }
    if (this.result.thinFullNs === null && / event=full/.test(line) && line.startsWith("volume ")) this.result.thinFullNs = this.clock.nowNs;
    this.options.onConsole?.(`${(this.clock.nowNs / 1e9).toFixed(6)} [${this.boardPrefix(board)}${processor}] ${line}`);
  }

  /** "a/" before a processor's name in a cluster run, nothing on a single board. */
  private boardPrefix(board: Board): string {
    return this.cluster === undefined ? "" : `${board.name}/`;
  }

  private onStop(board: Board, processor: string, report: PanicReport | undefined): void {
    if (report === undefined) return;
    if (report.kind !== "fault") this.fail("panics", `${this.boardPrefix(board)}${processor} stopped: ${report.kind}, task ${report.task}, code ${report.code}: ${report.message}`);
    if (this.resetPending.has(board)) return;
    this.resetPending.add(board);
    // As `run --reset-on-panic` does: the board resets; in-flight commands fail with their connections.
    this.clock.afterOutside(RESET_DELAY_NS, () => {
      this.resetPending.delete(board);
      if (this.clusterFaults?.off.has(board) === true) return; // powered off meanwhile: it boots when it comes back
      this.result.resets += 1;
      const now = this.clock.nowNs;
      // On a single board nothing lands after the reset. In a cluster a write's parts out to other boards' disks
      // still may: the writes stay open until they settle.
      if (this.cluster === undefined) {
        for (const record of this.open) record.endNs = Math.min(record.endNs, now);
        this.open.clear();
      }
      this.serving.delete(board);
      board.ingress.note("sim", "reset", { after: `${this.boardPrefix(board)}${processor}` });
      board.reset();
    });
  }

  // --- Sessions ---

  private onReady(session: SimSession): void {
    this.result.logins += 1;
    this.notReadySince.delete(session);
    this.fill(session);
  }

  private onLost(session: SimSession, reason: string): void {
    this.board.ingress.note("sim", "lost", { session: this.sessions.indexOf(session), reason });
    if (!this.notReadySince.has(session)) this.notReadySince.set(session, this.clock.nowNs);
    if (this.finishedIssuing()) return this.checkFinished();
    this.clock.afterOutside(RECONNECT_NS, () => {
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

  private fill(session: SimSession): void {
    while (session.canSubmit && !this.finishedIssuing()) this.issue(session);
  }

  // --- The workload ---

  private issue(session: SimSession): void {
    const w = this.workload;
    const draw = w.intBelow(100);
    const kind = draw < 45 ? "read" : draw < 90 ? "write" : "sync";
    const lun = w.intBelow(this.shadows.length);
    const size = w.intBelow(100);
    const blocks = kind === "sync" ? (w.intBelow(2) === 0 ? 0 : 1 + w.intBelow(TRANSFER_BLOCKS_MAX)) : size < 70 ? 1 + w.intBelow(16) : size < 95 ? 17 + w.intBelow(112) : 129 + w.intBelow(TRANSFER_BLOCKS_MAX - 128);
    const hot = w.intBelow(10) < 6;
    const span = hot ? HOT_BLOCKS : this.shadows[lun]!.blockCount;
    const lba = (hot ? this.plan.luns[lun]!.hotBase ?? 0 : 0) + w.intBelow(span - Math.max(blocks, 1) + 1);
    const fua = w.intBelow(4) === 0;
    const now = this.clock.nowNs;
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
    this.members?.onIssued(this.opsIssued);
  }

  private writeDone(session: SimSession, task: Task, record: WriteRecord, outcome: Outcome): void {
    const now = this.clock.nowNs;
    const shadow = this.shadows[task.lun]!;
    if (outcome.kind === "good") {
      shadow.ended(record, now, true);
      this.open.delete(record);
    } else if (outcome.kind === "status") {
      shadow.ended(record, Math.min(record.endNs, now), false);
      this.open.delete(record);
      const thin = this.plan.luns[task.lun]!.thin;
      if (thin !== undefined && outcomeName(outcome) === SPACE_ALLOCATION_FAILED) {
        // The thin layer writes a request's chunks in order and stops at the one it cannot allocate: the write's
        // last chunk is never written (a write within one chunk changes nothing).
        this.result.spaceRefused += 1;
        const lastChunkLba = Math.max(task.lba, Math.floor((task.lba + task.blocks - 1) / thin.chunkBlocks) * thin.chunkBlocks);
        shadow.retract(record, lastChunkLba, task.lba + task.blocks - lastChunkLba);
      }
    } else {
      shadow.ended(record, Math.min(record.endNs, now + SETTLE_NS), false); // stays open: a reset can end it sooner
    }
    this.ended(session, outcome);
  }

  private readDone(session: SimSession, task: Task, outcome: Outcome): void {
    this.reads.delete(task);
    if (outcome.kind === "good") {
      const shadow = this.shadows[task.lun]!;
      const now = this.clock.nowNs;
      for (let b = 0; b < task.blocks; b++) {
        const block = task.data.subarray(b * BLOCK_BYTES, (b + 1) * BLOCK_BYTES);
        const verdict = shadow.check(task.lba + b, block, task.issueNs, now);
        if (verdict !== "ok") {
          this.fail("wrongReads", `${session instanceof NbdSession ? "NBD " : ""}READ LUN ${task.lun} LBA ${task.lba}+${task.blocks} (issued ${task.issueNs}): block ${task.lba + b} is ${verdict} (holds write ${new DataView(block.buffer, block.byteOffset).getUint32(0, true)})`);
          break; // one wrong read, however many of its blocks are wrong
        }
      }
    }
    this.ended(session, outcome);
  }

  private ended(session: SimSession, outcome: Outcome): void {
    this.opsEnded += 1;
    if (outcome.kind === "good") this.result.opsGood += 1;
    else {
      this.result.opsFailed += 1;
      const why = outcomeName(outcome);
      this.result.failedBy[why] = (this.result.failedBy[why] ?? 0) + 1;
    }
    if (this.finishedIssuing()) return this.checkFinished();
    if (session.state === "full") this.clock.afterOutside(this.workload.intBelow(THINK_NS_MAX), () => this.fill(session));
  }

  private checkFinished(): void {
    if (this.finished || this.opsEnded < this.options.ops) return;
    this.finished = true;
    this.board.ingress.note("sim", "finished", { ops: this.opsEnded });
  }

  private prune(): void {
    let horizon = this.clock.nowNs;
    for (const read of this.reads) horizon = Math.min(horizon, read.issueNs);
    for (const shadow of this.shadows) shadow.prune(horizon);
  }

  // Every WATCH_PERIOD_NS: a command unanswered, or a session not logged in, for HANG_NS is a hang; the session is
  // dropped so the run goes on (its commands count as failed).
  private watch(): void {
    if (this.finished) return;
    const now = this.clock.nowNs;
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
    this.clock.afterOutside(WATCH_PERIOD_NS, () => this.watch());
  }

  // --- After the run ---

  private checkDisks(): void {
    const block = new Uint8Array(BLOCK_BYTES);
    this.shadows.forEach((shadow, lun) => {
      const name = this.plan.luns[lun]!.disk;
      if (name === undefined) return; // a volume: read back over iSCSI (checkVolumes)
      for (const lba of [...shadow.writtenBlocks()].sort((a, b) => a - b)) {
        const disk = this.boards[this.cluster?.ownerOf(lun, lba) ?? 0]!.disk(name)!; // a cluster's: the page owner's
        disk.read(lba * BLOCK_BYTES, block);
        const verdict = shadow.check(lba, block, Infinity, Infinity);
        if (verdict !== "ok") this.fail("lostWrites", `after the run, LUN ${lun} block ${lba} is ${verdict} (holds write ${new DataView(block.buffer).getUint32(0, true)})`);
      }
    });
  }

  // A cluster's replicas, optimal now: both copies (on two boards) hold the same data area, block for block.
  private checkReplicaCopies(): void {
    for (const r of this.cluster?.replicaCopies ?? []) {
      if (!this.isOptimal(r.volume)) continue; // said already (awaitOptimal)
      const [a, b] = r.copies.map((c) => {
        const disk = this.boards[c.board]!.disk(c.disk)!;
        const bytes = new Uint8Array(disk.sizeBytes - REPLICA_METADATA_BYTES);
        disk.read(REPLICA_METADATA_BYTES, bytes);
        return bytes;
      }) as [Uint8Array, Uint8Array];
      const length = Math.min(a.length, b.length);
      for (let at = 0; at < length; at += BLOCK_BYTES) {
        if (Buffer.compare(a.subarray(at, at + BLOCK_BYTES), b.subarray(at, at + BLOCK_BYTES)) !== 0) {
          this.fail("lostWrites", `after the run, replica ${r.volume}'s copies differ at block ${at / BLOCK_BYTES} (${this.boards[r.copies[0]!.board]!.name}:${r.copies[0]!.disk} and ${this.boards[r.copies[1]!.board]!.name}:${r.copies[1]!.disk})`);
          break;
        }
      }
    }
  }

  // The firmware prints `volumes: NAME: stopped with writes in flight; ...` when it loads a RAID-5 whose write-intent
  // bitmap has dirty regions, and `volumes: volume N resynchronized` once they agree again (assembly/cta/rebuild.ts).
  private observeResync(line: string): void {
    const stopped = /^volumes: (\S+): stopped with writes in flight/.exec(line);
    if (stopped !== null) this.resyncPending.add(stopped[1]!);
    const done = /^volumes: volume (\d+) resynchronized/.exec(line);
    if (done !== null) {
      const state = this.volumeStates.list().find((v) => v.index === Number(done[1]));
      if (state !== undefined) this.resyncPending.delete(String(state.record.name));
    }
  }

  private isOptimal(volume: string): boolean {
    const state = this.volumeStates.list().find((v) => v.record.name === volume);
    return state !== undefined && state.record.state === "optimal";
  }

  // Every RAID volume optimal again: the rebuilds of the run (spare, replaced disks, members that timed out and
  // answered again) finish within OPTIMAL_WAIT_NS of board time, or the volume says why not.
  private *awaitOptimal(): Generator<void> {
    const limit = this.clock.nowNs + OPTIMAL_WAIT_NS;
    const waiting = () => this.plan.raid.filter((r) => !this.isOptimal(r.volume));
    while (waiting().length > 0 && this.clock.nowNs < limit) yield* this.runFor(100_000_000);
    for (const r of waiting()) {
      const state = this.volumeStates.list().find((v) => v.record.name === r.volume);
      this.fail("volumesNotOptimal", `${r.volume} not optimal ${OPTIMAL_WAIT_NS / 1e9} s after the run: ${state?.line ?? "no state line"}`);
    }
  }

  // Every block a write touched on a volume LUN, read back over a fresh session (no faults now) and checked as the
  // disk LUNs' images are: what a block holds must be a write not superseded at all.
  private *checkVolumes(): Generator<void> {
    const luns = this.plan.luns.filter((l) => l.disk === undefined);
    const reads: { lun: number; lba: number; blocks: number; tries: number }[] = [];
    for (const l of luns) {
      const lbas = [...this.shadows[l.lun]!.writtenBlocks()].sort((a, b) => a - b);
      for (let i = 0; i < lbas.length;) {
        let n = 1;
        while (i + n < lbas.length && lbas[i + n] === lbas[i]! + n && n < READBACK_BLOCKS_MAX) n++;
        reads.push({ lun: l.lun, lba: lbas[i]!, blocks: n, tries: 0 });
        i += n;
      }
    }
    let pending = 0;
    let ready = false;
    let lost = false;
    const session: Session = new Session({
      board: this.board, network: this.board.network as LoopbackBackend, targetName: this.plan.target, initiatorName: "iqn.2026-11.org.wasm-iop:sim-readback",
      isid: 0x900, queueDepth: 4, onReady: () => { ready = true; next(); }, onLost: () => { lost = true; },
      onViolation: (message) => this.fail("protocolErrors", `read-back session: ${message}`),
    });
    const next = (): void => {
      while (session.canSubmit && reads.length > 0) {
        const read = reads.shift()!;
        const data = new Uint8Array(read.blocks * BLOCK_BYTES);
        pending += 1;
        session.submit({
          kind: "read", lun: read.lun, lba: read.lba, blocks: read.blocks, fua: false, data, issueNs: this.clock.nowNs,
          done: (outcome) => {
            pending -= 1;
            if (outcome.kind === "good") this.checkReadBack(read.lun, read.lba, data);
            else if (++read.tries < READBACK_TRIES_MAX) reads.push(read);
            else this.fail("lostWrites", `after the run, LUN ${read.lun} blocks ${read.lba}+${read.blocks} could not be read: ${outcomeName(outcome)}`);
            next();
          },
        });
      }
    };
    session.connect();
    const limit = this.clock.nowNs + HANG_NS;
    while (!lost && (!ready || reads.length > 0 || pending > 0) && this.clock.nowNs < limit) yield* this.runFor(10_000_000);
    if (lost || reads.length > 0 || pending > 0) this.fail("hangs", `read-back after the run: ${ready ? "" : "no login, "}${reads.length + pending} reads left${lost ? ", connection lost" : ""}`);
    session.abort("read-back done");
  }

  private checkReadBack(lun: number, lba: number, data: Uint8Array): void {
    const shadow = this.shadows[lun]!;
    for (let b = 0; b < data.length / BLOCK_BYTES; b++) {
      const block = data.subarray(b * BLOCK_BYTES, (b + 1) * BLOCK_BYTES);
      const verdict = shadow.check(lba + b, block, Infinity, Infinity);
      if (verdict !== "ok") this.fail("lostWrites", `after the run, LUN ${lun} block ${lba + b} is ${verdict} (holds write ${new DataView(block.buffer, block.byteOffset).getUint32(0, true)})`);
    }
  }

  private fail(counter: "lostWrites" | "wrongReads" | "hangs" | "protocolErrors" | "panics" | "heapGrowth" | "volumesNotOptimal", message: string): void {
    this.result[counter] += 1;
    const line = `${(this.clock.nowNs / 1e9).toFixed(6)} s: ${counter}: ${message}`;
    this.board.ingress.note("sim", "failure", { counter, message });
    if (this.result.failures.length < FAILURES_KEPT) this.result.failures.push(line);
  }
}

/** How a command failed, as failedBy counts it: `check KK/AA/QQ` (sense key, ASC, ASCQ), `status 0xNN` or `lost`. */
function outcomeName(outcome: Outcome): string {
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  if (outcome.kind === "good") return "good";
  return outcome.kind === "lost" ? "lost" : outcome.status === 2 ? `check ${hex(outcome.senseKey)}/${hex(outcome.asc)}/${hex(outcome.ascq)}` : `status 0x${hex(outcome.status)}`;
}

/**
 * True when a result shows no lost write, wrong read, hang, protocol error, unexpected panic or heap growth, and
 * every RAID volume ended optimal.
 */
export function passed(result: SimulationResult): boolean {
  return result.lostWrites + result.wrongReads + result.hangs + result.protocolErrors + result.panics + result.heapGrowth + result.volumesNotOptimal === 0;
}
