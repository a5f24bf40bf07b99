// The fuzzing loop: restore the snapshot, run an input, keep it if it reached new coverage, save and minimize what an
// oracle caught; and the replayer, which runs one reproducer with the bus trace on. docs/fuzzing.md explains both.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Board } from "../../host/board/board.ts";
import { Prng } from "../../host/sim/prng.ts";
import { type Finding, FindingError, FuzzBoard } from "./harness.ts";
import { COVERAGE_MAP_BYTES } from "./instrument.ts";
import { mutate } from "./mutate.ts";
import { type FuzzTarget, InputReader } from "./target.ts";
import { busTarget } from "./targets/bus.ts";
import { iscsiTarget } from "./targets/iscsi.ts";
import { muTarget } from "./targets/mu.ts";
import { nbdTarget } from "./targets/nbd.ts";
import { nvmeTarget } from "./targets/nvme.ts";
import { scsiTarget } from "./targets/scsi.ts";
import { nvramTarget } from "./targets/nvram.ts";
import { xorTarget } from "./targets/xor.ts";
import { fabricRdmaTarget, fabricTarget } from "./targets/fabric.ts";
import { replicaTarget } from "./targets/replica.ts";

export const TARGETS: readonly FuzzTarget<never>[] = [busTarget, muTarget, iscsiTarget, scsiTarget, xorTarget, nvramTarget, nvmeTarget, nbdTarget, fabricTarget, fabricRdmaTarget, replicaTarget] as unknown as FuzzTarget<never>[];

export function targetNamed(name: string): FuzzTarget<object> | undefined {
  return TARGETS.find((t) => t.name === name) as FuzzTarget<object> | undefined;
}

const INPUT_BYTES_MAX = 1024;
const CORPUS_MAX = 4096;
const RESET_COST_EVENTS = 200;
// AFL skips an input that is not a champion 95 to 99 times in 100.
const PICK_ANY_ONE_IN = 32;
const BURST_EXECS = 64;

/** A target's board, booted, prepared and snapshotted: run inputs on it with exec(). */
export class Runner {
  readonly fuzz: FuzzBoard;
  private readonly state: object;

  constructor(readonly target: FuzzTarget<object>, firmware: WebAssembly.Module, readonly seed: number, trace = false) {
    this.fuzz = new FuzzBoard({ ...target.board, firmware, seed, trace });
    this.state = target.prepare(this.fuzz);
    this.fuzz.takeSnapshot([this.state], target.constants?.(this.state) ?? []);
  }

  /**
   * What the last input cost, measured deterministically (wall time is not): the board events it scheduled, and for
   * each power cycle RESET_COST_EVENTS more (a reboot and the restore after it, ~0.9 ms, cost as much host time as
   * roughly that many events).
   */
  cost = 0;

  /**
   * Runs one input from the snapshot; the finding it hit, if any. `attach` is called once the board is back at the
   * snapshot, before the input runs (a recording's or a replay's observers of the door: the restore drops any).
   */
  exec(input: Uint8Array, log: (line: string) => void = () => {}, attach?: (board: Board) => void): Finding | undefined {
    this.fuzz.restore();
    const { board } = this.fuzz;
    attach?.(board);
    const events = board.clock.scheduledCount;
    const resets = board.resetCount;
    try {
      this.target.run(this.fuzz, this.state, new InputReader(input), log);
      return undefined;
    } catch (error) {
      if (error instanceof FindingError) return error.finding;
      const e = error as Error;
      const where = (e.stack ?? "").split("\n").slice(1, 3).map((l) => l.trim()).join(" ");
      return { kind: "host-exception", message: `${e.name}: ${e.message} ${where}` };
    } finally {
      this.cost = board.clock.scheduledCount - events + (board.resetCount - resets) * RESET_COST_EVENTS;
    }
  }
}

