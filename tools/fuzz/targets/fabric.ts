// The fabric target: a hostile remote board. The fuzzing board is board a (id 1) of a two-board cluster with a
// partitioned volume and a cluster port (docs/hardware.md, "cluster-port"); the fuzzer plays board b (id 2) on the
// same fabric, packet by packet, and lies: forged frames (any version, function, agents, transaction, segments),
// forged hellos (any key, region base and length), raw SENDs of any length, RDMA WRITE and READ with the board's key
// or any other at any offset, interrupts on any vector, forged answers to the port's requests, sequence gaps and
// replays, dropped and duplicated packets, links going down and up, and window accesses it refuses or answers with
// garbage. Oracles: the firmware never panics, traps or hangs; its storage controller's DMA through the window never
// reaches past the region board b declared in its last hello (the firmware must not touch memory a peer did not
// give it); and once b falls quiet, every buffer and frame is back (no request left half done). (That b's RDMA never
// writes the board's memory outside the region it registered is the port's own check, test/unit/devices/
// cluster_port.test.ts; here it runs against the firmware's real region and key.) Operations, one byte
// of op code each:
//   0 a forged frame      1 a forged hello        2 raw bytes SENT        3 RDMA WRITE      4 RDMA READ
//   5 an interrupt        6 a forged answer       7 step the clock        8 a fabric fault  9 sequence games
//   10 how b answers the window (Ok with garbage, a key fault, a range fault)
//   11 bytes on a TCP connection from b (host/fabric/fabric_wire.ts, as `run --cluster F --board N` reads them): a well-
//      formed packet cut anywhere, a new connection's hello (any source and destination), raw bytes, or a packet with
//      one byte changed. Oracle: a malformed frame is a named, counted error that closes the connection (nothing of it,
//      nor anything after, is delivered), never an exception; what the wire delivers reaches the port as any packet.
import type { FabricMessage } from "../../../host/devices/cluster_port.ts";
import { FabricOpcode, FabricStatus } from "../../../host/devices/cluster_port.ts";
import type { Fabric, FabricEndpoint, FabricLink, FabricPacket } from "../../../host/fabric/fabric.ts";
import { encodeHello, encodePacket, FabricWireReceiver } from "../../../host/fabric/fabric_wire.ts";
import { decodeFabricHello, encodeFabricHello } from "../fabric_hello.ts";
import { FindingError, type FuzzBoard } from "../harness.ts";
import {
  AgentKind, agentAddress, FRAME_AT_ACK, FRAME_AT_BLOCK_COUNT, FRAME_AT_CONNECTION, FRAME_AT_DISK, FRAME_AT_FLAGS,
  FRAME_AT_FUNCTION, FRAME_AT_LBA, FRAME_AT_SEGMENT_COUNT, FRAME_AT_SOURCE, FRAME_AT_STATUS, FRAME_AT_TARGET,
  FRAME_AT_TRANSACTION, FRAME_AT_VERSION, FRAME_BYTES, FRAME_SEGMENT_AT_ADDRESS, FRAME_SEGMENT_AT_LENGTH, FRAME_SEGMENTS_MAX,
  FRAME_VERSION, FrameFunction, frameSegmentAt,
} from "../message_frame.ts";
import { bytes, type FuzzTarget, OPS_PER_INPUT_MAX } from "../target.ts";

const FIRMWARE = 1;
const PEER = 2;
const REMOTE_PROCESSOR_BASE = 16;
const RETAIN_NS = 10_000_000_000; // the RTA keeps an unacknowledged reply this long (assembly/rta/rta.ts)
const QUIESCE_NS = 200_000_000;

