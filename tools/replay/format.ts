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
// Version 2: received bytes may be deflated (RecordKind.ReceivedDeflated). Version 3: they may be stored with their
// zero blocks left out (RecordKind.ReceivedSparse). Version 4: pad records (RecordKind.Pad), which the recording's
// writer puts where the file must reach a multiple of PAD_ALIGN_BYTES for its O_DIRECT writes, and varints may carry
// redundant 0x80 bytes (the writer places received bytes at their source's alignment). Versions 2 to 4 are read; a
// version-1 file is refused by name.
export const RECORDING_VERSION = 4;
export const RECORDING_VERSIONS_READ: readonly number[] = [2, 3, 4];
/** The recording's writer writes whole multiples of this at offsets that are multiples of it (O_DIRECT). */
export const PAD_ALIGN_BYTES = 4096;
/** A pad record's framing: kind, a length varint always written in 2 bytes, the CRC-32. */
export const PAD_FRAMING_BYTES = 7;
/** The longest pad record (it fills a gap of fewer than PAD_FRAMING_BYTES with another PAD_ALIGN_BYTES). */
export const PAD_BYTES_MAX = PAD_ALIGN_BYTES + PAD_FRAMING_BYTES - 1;
/** A received-sparse record's block: its bitmap has a bit for each (the last block may be shorter). */
export const SPARSE_BLOCK_BYTES = 512;
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
  ReceivedDeflated = 16, // |at|connection varint|length varint|the bytes, raw deflate (RFC 1951)|: a Received record, compressed
  ReceivedSparse = 18, // |at|connection varint|length varint|bitmap, a bit a 512-byte block (set: stored)|the stored blocks|: a Received record (version 3)
  FuzzStart = 17, // JSON: FuzzStart, after the firmware (fuzz --replay --record): the board is a fuzz target's, at its snapshot
  Pad = 19, // zeros (version 4): skipped by readers, anywhere after the header; not counted in record numbers
}
// where |at| is |board-event count delta varint|board time delta varint, ns|.

export const RECORD_KIND_NAMES: Record<RecordKind, string> = {
  [RecordKind.Meta]: "meta", [RecordKind.DiskChunk]: "disk-chunk", [RecordKind.Opened]: "opened", [RecordKind.Received]: "received",
  [RecordKind.PeerClosed]: "peer-closed", [RecordKind.Control]: "control", [RecordKind.Reset]: "reset", [RecordKind.Sent]: "sent",
  [RecordKind.BoardClosed]: "board-closed", [RecordKind.End]: "end", [RecordKind.Seal]: "seal",
  [RecordKind.Firmware]: "firmware", [RecordKind.Fault]: "fault", [RecordKind.Note]: "note",
  [RecordKind.Nvram]: "nvram", [RecordKind.ReceivedDeflated]: "received-deflated",
  [RecordKind.FuzzStart]: "fuzz-start", [RecordKind.ReceivedSparse]: "received-sparse", [RecordKind.Pad]: "pad",
};

/**
 * Bytes of the pad record that takes a file from `at` to the next multiple of PAD_ALIGN_BYTES (0 when it is one).
 * Its length varint always takes 2 bytes, so any gap of PAD_FRAMING_BYTES or more is filled exactly; a smaller one
 * is filled with another PAD_ALIGN_BYTES.
 */
export function padBytesAt(at: number): number {
  const gap = (PAD_ALIGN_BYTES - (at % PAD_ALIGN_BYTES)) % PAD_ALIGN_BYTES;
  return gap === 0 ? 0 : gap < PAD_FRAMING_BYTES ? gap + PAD_ALIGN_BYTES : gap;
}

/** Writes a pad record of `bytes` (padBytesAt) at `at` of `into`, its CRC-32 included; returns where it ends. */
export function putPad(into: Uint8Array, at: number, bytes: number): number {
  const zeros = bytes - PAD_FRAMING_BYTES;
  into[at] = RecordKind.Pad;
  into[at + 1] = (zeros & 0x7f) | 0x80;
  into[at + 2] = zeros >> 7;
  into.fill(0, at + 3, at + 3 + zeros);
  const c = crc32(into.subarray(at, at + 3 + zeros));
  const end = at + bytes;
  into[end - 4] = c & 0xff;
  into[end - 3] = (c >>> 8) & 0xff;
  into[end - 2] = (c >>> 16) & 0xff;
  into[end - 1] = (c >>> 24) & 0xff;
  return end;
}

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

/**
 * Where a fuzz finding's recording starts (`fuzz --replay FILE --record OUT`): the board is fuzzing target `target`'s
 * (tools/fuzz/targets/), booted with the recorded image and `seed` and brought to its snapshot by the target's own
 * prepare(), at board place `snapshot`; then `input` (the reproducer's bytes, base64) ran. The timed records are what
 * passed the door while it ran; a replay runs the same input again and checks every one of them, inputs included
 * (the target's direct bus and DMA accesses do not pass the door: the input makes them again).
 */
export interface FuzzStart {
  target: string;
  seed: number;
  input: string;
  snapshot: { eventCount: number; timeNs: number };
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

/**
 * The running SHA-256 of sends as a recording lists them (RecordingEnd.sendsSha256). The entries are gathered and
 * hashed 4 096 at a time: one call into the hash per send cost about as much as the send's record.
 */
export class SendsDigest {
  private readonly hash = createHash("sha256");
  private readonly entries = Buffer.alloc(10 * 4096);
  private used = 0;
  count = 0;
  bytes = 0;

  add(connection: number, lengthBytes: number, crc: number): void {
    const e = this.entries;
    let at = this.used;
    e[at++] = connection & 0xff;
    e[at++] = (connection >>> 8) & 0xff;
    e[at++] = lengthBytes & 0xff;
    e[at++] = (lengthBytes >>> 8) & 0xff;
    e[at++] = (lengthBytes >>> 16) & 0xff;
    e[at++] = (lengthBytes >>> 24) & 0xff;
    e[at++] = crc & 0xff;
    e[at++] = (crc >>> 8) & 0xff;
    e[at++] = (crc >>> 16) & 0xff;
    e[at++] = (crc >>> 24) & 0xff;
    this.used = at;
    if (at === e.length) {
      this.hash.update(e);
      this.used = 0;
    }
    this.count += 1;
    this.bytes += lengthBytes;
  }

  digest(): string {
    return this.hash.copy().update(this.entries.subarray(0, this.used)).digest("hex");
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

  /**
   * `header`: begin with the file's header (default). `crcLater`: leave each record's CRC-32 as zeros, for the
   * recording's file writer to compute off the board's thread (record_file.ts).
   */
  constructor(options: { header?: boolean; crcLater?: boolean } = {}) {
    this.crcLater = options.crcLater === true;
    if (options.header === false) return;
    this.bytes(Buffer.from(RECORDING_MAGIC, "ascii"));
    this.u16(RECORDING_VERSION);
    this.u16(0);
  }

  private readonly crcLater: boolean;

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
    let crc = this.crcLater ? 0 : crc32(this.buffer.subarray(start, this.length));
    if (external !== undefined) {
      if (!this.crcLater) crc = crc32(external, crc);
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
