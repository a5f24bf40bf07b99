// Text keys (RFC 7143, Text Mode Negotiation and the operational keys): how key=value strings are walked (empty
// values, missing '=', overlong keys, text after the last NUL), how numbers and binaries read, and every negotiation
// rule, each numerical and boolean one also as a fast-check property against the RFC's result function. The probe
// testIscsiNegotiate runs one operational-stage request through keys.ts, as login.ts does; the answers come back as
// text in scratch RAM. Full feature Text Requests and SendTargets come last.
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { iscsiScratch, testBoard } from "../../support/board.ts";

const IN = 0;
const OUT = 32768;
const FAIL = 0x8000_0000;
const Item = { Pair: 0, NoEquals: 1, KeyEmpty: 2, KeyTooLong: 3, Unterminated: 4 } as const;
const Param = {
  HeaderDigest: 0, DataDigest: 1, MaxRecv: 2, MaxSend: 3, MaxConnections: 4, InitialR2T: 5, ImmediateData: 6,
  MaxBurstLength: 7, FirstBurstLength: 8, DefaultTime2Wait: 9, DefaultTime2Retain: 10, MaxOutstandingR2T: 11,
  DataPDUInOrder: 12, DataSequenceInOrder: 13, ErrorRecoveryLevel: 14, IscsiProtocolLevel: 15, SessionType: 16,
} as const;


const encode = (text: string) => new TextEncoder().encode(text);
/** "k=v\0" for each pair. */
const pairs = (...items: string[]) => encode(items.map((i) => `${i}\0`).join(""));
/** Answer text as [key, value] pairs, in order. */
function answers(bytes: Uint8Array): [string, string][] {
  const text = new TextDecoder().decode(bytes);
  expect(text.endsWith("\0") || text === "").toBe(true);
  return text.split("\0").filter((p) => p !== "").map((p) => { const i = p.indexOf("="); return [p.slice(0, i), p.slice(i + 1)]; });
}

