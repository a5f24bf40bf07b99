// A new session's final Login Response waits for the SCSI target's answer to ScsiNexusIdentify (tasks talk only in
// messages, so the nexus id comes back as a message). These tests prove the wait leaves nothing behind when the
// initiator does not wait with it, on a whole board with the project's initiator over the loopback network:
// - a connection that closes right after its final Login Request: its session slot and connection slot come back
//   (more times than there are sessions), and a fresh login with the same name works. (The NIC reports the close
//   after the SCSI target has answered, so this is the ordinary end of a session.)
// - a PDU sent right behind the final Login Request, in the same segment, arrives while the response waits (RFC 7143:
//   nothing follows a Login Request before its response): a protocol error during login, so the connection goes
//   while its session waits for the answer; the answer then ends the session. Every slot comes back, no heap moves.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { awaitPdu, Initiator, Op, opcodeOf, pdu, PduReader, textKeys, u32At } from "../support/iscsi_initiator.ts";

const CONNECTIONS = 64; // the NIC's slots (assembly/tts/iscsi/conn.ts CONNECTIONS_MAX)
const SESSIONS = 32; // assembly/tts/iscsi/session.ts SESSIONS_MAX
const NAME = "iqn.2026-11.org.wasm-iop:nexus-wait";

function loginRequest(flags: number, keys: Uint8Array, isid: number, cmdSn: number, expStatSn: number): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = 0x40 | Op.LoginRequest;
    bhs[1] = flags;
    bhs[8] = 0x80; // ISID type: random
    v.setUint32(10, isid);
    v.setUint32(16, 1); // ITT
    v.setUint32(24, cmdSn);
    v.setUint32(28, expStatSn);
  }, keys);
}

const nopOut = (cmdSn: number): Uint8Array => pdu((bhs, v) => {
  bhs[0] = 0x40 | Op.NopOut; // immediate
  bhs[1] = 0x80;
  v.setUint32(16, 2); // ITT: wants an answer
  v.setUint32(20, 0xffff_ffff);
  v.setUint32(24, cmdSn);
});

// Runs the security stage of a login on a fresh connection; returns the connection with the final (operational →
// full feature) Login Request ready to send.
function upToFinalLogin(env: IscsiEnv, isid: number): { send: () => Uint8Array; client: ReturnType<IscsiEnv["network"]["connect"]>; reader: PduReader } {
  const client = env.network.connect(0);
  expect(client.refused).toBe(false);
  const reader = new PduReader(client);
  client.write(loginRequest(0x81, textKeys([["InitiatorName", NAME], ["SessionType", "Normal"], ["TargetName", TEST_BOARD_TARGET], ["AuthMethod", "None"]]), isid, 1, 0));
  const security = awaitPdu(env.board, client, reader);
  expect(security && opcodeOf(security.bhs)).toBe(Op.LoginResponse);
  expect(security!.bhs[36]).toBe(0);
  const expStatSn = (u32At(security!.bhs, 24) + 1) >>> 0;
  const final = loginRequest(0x87, textKeys([["HeaderDigest", "None"], ["DataDigest", "None"], ["ErrorRecoveryLevel", "0"]]), isid, 1, expStatSn);
  return { send: () => final, client, reader };
}

function expectFreshLoginWorks(env: IscsiEnv, isid: number): void {
  const i = new Initiator(env.board, env.network, { initiatorName: NAME, targetName: TEST_BOARD_TARGET, isid });
  i.login();
  i.clearUnitAttention(0); // a new I_T nexus starts with POWER ON, RESET, OR BUS DEVICE RESET OCCURRED
  const data = new Uint8Array(4096).fill(isid & 0xff);
  i.write(0, 64, data);
  expect(Buffer.compare(i.read(0, 64, 8), data)).toBe(0);
  i.logout();
  env.board.runFor(1_000_000);
}

function expectAllConnectionSlotsFree(env: IscsiEnv): void {
  const clients = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const c = env.network.connect(0);
    expect(c.refused, `connection slot ${i} still taken`).toBe(false);
    clients.push(c);
  }
  env.board.runFor(1_000_000);
  for (const c of clients) c.end();
  env.board.runFor(1_000_000);
}

describe("a login waiting for its nexus id", () => {
  let env: IscsiEnv;
  beforeAll(() => {
    env = bootIscsiBoard();
  });

  it("gives its session and connection back when the connection closes right after the final Login Request", () => {
    for (let n = 0; n < SESSIONS + 8; n++) { // more than the session table holds: a leaked session would show
      const { send, client } = upToFinalLogin(env, 0x1000 + n);
      client.write(send());
      client.end();
      env.board.runFor(2_000_000);
    }
    expect(env.board.panics).toEqual([]);
    expectAllConnectionSlotsFree(env);
    expectFreshLoginWorks(env, 0x1000);
  });

  it("closes a connection that sends a PDU behind its final Login Request, and nothing else breaks", () => {
    for (let n = 0; n < SESSIONS + 8; n++) {
      const { send, client, reader } = upToFinalLogin(env, 0x2000 + n);
      const final = send();
      const both = new Uint8Array(final.length + 48);
      both.set(final);
      both.set(nopOut(1), final.length);
      client.write(both); // one segment: the NOP-Out arrives while the Login Response waits
      const answer = awaitPdu(env.board, client, reader, 50_000_000);
      expect(answer, "no PDU: the connection closes").toBeUndefined();
      expect(client.closed).toBe(true);
      client.end();
      env.board.runFor(1_000_000);
    }
    expect(env.board.panics).toEqual([]);
    expectAllConnectionSlotsFree(env);
    expectFreshLoginWorks(env, 0x2000);
    env.board.runFor(500_000_000);
    for (const p of env.board.processors) expect(p.heapTop(), `${p.name}: heap top`).toBe(p.heapTopAtBoot);
  });
});
