// The bus target: what the devices hand the firmware. A logged-in session keeps I/O flowing while the input makes the
// virtio-scsi controller and the bus misbehave. Operations, one byte of op code each:
//   0 READ (not waited for: several in flight)   1 WRITE (waited for; the shadow model follows it)
//   2 a controller fault: used-index jump, unknown id, DMA fault (completion status), interrupt storm,
//     never-complete, duplicate used element (host/devices/virtio_scsi.ts)
//   3 the n-th next register read (config space, BARs, MSI-X, virtio registers: anything but RAM) answers a value
//     from the input instead: flipped bits, zero, all ones, or a given word
//   4 interrupts: a vector raised now, a storm of them, or one later
//   5 step the clock                            6 wait for every command
//   7 power-cycle the board with register overrides armed: enumeration, BAR sizing and capability walks see them
import type { AccessSize, Bus } from "../../../host/bus/bus.ts";
import type { VirtioScsiFault } from "../../../host/devices/virtio_scsi.ts";
import { bytes, type FuzzTarget, OPS_PER_INPUT_MAX } from "../target.ts";
import { registerLieArm, registerReadAnswer, type RegisterLie } from "./register_lies.ts";
import {
  ANSWER_WITHIN_NS, checkReads, finishSession, prepareSession, quiesce, readOperation, type ReadsInFlight, SESSION_BOARD, type SessionState,
  writeOperation,
} from "./session.ts";

interface BusState extends SessionState, ReadsInFlight {
  overrides: RegisterLie[];
  rebooted: boolean;
  lies: string[]; // the lies told since the last operation, for the replay's log
}

// Reads of RAM stay true: the input lies only where a device answers.
function interpose(bus: Bus, ramBytes: number, state: BusState): void {
  const read = bus.read.bind(bus);
  bus.read = (address: bigint, sizeBytes: AccessSize): number | bigint => {
    const value = read(address, sizeBytes);
    if (address < BigInt(ramBytes) || state.overrides.length === 0) return value;
    return registerReadAnswer(state.overrides, state.lies, value, sizeBytes, (bits) => `read${bits} 0x${address.toString(16)}`);
  };
}

function fault(kind: number, arg: number): VirtioScsiFault {
  switch (kind % 6) {
    case 0: return { kind: "used-index-jump", by: (arg % 8) + 1 };
    case 1: return { kind: "unknown-id" };
    case 2: return { kind: "dma-fault-next" };
    case 3: return { kind: "interrupt-storm", count: (arg % 32) + 1 };
    case 4: return { kind: "never-complete-next" };
    default: return { kind: "duplicate-used" };
  }
}

export const busTarget: FuzzTarget<BusState> = {
  name: "bus",
  summary: "what devices hand the firmware: registers, config space, used rings, DMA status, interrupts",
  board: SESSION_BOARD,
  prepare(fuzz) {
    const state: BusState = { ...prepareSession(fuzz), overrides: [], reads: [], rebooted: false, lies: [] };
    const host = fuzz.processors[0]!;
    interpose(host.bus, host.ramBytes, state);
    return state;
  },
  run(fuzz, state, input, log) {
    state.shadow.reset();
    const { initiator } = state;
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 8;
      const live = !state.rebooted && !initiator.client.closed;
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
          fuzz.board.controllers[0]?.inject(f);
          break;
        }
        case 3:
          registerLieArm(input, 32, state.overrides, log);
          break;
        case 4: {
          const vector = input.u8() % 64;
          const how = input.u8();
          const host = fuzz.processors[0]!;
          log(`interrupt ${vector} (${how})`);
          if (how < 128) for (let i = 0; i <= how % 16; i++) host.raiseIrq(vector);
          else fuzz.board.clock.after((how - 127) * 5_000, () => host.raiseIrq(vector));
          break;
        }
        case 5:
          fuzz.board.runFor((input.u8() + 1) * 5_000);
          break;
        case 6:
          initiator.pumpUntil(() => initiator.outstanding() === 0, 100_000_000);
          break;
        default: {
          // Costly (a whole boot): only when the input asks twice.
          if (input.u8() !== 0x5a || state.rebooted) break;
          log("power cycle with register overrides armed");
          initiator.pumpUntil(() => initiator.outstanding() === 0, ANSWER_WITHIN_NS);
          state.rebooted = true;
          fuzz.board.reset();
          break;
        }
      }
      for (const lie of state.lies.splice(0)) log(lie);
      fuzz.check();
    }
    if (state.rebooted) {
      fuzz.board.runFor(100_000_000);
      quiesce(fuzz, undefined);
      return;
    }
    finishSession(fuzz, state);
    checkReads(state);
  },
  constants: (state) => [state.shadow.base],
  dictionary: [bytes(0x5a), bytes(0xff, 0xff, 0xff, 0xff), bytes(0, 0, 0, 0), bytes(0x80, 0, 0, 0), bytes(0, 0, 0x10, 0), bytes(0x11), bytes(0x09), bytes(0x1a, 0xf4), bytes(0x10, 0x48)],
  seeds: [
    bytes(0, 0, 10, 1, 1, 0, 20, 2, 7, 6),
    bytes(2, 2, 0, 0, 0, 1, 1, 0, 5, 1, 6),
    bytes(2, 4, 0, 0, 0, 30, 0, 6, 5, 255, 5, 255),
    bytes(3, 0, 0, 0, 0, 0, 1, 0, 0, 4, 2, 6),
    bytes(4, 3, 20, 4, 0, 140, 0, 0, 40, 2, 6),
    bytes(2, 3, 31, 2, 5, 0, 0, 0, 1, 0, 0, 7, 6),
  ],
};
