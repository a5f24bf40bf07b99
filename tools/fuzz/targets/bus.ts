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
import { ANSWER_WITHIN_NS, DISK_BLOCKS, finishSession, joined, prepareSession, quiesce, readChecked, SESSION_BOARD, type SessionState, writeChecked } from "./session.ts";
import type { Task } from "../iscsi_client.ts";

interface Override {
  countdown: number; // register reads to let through first
  mode: number; // 0 xor mask, 1 zero, 2 all ones, 3 the value
  value: number;
}

interface BusState extends SessionState {
  overrides: Override[];
  reads: { task: Task; lba: number }[];
  rebooted: boolean;
  lies: string[]; // the lies told since the last operation, for the replay's log
}

// Reads of RAM stay true: the input lies only where a device answers.
function interpose(bus: Bus, ramBytes: number, state: BusState): void {
  const read = bus.read.bind(bus);
  bus.read = (address: bigint, sizeBytes: AccessSize): number | bigint => {
    const value = read(address, sizeBytes);
    if (address < BigInt(ramBytes) || state.overrides.length === 0) return value;
    const next = state.overrides[0]!;
    if (next.countdown > 0) {
      next.countdown -= 1;
      return value;
    }
    state.overrides.shift();
    const bits = sizeBytes * 8;
    const mask = bits === 64 ? 0xffff_ffff_ffff_ffffn : (1n << BigInt(bits)) - 1n;
    const wide = BigInt(value);
    const lie = next.mode === 0 ? wide ^ (BigInt(next.value) & mask) : next.mode === 1 ? 0n : next.mode === 2 ? mask : BigInt(next.value) & mask;
    state.lies.push(`lie: read${bits} 0x${address.toString(16)} answered 0x${lie.toString(16)} instead of 0x${wide.toString(16)}`);
    return sizeBytes === 8 ? lie : Number(lie);
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
        case 0: {
          const lba = input.u16() % DISK_BLOCKS;
          const blocks = (input.u8() % 8) + 1;
          if (!live) break;
          log(`read LBA ${lba} blocks ${blocks}`);
          state.reads.push({ task: readChecked(fuzz, state, lba, blocks, (lba & 1) === 1, false), lba });
          break;
        }
        case 1: {
          const lba = input.u16() % DISK_BLOCKS;
          const blocks = (input.u8() % 8) + 1;
          const pattern = input.u8();
          if (!live) break;
          log(`write LBA ${lba} blocks ${blocks}`);
          // Reads in flight while the write lands may see either content: they are not checked.
          for (const r of state.reads) r.lba = -1;
          writeChecked(fuzz, state, lba, blocks, pattern, (lba & 1) === 1);
          break;
        }
        case 2: {
          const f = fault(input.u8(), input.u8());
          log(`controller fault ${JSON.stringify(f)}`);
          fuzz.board.controllers[0]?.inject(f);
          break;
        }
        case 3: {
          const o: Override = { countdown: input.u8() % 32, mode: input.u8() % 4, value: input.u32() };
          log(`register read override ${JSON.stringify(o)}`);
          if (state.overrides.length < 8) state.overrides.push(o);
          break;
        }
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
    for (const r of state.reads) {
      if (r.lba >= 0 && r.task.status === 0 && r.task.response === 0) state.shadow.check(r.lba, joined(r.task.dataIn), `READ at LBA ${r.lba}`);
    }
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
