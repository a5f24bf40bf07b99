// The bus-transaction trace: every bus access, interrupt, DMA, clock and random read, console line and run call,
// as one JSON object per line. Same board, inputs and seed give byte-identical lines, so the SHA-256 of the lines
// is the run's fingerprint (DESIGN-NOTES §4). Recording is optional; hashing is what tests compare.
//
// A trace written to a file is also replayable (docs/trace-format.md, version 2): beside the hashed lines, which
// carry a "seq", it holds replay lines, which carry "rp" instead and are not hashed: the calls into the firmware
// with their arguments and results, the bytes the board wrote into a processor's memory (DMA, the boot-info block),
// digests of what devices read from it, and how a call ended when it did not return. With them a board without
// devices (tools/trace_board/) can answer every import and check every output. The hash stays that of the hashed
// lines alone, so it is the same whether the replay lines are written or not.
import { createHash, type Hash } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import { Sha256Thread } from "./hash_thread.ts";
import { LineBytes } from "./line_bytes.ts";
import { TraceHashThread } from "./trace_thread.ts";
import { createGzip } from "node:zlib";
import { memoryBytes, writeWatch } from "../bus/ram.ts";

export type TraceValue = number | bigint | string;

const PENDING_CHARS_MAX = 64 * 1024;

// The fixed bytes of every hashed line (record()).
const SEQ_BYTES = LineBytes.encode('{"seq":');
const TIME_BYTES = LineBytes.encode(',"t":');
const END_BYTES = LineBytes.encode("}\n");

/** The replay lines' format version, in the first line of a trace file (docs/trace-format.md). */
export const TRACE_FORMAT_VERSION = 2;

/** The first 16 hex digits of the SHA-256 of `bytes`: how a replay line names what a device read from memory. */
export function peekDigest(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex").slice(0, 16);
}

export interface TraceOptions {
  /** Write the lines to this file as JSON lines (gzip-compressed when it ends in .gz), with the replay lines. */
  path?: string;
  /** Keep the lines in memory (tests, replay); off by default. */
  keepLines?: boolean;
  /** Compute the hash (on by default). A board serving real clients turns the whole trace off instead. */
  enabled?: boolean;
  /** Record the replay lines (default: when writing a file). They go to the file and the kept lines, never the hash. */
  replay?: boolean;
  /**
   * Hash the lines on a worker thread: the same digest, off the board's thread (a replay). When the lines are only
   * hashed, the worker builds them too (trace_thread.ts); else it hashes the text (hash_thread.ts).
   */
  hashOffThread?: boolean;
}

export class Trace {
  readonly enabled: boolean;
  /** Whether the replay lines are recorded: processors and the bus check it before building one. */
  readonly replay: boolean;
  private readonly hash: Hash | undefined;
  private readonly hashThread: Sha256Thread | undefined;
  // Lines only hashed, off the board's thread: built and hashed by a worker from each event (record()).
  private readonly lineThread: TraceHashThread | undefined;
  private readonly out: WriteStream | undefined;
  private readonly sink: { write(text: string): unknown; end(callback: (error?: Error | null) => void): unknown } | undefined;
  readonly lines: string[] | undefined;
  count = 0;
  /** Replay lines written (not hashed, not in `count`). */
  replayCount = 0;
  // Hashed lines not yet hashed: one hash update per PENDING_CHARS_MAX instead of one per line is most of what a
  // trace costs to keep (a replay hashes a million lines for a few seconds of a busy session).
  private pending = "";
  // The lines as UTF-8 bytes when they are only hashed (record() then skips the text).
  private readonly bytes: LineBytes | undefined;
  // For those bytes: each source's events' `,"src":"…","ev":"…"` and each field's `,"key":`, encoded once.
  private readonly heads = new Map<string, Map<string, Uint8Array>>();
  private readonly keys = new Map<string, Uint8Array>();
  // Lines of both kinds not yet written to the file, in order, batched the same way.
  private outPending = "";
  // Replay lines made while a bus read runs: they belong after its hashed line (see hold()).
  private held: string[] | undefined;
  // Each processor memory the replay lines watch, by the name of the processor it is now.
  private readonly watched = new WeakMap<WebAssembly.Memory, { name: string }>();

