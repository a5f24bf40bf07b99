// The login state machine (RFC 7143, Login Phase): whole logins through SecurityNegotiation, operational negotiation
// and into full feature phase, without authentication, with one-way CHAP and with mutual CHAP (the initiator's side
// computed here with node:crypto's MD5), continuation across C-bit requests, every failure Status-Class and
// Status-Detail this target gives, and random bytes and random key soups as Login Requests: always a Login Response,
// never a stopped processor, never a moved heap. The test plays the initiator through the probes, writing requests
// into scratch RAM and reading the responses back.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { testBoard, type TestBoard } from "../../support/board.ts";

const Stage = { Security: 0, Operational: 1, FullFeature: 3 } as const;
const Outcome = { Continue: 0, Complete: 1, Failed: 2 } as const;
const State = { Idle: 0, Start: 1, Security: 2, Operational: 3, FullFeature: 4, Failed: 5 } as const;
const NONE = 0xffffffff;
const REQ = 0;
const REQ_DATA = 1024;
const RSP = 40000;
const RSP_DATA = 40064;
const RSP_CAPACITY = 8192;
const INITIATOR = "iqn.1998-01.com.example:host1";
const ISID = 0x023d00000001n;

const encode = (text: string) => new TextEncoder().encode(text);
const pairs = (...items: string[]) => encode(items.map((i) => `${i}\0`).join(""));
const md5 = (...parts: Uint8Array[]) => new Uint8Array(createHash("md5").update(Buffer.concat(parts)).digest());
const toHex = (b: Uint8Array) => `0x${Buffer.from(b).toString("hex")}`;

interface Request {
  transit?: boolean;
  cont?: boolean;
  csg: number;
  nsg?: number;
  versionMax?: number;
  versionMin?: number;
  isid?: bigint;
  tsih?: number;
  itt?: number;
  cid?: number;
  cmdSn?: number;
}

function loginBhs(r: Request, dataBytes: number): Uint8Array {
  const b = new Uint8Array(48);
  const v = new DataView(b.buffer);
  b[0] = 0x43;
  b[1] = (r.transit ? 0x80 : 0) | (r.cont ? 0x40 : 0) | (r.csg << 2) | (r.nsg ?? 0);
  b[2] = r.versionMax ?? 0;
  b[3] = r.versionMin ?? 0;
  v.setUint32(4, dataBytes); // TotalAHSLength 0
  const isid = r.isid ?? ISID;
  v.setUint16(8, Number(isid >> 32n));
  v.setUint32(10, Number(isid & 0xffffffffn));
  v.setUint16(14, r.tsih ?? 0);
  v.setUint32(16, r.itt ?? 0x1000);
  v.setUint16(20, r.cid ?? 1);
  v.setUint32(24, r.cmdSn ?? 7);
  v.setUint32(28, 0);
  return b;
}

interface Response {
  outcome: number;
  opcode: number;
  transit: boolean;
  cont: boolean;
  csg: number;
  nsg: number;
  status: number;
  isid: bigint;
  tsih: number;
  itt: number;
  statSn: number;
  expCmdSn: number;
  maxCmdSn: number;
  dataBytes: number;
  keys: [string, string][];
  get(key: string): string | undefined;
}

function parseResponse(bhs: Uint8Array, data: Uint8Array, outcome: number): Response {
  const v = new DataView(bhs.buffer, bhs.byteOffset);
  const text = new TextDecoder().decode(data);
  expect(text === "" || text.endsWith("\0"), "response text ends with NUL").toBe(true);
  const keys = text.split("\0").filter((p) => p !== "").map((p): [string, string] => {
    const i = p.indexOf("=");
    expect(i, `a key=value pair: ${p}`).toBeGreaterThan(0);
    return [p.slice(0, i), p.slice(i + 1)];
  });
  return {
    outcome,
    opcode: bhs[0]! & 0x3f,
    transit: (bhs[1]! & 0x80) !== 0,
    cont: (bhs[1]! & 0x40) !== 0,
    csg: (bhs[1]! >> 2) & 3,
    nsg: bhs[1]! & 3,
    status: v.getUint16(36),
    isid: (BigInt(v.getUint16(8)) << 32n) | BigInt(v.getUint32(10)),
    tsih: v.getUint16(14),
    itt: v.getUint32(16),
    statSn: v.getUint32(24),
    expCmdSn: v.getUint32(28),
    maxCmdSn: v.getUint32(32),
    dataBytes: v.getUint32(4) & 0xffffff,
    keys,
    get: (key) => keys.find(([k]) => k === key)?.[1],
  };
}

