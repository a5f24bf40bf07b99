// A trace only hashed off the board's thread sends its events in binary to a worker, which builds the lines there
// (host/sim/trace_thread.ts): the digest must be the one of the lines' text, exactly, or every recording's trace hash
// stops matching its replay. Checked against the text path (a trace keeping its lines) on random events: any string
// in the source, event, keys and values (lone surrogates, quotes, control characters), numbers of every kind,
// bigints; with slabs so small that every batch is cut across them, a digest midway, and events past one batch.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Trace, type TraceValue } from "../../../host/sim/trace.ts";
import { traceValue } from "../../support/trace_values.ts";
import { TraceHashThread } from "../../../host/sim/trace_thread.ts";

const event = fc.record({
  timeNs: fc.oneof(fc.maxSafeNat(), fc.double()),
  source: fc.string({ unit: "binary", maxLength: 12 }),
  event: fc.string({ unit: "binary", maxLength: 12 }),
  fields: fc.option(fc.dictionary(fc.string({ unit: "binary", maxLength: 8 }), traceValue, { maxKeys: 6 }), { nil: undefined }),
});

describe("TraceHashThread: a trace's lines built and hashed on a worker", () => {
  it("gives the digest of the lines' text for any events, midway and at the end, across slabs of 64 bytes", () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 30 }), (events) => {
      const thread = new TraceHashThread({ slabBytes: 64, slabCount: 3 });
      const text = new Trace({ keepLines: true });
      try {
        events.forEach((e, i) => {
          thread.event(e.timeNs, e.source, e.event, e.fields);
          text.record(e.timeNs, e.source, e.event, e.fields);
          if (i === events.length >> 1) expect(thread.digest()).toBe(text.digest());
        });
        expect(thread.digest()).toBe(createHash("sha256").update(text.lines!.join("")).digest("hex"));
      } finally {
        expect(thread.close()).toBe(text.digest());
      }
      expect(() => thread.event(0, "host", "clock", undefined)).toThrow(/event after close/);
    }), { numRuns: 40 });
  });

  it("is what Trace({ hashOffThread }) uses when it only hashes: the same digest as on the board's thread, over many batches and a field of 3 MiB", async () => {
    const off = new Trace({ hashOffThread: true });
    const on = new Trace();
    const record = (t: number, source: string, ev: string, fields?: Record<string, TraceValue>) => {
      off.record(t, source, ev, fields);
      on.record(t, source, ev, fields);
    };
    for (let i = 0; i < 60_000; i++) {
      const t = 2_500_000_000 + i * 37;
      if (i % 3 === 0) record(t, "host", "clock");
      else if (i % 3 === 1) record(t, "host", `w${32}`, { addr: `0x${(0x1000_0000 + i).toString(16)}`, val: i });
      else record(t, "host.slot4", "dma.r", { addr: BigInt(i) << 20n, len: i & 0xfff, ok: 1 });
      if (i === 30_000) record(t, "host", "console", { fd: 1, text: "é\"\\".repeat(1 << 20) });
    }
    expect(off.count).toBe(on.count);
    expect(off.digest()).toBe(on.digest());
    await off.close();
    expect(off.digest()).toBe(on.digest());
  });
});
