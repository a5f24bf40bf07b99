// The recording format (tools/replay/format.ts) and its errors: a recording built record by record parses back to what
// was written; every class of field (header magic, version and flags; a record's kind, length, checksum and payload;
// the metadata, the firmware image, disk chunks, connections, the end and the seal; the order of records) mutated, with
// its checksum made right again where the point is to get past it, gives one line naming the file, what is wrong and
// where; and no truncation or flipped byte anywhere gives anything but such a line.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32, deflateRawSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DISK_CHUNK_BYTES, HEADER_BYTES, padBytesAt, putPad, RECORDING_VERSIONS_READ, RecordingError, RecordKind, type RecordingMeta, RecordWriter } from "../../../tools/replay/format.ts";
import { openRecording, parseRecording, type Recorded } from "../../../tools/replay/reader.ts";
import { type ReadAheadWindow, ReadAheadThread } from "../../../tools/replay/read_ahead.ts";
import { blankDiskHash } from "../../../tools/replay/disks.ts";
import { runCli } from "../../support/cli.ts";
import { testTempDir } from "../../support/temp_dir.ts";

const FIRMWARE = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
const SHA = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function meta(overrides: Partial<RecordingMeta> = {}): RecordingMeta {
  return {
    tool: "wasm-iop test", command: "run", created: "2026-12-07T00:00:00Z", boardFile: "boards/x.json",
    spec: { name: "x", processors: [], disks: [] }, seed: 7, firmwareSha256: SHA(FIRMWARE), bootSlot: null, bootTrial: false,
    portals: [{ host: "127.0.0.1", port: 3260 }], verbose: false, nvram: null,
    disks: [{ name: "d0", sizeBytes: 4 * DISK_CHUNK_BYTES, blockSize: 512, backend: "memory", sha256: blankDiskHash(4 * DISK_CHUNK_BYTES), copied: true }],
    ...overrides,
  };
}

interface Build {
  meta?: unknown;
  firmware?: Uint8Array;
  skipEnd?: boolean;
  extra?: (w: RecordWriter) => void; // records after the opened/received/sent ones, before the end
  afterEnd?: (w: RecordWriter) => void;
}

const json = (w: RecordWriter, kind: RecordKind, value: unknown) => {
  const text = Buffer.from(JSON.stringify(value));
  w.record(kind, text.length, (x) => x.bytes(text));
};

const END = { reason: "SIGINT", sentBytes: 3, sends: 1, sendsSha256: SHA(new Uint8Array(3)), sentSha256: null, traceHash: null, traceEvents: null };

// A small, valid recording: metadata, firmware, one disk chunk, a connection that receives and sends, the end.
function build(options: Build = {}): Uint8Array {
  const w = new RecordWriter();
  json(w, RecordKind.Meta, options.meta ?? meta());
  const firmware = options.firmware ?? FIRMWARE;
  w.record(RecordKind.Firmware, firmware.length, (x) => x.bytes(firmware));
  w.record(RecordKind.DiskChunk, 16 + DISK_CHUNK_BYTES, (x) => {
    x.varint(0);
    x.varint(2);
    x.bytes(new Uint8Array(DISK_CHUNK_BYTES).fill(1));
  });
  w.record(RecordKind.Opened, 32, (x) => {
    x.at(100, 1_000_000);
    x.varint(0);
    x.varint(1); // connection 0
  });
  w.record(RecordKind.Received, 64, (x) => {
    x.at(120, 1_500_000);
    x.varint(0);
    x.bytes(new Uint8Array([1, 2, 3, 4]));
  });
  w.record(RecordKind.Sent, 32, (x) => {
    x.at(130, 1_600_000);
    x.varint(0);
    x.varint(3);
    x.u32(crc32(new Uint8Array(3)));
  });
  options.extra?.(w);
  if (!options.skipEnd) {
    const text = Buffer.from(JSON.stringify(END));
    w.record(RecordKind.End, 32 + text.length, (x) => {
      x.at(200, 2_000_000);
      x.bytes(text);
    });
  }
  options.afterEnd?.(w);
  return new Uint8Array(w.take()); // not a Buffer: a Buffer's slice() is a view, and each mutation must start from the original
}

