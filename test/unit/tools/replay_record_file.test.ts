// The recording's file writer (tools/replay/record_file.ts): records handed over with their CRC-32 left as zeros come
// out of the worker thread checksummed and in order, across slab edges, with a record larger than a slab written by
// the caller's thread in its place; received bytes that compress are deflated (received-deflated records) and read
// back as the bytes received, random bytes stay as they came; received bytes with zero blocks are stored without them
// (received-sparse records) and read back whole; and the file is complete once drain() returns. With O_DIRECT (the
// default where the file system takes it) the file is whole blocks, padded with pad records the reader skips, and
// received bytes land at their source's address modulo 8 (redundant varint bytes in the head).
import { createHash, randomFillSync } from "node:crypto";
import { crc32 } from "node:zlib";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PAD_ALIGN_BYTES, RecordKind, RecordWriter } from "../../../tools/replay/format.ts";
import { parseRecording } from "../../../tools/replay/reader.ts";
import { alignedHead, RecordFile } from "../../../tools/replay/record_file.ts";
import { testTempDir } from "../../support/temp_dir.ts";

const FIRMWARE = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
const SHA = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const META = {
  tool: "test", command: "run", created: "2026-12-07T00:00:00Z", boardFile: "x.json", spec: { name: "x", processors: [], disks: [] }, seed: 1,
  firmwareSha256: SHA(FIRMWARE), bootSlot: null, bootTrial: false, portals: [], verbose: false, nvram: null, disks: [],
};

// Received payloads: patterned (compress), random (do not), small, and one over the 64 KiB slab.
function payloads(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const size = [100, 3000, 20_000, 48_000][i % 4]!;
    const bytes = new Uint8Array(size);
    if (i % 3 === 0) randomFillSync(bytes);
    else for (let b = 0; b < size; b++) bytes[b] = (b >> 9) + i;
    out.push(bytes);
  }
  out.splice(20, 0, randomFillSync(new Uint8Array(200_000)));
  return out;
}

// A file's records as |kind, the payload's varints decoded, the rest|, pads left out, every CRC-32 checked.
function decode(bytes: Uint8Array, varints: number): { kind: number; fields: number[]; rest: string; dataAt: number }[] {
  const out: { kind: number; fields: number[]; rest: string; dataAt: number }[] = [];
  for (let at = 0; at < bytes.length; ) {
    const start = at;
    const kind = bytes[at++]!;
    const varint = () => {
      let value = 0;
      for (let scale = 1; ; scale *= 128) {
        const b = bytes[at++]!;
        value += (b & 0x7f) * scale;
        if ((b & 0x80) === 0) return value;
      }
    };
    const length = varint();
    const end = at + length;
    expect(Buffer.from(bytes.buffer, bytes.byteOffset + end, 4).readUInt32LE(0)).toBe(crc32(bytes.subarray(start, end)));
    if (kind !== RecordKind.Pad) {
      const fields = Array.from({ length: varints }, varint);
      out.push({ kind, fields, rest: SHA(bytes.subarray(at, end)), dataAt: at });
    }
    at = end + 4;
  }
  return out;
}

function write(path: string, compress: boolean, data: Uint8Array[], direct = false): RecordFile {
  const file = new RecordFile(path, { slabBytes: 64 * 1024, slabCount: 3, compress, direct });
  file.appendRaw([new RecordWriter().take()]);
  const w = new RecordWriter({ header: false, crcLater: true });
  const put = (kind: RecordKind, max: number, payload: (x: RecordWriter) => void) => {
    w.record(kind, max, payload);
    file.appendRecord(w.takePieces());
  };
  const meta = Buffer.from(JSON.stringify(META));
  put(RecordKind.Meta, meta.length, (x) => x.bytes(meta));
  put(RecordKind.Firmware, FIRMWARE.length, (x) => x.bytes(FIRMWARE));
  data.forEach((bytes, i) => put(RecordKind.Received, 64 + bytes.length, (x) => {
    x.at(i * 10, i * 1000);
    x.varint(i % 4);
    x.data(bytes);
  }));
  const end = Buffer.from(JSON.stringify({ reason: "test", sentBytes: 0, sends: 0, sendsSha256: SHA(new Uint8Array()), sentSha256: null, traceHash: null, traceEvents: null }));
  put(RecordKind.End, 64 + end.length, (x) => {
    x.at(1000, 1_000_000);
    x.bytes(end);
  });
  file.drain();
  return file;
}