// Board b, as the fabric sees it: it answers what the firmware sends, and remembers what the oracles need. State in
// fields only (the snapshot restores fields, not closures).
class HostilePeer implements FabricEndpoint {
  readonly fabricAddress = PEER;
  readonly links: readonly FabricLink[];
  incarnation = 7;
  sequence = 1;
  idNext = 1;
  firmwareKey = 0;
  firmwareBase = 0n;
  firmwareLength = 0;
  declaredLength = -1; // the region of b's last hello; -1: none sent
  windowMode = 0; // 0 Ok (garbage bytes), 1 KeyFault, 2 RangeFault
  violation = "";
  framesReceived = 0;
  windowAccesses = 0;
  answersReceived = 0;
  transactionLast = 0;
  wire: FabricWireReceiver; // b's connection to a, as a's process reads it
  wireErrors = 0;
  wireDelivered = 0;
  wireDeliveredClosed = 0; // delivered by a connection already closed: a finding

  // The fabric, not the FuzzBoard: the snapshot restores every object reachable from its roots, and the FuzzBoard's
  // own fields (the snapshot itself) must stay out of it.
  constructor(private readonly fabric: Fabric) {
    this.links = fabric.linksFor(PEER, "hostile");
    fabric.attach(this);
    this.wire = this.connect();
  }

  // A new connection from b to a's process, as tcp_fabric.ts reads it: what it decodes goes onto the fabric as b's.
  connect(): FabricWireReceiver {
    const wire: FabricWireReceiver = new FabricWireReceiver(FIRMWARE, (a) => a === FIRMWARE || a === PEER, (burst) => {
      for (const packet of burst) {
        if (wire.closed) this.wireDeliveredClosed += 1;
        this.wireDelivered += 1;
        this.fabric.send(this, this.links[0]!.up ? 0 : 1, packet);
      }
    });
    return wire;
  }

  /** Bytes on b's connection; a malformed frame closes it (counted) and the next bytes come on a new one. */
  wireBytes(chunk: Uint8Array): string | undefined {
    const error = this.wire.push(chunk);
    if (error === undefined) return undefined;
    this.wireErrors += 1;
    const delivered = this.wireDelivered;
    if (this.wire.push(encodeHello(PEER, FIRMWARE)) !== error || this.wireDelivered !== delivered) {
      this.violation ||= `a wire connection closed for ${error} read more bytes`;
    }
    if (this.wireDeliveredClosed > 0) this.violation ||= `a wire connection closed for ${error} delivered a packet`;
    this.wire = this.connect();
    return error;
  }

  receive(packet: FabricPacket): void {
    const message = packet.body as FabricMessage;
    if (message.kind === "answer") {
      this.answersReceived += 1;
      return;
    }
    if (message.opcode === FabricOpcode.Read || message.opcode === FabricOpcode.Write) {
      // The firmware's RDMA into b's buffers (a port without a window: fabric-rdma): inside b's declared region only.
      this.checkWindow(message.offset, message.length);
      const status = this.windowMode === 0 ? FabricStatus.Ok : this.windowMode === 1 ? FabricStatus.KeyFault : FabricStatus.RangeFault;
      this.answer(message.id, status, status === FabricStatus.Ok && message.opcode === FabricOpcode.Read ? new Uint8Array(message.length).fill(0x5a) : undefined);
      return;
    }
    const hello = message.opcode === FabricOpcode.Send && message.bytes !== undefined ? decodeFabricHello(message.bytes) : undefined;
    if (hello !== undefined) {
      this.firmwareKey = hello.key;
      this.firmwareBase = hello.regionBase;
      this.firmwareLength = Number(hello.regionLength);
    } else if (message.opcode === FabricOpcode.Send) this.framesReceived += 1;
    this.answer(message.id, FabricStatus.Ok);
  }

  // A window access by the firmware's controller (the port calls these on the peer it reaches).
  remoteRead(_key: number, offset: bigint, into: Uint8Array): FabricStatus {
    this.checkWindow(offset, into.length);
    if (this.windowMode !== 0) return this.windowMode === 1 ? FabricStatus.KeyFault : FabricStatus.RangeFault;
    into.fill(0x5a);
    return FabricStatus.Ok;
  }

