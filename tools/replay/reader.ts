// Reading a recording (format.ts; docs/replay.md, "The format"). A RecordingReader walks the file record by record
// through a window of it (FileSource), so a replay holds a few MiB of a recording of gigabytes, not all of it; or
// over bytes already in memory (BytesSource, parseRecording: tests, small files). The head (metadata, firmware, NVRAM,
// disk chunks) is read when the reader opens; the timed records come one at a time (peek, advance), each checked
// (framing, CRC-32, fields, order) as it is reached, so a damaged record is named when the replay gets to it.
import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { crc32, inflateRawSync } from "node:zlib";
import {
  DISK_CHUNK_BYTES, HEADER_BYTES, RECORD_KIND_NAMES, RECORD_PAYLOAD_BYTES_MAX, RECORDING_MAGIC, RECORDING_VERSION, RECORDING_VERSIONS_READ, RecordingError, SPARSE_BLOCK_BYTES, RecordKind,
  type FuzzStart, type RecordingEnd, type RecordingMeta, type RecordingSeal,
} from "./format.ts";
import { type ReadAheadWindow, ReadAheadThread } from "./read_ahead.ts";
import { copyBytes, copyOf } from "../../host/bus/shared_copy.ts";

export interface TimedPlace {
  eventCount: number;
  timeNs: number;
}

export type Recorded =
  | { kind: RecordKind.Opened; index: number; offset: number; at: TimedPlace; portal: number; connection: number | undefined }
  // lasting: `bytes` is a buffer nobody changes or reuses (a read-ahead window, inflated or sparse bytes), so the NIC may
  // keep it as it is; otherwise it is the reader's until advance(), and a replay copies it.
  | { kind: RecordKind.Received; index: number; offset: number; at: TimedPlace; connection: number; bytes: Uint8Array; lasting?: boolean }
  | { kind: RecordKind.PeerClosed; index: number; offset: number; at: TimedPlace; connection: number }
  | { kind: RecordKind.Control; index: number; offset: number; at: TimedPlace; request: unknown }
  | { kind: RecordKind.Reset; index: number; offset: number; at: TimedPlace }
  | { kind: RecordKind.Fault; index: number; offset: number; at: TimedPlace; fault: unknown }
  | { kind: RecordKind.Note; index: number; offset: number; at: TimedPlace; note: { source: string; event: string; fields: Record<string, number | string> } }
  | { kind: RecordKind.Sent; index: number; offset: number; at: TimedPlace; connection: number; lengthBytes: number; crc: number }
  | { kind: RecordKind.BoardClosed; index: number; offset: number; at: TimedPlace; connection: number }
  | { kind: RecordKind.End; index: number; offset: number; at: TimedPlace; end: RecordingEnd };

export interface DiskChunk {
  disk: number;
  chunk: number;
  bytes: Uint8Array;
}

export interface Recording {
  file: string;
  meta: RecordingMeta;
  firmware: Uint8Array;
  /** The NVRAM's array at power-on (zeros when no nvram record), or undefined when the board has none. */
  nvram: Uint8Array | undefined;
  chunks: DiskChunk[];
  fuzzStart: FuzzStart | undefined;
  /** The timed records in order, End last. */
  events: Recorded[];
  end: Extract<Recorded, { kind: RecordKind.End }>;
  seal: RecordingSeal | undefined;
}

/** Connection slots a NIC has (host/devices/nic.ts, NIC_CONN_MAX); a record naming another is corrupt. */
const CONNECTIONS_MAX = 64;

/** Where a reader takes the bytes from: `read` returns [position, position + length), valid until the next read. */
export interface RecordSource {
  readonly size: number;
  read(position: number, length: number): Uint8Array;
  /** True when the records before byte `end` are known to carry their right CRC-32 (read_ahead.ts); absent: never. */
  checked?(end: number): boolean;
  /** True when `bytes`, which read() gave, is never changed or reused (a read-ahead window); absent: never. */
  lasting?(bytes: Uint8Array): boolean;
  close(): void;
}

/** A recording already in memory. */
export class BytesSource implements RecordSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  read(position: number, length: number): Uint8Array {
    return this.bytes.subarray(position, position + length);
  }
  close(): void {}
}

// The window a FileSource reads itself (the head, or past where the read-ahead worker stopped): large enough that a
// busy session's small records cost few system calls.
const WINDOW_BYTES = 8 << 20;

