// Session reinstatement on a single board (RFC 7143, Session Reinstatement, Closing, and Timeout): a session is named by
// the initiator name, the ISID, the target name and the portal group tag, so a new login reinstates (ends) an old
// session only when all four match. The same initiator with the same ISID logged in to two targets, or also running a
// discovery session, keeps every session; a second login to the same target ends the first. (Across the NIC ports of
// a board of a cluster: test/sim/iscsi_cluster_ports.test.ts.)
import { describe, expect, it } from "vitest";
import { bootIscsiBoard } from "../support/iscsi_board.ts";
import { Initiator } from "../support/iscsi_initiator.ts";

const PREFIX = "iqn.2026-12.org.wasm-iop:reinstate-";
const TARGETS = [{ name: `${PREFIX}one`, luns: [0] }, { name: `${PREFIX}two`, luns: [1] }];
const NAME = "iqn.2026-12.org.example:host";

describe("session reinstatement", () => {
  it("the same initiator and ISID to two targets, and in discovery, is three sessions; to the same target again, one", () => {
    const env = bootIscsiBoard({ targets: TARGETS });
    const session = (target: string): Initiator => {
      const i = new Initiator(env.board, env.network, { targetName: `${PREFIX}${target}`, initiatorName: NAME, isid: 0x42 });
      i.login();
      i.clearUnitAttention(0);
      return i;
    };
    const one = session("one");
    const two = session("two");
    const discovery = new Initiator(env.board, env.network, { targetName: "", discovery: true, initiatorName: NAME, isid: 0x42 });
    discovery.login();
    expect(one.read(0, 0, 1).length).toBe(512);
    expect(two.read(0, 0, 1).length).toBe(512);
    const again = session("one");
    expect(() => one.read(0, 0, 1)).toThrow(); // reinstated: its connection was dropped
    expect(again.read(0, 0, 1).length).toBe(512);
    expect(two.read(0, 0, 1).length).toBe(512);
  });
});
