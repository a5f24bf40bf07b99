// The iscsi target: PDU streams across login and full-feature phase, on up to three connections from the booted
// board (no session yet). Operations, one byte of op code each:
//   0 open a connection                       1 security stage: identity keys, then keys picked from the dictionary
//   2 operational stage: keys picked, values from the table or the input    3 a login PDU from raw bytes
//   4 a full-feature PDU: opcode from the table, flags, header and data from the input (CmdSN kept or not)
//   5 a SCSI command with a CDB from the table    6 step the clock    7 switch connection, or hang one up
// Commands sent with CmdSNs out of the window may rightly never run, so this target has no lost-command oracle.
// The board is one of a cluster of 16 boards of 4 portals each (docs/cluster.md): SendTargets answers with 64
// addresses, in pieces split between pairs for a small MaxRecvDataSegmentLength, and every login runs the redirect
// decision (this board owns the most pages, so it keeps the login: the fuzzed sessions reach full feature phase).
import type { LoopbackBackend } from "../../../host/devices/tcp_backend.ts";
import { ascii, bytes, type FuzzTarget, OPS_PER_INPUT_MAX } from "../target.ts";
import { FuzzInitiator, INITIATOR_NAME, OPERATIONAL_KEYS, TARGET_NAME, textKeys } from "../iscsi_client.ts";
import { rawPdu } from "./pdus.ts";
import { SCSI_OPCODES } from "./scsi.ts";
import { DISK_BLOCKS, quiesce, SESSION_BOARD } from "./session.ts";
import type { FuzzBoard } from "../harness.ts";

export const KEY_NAMES = [
  "InitiatorName", "TargetName", "SessionType", "AuthMethod", "HeaderDigest", "DataDigest", "MaxConnections", "SendTargets",
  "TargetAlias", "InitiatorAlias", "TargetAddress", "TargetPortalGroupTag", "InitialR2T", "ImmediateData", "MaxRecvDataSegmentLength",
  "MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait", "DefaultTime2Retain", "MaxOutstandingR2T", "DataPDUInOrder",
  "DataSequenceInOrder", "ErrorRecoveryLevel", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R", "X-com.example.vendor", "OFMarker",
];
const VALUES = [
  "None", "CRC32C", "CRC32C,None", "Yes", "No", "Normal", "Discovery", "CHAP", "None,CHAP", "Reject", "NotUnderstood", "Irrelevant",
  "0", "1", "512", "65536", "16777215", "16777216", "4294967296", "-1", "0x10", "", TARGET_NAME, "All", "5", "0xDEADBEEF", "0b0101",
];
const FFP_OPCODES = [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x10, 0x1c, 0x03];

const CLUSTER_BOARDS = Array.from({ length: 16 }, (_, b) => ({
  id: b + 1, name: b === 0 ? "a" : `n${b}`,
  portals: Array.from({ length: 4 }, (_, p) => ({ host: b === 0 && p === 0 ? "127.0.0.1" : `10.${b}.${p}.1`, port: 3260 + p })),
}));
export const ISCSI_BOARD = {
  ...SESSION_BOARD,
  cluster: {
    version: 1, board: "a", redirect: true, boards: CLUSTER_BOARDS,
    // 32 pages: a owns pages 0-16 (17), the 15 others one each: a holds the most, no login leaves.
    volumes: [{ volume: "host-disk0", pageBlocks: DISK_BLOCKS / 32, pageCount: 32,
      owners: Array.from({ length: 32 }, (_, p) => (p <= 16 ? "a" : `n${p - 16}`)) }],
  },
};

interface IscsiState {
  connections: FuzzInitiator[];
}

function pickKeys(input: { u8(): number; take(n: number): Uint8Array }, count: number): [string, string][] {
  const keys: [string, string][] = [];
  for (let i = 0; i < count; i++) {
    const name = KEY_NAMES[input.u8() % KEY_NAMES.length]!;
    const choice = input.u8();
    const value = choice < 200 ? VALUES[choice % VALUES.length]! : new TextDecoder().decode(input.take(choice - 200)).replace(/\0/g, "");
    keys.push([name, value]);
  }
  return keys;
}