describe("walking key=value text", () => {
  const t = testBoard();
  const s = iscsiScratch(t);
  const parse = (bytes: Uint8Array) => {
    const at = s.write(IN, bytes);
    const count = t.call("testIscsiTextParse", at, bytes.length, s.base + OUT, 64) as number;
    const view = new DataView(s.read(OUT, count * 20).buffer);
    return Array.from({ length: count }, (_, i) => {
      const [item, keyAt, keyBytes, valueAt, valueBytes] = [0, 4, 8, 12, 16].map((o) => view.getUint32(i * 20 + o, true));
      const text = (at: number, n: number) => new TextDecoder().decode(bytes.subarray(at, at + n));
      return { item, key: text(keyAt!, keyBytes!), value: text(valueAt!, valueBytes!) };
    });
  };

  it("splits pairs at NUL and the key at the first '='", () => {
    expect(parse(pairs("a=b", "Key=x=y", "E="))).toEqual([
      { item: Item.Pair, key: "a", value: "b" },
      { item: Item.Pair, key: "Key", value: "x=y" },
      { item: Item.Pair, key: "E", value: "" }, // an empty value is still a pair: its key decides what it means
    ]);
  });

  it("reports a string without '=', an empty key, an overlong key, and text after the last NUL", () => {
    const long = "K".repeat(64);
    expect(parse(encode(`novalue\0=v\0${long}=1\0${"K".repeat(63)}=1\0tail=x`)).map((p) => p.item)).toEqual([
      Item.NoEquals, Item.KeyEmpty, Item.KeyTooLong, Item.Pair, Item.Unterminated,
    ]);
  });

  it("skips empty strings (runs of NUL)", () => {
    expect(parse(encode("\0\0a=1\0\0\0b=2\0\0"))).toEqual([
      { item: Item.Pair, key: "a", value: "1" },
      { item: Item.Pair, key: "b", value: "2" },
    ]);
  });

  it("reads numbers as decimal or 0x hex, refusing anything else or beyond 64 bits", () => {
    const num = (text: string) => BigInt.asUintN(64, t.call("testIscsiParseNumber", s.write(IN, encode(text)), text.length) as bigint);
    const INVALID = 0xffffffffffffffffn;
    expect(num("0")).toBe(0n);
    expect(num("8192")).toBe(8192n);
    expect(num("0x2000")).toBe(8192n);
    expect(num("0X2000")).toBe(8192n);
    expect(num("0x00000000000000002000")).toBe(8192n);
    expect(num("18446744073709551614")).toBe(0xfffffffffffffffen);
    for (const bad of ["", "12a", "-1", "+1", " 1", "0x", "0xg", "18446744073709551616", "0x10000000000000000", "1.5"]) {
      expect(num(bad), bad).toBe(INVALID);
    }
  });

  it("decodes binary values in hex (odd digit counts included) and base64", () => {
    const bin = (text: string, capacity = 64) => {
      const n = (t.call("testIscsiDecodeBinary", s.write(IN, encode(text)), text.length, s.base + OUT, capacity) as number) | 0; // an i32
      return n < 0 ? n : Array.from(s.read(OUT, n));
    };
    expect(bin("0x0a0B")).toEqual([0x0a, 0x0b]);
    expect(bin("0Xabc")).toEqual([0x0a, 0xbc]);
    expect(bin("0bAQID")).toEqual([1, 2, 3]);
    expect(bin("0BAQI=")).toEqual([1, 2]);
    expect(bin("0bAQ==")).toEqual([1]);
    expect(bin(`0b${Buffer.from(Uint8Array.from({ length: 48 }, (_, i) => i * 5)).toString("base64")}`)).toEqual(Array.from({ length: 48 }, (_, i) => i * 5));
    for (const bad of ["0x", "0b", "0xzz", "0b@@@@", "0bAQ=", "0bA=Q=", "0b====", "12", "0y12"]) expect(bin(bad), bad).toBe(-1);
    expect(bin("0x010203", 2)).toBe(-1); // longer than the room for it
    expect(t.stops).toEqual([]);
  });
});