/**
 * A recording file read through a window: bytes from one read are valid until the next. With read-ahead, the records
 * come from the windows a worker read and checked (read_ahead.ts); the rest (the header, and anything after a record
 * the worker left to the reader) from the file itself.
 */
export class FileSource implements RecordSource {
  private readonly fd: number;
  readonly size: number;
  private own = new Uint8Array(WINDOW_BYTES); // the window read here
  private window: Uint8Array = this.own; // the window being read: `own` or the worker's
  private windowStart = 0;
  private windowLength = 0;
  private readonly ahead: ReadAheadThread | undefined;
  private aheadDone = false; // the worker's last window was taken (or it failed)
  private shared: ReadAheadWindow | undefined; // the worker's window taken last
  private checkedUpTo = 0; // every record before this byte came in a worker's window: its CRC-32 is right

  /** With `readAhead`, a worker reads the records ahead and checks their CRC-32s (read_ahead.ts). */
  constructor(path: string, readAhead = false) {
    this.fd = openSync(path, "r");
    this.size = fstatSync(this.fd).size;
    if (readAhead && this.size > HEADER_BYTES) this.ahead = new ReadAheadThread(path, HEADER_BYTES);
  }

  checked(end: number): boolean {
    return end <= this.checkedUpTo;
  }

  lasting(bytes: Uint8Array): boolean {
    return this.ahead !== undefined && bytes.buffer !== this.own.buffer;
  }

  read(position: number, length: number): Uint8Array {
    const end = Math.min(position + length, this.size);
    if (position >= this.windowStart && end <= this.windowStart + this.windowLength) {
      return this.window.subarray(position - this.windowStart, end - this.windowStart);
    }
    const ahead = this.fromAhead(position, end);
    if (ahead !== undefined) return ahead;
    if (end - position > this.own.length) this.own = new Uint8Array(end - position); // a record over the window: its size, once
    let filled = 0;
    // Only what is asked while the worker reads the rest (the header), else a window's worth.
    const want = Math.min(this.ahead !== undefined && !this.aheadDone ? end - position : this.own.length, this.size - position);
    while (filled < want) {
      const got = readSync(this.fd, this.own, filled, want - filled, position + filled);
      if (got === 0) break;
      filled += got;
    }
    this.window = this.own;
    this.windowStart = position;
    this.windowLength = filled;
    return this.own.subarray(0, Math.min(end - position, filled));
  }

  close(): void {
    this.ahead?.stop();
    closeSync(this.fd);
  }

  // [position, end) from the worker's windows, taken in order; cut at a window's end (a window holds whole records,
  // so a record's framing read further is in it); undefined when the worker has not read there.
  private fromAhead(position: number, end: number): Uint8Array | undefined {
    if (this.ahead === undefined) return undefined;
    for (;;) {
      const w = this.shared;
      if (w !== undefined && position >= w.start && position < w.start + w.bytes.length) {
        this.window = w.bytes;
        this.windowStart = w.start;
        this.windowLength = w.bytes.length;
        return w.bytes.subarray(position - w.start, Math.min(end, w.start + w.bytes.length) - w.start);
      }
      if ((w !== undefined && position < w.start) || this.aheadDone) return undefined;
      const next = this.ahead.next();
      if (next === undefined || next.last) this.aheadDone = true;
      if (next === undefined) return undefined;
      this.shared = next;
      this.checkedUpTo = next.start + next.bytes.length;
    }
  }
}

// A cursor over one record's payload: every read checks the bound and names the field on failure.
class PayloadReader {
  private at: number;
  constructor(private readonly bytes: Uint8Array, private readonly start: number, private readonly end: number, private readonly fail: (what: string) => never) {
    this.at = start;
  }

