// The nvram target: what the NVRAM card hands the firmware at boot (persistent reservation records, valid, damaged
// or hostile; assembly/scsi/pr_record.ts) and the PERSISTENT RESERVE OUT/IN commands that write and read them, over a
// logged-in session on a board with an NVRAM card (host/devices/nvram.ts, its array in memory). Operations:
//   0-1 PERSISTENT RESERVE OUT: service action, type, keys from a small set, APTPL and the other flags; not waited for
//   2   PERSISTENT RESERVE IN: a service action, an allocation length
//   3   a record written into a copy of a volume's slot: fields from the input, the checksum right or not
//   4   raw bytes into the array (the first volumes' copies)
//   5   step the clock                                     6  wait for every command
//   7   power cycle (when the next byte is 0x5A, once): the boot reads the records; a new session logs in
// Oracles: the common ones (a panic or trap while the records are read or restored, a leak, a lost command).
import { FindingError, type FuzzBoard } from "../harness.ts";
import { FuzzInitiator, INITIATOR_NAME } from "../iscsi_client.ts";
import type { LoopbackBackend } from "../../../host/devices/tcp_backend.ts";
import { makeRecord, PR_RECORD_COPY_BYTES, PR_RECORD_HOLDER_NONE, type RecordEntry } from "../pr_record.ts";
import { bytes, type FuzzTarget, type InputReader, OPS_PER_INPUT_MAX } from "../target.ts";
import { ANSWER_WITHIN_NS, finishSession, prepareSession, SESSION_BOARD, type SessionState } from "./session.ts";

const KEYS = [0n, 1n, 0x1234n, 0xffff_ffff_ffff_ffffn];
// The session's own port (ISID 80 00 00 00 00 01, iscsi_client.ts), its initiator device, another port, no name.
const NAMES = [`${INITIATOR_NAME},i,0x800000000001`, INITIATOR_NAME, "iqn.x,i,0x00000000000a", ""];

interface NvramState extends SessionState {
  rebooted: boolean;
}

function be64(v: bigint): number[] { return Array.from({ length: 8 }, (_, k) => Number((v >> BigInt(56 - 8 * k)) & 0xffn)); }

function recordFrom(input: InputReader): Uint8Array {
  const flags = input.u8();
  const count = input.u8() % 6;
  const entries: RecordEntry[] = [];
  for (let e = 0; e < count; e++) {
    const pick = input.u8();
    entries.push({ key: KEYS[pick % KEYS.length]!, flags: input.u8() % 4, targetPort: input.u8() % 3, name: NAMES[(pick >> 2) % NAMES.length]! });
  }
  return makeRecord({
    sequence: BigInt(input.u16()), type: input.u8() % 10, holder: input.u8() % 8 === 7 ? PR_RECORD_HOLDER_NONE : input.u8() % 8, aptpl: input.u8() % 3,
    volume: (flags & 0x40) !== 0 ? "fuzz-other" : "host-disk0", entries, version: (flags & 0x20) !== 0 ? 2 : 1, fix: (flags & 0x80) === 0,
  });
}

function nvramBytes(fuzz: FuzzBoard): Uint8Array {
  const nvram = fuzz.board.nvrams[0];
  if (nvram === undefined) throw new Error("the nvram target's board has no NVRAM card");
  return nvram.bytes;
}

