// The fabric on the wire (docs/cluster.md, "Across processes"): how a cluster port's packets cross a TCP connection
// between two boards' processes (tcp_fabric.ts). One connection per direction and pair of boards; the dialer's first
// frame is a hello naming itself and the board it dialed, then every frame is one packet from it to that board.
// Packets travel in bursts: what a process sends one board in one turn of its event loop (a port's pass over its send
// queue: a reply's SEND and the tunneled INTERRUPT after it; a batch of RDMA answers) is one burst, every frame of it
// but the last flagged "more follows", and the receiver hands a burst to the port only whole, in one go, at one board
// time. So an interrupt is never seen a board-time moment after the data it follows, however TCP cuts the stream and
// however late the receiving process reads the rest (docs/cluster.md, "Across processes").
//
// A frame, little-endian: |0 length u32 (the bytes after this field)|4 type u8|5 version u8 (1)|6 source u16|
// |8 destination u16|10 reserved u16| then, by type:
//   1 hello:   nothing more (length 8)
//   2 request: |12 opcode u8|13 flags u8 (bit 0: bytes follow, bit 1: more of the burst follows)|14 reserved u16|
//              |16 incarnation u64|24 sequence u32|
//              |28 id u32|32 key u32|36 length u32|40 offset u64|48 the bytes (flags bit 0), as many as length says|
//   3 answer:  |12 status u8|13 flags u8 (as a request's)|14 reserved u16|16 id u32|20 reserved u32|24 the bytes|
// Nothing a peer sends is trusted: a frame shorter than its type's header or than 8, longer than a request with
// FABRIC_TRANSFER_BYTES_MAX bytes, of another version or an unknown type, with reserved bits set, with bytes its flags
// do not announce or a request whose bytes are not `length` long, a burst of more than WIRE_BURST_PACKETS_MAX packets
// or WIRE_BURST_BYTES_MAX bytes, a hello that is not first or names a board not of
// the cluster or not this one, a packet from another source than the hello's or to another board: each is a counted
// error (FabricWireReceiver.error names it) and the connection is closed, nothing of the frame delivered. What the
// frames carry is the port's to check (keys, ranges, sequence numbers: host/devices/cluster_port.ts).
import { type FabricMessage, FabricOpcode, FABRIC_TRANSFER_BYTES_MAX } from "../devices/cluster_port.ts";
import type { FabricPacket } from "./fabric.ts";

export const WIRE_VERSION = 1;
export const WIRE_HELLO = 1;
export const WIRE_REQUEST = 2;
export const WIRE_ANSWER = 3;
const PREFIX_BYTES = 4; // the length field
const COMMON_BYTES = 12; // through the reserved u16, the length field included
const REQUEST_HEADER_BYTES = 48;
const ANSWER_HEADER_BYTES = 24;
const FLAG_BYTES = 1;
const FLAG_MORE = 2;
/** A burst's bounds: the receiver holds a burst whole before it delivers it. A sender ends its burst early at them. */
export const WIRE_BURST_PACKETS_MAX = 1024;
export const WIRE_BURST_BYTES_MAX = 16 << 20;
// The fields, at the offsets drawn above; read and written only by these names.
const AT_LENGTH = 0;
const AT_TYPE = 4;
const AT_VERSION = 5;
const AT_SOURCE = 6;
const AT_DESTINATION = 8;
const AT_RESERVED = 10;
const AT_OPCODE = 12; // request
const AT_STATUS = 12; // answer
const AT_FLAGS = 13;
const AT_RESERVED_FLAGS = 14;
const AT_INCARNATION = 16; // request
const AT_REQUEST_SEQUENCE = 24;
const AT_REQUEST_ID = 28;
const AT_KEY = 32;
const AT_REQUEST_LENGTH = 36;
const AT_OFFSET = 40;
const AT_ANSWER_ID = 16; // answer
const AT_ANSWER_RESERVED = 20;
/** The longest frame's length field: a request's header and FABRIC_TRANSFER_BYTES_MAX bytes. */
export const WIRE_FRAME_LENGTH_MAX = REQUEST_HEADER_BYTES - PREFIX_BYTES + FABRIC_TRANSFER_BYTES_MAX;