class Harness {
  readonly base: number;
  constructor(readonly t: TestBoard) { this.base = t.call("testIscsiScratch") as number; }
  ram(): Uint8Array { return new Uint8Array(this.t.host.memory.buffer); }
  write(offset: number, bytes: Uint8Array): number { this.ram().set(bytes, this.base + offset); return this.base + offset; }
  read(offset: number, n: number): Uint8Array { return this.ram().slice(this.base + offset, this.base + offset + n); }

  addTarget(name: string, alias = "", chap: [string, string] | null = null, mutual: [string, string] | null = null): number {
    const field = (offset: number, text: string): [number, number] => [this.write(offset, encode(text)), encode(text).length];
    const args = [
      ...field(60000, name), ...field(60300, alias), ...field(60600, chap?.[0] ?? ""), ...field(60900, chap?.[1] ?? ""),
      ...field(61200, mutual?.[0] ?? ""), ...field(61500, mutual?.[1] ?? ""),
    ];
    return this.t.call("testIscsiTargetAdd", ...args) as number;
  }

  allow(target: number, initiator: string): void {
    const b = encode(initiator);
    expect(this.t.call("testIscsiTargetAllow", target, this.write(62000, b), b.length)).toBe(1);
  }
}

/** One initiator's connection: loginBegin, then a Login Request per step. */
class Connection {
  readonly random = Uint8Array.from({ length: 17 }, (_, i) => (i * 29 + 3) & 0xff);
  constructor(readonly h: Harness, readonly index = 0) {}
  get challenge(): Uint8Array { return this.random.subarray(0, 16); }
  get identifier(): number { return this.random[16]!; }

  begin(statSn = 100, portalGroupTag = 1, window = 32): this {
    const at = this.h.write(REQ_DATA, this.random);
    this.h.t.call("testIscsiLoginBegin", this.index, statSn, portalGroupTag, window, at);
    return this;
  }

  step(r: Request, text: Uint8Array): Response {
    const bhs = this.h.write(REQ, loginBhs(r, text.length));
    const data = this.h.write(REQ_DATA, text);
    this.h.ram().fill(0xee, this.h.base + RSP, this.h.base + RSP + 64 + RSP_CAPACITY);
    const outcome = this.h.t.call("testIscsiLoginStep", this.index, bhs, data, text.length, this.h.base + RSP, this.h.base + RSP_DATA, RSP_CAPACITY) as number;
    expect(this.h.t.stops).toEqual([]);
    const dataBytes = this.h.t.call("testIscsiLoginDataBytes", this.index) as number;
    const response = parseResponse(this.h.read(RSP, 48), this.h.read(RSP_DATA, dataBytes), outcome);
    expect(response.dataBytes).toBe(dataBytes);
    expect(Array.from(this.h.read(RSP_DATA + dataBytes, ((dataBytes + 3) & ~3) - dataBytes)).every((b) => b === 0), "padding zeroed").toBe(true);
    return response;
  }

  state(): number { return this.h.t.call("testIscsiLoginState", this.index) as number; }
  param(which: number): number { return this.h.t.call("testIscsiLoginParam", this.index, which) as number; }
}

const OPERATIONAL_KEYS = [
  "HeaderDigest=CRC32C,None", "DataDigest=None", "InitialR2T=No", "ImmediateData=Yes", "MaxRecvDataSegmentLength=262144",
  "MaxBurstLength=16776192", "FirstBurstLength=262144", "DefaultTime2Wait=2", "DefaultTime2Retain=0", "MaxOutstandingR2T=1",
  "DataPDUInOrder=Yes", "DataSequenceInOrder=Yes", "ErrorRecoveryLevel=0", "IFMarker=No", "OFMarker=No", "MaxConnections=1",
];
const Param = { HeaderDigest: 0, DataDigest: 1, MaxRecv: 2, MaxSend: 3, MaxBurstLength: 7, FirstBurstLength: 8, SessionType: 16 } as const;

