// The NIC ports of a board of a cluster as a multipath initiator sees them (docs/cluster.md, "Names on the wire" and
// "Several NIC ports"): each of the board's portals is a portal group of its own, so one disk's connections through
// two NIC ports are two paths through two SCSI target ports. Through each, the login's TargetPortalGroupTag, VPD 83h's
// relative target port and REPORT TARGET PORT GROUPS name the port the command came in on; the same ISID through the
// other NIC port is another session (not a reinstatement), and a connection joins its session only through its own
// NIC port. Board a (this one, id 1) has two portals, b (id 2) one, c (id 3) two; sp1-disk0 (LUN 1) is partitioned.
import { describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { Initiator, parseKeys, textKeys } from "../support/iscsi_initiator.ts";

const PREFIX = "iqn.2026-12.org.wasm-iop:mpath-";
const CLUSTER = {
  version: 1, board: "a",
  boards: [
    { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 3260 }, { host: "127.0.0.2", port: 3260 }] },
    { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: 3261 }] },
    { id: 3, name: "c", portals: [{ host: "127.0.0.1", port: 3262 }, { host: "127.0.0.2", port: 3262 }] },
  ],
  volumes: [{ volume: "sp1-disk0", pageBlocks: 4096, pageCount: 8, owners: { roundRobinFrom: "a" } }],
};
const RTPG = [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0];
const VPD_83 = [0x12, 1, 0x83, 1, 0, 0];

function path(env: IscsiEnv, portal: number, name = "host", isid = 0x77): Initiator {
  const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}${name}`, isid, portal });
  i.login();
  i.clearUnitAttention(1);
  return i;
}
/** The relative target port and target port group designators (the last 16 bytes of VPD 83h) as [port, group]. */
function portDesignators(i: Initiator): [number, number] {
  const d = i.dataIn(1, VPD_83, 256).data.subarray(-16);
  expect([d[0], d[1], d[8], d[9]]).toEqual([0x51, 0x94, 0x51, 0x95]);
  return [(d[6]! << 8) | d[7]!, (d[14]! << 8) | d[15]!];
}

describe("the NIC ports of a board of a cluster", () => {
  it("the login through NIC port n answers TargetPortalGroupTag id + n × 4096", () => {
    const env = bootIscsiBoard({ cluster: CLUSTER });
    for (const [portal, tag] of [[0, "1"], [1, "4097"]] as const) {
      const name = `${PREFIX}tag${portal}`;
      const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: name, portal });
      i.send(i.loginRequest(0x80 | 1, textKeys([["InitiatorName", name], ["SessionType", "Normal"], ["TargetName", TEST_BOARD_TARGET], ["AuthMethod", "None"]]), 5));
      const p = i.receive();
      expect(p.bhs[36]).toBe(0);
      expect(parseKeys(p.data).get("TargetPortalGroupTag")).toBe(tag);
    }
  });

  it("one initiator, one ISID, two NIC ports: two sessions, each naming its own relative target port in one group", () => {
    const env = bootIscsiBoard({ cluster: CLUSTER });
    const first = path(env, 0);
    const second = path(env, 1); // the same initiator name and ISID: another portal group, so not a reinstatement
    const data = new Uint8Array(8 * 512).fill(0x5a);
    first.write(1, 0, data); // page 0: a's own
    expect(second.read(1, 0, 8)).toEqual(data);
    expect(first.read(1, 0, 8)).toEqual(data); // the first session lives on
    expect(portDesignators(first)).toEqual([0x11, 1]);
    expect(portDesignators(second)).toEqual([0x12, 1]);
    // REPORT TARGET PORT GROUPS through either port: every board's group with one port per NIC port.
    const group = (id: number, ports: number) => [0x04, 0x13, 0, id, 0, 0, 0, ports,
      ...Array.from({ length: ports }, (_, n) => [0, 0, (id << 4) >> 8, (id << 4 | (n + 1)) & 0xff]).flat()];
    const expected = [0, 0, 0, 16 + 12 + 16, ...group(1, 2), ...group(2, 1), ...group(3, 2)];
    expect([...first.dataIn(1, RTPG, 1024).data]).toEqual(expected);
    expect([...second.dataIn(1, RTPG, 1024).data]).toEqual(expected);
    first.logout();
    second.logout();
  });

  it("a reinstatement stays within its NIC port: the same ISID again through port 0 ends port 0's session only", () => {
    const env = bootIscsiBoard({ cluster: CLUSTER });
    const old0 = path(env, 0);
    const kept1 = path(env, 1);
    const new0 = path(env, 0);
    expect(() => old0.read(1, 0, 1)).toThrow();
    expect(kept1.read(1, 0, 1).length).toBe(512);
    expect(new0.read(1, 0, 1).length).toBe(512);
  });

  it("a connection joins its session only through the session's NIC port (elsewhere: session does not exist, 020Ah)", () => {
    const env = bootIscsiBoard({ cluster: CLUSTER });
    const leading = path(env, 0);
    const name = `${PREFIX}host`;
    const joining = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: name, isid: 0x77, portal: 1, tsih: leading.tsih, cid: 1 });
    joining.send(joining.loginRequest(0x80 | 1, textKeys([["InitiatorName", name], ["SessionType", "Normal"], ["TargetName", TEST_BOARD_TARGET], ["AuthMethod", "None"]]), 9));
    const p = joining.receive();
    expect((p.bhs[36]! << 8) | p.bhs[37]!).toBe(0x020a);
    expect(leading.read(1, 0, 1).length).toBe(512);
  });

  it("a persistent reservation's registrations name the port each came through (READ FULL STATUS: 0x11 and 0x12)", () => {
    const env = bootIscsiBoard({ cluster: CLUSTER });
    const be64 = (v: number) => Array.from({ length: 8 }, (_, k) => (k < 4 ? 0 : (v >>> (8 * (7 - k))) & 0xff));
    const register = (i: Initiator, key: number): number => {
      const list = Uint8Array.from([...be64(0), ...be64(key), ...new Array(8).fill(0)]);
      const cdb = new Uint8Array(10);
      cdb.set([0x5f, 0x00, 0, 0, 0, 0, 0, 0, list.length, 0]);
      const itt = i.nextItt();
      const p = i.exchange(i.command(0x80 | 0x20 | 1, 1, list.length, cdb, itt, list), itt);
      i.status(p);
      return p.bhs[3]!;
    };
    const paths = [0, 1].map((portal) => {
      const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `${PREFIX}pr`, isid: 0x90, portal });
      i.login([["ImmediateData", "Yes"]]);
      i.clearUnitAttention(1);
      return i;
    });
    expect(register(paths[0]!, 0x10)).toBe(0);
    expect(register(paths[1]!, 0x20)).toBe(0);
    const status = paths[0]!.dataIn(1, [0x5e, 0x03, 0, 0, 0, 0, 0, 0x10, 0x00, 0], 4096);
    expect(status.status).toBe(0);
    // Descriptors from byte 8: |0-7 key|…|18-19 RELATIVE TARGET PORT IDENTIFIER|20-23 ADDITIONAL LENGTH|24… TransportID|.
    const ports = new Map<number, number>();
    for (let at = 8; at + 24 <= status.data.length;) {
      const d = status.data.subarray(at);
      ports.set(d[7]!, (d[18]! << 8) | d[19]!);
      at += 24 + ((d[20]! << 24) | (d[21]! << 16) | (d[22]! << 8) | d[23]!);
    }
    expect([...ports]).toEqual([[0x10, 0x11], [0x20, 0x12]]);
  });
});