/** The dialer's first frame. */
export function encodeHello(source: number, destination: number): Uint8Array {
  const frame = new Uint8Array(COMMON_BYTES);
  common(new DataView(frame.buffer), COMMON_BYTES, WIRE_HELLO, source, destination);
  return frame;
}

/** A packet as one frame; `more`: another packet of the same burst follows it. */
export function encodePacket(packet: FabricPacket<FabricMessage>, more = false): Uint8Array {
  const m = packet.body;
  const bytes = m.bytes;
  const header = m.kind === "request" ? REQUEST_HEADER_BYTES : ANSWER_HEADER_BYTES;
  const frame = new Uint8Array(header + (bytes?.length ?? 0));
  const view = new DataView(frame.buffer);
  common(view, frame.length, m.kind === "request" ? WIRE_REQUEST : WIRE_ANSWER, packet.source, packet.destination);
  view.setUint8(AT_FLAGS, (bytes === undefined ? 0 : FLAG_BYTES) | (more ? FLAG_MORE : 0));
  if (m.kind === "request") {
    view.setUint8(AT_OPCODE, m.opcode);
    view.setBigUint64(AT_INCARNATION, BigInt(m.incarnation), true);
    view.setUint32(AT_REQUEST_SEQUENCE, m.sequence >>> 0, true);
    view.setUint32(AT_REQUEST_ID, m.id >>> 0, true);
    view.setUint32(AT_KEY, m.key >>> 0, true);
    view.setUint32(AT_REQUEST_LENGTH, m.length >>> 0, true);
    view.setBigUint64(AT_OFFSET, BigInt.asUintN(64, m.offset), true);
  } else {
    view.setUint8(AT_STATUS, m.status);
    view.setUint32(AT_ANSWER_ID, m.id >>> 0, true);
  }
  if (bytes !== undefined) frame.set(bytes, header);
  return frame;
}

/** Flags an encoded packet's frame: another packet of its burst follows it. */
export function markMore(frame: Uint8Array): void {
  frame[AT_FLAGS] = frame[AT_FLAGS]! | FLAG_MORE;
}

function common(view: DataView, frameBytes: number, type: number, source: number, destination: number): void {
  view.setUint32(AT_LENGTH, frameBytes - PREFIX_BYTES, true);
  view.setUint8(AT_TYPE, type);
  view.setUint8(AT_VERSION, WIRE_VERSION);
  view.setUint16(AT_SOURCE, source, true);
  view.setUint16(AT_DESTINATION, destination, true);
}

/** Why a receiver closed its connection; each is counted (tcp_fabric.ts, the fuzz target). */
export type WireError =
  | "short-frame" | "oversized-frame" | "bad-version" | "bad-type" | "reserved-bits" | "bytes-mismatch"
  | "no-hello" | "second-hello" | "unknown-source" | "wrong-destination" | "source-changed" | "oversized-burst";

/** One connection's incoming side: bytes in, packets out, or an error after which it takes nothing more. */
export class FabricWireReceiver {
  /** The board that dialed (its hello's source), once its hello came. */
  source: number | undefined;
  error: WireError | undefined;
  framesIn = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private burst: FabricPacket<FabricMessage>[] = []; // packets of a burst whose last frame has not come yet
  private burstBytes = 0;

  /**
   * `self`: this board's fabric address; `known(address)`: whether a board of the cluster has it; `deliver` gets each
   * burst, its packets in order, once its last frame came. A frame is delivered only whole and checked.
   */
  constructor(
    private readonly self: number,
    private readonly known: (address: number) => boolean,
    private readonly deliver: (burst: FabricPacket<FabricMessage>[]) => void,
  ) {}

  get closed(): boolean { return this.error !== undefined; }