  remoteWrite(_key: number, offset: bigint, bytes: Uint8Array): FabricStatus {
    this.checkWindow(offset, bytes.length);
    return this.windowMode === 0 ? FabricStatus.Ok : this.windowMode === 1 ? FabricStatus.KeyFault : FabricStatus.RangeFault;
  }

  private checkWindow(offset: bigint, lengthBytes: number): void {
    this.windowAccesses += 1;
    if (this.declaredLength < 0 || offset + BigInt(lengthBytes) > BigInt(this.declaredLength)) {
      this.violation ||= `the firmware reached ${lengthBytes} bytes at offset ${offset} of board b's region, which is ${this.declaredLength} bytes`;
    }
  }

  answer(id: number, status: FabricStatus, data?: Uint8Array): void {
    this.fabric.send(this, this.links[0]!.up ? 0 : 1, { source: PEER, destination: FIRMWARE, body: { kind: "answer", id, status, bytes: data } satisfies FabricMessage });
  }

  request(opcode: number, key: number, offset: bigint, length: number, data?: Uint8Array): void {
    const body = { kind: "request", opcode, incarnation: this.incarnation, sequence: this.sequence++, id: this.idNext++, key, offset, length, bytes: data } as FabricMessage;
    this.fabric.send(this, this.links[0]!.up ? 0 : 1, { source: PEER, destination: FIRMWARE, body });
  }

  send(data: Uint8Array): void {
    this.request(FabricOpcode.Send, 0, 0n, data.length, data);
  }
}

interface Reader { u8(): number; u16(): number; u32(): number; done: boolean }

// A frame from board b's CTA to board a's RTA (or a reply to its CTA), fields from the input, mostly near valid.
function forgedFrame(input: Reader, peer: HostilePeer): Uint8Array {
  const f = new Uint8Array(FRAME_BYTES);
  const view = new DataView(f.buffer);
  const shape = input.u8();
  f[FRAME_AT_VERSION] = (shape & 0x80) !== 0 ? input.u8() : FRAME_VERSION;
  f[FRAME_AT_FLAGS] = shape & 1; // the reply flag
  f[FRAME_AT_FUNCTION] = (shape & 0x40) !== 0 ? input.u8() : FrameFunction.Read + ((shape >> 1) % 5); // Read..Unmap, or anything
  f[FRAME_AT_STATUS] = input.u8() % 12;
  const cta = agentAddress(0, AgentKind.Cta);
  const rta = agentAddress(0, AgentKind.Rta);
  view.setUint16(FRAME_AT_SOURCE, (shape & 0x20) !== 0 ? input.u16() : (shape & 1) !== 0 ? rta : cta, true);
  view.setUint16(FRAME_AT_TARGET, (shape & 0x10) !== 0 ? input.u16() : (shape & 1) !== 0 ? cta : rta, true);
  view.setUint32(FRAME_AT_CONNECTION, input.u32(), true);
  const transaction = (shape & 8) !== 0 ? input.u32() : ++peer.transactionLast;
  view.setUint32(FRAME_AT_TRANSACTION, transaction, true);
  view.setUint32(FRAME_AT_ACK, input.u8() === 0 ? 0xffff_ffff : 0, true);
  const segments = input.u8() % 7;
  f[FRAME_AT_SEGMENT_COUNT] = segments;
  view.setUint16(FRAME_AT_DISK, input.u8() % 3, true);
  const blocks = (input.u8() % 16) + 1;
  view.setUint32(FRAME_AT_BLOCK_COUNT, (shape & 4) !== 0 ? input.u32() : blocks, true);
  view.setBigUint64(FRAME_AT_LBA, BigInt(input.u16() % 64), true);
  const base = BigInt(peer.declaredLength > 0 ? 0x10_0000 : 0);
  for (let s = 0; s < Math.min(segments, FRAME_SEGMENTS_MAX); s++) {
    const lengthBytes = (shape & 2) !== 0 ? input.u32() : ((input.u8() % 8) + 1) * 512;
    const offset = (input.u8() & 0x80) !== 0 ? BigInt(input.u32()) << BigInt(input.u8() % 33) : BigInt((input.u8() % 64) * 512);
    view.setBigUint64(frameSegmentAt(s) + FRAME_SEGMENT_AT_ADDRESS, base + offset, true);
    view.setUint32(frameSegmentAt(s) + FRAME_SEGMENT_AT_LENGTH, lengthBytes, true);
  }
  return f;
}