  varint(field: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (this.at >= this.end) this.fail(`${field}: the payload ends inside its varint`);
      if (i >= 8) this.fail(`${field}: varint longer than 8 bytes`);
      const byte = this.bytes[this.at++]!;
      value += (byte & 0x7f) * scale;
      scale *= 128;
      if ((byte & 0x80) === 0) break;
    }
    if (!Number.isSafeInteger(value)) this.fail(`${field}: ${value} is beyond 2^53`);
    return value;
  }

  u32(field: string): number {
    if (this.at + 4 > this.end) this.fail(`${field}: the payload ends inside it`);
    const value = (this.bytes[this.at]! | (this.bytes[this.at + 1]! << 8) | (this.bytes[this.at + 2]! << 16) | (this.bytes[this.at + 3]! << 24)) >>> 0;
    this.at += 4;
    return value;
  }

  rest(): Uint8Array {
    const out = this.bytes.subarray(this.at, this.end);
    this.at = this.end;
    return out;
  }

  json(field: string): unknown {
    const text = Buffer.from(this.rest()).toString("utf8");
    try {
      return JSON.parse(text);
    } catch (error) {
      return this.fail(`${field}: not JSON (${(error as Error).message})`);
    }
  }

  done(): void {
    if (this.at !== this.end) this.fail(`${this.end - this.at} bytes left over after the last field`);
  }

  get offset(): number {
    return this.at - this.start;
  }
}

type EndRecord = Extract<Recorded, { kind: RecordKind.End }>;

// What readRecord gives its caller: the metadata or the image (the head's first two), a timed record, or nothing (a
// record kept by the reader itself: NVRAM, disk chunk, seal).
type HeadOrTimed =
  | { kind: "meta"; meta: RecordingMeta }
  | { kind: "firmware"; firmware: Uint8Array }
  | { kind: "timed"; record: Recorded }
  | { kind: "kept" }
  | { kind: "pad" };

/** The recording's timed records one at a time: what a replay walks. */
export interface RecordStream {
  readonly file: string;
  readonly meta: RecordingMeta;
  readonly firmware: Uint8Array;
  readonly nvram: Uint8Array | undefined;
  readonly chunks: DiskChunk[];
  /** Set when the recording is of a fuzz finding (fuzz --replay --record). */
  readonly fuzzStart: FuzzStart | undefined;
  /** The record at the cursor (its bytes valid until advance()), or undefined past the end record. */
  peek(): Recorded | undefined;
  advance(): void;
  /** Known once the end record was peeked (then the seal too, if any). */
  readonly end: EndRecord | undefined;
  readonly seal: RecordingSeal | undefined;
}

// The longest framing before a payload: kind and a length varint of at most 8 bytes.
const FRAME_HEAD_BYTES_MAX = 9;

/**
 * Reads a recording from `source`: the head at once, then one timed record per peek/advance. Throws RecordingError
 * with one line naming the file, the record and the byte offset at the first thing wrong.
 */
export class RecordingReader implements RecordStream {
  readonly meta: RecordingMeta;
  readonly firmware: Uint8Array;
  nvram: Uint8Array | undefined;
  readonly chunks: DiskChunk[] = [];
  fuzzStart: FuzzStart | undefined;
  end: EndRecord | undefined;
  seal: RecordingSeal | undefined;
  private offset = HEADER_BYTES;
  private index = 0;
  private eventCount = 0;
  private timeNs = 0;
  private timedCount = 0;
  private current: Recorded | undefined;
  private last: Recorded | undefined; // the last timed record read, for the truncation message
  private metaRead: RecordingMeta | undefined; // the metadata once read (the head's records check against it)
  private version = RECORDING_VERSION; // the file's (header)

  constructor(private readonly source: RecordSource, readonly file: string) {
    const size = source.size;
    if (size < HEADER_BYTES) this.fail(`${size} bytes: too short for the ${HEADER_BYTES}-byte header; not a recording, or truncated`);
    const header = source.read(0, HEADER_BYTES);
    const magic = Buffer.from(header.subarray(0, 8)).toString("latin1");
    if (magic !== RECORDING_MAGIC) this.fail(`byte 0: magic ${JSON.stringify(magic)}, expected ${JSON.stringify(RECORDING_MAGIC)}: not a wasm-iop recording`);
    const version = header[8]! | (header[9]! << 8);
    if (!RECORDING_VERSIONS_READ.includes(version)) this.fail(`byte 8: format version ${version}; this wasm-iop reads versions ${RECORDING_VERSIONS_READ.slice(0, -1).join(", ")} and ${RECORDING_VERSIONS_READ.at(-1)}`);
    this.version = version;
    const flags = header[10]! | (header[11]! << 8);
    if (flags !== 0) this.fail(`byte 10: flags 0x${flags.toString(16)}, expected 0`);
    // The head: meta, firmware, then NVRAM and disk chunks until the first timed record (held, for peek()).
    let meta: RecordingMeta | undefined;
    let firmware: Uint8Array | undefined;
    while (this.current === undefined && this.offset < size) {
      const r = this.readRecord();
      if (r.kind === "meta") meta = this.metaRead = r.meta;
      else if (r.kind === "firmware") firmware = r.firmware;
      else if (r.kind === "timed") this.current = r.record;
    }
    if (meta === undefined || firmware === undefined) this.fail(`${meta === undefined ? "no records" : "no firmware image"} after the header: truncated`);
    this.meta = meta!;
    this.firmware = firmware!;
    if (this.current === undefined) this.truncated();
    if (this.meta.nvram !== null && this.nvram === undefined) {
      this.nvram = new Uint8Array(this.meta.nvram.sizeBytes);
      if (createHash("sha256").update(this.nvram).digest("hex") !== this.meta.nvram.sha256) this.fail(`no nvram record, and the metadata's NVRAM hash is not that of zeros`);
    }
    this.afterTimed();
  }