export const iscsiTarget: FuzzTarget<IscsiState> = {
  name: "iscsi",
  summary: "PDU streams across login and full-feature phase",
  board: ISCSI_BOARD,
  prepare(fuzz) {
    fuzz.board.runFor(100_000_000); // until the transport serves
    return { connections: [] };
  },
  run(fuzz: FuzzBoard, state, input, log) {
    const network = fuzz.board.network as LoopbackBackend;
    let current: FuzzInitiator | undefined;
    const open = () => {
      if (state.connections.length >= 3) return;
      current = new FuzzInitiator(fuzz.board, network, 1 + state.connections.length);
      state.connections.push(current);
    };
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 8;
      if (current === undefined && op !== 0 && op !== 6) open();
      const c = current;
      switch (op) {
        case 0: open(); log(`connection ${state.connections.length}`); break;
        case 1: {
          const keys = [["InitiatorName", INITIATOR_NAME], ["SessionType", "Normal"], ["TargetName", TARGET_NAME], ["AuthMethod", "None"]] as [string, string][];
          const extra = pickKeys(input, input.u8() % 4);
          log(`security stage +${JSON.stringify(extra)}`);
          c!.send(c!.loginRequest(textKeys([...keys, ...extra]), true, 0, 1));
          break;
        }
        case 2: {
          const extra = pickKeys(input, input.u8() % 6);
          log(`operational stage +${JSON.stringify(extra)}`);
          c!.send(c!.loginRequest(textKeys([...OPERATIONAL_KEYS, ...extra]), (input.u8() & 1) === 0, 1, 3));
          break;
        }
        case 3: {
          const flags = input.u8();
          const data = input.take(input.u8());
          log(`raw login flags 0x${flags.toString(16)} data ${data.length}`);
          c!.send(rawPdu(0x43, flags, c!.loginRequest(new Uint8Array(0), false).subarray(8, 48), data, c!.cmdSn, c!.expStatSn, true));
          break;
        }
        case 4: {
          const opcode = FFP_OPCODES[input.u8() % FFP_OPCODES.length]! | (input.u8() & 0x40);
          const flags = input.u8();
          const keep = (flags & 1) === 0;
          const rest = input.take(40);
          const data = input.take(input.u8() * 2);
          log(`PDU opcode 0x${opcode.toString(16)} flags 0x${flags.toString(16)} data ${data.length}`);
          c!.send(rawPdu(opcode, flags, rest, data, c!.cmdSn, c!.expStatSn, keep));
          if (keep && (opcode & 0x40) === 0 && opcode !== 0x05) c!.cmdSn = (c!.cmdSn + 1) >>> 0;
          break;
        }
        case 5: {
          const cdb = new Uint8Array(16);
          cdb[0] = SCSI_OPCODES[input.u8() % SCSI_OPCODES.length]!;
          cdb.set(input.take(9), 1);
          log(`command CDB ${Buffer.from(cdb).toString("hex")}`);
          c!.command(0, cdb, input.u16(), new Uint8Array(0), true);
          break;
        }
        case 6: fuzz.board.runFor((input.u8() + 1) * 10_000); break;
        default: {
          const which = input.u8();
          if (which < 128) current = state.connections[which % state.connections.length];
          else {
            log("hang up");
            c!.client.end();
          }
        }
      }
      for (const each of state.connections) each.pumpUntil(() => true, 0);
      fuzz.board.runFor(20_000);
      fuzz.check();
    }
    for (const each of state.connections) each.pumpUntil(() => each.outstanding() === 0, 200_000_000);
    for (const each of state.connections) if (!each.client.closed) each.client.end();
    quiesce(fuzz, undefined);
  },
  dictionary: [
    ...KEY_NAMES.map((k) => ascii(`${k}=`)), ascii("=None\0"), ascii("\0"), ascii("CRC32C"), ascii("Discovery"), ascii(TARGET_NAME),
    bytes(0x43), bytes(0x87), bytes(0x81), bytes(0x83), bytes(0x01), bytes(0x05), bytes(0x06), bytes(0x00, 0x01, 0x00, 0x00), bytes(0xff, 0xff, 0xff, 0xff),
  ],
  seeds: [
    bytes(0, 1, 0, 2, 0, 0),
    bytes(0, 1, 0, 2, 0, 0, 5, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 36),
    bytes(0, 1, 0, 2, 0, 0, 4, 0, 0, 0),
    bytes(0, 1, 1, 7, 250, 1, 2, 2, 14, 16, 22, 3),
    bytes(0, 3, 0x87, 0, 0, 1, 0, 2, 0, 0, 4, 6, 0, 0),
  ],
};
