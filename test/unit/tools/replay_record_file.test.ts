// The recording's file writer (tools/replay/record_file.ts): records handed over with their CRC-32 left as zeros come
// out of the worker thread checksummed and in order, across slab edges, with a record larger than a slab written by
// the caller's thread in its place; received bytes that compress are deflated (received-deflated records) and read
// back as the bytes received, random bytes stay as they came; received bytes with zero blocks are stored without them
// (received-sparse records) and read back whole; and the file is complete once drain() returns.
import { createHash, randomFillSync } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RecordKind, RecordWriter } from "../../../tools/replay/format.ts";
import { parseRecording } from "../../../tools/replay/reader.ts";
import { RecordFile } from "../../../tools/replay/record_file.ts";
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

function write(path: string, compress: boolean, data: Uint8Array[]): RecordFile {
  const file = new RecordFile(path, { slabBytes: 64 * 1024, slabCount: 3, compress });
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
  it("appendTimed writes the bytes RecordWriter writes, with and without its optional fields, in a slab and larger than one", () => {
    const dir = testTempDir("wasm-iop-recfile-");
    const cases: [number, number, number, number | undefined][] = [[3, -1, -1, 100], [1, 7, -1, 20_000], [2, 300, 0xfeedf00d, 200_000], [0, -1, 5, undefined]];
    cases.forEach(([v1, v2, u32, size], k) => {
      const data = size === undefined ? undefined : randomFillSync(new Uint8Array(size));
      const timed = new RecordFile(join(dir, `timed-${k}.rec`), { slabBytes: 64 * 1024, slabCount: 3, compress: false });
      timed.appendTimed(RecordKind.Received, 10 + k, 1000 * k, v1, v2, u32, data);
      timed.close();
      const written = new RecordFile(join(dir, `writer-${k}.rec`), { slabBytes: 64 * 1024, slabCount: 3, compress: false });
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
      expect(SHA(bytes), `case ${k}`).toBe(SHA(readFileSync(join(dir, `writer-${k}.rec`))));
    });
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
  });
});
