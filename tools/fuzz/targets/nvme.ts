// The nvme target: a hostile NVMe controller under the NVMe DDM (assembly/ddm/nvme/). A logged-in session keeps I/O
// flowing to a disk on the host's NVMe controller while the input makes the controller lie. Operations, one byte of
// op code each:
//   0 READ (not waited for: several in flight)   1 WRITE (waited for; the shadow model follows it)
//   2 a controller fault (host/devices/nvme.ts NvmeFault): unknown CID, duplicate completion, stale phase, lying SQ
//     head, CSTS.CFS, a lying CSTS read, never-complete, DMA fault, media error, interrupt storm
//   3 a forged completion in the I/O CQ: a CID no command holds, or a held command's CID with an error status; the
//     phase tag expected or the other; the controller's tail moved on or not (phase games)
//   4 a doorbell storm: the input's values written to the admin SQ tail and the two CQ head doorbells (stale admin
//     entries fetched again, a CQ head the driver never wrote: completions held or written over unread ones; bad
//     values are guest errors the controller ignores). Not the I/O SQ tail: stale WRITEs executed again would change
//     the disk behind the driver's back, which no driver can prevent or the shadow model follow.
//   5 an interrupt storm on the I/O CQ's vector, or the admin CQ's
//   6 the n-th next read of a controller register answers the input's value (CSTS, CAP, …: a controller that lies)
//   7 step the clock; 8 wait for every command
// Oracles, beyond the shared ones (no trap, panic or watchdog; no access outside a window; no leak once quiesced):
// every command answered, and every GOOD read equal to the shadow model of the disk.
import type { AccessSize, Bus } from "../../../host/bus/bus.ts";
import type { NvmeDevice, NvmeFault } from "../../../host/devices/nvme.ts";
import { bytes, type FuzzTarget, OPS_PER_INPUT_MAX } from "../target.ts";
import type { FuzzBoard } from "../harness.ts";
import { registerLieArm, registerReadAnswer, type RegisterLie } from "./register_lies.ts";
import { checkReads, finishSession, prepareSession, readOperation, type ReadsInFlight, type SessionState, writeOperation } from "./session.ts";

const REGISTERS_BYTES = 0x1000n; // BAR 0 below the doorbells
const DOORBELLS = [0, 1, 3] as const; // admin SQ tail, admin CQ head, I/O CQ head (doorbell 2, the I/O SQ tail, left out)

interface NvmeState extends SessionState, ReadsInFlight {
  overrides: RegisterLie[];
  lies: string[];
}

function device(fuzz: FuzzBoard): NvmeDevice {
  return fuzz.board.nvmeControllers[0]!;
}

// Reads of the controller's registers (BAR 0 below the doorbells) may lie; every other read is true.
function interpose(bus: Bus, fuzz: FuzzBoard, state: NvmeState): void {
  const read = bus.read.bind(bus);
  bus.read = (address: bigint, sizeBytes: AccessSize): number | bigint => {
    const value = read(address, sizeBytes);
    if (state.overrides.length === 0) return value;
    const base = device(fuzz).barAddress(0);
    if (base === 0n || address < base || address >= base + REGISTERS_BYTES) return value;
    return registerReadAnswer(state.overrides, state.lies, value, sizeBytes, (bits) => `register read${bits} +0x${(address - base).toString(16)}`);
  };
}

function fault(kind: number, arg: number): NvmeFault {
  switch (kind % 10) {
    case 0: return { kind: "unknown-cid" };
    case 1: return { kind: "duplicate-cqe" };
    case 2: return { kind: "stale-phase" };
    case 3: return { kind: "bad-sq-head" };
    case 4: return { kind: "fatal-next" };
    case 5: return { kind: "csts-lie" };
    case 6: return { kind: "never-complete-next" };
    case 7: return { kind: "dma-fault-next" };
    case 8: return { kind: "media-error-next" };
    default: return { kind: "interrupt-storm", count: (arg % 32) + 1 };
  }
}

export const NVME_BOARD = { processors: [{ ramMiB: 8, disksMiB: [1], nic: true, controller: "nvme" as const }] };