  peek(): Recorded | undefined {
    return this.current;
  }

  advance(): void {
    if (this.current === undefined) return;
    if (this.current.kind === RecordKind.End) {
      this.current = undefined;
      return;
    }
    if (this.offset >= this.source.size) this.truncated();
    const r = this.readRecord();
    if (r.kind !== "timed" && this.offset >= this.source.size) this.truncated(); // only pads were left
    if (r.kind !== "timed") throw new Error("RecordingReader: readRecord refuses a head record after the first timed one");
    this.current = r.record;
    this.afterTimed();
  }

  /** Every timed record, End last (parseRecording). */
  all(): Recorded[] {
    const out: Recorded[] = [];
    for (let r = this.peek(); r !== undefined; r = this.peek()) {
      out.push(r);
      this.advance();
    }
    return out;
  }

  close(): void {
    this.source.close();
  }

  // When the record at the cursor is the end: the seal after it, if any, and nothing else.
  private afterTimed(): void {
    const current = this.current!;
    this.last = current;
    if (current.kind !== RecordKind.End) return;
    this.end = current;
    while (this.offset < this.source.size) this.readRecord();
  }

  private truncated(): never {
    const last = this.last;
    return this.fail(`truncated: no end record after record ${last?.index ?? 0} (board time ${((last?.at.timeNs ?? 0) / 1e9).toFixed(6)} s), at byte ${this.source.size}; the recording board did not stop cleanly`);
  }

  private fail(message: string): never {
    throw new RecordingError(`${this.file}: ${message}`);
  }

  // The next record that is not a pad (a pad last in the file is returned as one).
  private readRecord(): HeadOrTimed {
    for (;;) {
      const r = this.readOne();
      if (r.kind !== "pad" || this.offset >= this.source.size) return r;
    }
  }

