// The recording file of `wasm-iop run --record` and `wasm-iop replay` (docs/replay.md, "The format"): a header, then
// records, each framed with its kind, its length and a CRC-32, so a reader names the first bad byte instead of
// guessing. Integers are unsigned LEB128 varints; board time and the board-event count are deltas from the record
// before, so a record of a few received bytes costs a few bytes of framing.
//
//   header  |0 magic "wiop-rec" (8 ASCII bytes)|8 version u16 LE|10 flags u16 LE, 0|
//   record  |0 kind u8|1 payload length varint|payload|CRC-32 (IEEE, zlib's) u32 LE of kind, length and payload|
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";

export const RECORDING_MAGIC = "wiop-rec";
export const RECORDING_VERSION = 1;
export const HEADER_BYTES = 12;
/** A record's payload may not claim more than this (a received chunk, a disk chunk, the metadata). */
export const RECORD_PAYLOAD_BYTES_MAX = 64 << 20;
/** --record-disks copies a disk in chunks of this size, only those holding a non-zero byte. */
export const DISK_CHUNK_BYTES = 64 * 1024;

export enum RecordKind {
  Meta = 1, // JSON: what was run (RecordingMeta); always the first record
  DiskChunk = 2, // |disk index varint|chunk index varint|the chunk's bytes|, --record-disks only, before any timed record
  Opened = 3, // |at|portal varint|connection + 1 varint (0: refused)|
  Received = 4, // |at|connection varint|the bytes|
  PeerClosed = 5, // |at|connection varint|
  Control = 6, // |at|the ControlRequest as JSON|
  Reset = 7, // |at|
  Sent = 8, // |at|connection varint|length varint|CRC-32 u32 LE of the bytes|   (output: checked, not applied)
  BoardClosed = 9, // |at|connection varint|                                 (output)
  End = 10, // |at|JSON: RecordingEnd|; the last record but a Seal
  Seal = 11, // JSON: RecordingSeal; written after End by the verifying replay at shutdown
  Firmware = 12, // the firmware image's bytes (its SHA-256 is the metadata's firmwareSha256); the second record
  Fault = 13, // |at|the BoardFault as JSON| (simulate: a fault injected into a device model or a processor)
  Note = 14, // |at|the TraceNote as JSON| (simulate: a line its own events wrote to the board's trace)
  Nvram = 15, // the NVRAM card's array as it was at power-on (its SHA-256 is the metadata's nvram.sha256), before any timed record
}
// where |at| is |board-event count delta varint|board time delta varint, ns|.

export const RECORD_KIND_NAMES: Record<RecordKind, string> = {
  [RecordKind.Meta]: "meta", [RecordKind.DiskChunk]: "disk-chunk", [RecordKind.Opened]: "opened", [RecordKind.Received]: "received",
  [RecordKind.PeerClosed]: "peer-closed", [RecordKind.Control]: "control", [RecordKind.Reset]: "reset", [RecordKind.Sent]: "sent",
  [RecordKind.BoardClosed]: "board-closed", [RecordKind.End]: "end", [RecordKind.Seal]: "seal",
  [RecordKind.Firmware]: "firmware", [RecordKind.Fault]: "fault", [RecordKind.Note]: "note",
  [RecordKind.Nvram]: "nvram",
};

export interface RecordedDisk {
  name: string;
  sizeBytes: number;
  blockSize: 512 | 4096;
  backend: "file" | "memory";
  sha256: string; // of its initial contents (diskContentsHash)
  copied: boolean; // its non-zero chunks follow as DiskChunk records
}

export interface RecordingMeta {
  tool: string; // "wasm-iop 0.1.0"
  command: string; // "run", "simulate"
  created: string; // ISO date, for people only
  boardFile: string; // the path it was read from, for people only
  spec: unknown; // the BoardSpec the board was built from, as JSON
  seed: number;
  firmwareSha256: string;
  bootSlot: "A" | "B" | null; // what the boot ROM chose at the first power-on (null: the image was run directly)
  bootTrial: boolean;
  portals: { host: string; port: number }[]; // as bound: the configuration ROM names them
  verbose: boolean;
  disks: RecordedDisk[];
  /** The NVRAM card's array at power-on (null: the board has none); its bytes follow in an nvram record unless all zero. */
  nvram: { sizeBytes: number; sha256: string } | null;
}

