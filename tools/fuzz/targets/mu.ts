// The mu target: message frames from a peer processor through the messaging unit. The board has a host processor
// and one storage processor; once both are up the host is halted and the fuzzer plays it, driving the bridge's
// host-side registers the way the host's link does (assembly/rta/links.ts): pop a free frame address from the
// inbound port, write 128 bytes through the window, post the address. Operations, one byte of op code each:
//   0-1 a frame with a valid header: function, disk, LBA, block count, segments (host RAM or any address)
//   2 a frame of raw bytes     3 post an address the unit never gave     4 doorbell or message register
//   5 step the clock           6-7 take the replies (also done after every operation)
// Segment addresses come from the peer, so DMA faults are its fault here: only CPU accesses are bus faults.
import type { Bus } from "../../../host/bus/bus.ts";
import {
  AgentKind, agentAddress, FRAME_ADDRESS_NONE, FRAME_AT_ATTEMPT, FRAME_AT_BLOCK_COUNT, FRAME_AT_BYTES, FRAME_AT_CONNECTION,
  FRAME_AT_DISK, FRAME_AT_FLAGS, FRAME_AT_FUNCTION, FRAME_AT_LBA, FRAME_AT_SEGMENT_COUNT, FRAME_AT_SOURCE, FRAME_AT_TARGET,
  FRAME_AT_TRANSACTION, FRAME_AT_VERSION, FRAME_BYTES, FRAME_SEGMENT_AT_ADDRESS, FRAME_SEGMENT_AT_LENGTH, FRAME_SEGMENTS_MAX,
  FRAME_VERSION, FrameFunction, frameSegmentAt,
} from "../message_frame.ts";
import { bytes, type FuzzTarget, OPS_PER_INPUT_MAX } from "../target.ts";

const MU_INBOUND_PORT = 0x40n;
const MU_OUTBOUND_PORT = 0x44n;
const MU_MESSAGE_REGISTERS = [0x10n, 0x14n, 0x20n]; // IMR0, IMR1, IDR
const F = FrameFunction;
const FUNCTIONS = [F.StartAgent, F.Read, F.Write, F.WriteFua, F.Flush, F.Unmap, 0, 2, F.LbaStatus, 0xff];
const HOST_BUFFER_BASE = 0x10_0000; // host RAM the segments point at: the halted host does not use it any more

interface MuState {
  bus: Bus;
  mu: bigint;
  window: bigint;
  replies: number;
}

function drain(state: MuState): void {
  for (let i = 0; i < 64; i++) { // bounded by the outbound queue's size
    const address = Number(state.bus.read(state.mu + MU_OUTBOUND_PORT, 4));
    if (address === FRAME_ADDRESS_NONE) return;
    state.replies += 1;
    state.bus.write(state.mu + MU_OUTBOUND_PORT, 4, address);
  }
}

function post(state: MuState, frame: Uint8Array): boolean {
  const address = Number(state.bus.read(state.mu + MU_INBOUND_PORT, 4));
  if (address === FRAME_ADDRESS_NONE) return false;
  state.bus.dmaWrite("fuzzer", state.window + BigInt(address), frame);
  state.bus.write(state.mu + MU_INBOUND_PORT, 4, address);
  return true;
}

