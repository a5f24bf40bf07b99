// The fabric on the wire (host/fabric/fabric_wire.ts): packets cross a byte stream unchanged however TCP cuts it, and
// every malformed frame closes the connection with its named error before anything of it is delivered.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type FabricMessage, FabricOpcode, FabricStatus, FABRIC_TRANSFER_BYTES_MAX } from "../../../host/devices/cluster_port.ts";
import type { FabricPacket } from "../../../host/fabric/fabric.ts";
import { encodeHello, encodePacket, FabricWireReceiver, WIRE_BURST_PACKETS_MAX, WIRE_FRAME_LENGTH_MAX } from "../../../host/fabric/fabric_wire.ts";

const SELF = 3;
const PEER = 1;
const known = (a: number) => a === 1 || a === 2 || a === 3;

function receiver(): { r: FabricWireReceiver; got: FabricPacket<FabricMessage>[] } {
  const got: FabricPacket<FabricMessage>[] = [];
  return { r: new FabricWireReceiver(SELF, known, (burst) => got.push(...burst)), got };
}

const message = fc.oneof(
  fc.record({
    kind: fc.constant("request" as const),
    opcode: fc.constantFrom(FabricOpcode.Write, FabricOpcode.Read, FabricOpcode.Send, FabricOpcode.Interrupt),
    incarnation: fc.integer({ min: 0, max: 2 ** 52 }),
    sequence: fc.nat({ max: 0xffff_ffff }),
    id: fc.nat({ max: 0xffff_ffff }),
    key: fc.nat({ max: 0xffff_ffff }),
    offset: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    bytes: fc.option(fc.uint8Array({ minLength: 1, maxLength: 300 }), { nil: undefined }),
  }).map((m): FabricMessage => ({ ...m, length: m.bytes?.length ?? 17 })),
  fc.record({
    kind: fc.constant("answer" as const),
    id: fc.nat({ max: 0xffff_ffff }),
    status: fc.constantFrom(...(Object.values(FabricStatus).filter((v) => typeof v === "number") as FabricStatus[])),
    bytes: fc.option(fc.uint8Array({ minLength: 0, maxLength: 300 }), { nil: undefined }),
  }).map((m): FabricMessage => m),
);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