/**
 * The corpus and which input to mutate next, as AFL schedules its queue:
 * - Every counter has a champion, the cheapest kept input that hits it (cost: the input's board events, see
 *   Runner.cost, times its length). The champions together cover everything the corpus covers, with a small
 *   fraction of its inputs and its cost, and all but one pick in PICK_ANY_ONE_IN is a champion.
 * - Among the champions, quick ones are picked more often: AFL's energy by speed, from a tenth to three times the
 *   share of an input of average cost.
 * - A newly kept input is the parent of the next BURST_EXECS inputs, whatever its cost: what is one step deeper
 *   than the corpus (one more command in flight during a hang) is often found from the input that just went deeper.
 * Without the first two, time went to the long inputs kept first (the corpus is mostly long ones); without the third,
 * states reached only by long inputs were lost (docs/fuzzing.md, "Scheduling").
 */
export class Corpus {
  readonly inputs: Uint8Array[] = [];
  private readonly costs: number[] = []; // Runner.cost of each input, at least 1
  private readonly counters: Uint32Array[] = [];
  private readonly champion = new Int32Array(COVERAGE_MAP_BYTES).fill(-1);
  private favored: number[] = [];
  private energyEnds: number[] = []; // running sums of the champions' energies, for a weighted pick
  private energyTotal = 0;
  private stale = false;
  private readonly bursts: { index: number; left: number }[] = [];

  get size(): number {
    return this.inputs.length;
  }

  /** How many inputs are champions now. */
  get favoredCount(): number {
    this.cull();
    return this.favored.length;
  }

  /** Keeps an input, with the counters it hit (FuzzBoard.hits()) and its cost (Runner.cost); `burst`: make it the
   * parent of the next BURST_EXECS inputs (a campaign's own finds; not the seeds and files it starts from). */
  add(input: Uint8Array, hits: Uint32Array, cost: number, burst: boolean): void {
    const index = this.inputs.length;
    this.inputs.push(input);
    this.costs.push(Math.max(cost, 1));
    this.counters.push(hits);
    const score = this.score(index);
    for (const at of hits) {
      const holder = this.champion[at]!;
      if (holder < 0 || score < this.score(holder)) this.champion[at] = index;
    }
    this.stale = true; // the champions may have changed, and the mean cost the energies follow has
    if (burst) this.bursts.push({ index, left: BURST_EXECS });
  }

  // Of two inputs that hit a counter, the one with the smaller score champions it.
  private score(index: number): number {
    return this.costs[index]! * Math.max(this.inputs[index]!.length, 1);
  }

  /** The input to mutate next. */
  parent(rng: Prng): Uint8Array {
    while (this.bursts.length > 0) {
      const head = this.bursts[0]!;
      if (head.left-- > 0) return this.inputs[head.index]!;
      this.bursts.shift();
    }
    return this.pick(rng);
  }

