// A board with a cluster section (docs/cluster.md) as an initiator sees it, on the board clock over the NIC's loopback:
// the firmware loads the routing table from the configuration ROM at boot.
import { describe, expect, it } from "vitest";
import { bootIscsiBoard, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { Initiator, parseKeys, textKeys } from "../support/iscsi_initiator.ts";

const PREFIX = "iqn.2026-11.org.wasm-iop:";
let isid = 0x500;
function discovery(env: ReturnType<typeof bootIscsiBoard>, maxRecv = 65536): Initiator {
  isid += 1;
  const i = new Initiator(env.board, env.network, { targetName: "", discovery: true, isid, initiatorName: `${PREFIX}cluster-${isid}` });
  i.login([["MaxRecvDataSegmentLength", String(maxRecv)]]);
  return i;
}
/** The SendTargets=All answer as [key, value] pairs, in order. */
function sendTargets(i: Initiator): string[][] {
  const { data } = i.text(textKeys([["SendTargets", "All"]]));
  return new TextDecoder().decode(data).split("\0").filter((l) => l !== "").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}
// Each NIC port its own portal group: board id + NIC port × 4096 (c's second portal: 3 + 4096).
const ALL_PORTALS = ["127.0.0.1:3260,1", "127.0.0.1:3261,2", "127.0.0.1:3262,3", "10.0.0.3:3260,4099"];

// The test board is "a" (id 1); "b" (id 2) and "c" (id 3) are other boards. sp1-disk0 (16 MiB, 32768 blocks) is
// partitioned in 8 pages of 4096 blocks.
const boards = [
  { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 3260 }] },
  { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: 3261 }] },
  { id: 3, name: "c", portals: [{ host: "127.0.0.1", port: 3262 }, { host: "10.0.0.3", port: 3260 }] },
];
function cluster(owners: unknown, extra: Record<string, unknown> = {}): unknown {
  return { version: 5, board: "a", boards, volumes: [{ volume: "sp1-disk0", pageBlocks: 4096, pageCount: 8, owners }], ...extra };
}