export const nvmeTarget: FuzzTarget<NvmeState> = {
  name: "nvme",
  summary: "a hostile NVMe controller: forged completions, wrong CIDs, phase games, doorbell and interrupt storms, a lying CSTS",
  board: NVME_BOARD,
  prepare(fuzz) {
    const state: NvmeState = { ...prepareSession(fuzz), overrides: [], reads: [], lies: [] };
    const host = fuzz.processors[0]!;
    interpose(host.bus, fuzz, state);
    return state;
  },
  run(fuzz, state, input, log) {
    state.shadow.reset();
    const { initiator } = state;
    const nvme = device(fuzz);
    const host = fuzz.processors[0]!;
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 9;
      const live = !initiator.client.closed;
      switch (op) {
        case 0:
          readOperation(fuzz, state, input, live, log);
          break;
        case 1:
          writeOperation(fuzz, state, input, live, log);
          break;
        case 2: {
          const f = fault(input.u8(), input.u8());
          log(`controller fault ${JSON.stringify(f)}`);
          nvme.inject(f);
          break;
        }
        case 3: {
          const how = input.u8();
          const forged = { cidMode: (how & 1) === 0 ? "unknown" as const : "pending-error" as const, cidSeed: input.u16(), status: input.u16(), sqHead: input.u16() % 80, stalePhase: (how & 2) !== 0, advance: (how & 4) !== 0 };
          const what = nvme.forgeCompletion(1, forged);
          log(`forged completion ${what ?? "(no I/O queue)"}`);
          // A forged error for a held command makes its real completion look unknown later: reads in flight may end
          // in error, never with wrong data, so they stay checked.
          break;
        }
        case 4: {
          const count = (input.u8() % 8) + 1;
          const base = nvme.barAddress(0);
          for (let i = 0; i < count; i++) {
            const doorbell = DOORBELLS[input.u8() % DOORBELLS.length]!;
            const value = input.u8();
            log(`doorbell ${doorbell} written ${value}`);
            if (base !== 0n) host.bus.write(base + 0x1000n + BigInt(doorbell * 4), 4, value);
          }
          break;
        }
        case 5: {
          const count = (input.u8() % 64) + 1;
          const queue = input.u8() & 1;
          log(`interrupt storm: ${count} on CQ ${queue}`);
          nvme.interruptStorm(queue, count);
          break;
        }
        case 6:
          registerLieArm(input, 16, state.overrides, log);
          break;
        case 7:
          fuzz.board.runFor((input.u8() + 1) * 5_000);
          break;
        default:
          initiator.pumpUntil(() => initiator.outstanding() === 0, 100_000_000);
          break;
      }
      for (const lie of state.lies.splice(0)) log(lie);
      fuzz.check();
    }
    state.overrides.length = 0;
    finishSession(fuzz, state);
    checkReads(state);
  },
  constants: (state) => [state.shadow.base],
  dictionary: [bytes(0xff, 0xff, 0xff, 0xff), bytes(0, 0, 0, 0), bytes(0, 0, 0, 2), bytes(0, 0, 0, 1), bytes(0x01, 0x00), bytes(0x1b, 0x36), bytes(0x41)],
  seeds: [
    bytes(0, 0, 10, 1, 1, 0, 20, 2, 7, 8),
    bytes(2, 0, 0, 0, 0, 1, 1, 0, 5, 1, 8),
    bytes(2, 6, 0, 0, 0, 30, 0, 8, 7, 255, 7, 255),
    bytes(0, 0, 40, 3, 3, 0, 1, 0, 0, 0, 9, 8),
    bytes(0, 0, 50, 2, 3, 1, 0, 7, 0, 0, 0, 0, 8),
    bytes(0, 0, 60, 2, 4, 2, 2, 40, 3, 5, 8),
    bytes(5, 40, 1, 0, 0, 8, 1, 8),
    bytes(6, 0, 3, 0, 0, 0, 3, 0, 0, 10, 1, 8),
    bytes(2, 2, 0, 0, 0, 100, 2, 8, 7, 200, 8),
  ],
};
