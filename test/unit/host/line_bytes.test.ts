// A trace that is only hashed builds its lines as bytes (host/sim/line_bytes.ts) instead of text: the bytes must be
// the text's UTF-8 exactly, or every trace hash changes. Checked against the text path (a trace keeping its lines)
// on random lines: any string (lone surrogates, quotes, control characters, 4-byte characters), numbers of every
// kind (negative, fractions, -0, NaN, beyond 2^53), bigints; with buffers cut in every place.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LineBytes } from "../../../host/sim/line_bytes.ts";
import { Trace } from "../../../host/sim/trace.ts";
import { traceValue } from "../../support/trace_values.ts";

const line = fc.record({
  timeNs: fc.oneof(fc.maxSafeNat(), fc.double()),
  source: fc.string({ unit: "binary", maxLength: 12 }),
  event: fc.string({ unit: "binary", maxLength: 12 }),
  fields: fc.dictionary(fc.string({ unit: "binary", maxLength: 8 }), traceValue, { maxKeys: 6 }),
});

describe("a hashed-only trace's lines as bytes", () => {
  it("hashes to the same digest as the lines' text, for any line", () => {
    fc.assert(fc.property(fc.array(line, { maxLength: 30 }), (lines) => {
      const bytes = new Trace();
      const text = new Trace({ keepLines: true });
      for (const l of lines) {
        bytes.record(l.timeNs, l.source, l.event, l.fields);
        text.record(l.timeNs, l.source, l.event, l.fields);
      }
      expect(bytes.count).toBe(text.count);
      expect(bytes.digest()).toBe(createHash("sha256").update(text.lines!.join("")).digest("hex"));
      expect(bytes.digest()).toBe(text.digest());
    }), { numRuns: 300 });
  });

  it("writes TextEncoder's bytes for any string, cut across the buffer's edge (64 KiB) at every offset", () => {
    fc.assert(fc.property(fc.nat({ max: 80 }), fc.string({ unit: "binary", maxLength: 60 }), (pad, text) => {
      const chunks: Uint8Array[] = [];
      const b = new LineBytes((chunk) => chunks.push(chunk.slice()));
      const lead = "p".repeat(64 * 1024 - 40 - pad);
      b.ascii(lead);
      b.raw(text);
      b.json(text);
      b.number(-1234567890123);
      b.bigHex(-255n);
      b.flush();
      const expected = new TextEncoder().encode(lead + text + JSON.stringify(text) + "-1234567890123" + '"0x-ff"');
      expect(Buffer.concat(chunks).equals(Buffer.from(expected))).toBe(true);
    }), { numRuns: 200 });
  });

  it("the real lines' hash is unchanged: a known line set gives a fixed digest", () => {
    const trace = new Trace();
    trace.record(0, "host", "bus_write32", { addr: "0xfe000010", value: 7 });
    trace.record(1_000_000_007, "sp1", "console", { line: 'say "hi"\n', n: -3, big: 2n ** 64n });
    expect(trace.digest()).toBe(createHash("sha256").update(
      '{"seq":0,"t":0,"src":"host","ev":"bus_write32","addr":"0xfe000010","value":7}\n' +
      '{"seq":1,"t":1000000007,"src":"sp1","ev":"console","line":"say \\"hi\\"\\n","n":-3,"big":"0x10000000000000000"}\n',
    ).digest("hex"));
  });
});
