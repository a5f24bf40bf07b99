// The fuzzing loop: restore the snapshot, run an input, keep it if it reached new coverage, save and minimize what an
// oracle caught; and the replayer, which runs one reproducer with the bus trace on. docs/fuzzing.md explains both.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Prng } from "../../host/sim/prng.ts";
import { type Finding, FindingError, FuzzBoard } from "./harness.ts";
import { mutate } from "./mutate.ts";
import { type FuzzTarget, InputReader } from "./target.ts";
import { busTarget } from "./targets/bus.ts";
import { iscsiTarget } from "./targets/iscsi.ts";
import { muTarget } from "./targets/mu.ts";
import { scsiTarget } from "./targets/scsi.ts";

export const TARGETS: readonly FuzzTarget<never>[] = [busTarget, muTarget, iscsiTarget, scsiTarget] as unknown as FuzzTarget<never>[];

export function targetNamed(name: string): FuzzTarget<object> | undefined {
  return TARGETS.find((t) => t.name === name) as FuzzTarget<object> | undefined;
}

const INPUT_BYTES_MAX = 1024;
const CORPUS_MAX = 4096;

/** A target's board, booted, prepared and snapshotted: run inputs on it with exec(). */
export class Runner {
  readonly fuzz: FuzzBoard;
  private readonly state: object;

  constructor(readonly target: FuzzTarget<object>, firmware: WebAssembly.Module, readonly seed: number, trace = false) {
    this.fuzz = new FuzzBoard({ ...target.board, firmware, seed, trace });
    this.state = target.prepare(this.fuzz);
    this.fuzz.takeSnapshot([this.state], target.constants?.(this.state) ?? []);
  }

  /** Runs one input from the snapshot; the finding it hit, if any. */
  exec(input: Uint8Array, log: (line: string) => void = () => {}): Finding | undefined {
    this.fuzz.restore();
    try {
      this.target.run(this.fuzz, this.state, new InputReader(input), log);
      return undefined;
    } catch (error) {
      if (error instanceof FindingError) return error.finding;
      const e = error as Error;
      const where = (e.stack ?? "").split("\n").slice(1, 3).map((l) => l.trim()).join(" ");
      return { kind: "host-exception", message: `${e.name}: ${e.message} ${where}` };
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
  const corpus: Uint8Array[] = [];
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
    if (fresh && keepIfNew && corpus.length < CORPUS_MAX) {
      corpus.push(input);
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
    corpus.push(input);
  }
  const deadline = started + options.seconds * 1000;
  const status = (): CampaignStatus => {
    const seconds = (performance.now() - started) / 1000;
    return { target: target.name, seed: options.seed, seconds, execs, execsPerSecond: Math.round(execs / Math.max(seconds, 1e-3)), edges: runner.fuzz.edges, corpusSize: corpus.length, findings };
  };
  for (;;) {
    // A batch of about 50 ms, then a turn of the event loop.
    const batchEnd = performance.now() + 50;
    while (performance.now() < batchEnd) {
      const parent = corpus[corpus.length > 8 && rng.intBelow(3) === 0 ? corpus.length - 1 - rng.intBelow(8) : rng.intBelow(corpus.length)]!;
      const other = corpus[rng.intBelow(corpus.length)]!;
      consider(mutate(parent, other, target.dictionary, rng, INPUT_BYTES_MAX), true);
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