export interface RecordingEnd {
  reason: string; // "SIGINT", "panic", "end of simulation", ...
  sentBytes: number;
  sends: number;
  /** SHA-256 of the sends as recorded: |connection u16 LE|length u32 LE|CRC-32 u32 LE| each, in order (cheap to keep live). */
  sendsSha256: string;
  /** SHA-256 of every byte the NIC handed to the network, in order, all connections; null when not computed live (the seal has it). */
  sentSha256: string | null;
  traceHash: string | null; // the live trace's SHA-256, when the run had its trace on
  traceEvents: number | null;
}

export interface RecordingSeal {
  traceHash: string;
  traceEvents: number;
  sentSha256: string; // of every byte sent, computed by the checking replay
  by: string; // how it was computed: "replay at shutdown"
}

/** A recording that cannot be read: `message` is one line naming the file, what is wrong and where. */
export class RecordingError extends Error {
  override name = "RecordingError";
}

/** The running SHA-256 of sends as a recording lists them (RecordingEnd.sendsSha256). */
export class SendsDigest {
  private readonly hash = createHash("sha256");
  private readonly entry = Buffer.alloc(10);
  count = 0;
  bytes = 0;

  add(connection: number, lengthBytes: number, crc: number): void {
    this.entry.writeUInt16LE(connection, 0);
    this.entry.writeUInt32LE(lengthBytes, 2);
    this.entry.writeUInt32LE(crc, 6);
    this.hash.update(this.entry);
    this.count += 1;
    this.bytes += lengthBytes;
  }

  digest(): string {
    return this.hash.copy().digest("hex");
  }
}

// --- Writing ---

/**
 * Builds records into one growing buffer, flushed by its owner; varints and records go through here. A record's last
 * field may be a large block of bytes kept by reference (data()): it is written out from where it lies, not copied
 * into the buffer, so recording a received chunk costs its CRC and the system call's copy only.
 */
export class RecordWriter {
  private buffer = new Uint8Array(1 << 16);
  private length = 0;
  private segmentStart = 0; // where the buffer's part not yet in `pieces` starts
  private pieces: Uint8Array[] = []; // what is ready to write, in order, before buffer[segmentStart, length)
  private piecesBytes = 0;
  private external: Uint8Array | undefined; // the current record's data() block
  private lastCount = 0;
  private lastTimeNs = 0;

  constructor() {
    this.bytes(Buffer.from(RECORDING_MAGIC, "ascii"));
    this.u16(RECORDING_VERSION);
    this.u16(0);
  }

  /** Takes what was written so far, as pieces to write in order (valid until the next record). */
  takePieces(): Uint8Array[] {
    const pieces = this.pieces;
    if (this.length > this.segmentStart) pieces.push(this.buffer.subarray(this.segmentStart, this.length));
    this.pieces = [];
    this.piecesBytes = 0;
    this.length = 0;
    this.segmentStart = 0;
    return pieces;
  }

  /** Takes what was written so far, in one array. */
  take(): Uint8Array {
    return Buffer.concat(this.takePieces());
  }

  get pendingBytes(): number {
    return this.piecesBytes + this.length - this.segmentStart;
  }

  /** One record: `payload` writes its fields through the writer (use at() first for a timed record, data() last). */
  record(kind: RecordKind, payloadBytesMax: number, payload: (w: RecordWriter) => void): void {
    // The payload goes after a length slot sized for its bound; the length is then written where it belongs.
    const lengthBytes = varintBytes(payloadBytesMax);
    const start = this.length;
    this.ensure(1 + lengthBytes + Math.min(payloadBytesMax, 1 << 16) + 4);
    this.buffer[this.length++] = kind;
    const lengthAt = this.length;
    this.length += lengthBytes;
    const payloadAt = this.length;
    this.external = undefined;
    payload(this);
    const external = this.external as Uint8Array | undefined;
    this.external = undefined;
    const fieldsLength = this.length - payloadAt;
    const payloadLength = fieldsLength + (external?.length ?? 0);
    if (payloadLength > payloadBytesMax) throw new Error(`RecordWriter: ${RECORD_KIND_NAMES[kind]} payload ${payloadLength} bytes over its bound ${payloadBytesMax}`);
    const actualLengthBytes = varintBytes(payloadLength);
    if (actualLengthBytes !== lengthBytes) {
      this.buffer.copyWithin(lengthAt + actualLengthBytes, payloadAt, this.length);
      this.length -= lengthBytes - actualLengthBytes;
    }
    let at = lengthAt;
    let value = payloadLength;
    do {
      let byte = value % 128;
      value = Math.floor(value / 128);
      if (value > 0) byte |= 0x80;
      this.buffer[at++] = byte;
    } while (value > 0);
    let crc = crc32(this.buffer.subarray(start, this.length));
    if (external !== undefined) {
      crc = crc32(external, crc);
      this.pieces.push(this.buffer.subarray(this.segmentStart, this.length), external);
      this.piecesBytes += this.length - this.segmentStart + external.length;
      this.segmentStart = this.length;
    }
    this.u32(crc);
  }

