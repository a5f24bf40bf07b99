// `wasm-iop replay`: runs a recording (format.ts) again on the virtual clock, as fast as the host allows. The board is
// built as recorded (spec, seed, portals, boot slot, disks); each input is applied where it entered, at the same board
// time after the same count of board events (host/board/ingress.ts), and each send the board makes is checked against
// the recorded one: its place, connection, length and CRC-32. The first difference is the divergence the replay names.
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { copyOf } from "../../host/bus/shared_copy.ts";
import { Board } from "../../host/board/board.ts";
import { BoardControl, parseControlRequest } from "../../host/board/control.ts";
import type { BoardFault, IngressObserver, IngressPosition } from "../../host/board/ingress.ts";
import type { BoardSpec } from "../../host/board/load.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import type { FlashBoot } from "../../host/boot/flash_boot.ts";
import type { DiskBackend } from "../../host/devices/disk_backend.ts";
import { memoryNvram } from "../../host/devices/nvram.ts";
import type { NetworkBackend, NicPort } from "../../host/devices/nic.ts";
import type { Trace } from "../../host/sim/trace.ts";
import { RECORD_KIND_NAMES, RecordKind, RecordingError, SendsDigest } from "./format.ts";
import { SendCheckThread } from "./send_check.ts";
import { type Recorded, type Recording, type RecordStream, streamOf } from "./reader.ts";
import { replayDisk } from "./disks.ts";

export interface ReplayOptions {
  /** An in-memory recording (parseRecording) or one read as it goes (openRecording). */
  recording: Recording | RecordStream;
  firmware: Uint8Array;
  trace: Trace;
  /** Stop just before this record (its index in the file) would be applied or produced. */
  untilIndex?: number;
  /** Stop before the first record at or after this board time. */
  untilNs?: number;
  /** More observers of the door (a packet capture). */
  observers?: IngressObserver[];
  onConsole?: (processor: string, fd: 1 | 2, line: string) => void;
  /** Disks the recording did not copy, by name: their images as they were when recording began. */
  diskImages?: ReadonlyMap<string, { backend: DiskBackend; sha256: string }>;
}

export interface ReplayResult {
  /** Every send and the end matched (and the trace hash, when the recording has one). */
  identical: boolean;
  /** The first difference, one line; undefined when none. */
  divergence: string | undefined;
  /** Set when --until stopped the replay: the record it stopped before. */
  stoppedBefore: string | undefined;
  firmwareMatches: boolean;
  recordsApplied: number;
  boardTimeNs: number;
  sentBytes: number;
  sentSha256: string;
  traceHash: string;
  traceEvents: number;
  /** The hash the recording expects (the live trace's, else the seal's); null when it has neither. */
  expectedTraceHash: string | null;
  panics: PanicReport[];
}

/**
 * A network with no sockets: it hands the replay the NIC's port (through the door) and drops what the NIC sends. The
 * NIC gathers each send straight into the send checker's slab (SendCheckThread.space), where the checker finds it.
 */
class ReplayNetwork implements NetworkBackend {
  port: NicPort | undefined;
  constructor(private readonly sendCheck: SendCheckThread) {}
  attach(port: NicPort): void {
    this.port = port;
  }
  sendSpace(_connection: number, lengthBytes: number): Uint8Array {
    return this.sendCheck.space(lengthBytes);
  }
  sendCommit(): void {}
  close(): void {}
  pause(): void {}
}

function isOutput(r: Recorded): boolean {
  return r.kind === RecordKind.Sent || r.kind === RecordKind.BoardClosed;
}

function seconds(ns: number): string {
  return `${(ns / 1e9).toFixed(9)} s`;
}