  /** An input to splice from, or to mutate when no burst is under way. */
  pick(rng: Prng): Uint8Array {
    this.cull();
    if (this.favored.length === 0 || rng.intBelow(PICK_ANY_ONE_IN) === 0) return this.inputs[rng.intBelow(this.inputs.length)]!;
    const r = rng.intBelow(this.energyTotal);
    let lo = 0;
    let hi = this.energyEnds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.energyEnds[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return this.inputs[this.favored[lo]!]!;
  }

  // The champions, taken greedily by counter (one whose counters others already cover is left out), and their
  // energies: AFL's ladder, by how the input's cost compares with the corpus's mean.
  private cull(): void {
    if (!this.stale) return;
    this.stale = false;
    const covered = new Uint8Array(COVERAGE_MAP_BYTES);
    const chosen = new Uint8Array(this.inputs.length);
    this.favored = [];
    for (let at = 0; at < COVERAGE_MAP_BYTES; at++) {
      const holder = this.champion[at]!;
      if (holder < 0 || covered[at] !== 0 || chosen[holder] !== 0) continue;
      chosen[holder] = 1;
      this.favored.push(holder);
      for (const c of this.counters[holder]!) covered[c] = 1;
    }
    const mean = this.costs.reduce((sum, c) => sum + c, 0) / this.costs.length;
    this.energyEnds = [];
    this.energyTotal = 0;
    for (const index of this.favored) {
      const c = this.costs[index]!;
      const energy = c * 0.1 > mean ? 10 : c * 0.25 > mean ? 25 : c * 0.5 > mean ? 50 : c * 0.75 > mean ? 75
        : c * 4 < mean ? 300 : c * 3 < mean ? 200 : c * 2 < mean ? 150 : 100;
      this.energyTotal += energy;
      this.energyEnds.push(this.energyTotal);
    }
  }
}

/** What makes two findings the same bug: the kind and the message with its numbers taken out. */
export function signature(finding: Finding): string {
  return `${finding.kind}: ${finding.message.replace(/0x[0-9a-f]+|\d+/gi, "#")}`;
}

// ---- Reproducer files: "WIOPFUZ1", target name, seed, input, then the finding as JSON. ----

const MAGIC = "WIOPFUZ1";

export interface Reproducer {
  target: string;
  seed: number;
  input: Uint8Array;
  finding?: Finding;
}

export function encodeReproducer(r: Reproducer): Uint8Array {
  const name = Buffer.from(r.target, "utf8");
  const note = Buffer.from(JSON.stringify(r.finding ?? null), "utf8");
  const out = Buffer.alloc(8 + 1 + name.length + 4 + 4 + r.input.length + note.length);
  let at = out.write(MAGIC, 0, "latin1");
  at = out.writeUInt8(name.length, at);
  at += name.copy(out, at);
  at = out.writeUInt32LE(r.seed >>> 0, at);
  at = out.writeUInt32LE(r.input.length, at);
  at += Buffer.from(r.input).copy(out, at);
  note.copy(out, at);
  return out;
}

export function decodeReproducer(bytes: Uint8Array, file: string): Reproducer {
  const b = Buffer.from(bytes);
  if (b.length < 17 || b.toString("latin1", 0, 8) !== MAGIC) throw new Error(`${file}: not a fuzzing reproducer (expected the magic "${MAGIC}")`);
  const nameBytes = b.readUInt8(8);
  const target = b.toString("utf8", 9, 9 + nameBytes);
  let at = 9 + nameBytes;
  const seed = b.readUInt32LE(at);
  const length = b.readUInt32LE(at + 4);
  at += 8;
  if (at + length > b.length) throw new Error(`${file}: input length ${length} runs past the end of the file`);
  const input = new Uint8Array(b.subarray(at, at + length));
  const note = b.toString("utf8", at + length);
  const finding = note === "" ? undefined : (JSON.parse(note) as Finding | null) ?? undefined;
  return { target, seed, input, finding };
}

// ---- The campaign ----

export interface CampaignOptions {
  target: FuzzTarget<object>;
  firmware: WebAssembly.Module;
  seed: number;
  seconds: number;
  /** Stop after this many execs (tests), whatever the time. */
  execsMax?: number;
  /** Inputs to start from and where new coverage is kept. */
  corpusDir?: string;
  /** Where reproducers are written (none when absent). */
  findingsDir?: string;
  /** Called about every 2 s of wall time, and at the end. */
  progress?: (status: CampaignStatus) => void;
  /** Set to stop early (SIGINT). */
  stop?: { requested: boolean };
}

export interface CampaignStatus {
  target: string;
  seed: number;
  seconds: number;
  execs: number;
  execsPerSecond: number;
  edges: number;
  corpusSize: number;
  findings: FindingReport[];
}

export interface FindingReport extends Finding {
  signature: string;
  file?: string;
  inputBytes: number;
}

/** Runs a campaign; resolves to its summary. Yields to the event loop between batches so signals get through. */
export async function campaign(options: CampaignOptions): Promise<CampaignStatus> {
  const { target } = options;
  const runner = new Runner(target, options.firmware, options.seed);
  const rng = new Prng(`fuzz/${target.name}/${options.seed}`);
  const corpus = new Corpus();
  const known = new Set<string>();
  const findings: FindingReport[] = [];
  const started = performance.now();
  let execs = 0;
  let lastReport = started;

  const consider = (input: Uint8Array, keepIfNew: boolean): void => {
    const finding = runner.exec(input);
    execs += 1;
    const fresh = runner.fuzz.collectCoverage();
    if (finding !== undefined) {
      const sig = signature(finding);
      if (known.has(sig)) return;
      known.add(sig);
      const minimized = minimize(runner, input, sig);
      const report: FindingReport = { ...finding, signature: sig, inputBytes: minimized.length };
      if (options.findingsDir !== undefined) {
        mkdirSync(options.findingsDir, { recursive: true });
        const name = `${target.name}-${finding.kind}-${createHash("sha256").update(sig).digest("hex").slice(0, 12)}.bin`;
        report.file = join(options.findingsDir, name);
        writeFileSync(report.file, encodeReproducer({ target: target.name, seed: options.seed, input: minimized, finding }));
      }
      findings.push(report);
      return;
    }
    if (fresh && keepIfNew && corpus.size < CORPUS_MAX) {
      corpus.add(input, runner.fuzz.hits(), runner.cost, true);
      if (options.corpusDir !== undefined) {
        mkdirSync(options.corpusDir, { recursive: true });
        writeFileSync(join(options.corpusDir, createHash("sha256").update(input).digest("hex").slice(0, 16)), input);
      }
    }
  };

  const initial = [...target.seeds];
  if (options.corpusDir !== undefined && existsSync(options.corpusDir)) {
    for (const name of readdirSync(options.corpusDir).sort()) initial.push(new Uint8Array(readFileSync(join(options.corpusDir, name))));
  }
  for (const input of initial) {
    consider(input, false);
    corpus.add(input, runner.fuzz.hits(), runner.cost, false);
  }
  const deadline = started + options.seconds * 1000;
  const status = (): CampaignStatus => {
    const seconds = (performance.now() - started) / 1000;
    return { target: target.name, seed: options.seed, seconds, execs, execsPerSecond: Math.round(execs / Math.max(seconds, 1e-3)), edges: runner.fuzz.edges, corpusSize: corpus.size, findings };
  };
  for (;;) {
    // A batch of about 50 ms, then a turn of the event loop.
    const batchEnd = performance.now() + 50;
    while (performance.now() < batchEnd) {
      consider(mutate(corpus.parent(rng), corpus.pick(rng), target.dictionary, rng, INPUT_BYTES_MAX), true);
      if (options.execsMax !== undefined && execs >= options.execsMax) break;
    }
    const now = performance.now();
    if (now - lastReport >= 2000) {
      lastReport = now;
      options.progress?.(status());
    }
    if (now >= deadline || options.stop?.requested === true || (options.execsMax !== undefined && execs >= options.execsMax)) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return status();
}

// Delta debugging over bytes: drop chunks, halving their size, while the same finding comes back. Bounded by
// MINIMIZE_EXECS_MAX execs.
const MINIMIZE_EXECS_MAX = 400;
function minimize(runner: Runner, input: Uint8Array, sig: string): Uint8Array {
  let best = input;
  let execs = 0;
  for (let chunk = Math.max(1, best.length >> 1); chunk >= 1; chunk >>= 1) {
    for (let at = 0; at < best.length && execs < MINIMIZE_EXECS_MAX; ) {
      const candidate = new Uint8Array(best.length - Math.min(chunk, best.length - at));
      candidate.set(best.subarray(0, at));
      candidate.set(best.subarray(at + chunk), at);
      execs += 1;
      const finding = runner.exec(candidate);
      if (finding !== undefined && signature(finding) === sig) best = candidate;
      else at += chunk;
    }
  }
  return best;
}

/** Replays a reproducer with the bus trace on: the trace lines of the input's run, its log, and what it found. */
export function replay(r: Reproducer, firmware: WebAssembly.Module): { finding: Finding | undefined; trace: string[]; log: string[]; console: string[] } {
  const target = targetNamed(r.target);
  if (target === undefined) throw new Error(`unknown fuzzing target "${r.target}" (targets: ${TARGETS.map((t) => t.name).join(", ")})`);
  const runner = new Runner(target, firmware, r.seed, true);
  const from = runner.fuzz.trace.lines!.length;
  const log: string[] = [];
  const finding = runner.exec(r.input, (line) => log.push(line));
  return { finding, trace: runner.fuzz.trace.lines!.slice(from), log, console: [...runner.fuzz.console] };
}