describe("operational key negotiation", () => {
  const t = testBoard();
  const s = iscsiScratch(t);
  const negotiate = (text: Uint8Array) => {
    const at = s.write(IN, text);
    const result = t.call("testIscsiNegotiate", at, text.length, s.base + OUT, 8192) as number;
    return { result, failed: result >= FAIL ? result - FAIL : 0, answers: result >= FAIL ? [] : answers(s.read(OUT, result)) };
  };
  const param = (which: number) => t.call("testIscsiParam", which) as number;
  const fresh = (discovery = false, leading = true) => { t.call("testIscsiLimitsReset"); t.call("testIscsiNegotiateReset", discovery ? 1 : 0, leading ? 1 : 0); };
  beforeEach(() => fresh());

  it("answers each offer with its result, in order, then declares our MaxRecvDataSegmentLength", () => {
    const { answers: got } = negotiate(pairs("HeaderDigest=CRC32C,None", "DataDigest=None", "InitialR2T=No", "ImmediateData=Yes",
      "MaxRecvDataSegmentLength=262144", "MaxBurstLength=16776192", "FirstBurstLength=262144", "DefaultTime2Wait=0",
      "DefaultTime2Retain=0", "MaxOutstandingR2T=8", "DataPDUInOrder=Yes", "DataSequenceInOrder=Yes", "ErrorRecoveryLevel=2",
      "MaxConnections=4", "IFMarker=No", "OFMarker=No"));
    expect(got).toEqual([
      ["HeaderDigest", "CRC32C"], ["DataDigest", "None"], ["InitialR2T", "Yes"], ["ImmediateData", "Yes"],
      ["MaxBurstLength", "262144"], ["FirstBurstLength", "65536"], ["DefaultTime2Wait", "2"], ["DefaultTime2Retain", "0"],
      ["MaxOutstandingR2T", "1"], ["DataPDUInOrder", "Yes"], ["DataSequenceInOrder", "Yes"], ["ErrorRecoveryLevel", "0"],
      ["MaxConnections", "1"], ["IFMarker", "Reject"], ["OFMarker", "Reject"], ["MaxRecvDataSegmentLength", "8192"],
    ]);
    expect(param(Param.HeaderDigest)).toBe(1);
    expect(param(Param.MaxSend)).toBe(262144); // the initiator's declaration: no answer, but recorded
    expect(param(Param.MaxRecv)).toBe(8192);
    expect(param(Param.DefaultTime2Retain)).toBe(0);
  });

  it("answers NotUnderstood for unknown, X- and X# keys and for strings without '='", () => {
    expect(negotiate(pairs("X-com.example.Foo=1", "X#org.example=2", "Bogus=3", "novalue")).answers.slice(0, 4)).toEqual([
      ["X-com.example.Foo", "NotUnderstood"], ["X#org.example", "NotUnderstood"], ["Bogus", "NotUnderstood"], ["novalue", "NotUnderstood"],
    ]);
  });

  it("answers Reject for empty, malformed, overlong and out-of-range values, keeping the defaults", () => {
    const got = negotiate(pairs("MaxBurstLength=", "FirstBurstLength=511", "InitialR2T=yes", "HeaderDigest=MD5",
      "MaxRecvDataSegmentLength=16777216", `DataDigest=${"None,".repeat(60)}None`, "ErrorRecoveryLevel=3", "DefaultTime2Wait=3601",
      "MaxOutstandingR2T=0", "TaskReporting=FastAbort")).answers;
    expect(got.slice(0, -1).every(([, value]) => value === "Reject")).toBe(true);
    expect(got.length).toBe(11);
    expect(param(Param.MaxBurstLength)).toBe(262144);
    expect(param(Param.MaxSend)).toBe(8192);
    expect(param(Param.InitialR2T)).toBe(1);
  });

  it("answers Reject for keys only a target sends and for the obsolete marker keys", () => {
    expect(negotiate(pairs("TargetAlias=x", "TargetAddress=1.2.3.4", "TargetPortalGroupTag=1", "IFMarkInt=2048", "OFMarkInt=2048")).answers.slice(0, 5))
      .toEqual([["TargetAlias", "Reject"], ["TargetAddress", "Reject"], ["TargetPortalGroupTag", "Reject"], ["IFMarkInt", "Reject"], ["OFMarkInt", "Reject"]]);
  });

  it("answers Irrelevant for session keys in a discovery session, leading-only keys elsewhere, and SendTargets in login", () => {
    fresh(true);
    expect(negotiate(pairs("MaxBurstLength=512", "InitialR2T=No", "DefaultTime2Wait=1", "SendTargets=All")).answers.slice(0, 4))
      .toEqual([["MaxBurstLength", "Irrelevant"], ["InitialR2T", "Irrelevant"], ["DefaultTime2Wait", "2"], ["SendTargets", "Irrelevant"]]);
    fresh(false, false);
    expect(negotiate(pairs("InitialR2T=No", "HeaderDigest=None")).answers.slice(0, 2)).toEqual([["InitialR2T", "Irrelevant"], ["HeaderDigest", "None"]]);
  });

  it("fails the login (initiator error) on a key sent twice or a reserved word offered as a value", () => {
    expect(negotiate(pairs("MaxBurstLength=512", "MaxBurstLength=1024")).failed).toBe(0x0200);
    fresh();
    expect(negotiate(pairs("InitialR2T=Reject")).failed).toBe(0x0200);
    fresh();
    expect(negotiate(pairs("DataDigest=NotUnderstood")).failed).toBe(0x0200);
    fresh();
    expect(negotiate(pairs("ImmediateData=Irrelevant")).failed).toBe(0x0200);
  });

  it("fails the login (out of resources) when the answers do not fit, never writing past the room", () => {
    const text = pairs(...Array.from({ length: 600 }, (_, i) => `U${i}=1`));
    const at = s.write(IN, text);
    const result = t.call("testIscsiNegotiate", at, text.length, s.base + OUT, 512) as number;
    expect(result).toBe(FAIL + 0x0302);
    expect(t.stops).toEqual([]);
  });

  it("picks digests in the initiator's order among those the policy allows", () => {
    const digest = (offer: string, policy: number) => {
      fresh();
      t.call("testIscsiLimitSet", 0, policy);
      return negotiate(pairs(`HeaderDigest=${offer}`)).answers[0]![1];
    };
    const [NoneOnly, Crc32cOnly, Either] = [0, 1, 2];
    expect(digest("CRC32C,None", Either)).toBe("CRC32C");
    expect(digest("None,CRC32C", Either)).toBe("None");
    expect(digest("Foo,CRC32C", Either)).toBe("CRC32C");
    expect(digest("CRC32C", NoneOnly)).toBe("Reject");
    expect(digest("CRC32C,None", NoneOnly)).toBe("None");
    expect(digest("None", Crc32cOnly)).toBe("Reject");
    expect(digest("None,CRC32C", Crc32cOnly)).toBe("CRC32C");
    expect(digest(",,", Either)).toBe("Reject");
  });

  it("answers TaskReporting with RFC3720 and iSCSIProtocolLevel with the minimum", () => {
    expect(negotiate(pairs("TaskReporting=ResponseFence,RFC3720", "iSCSIProtocolLevel=2")).answers.slice(0, 2))
      .toEqual([["TaskReporting", "RFC3720"], ["iSCSIProtocolLevel", "1"]]);
    expect(param(Param.IscsiProtocolLevel)).toBe(1);
  });

  // The numerical keys: [name, param, low, high, RFC default, result function, our limit's own low bound].
  const numerical: [string, number, number, number, number, "min" | "max", number][] = [
    ["MaxConnections", Param.MaxConnections, 1, 65535, 1, "min", 1],
    ["MaxBurstLength", Param.MaxBurstLength, 512, 0xffffff, 262144, "min", 262144],
    ["DefaultTime2Wait", Param.DefaultTime2Wait, 0, 3600, 2, "max", 0],
    ["DefaultTime2Retain", Param.DefaultTime2Retain, 0, 3600, 20, "min", 20],
    ["MaxOutstandingR2T", Param.MaxOutstandingR2T, 1, 65535, 1, "min", 1],
    ["ErrorRecoveryLevel", Param.ErrorRecoveryLevel, 0, 2, 0, "min", 0],
    ["iSCSIProtocolLevel", Param.IscsiProtocolLevel, 0, 31, 1, "min", 1],
  ];
  for (const [name, which, low, high, fallback, fn, limitLow] of numerical) {
    it(`${name}: the ${fn}imum of both sides when the offer is in ${low}..${high}, Reject otherwise`, () => {
      const limitHigh = fn === "max" ? 2 : high; // DefaultTime2Wait's limit may not exceed the default
      fc.assert(
        fc.property(fc.integer({ min: 0, max: Math.min(high * 2 + 2, 0x2000000) }), fc.integer({ min: limitLow, max: Math.max(limitLow, limitHigh) }), fc.boolean(), (offer, ours, hex) => {
          fresh();
          const limitIndex = which === Param.IscsiProtocolLevel ? 15 : which;
          t.call("testIscsiLimitSet", limitIndex, ours);
          const { answers: got } = negotiate(pairs(`${name}=${hex ? `0x${offer.toString(16)}` : offer}`));
          if (offer < low || offer > high) {
            expect(got[0]).toEqual([name, "Reject"]);
            expect(param(which)).toBe(fallback);
            return;
          }
          const result = fn === "min" ? Math.min(offer, ours) : Math.max(offer, ours);
          expect(got[0]).toEqual([name, String(result)]);
          expect(param(which)).toBe(result);
          expect(result).toBeGreaterThanOrEqual(low); // within both sides' ranges
          expect(result).toBeLessThanOrEqual(high);
          if (fn === "min") expect(result <= offer && result <= ours).toBe(true);
          else expect(result >= offer && result >= ours).toBe(true);
        }),
        { numRuns: 120, seed: which + 1 },
      );
      expect(t.stops).toEqual([]);
    });
  }

  it("FirstBurstLength: the minimum, never above the MaxBurstLength result, wherever either comes in the text", () => {
    fc.assert(
      fc.property(fc.integer({ min: 512, max: 0xffffff }), fc.integer({ min: 512, max: 0xffffff }), fc.integer({ min: 65536, max: 262144 }), fc.boolean(),
        (firstOffer, maxOffer, ours, firstFirst) => {
          fresh();
          t.call("testIscsiLimitSet", 8, ours);
          const keys = [`FirstBurstLength=${firstOffer}`, `MaxBurstLength=${maxOffer}`];
          negotiate(pairs(...(firstFirst ? keys : keys.reverse())));
          const first = param(Param.FirstBurstLength);
          const burst = param(Param.MaxBurstLength);
          expect(burst).toBe(Math.min(maxOffer, 262144));
          expect(first).toBe(Math.min(firstOffer, ours, burst));
          expect(first).toBeLessThanOrEqual(burst);
        }),
      { numRuns: 150, seed: 99 },
    );
  });

  const booleans: [string, number, number, "and" | "or"][] = [
    ["InitialR2T", Param.InitialR2T, 5, "or"],
    ["ImmediateData", Param.ImmediateData, 6, "and"],
    ["DataPDUInOrder", Param.DataPDUInOrder, 12, "or"],
    ["DataSequenceInOrder", Param.DataSequenceInOrder, 13, "or"],
  ];
  for (const [name, which, limit, fn] of booleans) {
    it(`${name}: ${fn.toUpperCase()} of both sides`, () => {
      fc.assert(
        fc.property(fc.boolean(), fc.boolean(), (offer, ours) => {
          fresh();
          t.call("testIscsiLimitSet", limit, ours ? 1 : 0);
          const { answers: got } = negotiate(pairs(`${name}=${offer ? "Yes" : "No"}`));
          const result = fn === "and" ? offer && ours : offer || ours;
          expect(got[0]).toEqual([name, result ? "Yes" : "No"]);
          expect(param(which)).toBe(result ? 1 : 0);
        }),
        { numRuns: 20, seed: limit },
      );
    });
  }

  it("MaxRecvDataSegmentLength: the initiator's is recorded whatever ours is; out of 512..2^24-1 it is Rejected", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x2000000 }), fc.integer({ min: 512, max: 0xffffff }), (offer, ours) => {
        fresh();
        t.call("testIscsiLimitSet", 2, ours);
        const { answers: got } = negotiate(pairs(`MaxRecvDataSegmentLength=${offer}`));
        const valid = offer >= 512 && offer <= 0xffffff;
        expect(got).toEqual(valid ? [["MaxRecvDataSegmentLength", String(ours)]]
          : [["MaxRecvDataSegmentLength", "Reject"], ["MaxRecvDataSegmentLength", String(ours)]]);
        expect(param(Param.MaxSend)).toBe(valid ? offer : 8192);
        expect(param(Param.MaxRecv)).toBe(ours);
      }),
      { numRuns: 100, seed: 5 },
    );
  });
});