  /** The record's last field, kept by reference until written out: the caller must not change it meanwhile. */
  data(bytes: Uint8Array): void {
    if (this.external !== undefined) throw new Error("RecordWriter.data: one block per record, as its last field");
    this.external = bytes;
  }

  /** A timed record's place: the deltas from the timed record before. */
  at(eventCount: number, timeNs: number): void {
    this.varint(eventCount - this.lastCount);
    this.varint(timeNs - this.lastTimeNs);
    this.lastCount = eventCount;
    this.lastTimeNs = timeNs;
  }

  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`RecordWriter.varint: ${value} is not a non-negative integer`);
    this.ensure(8);
    do {
      let byte = value % 128;
      value = Math.floor(value / 128);
      if (value > 0) byte |= 0x80;
      this.buffer[this.length++] = byte;
    } while (value > 0);
  }

  u16(value: number): void {
    this.ensure(2);
    this.buffer[this.length++] = value & 0xff;
    this.buffer[this.length++] = (value >>> 8) & 0xff;
  }

  u32(value: number): void {
    this.ensure(4);
    for (let i = 0; i < 4; i++) this.buffer[this.length++] = (value >>> (8 * i)) & 0xff;
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  private ensure(more: number): void {
    if (this.external !== undefined) throw new Error("RecordWriter: data() must be the record's last field");
    if (this.length + more <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + more) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }
}

/** Bytes a varint of `value` takes. */
export function varintBytes(value: number): number {
  let count = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    count += 1;
  }
  return count;
}

// --- Reading ---

export interface TimedPlace {
  eventCount: number;
  timeNs: number;
}

export type Recorded =
  | { kind: RecordKind.Opened; index: number; offset: number; at: TimedPlace; portal: number; connection: number | undefined }
  | { kind: RecordKind.Received; index: number; offset: number; at: TimedPlace; connection: number; bytes: Uint8Array }
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
  /** The timed records in order, End last. */
  events: Recorded[];
  end: Extract<Recorded, { kind: RecordKind.End }>;
  seal: RecordingSeal | undefined;
}

/** Connection slots a NIC has (host/devices/nic.ts, NIC_CONN_MAX); a record naming another is corrupt. */
const CONNECTIONS_MAX = 64;

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