// Offsets of each record in a recording, for mutations that aim at one.
function records(bytes: Uint8Array): { offset: number; payloadAt: number; length: number }[] {
  const out = [];
  let offset = HEADER_BYTES;
  while (offset < bytes.length) {
    let length = 0;
    let scale = 1;
    let at = offset + 1;
    for (;;) {
      const b = bytes[at++]!;
      length += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) break;
    }
    out.push({ offset, payloadAt: at, length });
    offset = at + length + 4;
  }
  return out;
}

// Recomputes the checksum of the record at `offset` after a mutation inside it.
function fixCrc(bytes: Uint8Array, record: { offset: number; payloadAt: number; length: number }): void {
  const end = record.payloadAt + record.length;
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(end, crc32(bytes.subarray(record.offset, end)), true);
}

function error(bytes: Uint8Array): string {
  try {
    parseRecording(bytes, "t.rec");
  } catch (e) {
    expect(e).toBeInstanceOf(RecordingError);
    const message = (e as Error).message;
    expect(message).not.toContain("\n");
    expect(message.startsWith("t.rec: ")).toBe(true);
    return message;
  }
  throw new Error("the recording parsed");
}

describe("recording format", () => {
  it("reads a file through its window as it reads the same bytes whole: records across window edges, one larger than the window", () => {
    // 8 MiB window (reader.ts): 300 received records of 50-90 KiB cross its edge many times; one of 10 MiB outgrows it.
    const sizes = Array.from({ length: 300 }, (_, i) => 50_000 + ((i * 7919) % 40_000));
    sizes.splice(150, 0, 10 << 20);
    const bytes = build({
      extra: (w) => sizes.forEach((size, i) => w.record(RecordKind.Received, 32 + size, (x) => {
        x.at(140, 1_700_000 + i);
        x.varint(i % 3);
        x.bytes(new Uint8Array(size).fill(i & 0xff));
      })),
    });
    const path = join(testTempDir("wasm-iop-rec-"), "w.rec");
    writeFileSync(path, bytes);
    const whole = parseRecording(bytes, path);
    const reader = openRecording(path);
    const seen: { kind: RecordKind; index: number; length: number; first: number; last: number }[] = [];
    const summary = (r: Recorded) => {
      const data = r.kind === RecordKind.Received ? r.bytes : new Uint8Array(1);
      return { kind: r.kind, index: r.index, length: data.length, first: data[0]!, last: data[data.length - 1]! };
    };
    expect(reader.end).toBeUndefined();
    for (let r = reader.peek(); r !== undefined; r = reader.peek()) {
      seen.push(summary(r)); // the bytes are valid until advance()
      reader.advance();
    }
    reader.close();
    expect(seen).toHaveLength(sizes.length + 4);
    expect(seen).toEqual(whole.events.map(summary));
    expect(reader.end?.end).toEqual(whole.end.end);
    expect([...reader.firmware]).toEqual([...FIRMWARE]);
    expect(reader.chunks.map((c) => [c.disk, c.chunk, c.bytes.length])).toEqual([[0, 2, DISK_CHUNK_BYTES]]);
  });

  it("parses back what was written: metadata, firmware, chunks, timed records with their absolute places, the end", () => {
    const r = parseRecording(build(), "t.rec");
    expect(r.meta.seed).toBe(7);
    expect([...r.firmware]).toEqual([...FIRMWARE]);
    expect(r.chunks).toHaveLength(1);
    expect(r.chunks[0]!.chunk).toBe(2);
    expect(r.events.map((e) => e.kind)).toEqual([RecordKind.Opened, RecordKind.Received, RecordKind.Sent, RecordKind.End]);
    expect(r.events.map((e) => [e.at.eventCount, e.at.timeNs])).toEqual([[100, 1_000_000], [120, 1_500_000], [130, 1_600_000], [200, 2_000_000]]);
    expect(r.events[0]).toMatchObject({ portal: 0, connection: 0 });
    expect([...(r.events[1] as { bytes: Uint8Array }).bytes]).toEqual([1, 2, 3, 4]);
    expect(r.end.end.reason).toBe("SIGINT");
    expect(r.seal).toBeUndefined();
  });

  it("skips pad records (version 4) wherever they are, and refuses one in a version-3 file with one line", () => {
    const pad = (at: number) => {
      const bytes = padBytesAt(at);
      const out = new Uint8Array(bytes);
      putPad(out, 0, bytes);
      return out;
    };
    const plain = build();
    const at = records(plain).map((r) => r.offset); // meta, firmware, disk chunk, opened, received, sent, end
    // After the header, between the firmware and the disk chunk, between two timed records, two after the end.
    const cuts = [HEADER_BYTES, at[2]!, at[4]!, plain.length, plain.length];
    const pieces: Uint8Array[] = [];
    let from = 0;
    for (const cut of cuts) {
      pieces.push(plain.subarray(from, cut));
      pieces.push(pad(pieces.reduce((n, p) => n + p.length, 0) + (cut === HEADER_BYTES ? 1 : 5)));
      from = cut;
    }
    const padded = new Uint8Array(Buffer.concat(pieces));
    expect(padded.length).toBeGreaterThan(plain.length + 5 * 7);
    const summary = (bytes: Uint8Array) => {
      const r = parseRecording(bytes, "t.rec");
      return { meta: r.meta, firmware: [...r.firmware], chunks: r.chunks.length, events: r.events.map((e) => [e.kind, e.index, e.at.eventCount]), end: r.end.end };
    };
    expect(summary(padded)).toEqual(summary(plain)); // records numbered as without the pads
    const v3 = padded.slice();
    v3[8] = 3;
    expect(error(v3)).toMatch(new RegExp(`^t.rec: record 0 at byte ${HEADER_BYTES} \\(pad\\): a pad record in a version-3 file$`));
    expect(error(padded.subarray(0, padded.length - 1))).toMatch(/truncated/); // inside the last pad
  });

  it("names the header's field: magic, version, flags, and a file too short for a header", () => {
    const bad = (at: number, value: number) => {
      const bytes = build();
      bytes[at] = value;
      return error(bytes);
    };
    expect(bad(0, 0x58)).toMatch(/byte 0: magic .*not a wasm-iop recording/);
    expect(bad(8, 9)).toMatch(/byte 8: format version 9; this wasm-iop reads versions 2, 3 and 4/);
    expect(bad(10, 1)).toMatch(/byte 10: flags 0x1, expected 0/);
    expect(error(build().subarray(0, 5))).toMatch(/5 bytes: too short/);
  });

  it("names a record's framing: its checksum, its kind, its length, a truncation inside it", () => {
    const bytes = build();
    const received = records(bytes)[4]; // meta, firmware, disk chunk, opened, received
    const flipped = bytes.slice();
    flipped[received!.payloadAt + 3]! ^= 0x40; // a received byte
    expect(error(flipped)).toMatch(new RegExp(`record 4 at byte ${received!.offset}: checksum 0x[0-9a-f]{8}, the bytes give 0x[0-9a-f]{8}: corrupt`));
    const kind = bytes.slice();
    kind[received!.offset] = 99;
    fixCrc(kind, received!);
    expect(error(kind)).toMatch(/record 4 at byte \d+: unknown record kind 99/);
    expect(error(bytes.subarray(0, received!.offset + 1))).toMatch(/record 4 at byte \d+: truncated inside its length/);
    expect(error(bytes.subarray(0, received!.payloadAt + 2))).toMatch(/record 4 at byte \d+: truncated: the record needs \d+ bytes, \d+ are left/);
    const long = bytes.slice();
    long.set([0xff, 0xff, 0xff, 0x7f], received!.offset + 1);
    expect(error(long)).toMatch(/payload length \d+ over the \d+ allowed|truncated/);
  });

  it("names the metadata's field, and a firmware image that is not the one it names", () => {
    expect(error(build({ meta: "a string" }))).toMatch(/record 0 at byte 12 \(meta\): metadata: expected a JSON object/);
    expect(error(build({ meta: { ...meta(), seed: -1 } }))).toMatch(/\(meta\): field seed: expected an integer >= 0, got -1/);
    expect(error(build({ meta: { ...meta(), firmwareSha256: "xyz" } }))).toMatch(/field firmwareSha256: expected 64 hex digits/);
    expect(error(build({ meta: { ...meta(), disks: [{ ...meta().disks[0], blockSize: 1000 }] } }))).toMatch(/disks\[0\]: field blockSize: expected 512 or 4096, got 1000/);
    expect(error(build({ meta: { ...meta(), portals: [{ host: 1 }] } }))).toMatch(/portals\[0\]: expected \{host, port\}/);
    const bytes = build();
    const [m] = records(bytes);
    bytes[m!.payloadAt] = 0x5b; // '[': no longer JSON
    fixCrc(bytes, m!);
    expect(error(bytes)).toMatch(/\(meta\): metadata: not JSON/);
    const nvramMeta = { ...meta(), nvram: { sizeBytes: 8, sha256: SHA(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])) } };
    const withNvram = (bytes: Uint8Array) => {
      const w = new RecordWriter();
      json(w, RecordKind.Meta, nvramMeta);
      w.record(RecordKind.Firmware, FIRMWARE.length, (x) => x.bytes(FIRMWARE));
      w.record(RecordKind.Nvram, bytes.length, (x) => x.bytes(bytes));
      return w.take();
    };
    expect(error(withNvram(new Uint8Array(8)))).toMatch(/record 2 at byte \d+ \(nvram\): 8 bytes, SHA-256 [0-9a-f]{16}\.\.\.; the metadata says 8 bytes, [0-9a-f]{16}\.\.\.: corrupt/);
    expect(error(withNvram(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])))).toMatch(/truncated: no end record/); // the array itself is fine
    expect(error(build({ meta: nvramMeta }))).toMatch(/no nvram record, and the metadata's NVRAM hash is not that of zeros/);
    expect(error(build({ firmware: new Uint8Array([1, 2, 3]) }))).toMatch(/record 1 at byte \d+ \(firmware\): the image's SHA-256 is [0-9a-f]{16}\.\.\., the metadata says/);
  });

  it("reads a received-deflated record as the received bytes it holds, and names one whose bytes do not inflate to its length", () => {
    const data = new Uint8Array(5000).fill(7);
    const deflated = deflateRawSync(data);
    const withDeflated = (length: number, bytes: Uint8Array) => build({
      extra: (w) => w.record(RecordKind.ReceivedDeflated, 64 + bytes.length, (x) => {
        x.at(140, 1_700_000);
        x.varint(2);
        x.varint(length);
        x.bytes(bytes);
      }),
    });
    const r = parseRecording(withDeflated(data.length, deflated), "t.rec");
    const received = r.events.find((e) => e.index === 6)!;
    expect(received.kind).toBe(RecordKind.Received);
    expect(received).toMatchObject({ connection: 2, at: { eventCount: 140, timeNs: 1_700_000 } });
    expect(Buffer.from((received as { bytes: Uint8Array }).bytes).equals(Buffer.from(data))).toBe(true);
    expect(error(withDeflated(4999, deflated))).toMatch(/record 6 at byte \d+ \(received-deflated\): the deflated bytes do not inflate to 4999 bytes/);
    expect(error(withDeflated(5001, deflated))).toMatch(/\(received-deflated\): the deflated bytes inflate to 5000 bytes, the record says 5001/);
    expect(error(withDeflated(5000, deflated.subarray(0, 10)))).toMatch(/\(received-deflated\): the deflated bytes do not inflate to 5000 bytes/);
  });

  it("reads a received-sparse record as the bytes it stands for, and names a bitmap that does not match its bytes", () => {
    const data = new Uint8Array(1300); // blocks: 0 stored, 1 zeros, 2 (276 bytes, the short last one) stored
    data.fill(5, 0, 512);
    data[1299] = 6;
    const stored = Buffer.concat([data.subarray(0, 512), data.subarray(1024)]);
    const withSparse = (length: number, bitmap: number[], bytes: Uint8Array) => build({
      extra: (w) => w.record(RecordKind.ReceivedSparse, 64 + bytes.length, (x) => {
        x.at(140, 1_700_000);
        x.varint(1);
        x.varint(length);
        x.bytes(new Uint8Array(bitmap));
        x.bytes(bytes);
      }),
    });
    const r = parseRecording(withSparse(1300, [0b101], stored), "s.rec");
    const received = r.events.find((e) => e.index === 6)!;
    expect(received).toMatchObject({ kind: RecordKind.Received, connection: 1, at: { eventCount: 140, timeNs: 1_700_000 } });
    expect(Buffer.from((received as { bytes: Uint8Array }).bytes).equals(Buffer.from(data))).toBe(true);
    expect(error(withSparse(1300, [0b1101], stored))).toMatch(/record 6 at byte \d+ \(received-sparse\): the bitmap marks blocks past the 3 that 1300 bytes make/);
    expect(error(withSparse(1300, [0b111], stored))).toMatch(/\(received-sparse\): the bitmap marks more stored blocks than the 788 bytes after it hold/);
    expect(error(withSparse(1300, [0b001], stored))).toMatch(/\(received-sparse\): 276 bytes left over after the stored blocks the bitmap marks/);
    expect(error(withSparse(1300, [], new Uint8Array()))).toMatch(/\(received-sparse\): 0 bytes left for a bitmap of 1 bytes \(3 blocks of 512\)/);
    expect(error(withSparse(0, [], new Uint8Array()))).toMatch(/\(received-sparse\): length 0: expected 1\.\./);
    const version2 = withSparse(1300, [0b101], stored);
    version2[8] = 2; // the header's version is outside every record's CRC
    expect(error(version2)).toMatch(/\(received-sparse\): a received-sparse record in a version-2 recording \(they came with version 3\)/);
    const plain = build();
    plain[8] = 2; // a version-2 recording without one still reads
    expect(parseRecording(plain, "v2.rec").events.length).toBeGreaterThan(0);
  });

  it("names payload fields out of range: a disk chunk, a connection, a portal, a varint, bytes left over", () => {
    const chunk = (disk: number, index: number, length = DISK_CHUNK_BYTES) => (w: RecordWriter) =>
      w.record(RecordKind.DiskChunk, 16 + length, (x) => {
        x.varint(disk);
        x.varint(index);
        x.bytes(new Uint8Array(length));
      });
    // Disk chunks must precede the timed records: these are written first through a fresh writer.
    const withChunk = (make: (w: RecordWriter) => void) => {
      const w = new RecordWriter();
      json(w, RecordKind.Meta, meta());
      w.record(RecordKind.Firmware, FIRMWARE.length, (x) => x.bytes(FIRMWARE));
      make(w);
      return w.take();
    };
    expect(error(withChunk(chunk(3, 0)))).toMatch(/\(disk-chunk\): disk index 3: the metadata lists 1 disks/);
    expect(error(withChunk(chunk(0, 4)))).toMatch(/\(disk-chunk\): disk d0 chunk 4: .* outside its 262144 bytes/);
    expect(error(withChunk(chunk(0, 0, 100)))).toMatch(/\(disk-chunk\): disk d0 chunk 0: 100 bytes/);
    expect(error(build({ extra: chunk(0, 1) }))).toMatch(/\(disk-chunk\): a disk chunk after the first timed record/);
    expect(error(build({ extra: (w) => w.record(RecordKind.PeerClosed, 32, (x) => { x.at(140, 1_700_000); x.varint(64); }) }))).toMatch(/\(peer-closed\): connection 64: the NIC has slots 0..63/);
    expect(error(build({ extra: (w) => w.record(RecordKind.Opened, 32, (x) => { x.at(140, 1_700_000); x.varint(70000); x.varint(1); }) }))).toMatch(/\(opened\): portal 70000: the NIC numbers portals 0..65535/);
    expect(error(build({ extra: (w) => w.record(RecordKind.Received, 32, (x) => { x.at(140, 1_700_000); x.varint(0); }) }))).toMatch(/\(received\): no bytes/);
    expect(error(build({ extra: (w) => w.record(RecordKind.Sent, 32, (x) => { x.at(140, 1_700_000); x.varint(0); x.varint(3); }) }))).toMatch(/\(sent\): CRC-32: the payload ends inside it/);
    expect(error(build({ extra: (w) => w.record(RecordKind.Reset, 32, (x) => { x.at(140, 1_700_000); x.varint(1); }) }))).toMatch(/\(reset\): 1 bytes left over after the last field/);
    expect(error(build({ extra: (w) => w.record(RecordKind.Reset, 32, (x) => { x.bytes(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])); }) }))).toMatch(/\(reset\): board-event count delta: varint longer than 8 bytes/);
    expect(error(build({ extra: (w) => json(w, RecordKind.Control, 1) }))).toMatch(/\(control\): board time delta: the payload ends inside its varint/);
  });

  it("names records out of order, a missing end, a bad end or seal, records after them", () => {
    const w = new RecordWriter();
    w.record(RecordKind.Firmware, FIRMWARE.length, (x) => x.bytes(FIRMWARE));
    expect(error(w.take())).toMatch(/record 0 at byte 12 \(firmware\): the first record must be meta/);
    const noFirmware = new RecordWriter();
    json(noFirmware, RecordKind.Meta, meta());
    json(noFirmware, RecordKind.Meta, meta());
    expect(error(noFirmware.take())).toMatch(/record 1 at byte \d+ \(meta\): a second meta record/);
    expect(error(build({ skipEnd: true }))).toMatch(/truncated: no end record after record 5 \(board time 0\.001600 s\), at byte \d+; the recording board did not stop cleanly/);
    expect(error(build({ afterEnd: (x) => x.record(RecordKind.Reset, 32, (y) => y.at(300, 3_000_000)) }))).toMatch(/\(reset\): a record after the end/);
    expect(error(build({ afterEnd: (x) => json(x, RecordKind.Seal, { traceHash: "no", traceEvents: 1, sentSha256: "a".repeat(64), by: "x" }) }))).toMatch(/\(seal\): field traceHash: expected 64 hex digits/);
    const sealed = build({ afterEnd: (x) => json(x, RecordKind.Seal, { traceHash: "a".repeat(64), traceEvents: 1, sentSha256: "b".repeat(64), by: "x" }) });
    expect(parseRecording(sealed, "t.rec").seal?.traceEvents).toBe(1);
    const endBytes = build();
    const end = records(endBytes).at(-1)!;
    const text = Buffer.from(endBytes.subarray(end.payloadAt, end.payloadAt + end.length)).toString("latin1");
    const at = endBytes.indexOf(0x7b, end.payloadAt); // '{' of the end's JSON
    expect(at).toBeGreaterThan(0);
    endBytes.set(Buffer.from(text.slice(at - end.payloadAt).replace('"sentBytes":3', '"sentBytes":-')), at);
    fixCrc(endBytes, end);
    expect(error(endBytes)).toMatch(/\(end\): end: not JSON/);
  });

  it("gives a one-line error, never anything else, for every truncation and for any flipped byte", () => {
    const bytes = build();
    // Every length around every record's framing, then lengths and flips anywhere.
    for (const { offset, payloadAt, length } of records(bytes)) {
      for (const end of [offset, offset + 1, payloadAt, payloadAt + 1, payloadAt + length, payloadAt + length + 3]) error(bytes.subarray(0, end));
    }
    fc.assert(fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), (length) => void error(bytes.subarray(0, length))), { numRuns: 100 });
    fc.assert(fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, xor) => {
      const mutated = bytes.slice();
      mutated[index]! ^= xor;
      // The version made 2 (from 3): still readable, this recording has no record version 2 lacks.
      if (index === 8 && RECORDING_VERSIONS_READ.includes(mutated[8]!)) expect(parseRecording(mutated, "t.rec").events.length).toBeGreaterThan(0);
      else error(mutated);
    }), { numRuns: 300 });
  });

  it("reads a file's records ahead of its reader (read_ahead.ts), whole and checked, up to the first bad one, and the reader names it as before", async () => {
    const sizes = Array.from({ length: 200 }, (_, i) => 20_000 + ((i * 7919) % 40_000));
    const bytes = build({
      extra: (w) => sizes.forEach((size, i) => w.record(RecordKind.Received, 32 + size, (x) => {
        x.at(140, 1_700_000 + i);
        x.varint(i % 3);
        x.bytes(new Uint8Array(size).fill(i & 0xff));
      })),
    });
    const dir = testTempDir("wasm-iop-rec-");
    const all = records(bytes);
    const starts = new Set(all.map((r) => r.offset));
    // Every window the worker hands over, in order: each starts at a record, and they are the file from the first record.
    const windows = (path: string) => {
      const ahead = new ReadAheadThread(path, HEADER_BYTES, { windowBytes: 256 << 10, windowCount: 3 });
      const got: ReadAheadWindow[] = [];
      for (let w = ahead.next(); w !== undefined; w = ahead.next()) {
        got.push({ ...w, bytes: w.bytes.slice() });
        if (w.last) break;
      }
      ahead.stop();
      return got;
    };
    const good = join(dir, "good.rec");
    writeFileSync(good, bytes);
    const whole = windows(good);
    expect(whole.length).toBeGreaterThan(20); // 8 MB in windows of 256 KiB
    expect(whole.every((w) => starts.has(w.start))).toBe(true);
    expect(whole.map((w) => w.last)).toEqual(whole.map((_, i) => i === whole.length - 1));
    expect(Buffer.concat(whole.map((w) => w.bytes)).equals(Buffer.from(bytes.subarray(HEADER_BYTES)))).toBe(true);
    // A byte flipped in record k: the windows end at its start; the file reader's line is the whole parse's.
    for (const k of [5, 77, all.length - 1]) {
      const mutated = bytes.slice();
      const r = all[k]!;
      mutated[r.payloadAt + (r.length >> 1)]! ^= 0x40;
      const path = join(dir, `bad-${k}.rec`);
      writeFileSync(path, mutated);
      const got = windows(path);
      const last = got[got.length - 1]!;
      expect(last.last).toBe(true);
      expect(last.start + last.bytes.length).toBe(r.offset);
      let line = "";
      try {
        const reader = openRecording(path);
        for (let x = reader.peek(); x !== undefined; x = reader.peek()) reader.advance();
        reader.close();
      } catch (e) {
        line = (e as Error).message;
      }
      expect(line).toMatch(new RegExp(`record ${k} at byte ${r.offset}: checksum 0x[0-9a-f]{8}, the bytes give 0x[0-9a-f]{8}: corrupt$`));
      try {
        parseRecording(mutated, path);
      } catch (e) {
        expect((e as Error).message).toBe(line);
      }
    }
  });

  it("keeps its read-ahead thread within its windows of the reader, and leaves a record larger than a window to the reader", async () => {
    const w = new RecordWriter();
    const record = new Uint8Array(1 << 20).fill(3);
    for (let i = 0; i < 100; i++) w.record(RecordKind.Received, 32 + record.length, (x) => { x.at(1, 1); x.varint(0); x.bytes(record); });
    const bytes = w.take();
    const path = join(testTempDir("wasm-iop-rec-"), "big.rec");
    writeFileSync(path, bytes);
    const ends = records(bytes).map((r) => r.payloadAt + r.length + 4);
    // Windows of 4 MiB (three 1 MiB records each), four of them: the worker fills four and waits for the reader.
    const ahead = new ReadAheadThread(path, HEADER_BYTES, { windowBytes: 4 << 20, windowCount: 4 });
    for (let i = 0; i < 400 && ahead.readUpTo < ends[11]!; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    expect(ahead.readUpTo).toBe(ends[11]);
    // Taking windows frees the one two before: the worker goes on, and the windows are the file.
    const got: Uint8Array[] = [];
    for (let x = ahead.next(); x !== undefined; x = ahead.next()) got.push(x.bytes.slice());
    expect(Buffer.concat(got).equals(Buffer.from(bytes.subarray(HEADER_BYTES)))).toBe(true);
    ahead.stop();
    // Windows smaller than a record: the worker stops at once and the reader reads every record itself.
    const small = new ReadAheadThread(path, HEADER_BYTES, { windowBytes: 1 << 19, windowCount: 3 });
    const first = small.next()!;
    expect(first).toMatchObject({ start: HEADER_BYTES, last: true });
    expect(first.bytes.length).toBe(0);
    small.stop();
    // A recording with a record of 9 MiB (over the reader's 8 MiB windows) between small ones: read whole, as parsed.
    const huge = build({
      extra: (x) => [100, 9 << 20, 200].forEach((size, i) => x.record(RecordKind.Received, 32 + size, (y) => { y.at(140 + i, 1_700_000 + i); y.varint(0); y.bytes(new Uint8Array(size).fill(i + 1)); })),
    });
    const hugePath = join(testTempDir("wasm-iop-rec-"), "huge.rec");
    writeFileSync(hugePath, huge);
    const reader = openRecording(hugePath);
    const read = reader.all().map((r) => (r.kind === RecordKind.Received ? r.bytes.length : -1));
    reader.close();
    expect(read).toEqual(parseRecording(huge, hugePath).events.map((r) => (r.kind === RecordKind.Received ? r.bytes.length : -1)));
    expect(read).toContain(9 << 20);
  });

  it("the replay command prints the one line and exits 1 for a recording of the old format version", async () => {
    const dir = testTempDir("wasm-iop-replay-");
    const path = join(dir, "old.rec");
    const bytes = build();
    bytes[8] = 1; // version 1: before received bytes could be deflated
    writeFileSync(path, bytes);
    const result = await runCli(["replay", path]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(`wasm-iop replay: ${path}: byte 8: format version 1; this wasm-iop reads versions 2, 3 and 4`);
    expect(result.stdout).toBe("");
  });
});