  constructor(options: TraceOptions = {}) {
    this.enabled = options.enabled ?? true;
    const onlyHashed = options.path === undefined && options.keepLines !== true;
    if (this.enabled && options.hashOffThread === true && onlyHashed) this.lineThread = new TraceHashThread();
    else if (this.enabled && options.hashOffThread === true) this.hashThread = new Sha256Thread();
    else this.hash = createHash("sha256");
    this.replay = this.enabled && (options.replay ?? options.path !== undefined);
    if (this.enabled && options.path !== undefined) {
      this.out = createWriteStream(options.path);
      if (options.path.endsWith(".gz")) {
        const gzip = createGzip({ level: 1 });
        gzip.pipe(this.out);
        this.sink = gzip;
      } else {
        this.sink = this.out;
      }
    }
    this.lines = options.keepLines === true ? [] : undefined;
    // Lines only hashed (no file, none kept: a replay, simulate, a seal): built as bytes, not strings.
    if (this.enabled && this.sink === undefined && this.lines === undefined && this.lineThread === undefined) {
      const hash = this.hashThread ?? this.hash!;
      this.bytes = new LineBytes((chunk) => hash.update(chunk));
    }
    if (this.replay) this.emit(`{"rp":"trace","format":"wasm-iop-trace","version":${TRACE_FORMAT_VERSION}}\n`);
  }

  /** Records one event at board time `timeNs` on processor or device `source`. */
  record(timeNs: number, source: string, event: string, fields?: Record<string, TraceValue>): void {
    if (!this.enabled) return;
    if (this.lineThread !== undefined) {
      this.lineThread.event(timeNs, source, event, fields);
      this.count += 1;
      return;
    }
    if (this.bytes !== undefined) {
      // Only hashed: the line's UTF-8 written straight into a byte buffer, the same bytes as the text below.
      // The line's fixed parts (source and event, each field's key) are encoded once and kept (headBytes, keyBytes).
      const b = this.bytes;
      b.put(SEQ_BYTES);
      b.number(this.count);
      b.put(TIME_BYTES);
      b.number(timeNs);
      let bySource = this.heads.get(source);
      if (bySource === undefined) this.heads.set(source, (bySource = new Map()));
      let head = bySource.get(event);
      if (head === undefined) bySource.set(event, (head = LineBytes.encode(`,"src":"${source}","ev":"${event}"`)));
      b.put(head);
      if (fields !== undefined) for (const key in fields) {
        let keyBytes = this.keys.get(key);
        if (keyBytes === undefined) this.keys.set(key, (keyBytes = LineBytes.encode(`,"${key}":`)));
        b.put(keyBytes);
        const value = fields[key]!;
        if (typeof value === "number") b.number(value);
        else if (typeof value === "string") b.json(value);
        else b.bigHex(value);
      }
      b.put(END_BYTES);
      this.count += 1;
      return;
    }
    let text = `{"seq":${this.count},"t":${timeNs},"src":"${source}","ev":"${event}"`;
    for (const key in fields) text += `,"${key}":${encode(fields[key]!)}`;
    text += "}\n";
    this.count += 1;
    this.pending += text;
    if (this.sink !== undefined) this.outPending += text;
    if (this.pending.length >= PENDING_CHARS_MAX || this.outPending.length >= PENDING_CHARS_MAX) this.flushPending();
    this.lines?.push(text);
  }

  private flushPending(): void {
    this.bytes?.flush();
    if (this.pending.length > 0) (this.hashThread ?? this.hash!).update(this.pending);
    this.pending = "";
    if (this.outPending.length > 0) this.sink?.write(this.outPending);
    this.outPending = "";
  }

  /**
   * Records a replay line of kind `kind` about processor `processor` (docs/trace-format.md): not hashed. Integers
   * are JSON numbers when safe, 64-bit values decimal strings (signed as the firmware sees them).
   */
  replayRecord(processor: string, kind: string, fields: Record<string, TraceValue | readonly TraceValue[]> = {}): void {
    if (!this.replay) return;
    let text = `{"rp":"${kind}","p":"${processor}"`;
    for (const key in fields) {
      const value = fields[key]!;
      text += `,"${key}":${Array.isArray(value) ? `[${value.map(replayEncode).join(",")}]` : replayEncode(value as TraceValue)}`;
    }
    text += "}\n";
    if (this.held !== undefined) this.held.push(text);
    else this.emit(text);
  }