/** Parses a whole recording; throws RecordingError with one line naming the file, the record and the byte offset. */
export function parseRecording(bytes: Uint8Array, file: string): Recording {
  const fail = (message: string): never => {
    throw new RecordingError(`${file}: ${message}`);
  };
  if (bytes.length < HEADER_BYTES) fail(`${bytes.length} bytes: too short for the ${HEADER_BYTES}-byte header; not a recording, or truncated`);
  const magic = Buffer.from(bytes.subarray(0, 8)).toString("latin1");
  if (magic !== RECORDING_MAGIC) fail(`byte 0: magic ${JSON.stringify(magic)}, expected ${JSON.stringify(RECORDING_MAGIC)}: not a wasm-iop recording`);
  const version = bytes[8]! | (bytes[9]! << 8);
  if (version !== RECORDING_VERSION) fail(`byte 8: format version ${version}; this wasm-iop reads version ${RECORDING_VERSION}`);
  const flags = bytes[10]! | (bytes[11]! << 8);
  if (flags !== 0) fail(`byte 10: flags 0x${flags.toString(16)}, expected 0`);

  let meta: RecordingMeta | undefined;
  let firmware: Uint8Array | undefined;
  let nvram: Uint8Array | undefined;
  const chunks: DiskChunk[] = [];
  const events: Recorded[] = [];
  let end: Extract<Recorded, { kind: RecordKind.End }> | undefined;
  let seal: RecordingSeal | undefined;
  let eventCount = 0;
  let timeNs = 0;
  let offset = HEADER_BYTES;
  for (let index = 0; offset < bytes.length; index++) {
    const where = `record ${index} at byte ${offset}`;
    const kind = bytes[offset]! as RecordKind;
    // The length varint, read by hand: the record's own reader needs it first.
    let length = 0;
    let scale = 1;
    let at = offset + 1;
    for (let i = 0; ; i++) {
      if (at >= bytes.length) fail(`${where}: truncated inside its length`);
      if (i >= 8) fail(`${where}: length varint longer than 8 bytes`);
      const byte = bytes[at++]!;
      length += (byte & 0x7f) * scale;
      scale *= 128;
      if ((byte & 0x80) === 0) break;
    }
    const payloadAt = at;
    if (length > RECORD_PAYLOAD_BYTES_MAX) fail(`${where}: payload length ${length} over the ${RECORD_PAYLOAD_BYTES_MAX} allowed`);
    if (payloadAt + length + 4 > bytes.length) fail(`${where}: truncated: the record needs ${payloadAt + length + 4 - offset} bytes, ${bytes.length - offset} are left`);
    const crcAt = payloadAt + length;
    const stored = (bytes[crcAt]! | (bytes[crcAt + 1]! << 8) | (bytes[crcAt + 2]! << 16) | (bytes[crcAt + 3]! << 24)) >>> 0;
    const computed = crc32(bytes.subarray(offset, crcAt));
    if (stored !== computed) fail(`${where}: checksum 0x${stored.toString(16).padStart(8, "0")}, the bytes give 0x${computed.toString(16).padStart(8, "0")}: corrupt`);
    const name = RECORD_KIND_NAMES[kind];
    if (name === undefined) fail(`${where}: unknown record kind ${kind}`);
    const what = `${where} (${name})`;
    const failHere = (message: string): never => fail(`${what}: ${message}`);
    const r = new PayloadReader(bytes, payloadAt, crcAt, failHere);
    if (index === 0 && kind !== RecordKind.Meta) failHere("the first record must be meta");
    if (index > 0 && kind === RecordKind.Meta) failHere("a second meta record");
    if ((index === 1) !== (kind === RecordKind.Firmware)) failHere(index === 1 ? "the second record must be the firmware image" : "a second firmware image");
    if (seal !== undefined) failHere("a record after the seal");
    if (end !== undefined && kind !== RecordKind.Seal) failHere("a record after the end");
    const connection = (field = "connection"): number => {
      const value = r.varint(field);
      if (value >= CONNECTIONS_MAX) failHere(`${field} ${value}: the NIC has slots 0..${CONNECTIONS_MAX - 1}`);
      return value;
    };
    const place = (): TimedPlace => {
      eventCount += r.varint("board-event count delta");
      timeNs += r.varint("board time delta");
      if (!Number.isSafeInteger(timeNs) || !Number.isSafeInteger(eventCount)) failHere("board time or event count beyond 2^53");
      return { eventCount, timeNs };
    };
    switch (kind) {
      case RecordKind.Meta:
        meta = checkMeta(r.json("metadata"), failHere);
        break;
      case RecordKind.Firmware: {
        firmware = r.rest();
        const sha = createHash("sha256").update(firmware).digest("hex");
        if (sha !== meta!.firmwareSha256) failHere(`the image's SHA-256 is ${sha.slice(0, 16)}..., the metadata says ${meta!.firmwareSha256.slice(0, 16)}...: corrupt`);
        break;
      }
      case RecordKind.Nvram: {
        if (events.length > 0) failHere("the NVRAM's array after the first timed record");
        if (nvram !== undefined) failHere("a second NVRAM array");
        nvram = r.rest();
        const expected = meta!.nvram;
        const sha = createHash("sha256").update(nvram).digest("hex");
        if (expected === null || nvram.length !== expected.sizeBytes || sha !== expected.sha256) {
          failHere(`${nvram.length} bytes, SHA-256 ${sha.slice(0, 16)}...; the metadata says ${expected === null ? "the board has no NVRAM" : `${expected.sizeBytes} bytes, ${expected.sha256.slice(0, 16)}...`}: corrupt`);
        }
        break;
      }
      case RecordKind.DiskChunk: {
        if (events.length > 0) failHere("a disk chunk after the first timed record");
        const disk = r.varint("disk index");
        const chunk = r.varint("chunk index");
        const data = r.rest();
        const d = meta!.disks[disk];
        if (d === undefined) failHere(`disk index ${disk}: the metadata lists ${meta!.disks.length} disks`);
        if (!d!.copied) failHere(`disk ${d!.name}: its metadata says it was not copied`);
        if (data.length !== DISK_CHUNK_BYTES || (chunk + 1) * DISK_CHUNK_BYTES > d!.sizeBytes) {
          failHere(`disk ${d!.name} chunk ${chunk}: ${data.length} bytes at ${chunk * DISK_CHUNK_BYTES}, outside its ${d!.sizeBytes} bytes in ${DISK_CHUNK_BYTES}-byte chunks`);
        }
        chunks.push({ disk, chunk, bytes: data });
        break;
      }
      case RecordKind.Opened: {
        const p = place();
        const portal = r.varint("portal");
        if (portal > 0xffff) failHere(`portal ${portal}: the NIC numbers portals 0..65535`);
        const slot = r.varint("connection + 1");
        if (slot > CONNECTIONS_MAX) failHere(`connection + 1 = ${slot}: the NIC has slots 0..${CONNECTIONS_MAX - 1}`);
        events.push({ kind, index, offset, at: p, portal, connection: slot === 0 ? undefined : slot - 1 });
        break;
      }
      case RecordKind.Received: {
        const p = place();
        const c = connection();
        const data = r.rest();
        if (data.length === 0) failHere("no bytes");
        events.push({ kind, index, offset, at: p, connection: c, bytes: data });
        break;
      }
      case RecordKind.PeerClosed:
      case RecordKind.BoardClosed:
        events.push({ kind, index, offset, at: place(), connection: connection() });
        break;
      case RecordKind.Control:
        events.push({ kind, index, offset, at: place(), request: r.json("control request") });
        break;
      case RecordKind.Reset:
        events.push({ kind, index, offset, at: place() });
        break;
      case RecordKind.Fault: {
        const p = place();
        const fault = r.json("fault");
        if (typeof fault !== "object" || fault === null || !(typeof (fault as { device?: unknown }).device === "string" || typeof (fault as { processor?: unknown }).processor === "string")) {
          failHere("fault: expected {device, fault} or {processor, fail}");
        }
        events.push({ kind, index, offset, at: p, fault });
        break;
      }
      case RecordKind.Note: {
        const p = place();
        const note = r.json("note") as { source?: unknown; event?: unknown; fields?: unknown };
        if (typeof note !== "object" || note === null || typeof note.source !== "string" || typeof note.event !== "string" || typeof note.fields !== "object" || note.fields === null ||
          !Object.values(note.fields).every((v) => typeof v === "string" || typeof v === "number")) {
          failHere("note: expected {source, event, fields} with string or number fields");
        }
        events.push({ kind, index, offset, at: p, note: note as { source: string; event: string; fields: Record<string, number | string> } });
        break;
      }
      case RecordKind.Sent: {
        const p = place();
        const c = connection();
        const lengthBytes = r.varint("length");
        const crc = r.u32("CRC-32");
        events.push({ kind, index, offset, at: p, connection: c, lengthBytes, crc });
        break;
      }
      case RecordKind.End: {
        const p = place();
        end = { kind, index, offset, at: p, end: checkEnd(r.json("end"), failHere) };
        events.push(end);
        break;
      }
      case RecordKind.Seal:
        if (end === undefined) failHere("a seal before the end");
        seal = checkSeal(r.json("seal"), failHere);
        break;
    }
    r.done();
    offset = crcAt + 4;
  }
  if (meta === undefined || firmware === undefined) fail(`${meta === undefined ? "no records" : "no firmware image"} after the header: truncated`);
  if (end === undefined) {
    const last = events[events.length - 1];
    fail(`truncated: no end record after record ${last?.index ?? 0} (board time ${((last?.at.timeNs ?? 0) / 1e9).toFixed(6)} s), at byte ${bytes.length}; the recording board did not stop cleanly`);
  }
  if (meta!.nvram !== null && nvram === undefined) {
    nvram = new Uint8Array(meta!.nvram.sizeBytes);
    if (createHash("sha256").update(nvram).digest("hex") !== meta!.nvram.sha256) fail(`no nvram record, and the metadata's NVRAM hash is not that of zeros`);
  }
  return { file, meta: meta!, firmware: firmware!, nvram, chunks, events, end: end!, seal };
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