describe("login", () => {
  const t = testBoard();
  const h = new Harness(t);
  const names = {
    open: "iqn.2024-01.org.example:open",
    chap: "iqn.2024-01.org.example:chap",
    private: "iqn.2024-01.org.example:private",
    oneway: "iqn.2024-01.org.example:oneway",
  };
  const alice: [string, string] = ["alice", "alice-secret-12"];
  const target1: [string, string] = ["target1", "target-secret-34"];
  const bob: [string, string] = ["bob", "bob-secret-5678"];

  beforeEach(() => {
    t.call("testIscsiTargetClear");
    t.call("testIscsiLimitsReset");
    expect(h.addTarget(names.open, "open disk")).toBe(0);
    expect(h.addTarget(names.chap, "", alice, target1)).toBe(1);
    expect(h.addTarget(names.private)).toBe(2);
    h.allow(2, "iqn.1998-01.com.example:host2");
    expect(h.addTarget(names.oneway, "", bob)).toBe(3);
  });

  const security = (target: string, extra: string[] = [], r: Partial<Request> = {}) =>
    ({ r: { transit: true, csg: Stage.Security, nsg: Stage.Operational, ...r }, text: pairs(`InitiatorName=${INITIATOR}`, `TargetName=${target}`, "SessionType=Normal", ...extra) });

  it("goes from security to operational to full feature phase without authentication", () => {
    const c = new Connection(h).begin(100, 1, 32);
    const first = security(names.open, ["InitiatorAlias=host1", "AuthMethod=None"]);
    const r1 = c.step(first.r, first.text);
    expect(r1.outcome).toBe(Outcome.Continue);
    expect([r1.opcode, r1.transit, r1.cont, r1.csg, r1.nsg, r1.status]).toEqual([0x23, true, false, Stage.Security, Stage.Operational, 0]);
    expect([r1.isid, r1.tsih, r1.itt, r1.statSn, r1.expCmdSn, r1.maxCmdSn]).toEqual([ISID, 0, 0x1000, 100, 7, 38]);
    expect(r1.keys).toEqual([["TargetPortalGroupTag", "1"], ["TargetAlias", "open disk"], ["AuthMethod", "None"]]);
    expect(t.call("testIscsiLoginIdentifiedNow", 0)).toBe(1);
    expect(t.call("testIscsiLoginTarget", 0)).toBe(0);
    expect(c.state()).toBe(State.Operational);

    const r2 = c.step({ transit: true, csg: Stage.Operational, nsg: Stage.FullFeature, itt: 0x1001 }, pairs(...OPERATIONAL_KEYS));
    expect(r2.outcome).toBe(Outcome.Complete);
    expect([r2.transit, r2.csg, r2.nsg, r2.status, r2.statSn, r2.itt]).toEqual([true, Stage.Operational, Stage.FullFeature, 0, 101, 0x1001]);
    expect(t.call("testIscsiLoginIdentifiedNow", 0)).toBe(0);
    expect(r2.get("HeaderDigest")).toBe("CRC32C");
    expect(r2.get("InitialR2T")).toBe("Yes");
    expect(r2.get("MaxBurstLength")).toBe("262144");
    expect(r2.get("IFMarker")).toBe("Reject");
    expect(r2.keys.at(-1)).toEqual(["MaxRecvDataSegmentLength", "8192"]);
    expect(c.state()).toBe(State.FullFeature);
    expect(c.param(Param.HeaderDigest)).toBe(1);
    expect(c.param(Param.MaxSend)).toBe(262144);
    expect(c.param(Param.FirstBurstLength)).toBe(65536);
    expect(t.call("testIscsiLoginStatSn", 0)).toBe(102);
    expect(t.call("testIscsiLoginTsih", 0)).toBe(0); // a new session: the engine writes its TSIH into the response
  });

  it("starts in the operational stage when the initiator skips security, and may go straight to full feature", () => {
    const c = new Connection(h).begin();
    const r = c.step({ transit: true, csg: Stage.Operational, nsg: Stage.FullFeature },
      pairs(`InitiatorName=${INITIATOR}`, `TargetName=${names.open}`, ...OPERATIONAL_KEYS));
    expect(r.outcome).toBe(Outcome.Complete);
    expect(r.keys[0]).toEqual(["TargetPortalGroupTag", "1"]);
    // Security straight to full feature: nothing operational is negotiated, the defaults hold.
    const d = new Connection(h, 1).begin();
    const s = security(names.open, [], { nsg: Stage.FullFeature });
    const r2 = d.step(s.r, s.text);
    expect([r2.outcome, r2.csg, r2.nsg]).toEqual([Outcome.Complete, Stage.Security, Stage.FullFeature]);
    expect(d.param(Param.MaxRecv)).toBe(8192);
  });

  it("waits in a stage while the initiator does not ask to move on", () => {
    const c = new Connection(h).begin();
    const s = security(names.open, [], { transit: false });
    const r1 = c.step(s.r, s.text);
    expect([r1.outcome, r1.transit]).toEqual([Outcome.Continue, false]);
    const r2 = c.step({ csg: Stage.Security, nsg: Stage.Operational, transit: true }, new Uint8Array(0));
    expect([r2.outcome, r2.transit, r2.nsg, r2.statSn]).toEqual([Outcome.Continue, true, Stage.Operational, 101]);
    const r3 = c.step({ csg: Stage.Operational }, pairs("MaxBurstLength=65536"));
    expect([r3.transit, r3.get("MaxBurstLength")]).toEqual([false, "65536"]);
    const r4 = c.step({ csg: Stage.Operational, nsg: Stage.FullFeature, transit: true }, pairs("FirstBurstLength=131072"));
    expect([r4.outcome, r4.get("FirstBurstLength")]).toEqual([Outcome.Complete, "65536"]);
  });

  it("joins text split over Login Requests with C set, even mid-key, answering each part with an empty response", () => {
    const c = new Connection(h).begin();
    const whole = pairs(`InitiatorName=${INITIATOR}`, `TargetName=${names.open}`, "AuthMethod=None");
    const parts = [whole.subarray(0, 10), whole.subarray(10, 45), whole.subarray(45)];
    for (const part of parts.slice(0, 2)) {
      const r = c.step({ cont: true, csg: Stage.Security, nsg: Stage.Operational }, part);
      expect([r.outcome, r.transit, r.cont, r.dataBytes, r.status]).toEqual([Outcome.Continue, false, false, 0, 0]);
    }
    const last = c.step({ transit: true, csg: Stage.Security, nsg: Stage.Operational }, parts[2]!);
    expect(last.keys).toEqual([["TargetPortalGroupTag", "1"], ["TargetAlias", "open disk"], ["AuthMethod", "None"]]);
    expect(last.statSn).toBe(102);
  });

  // The initiator's side of CHAP, as libiscsi runs it: offer with T set, then CHAP_A, then the response with T set.
  function chapLogin(target: string, secret: string, user = alice[0], mutual?: { identifier: number; challenge: string }) {
    const c = new Connection(h).begin();
    const offer = security(target, ["AuthMethod=CHAP,None"]);
    const r1 = c.step(offer.r, offer.text);
    expect([r1.outcome, r1.transit, r1.get("AuthMethod")]).toEqual([Outcome.Continue, false, "CHAP"]);
    const r2 = c.step({ csg: Stage.Security, nsg: Stage.Operational }, pairs("CHAP_A=7,5"));
    expect(r2.keys).toEqual([["CHAP_A", "5"], ["CHAP_I", String(c.identifier)], ["CHAP_C", toHex(c.challenge)]]);
    const response = md5(Uint8Array.of(c.identifier), encode(secret), c.challenge);
    const keys = [`CHAP_N=${user}`, `CHAP_R=${toHex(response)}`];
    if (mutual) keys.push(`CHAP_I=${mutual.identifier}`, `CHAP_C=${mutual.challenge}`);
    const r3 = c.step({ transit: true, csg: Stage.Security, nsg: Stage.Operational }, pairs(...keys));
    return { c, r3 };
  }

  it("authenticates the initiator with one-way CHAP (MD5), then negotiates and completes", () => {
    const { c, r3 } = chapLogin(names.chap, alice[1]);
    expect([r3.outcome, r3.transit, r3.nsg, r3.status, r3.keys.length]).toEqual([Outcome.Continue, true, Stage.Operational, 0, 0]);
    const r4 = c.step({ transit: true, csg: Stage.Operational, nsg: Stage.FullFeature }, pairs(...OPERATIONAL_KEYS));
    expect(r4.outcome).toBe(Outcome.Complete);
  });

  it("answers the initiator's challenge for mutual CHAP, in hex or base64", () => {
    for (const [identifier, challenge, encoded] of [
      [77, Uint8Array.from({ length: 16 }, (_, i) => 200 - i), (b: Uint8Array) => toHex(b)],
      [3, Uint8Array.from({ length: 40 }, (_, i) => i * 3), (b: Uint8Array) => `0b${Buffer.from(b).toString("base64")}`],
    ] as const) {
      const { r3 } = chapLogin(names.chap, alice[1], alice[0], { identifier, challenge: encoded(challenge) });
      expect([r3.outcome, r3.transit, r3.status]).toEqual([Outcome.Continue, true, 0]);
      expect(r3.get("CHAP_N")).toBe(target1[0]);
      expect(r3.get("CHAP_R")).toBe(toHex(md5(Uint8Array.of(identifier), encode(target1[1]), challenge)));
    }
  });

  it("fails authentication (0x0201) for every CHAP fault", () => {
    const c0 = new Connection(h);
    const reflected = toHex(c0.challenge);
    const cases: [string, () => Response][] = [
      ["a wrong secret", () => chapLogin(names.chap, "not-the-secret").r3],
      ["a wrong user", () => chapLogin(names.chap, alice[1], "mallory").r3],
      ["our own challenge reflected", () => chapLogin(names.chap, alice[1], alice[0], { identifier: 1, challenge: reflected }).r3],
      ["mutual CHAP where the target has no credentials", () => chapLogin(names.oneway, bob[1], bob[0], { identifier: 1, challenge: "0x0102" }).r3],
      ["a mutual identifier beyond a byte", () => chapLogin(names.chap, alice[1], alice[0], { identifier: 256, challenge: "0x0102" }).r3],
      ["a malformed mutual challenge", () => chapLogin(names.chap, alice[1], alice[0], { identifier: 1, challenge: "0xzz" }).r3],
      ["CHAP_I without CHAP_C", () => {
        const c = new Connection(h).begin();
        const o = security(names.chap, ["AuthMethod=CHAP"]);
        c.step(o.r, o.text);
        c.step({ csg: 0, nsg: 1 }, pairs("CHAP_A=5"));
        const r = md5(Uint8Array.of(c.identifier), encode(alice[1]), c.challenge);
        return c.step({ transit: true, csg: 0, nsg: 1 }, pairs("CHAP_N=alice", `CHAP_R=${toHex(r)}`, "CHAP_I=9"));
      }],
      ["a CHAP_R of the wrong length", () => {
        const c = new Connection(h).begin();
        const o = security(names.chap, ["AuthMethod=CHAP"]);
        c.step(o.r, o.text);
        c.step({ csg: 0, nsg: 1 }, pairs("CHAP_A=5"));
        return c.step({ transit: true, csg: 0, nsg: 1 }, pairs("CHAP_N=alice", "CHAP_R=0x0102"));
      }],
      ["CHAP_A without MD5", () => {
        const c = new Connection(h).begin();
        const o = security(names.chap, ["AuthMethod=CHAP"]);
        c.step(o.r, o.text);
        return c.step({ csg: 0, nsg: 1 }, pairs("CHAP_A=6,7"));
      }],
      ["CHAP_R before any challenge", () => {
        const c = new Connection(h).begin();
        const o = security(names.chap, ["AuthMethod=CHAP", "CHAP_N=alice", "CHAP_R=0x00"]);
        return c.step(o.r, o.text);
      }],
      ["only None offered to a CHAP target", () => {
        const o = security(names.chap, ["AuthMethod=None"]);
        return new Connection(h).begin().step(o.r, o.text);
      }],
      ["leaving security unauthenticated", () => {
        const o = security(names.chap);
        return new Connection(h).begin().step(o.r, o.text);
      }],
      ["skipping security on a CHAP target", () => new Connection(h).begin().step({ transit: true, csg: 1, nsg: 3 },
        pairs(`InitiatorName=${INITIATOR}`, `TargetName=${names.chap}`))],
    ];
    for (const [name, run] of cases) {
      const r = run();
      expect([r.outcome, r.status, r.dataBytes, r.transit], name).toEqual([Outcome.Failed, 0x0201, 0, false]);
      expect(t.call("testIscsiLoginState", 0), name).toBe(State.Failed);
    }
  });

  it("answers every other login failure with RFC 7143's Status-Class and Status-Detail", () => {
    const text = (...extra: string[]) => pairs(`InitiatorName=${INITIATOR}`, `TargetName=${names.open}`, ...extra);
    const first = { transit: true, csg: 0, nsg: 1 };
    const cases: [string, number, [Request, Uint8Array][]][] = [
      ["unknown target: not found", 0x0203, [[first, pairs(`InitiatorName=${INITIATOR}`, "TargetName=iqn.2024-01.org.example:nope")]]],
      ["a target name that is no name: not found", 0x0203, [[first, pairs(`InitiatorName=${INITIATOR}`, `TargetName=${"x".repeat(300)}`)]]],
      ["no InitiatorName: missing parameter", 0x0207, [[first, pairs(`TargetName=${names.open}`)]]],
      ["no TargetName in a normal session: missing parameter", 0x0207, [[first, pairs(`InitiatorName=${INITIATOR}`)]]],
      ["an initiator not on the allow list: authorization failure", 0x0202, [[first, pairs(`InitiatorName=${INITIATOR}`, `TargetName=${names.private}`)]]],
      ["an unknown session type", 0x0209, [[first, text("SessionType=Boot")]]],
      ["Version-min 1: unsupported version", 0x0205, [[{ ...first, versionMax: 2, versionMin: 1 }, text()]]],
      ["T and C both set", 0x0200, [[{ ...first, cont: true }, text()]]],
      ["CSG 2", 0x0200, [[{ transit: false, csg: 2 }, text()]]],
      ["a transit backwards", 0x0200, [[{ transit: true, csg: 1, nsg: 0 }, text()]]],
      ["NSG 2", 0x0200, [[{ transit: true, csg: 0, nsg: 2 }, text()]]],
      ["an InitiatorName that is no iSCSI name", 0x0200, [[first, pairs("InitiatorName=host 1", `TargetName=${names.open}`)]]],
      ["text after the last NUL", 0x0200, [[first, encode(`InitiatorName=${INITIATOR}\0TargetName=${names.open}`)]]],
      ["an overlong key", 0x0200, [[first, text(`${"K".repeat(64)}=1`)]]],
      ["an operational key during security", 0x0200, [[first, text("MaxBurstLength=512")]]],
      ["a security key during operational negotiation", 0x0200, [[{ transit: true, csg: 1, nsg: 3 }, text("AuthMethod=None")]]],
      ["a name sent twice", 0x0200, [[first, text(`InitiatorName=${INITIATOR}`)]]],
      ["a key sent again in a later request", 0x0200, [[first, text("AuthMethod=None")], [{ csg: 1 }, pairs("MaxBurstLength=512")],
        [{ csg: 1 }, pairs("MaxBurstLength=512")]]],
      ["an identity key in a later request", 0x0200, [[first, text()], [{ csg: 1 }, pairs("SessionType=Discovery")]]],
      ["a reserved word as an offer", 0x0200, [[{ transit: true, csg: 1, nsg: 3 }, text("ImmediateData=Irrelevant")]]],
      ["the ISID changing mid-login", 0x0200, [[first, text()], [{ csg: 1, isid: 0x023d00000002n }, pairs()]]],
      ["the CSG not the stage the target is in", 0x0200, [[{ ...first, transit: false }, text()], [{ csg: 1 }, pairs()]]],
      ["more text than a login takes: out of resources", 0x0302, Array.from({ length: 3 }, () => [{ cont: true, csg: 0 }, new Uint8Array(8000)] as [Request, Uint8Array])],
      ["too many Login Requests", 0x0200, Array.from({ length: 33 }, (_, i) => [i === 0 ? { csg: 0 } : { csg: 0 }, i === 0 ? text() : pairs()] as [Request, Uint8Array])],
      ["FirstBurstLength above MaxBurstLength across requests", 0x0200, [[{ csg: 1 }, text("FirstBurstLength=65536")],
        [{ transit: true, csg: 1, nsg: 3 }, pairs("MaxBurstLength=4096")]]],
    ];
    for (const [name, status, steps] of cases) {
      const c = new Connection(h).begin();
      let last: Response | undefined;
      for (const [r, data] of steps) {
        last = c.step(r, data);
        if (last.outcome === Outcome.Failed) break;
      }
      expect([last!.outcome, last!.status, last!.dataBytes], name).toEqual([Outcome.Failed, status, 0]);
      expect([last!.opcode, last!.transit, last!.isid >= 0n], name).toEqual([0x23, false, true]);
      expect(c.state(), name).toBe(State.Failed);
    }
  });

  it("lets the engine refuse after its own session checks (session does not exist, too many connections)", () => {
    const c = new Connection(h).begin();
    const s = security(names.open, [], { tsih: 0x0042 });
    const r = c.step(s.r, s.text);
    expect([r.outcome, r.tsih]).toEqual([Outcome.Continue, 0x0042]);
    expect(t.call("testIscsiLoginIdentifiedNow", 0)).toBe(1);
    expect(t.call("testIscsiLoginTsih", 0)).toBe(0x42);
    t.call("testIscsiLoginRefuse", 0, 0x020a, h.base + RSP);
    const refused = parseResponse(h.read(RSP, 48), new Uint8Array(0), Outcome.Failed);
    expect([refused.status, refused.dataBytes, refused.tsih, refused.itt]).toEqual([0x020a, 0, 0x42, 0x1000]);
    expect(c.state()).toBe(State.Failed);
  });

  it("answers leading-only keys Irrelevant on a connection joining a session", () => {
    const c = new Connection(h).begin();
    const r = c.step({ transit: true, csg: 1, nsg: 3, tsih: 9 }, pairs(`InitiatorName=${INITIATOR}`, `TargetName=${names.open}`,
      "MaxBurstLength=512", "HeaderDigest=None"));
    expect([r.outcome, r.get("MaxBurstLength"), r.get("HeaderDigest")]).toEqual([Outcome.Complete, "Irrelevant", "None"]);
  });

  it("logs in to a discovery session without a TargetName, honouring the discovery allow list and CHAP", () => {
    const c = new Connection(h).begin();
    const r = c.step({ transit: true, csg: 1, nsg: 3 }, pairs(`InitiatorName=${INITIATOR}`, "SessionType=Discovery",
      "MaxRecvDataSegmentLength=32768", "MaxBurstLength=512", "HeaderDigest=None"));
    expect(r.outcome).toBe(Outcome.Complete);
    expect(r.get("TargetPortalGroupTag")).toBeUndefined();
    expect(r.get("MaxBurstLength")).toBe("Irrelevant");
    expect(t.call("testIscsiLoginTarget", 0)).toBe(NONE);
    expect(c.param(Param.SessionType)).toBe(1);
    expect(c.param(Param.MaxSend)).toBe(32768);

    const other = encode("iqn.1998-01.com.example:host9");
    expect(t.call("testIscsiDiscoveryAllow", h.write(62000, other), other.length)).toBe(1);
    const d = new Connection(h).begin();
    expect(d.step({ transit: true, csg: 1, nsg: 3 }, pairs(`InitiatorName=${INITIATOR}`, "SessionType=Discovery")).status).toBe(0x0202);

    t.call("testIscsiTargetClear");
    const user = encode("disc");
    const secret = encode("discovery-secret");
    expect(t.call("testIscsiDiscoveryChap", h.write(62000, user), user.length, h.write(62100, secret), secret.length, 0, 0, 0, 0)).toBe(1);
    const e = new Connection(h).begin();
    const offer = e.step({ transit: true, csg: 0, nsg: 1 }, pairs(`InitiatorName=${INITIATOR}`, "SessionType=Discovery", "AuthMethod=CHAP,None"));
    expect(offer.get("AuthMethod")).toBe("CHAP");
    e.step({ csg: 0, nsg: 1 }, pairs("CHAP_A=5"));
    const response = md5(Uint8Array.of(e.identifier), secret, e.challenge);
    const done = e.step({ transit: true, csg: 0, nsg: 3 }, pairs("CHAP_N=disc", `CHAP_R=${toHex(response)}`));
    expect([done.outcome, done.status]).toEqual([Outcome.Complete, 0]);
  });

  it("answers any Login Request with a Login Response and never stops the processor (random key soups)", () => {
    const keyNames = ["InitiatorName", "TargetName", "SessionType", "AuthMethod", "CHAP_A", "CHAP_N", "CHAP_R", "CHAP_I", "CHAP_C",
      "HeaderDigest", "MaxBurstLength", "FirstBurstLength", "InitialR2T", "TargetAlias", "X-foo", "MaxRecvDataSegmentLength", "SendTargets"];
    const values = ["", "None", "CHAP,None", "5", "0x", "0x00", "Yes", "No", "Discovery", "Normal", INITIATOR, names.open, names.chap,
      "Reject", "Irrelevant", "0b====", "512", "16777216", "x".repeat(300), "0x" + "ab".repeat(1100)];
    const pair = fc.oneof(
      fc.tuple(fc.constantFrom(...keyNames), fc.constantFrom(...values)).map(([k, v]) => `${k}=${v}`),
      fc.string({ maxLength: 80 }),
    );
    const step = fc.record({
      flags: fc.nat({ max: 255 }),
      versions: fc.constantFrom(0, 0x0100, 0x0001),
      tsih: fc.constantFrom(0, 1),
      text: fc.array(pair, { maxLength: 12 }).map((items) => pairs(...items)),
      cut: fc.boolean(),
    });
    const heapAtStart = t.host.heapTop();
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 6 }), (steps) => {
        const c = new Connection(h).begin();
        for (const s of steps) {
          const text = s.cut && s.text.length > 1 ? s.text.subarray(0, s.text.length - 1) : s.text;
          const r: Request = {
            transit: (s.flags & 0x80) !== 0, cont: (s.flags & 0x40) !== 0, csg: (s.flags >> 2) & 3, nsg: s.flags & 3,
            versionMax: s.versions >> 8, versionMin: s.versions & 0xff, tsih: s.tsih,
          };
          const response = c.step(r, text.subarray(0, 8192));
          expect(response.opcode).toBe(0x23);
          expect(response.dataBytes).toBeLessThanOrEqual(8192);
          expect([0, 1, 2, 3]).toContain(response.status >> 8);
          if (response.outcome !== Outcome.Continue) break;
        }
      }),
      { numRuns: 300, seed: 7143 },
    );
    expect(t.stops).toEqual([]);
    expect(t.host.heapTop()).toBe(heapAtStart);
  });

  it("answers random bytes as a Login Request with a Login Response, through the engine's checks", () => {
    const heapAtStart = t.host.heapTop();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 48, maxLength: 48 }), fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bhs, data, login) => {
        if (login) bhs[0] = 0x43 | (bhs[0]! & 0x80); // half the time the opcode is Login, so loginStep sees the rest
        const view = new DataView(bhs.buffer);
        if (login) view.setUint32(4, data.length); // and its lengths agree
        new Connection(h).begin();
        const at = h.write(REQ, bhs);
        const dataAt = h.write(REQ_DATA, data);
        const got = t.call("testIscsiLoginFuzz", 0, at, dataAt, Math.min(data.length, view.getUint32(4) & 0xffffff), h.base + RSP,
          h.base + RSP_DATA, RSP_CAPACITY) as number;
        expect(got & 0xff).toBe(0x23);
        expect(t.stops).toEqual([]);
      }),
      { numRuns: 500, seed: 1994 },
    );
    expect(t.host.heapTop()).toBe(heapAtStart);
  });
});