  /**
   * Records a replay line that belongs exactly here, held lines or not: "dev", which says the hashed line after it
   * is a device's bus cycle, not the firmware's.
   */
  replayMark(processor: string, kind: string): void {
    if (this.replay) this.emit(`{"rp":"${kind}","p":"${processor}"}\n`);
  }

  /**
   * Holds the replay lines made from now until release(): a bus read's hashed line is recorded after the device
   * answered, but the memory the device wrote while answering must reach a replaying board after that read, not
   * before it (the firmware runs on between its previous import and this one).
   */
  hold(): void {
    if (this.replay) this.held ??= [];
  }

  release(): void {
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) for (const text of held) this.emit(text);
  }

  /**
   * Watches `memory`, processor `processor`'s RAM, for the replay lines: every write the board or a device makes
   * into it becomes a "mem" line with the bytes, every device read a "peek" line with their digest. The write
   * watch's listeners already set (the fuzzer's) are kept and still called.
   */
  watchMemory(processor: string, memory: WebAssembly.Memory): void {
    if (!this.replay) return;
    const known = this.watched.get(memory);
    if (known !== undefined) {
      known.name = processor; // a reset reuses the memory: the same listeners, maybe another name
      return;
    }
    const owner = { name: processor };
    this.watched.set(memory, owner);
    const watch = writeWatch(memory);
    const bytes = memoryBytes(memory);
    const { onWrite, onRead, onZero } = watch;
    watch.onWrite = (offset, lengthBytes, byAbi) => {
      onWrite?.(offset, lengthBytes, byAbi);
      // A WASI call's out-parameter: the replaying board writes it itself, from the value the hashed line holds.
      if (byAbi === true) return;
      const data = Buffer.from(bytes.buffer, bytes.byteOffset + offset, lengthBytes).toString("base64");
      this.replayRecord(owner.name, "mem", { at: offset, b64: data });
    };
    watch.onRead = (offset, lengthBytes) => {
      onRead?.(offset, lengthBytes);
      this.replayRecord(owner.name, "peek", { at: offset, len: lengthBytes, sha: peekDigest(bytes.subarray(offset, offset + lengthBytes)) });
    };
    // Power-on zeroing: a "ram" line (Processor) says it, not megabytes of zeros.
    watch.onZero = (offset, lengthBytes) => {
      if (onZero !== undefined) onZero(offset, lengthBytes);
      else onWrite?.(offset, lengthBytes);
    };
  }

  /** The SHA-256 of every line so far, in hex. */
  digest(): string {
    this.flushPending();
    if (this.lineThread !== undefined) return this.lineThread.digest();
    return this.hashThread !== undefined ? this.hashThread.digest() : this.hash!.copy().digest("hex");
  }

  async close(): Promise<void> {
    this.flushPending();
    this.hashThread?.close(); // digest() keeps its final value
    this.lineThread?.close();
    const sink = this.sink;
    const out = this.out;
    if (sink === undefined || out === undefined) return;
    const finished = new Promise<void>((resolve, reject) => {
      out.once("close", resolve);
      out.once("error", reject);
    });
    sink.end(() => undefined);
    await finished;
  }

  private emit(text: string): void {
    this.replayCount += 1;
    if (this.sink !== undefined) {
      this.outPending += text;
      if (this.outPending.length >= PENDING_CHARS_MAX) this.flushPending();
    }
    this.lines?.push(text);
  }
}

/** Bus addresses and values as hex strings, so 64-bit values survive JSON. */
export function hex(value: number | bigint): string {
  return "0x" + value.toString(16);
}

function encode(value: TraceValue): string {
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value === "bigint" ? `"${hex(value)}"` : String(value);
}

function replayEncode(value: TraceValue): string {
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value === "bigint" ? `"${value.toString()}"` : String(value);
}