  // One record at the offset, checked; head records are kept here, a timed one is returned.
  private readOne(): HeadOrTimed {
    const offset = this.offset;
    const index = this.index;
    const size = this.source.size;
    const where = `record ${index} at byte ${offset}`;
    const fail = (message: string): never => this.fail(message);
    const head = this.source.read(offset, FRAME_HEAD_BYTES_MAX);
    const kind = head[0]! as RecordKind;
    // The length varint, read by hand: the record's own reader needs it first.
    let length = 0;
    let scale = 1;
    let at = 1;
    for (let i = 0; ; i++) {
      if (at >= head.length) fail(`${where}: truncated inside its length`);
      if (i >= 8) fail(`${where}: length varint longer than 8 bytes`);
      const byte = head[at++]!;
      length += (byte & 0x7f) * scale;
      scale *= 128;
      if ((byte & 0x80) === 0) break;
    }
    const payloadAt = at;
    if (length > RECORD_PAYLOAD_BYTES_MAX) fail(`${where}: payload length ${length} over the ${RECORD_PAYLOAD_BYTES_MAX} allowed`);
    const recordBytes = payloadAt + length + 4;
    if (offset + recordBytes > size) fail(`${where}: truncated: the record needs ${recordBytes} bytes, ${size - offset} are left`);
    const bytes = this.source.read(offset, recordBytes);
    const crcAt = payloadAt + length;
    if (this.source.checked?.(offset + recordBytes) !== true) {
      const stored = (bytes[crcAt]! | (bytes[crcAt + 1]! << 8) | (bytes[crcAt + 2]! << 16) | (bytes[crcAt + 3]! << 24)) >>> 0;
      const computed = crc32(bytes.subarray(0, crcAt));
      if (stored !== computed) fail(`${where}: checksum 0x${stored.toString(16).padStart(8, "0")}, the bytes give 0x${computed.toString(16).padStart(8, "0")}: corrupt`);
    }
    const name = RECORD_KIND_NAMES[kind];
    if (name === undefined) fail(`${where}: unknown record kind ${kind}`);
    if (kind === RecordKind.Pad) {
      // Zeros the writer put so that its O_DIRECT writes are whole blocks (format.ts): skipped, not numbered.
      if (this.version < 4) fail(`${where} (pad): a pad record in a version-${this.version} file`);
      this.offset = offset + recordBytes;
      return { kind: "pad" };
    }
    const what = `${where} (${name})`;
    const failHere = (message: string): never => fail(`${what}: ${message}`);
    const r = new PayloadReader(bytes, payloadAt, crcAt, failHere);
    if (index === 0 && kind !== RecordKind.Meta) failHere("the first record must be meta");
    if (index > 0 && kind === RecordKind.Meta) failHere("a second meta record");
    if ((index === 1) !== (kind === RecordKind.Firmware)) failHere(index === 1 ? "the second record must be the firmware image" : "a second firmware image");
    if (this.seal !== undefined) failHere("a record after the seal");
    if (this.end !== undefined && kind !== RecordKind.Seal) failHere("a record after the end");
    const meta = this.metaRead;
    const connection = (field = "connection"): number => {
      const value = r.varint(field);
      if (value >= CONNECTIONS_MAX) failHere(`${field} ${value}: the NIC has slots 0..${CONNECTIONS_MAX - 1}`);
      return value;
    };
    const place = (): TimedPlace => {
      this.eventCount += r.varint("board-event count delta");
      this.timeNs += r.varint("board time delta");
      if (!Number.isSafeInteger(this.timeNs) || !Number.isSafeInteger(this.eventCount)) failHere("board time or event count beyond 2^53");
      return { eventCount: this.eventCount, timeNs: this.timeNs };
    };
    const fileOffset = offset;
    const timed = (record: Recorded): HeadOrTimed => {
      this.timedCount += 1;
      return { kind: "timed", record };
    };
    let result: HeadOrTimed = { kind: "kept" };
    switch (kind) {
      case RecordKind.Meta:
        result = { kind: "meta", meta: checkMeta(r.json("metadata"), failHere) };
        break;
      case RecordKind.Firmware: {
        const firmware = copyOf(r.rest());
        const sha = createHash("sha256").update(firmware).digest("hex");
        if (sha !== meta!.firmwareSha256) failHere(`the image's SHA-256 is ${sha.slice(0, 16)}..., the metadata says ${meta!.firmwareSha256.slice(0, 16)}...: corrupt`);
        result = { kind: "firmware", firmware };
        break;
      }
      case RecordKind.Nvram: {
        if (this.timedCount > 0) failHere("the NVRAM's array after the first timed record");
        if (this.nvram !== undefined) failHere("a second NVRAM array");
        const nvram = copyOf(r.rest());
        const expected = meta!.nvram;
        const sha = createHash("sha256").update(nvram).digest("hex");
        if (expected === null || nvram.length !== expected.sizeBytes || sha !== expected.sha256) {
          failHere(`${nvram.length} bytes, SHA-256 ${sha.slice(0, 16)}...; the metadata says ${expected === null ? "the board has no NVRAM" : `${expected.sizeBytes} bytes, ${expected.sha256.slice(0, 16)}...`}: corrupt`);
        }
        this.nvram = nvram;
        break;
      }
      case RecordKind.FuzzStart: {
        if (this.timedCount > 0) failHere("the fuzz start after the first timed record");
        if (this.fuzzStart !== undefined) failHere("a second fuzz start");
        this.fuzzStart = checkFuzzStart(r.json("fuzz start"), failHere);
        break;
      }
      case RecordKind.DiskChunk: {
        if (this.timedCount > 0) failHere("a disk chunk after the first timed record");
        const disk = r.varint("disk index");
        const chunk = r.varint("chunk index");
        const data = r.rest();
        const d = meta!.disks[disk];
        if (d === undefined) failHere(`disk index ${disk}: the metadata lists ${meta!.disks.length} disks`);
        if (!d!.copied) failHere(`disk ${d!.name}: its metadata says it was not copied`);
        if (data.length !== DISK_CHUNK_BYTES || (chunk + 1) * DISK_CHUNK_BYTES > d!.sizeBytes) {
          failHere(`disk ${d!.name} chunk ${chunk}: ${data.length} bytes at ${chunk * DISK_CHUNK_BYTES}, outside its ${d!.sizeBytes} bytes in ${DISK_CHUNK_BYTES}-byte chunks`);
        }
        this.chunks.push({ disk, chunk, bytes: copyOf(data) });
        break;
      }
      case RecordKind.Opened: {
        const p = place();
        const portal = r.varint("portal");
        if (portal > 0xffff) failHere(`portal ${portal}: the NIC numbers portals 0..65535`);
        const slot = r.varint("connection + 1");
        if (slot > CONNECTIONS_MAX) failHere(`connection + 1 = ${slot}: the NIC has slots 0..${CONNECTIONS_MAX - 1}`);
        result = timed({ kind, index, offset: fileOffset, at: p, portal, connection: slot === 0 ? undefined : slot - 1 });
        break;
      }
      case RecordKind.Received: {
        const p = place();
        const c = connection();
        const data = r.rest();
        if (data.length === 0) failHere("no bytes");
        result = timed({ kind, index, offset: fileOffset, at: p, connection: c, bytes: data, lasting: this.source.lasting?.(data) === true });
        break;
      }
      case RecordKind.ReceivedDeflated: {
        const p = place();
        const c = connection();
        const lengthBytes = r.varint("length");
        if (lengthBytes === 0 || lengthBytes > RECORD_PAYLOAD_BYTES_MAX) failHere(`length ${lengthBytes}: expected 1..${RECORD_PAYLOAD_BYTES_MAX}`);
        let data: Uint8Array;
        try {
          data = inflateRawSync(r.rest(), { maxOutputLength: lengthBytes });
        } catch (error) {
          return failHere(`the deflated bytes do not inflate to ${lengthBytes} bytes (${(error as Error).message})`);
        }
        if (data.length !== lengthBytes) failHere(`the deflated bytes inflate to ${data.length} bytes, the record says ${lengthBytes}`);
        // Read as the received record it stands for.
        result = timed({ kind: RecordKind.Received, index, offset: fileOffset, at: p, connection: c, bytes: data, lasting: true });
        break;
      }
      case RecordKind.ReceivedSparse: {
        if (this.version < 3) failHere(`a received-sparse record in a version-${this.version} recording (they came with version 3)`);
        const p = place();
        const c = connection();
        const lengthBytes = r.varint("length");
        if (lengthBytes === 0 || lengthBytes > RECORD_PAYLOAD_BYTES_MAX) failHere(`length ${lengthBytes}: expected 1..${RECORD_PAYLOAD_BYTES_MAX}`);
        const blocks = Math.ceil(lengthBytes / SPARSE_BLOCK_BYTES);
        const rest = r.rest();
        const bitmapBytes = (blocks + 7) >> 3;
        if (rest.length < bitmapBytes) failHere(`${rest.length} bytes left for a bitmap of ${bitmapBytes} bytes (${blocks} blocks of ${SPARSE_BLOCK_BYTES})`);
        const bitmap = rest.subarray(0, bitmapBytes);
        if (blocks % 8 !== 0 && bitmap[bitmapBytes - 1]! >> (blocks % 8) !== 0) failHere(`the bitmap marks blocks past the ${blocks} that ${lengthBytes} bytes make`);
        const data = new Uint8Array(lengthBytes);
        let from = bitmapBytes;
        for (let k = 0; k < blocks; k++) {
          if ((bitmap[k >> 3]! & (1 << (k & 7))) === 0) continue;
          const size = Math.min(SPARSE_BLOCK_BYTES, lengthBytes - k * SPARSE_BLOCK_BYTES);
          if (from + size > rest.length) failHere(`the bitmap marks more stored blocks than the ${rest.length - bitmapBytes} bytes after it hold`);
          copyBytes(data, k * SPARSE_BLOCK_BYTES, rest.subarray(from, from + size));
          from += size;
        }
        if (from !== rest.length) failHere(`${rest.length - from} bytes left over after the stored blocks the bitmap marks`);
        // Read as the received record it stands for.
        result = timed({ kind: RecordKind.Received, index, offset: fileOffset, at: p, connection: c, bytes: data, lasting: true });
        break;
      }
      case RecordKind.PeerClosed:
      case RecordKind.BoardClosed:
        result = timed({ kind, index, offset: fileOffset, at: place(), connection: connection() });
        break;
      case RecordKind.Control:
        result = timed({ kind, index, offset: fileOffset, at: place(), request: r.json("control request") });
        break;
      case RecordKind.Reset:
        result = timed({ kind, index, offset: fileOffset, at: place() });
        break;
      case RecordKind.Fault: {
        const p = place();
        const fault = r.json("fault");
        if (typeof fault !== "object" || fault === null || !(typeof (fault as { device?: unknown }).device === "string" || typeof (fault as { processor?: unknown }).processor === "string")) {
          failHere("fault: expected {device, fault} or {processor, fail}");
        }
        result = timed({ kind, index, offset: fileOffset, at: p, fault });
        break;
      }
      case RecordKind.Note: {
        const p = place();
        const note = r.json("note") as { source?: unknown; event?: unknown; fields?: unknown };
        if (typeof note !== "object" || note === null || typeof note.source !== "string" || typeof note.event !== "string" || typeof note.fields !== "object" || note.fields === null ||
          !Object.values(note.fields).every((v) => typeof v === "string" || typeof v === "number")) {
          failHere("note: expected {source, event, fields} with string or number fields");
        }
        result = timed({ kind, index, offset: fileOffset, at: p, note: note as { source: string; event: string; fields: Record<string, number | string> } });
        break;
      }
      case RecordKind.Sent: {
        const p = place();
        const c = connection();
        const lengthBytes = r.varint("length");
        const crc = r.u32("CRC-32");
        result = timed({ kind, index, offset: fileOffset, at: p, connection: c, lengthBytes, crc });
        break;
      }
      case RecordKind.End: {
        const p = place();
        result = timed({ kind, index, offset: fileOffset, at: p, end: checkEnd(r.json("end"), failHere) });
        break;
      }
      case RecordKind.Seal:
        if (this.end === undefined) failHere("a seal before the end");
        this.seal = checkSeal(r.json("seal"), failHere);
        break;
    }
    r.done();
    this.offset = offset + recordBytes;
    this.index += 1;
    return result;
  }
}