const Outcome = { Ok: 0, SendTargets: 1, ProtocolError: 2, OutOfResources: 3 } as const;

describe("Text Requests in full feature phase, and SendTargets", () => {
  const t = testBoard();
  const s = iscsiScratch(t);
  const name = (n: string) => { const b = encode(n); return [s.write(60000 + n.length * 7 % 4000, b), b.length] as const; };
  const add = (target: string, alias = "") => {
    const [n, nb] = name(target);
    const a = s.write(64000, encode(alias));
    return t.call("testIscsiTargetAdd", n, nb, a, alias.length, 0, 0, 0, 0, 0, 0, 0, 0) as number;
  };
  const text = (bytes: Uint8Array, capacity = 8192) => {
    const at = s.write(IN, bytes);
    const outcome = t.call("testIscsiTextRequest", at, bytes.length, s.base + OUT, capacity) as number;
    return { outcome, answers: answers(s.read(OUT, t.call("testIscsiTextOutBytes") as number)) };
  };
  const portal = encode("10.0.0.1:3260,1");
  const sendTargets = (sessionTarget: number, initiator: string, start = 0, capacity = 8192, append = 0) => {
    const i = s.write(50000, encode(initiator));
    const p = s.write(51000, portal);
    const next = t.call("testIscsiSendTargets", sessionTarget, i, initiator.length, p, portal.length, start, s.base + OUT, capacity, append) as number;
    return { next, answers: answers(s.read(OUT, t.call("testIscsiTextOutBytes") as number)) };
  };
  const DONE = 0xffffffff;

  beforeEach(() => {
    t.call("testIscsiTargetClear");
    expect(add("iqn.2024-01.org.example:disk0", "zero")).toBe(0);
    expect(add("iqn.2024-01.org.example:disk1")).toBe(1);
    expect(add("iqn.2024-01.org.example:disk2")).toBe(2);
    const [n, nb] = name("iqn.1998-01.com.example:only");
    expect(t.call("testIscsiTargetAllow", 1, n, nb)).toBe(1);
  });

  it("lists every target the initiator may reach for SendTargets=All in a discovery session", () => {
    t.call("testIscsiNegotiateReset", 1, 1);
    expect(text(pairs("SendTargets=All")).outcome).toBe(Outcome.SendTargets);
    const got = sendTargets(DONE, "iqn.1998-01.com.example:other");
    expect(got.next).toBe(DONE);
    expect(got.answers).toEqual([
      ["TargetName", "iqn.2024-01.org.example:disk0"], ["TargetAddress", "10.0.0.1:3260,1"],
      ["TargetName", "iqn.2024-01.org.example:disk2"], ["TargetAddress", "10.0.0.1:3260,1"],
    ]);
    expect(sendTargets(DONE, "IQN.1998-01.com.example:ONLY").answers.filter(([k]) => k === "TargetName").length).toBe(3);
  });

  it("resumes at the next whole pair when the answer does not fit (target index << 8 | part: 0 its name, k + 1 address k)", () => {
    t.call("testIscsiNegotiateReset", 1, 1);
    text(pairs("SendTargets=All"));
    const first = sendTargets(DONE, "iqn.1998-01.com.example:only", 0, 100, 0);
    expect(first.next).toBe(1 << 8);
    expect(first.answers.length).toBe(2);
    const second = sendTargets(DONE, "iqn.1998-01.com.example:only", first.next, 100, 0);
    expect(second.next).toBe(2 << 8);
    expect(second.answers[0]).toEqual(["TargetName", "iqn.2024-01.org.example:disk1"]);
    expect(sendTargets(DONE, "iqn.1998-01.com.example:only", second.next, 100, 0).next).toBe(DONE);
    // Room for the name only: the address follows in the next piece, the name not repeated.
    const name = sendTargets(DONE, "iqn.1998-01.com.example:only", 0, 44, 0);
    expect(name.answers).toEqual([["TargetName", "iqn.2024-01.org.example:disk0"]]);
    expect(name.next).toBe(1);
    const address = sendTargets(DONE, "iqn.1998-01.com.example:only", name.next, 44, 0);
    expect(address.answers[0]).toEqual(["TargetAddress", "10.0.0.1:3260,1"]);
  });

  it("answers a named target, the session's own for an empty value, nothing for an unknown name, Reject for All in a normal session", () => {
    t.call("testIscsiNegotiateReset", 0, 1);
    text(pairs("SendTargets=iqn.2024-01.org.example:DISK2"));
    expect(sendTargets(0, "iqn.1998-01.com.example:a").answers[0]).toEqual(["TargetName", "iqn.2024-01.org.example:disk2"]);
    text(pairs("SendTargets="));
    expect(sendTargets(0, "iqn.1998-01.com.example:a").answers[0]).toEqual(["TargetName", "iqn.2024-01.org.example:disk0"]);
    text(pairs("SendTargets=iqn.2024-01.org.example:nope"));
    expect(sendTargets(0, "iqn.1998-01.com.example:a").answers).toEqual([]);
    text(pairs("SendTargets=All"));
    expect(sendTargets(0, "iqn.1998-01.com.example:a").answers).toEqual([["SendTargets", "Reject"]]);
  });

  it("accepts a redeclared MaxRecvDataSegmentLength, rejects login-only keys, and calls duplicates and bad text protocol errors", () => {
    t.call("testIscsiNegotiateReset", 0, 1);
    const got = text(pairs("MaxRecvDataSegmentLength=65536", "InitiatorAlias=host", "MaxBurstLength=512", "InitiatorName=iqn.x.y", "X-vendor=1"));
    expect(got.outcome).toBe(Outcome.Ok);
    expect(got.answers).toEqual([["MaxBurstLength", "Reject"], ["InitiatorName", "Reject"], ["X-vendor", "NotUnderstood"]]);
    expect(t.call("testIscsiParam", Param.MaxSend)).toBe(65536);
    expect(text(pairs("InitiatorAlias=a", "InitiatorAlias=b")).outcome).toBe(Outcome.ProtocolError);
    expect(text(encode("SendTargets=All")).outcome).toBe(Outcome.ProtocolError); // no NUL at the end
    expect(text(pairs("=x")).outcome).toBe(Outcome.ProtocolError);
    expect(text(pairs("SendTargets=Reject")).outcome).toBe(Outcome.ProtocolError);
    expect(text(pairs(...Array.from({ length: 100 }, (_, i) => `Y${i}=1`)), 256).outcome).toBe(Outcome.OutOfResources);
    expect(t.stops).toEqual([]);
  });

  it("refuses target configurations it cannot honour", () => {
    const [n, nb] = name("iqn.2024-01.org.example:disk0");
    expect(t.call("testIscsiTargetAdd", n, nb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).toBe(DONE); // taken
    const [bad, badBytes] = name("iqn.2024-01.org.example:has space");
    expect(t.call("testIscsiTargetAdd", bad, badBytes, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).toBe(DONE);
    const [other, otherBytes] = name("eui.0123456789abcdef");
    const secret = s.write(62000, encode("secretsecret"));
    // A user without a secret, and mutual CHAP sharing the one-way secret.
    expect(t.call("testIscsiTargetAdd", other, otherBytes, 0, 0, secret, 4, 0, 0, 0, 0, 0, 0)).toBe(DONE);
    expect(t.call("testIscsiTargetAdd", other, otherBytes, 0, 0, secret, 4, secret, 12, secret, 4, secret, 12)).toBe(DONE);
    expect(t.call("testIscsiTargetAdd", other, otherBytes, 0, 0, secret, 4, secret, 12, 0, 0, 0, 0)).toBe(3);
    expect(t.call("testIscsiTargetAddLun", 3, 0, 7)).toBe(1);
    expect(t.call("testIscsiTargetAddLun", 3, 0, 8)).toBe(0); // LUN 0 is mapped
    expect(t.call("testIscsiTargetAddLun", 3, 16384, 8)).toBe(0);
  });
});
