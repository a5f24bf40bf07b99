// The scsi target: CDBs and parameter lists reaching the SCSI layer, through a logged-in iSCSI session (the SCSI
// layer never knows its transport, and the release image has no other way in). Operations, one byte of op code each:
//   0-2 command: opcode (from the table, or raw), CDB bytes, LUN, expected length, parameter list; not waited for
//   3   READ(10)/(16) checked against the shadow model     4  WRITE(10)/(16), the model takes it if GOOD
//   5   task management: ABORT TASK of the last command, ABORT TASK SET, CLEAR TASK SET, LUN RESET, ...
//   6   wait for every command                             7  step the clock
// The board is one of a cluster (docs/cluster.md): its disk a partitioned volume of 16 pages over three boards, so the
// cluster's commands are live (REPORT TARGET PORT GROUPS, REPORT REFERRALS, VPD 83h's port designators, 86h, B3h).
import { lunFieldOf, tmfRequest } from "./pdus.ts";
import { ascii, bytes, type FuzzTarget, OPS_PER_INPUT_MAX } from "../target.ts";
import { DISK_BLOCKS, finishSession, prepareSession, readChecked, SESSION_BOARD, type SessionState, writeChecked } from "./session.ts";

// SBC/SPC/SBC-4 operation codes the target implements or must refuse precisely.
export const SCSI_OPCODES = [
  0x00, 0x03, 0x04, 0x08, 0x0a, 0x12, 0x15, 0x16, 0x17, 0x1a, 0x1b, 0x1d, 0x1e, 0x25, 0x28, 0x2a, 0x2b, 0x2e, 0x2f, 0x34,
  0x35, 0x37, 0x3b, 0x3c, 0x41, 0x42, 0x48, 0x4c, 0x4d, 0x55, 0x56, 0x57, 0x5a, 0x5e, 0x5f, 0x7f, 0x83, 0x84, 0x86, 0x88,
  0x89, 0x8a, 0x8b, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x9c, 0x9e, 0x9f, 0xa0, 0xa3, 0xa4, 0xa8, 0xaa, 0xae, 0xaf, 0xb7,
];
// Commands that may change the medium in ways the shadow model does not follow.
const MODIFYING = new Set([0x04, 0x0a, 0x2e, 0x35, 0x41, 0x42, 0x89, 0x8b, 0x8e, 0x91, 0x93, 0x9c, 0xaa, 0xae, 0x7f, 0x9e, 0x8a, 0x2a, 0x3b, 0x48]);

export const SCSI_BOARD = {
  ...SESSION_BOARD,
  cluster: {
    version: 1, board: "a",
    boards: [
      { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 3260 }] },
      { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: 3261 }] },
      { id: 4095, name: "c", portals: [{ host: "127.0.0.1", port: 3262 }, { host: "[::1]", port: 3262 }] },
    ],
    volumes: [{ volume: "host-disk0", pageBlocks: DISK_BLOCKS / 16, pageCount: 16, owners: { roundRobinFrom: "b" } }],
  },
};