describe("recording file writer", () => {
  it("appendTimed writes the records RecordWriter writes, with and without its optional fields, in a slab and larger than one", () => {
    const dir = testTempDir("wasm-iop-recfile-");
    const cases: [number, number, number, number | undefined][] = [[3, -1, -1, 100], [1, 7, -1, 20_000], [2, 300, 0xfeedf00d, 200_000], [0, -1, 5, undefined]];
    cases.forEach(([v1, v2, u32, size], k) => {
      const data = size === undefined ? undefined : randomFillSync(new Uint8Array(size + 8)).subarray(k, k + size); // at byte k of its buffer
      const timed = new RecordFile(join(dir, `timed-${k}.rec`), { slabBytes: 64 * 1024, slabCount: 3, compress: false, direct: false });
      timed.appendTimed(RecordKind.Received, 10 + k, 1000 * k, v1, v2, u32, data);
      timed.close();
      const written = new RecordFile(join(dir, `writer-${k}.rec`), { slabBytes: 64 * 1024, slabCount: 3, compress: false, direct: false });
      const w = new RecordWriter({ header: false, crcLater: true });
      w.record(RecordKind.Received, 64 + (size ?? 0), (x) => {
        x.at(10 + k, 1000 * k);
        if (v1 >= 0) x.varint(v1);
        if (v2 >= 0) x.varint(v2);
        if (u32 >= 0) x.u32(u32);
        if (data !== undefined) x.data(data);
      });
      written.appendRecord(w.takePieces());
      written.close();
      const bytes = readFileSync(join(dir, `timed-${k}.rec`));
      expect(bytes.length, `case ${k}`).toBeGreaterThan(size ?? 0);
      const fields = 2 + (v1 >= 0 ? 1 : 0) + (v2 >= 0 ? 1 : 0);
      const records = decode(bytes, fields);
      expect(records, `case ${k}`).toEqual(decode(readFileSync(join(dir, `writer-${k}.rec`)), fields).map((r) => ({ ...r, dataAt: records[0]!.dataAt })));
      // Bytes received in a slab are placed at their address modulo 8 (case 1: byte 1 of its buffer); not the larger one.
      if (k === 1) expect((records[0]!.dataAt - k) & 7, `case ${k}`).toBe(0);
    });
  });

  it("finds redundant varint bytes that put the data at any address modulo 8, whatever the head's place", () => {
    for (const payload of [4096, 16_383, 16_384, 65_536, 2_097_151, 2_097_150]) {
      for (let headAt = 0; headAt < 8; headAt++) {
        for (let dataAddress = 0; dataAddress < 8; dataAddress++) {
          for (const v1 of [0, 127, 128]) {
            const extra = alignedHead(headAt, dataAddress, payload, 3, v1)!;
            const lengthBytes = Math.ceil(Math.log2(payload + extra.extraV1 + 1) / 7);
            expect(lengthBytes + extra.extraLength).toBeLessThanOrEqual(8);
            expect((v1 < 128 ? 1 : 2) + extra.extraV1).toBeLessThanOrEqual(8);
            expect((headAt + 1 + lengthBytes + extra.extraLength + 3 + extra.extraV1 - dataAddress) & 7).toBe(0);
          }
        }
      }
    }
  });

  it("with O_DIRECT: whole blocks, pad records the reader skips, the same records as through the page cache", async (ctx) => {
    const dir = testTempDir("wasm-iop-recfile-");
    const data = payloads();
    const buffered = write(join(dir, "buffered.rec"), false, data, false);
    const direct = write(join(dir, "direct.rec"), false, data, true);
    buffered.close();
    direct.close();
    const events = (name: string) => parseRecording(readFileSync(join(dir, name)), name).events.map((e) => [e.kind, e.at.eventCount, e.kind === RecordKind.Received ? SHA(e.bytes) : ""]);
    expect(events("direct.rec")).toEqual(events("buffered.rec"));
    expect(buffered.stats.direct).toBe(false);
    expect((await buffered.deflated).directBytes).toBe(0);
    // A file system without O_DIRECT (tmpfs): the same file as through the page cache, and the rest shown as skipped.
    if (!direct.stats.direct) ctx.skip();
    const size = statSync(join(dir, "direct.rec")).size;
    expect(size % PAD_ALIGN_BYTES).toBe(0);
    const { directBytes, directFailures } = await direct.deflated;
    expect(directFailures).toBe(0);
    expect(directBytes).toBeGreaterThan(size / 2); // all but the header and the record larger than a slab
    // Received bytes of 4 KiB or more given to appendTimed sit at their source's address modulo 8 (every slab starts
    // on a block, at an address that is a multiple of 16).
    const timed = new RecordFile(join(dir, "timed.rec"), { slabBytes: 64 * 1024, slabCount: 3, compress: false, direct: true });
    timed.appendRaw([new RecordWriter().take()]);
    const sources = data.filter((d) => d.length < 60_000).map((d, i) => {
      const source = new Uint8Array(d.length + 8).subarray(i % 8, (i % 8) + d.length);
      source.set(d);
      timed.appendTimed(RecordKind.Received, 10, 1000, i % 4, -1, -1, source);
      return source;
    });
    timed.close();
    const records = decode(readFileSync(join(dir, "timed.rec")).subarray(PAD_ALIGN_BYTES), 3);
    expect(records.map((r) => r.rest)).toEqual(sources.map(SHA));
    const large = records.filter((_, i) => sources[i]!.length >= 4096);
    expect(large.length).toBeGreaterThan(10);
    large.forEach((r, i) => expect((r.dataAt + PAD_ALIGN_BYTES - sources.filter((s) => s.length >= 4096)[i]!.byteOffset) & 7).toBe(0));
  });

  it("writes every record checksummed and in order across slabs; deflates received bytes that compress, keeps random ones", async () => {
    const dir = testTempDir("wasm-iop-recfile-");
    const data = payloads();
    const raw = write(join(dir, "raw.rec"), false, data);
    const packed = write(join(dir, "packed.rec"), true, data);
    for (const [name, file] of [["raw.rec", raw], ["packed.rec", packed]] as const) {
      const recording = parseRecording(readFileSync(join(dir, name)), name); // every CRC checked
      const received = recording.events.filter((e) => e.kind === RecordKind.Received);
      expect(received.map((e) => SHA(e.bytes))).toEqual(data.map(SHA));
      expect(received.map((e) => [e.connection, e.at.eventCount])).toEqual(data.map((_, i) => [i % 4, i * 10]));
      expect(recording.end.end.reason).toBe("test");
      expect(file.stats.slabsWritten).toBeGreaterThan(10);
      file.close();
      file.drain(); // after close: at once (it once waited for ever on the slab that holds the worker's stop mark)
    }
    const rawBytes = statSync(join(dir, "raw.rec")).size;
    const packedBytes = statSync(join(dir, "packed.rec")).size;
    const { deflatedIn, deflatedOut } = await packed.deflated;
    const randomBytes = data.filter((_, i) => i === 20 || (i < 20 ? i % 3 === 0 : (i - 1) % 3 === 0)).reduce((n, d) => n + d.length, 0);
    expect(deflatedIn).toBeGreaterThan(0);
    expect(packedBytes).toBe(rawBytes - deflatedIn + deflatedOut);
    expect(packedBytes).toBeLessThan(randomBytes + 0.25 * (rawBytes - randomBytes)); // random bytes as they were, the rest at most a quarter
    expect(packedBytes).toBeGreaterThan(randomBytes);
    expect(await raw.deflated).toMatchObject({ deflatedIn: 0, deflatedOut: 0 });
  });

  it("leaves out the zero blocks of received bytes (received-sparse records), deflate or not, and reads them back as received", async () => {
    const dir = testTempDir("wasm-iop-recfile-");
    const header = (bytes: Uint8Array, at: number) => bytes.fill(0x5a, at, at + 48);
    const data: Uint8Array[] = [
      header(new Uint8Array(4144), 0), // a 4 KiB write of zeros, after its PDU header
      new Uint8Array(40960).map((_, i) => (i % 8192 < 48 ? 0x11 : 0)), // headers every 8 KiB (in a 64 KiB slab)
      new Uint8Array(1000), // all zeros, the last block short
      new Uint8Array(5000).map((_, i) => (i === 4999 ? 1 : 0)), // one byte set, in the short last block
      new Uint8Array(3000).map((_, i) => (i === 0 ? 9 : 0)), // set in the first block only
      randomFillSync(new Uint8Array(6000)), // random: as it came
      new Uint8Array(2048).map((_, i) => (i % 2 === 0 ? 0 : 3)), // half zeros, but no zero block: as it came
    ];
    for (const compress of [false, true]) {
      const name = `sparse-${compress}.rec`;
      const file = write(join(dir, name), compress, data);
      const recording = parseRecording(readFileSync(join(dir, name)), name);
      const received = recording.events.filter((e) => e.kind === RecordKind.Received);
      expect(received.map((e) => SHA(e.bytes))).toEqual(data.map(SHA));
      file.close();
      const { sparseIn, sparseOut, deflatedIn } = await file.deflated;
      // The zero-heavy ones went sparse, not deflated; of the rest, only the half-zero one deflates (when asked).
      if (compress) expect(deflatedIn).toBeGreaterThan(2048);
      if (compress) expect(deflatedIn).toBeLessThan(2100);
      else expect(deflatedIn).toBe(0);
      const sparseCount = 5; // the first five
      expect(sparseIn).toBeGreaterThan(data.slice(0, sparseCount).reduce((n, d) => n + d.length, 0));
      expect(sparseOut).toBeLessThan(0.1 * sparseIn); // 9 stored blocks of 512 bytes (one short), bitmaps and framing
      const size = statSync(join(dir, name)).size;
      expect(size).toBeLessThan(6000 + 2048 + 1024 + sparseOut + 2000);
    }
    // With O_DIRECT: a slab whose records the worker replaced is written through the page cache and padded again, so
    // the slabs after it still start on a block.
    const many = [...Array.from({ length: 10 }, () => data).flat(), ...Array.from({ length: 24 }, () => randomFillSync(new Uint8Array(6000)))];
    const file = write(join(dir, "sparse-direct.rec"), true, many, true);
    file.close();
    const recording = parseRecording(readFileSync(join(dir, "sparse-direct.rec")), "sparse-direct.rec");
    expect(recording.events.filter((e) => e.kind === RecordKind.Received).map((e) => SHA(e.bytes))).toEqual(many.map(SHA));
    const { sparseIn, directBytes, directFailures } = await file.deflated;
    expect(sparseIn).toBeGreaterThan(0);
    if (file.stats.direct) {
      expect(statSync(join(dir, "sparse-direct.rec")).size % PAD_ALIGN_BYTES).toBe(0);
      expect(directFailures).toBe(0);
      expect(directBytes).toBeGreaterThan(0); // the slabs of random bytes only, at the end
    }
  });
});