export const muTarget: FuzzTarget<MuState> = {
  name: "mu",
  summary: "message frames from a peer processor through the messaging unit",
  board: { processors: [{ ramMiB: 4, disksMiB: [] }, { ramMiB: 4, disksMiB: [1] }], allowDmaFaults: true },
  prepare(fuzz) {
    fuzz.board.runFor(200_000_000);
    const host = fuzz.processors[0]!;
    host.halt();
    const bridge = fuzz.board.bridges[0]!;
    const state: MuState = { bus: host.bus, mu: bridge.barAddress(0), window: bridge.barAddress(2), replies: 0 };
    drain(state);
    return state;
  },
  run(fuzz, state, input, log) {
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 8;
      switch (op) {
        case 0: case 1: {
          const frame = new Uint8Array(FRAME_BYTES);
          const v = new DataView(frame.buffer);
          const head = input.u8();
          frame[FRAME_AT_VERSION] = (head & 0x80) !== 0 ? head : FRAME_VERSION;
          frame[FRAME_AT_FLAGS] = head & 0x01; // a reply where a request belongs
          frame[FRAME_AT_FUNCTION] = FUNCTIONS[input.u8() % FUNCTIONS.length]!;
          v.setUint16(FRAME_AT_SOURCE, agentAddress(0, AgentKind.Cta), true); // from the host's CTA
          v.setUint16(FRAME_AT_TARGET, agentAddress(1, (head & 0x40) !== 0 ? input.u8() % 4 : AgentKind.Rta), true); // to sp1's RTA, or elsewhere
          v.setUint32(FRAME_AT_CONNECTION, input.u8(), true);
          v.setUint32(FRAME_AT_TRANSACTION, input.u16(), true);
          frame[FRAME_AT_ATTEMPT] = input.u8() & 3;
          const segments = input.u8() % 7;
          frame[FRAME_AT_SEGMENT_COUNT] = segments;
          v.setUint16(FRAME_AT_DISK, input.u8() % 3, true);
          const blocks = input.u8() % 17;
          v.setUint32(FRAME_AT_BLOCK_COUNT, blocks, true);
          v.setBigUint64(FRAME_AT_LBA, BigInt(input.u16()), true);
          v.setBigUint64(FRAME_AT_BYTES, BigInt((head & 0x20) !== 0 ? input.u32() : blocks * 512), true);
          for (let s = 0; s < Math.min(segments, FRAME_SEGMENTS_MAX); s++) {
            const raw = input.u8();
            const address = raw < 200 ? BigInt(HOST_BUFFER_BASE + s * 0x2000) : BigInt(input.u32());
            v.setBigUint64(frameSegmentAt(s) + FRAME_SEGMENT_AT_ADDRESS, address, true);
            v.setUint32(frameSegmentAt(s) + FRAME_SEGMENT_AT_LENGTH, raw < 200 ? Math.ceil((blocks * 512) / Math.max(1, segments)) : input.u16(), true);
          }
          log(`frame ${Buffer.from(frame.subarray(0, 64)).toString("hex")}`);
          post(state, frame);
          break;
        }
        case 2: {
          const frame = input.take(FRAME_BYTES);
          log(`raw frame ${Buffer.from(frame.subarray(0, 32)).toString("hex")}…`);
          post(state, frame);
          break;
        }
        case 3: {
          const address = input.u32();
          log(`post address 0x${address.toString(16)}`);
          state.bus.write(state.mu + MU_INBOUND_PORT, 4, address);
          break;
        }
        case 4: {
          const register = MU_MESSAGE_REGISTERS[input.u8() % MU_MESSAGE_REGISTERS.length]!;
          const value = input.u32();
          log(`register 0x${register.toString(16)} = 0x${value.toString(16)}`);
          state.bus.write(state.mu + register, 4, value);
          break;
        }
        case 5:
          fuzz.board.runFor((input.u8() + 1) * 20_000);
          break;
        default:
          fuzz.board.runFor(100_000);
      }
      drain(state);
      fuzz.check();
    }
    // Replies keep coming while the storage processor finishes (a timeout is 2 s): take them until it is quiet.
    fuzz.quiesce(4_000_000_000, () => drain(state));
  },
  dictionary: [bytes(1), bytes(3), bytes(4), bytes(7), bytes(0x02, 0x00), bytes(0x03, 0x01), bytes(0xff, 0xff, 0xff, 0xff), bytes(0x00, 0x10, 0x00, 0x00), bytes(0x80)],
  seeds: [
    bytes(0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0),
    bytes(0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 8, 0, 0, 0, 0, 6),
    bytes(0, 0, 2, 0, 0, 2, 0, 0, 2, 0, 4, 0, 10, 0, 0),
    bytes(2, 1, 0, 3, 0, 0, 0, 0, 4, 2, 0, 0, 0, 1),
    bytes(3, 0, 0, 0x10, 0, 5, 1),
  ],
};