/** Parses a whole recording held in memory; throws RecordingError with one line naming the file, the record and the byte offset. */
export function parseRecording(bytes: Uint8Array, file: string): Recording {
  const reader = new RecordingReader(new BytesSource(bytes), file);
  const events = reader.all();
  return { file, meta: reader.meta, firmware: reader.firmware, nvram: reader.nvram, chunks: reader.chunks, fuzzStart: reader.fuzzStart, events, end: reader.end!, seal: reader.seal };
}

/** Opens a recording file to read through a window (close() it after). */
export function openRecording(path: string): RecordingReader {
  const source = new FileSource(path, true);
  try {
    return new RecordingReader(source, path);
  } catch (error) {
    source.close();
    throw error;
  }
}

/** The records of an in-memory recording as a stream. */
export function streamOf(recording: Recording): RecordStream {
  let cursor = 0;
  return {
    file: recording.file, meta: recording.meta, firmware: recording.firmware, nvram: recording.nvram, chunks: recording.chunks, fuzzStart: recording.fuzzStart,
    peek: () => recording.events[cursor],
    advance: () => {
      if (cursor < recording.events.length) cursor += 1;
    },
    get end() {
      return cursor >= recording.events.length - 1 ? recording.end : undefined;
    },
    get seal() {
      return recording.seal;
    },
  };
}