/** One record for people: "record 12 (received, 48 bytes on connection 0) at 1.234567890 s, board event 345". */
export function describeRecord(r: Recorded): string {
  let detail = "";
  switch (r.kind) {
    case RecordKind.Opened: detail = r.connection === undefined ? `portal ${r.portal}, refused` : `portal ${r.portal}, connection ${r.connection}`; break;
    case RecordKind.Received: detail = `${r.bytes.length} bytes on connection ${r.connection}`; break;
    case RecordKind.PeerClosed:
    case RecordKind.BoardClosed: detail = `connection ${r.connection}`; break;
    case RecordKind.Control: detail = JSON.stringify(r.request); break;
    case RecordKind.Fault: detail = JSON.stringify(r.fault); break;
    case RecordKind.Note: detail = `${r.note.source} ${r.note.event} ${JSON.stringify(r.note.fields)}`; break;
    case RecordKind.Sent: detail = `${r.lengthBytes} bytes on connection ${r.connection}, crc 0x${r.crc.toString(16).padStart(8, "0")}`; break;
    case RecordKind.End: detail = r.end.reason; break;
    default: break;
  }
  return `record ${r.index} (${RECORD_KIND_NAMES[r.kind]}${detail === "" ? "" : `, ${detail}`}) at ${seconds(r.at.timeNs)}, board event ${r.at.eventCount}`;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The board the recording describes, its disks rebuilt; throws RecordingError when a disk cannot be had. */
function buildBoard(options: ReplayOptions, recording: RecordStream, network: ReplayNetwork, panics: PanicReport[]): Board {
  const { meta } = recording;
  const disks = new Map<string, DiskBackend>();
  meta.disks.forEach((disk, index) => {
    let built: { backend: DiskBackend; sha256: string };
    if (disk.copied) {
      built = replayDisk(disk, recording.chunks.filter((c) => c.disk === index).map((c) => ({ chunk: c.chunk, bytes: c.bytes })));
    } else {
      built = options.diskImages?.get(disk.name) ?? replayDisk(disk, []);
    }
    if (built.sha256 !== disk.sha256) {
      throw new RecordingError(`${recording.file}: disk ${disk.name}: its initial contents hash ${disk.sha256.slice(0, 16)}..., ` +
        (disk.copied ? `the recorded chunks give ${built.sha256.slice(0, 16)}...: corrupt` :
          `and it was not copied (record with --record-disks, or give its image with --disks DIR)${options.diskImages?.has(disk.name) ? `; the image given hashes ${built.sha256.slice(0, 16)}...` : ""}`));
    }
    disks.set(disk.name, built.backend);
  });
  const module = new WebAssembly.Module(new Uint8Array(options.firmware));
  // A board that booted from its flash: the same image as the same slot (the system controller tells the firmware).
  const firmware = meta.bootSlot === null ? module
    : ({ log: [] as string[], select: () => ({ module, slot: meta.bootSlot!, trial: meta.bootTrial }), confirm: () => {}, close: () => {} } as unknown as FlashBoot);
  const nbdLast = (meta.spec as BoardSpec).nbd !== undefined && meta.portals.length > 1;
  return new Board({
    spec: meta.spec as BoardSpec,
    firmware,
    seed: meta.seed,
    trace: options.trace,
    // `run` records every portal it bound, the NBD one last on a board with NBD (tools/cli/run.ts): the configuration
    // ROM is rebuilt from them as it was, iSCSI portals as Portal records and that one as the NbdPortal record.
    portals: nbdLast ? meta.portals.slice(0, -1) : meta.portals,
    nbdPortal: nbdLast ? meta.portals[meta.portals.length - 1] : undefined,
    network: network,
    verbose: meta.verbose,
    // The first open of a disk is its recorded contents; a later one is a blank disk put in its place (disk replace).
    openDisk: (disk) => {
      const first = disks.get(disk.name);
      disks.delete(disk.name);
      return first ?? replayDisk(meta.disks.find((d) => d.name === disk.name)!, []).backend;
    },
    openNvram: (spec) => {
      const backing = memoryNvram(spec.sizeKiB * 1024);
      if (recording.nvram !== undefined && recording.nvram.length === backing.bytes.length) backing.bytes.set(recording.nvram);
      return backing;
    },
    onConsole: options.onConsole,
    onStop: (_processor, report) => {
      if (report !== undefined) panics.push(report);
    },
  });
}

export function replay(options: ReplayOptions): ReplayResult {
  // Every send's CRC-32 and the SHA-256 of every byte sent are computed on a worker thread (send_check.ts); each
  // CRC is compared with its record a little later, in order, and a divergence is still the first one.
  const sendCheck = new SendCheckThread();
  try {
    return replayWith(options, sendCheck);
  } finally {
    sendCheck.close();
  }
}

/** A send whose CRC-32 is still to be compared (and added to the sends' digest), in order. */
interface PendingSend {
  ordinal: number;
  connection: number;
  lengthBytes: number;
  expected: Extract<Recorded, { kind: RecordKind.Sent }> | undefined; // undefined: only for the digest
  at: IngressPosition;
}

function replayWith(options: ReplayOptions, sendCheck: SendCheckThread): ReplayResult {
  const recording = "peek" in options.recording ? options.recording : streamOf(options.recording);
  const network = new ReplayNetwork(sendCheck);
  const panics: PanicReport[] = [];
  const board = buildBoard(options, recording, network, panics);
  const control = new BoardControl(board);
  const sends = new SendsDigest();
  let divergence: string | undefined;
  const sentText = (lengthBytes: number, connection: number, crc: number, at: IngressPosition) =>
    `sent ${lengthBytes} bytes on connection ${connection}, crc 0x${crc.toString(16).padStart(8, "0")}, at ${seconds(at.timeNs)}, board event ${at.eventCount}`;
  // Sends whose CRC is not compared yet, oldest first (from `pendingHead` on).
  let pending: PendingSend[] = [];
  let pendingHead = 0;
  // Compares the pending sends' CRCs in order: all of them (waiting for the worker), or those it has done.
  const settle = (all: boolean) => {
    const upTo = all ? sendCheck.count : sendCheck.checked;
    while (pendingHead < pending.length && pending[pendingHead]!.ordinal < upTo) {
      const p = pending[pendingHead++]!;
      const crc = sendCheck.crc(p.ordinal);
      sends.add(p.connection, p.lengthBytes, crc);
      if (p.expected !== undefined && p.expected.crc !== crc && divergence === undefined) {
        divergence = `expected ${describeRecord(p.expected)}; the board ${sentText(p.lengthBytes, p.connection, crc, p.at)}`;
      }
    }
    if (pendingHead > 4096 && pendingHead * 2 > pending.length) {
      pending = pending.slice(pendingHead);
      pendingHead = 0;
    }
  };
  // The first divergence wins: a send before this one whose CRC was not compared yet may be it.
  const diverge = (message: string) => {
    if (divergence !== undefined) return;
    settle(true);
    divergence ??= message;
  };
  // The board's outputs, checked against the records at the cursor as they happen (a send's CRC a little later).
  const checker: IngressObserver = {
    sent: (at, connection, bytes) => {
      const ordinal = sendCheck.submit(bytes);
      if (divergence !== undefined) {
        pending.push({ ordinal, connection, lengthBytes: bytes.length, expected: undefined, at });
        return;
      }
      const expected = recording.peek();
      if (expected?.kind !== RecordKind.Sent || !samePlace(expected.at, at) || expected.connection !== connection || expected.lengthBytes !== bytes.length) {
        pending.push({ ordinal, connection, lengthBytes: bytes.length, expected: undefined, at });
        return diverge(`expected ${expected === undefined ? "nothing more" : describeRecord(expected)}; the board ${sentText(bytes.length, connection, crc32(bytes), at)}`);
      }
      pending.push({ ordinal, connection, lengthBytes: bytes.length, expected, at });
      recording.advance();
      if ((ordinal & 63) === 63) settle(false);
    },
    boardClosed: (at, connection) => {
      if (divergence !== undefined) return;
      const expected = recording.peek();
      const actual = `closed connection ${connection} at ${seconds(at.timeNs)}, board event ${at.eventCount}`;
      if (expected?.kind !== RecordKind.BoardClosed || !samePlace(expected.at, at) || expected.connection !== connection) {
        return diverge(`expected ${expected === undefined ? "nothing more" : describeRecord(expected)}; the board ${actual}`);
      }
      recording.advance();
    },
  };
  board.ingress.observe(checker);
  for (const observer of options.observers ?? []) board.ingress.observe(observer);
  board.powerOn();

  let stoppedBefore: string | undefined;
  const clock = board.clock;
  let applied = 0;
  // Each pass runs one board event or applies one input, so the loop ends within the recording's event count plus
  // its record count, or at the first divergence.
  for (let next = recording.peek(); next !== undefined && divergence === undefined; next = recording.peek()) {
    const stopHere = (options.untilIndex !== undefined && next.index >= options.untilIndex) || (options.untilNs !== undefined && next.at.timeNs >= options.untilNs);
    // An output happens inside board event at.eventCount; an input or the end enters after at.eventCount events.
    // Running that event makes the checker above take an output off the cursor; --until stops before it.
    const target = stopHere && isOutput(next) ? next.at.eventCount - 1 : next.at.eventCount;
    if (clock.boardRanCount < target) {
      const due = clock.nextDeadlineNs();
      if (due === undefined || due > next.at.timeNs) {
        diverge(`expected ${describeRecord(next)}; the board ${due === undefined ? "has nothing left to do" : `has nothing due until ${seconds(due)}`} after ${clock.boardRanCount} board events at ${seconds(clock.nowNs)}`);
        break;
      }
      clock.runNext();
      continue;
    }
    if (stopHere) {
      // Before an input: stand at its board time, as the recording board did when it arrived.
      const due = clock.nextDeadlineNs();
      if (!isOutput(next) && clock.nowNs < next.at.timeNs && (due === undefined || due >= next.at.timeNs)) clock.skipTo(next.at.timeNs);
      stoppedBefore = describeRecord(next);
      break;
    }
    if (isOutput(next)) {
      // The board ran past the event that should have produced it.
      diverge(`expected ${describeRecord(next)}; the board ran ${clock.boardRanCount} board events to ${seconds(clock.nowNs)} without it`);
      break;
    }
    const due = clock.nextDeadlineNs();
    if (clock.boardRanCount > next.at.eventCount || (due !== undefined && due < next.at.timeNs)) {
      diverge(`expected ${describeRecord(next)}; the board ${clock.boardRanCount > next.at.eventCount ? `had already run ${clock.boardRanCount} board events` : `has an event due at ${seconds(due!)}, before it`}`);
      break;
    }
    clock.skipTo(next.at.timeNs);
    if (next.kind !== RecordKind.End) applied += 1;
    // Past it before applying it (what the board sends meanwhile is checked against the records after it); the
    // received bytes are the reader's until then unless they last (a read-ahead window), so those that do not are
    // copied first (the NIC keeps what it is given).
    const received = next.kind === RecordKind.Received ? (next.lasting === true ? next.bytes : copyOf(next.bytes)) : undefined;
    recording.advance();
    apply(next, received);
  }

  function apply(record: Recorded, received: Uint8Array | undefined): void {
    const port = network.port;
    switch (record.kind) {
      case RecordKind.Opened: {
        const connection = port === undefined ? undefined : port.opened(record.portal);
        if (connection !== record.connection) diverge(`${describeRecord(record)}: the NIC gave ${connection === undefined ? "no slot (refused)" : `connection ${connection}`}`);
        return;
      }
      case RecordKind.Received: port?.received(record.connection, received!); return;
      case RecordKind.PeerClosed: port?.closed(record.connection); return;
      case RecordKind.Control: {
        const request = parseControlRequest(record.request);
        if (typeof request === "string") throw new RecordingError(`${recording.file}: ${describeRecord(record)}: ${request}`);
        control.submit(request, () => {});
        return;
      }
      case RecordKind.Reset: board.reset(); return;
      case RecordKind.Fault:
        try {
          board.injectFault(record.fault as BoardFault);
        } catch (error) {
          diverge(`${describeRecord(record)}: ${(error as Error).message}`);
        }
        return;
      case RecordKind.Note: board.ingress.note(record.note.source, record.note.event, record.note.fields); return;
      case RecordKind.End: return; // where the recording board stopped: nothing to apply
      default: throw new Error(`replay: ${RECORD_KIND_NAMES[record.kind]} is not an input`);
    }
  }

  settle(true); // every send compared (a divergence among them comes first)
  if (divergence !== undefined) stoppedBefore = undefined;
  const sentSha256 = sendCheck.sha256();
  const end = recording.end?.end;
  const expectedTraceHash = end === undefined ? null : end.traceHash ?? recording.seal?.traceHash ?? null;
  const finished = divergence === undefined && stoppedBefore === undefined;
  if (finished && end !== undefined) {
    const expectedSent = end.sentSha256 ?? recording.seal?.sentSha256 ?? null;
    if (sends.bytes !== end.sentBytes || sends.count !== end.sends || sends.digest() !== end.sendsSha256) {
      diverge(`at the end: the recording sent ${end.sentBytes} bytes in ${end.sends} sends, digest ${end.sendsSha256.slice(0, 16)}...; the board sent ${sends.bytes} in ${sends.count}, digest ${sends.digest().slice(0, 16)}...`);
    } else if (expectedSent !== null && expectedSent !== sentSha256) {
      diverge(`at the end: the recording's bytes sent hash sha256 ${expectedSent.slice(0, 16)}...; the board's ${sentSha256.slice(0, 16)}...`);
    } else if (expectedTraceHash !== null && expectedTraceHash !== options.trace.digest()) {
      diverge(`at the end: the recording's trace hash is ${expectedTraceHash}; the replay's is ${options.trace.digest()} (write both traces with --trace to find the first line that differs)`);
    }
  }
  board.powerOff();
  return {
    identical: finished && divergence === undefined,
    divergence,
    stoppedBefore,
    firmwareMatches: sha256(options.firmware) === recording.meta.firmwareSha256,
    recordsApplied: applied,
    boardTimeNs: clock.nowNs,
    sentBytes: sends.bytes,
    sentSha256,
    traceHash: options.trace.digest(),
    traceEvents: options.trace.count,
    expectedTraceHash,
    panics,
  };
}

function samePlace(expected: { eventCount: number; timeNs: number }, actual: IngressPosition): boolean {
  return expected.eventCount === actual.eventCount && expected.timeNs === actual.timeNs;
}