export const scsiTarget: FuzzTarget<SessionState> = {
  name: "scsi",
  summary: "CDBs and parameter lists reaching the SCSI layer (over a logged-in session, on a board of a cluster)",
  board: SCSI_BOARD,
  prepare: prepareSession,
  run(fuzz, state, input, log) {
    state.shadow.reset();
    const { initiator } = state;
    let lastItt = 0;
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done && !initiator.client.closed; ops++) {
      const op = input.u8() % 8;
      switch (op) {
        case 0: case 1: case 2: {
          const first = input.u8();
          const opcode = first < 0xc0 ? SCSI_OPCODES[first % SCSI_OPCODES.length]! : input.u8();
          const cdb = new Uint8Array(16);
          cdb[0] = opcode;
          const cdbBytes = input.u8() % 16;
          cdb.set(input.take(cdbBytes), 1);
          const flags = input.u8();
          const lun = (flags & 0x80) !== 0 ? flags & 3 : 0;
          const expected = input.u16();
          const dataOut = (flags & 0x40) !== 0 ? input.take(input.u8() * 4) : new Uint8Array(0);
          if (MODIFYING.has(opcode)) state.shadow.valid = false;
          const task = initiator.command(lun, cdb, Math.max(expected, dataOut.length), dataOut, dataOut.length === 0 && expected > 0);
          lastItt = task.itt;
          log(`command ITT ${task.itt} LUN ${lun} CDB ${Buffer.from(cdb).toString("hex")} expected ${expected} data-out ${dataOut.length}`);
          break;
        }
        case 3: {
          const lba = input.u16() % (DISK_BLOCKS + 8);
          const blocks = (input.u8() % 16) + 1;
          log(`read LBA ${lba} blocks ${blocks}`);
          readChecked(fuzz, state, lba, blocks, (lba & 1) === 1, true);
          break;
        }
        case 4: {
          const lba = input.u16() % (DISK_BLOCKS + 8);
          const blocks = (input.u8() % 16) + 1;
          log(`write LBA ${lba} blocks ${blocks}`);
          writeChecked(fuzz, state, lba, blocks, input.u8(), (lba & 1) === 1);
          break;
        }
        case 5: {
          const fn = (input.u8() % 8) + 1;
          log(`task management function ${fn}, referenced ITT ${lastItt}`);
          if (fn >= 4) state.shadow.valid = state.shadow.valid && fn !== 6; // TARGET WARM RESET: nothing to track
          const itt = 0x7000_0000 + initiator.itt++;
          initiator.tmfSent(itt, fn, lastItt);
          initiator.send(tmfRequest(fn, lunFieldOf(0), itt, lastItt, initiator.cmdSn, initiator.expStatSn));
          break;
        }
        case 6:
          initiator.pumpUntil(() => initiator.outstanding() === 0, 100_000_000);
          break;
        default:
          fuzz.board.runFor((input.u8() + 1) * 10_000);
      }
      fuzz.check();
    }
    finishSession(fuzz, state);
  },
  constants: (state) => [state.shadow.base],
  dictionary: [
    ...SCSI_OPCODES.map((op) => bytes(0, 0xc0, op)),
    bytes(0x00, 0x00, 0x08, 0x00), bytes(0xff, 0xff, 0xff, 0xff), bytes(0x00, 0x00, 0x00, 0x00), bytes(0x80), bytes(0x40),
    bytes(0x3f, 0x00), bytes(0x83), bytes(0xb0), bytes(0xb1), bytes(0xb2), bytes(0x10), bytes(0x12), ascii("WASM"),
    bytes(0x0a), bytes(0x2a), bytes(0x13), bytes(0x86), bytes(0xb3), bytes(0x01), // RTPG (plain, extended), REPORT REFERRALS, ONE_SEG
  ],
  seeds: [
    bytes(0, 4, 5, 0, 0, 0, 0, 0, 0x24), // INQUIRY, allocation 36 (opcode table index 5: 0x12)
    bytes(4, 0, 10, 2, 0x41, 3, 0, 10),
    bytes(1, 0x16, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0x20), // READ CAPACITY(16)-ish
    bytes(2, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x00, 0x08, 2), // MODE SENSE(10) with a parameter list
    bytes(4, 0, 100, 4, 7, 6, 5, 2, 0, 3, 5, 7),
    // The cluster's commands: REPORT TARGET PORT GROUPS (extended header), REPORT REFERRALS from LBA 256 (ONE_SEG),
    // INQUIRY of the Referrals and Extended INQUIRY VPD pages.
    bytes(0, SCSI_OPCODES.indexOf(0xa3), 11, 0x2a, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x04, 0x00),
    bytes(0, SCSI_OPCODES.indexOf(0x9e), 15, 0x13, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0, 0, 0x10, 0x00, 0x01, 0, 0, 0x10, 0x00),
    bytes(0, SCSI_OPCODES.indexOf(0x12), 4, 0x01, 0xb3, 0x00, 0xff, 0, 0x00, 0xff, 0, SCSI_OPCODES.indexOf(0x12), 4, 0x01, 0x86, 0x00, 0xff, 0, 0x00, 0xff),
  ],
};