  /** Bytes from the connection; returns the error that closes it (then and after), else undefined. */
  push(chunk: Uint8Array): WireError | undefined {
    if (this.error !== undefined) return this.error;
    if (chunk.length === 0) return undefined;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.error === undefined && this.pendingBytes >= PREFIX_BYTES) {
      const lengthField = this.peekLength();
      if (lengthField < COMMON_BYTES - PREFIX_BYTES) return this.fail("short-frame");
      if (lengthField > WIRE_FRAME_LENGTH_MAX) return this.fail("oversized-frame");
      if (this.pendingBytes < PREFIX_BYTES + lengthField) break;
      const frame = this.take(PREFIX_BYTES + lengthField);
      const failed = this.frame(frame);
      if (failed !== undefined) return this.fail(failed);
    }
    return this.error;
  }

  private fail(error: WireError): WireError {
    this.error = error;
    this.pending = [];
    this.pendingBytes = 0;
    this.burst = [];
    this.burstBytes = 0;
    return error;
  }

  private peekLength(): number {
    const head = new Uint8Array(PREFIX_BYTES);
    let filled = 0;
    for (const piece of this.pending) {
      const n = Math.min(piece.length, PREFIX_BYTES - filled);
      head.set(piece.subarray(0, n), filled);
      filled += n;
      if (filled === PREFIX_BYTES) break;
    }
    return new DataView(head.buffer).getUint32(AT_LENGTH, true);
  }

  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.pending[0]!;
      const used = Math.min(piece.length, n - filled);
      out.set(piece.subarray(0, used), filled);
      filled += used;
      if (used === piece.length) this.pending.shift();
      else this.pending[0] = piece.subarray(used);
    }
    this.pendingBytes -= n;
    return out;
  }

  private frame(frame: Uint8Array): WireError | undefined {
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const type = view.getUint8(AT_TYPE);
    if (view.getUint8(AT_VERSION) !== WIRE_VERSION) return "bad-version";
    if (view.getUint16(AT_RESERVED, true) !== 0) return "reserved-bits";
    const source = view.getUint16(AT_SOURCE, true);
    const destination = view.getUint16(AT_DESTINATION, true);
    if (type === WIRE_HELLO) {
      if (frame.length !== COMMON_BYTES) return frame.length < COMMON_BYTES ? "short-frame" : "bytes-mismatch";
      if (this.source !== undefined) return "second-hello";
      if (!this.known(source) || source === this.self) return "unknown-source";
      if (destination !== this.self) return "wrong-destination";
      this.source = source;
      this.framesIn += 1;
      return undefined;
    }
    if (type !== WIRE_REQUEST && type !== WIRE_ANSWER) return "bad-type";
    if (this.source === undefined) return "no-hello";
    if (source !== this.source) return "source-changed";
    if (destination !== this.self) return "wrong-destination";
    const header = type === WIRE_REQUEST ? REQUEST_HEADER_BYTES : ANSWER_HEADER_BYTES;
    if (frame.length < header) return "short-frame";
    const flags = view.getUint8(AT_FLAGS);
    if ((flags & ~(FLAG_BYTES | FLAG_MORE)) !== 0 || view.getUint16(AT_RESERVED_FLAGS, true) !== 0) return "reserved-bits";
    const hasBytes = (flags & FLAG_BYTES) !== 0;
    const bytes = hasBytes ? frame.slice(header) : undefined;
    if (!hasBytes && frame.length !== header) return "bytes-mismatch";
    let body: FabricMessage;
    if (type === WIRE_REQUEST) {
      const length = view.getUint32(AT_REQUEST_LENGTH, true);
      if (bytes !== undefined && bytes.length !== length) return "bytes-mismatch";
      const incarnation = view.getBigUint64(AT_INCARNATION, true);
      if (incarnation > BigInt(Number.MAX_SAFE_INTEGER)) return "reserved-bits";
      body = {
        kind: "request", opcode: view.getUint8(AT_OPCODE) as FabricOpcode, incarnation: Number(incarnation), sequence: view.getUint32(AT_REQUEST_SEQUENCE, true),
        id: view.getUint32(AT_REQUEST_ID, true), key: view.getUint32(AT_KEY, true), offset: view.getBigUint64(AT_OFFSET, true), length, bytes,
      };
    } else {
      if (view.getUint32(AT_ANSWER_RESERVED, true) !== 0) return "reserved-bits";
      body = { kind: "answer", id: view.getUint32(AT_ANSWER_ID, true), status: view.getUint8(AT_STATUS), bytes };
    }
    this.burst.push({ source, destination, body });
    this.burstBytes += frame.length;
    if (this.burst.length > WIRE_BURST_PACKETS_MAX || this.burstBytes > WIRE_BURST_BYTES_MAX) return "oversized-burst";
    this.framesIn += 1;
    if ((flags & FLAG_MORE) !== 0) return undefined;
    const burst = this.burst;
    this.burst = [];
    this.burstBytes = 0;
    this.deliver(burst);
    return undefined;
  }
}