export const nvramTarget: FuzzTarget<NvramState> = {
  name: "nvram",
  summary: "persistent reservation records in the NVRAM at boot, and the commands that write them",
  board: { processors: [{ ...SESSION_BOARD.processors[0]!, nvram: true }] },
  prepare(fuzz) {
    return { ...prepareSession(fuzz), rebooted: false };
  },
  run(fuzz, state, input, log) {
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 8;
      const live = !state.initiator.client.closed;
      switch (op) {
        case 0: case 1: {
          const action = input.u8() % 9;
          const type = input.u8();
          const key = KEYS[input.u8() % KEYS.length]!;
          const saKey = KEYS[input.u8() % KEYS.length]!;
          const flags = input.u8() & 0x0f;
          const list = Uint8Array.from([...be64(key), ...be64(saKey), 0, 0, 0, 0, flags, 0, 0, 0]);
          if (action === 7) list[17] = flags & 0x03; // REGISTER AND MOVE: UNREG and APTPL in byte 17
          const cdb = new Uint8Array(16);
          cdb.set([0x5f, action, type, 0, 0, 0, 0, 0, 24, 0]);
          if (!live) break;
          log(`PERSISTENT RESERVE OUT action ${action} type 0x${type.toString(16)} key ${key} service action key ${saKey} flags 0x${flags.toString(16)}`);
          state.initiator.command(0, cdb, 24, list, false);
          break;
        }
        case 2: {
          const action = input.u8() % 5;
          const allocation = input.u16();
          if (!live) break;
          const cdb = new Uint8Array(16);
          cdb.set([0x5e, action, 0, 0, 0, 0, 0, allocation >> 8, allocation & 0xff, 0]);
          log(`PERSISTENT RESERVE IN action ${action} allocation ${allocation}`);
          state.initiator.command(0, cdb, allocation, new Uint8Array(0), allocation > 0);
          break;
        }
        case 3: {
          const slot = input.u8() % 4; // volume 0 or 1, copy 0 or 1
          const record = recordFrom(input);
          log(`record of ${record.length} bytes into volume ${slot >> 1} copy ${slot & 1}`);
          nvramBytes(fuzz).set(record, slot * PR_RECORD_COPY_BYTES);
          break;
        }
        case 4: {
          const at = input.u16() % (4 * PR_RECORD_COPY_BYTES);
          const raw = input.take(input.u8() % 64);
          log(`${raw.length} raw bytes into the NVRAM at ${at}`);
          nvramBytes(fuzz).set(raw.subarray(0, 4 * PR_RECORD_COPY_BYTES - at), at);
          break;
        }
        case 5:
          fuzz.board.runFor((input.u8() + 1) * 10_000);
          break;
        case 6:
          state.initiator.pumpUntil(() => state.initiator.outstanding() === 0, 100_000_000);
          break;
        default: {
          if (input.u8() !== 0x5a || state.rebooted) break; // costly (a whole boot): only when the input asks twice
          log("power cycle: the boot reads the records");
          state.initiator.pumpUntil(() => state.initiator.outstanding() === 0, ANSWER_WITHIN_NS);
          state.rebooted = true;
          fuzz.board.reset();
          fuzz.board.runFor(100_000_000);
          fuzz.check();
          state.initiator = new FuzzInitiator(fuzz.board, fuzz.board.network as LoopbackBackend);
          if (!state.initiator.login()) throw new FindingError({ kind: "boot", message: "no login after the power cycle" });
        }
      }
      fuzz.check();
    }
    finishSession(fuzz, state);
  },
  constants: (state) => [state.shadow.base],
  dictionary: [bytes(0x5a), bytes(0x57, 0x50, 0x52, 0x52), bytes(0x01, 0x00), bytes(0xff), bytes(0x01), bytes(0x05), bytes(0x07), bytes(0x08)],
  seeds: [
    bytes(0, 0, 0, 0, 1, 1, 0, 1, 3, 0, 0, 6, 2, 0, 0x10, 0), // REGISTER (APTPL), RESERVE, READ KEYS
    bytes(0, 0, 0, 0, 2, 1, 0, 1, 5, 2, 2, 0, 6, 7, 0x5a, 2, 3, 0x10, 0), // register, reserve, power cycle, READ FULL STATUS
    bytes(3, 0, 0, 2, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 7, 0x5a, 2, 0, 0x10, 0), // a record, then the boot reads it
    bytes(3, 1, 0x80, 1, 2, 3, 0, 0, 5, 3, 0, 1, 4, 0, 70, 8, 1, 2, 3, 4, 5, 6, 7, 8, 7, 0x5a),
  ],
};