function fabricFault(fuzz: FuzzBoard, input: Reader, log: (line: string) => void): void {
  const fabric = fuzz.fabric!;
  const kind = input.u8() % 6;
  const address = (input.u8() & 1) === 0 ? FIRMWARE : PEER;
  const link = input.u8() & 1;
  switch (kind) {
    case 0: fabric.inject({ kind: "drop-next", count: (input.u8() % 4) + 1 }); log("fabric: drop the next packets"); break;
    case 1: fabric.inject({ kind: "duplicate-next", count: (input.u8() % 4) + 1 }); log("fabric: duplicate the next packets"); break;
    case 2: fabric.setLink(address, link, false); log(`fabric: port ${address} link ${link} down`); break;
    default: fabric.setLink(address, link, true); log(`fabric: port ${address} link ${link} up`); break;
  }
}

// Bytes on b's TCP connection to a (op 11).
function wireOp(peer: HostilePeer, input: Reader, log: (line: string) => void): void {
  const how = input.u8() % 4;
  const packet = (): Uint8Array => {
    const opcode = (input.u8() % 6) as FabricOpcode;
    const flags = input.u8();
    const kind = flags & 1;
    const lengthBytes = input.u8() % 64;
    const data = lengthBytes === 0 ? undefined : Uint8Array.from({ length: lengthBytes }, () => input.u8());
    const body: FabricMessage = kind === 0
      ? { kind: "request", opcode, incarnation: peer.incarnation, sequence: peer.sequence++, id: peer.idNext++, key: input.u8() < 200 ? peer.firmwareKey : input.u32(), offset: BigInt(input.u16() * 64), length: data?.length ?? input.u8(), bytes: data }
      : { kind: "answer", id: input.u16(), status: (input.u8() % 14) as FabricStatus, bytes: data };
    return encodePacket({ source: PEER, destination: FIRMWARE, body }, (flags & 2) !== 0); // bit 1: a burst goes on
  };
  let chunk: Uint8Array;
  if (how === 0) chunk = packet();
  else if (how === 1) chunk = encodeHello(input.u8() < 200 ? PEER : input.u16(), input.u8() < 200 ? FIRMWARE : input.u16());
  else if (how === 2) chunk = Uint8Array.from({ length: (input.u8() % 80) + 1 }, () => input.u8());
  else {
    chunk = packet();
    chunk[input.u8() % chunk.length] = input.u8();
  }
  // Cut where the input says: TCP delivers a stream, not frames.
  const cut = Math.min(chunk.length, input.u8() % (chunk.length + 1));
  const first = peer.wireBytes(chunk.subarray(0, cut));
  const error = first ?? peer.wireBytes(chunk.subarray(cut));
  log(`wire: ${["packet", "hello", "raw bytes", "changed packet"][how]} of ${chunk.length} bytes cut at ${cut}${error === undefined ? "" : `: ${error}, connection closed`}`);
}

function checkPeer(peer: HostilePeer): void {
  if (peer.violation !== "") throw new FindingError({ kind: "bus-fault", message: peer.violation });
}