type Fail = (message: string) => never;

function field<T>(object: Record<string, unknown>, name: string, check: (v: unknown) => boolean, expected: string, fail: Fail): T {
  const value = object[name];
  if (!check(value)) fail(`field ${name}: expected ${expected}, got ${JSON.stringify(value)?.slice(0, 60)}`);
  return value as T;
}

const isString = (v: unknown) => typeof v === "string";
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isSha = (v: unknown) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v);

function checkMeta(value: unknown, fail: Fail): RecordingMeta {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("metadata: expected a JSON object");
  const o = value as Record<string, unknown>;
  field(o, "tool", isString, "a string", fail);
  field(o, "command", isString, "a string", fail);
  field(o, "created", isString, "a string", fail);
  field(o, "boardFile", isString, "a string", fail);
  field(o, "spec", (v) => typeof v === "object" && v !== null && Array.isArray((v as { processors?: unknown }).processors) && Array.isArray((v as { disks?: unknown }).disks), "a board spec with processors and disks", fail);
  field(o, "seed", isCount, "an integer >= 0", fail);
  field(o, "firmwareSha256", isSha, "64 hex digits", fail);
  field(o, "bootSlot", (v) => v === null || v === "A" || v === "B", "null, \"A\" or \"B\"", fail);
  field(o, "bootTrial", (v) => typeof v === "boolean", "true or false", fail);
  field(o, "verbose", (v) => typeof v === "boolean", "true or false", fail);
  const portals = field<unknown[]>(o, "portals", Array.isArray, "an array", fail);
  portals.forEach((p, i) => {
    if (typeof p !== "object" || p === null || typeof (p as { host?: unknown }).host !== "string" || !isCount((p as { port?: unknown }).port)) fail(`portals[${i}]: expected {host, port}`);
  });
  const disks = field<unknown[]>(o, "disks", Array.isArray, "an array", fail);
  disks.forEach((d, i) => {
    if (typeof d !== "object" || d === null) fail(`disks[${i}]: expected an object`);
    const disk = d as Record<string, unknown>;
    const at = (message: string) => fail(`disks[${i}]: ${message}`);
    field(disk, "name", isString, "a string", at);
    field(disk, "sizeBytes", (v) => isCount(v) && (v as number) > 0, "a size > 0", at);
    field(disk, "blockSize", (v) => v === 512 || v === 4096, "512 or 4096", at);
    field(disk, "backend", (v) => v === "file" || v === "memory", "\"file\" or \"memory\"", at);
    field(disk, "sha256", isSha, "64 hex digits", at);
    field(disk, "copied", (v) => typeof v === "boolean", "true or false", at);
  });
  field(o, "nvram", (v) => v === null || (typeof v === "object" && isCount((v as { sizeBytes?: unknown }).sizeBytes) && isSha((v as { sha256?: unknown }).sha256)), "null or {sizeBytes, sha256}", fail);
  return o as unknown as RecordingMeta;
}

