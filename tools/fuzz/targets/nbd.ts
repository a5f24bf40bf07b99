// The nbd target: byte streams into the NBD server's handshake and transmission phase, on up to three hostile
// connections from the booted board, beside one well-behaved client whose reads are checked against a shadow model of
// the export's disk. Operations, one byte of op code each:
//   0 open a hostile connection       1 client flags (the right ones, or a word from the input)
//   2 an option: type from the table, data well-formed for it or from the input     3 an option header from raw bytes
//   4 a request: type, flags, offset and length from the table or the input, a payload of the length or cut short
//   5 the standard handshake (STRUCTURED_REPLY, SET_META_CONTEXT, GO) on the current connection
//   6 step the clock      7 switch connection, or hang one up
//   8 the well-behaved client writes a pattern (answer awaited; the shadow takes it if OK)
//   9 the well-behaved client reads (answer awaited; an OK read must equal the shadow)
// Oracles: no panic, the well-behaved client answered within the CTA's bound and never wrong, no leak once quiesced.
import type { ClientEnd, LoopbackBackend } from "../../../host/devices/tcp_backend.ts";
import { FindingError, type FuzzBoard } from "../harness.ts";
import { ascii, bytes, type FuzzTarget, OPS_PER_INPUT_MAX } from "../target.ts";
import { ANSWER_WITHIN_NS, BLOCK_BYTES, DISK_BLOCKS, ShadowDisk } from "./session.ts";

export const NBD_EXPORT = "d0";
const NBD_PORTAL = 1; // the fuzzing board's portals: iSCSI's first, then NBD's
const OPTS_MAGIC = 0x49484156454f5054n;
const REQUEST_MAGIC = 0x25609513;
const OPTIONS = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 0, 99, 0x7fffffff];
const TYPES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 99];
const LENGTHS = [0, 1, 511, 512, 4096, 65536, 1 << 20, (1 << 20) + 512, 0xffffffff];
const OFFSETS = [0n, 512n, 1n, BigInt(DISK_BLOCKS * BLOCK_BYTES - 512), BigInt(DISK_BLOCKS * BLOCK_BYTES), 0xfffffffffffffe00n];

const CHECKED_BLOCKS = 256; // the well-behaved client's blocks: hostile writes, trims and zeroes are moved past them

const text = (s: string) => new TextEncoder().encode(s);

function optionBytes(option: number, data: Uint8Array, magic = OPTS_MAGIC): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, magic);
  v.setUint32(8, option);
  v.setUint32(12, data.length);
  out.set(data, 16);
  return out;
}

function nameData(name: string, tail: number[], tailBytes: 2 | 4): Uint8Array {
  const n = text(name);
  const out = new Uint8Array(4 + n.length + tailBytes + 2 * tail.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, n.length);
  out.set(n, 4);
  if (tailBytes === 2) v.setUint16(4 + n.length, tail.length);
  else v.setUint32(4 + n.length, 0);
  tail.forEach((t, i) => v.setUint16(4 + n.length + tailBytes + 2 * i, t));
  return out;
}

function metaData(name: string): Uint8Array {
  const n = text(name);
  const q = text("base:allocation");
  const out = new Uint8Array(4 + n.length + 4 + 4 + q.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, n.length);
  out.set(n, 4);
  v.setUint32(4 + n.length, 1);
  v.setUint32(8 + n.length, q.length);
  out.set(q, 12 + n.length);
  return out;
}

function requestBytes(type: number, flags: number, cookie: bigint, offset: bigint, length: number, payload: Uint8Array, magic = REQUEST_MAGIC): Uint8Array {
  const out = new Uint8Array(28 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, magic);
  v.setUint16(4, flags);
  v.setUint16(6, type);
  v.setBigUint64(8, cookie);
  v.setBigUint64(16, offset);
  v.setUint32(24, length >>> 0);
  out.set(payload, 28);
  return out;
}

const handshake = (): Uint8Array[] => [
  bytes(0, 0, 0, 3), optionBytes(8, new Uint8Array(0)), optionBytes(10, metaData(NBD_EXPORT)), optionBytes(7, nameData(NBD_EXPORT, [3], 2)),
];