export const fabricTarget: FuzzTarget<{ peer: HostilePeer }> = {
  name: "fabric",
  summary: "a hostile remote board: forged frames and hellos, bad keys, out-of-range RDMA, forged answers and interrupts, link faults",
  board: {
    processors: [{ ramMiB: 8, disksMiB: [4] }],
    allowDmaFaults: true, // a window access board b refuses is its doing: the controller reports it, the I/O fails
    fabric: true,
    cluster: {
      version: 1,
      board: "a",
      boards: [
        { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 3260 }] },
        { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: 3261 }] },
      ],
      volumes: [{ volume: 0, pageBlocks: 64, pageCount: 128, owners: { roundRobinFrom: "a" } }],
    },
  },
  prepare(fuzz) {
    const peer = new HostilePeer(fuzz.fabric!);
    fuzz.board.runFor(20_000_000);
    if (peer.firmwareKey === 0) throw new Error(`fabric target: the firmware sent no hello\n${fuzz.console.join("\n")}`);
    return { peer };
  },
  run(fuzz, state, input, log) {
    const peer = state.peer;
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 12;
      switch (op) {
        case 0: {
          const frame = forgedFrame(input, peer);
          log(`frame: fn ${frame[FRAME_AT_FUNCTION]} flags ${frame[FRAME_AT_FLAGS]} segments ${frame[FRAME_AT_SEGMENT_COUNT]}`);
          peer.send(frame);
          break;
        }
        case 1: {
          const bits = input.u8();
          const flags = bits & 1;
          const tableVersion = (bits >> 1) & 3; // over 1: the board fetches b's table (cluster/table_sync.ts), b never answers
          const key = input.u8() === 0 ? 0 : 0x100 | (input.u8() << 8);
          const lengthBytes = input.u8() === 0 ? 0 : (input.u8() === 0xff ? input.u32() : (input.u16() + 1) * 512);
          if (lengthBytes > 0 && key !== 0) peer.declaredLength = Math.max(peer.declaredLength, lengthBytes);
          log(`hello: key 0x${key.toString(16)}, ${lengthBytes} bytes, table version ${tableVersion}`);
          peer.send(encodeFabricHello({ flags, key, regionBase: 0x10_0000n, regionLength: BigInt(lengthBytes), tableVersion }));
          break;
        }
        case 2: {
          const lengthBytes = (input.u8() % 160) + 1;
          const data = Uint8Array.from({ length: lengthBytes }, () => input.u8());
          log(`raw send of ${lengthBytes} bytes`);
          peer.send(data);
          break;
        }
        case 3: case 4: {
          const key = input.u8() < 200 ? peer.firmwareKey : input.u32();
          const offset = (input.u8() & 0x80) !== 0 ? BigInt(input.u32()) << BigInt(input.u8() % 40) : BigInt(input.u16() * 64);
          const lengthBytes = (input.u16() % 8192) + 1;
          log(`RDMA ${op === 3 ? "WRITE" : "READ"} key 0x${key.toString(16)} offset ${offset} length ${lengthBytes}`);
          peer.request(op === 3 ? FabricOpcode.Write : FabricOpcode.Read, key, offset, lengthBytes, op === 3 ? new Uint8Array(lengthBytes).fill(0xee) : undefined);
          break;
        }
        case 5: {
          const vector = input.u8();
          log(`interrupt ${vector}`);
          peer.request(FabricOpcode.Interrupt, 0, BigInt(vector % 12), 0);
          break;
        }
        case 6: {
          const id = input.u16();
          const status = input.u8() % 14;
          log(`forged answer: id ${id} status ${status}`);
          peer.answer(id, status, input.u8() === 0 ? new Uint8Array(input.u8()) : undefined);
          break;
        }
        case 7:
          fuzz.board.runFor((input.u8() + 1) * 10_000);
          break;
        case 8:
          fabricFault(fuzz, input, log);
          break;
        case 9: {
          const how = input.u8() % 3;
          if (how === 0) peer.sequence += (input.u8() % 4) + 1; // a gap: the next interrupt is fenced
          else if (how === 1) peer.sequence = Math.max(1, peer.sequence - 1); // a replay: dropped as a duplicate
          else peer.incarnation += 1; // b "reset"
          log(`sequence: ${["gap", "replay", "new incarnation"][how]}`);
          break;
        }
        case 11:
          wireOp(peer, input, log);
          break;
        default:
          peer.windowMode = input.u8() % 3;
          log(`window answers ${["Ok", "KeyFault", "RangeFault"][peer.windowMode]}`);
          break;
      }
      fuzz.check();
      checkPeer(peer);
    }
    // Board b falls quiet with its links up: what the firmware still holds must come back. Its replies to b's requests
    // are kept until acknowledged or RETAIN_NS old; b never acknowledges, so the board runs past that.
    for (const address of [FIRMWARE, PEER]) for (const link of [0, 1]) fuzz.fabric!.setLink(address, link, true);
    fuzz.board.runFor(50_000_000);
    checkPeer(peer);
    log(`board b: ${peer.framesReceived} frames received, ${peer.answersReceived} answers, ${peer.windowAccesses} window accesses, wire ${peer.wireDelivered} packets, ${peer.wireErrors} closed`);
    fuzz.board.runFor(RETAIN_NS + 20_000_000);
    fuzz.check();
    checkPeer(peer);
    fuzz.quiesce(QUIESCE_NS);
  },
  dictionary: [bytes(1), bytes(3), bytes(4), bytes(0, 0, 0, 0), bytes(0xff, 0xff, 0xff, 0xff), bytes(0x48, 0x45, 0x4c, 0x4f), bytes(0, 1, 0, 0), bytes(0x11, 0x01), bytes(0x52, 0x54, 0x42, 0x4c)],
  seeds: [
    bytes(7, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 1, 0, 0, 7, 200),
    bytes(1, 1, 1, 2, 0, 64, 0, 7, 100, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 1, 7, 200),
    bytes(3, 0, 0, 0, 16, 0, 64, 4, 0, 0x80, 0xff, 0xff, 0xff, 0xff, 8, 0, 16, 5, 3, 6, 1, 0, 0, 1),
    bytes(8, 2, 0, 0, 3, 0, 0, 0, 0, 16, 9, 0, 5, 2, 8, 3, 0, 0, 7, 255),
    bytes(2, 40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 10, 1, 0, 3, 7, 10),
    // A hello of 8 704 bytes, then a READ of one block into its first 512 bytes: the disk's data through the window.
    bytes(1, 1, 1, 1, 1, 0, 0, 0x10, 7, 0x20, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0x50),
    // Routing-table sync messages (cluster/table_sync.ts) from b: a proposal of version 2 over 1, then its commit.
    bytes(2, 127, 0x52, 0x54, 0x42, 0x4c, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0xff, 0, 0, 0, 1, 0, 0, 0, 7, 10,
      2, 127, 0x52, 0x54, 0x42, 0x4c, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0xff, 0, 0, 0, 1, 0, 0, 0, 7, 10),
    // On the wire: b's hello, a SEND of 32 bytes cut in two, a packet with a byte changed, raw bytes.
    bytes(11, 1, 0, 0, 12, 7, 10, 11, 0, 0, 3, 0, 32, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 0, 0, 0, 20, 7, 50, 11, 3, 1, 1, 4, 9, 9, 9, 9, 5, 255, 11, 2, 10, 0, 0, 0, 0, 255, 255, 255, 255, 1, 2, 5),
  ],
};

/**
 * The same hostile board against a port without a window (revision 2, as over TCP): the firmware's RTA serves b's
 * forged requests by RDMA READ and WRITE through its own bounce buffers (assembly/rta/bounce.ts), which b answers as
 * op 10 says (Ok, with garbage for a READ; KeyFault; RangeFault). The oracles are the same: no RDMA outside b's
 * declared region, and every bounce buffer, frame and transaction back once b falls quiet.
 */
export const fabricRdmaTarget: FuzzTarget<{ peer: HostilePeer }> = {
  ...fabricTarget,
  name: "fabric-rdma",
  summary: "the fabric target against a port without a window: the RTA's RDMA through bounce buffers, answered by a hostile board",
  board: { ...fabricTarget.board, fabric: "rdma" },
};
