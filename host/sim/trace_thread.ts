// The trace's hashed lines built and hashed on a worker thread (host/sim/trace.ts, when it only hashes off the board's
// thread: a replay, a seal). The board's thread writes each event in a compact binary form: the ids of its source and
// event and of each field's key (their text sent once), its board time and the fields' values as they are (numbers as
// f64, strings as UTF-16 code units). The worker writes the lines from them with the same LineBytes the board's
// thread would use (its source is run there as is), and hashes them: the same bytes, so the same SHA-256 as a trace
// built and hashed on the board's thread. That thread no longer formats numbers or copies the line's text; a line
// there was about a fifth of a busy replay's board's thread (docs/replay.md, "Replay's speed"). The events go through
// shared slabs (slab_ring.ts) in batches of whole events; when every slab is still the worker's, the board waits.
import { Worker } from "node:worker_threads";
import { copyBytes } from "../bus/shared_copy.ts";
import { LineBytes } from "./line_bytes.ts";
import { SLAB_FULL, SlabRing, slabWorkerLoop } from "./slab_ring.ts";
import type { TraceValue } from "./trace.ts";

// The binary form, little-endian. A batch is a u32 length and that many bytes of items; an item is one of:
const ITEM_EVENT = 1; // u32 head id, f64 board time, then fields, then FIELD_END
const ITEM_HEAD = 2; // u32 id, u32 n, n bytes: `,"src":"…","ev":"…"` as UTF-8
// Within an event, before its fields and among them:
const FIELD_KEY = 4; // a key's first use: u32 id, u32 n, n bytes: `,"key":` as UTF-8 (then its field follows)
const FIELD_END = 0;
const FIELD_NUMBER = 1; // u32 key id, f64
const FIELD_STRING = 2; // u32 key id, u32 n, n UTF-16 code units
const FIELD_BIGINT = 3; // u32 key id, u32 n, n code units of `0x` and its hex digits (the line's text of a bigint)