// The well-behaved client: one request at a time, its structured reply read whole. (It keeps no reference to the
// FuzzBoard: the snapshot copies what the state reaches, and must not take the fuzzing harness with it.)
class Legit {
  readonly client: ClientEnd;
  private at = 0;
  private cookie = 1n;
  constructor(fuzz: FuzzBoard, network: LoopbackBackend) {
    this.client = network.connect(NBD_PORTAL);
    for (const part of handshake()) this.client.write(part);
    // Greeting 18 bytes; replies: STRUCTURED_REPLY ack 20, META_CONTEXT 20+4+15 and ack 20, GO: INFO 32, INFO 34, ack 20.
    if (this.take(fuzz, 18 + 20 + 39 + 20 + 32 + 34 + 20) === undefined) throw new Error(`the NBD handshake did not complete\n${fuzz.console.join("\n")}`);
  }

  private take(fuzz: FuzzBoard, n: number): Uint8Array | undefined {
    for (let spent = 0; spent < ANSWER_WITHIN_NS && this.client.received().length - this.at < n && !this.client.closed; spent += 1_000_000) fuzz.board.runFor(1_000_000);
    const all = this.client.received();
    if (all.length - this.at < n) return undefined;
    this.at += n;
    return all.slice(this.at - n, this.at);
  }

  /** One request, its reply awaited: the error number and, for a read, the data. */
  exchange(fuzz: FuzzBoard, type: number, lba: number, blocks: number, data: Uint8Array): { error: number; data: Uint8Array } {
    const cookie = this.cookie++;
    this.client.write(requestBytes(type, 0, cookie, BigInt(lba * BLOCK_BYTES), blocks * BLOCK_BYTES, data));
    const header = this.take(fuzz, 20);
    if (header === undefined) throw new FindingError({ kind: "lost-command", message: `NBD request ${cookie} (type ${type}) of the well-behaved client got no reply in ${ANSWER_WITHIN_NS / 1e9} s` });
    const v = new DataView(header.buffer);
    const length = v.getUint32(16);
    if (v.getUint32(0) !== 0x668e33ef || v.getBigUint64(8) !== cookie || length > (1 << 21)) {
      throw new FindingError({ kind: "data-mismatch", message: `NBD reply to ${cookie}: magic 0x${v.getUint32(0).toString(16)}, cookie ${v.getBigUint64(8)}, length ${length}` });
    }
    const payload = length > 0 ? this.take(fuzz, length)! : new Uint8Array(0);
    const kind = v.getUint16(6);
    if (kind === 0x8001) return { error: new DataView(payload.buffer).getUint32(0), data: new Uint8Array(0) };
    return { error: 0, data: kind === 1 ? payload.subarray(8) : new Uint8Array(0) };
  }
}

interface NbdState {
  connections: ClientEnd[];
  shadow: ShadowDisk;
  legit: Legit;
}