describe("iSCSI on a board of a cluster", () => {
  it("loads the routing table at boot and says so", () => {
    const env = bootIscsiBoard({ cluster: cluster({ roundRobinFrom: "b" }) });
    expect(env.console.filter((l) => l.includes("cluster:"))).toEqual(["host 1: cluster: routing table version 5, 3 boards, 1 partitioned volumes"]);
  });

  it("a single board has no routing table and says nothing of one", () => {
    const env = bootIscsiBoard();
    expect(env.console.filter((l) => l.includes("cluster:"))).toEqual([]);
  });

  it("SendTargets lists every board's portals for each target, the portal group tag its board id + its NIC port × 4096", () => {
    const env = bootIscsiBoard({ cluster: cluster({ roundRobinFrom: "b" }) });
    const pairs = sendTargets(discovery(env));
    expect(pairs).toEqual([["TargetName", TEST_BOARD_TARGET], ...ALL_PORTALS.map((a) => ["TargetAddress", a])]);
  });

  it("a single board lists its one portal, as before (the test board's ROM names none: an empty address)", () => {
    const env = bootIscsiBoard();
    const pairs = sendTargets(discovery(env));
    expect(pairs).toEqual([["TargetName", TEST_BOARD_TARGET], ["TargetAddress", ""]]);
  });

  it("the login's TargetPortalGroupTag is this board's id (b: 2)", () => {
    const env = bootIscsiBoard({ cluster: { ...(cluster({ roundRobinFrom: "b" }) as object), board: "b" } });
    const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}tpgt` });
    const itt = 77;
    i.send(i.loginRequest(0x80 | 1, textKeys([["InitiatorName", `${PREFIX}tpgt`], ["SessionType", "Normal"], ["TargetName", TEST_BOARD_TARGET], ["AuthMethod", "None"]]), itt));
    const p = i.receive();
    expect(p.bhs[36]).toBe(0);
    expect(parseKeys(p.data).get("TargetPortalGroupTag")).toBe("2");
  });

  it("a long entry (16 boards × 4 portals) goes out in pieces split between addresses, identical once joined", () => {
    const many = Array.from({ length: 16 }, (_, b) => ({ id: 100 + b, name: `n${b}`,
      portals: Array.from({ length: 4 }, (_, p) => ({ host: `192.168.${b}.${p + 10}`, port: 3260 + p })) }));
    many[0] = { ...many[0]!, name: "a" };
    const env = bootIscsiBoard({ cluster: { version: 1, board: "a", boards: many,
      volumes: [{ volume: "sp1-disk0", pageBlocks: 4096, pageCount: 8, owners: { roundRobinFrom: "a" } }] } });
    const whole = sendTargets(discovery(env));
    expect(whole.length).toBe(1 + 64);
    const small = discovery(env, 512);
    const { data, responses } = small.text(textKeys([["SendTargets", "All"]]));
    expect(responses.length).toBeGreaterThanOrEqual(4);
    for (const p of responses) expect(p.data.length).toBeLessThanOrEqual(512);
    const joined = new TextDecoder().decode(data).split("\0").filter((l) => l !== "").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
    expect(joined).toEqual(whole);
    expect(joined[64]).toEqual(["TargetAddress", "192.168.15.13:3263,12403"]); // board 115's fourth portal: 115 + 3 × 4096
  });

  // The redirect policy: `redirect: true`, and another board holds strictly more of the target's partitioned pages.
  // The test target presents host-disk0 (not partitioned) and sp1-disk0 (8 pages).
  function firstLogin(env: ReturnType<typeof bootIscsiBoard>, name: string): { status: number; keys: Map<string, string>; tbit: number } {
    const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}${name}` });
    i.send(i.loginRequest(0x80 | 1, textKeys([["InitiatorName", `${PREFIX}${name}`], ["SessionType", "Normal"], ["TargetName", TEST_BOARD_TARGET], ["AuthMethod", "None"]]), 9));
    const p = i.receive();
    return { status: (p.bhs[36]! << 8) | p.bhs[37]!, keys: parseKeys(p.data), tbit: p.bhs[1]! & 0x80 };
  }
  const OWNERS_C_MOST = ["a", "c", "c", "c", "b", "c", "a", "c"]; // a 2, b 1, c 5

  it("redirects a new session's login to the board holding the most pages: 0101h, TargetAddress of c's first portal, T=0", () => {
    const env = bootIscsiBoard({ cluster: cluster(OWNERS_C_MOST, { redirect: true }) });
    const got = firstLogin(env, "redirected");
    expect(got.status).toBe(0x0101);
    expect(got.tbit).toBe(0);
    expect([...got.keys]).toEqual([["TargetAddress", "127.0.0.1:3262,3"]]);
    expect(env.console.some((l) => l.includes("iscsi: login redirected"))).toBe(true);
  });

  it("does not redirect: redirect off, this board the most, or a tie with this board", () => {
    for (const [owners, extra] of [
      [OWNERS_C_MOST, {}], // the knob off (redirect absent: false)
      [["a", "a", "a", "c", "c", "b", "a", "c"], { redirect: true }], // a 4, c 3
      [["a", "a", "c", "c", "b", "b", "a", "c"], { redirect: true }], // a 3, c 3: a tie stays
    ] as const) {
      const env = bootIscsiBoard({ cluster: cluster(owners, extra) });
      expect(firstLogin(env, "stays").status).toBe(0);
    }
  });

  it("a connection joining a session (TSIH ≠ 0) is never redirected: its session would be here (none is: 020Ah)", () => {
    const env = bootIscsiBoard({ cluster: cluster(OWNERS_C_MOST, { redirect: true }) });
    const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}joining`, tsih: 5, cid: 1 });
    i.send(i.loginRequest(0x80 | 1, textKeys([["InitiatorName", `${PREFIX}joining`], ["SessionType", "Normal"], ["TargetName", TEST_BOARD_TARGET], ["AuthMethod", "None"]]), 9));
    const p = i.receive();
    expect((p.bhs[36]! << 8) | p.bhs[37]!).toBe(0x020a);
    expect(env.console.some((l) => l.includes("iscsi: login redirected"))).toBe(false);
  });

  it("the board named keeps the login (c, with the same table, does not send it on)", () => {
    const env = bootIscsiBoard({ cluster: { ...(cluster(OWNERS_C_MOST, { redirect: true }) as object), board: "c" } });
    expect(firstLogin(env, "kept").status).toBe(0);
  });

  it("never redirects a discovery session or a target without partitioned volumes, which SendTargets lists on this board only", () => {
    const env = bootIscsiBoard({ cluster: cluster(OWNERS_C_MOST, { redirect: true }), targets: [
      { name: TEST_BOARD_TARGET, luns: [0, 1] }, { name: `${PREFIX}plain`, luns: [0] }] });
    // SendTargets: the target of a partitioned volume on every board's portals, the other on this board's only.
    expect(sendTargets(discovery(env))).toEqual([["TargetName", TEST_BOARD_TARGET], ...ALL_PORTALS.map((a) => ["TargetAddress", a]),
      ["TargetName", `${PREFIX}plain`], ["TargetAddress", "127.0.0.1:3260,1"]]);
    const i = new Initiator(env.board, env.network, { targetName: `${PREFIX}plain`, initiatorName: `${PREFIX}plain-user` });
    i.login();
    i.logout();
  });

  it("through an iSCSI session: REPORT TARGET PORT GROUPS names each board's ports of this target, (id << 4) | 1 and up, one per NIC port; VPD 83h this board's", () => {
    const env = bootIscsiBoard({ cluster: { ...(cluster(OWNERS_C_MOST) as object), board: "b" } });
    const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}alua` });
    i.login();
    i.clearUnitAttention(1);
    const rtpg = i.dataIn(1, [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0], 1024);
    expect(rtpg.status).toBe(0);
    const group = (id: number, ports = 1) => [0x04, 0x13, 0, id, 0, 0, 0, ports,
      ...Array.from({ length: ports }, (_, n) => [0, 0, (id << 4) >> 8, (id << 4 | (n + 1)) & 0xff]).flat()];
    expect([...rtpg.data]).toEqual([0, 0, 0, 40, ...group(1), ...group(2), ...group(3, 2)]); // c has two portals
    const id = i.dataIn(1, [0x12, 1, 0x83, 1, 0, 0], 256);
    expect([...id.data.subarray(id.data.length - 16)]).toEqual([0x51, 0x94, 0, 4, 0, 0, 0, 0x21, 0x51, 0x95, 0, 4, 0, 0, 0, 2]);
    // LUN 0 (host-disk0) is an ordinary volume: this board's group alone.
    i.clearUnitAttention(0);
    expect([...i.dataIn(0, [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0], 1024).data]).toEqual([0, 0, 0, 12, 0x00, 0x03, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0x21]);
    i.logout();
  });

  it("a page whose owner this board cannot reach (no fabric link) is NOT READY, LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE", () => {
    // Board a alone (no cluster port): pages 0, 3, 6 are b's (round robin from b), 1, 4, 7 c's, 2, 5 a's own.
    const env = bootIscsiBoard({ cluster: cluster({ roundRobinFrom: "b" }) });
    const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}unreachable` });
    i.login();
    i.clearUnitAttention(1);
    const data = new Uint8Array(8 * 512).fill(0x3c);
    i.write(1, 2 * 4096, data); // page 2: a's own, served
    expect(i.read(1, 2 * 4096, 8)).toEqual(data);
    expect(() => i.read(1, 0, 8)).toThrow(/status 0x2 sense 02\/04\/0c/); // page 0: b's
    expect(() => i.write(1, 4096, data)).toThrow(/status 0x2 sense 02\/04\/0c/); // page 1: c's
    // SYNCHRONIZE CACHE(10) flushes every board holding pages: b and c cannot be reached.
    const sync = i.dataIn(1, [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0);
    expect(sync.status).toBe(2);
    i.logout();
  });
});