/** A batch is handed to the worker once it holds this much (after a whole event). */
const BATCH_BYTES = 128 << 10;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { slabs, states, lengths, result, lineBytesSource, FREE, DIGEST, STOP, ITEM_EVENT, FIELD_KEY, FIELD_END, FIELD_NUMBER } = workerData;
${slabWorkerLoop(`
    const view = views[slab], length = lengths[slab];
    let at = 0;
    while (at < length) {
      if (bigNeed > 0) {
        const take = Math.min(bigNeed - bigGot, length - at);
        for (let i = 0; i < take; i++) big.setUint8(bigGot + i, view.getUint8(at + i));
        bigGot += take;
        at += take;
        if (bigGot === bigNeed) { batch(big, 0, bigNeed); bigNeed = 0; }
        continue;
      }
      const n = view.getUint32(at, true);
      at += 4;
      if (at + n <= length) { batch(view, at, at + n); at += n; continue; }
      big = new DataView(new ArrayBuffer(n)); bigNeed = n; bigGot = 0;
    }
    if (state === DIGEST) { lines.flush(); result.set(hash.copy().digest()); }`, `
// LineBytes' source as the build gave it: a bundler's helper for class names made a no-op.
const __name = (target) => target;
const LineBytes = eval("(" + lineBytesSource + ")");
const hash = createHash("sha256");
const lines = new LineBytes((chunk) => hash.update(chunk));
const SEQ = LineBytes.encode('{"seq":'), TIME = LineBytes.encode(',"t":'), END = LineBytes.encode("}\\n");
const heads = [], keys = [];
let count = 0;
// A string field's JSON (LineBytes.json): quoted as it is when nothing in it needs escaping, else by JSON.stringify.
let quoted = new Uint8Array(256);
function json(view, at, n) {
  if (quoted.length < n + 2) quoted = new Uint8Array(2 * n + 2);
  quoted[0] = 0x22;
  let i = 0;
  for (; i < n; i++) {
    const c = view.getUint16(at + 2 * i, true);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) break;
    quoted[i + 1] = c;
  }
  if (i === n) {
    quoted[n + 1] = 0x22;
    lines.put(quoted.subarray(0, n + 2));
    return;
  }
  let text = "";
  for (let k = 0; k < n; k += 4096) {
    const codes = [];
    for (let j = k; j < Math.min(n, k + 4096); j++) codes.push(view.getUint16(at + 2 * j, true));
    text += String.fromCharCode.apply(null, codes);
  }
  lines.json(text);
}
// The items of one batch, [at, end) of view.
function batch(view, at, end) {
  while (at < end) {
    const item = view.getUint8(at);
    if (item === ITEM_EVENT) {
      lines.put(SEQ);
      lines.number(count++);
      lines.put(TIME);
      lines.number(view.getFloat64(at + 5, true));
      lines.put(heads[view.getUint32(at + 1, true)]);
      at += 13;
      for (;;) {
        const field = view.getUint8(at);
        if (field === FIELD_END) { at += 1; break; }
        if (field === FIELD_KEY) { at = define(keys, view, at); continue; }
        lines.put(keys[view.getUint32(at + 1, true)]);
        if (field === FIELD_NUMBER) { lines.number(view.getFloat64(at + 5, true)); at += 13; continue; }
        const n = view.getUint32(at + 5, true);
        json(view, at + 9, n);
        at += 9 + 2 * n;
      }
      lines.put(END);
      continue;
    }
    at = define(heads, view, at); // ITEM_HEAD
  }
}
// A head's or a key's text: kept under its id; returns where the next item starts.
function define(table, view, at) {
  const id = view.getUint32(at + 1, true), n = view.getUint32(at + 5, true);
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = view.getUint8(at + 9 + i);
  table[id] = bytes;
  return at + 9 + n;
}
const views = slabs.map((s) => new DataView(s));
let big, bigNeed = 0, bigGot = 0; // a batch longer than a slab, gathered here
`)}
`;

export class TraceHashThread {
  private readonly ring: SlabRing;
  private readonly result: Uint8Array;
  private readonly worker: Worker;
  private batch = new Uint8Array(BATCH_BYTES + 64 * 1024);
  private view = new DataView(this.batch.buffer);
  private used = 0;
  private readonly heads = new Map<string, Map<string, number>>();
  private headCount = 0;
  private readonly keys = new Map<string, number>();
  private final: string | undefined; // the digest at close()

  constructor(options: { slabBytes?: number; slabCount?: number } = {}) {
    this.ring = new SlabRing(options.slabBytes ?? 1 << 20, options.slabCount ?? 8, "TraceHashThread: the hashing thread failed");
    this.result = new Uint8Array(new SharedArrayBuffer(32));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        ...this.ring.workerData, result: this.result, lineBytesSource: LineBytes.toString(),
        ITEM_EVENT, FIELD_KEY, FIELD_END, FIELD_NUMBER,
      },
    });
    this.worker.unref();
  }

  /** The hashed line Trace.record makes of this event, as the `count`-th line (the worker counts them). */
  event(timeNs: number, source: string, event: string, fields: Record<string, TraceValue> | undefined): void {
    if (this.final !== undefined) throw new Error("TraceHashThread: event after close");
    let bySource = this.heads.get(source);
    if (bySource === undefined) this.heads.set(source, (bySource = new Map()));
    let head = bySource.get(event);
    if (head === undefined) {
      head = this.headCount++;
      bySource.set(event, head);
      this.define(ITEM_HEAD, head, `,"src":"${source}","ev":"${event}"`);
    }
    this.room(13);
    let view = this.view;
    let at = this.used;
    view.setUint8(at, ITEM_EVENT);
    view.setUint32(at + 1, head, true);
    view.setFloat64(at + 5, timeNs, true);
    this.used = at + 13;
    if (fields !== undefined) {
      for (const key in fields) {
        let id = this.keys.get(key);
        if (id === undefined) {
          id = this.keys.size;
          this.keys.set(key, id);
          this.define(FIELD_KEY, id, `,"${key}":`);
        }
        const value = fields[key]!;
        if (typeof value === "number") {
          this.room(13);
          view = this.view;
          at = this.used;
          view.setUint8(at, FIELD_NUMBER);
          view.setUint32(at + 1, id, true);
          view.setFloat64(at + 5, value, true);
          this.used = at + 13;
        } else {
          const text = typeof value === "string" ? value : `0x${value.toString(16)}`;
          this.string(typeof value === "string" ? FIELD_STRING : FIELD_BIGINT, id, text);
        }
      }
    }
    this.room(1);
    this.view.setUint8(this.used++, FIELD_END);
    if (this.used >= BATCH_BYTES) this.handBatch();
  }

  /** The SHA-256 of every line so far, in hex (waits for the worker to hash them). */
  digest(): string {
    if (this.final !== undefined) return this.final;
    this.handBatch();
    return this.ring.digest(this.result);
  }

  /** Stops the worker; digest() then keeps returning the final digest. */
  close(): string {
    if (this.final !== undefined) return this.final;
    const final = this.digest();
    this.final = final;
    this.ring.stop();
    return final;
  }

  // Room for `bytes` more in the batch (an event is never cut: the batch grows instead).
  private room(bytes: number): void {
    if (this.used + bytes <= this.batch.length) return;
    const grown = new Uint8Array(Math.max(2 * this.batch.length, this.used + bytes));
    grown.set(this.batch.subarray(0, this.used));
    this.batch = grown;
    this.view = new DataView(grown.buffer);
  }

  private define(item: number, id: number, text: string): void {
    const bytes = LineBytes.encode(text);
    this.room(9 + bytes.length);
    this.view.setUint8(this.used, item);
    this.view.setUint32(this.used + 1, id, true);
    this.view.setUint32(this.used + 5, bytes.length, true);
    this.batch.set(bytes, this.used + 9);
    this.used += 9 + bytes.length;
  }

  private string(field: number, id: number, text: string): void {
    const n = text.length;
    this.room(9 + 2 * n);
    const view = this.view;
    let at = this.used;
    view.setUint8(at, field);
    view.setUint32(at + 1, id, true);
    view.setUint32(at + 5, n, true);
    at += 9;
    for (let i = 0; i < n; i++, at += 2) view.setUint16(at, text.charCodeAt(i), true);
    this.used = at;
  }

  // The batch to the worker: its length, then its bytes, in one slab when it fits in one.
  private handBatch(): void {
    const n = this.used;
    if (n === 0) return;
    const ring = this.ring;
    const slabBytes = ring.slab.length;
    if (slabBytes - ring.used < 4 + Math.min(n, slabBytes - 4)) ring.handOver(SLAB_FULL);
    ring.putLength(n);
    for (let from = 0; from < n;) {
      if (ring.used === ring.slab.length) ring.handOver(SLAB_FULL);
      const take = Math.min(n - from, ring.slab.length - ring.used);
      copyBytes(ring.slab, ring.used, this.batch.subarray(from, from + take));
      ring.used += take;
      from += take;
    }
    this.used = 0;
  }
}