export const nbdTarget: FuzzTarget<NbdState> = {
  name: "nbd",
  summary: "NBD handshake and transmission byte streams beside a checked client",
  board: { processors: [{ ramMiB: 8, disksMiB: [1], nic: true }], nbd: true },
  prepare(fuzz) {
    fuzz.board.runFor(100_000_000); // until the transport serves
    const legit = new Legit(fuzz, fuzz.board.network as LoopbackBackend);
    fuzz.board.runFor(1_000_000);
    fuzz.recordBaseline(); // the well-behaved connection holds its option page for good
    return { connections: [], shadow: new ShadowDisk(fuzz), legit };
  },
  run(fuzz: FuzzBoard, state, input, log) {
    const network = fuzz.board.network as LoopbackBackend;
    let current: ClientEnd | undefined;
    const open = () => {
      if (state.connections.length >= 3) return;
      current = network.connect(NBD_PORTAL);
      state.connections.push(current);
    };
    state.shadow.reset();
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 10;
      if (current === undefined && op <= 5) open();
      const c = current;
      switch (op) {
        case 0: open(); log(`connection ${state.connections.length}`); break;
        case 1: {
          const raw = input.u8() < 128 ? 3 : input.u32();
          log(`client flags 0x${raw.toString(16)}`);
          const b = new Uint8Array(4);
          new DataView(b.buffer).setUint32(0, raw);
          c!.write(b);
          break;
        }
        case 2: {
          const option = OPTIONS[input.u8() % OPTIONS.length]!;
          const shape = input.u8() % 4;
          const data = shape === 0 ? new Uint8Array(0) : shape === 1 ? nameData(NBD_EXPORT, [input.u8() % 5], 2)
            : shape === 2 ? metaData(input.u8() < 128 ? NBD_EXPORT : "x") : input.take(input.u16() % 9000);
          log(`option ${option} data ${data.length}`);
          c!.write(optionBytes(option, data));
          break;
        }
        case 3: {
          const header = input.take(16);
          log(`raw option header ${Buffer.from(header).toString("hex")}`);
          c!.write(header);
          break;
        }
        case 4: {
          const type = input.u8() < 200 ? TYPES[input.u8() % TYPES.length]! : input.u16();
          const flags = input.u8() < 200 ? input.u8() & 0x0f : input.u16();
          const offset = input.u8() < 200 ? OFFSETS[input.u8() % OFFSETS.length]! : BigInt(input.u32()) * 512n;
          const length = input.u8() < 200 ? LENGTHS[input.u8() % LENGTHS.length]! : input.u32();
          const payloadBytes = type === 1 ? Math.min(length, 65536, input.u8() < 220 ? length : input.u16()) : 0;
          const magic = input.u8() < 240 ? REQUEST_MAGIC : input.u32();
          log(`request type ${type} flags 0x${flags.toString(16)} offset ${offset} length ${length} payload ${payloadBytes}`);
          // Hostile writes, trims and zeroes land past the blocks the well-behaved client checks (one export for all).
          const safeOffset = offset < BigInt(CHECKED_BLOCKS * BLOCK_BYTES) && (type === 1 || type === 4 || type === 6) ? offset + BigInt(CHECKED_BLOCKS * BLOCK_BYTES) : offset;
          c!.write(requestBytes(type, flags, BigInt(ops), safeOffset, length, new Uint8Array(payloadBytes).fill(0xe5), magic));
          break;
        }
        case 5: log("standard handshake"); for (const part of handshake()) c!.write(part); break;
        case 6: fuzz.board.runFor((input.u8() + 1) * 10_000); break;
        case 7: {
          const which = input.u8();
          if (which < 128 && state.connections.length > 0) current = state.connections[which % state.connections.length];
          else if (c !== undefined) {
            log("hang up");
            c.end();
          }
          break;
        }
        case 8: {
          const lba = input.u8() % (CHECKED_BLOCKS - 8);
          const blocks = 1 + (input.u8() % 8);
          const data = new Uint8Array(blocks * BLOCK_BYTES);
          const p = input.u8();
          for (let i = 0; i < data.length; i++) data[i] = (p + i * 13) & 0xff;
          log(`legit write lba ${lba} blocks ${blocks}`);
          const answer = state.legit.exchange(fuzz, 1, lba, blocks, data);
          state.shadow.wrote(lba, data, answer.error === 0);
          break;
        }
        default: {
          const lba = input.u8() % (CHECKED_BLOCKS - 8);
          const blocks = 1 + (input.u8() % 8);
          log(`legit read lba ${lba} blocks ${blocks}`);
          const answer = state.legit.exchange(fuzz, 0, lba, blocks, new Uint8Array(0));
          if (answer.error === 0) state.shadow.check(lba, answer.data, `NBD read at LBA ${lba}`);
        }
      }
      fuzz.board.runFor(20_000);
      fuzz.check();
    }
    // The well-behaved client is still served, and reads back what it wrote.
    const answer = state.legit.exchange(fuzz, 0, 0, 8, new Uint8Array(0));
    if (answer.error === 0) state.shadow.check(0, answer.data, "NBD read at LBA 0 after the input");
    for (const each of state.connections) if (!each.closed) each.end();
    fuzz.quiesce(ANSWER_WITHIN_NS, () => {});
  },
  constants: (state) => [state.shadow.base],
  dictionary: [
    bytes(0x49, 0x48, 0x41, 0x56, 0x45, 0x4f, 0x50, 0x54), bytes(0x25, 0x60, 0x95, 0x13), bytes(0, 0, 0, 3), bytes(0, 0, 0, 7),
    bytes(0, 0, 0, 8), bytes(0, 0, 0, 10), bytes(0xff, 0xff, 0xff, 0xff), ascii("base:allocation"), ascii(NBD_EXPORT),
  ],
  seeds: [
    bytes(0, 1, 0, 5, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0),
    bytes(5, 4, 0, 1, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0),
    bytes(8, 3, 2, 7, 9, 3, 2),
    bytes(0, 1, 0, 2, 7, 1, 0, 2, 3, 2, 0, 2, 9, 3, 100),
    bytes(0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
  ],
};
