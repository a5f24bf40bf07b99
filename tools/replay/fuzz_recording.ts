// A fuzz finding as a recording (`fuzz --replay FILE --record OUT`; docs/replay.md, "Fuzz findings"), and its replay. Its
// board starts from a snapshot the fuzzing target's own prepare() made, and the target reaches the board partly
// around the door (register reads answered with lies, DMA into a messaging unit's window, doorbells): those cannot be
// applied from the records. So the replay builds the target's board from the recorded image and seed, checks that
// its snapshot stands at the recorded place, runs the recorded input again, and checks every passage of the door
// (what came in as well as what went out) against the next record, at its place; then the end: the finding, the
// bytes sent and the trace hash of the input's run.
import { createHash, type Hash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import type { IngressObserver, IngressPosition } from "../../host/board/ingress.ts";
import { Runner, targetNamed } from "../fuzz/engine.ts";
import { RecordingError, type RecordingEnd, RecordKind, SendsDigest } from "./format.ts";
import type { Recorded, RecordStream } from "./reader.ts";
import { Recorder } from "./recorder.ts";
import { describeRecord, type ReplayOptions, type ReplayResult } from "./replay.ts";

/** Thrown from a door observer to stop the input where --until asked (the runner's exec() catches it). */
class StopHere extends Error {}

/** The end record's reason for a fuzz finding's run: what the oracles said, or that none fired. */
export function fuzzEndReason(finding: { kind: string; message: string } | undefined): string {
  return finding === undefined ? "fuzz input: no finding" : `fuzz finding ${finding.kind}: ${finding.message}`;
}

/** The trace hash of a fuzz input's run: the SHA-256 of its trace lines from the snapshot on. */
export function fuzzTraceHash(lines: readonly string[]): string {
  const hash = createHash("sha256");
  for (const line of lines) hash.update(line);
  return hash.digest("hex");
}

function seconds(ns: number): string {
  return `${(ns / 1e9).toFixed(9)} s`;
}

export function replayFuzz(options: ReplayOptions & { recording: RecordStream; tracePath?: string }): ReplayResult {
  const { recording } = options;
  const start = recording.fuzzStart!;
  const target = targetNamed(start.target);
  if (target === undefined) throw new RecordingError(`${recording.file}: fuzz start: no fuzzing target "${start.target}" in this wasm-iop`);
  const runner = new Runner(target, new WebAssembly.Module(new Uint8Array(options.firmware)), start.seed, true);
  const lines = runner.fuzz.trace.lines!;
  const sentHash: Hash = createHash("sha256");
  const sends = new SendsDigest();
  let divergence: string | undefined;
  let stoppedBefore: string | undefined;
  let applied = 0;
  let from = 0;
  const diverge = (message: string) => {
    divergence ??= message;
  };
  // Every passage: the next record must be of this kind, at this place, with these fields.
  const check = (at: IngressPosition, kind: RecordKind, actual: string, same: (r: Recorded) => boolean) => {
    if (divergence !== undefined || stoppedBefore !== undefined) return;
    const expected = recording.peek();
    if (expected !== undefined && options.untilIndex !== undefined && expected.index >= options.untilIndex) {
      stoppedBefore = describeRecord(expected);
      throw new StopHere();
    }
    if (expected === undefined || expected.kind !== kind || expected.at.eventCount !== at.eventCount || expected.at.timeNs !== at.timeNs || !same(expected)) {
      diverge(`expected ${expected === undefined ? "nothing more" : describeRecord(expected)}; the board ${actual} at ${seconds(at.timeNs)}, board event ${at.eventCount}`);
      return;
    }
    if (kind !== RecordKind.Sent && kind !== RecordKind.BoardClosed) applied += 1;
    recording.advance();
  };
  const json = (value: unknown) => JSON.stringify(value);
  const checker: IngressObserver = {
    opened: (at, portal, connection) => check(at, RecordKind.Opened, `had a connection to portal ${portal} (${connection === undefined ? "refused" : `connection ${connection}`})`,
      (r) => r.kind === RecordKind.Opened && r.portal === portal && r.connection === connection),
    received: (at, connection, bytes) => check(at, RecordKind.Received, `received ${bytes.length} bytes on connection ${connection}, crc 0x${crc32(bytes).toString(16).padStart(8, "0")}`,
      (r) => r.kind === RecordKind.Received && r.connection === connection && Buffer.from(r.bytes).equals(Buffer.from(bytes))),
    peerClosed: (at, connection) => check(at, RecordKind.PeerClosed, `saw the client close connection ${connection}`, (r) => r.kind === RecordKind.PeerClosed && r.connection === connection),
    control: (at, request) => check(at, RecordKind.Control, `took control request ${json(request)}`, (r) => r.kind === RecordKind.Control && json(r.request) === json(request)),
    reset: (at) => check(at, RecordKind.Reset, "was reset", (r) => r.kind === RecordKind.Reset),
    fault: (at, fault) => check(at, RecordKind.Fault, `had fault ${json(fault)} injected`, (r) => r.kind === RecordKind.Fault && json(r.fault) === json(fault)),
    note: (at, note) => check(at, RecordKind.Note, `had note ${json(note)}`, (r) => r.kind === RecordKind.Note && json(r.note) === json(note)),
    sent: (at, connection, bytes) => {
      sentHash.update(bytes);
      const crc = crc32(bytes);
      sends.add(connection, bytes.length, crc);
      check(at, RecordKind.Sent, `sent ${bytes.length} bytes on connection ${connection}, crc 0x${crc.toString(16).padStart(8, "0")}`,
        (r) => r.kind === RecordKind.Sent && r.connection === connection && r.lengthBytes === bytes.length && r.crc === crc);
    },
    boardClosed: (at, connection) => check(at, RecordKind.BoardClosed, `closed connection ${connection}`, (r) => r.kind === RecordKind.BoardClosed && r.connection === connection),
  };
  const board = runner.fuzz.board;
  const finding = runner.exec(Buffer.from(start.input, "base64"), () => {}, (b) => {
    const at = b.ingress.position;
    if (at.eventCount !== start.snapshot.eventCount || at.timeNs !== start.snapshot.timeNs) {
      diverge(`the fuzz target's snapshot stands at ${seconds(at.timeNs)}, board event ${at.eventCount}; the recording's at ${seconds(start.snapshot.timeNs)}, board event ${start.snapshot.eventCount}`);
    }
    from = lines.length;
    b.ingress.observe(checker);
    for (const observer of options.observers ?? []) b.ingress.observe(observer);
  });
  const traceLines = lines.slice(from);
  const traceHash = fuzzTraceHash(traceLines);
  if (options.tracePath !== undefined) writeFileSync(options.tracePath, traceLines.join(""));
  const end = recording.peek();
  const at = board.ingress.position;
  if (divergence === undefined && stoppedBefore === undefined) {
    if (end !== undefined && options.untilIndex !== undefined && end.index >= options.untilIndex) stoppedBefore = describeRecord(end);
    else if (end?.kind !== RecordKind.End || end.at.eventCount !== at.eventCount || end.at.timeNs !== at.timeNs) {
      diverge(`expected ${end === undefined ? "nothing more" : describeRecord(end)}; the input's run ended at ${seconds(at.timeNs)}, board event ${at.eventCount}`);
    } else {
      const e = end.end;
      const reason = fuzzEndReason(finding);
      if (reason !== e.reason) diverge(`at the end: the recording says "${e.reason}"; the replay "${reason}"`);
      else if (sends.bytes !== e.sentBytes || sends.count !== e.sends || sends.digest() !== e.sendsSha256) {
        diverge(`at the end: the recording sent ${e.sentBytes} bytes in ${e.sends} sends, digest ${e.sendsSha256.slice(0, 16)}...; the board sent ${sends.bytes} in ${sends.count}, digest ${sends.digest().slice(0, 16)}...`);
      } else if (e.sentSha256 !== null && e.sentSha256 !== sentHash.copy().digest("hex")) diverge("at the end: the SHA-256 of the bytes sent differs");
      else if (e.traceHash !== null && e.traceHash !== traceHash) diverge(`at the end: the recording's trace hash is ${e.traceHash}; the replay's is ${traceHash}`);
      else recording.advance();
    }
  }
  const expected = recording.end?.end.traceHash ?? null;
  return {
    identical: divergence === undefined && stoppedBefore === undefined,
    divergence,
    stoppedBefore,
    firmwareMatches: createHash("sha256").update(options.firmware).digest("hex") === recording.meta.firmwareSha256,
    recordsApplied: applied,
    boardTimeNs: at.timeNs,
    sentBytes: sends.bytes,
    sentSha256: sentHash.digest("hex"),
    traceHash,
    traceEvents: traceLines.length,
    expectedTraceHash: expected,
    panics: [...board.panics],
  };
}

export interface FuzzRecordingOptions {
  /** The reproducer: target, seed, input bytes. */
  target: string;
  seed: number;
  input: Uint8Array;
  /** The image's bytes (the instrumented fuzzing image). */
  firmware: Uint8Array;
  tool: string;
  recordPath?: string;
  /** More observers of the door while the input runs (a packet capture). */
  observers?: IngressObserver[];
}

/**
 * Runs a reproducer with the bus trace on, recording what passes the door while its input runs (after the snapshot):
 * the finding, the trace lines of the input's run and the recording's end.
 */
export function recordFuzzInput(options: FuzzRecordingOptions): { finding: { kind: string; message: string } | undefined; trace: string[]; log: string[]; console: string[]; end: RecordingEnd | undefined } {
  const target = targetNamed(options.target);
  if (target === undefined) throw new Error(`unknown fuzzing target "${options.target}"`);
  const runner = new Runner(target, new WebAssembly.Module(new Uint8Array(options.firmware)), options.seed, true);
  const board = runner.fuzz.board;
  const lines = runner.fuzz.trace.lines!;
  const recorder = options.recordPath === undefined ? undefined : new Recorder({
    path: options.recordPath, command: "fuzz", tool: options.tool, boardFile: board.spec.file, spec: board.spec, seed: options.seed,
    portals: board.spec.portals, verbose: false, dataDir: ".", copyDisks: false, hashSent: true,
    fuzz: { target: options.target, seed: options.seed, input: options.input },
  });
  let from = 0;
  const log: string[] = [];
  const finding = runner.exec(options.input, (line) => log.push(line), (b) => {
    from = lines.length;
    recorder?.begin(b, options.firmware);
    for (const observer of options.observers ?? []) b.ingress.observe(observer);
  });
  const trace = lines.slice(from);
  const hash = fuzzTraceHash(trace);
  const end = recorder?.end(board.ingress.position, fuzzEndReason(finding), { enabled: true, digest: () => hash, count: trace.length });
  recorder?.close();
  return { finding, trace, log, console: [...runner.fuzz.console], end };
}