describe("fabric wire", () => {
  it("carries any packets unchanged, in order, however the stream is cut", () => {
    fc.assert(fc.property(fc.array(message, { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 20 }), (messages, cuts) => {
      const packets = messages.map((body) => ({ source: PEER, destination: SELF, body }));
      const stream = concat([encodeHello(PEER, SELF), ...packets.map((p) => encodePacket(p))]);
      const { r, got } = receiver();
      for (let at = 0, c = 0; at < stream.length; c++) {
        const n = cuts[c % cuts.length]!;
        expect(r.push(stream.subarray(at, at + n))).toBeUndefined();
        at += n;
      }
      expect(r.source).toBe(PEER);
      expect(got).toEqual(packets);
    }), { numRuns: 300 });
  });

  it("closes the connection on each kind of malformed frame, delivering nothing of it", () => {
    const hello = encodeHello(PEER, SELF);
    const good = encodePacket({ source: PEER, destination: SELF, body: { kind: "answer", id: 5, status: FabricStatus.Ok } });
    const request = encodePacket({ source: PEER, destination: SELF, body: { kind: "request", opcode: FabricOpcode.Write, incarnation: 1, sequence: 1, id: 1, key: 9, offset: 0n, length: 4, bytes: new Uint8Array(4) } });
    const patch = (frame: Uint8Array, at: number, value: number, bytes = 1) => {
      const copy = frame.slice();
      const view = new DataView(copy.buffer);
      if (bytes === 1) view.setUint8(at, value); else if (bytes === 2) view.setUint16(at, value, true); else view.setUint32(at, value, true);
      return copy;
    };
    const cases: [string, Uint8Array[]][] = [
      ["short-frame", [patch(hello, 0, 3, 4)]],
      ["oversized-frame", [patch(hello, 0, WIRE_FRAME_LENGTH_MAX + 1, 4)]],
      ["bad-version", [patch(hello, 5, 2)]],
      ["bad-type", [hello, patch(good, 4, 9)]],
      ["reserved-bits", [hello, patch(good, 10, 1, 2)]],
      ["reserved-bits", [hello, patch(good, 13, 0x80)]],
      ["reserved-bits", [hello, patch(good, 13, 0x04)]], // bit 1 is a burst's "more", bit 2 nothing
      ["no-hello", [good]],
      ["second-hello", [hello, hello]],
      ["unknown-source", [encodeHello(9, SELF)]],
      ["unknown-source", [encodeHello(SELF, SELF)]],
      ["wrong-destination", [encodeHello(PEER, 2)]],
      ["wrong-destination", [hello, patch(good, 8, 2, 2)]],
      ["source-changed", [hello, patch(good, 6, 2, 2)]],
      ["bytes-mismatch", [hello, patch(request, 36, 5, 4)]], // says 5 bytes, carries 4
      ["bytes-mismatch", [hello, concat([patch(good, 0, good.length - 4 + 2, 4), new Uint8Array(2)])]], // bytes without the flag
      ["short-frame", [hello, concat([patch(request, 0, 20, 4).subarray(0, 24)])]], // a request shorter than its header
    ];
    for (const [error, frames] of cases) {
      const { r, got } = receiver();
      let seen: string | undefined;
      for (const f of frames) seen ??= r.push(f);
      expect(seen, error).toBe(error);
      expect(r.closed).toBe(true);
      expect(got, error).toEqual([]);
      expect(r.push(hello)).toBe(error); // closed: nothing more is read
    }
  });

  it("hands a burst over whole, once its last frame came, however the stream is cut", () => {
    fc.assert(fc.property(fc.array(fc.array(message, { minLength: 1, maxLength: 5 }), { maxLength: 6 }), fc.integer({ min: 1, max: 97 }), (bursts, cut) => {
      const sent = bursts.map((b) => b.map((body) => ({ source: PEER, destination: SELF, body })));
      const stream = concat([encodeHello(PEER, SELF), ...sent.flatMap((b) => b.map((p, i) => encodePacket(p, i < b.length - 1)))]);
      const got: FabricPacket<FabricMessage>[][] = [];
      const r = new FabricWireReceiver(SELF, known, (burst) => got.push(burst));
      for (let at = 0; at < stream.length; at += cut) {
        expect(r.push(stream.subarray(at, at + cut))).toBeUndefined();
        // Never part of a burst: what came so far is whole bursts only.
        expect(got).toEqual(sent.slice(0, got.length));
      }
      expect(got).toEqual(sent);
    }), { numRuns: 300 });
  });

  it("closes the connection on a burst that never ends, delivering none of it", () => {
    const { r, got } = receiver();
    const frame = (i: number) => encodePacket({ source: PEER, destination: SELF, body: { kind: "answer", id: i, status: FabricStatus.Ok } }, true);
    expect(r.push(encodeHello(PEER, SELF))).toBeUndefined();
    for (let i = 0; i < WIRE_BURST_PACKETS_MAX; i++) expect(r.push(frame(i))).toBeUndefined();
    expect(r.push(frame(WIRE_BURST_PACKETS_MAX))).toBe("oversized-burst");
    expect(got).toEqual([]);
    expect(r.push(encodePacket({ source: PEER, destination: SELF, body: { kind: "answer", id: 1, status: FabricStatus.Ok } }))).toBe("oversized-burst");
  });

  it("takes the largest request and refuses one byte more", () => {
    const bytes = new Uint8Array(FABRIC_TRANSFER_BYTES_MAX).fill(7);
    const big = encodePacket({ source: PEER, destination: SELF, body: { kind: "request", opcode: FabricOpcode.Write, incarnation: 3, sequence: 2, id: 4, key: 5, offset: 6n, length: bytes.length, bytes } });
    const { r, got } = receiver();
    expect(r.push(concat([encodeHello(PEER, SELF), big]))).toBeUndefined();
    expect(got).toHaveLength(1);
    const over = new Uint8Array(8);
    new DataView(over.buffer).setUint32(0, big.length - 4 + 1, true);
    expect(r.push(over)).toBe("oversized-frame");
  });

  it("never throws on arbitrary bytes: either packets or one named error", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (bytes, withHello) => {
      const { r } = receiver();
      const error = r.push(withHello ? concat([encodeHello(PEER, SELF), bytes]) : bytes);
      if (error !== undefined) expect(r.closed).toBe(true);
    }), { numRuns: 2000 });
  });
});