function checkEnd(value: unknown, fail: Fail): RecordingEnd {
  if (typeof value !== "object" || value === null) return fail("end: expected a JSON object");
  const o = value as Record<string, unknown>;
  field(o, "reason", isString, "a string", fail);
  field(o, "sentBytes", isCount, "an integer >= 0", fail);
  field(o, "sends", isCount, "an integer >= 0", fail);
  field(o, "sendsSha256", isSha, "64 hex digits", fail);
  field(o, "sentSha256", (v) => v === null || isSha(v), "null or 64 hex digits", fail);
  field(o, "traceHash", (v) => v === null || isSha(v), "null or 64 hex digits", fail);
  field(o, "traceEvents", (v) => v === null || isCount(v), "null or an integer >= 0", fail);
  return o as unknown as RecordingEnd;
}

function checkSeal(value: unknown, fail: Fail): RecordingSeal {
  if (typeof value !== "object" || value === null) return fail("seal: expected a JSON object");
  const o = value as Record<string, unknown>;
  field(o, "traceHash", isSha, "64 hex digits", fail);
  field(o, "traceEvents", isCount, "an integer >= 0", fail);
  field(o, "sentSha256", isSha, "64 hex digits", fail);
  field(o, "by", isString, "a string", fail);
  return o as unknown as RecordingSeal;
}

function checkFuzzStart(value: unknown, fail: Fail): FuzzStart {
  if (typeof value !== "object" || value === null) return fail("fuzz start: expected a JSON object");
  const o = value as Record<string, unknown>;
  field(o, "target", isString, "a string", fail);
  field(o, "seed", isCount, "an integer >= 0", fail);
  field(o, "input", (v) => typeof v === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(v), "base64", fail);
  field(o, "snapshot", (v) => typeof v === "object" && v !== null && isCount((v as { eventCount?: unknown }).eventCount) && isCount((v as { timeNs?: unknown }).timeNs), "{eventCount, timeNs}", fail);
  return o as unknown as FuzzStart;
}
