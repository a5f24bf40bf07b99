// The replica target: a replica whose copy 1 lives on another board (docs/volumes.md, "Copies on two boards"), with
// that board played by the fuzzer. The fuzzing board is board a (id 1) of a two-board cluster: its volume rep has copy
// 0 on its own 2 MiB disk and copy 1 on board b's disk rep-b, reached over the fabric, served as LUN 0 to a logged-in
// iSCSI session. The fuzzer is board b's RTA: it keeps rep-b in memory and serves the firmware's frames (moving the
// data by RDMA through a's key, as b's storage controller does), and, as the input says, answers them with an error
// status, drops them, answers twice, powers off (both links down, nothing answered) and on again (a new incarnation
// and hello), forges error answers to transactions it was never sent, scribbles on its superblock, and loses or
// duplicates packets. So the CTA's replica path (two-copy writes, the ordering holds, the write-intent log, fail-over
// of reads) and the resync (probe, copying the logged regions, or the whole copy to a disk that is not the volume's)
// run against a copy that fails in every way a remote board can.
// Oracles: no panic, trap, budget or bus fault; every command answered within REPLICA_ANSWER_WITHIN_NS; every READ
// answered GOOD holds what the shadow model says (board b never lies about data: what it answers Ok it stored, what it
// answers with an error it did not), whichever copy it came from, so a write acknowledged without copy 1 (and not
// logged for its resync) shows as a stale read from it; once b is back and quiet, every buffer and frame is back.
// Operations, one byte of op code each:
//   0 WRITE   1 READ    2 b answers the next frames with an error   3 b drops the next frames   4 b answers twice
//   5 b off / on       6 a forged error answer   7 step the clock   8 b's superblock scribbled   9 a fabric fault
import type { FabricMessage } from "../../../host/devices/cluster_port.ts";
import { CLUSTER_PORT_TUNNEL_VECTORS, FabricOpcode } from "../../../host/devices/cluster_port.ts";
import type { Fabric, FabricEndpoint, FabricLink, FabricPacket } from "../../../host/fabric/fabric.ts";
import type { LoopbackBackend } from "../../../host/devices/tcp_backend.ts";
import { decodeFabricHello, encodeFabricHello, FABRIC_HELLO_ANSWER } from "../fabric_hello.ts";
import { FindingError, type FuzzBoard } from "../harness.ts";
import { FuzzInitiator } from "../iscsi_client.ts";
import {
  AgentKind, agentAddress, FRAME_AT_BLOCK_COUNT, FRAME_AT_BYTES, FRAME_AT_DISK, FRAME_AT_FLAGS, FRAME_AT_FUNCTION, FRAME_AT_LBA,
  FRAME_AT_SEGMENT_COUNT, FRAME_AT_SOURCE, FRAME_AT_STATUS, FRAME_AT_TARGET, FRAME_AT_TRANSACTION, FRAME_AT_VERSION,
  FRAME_BYTES, FRAME_FLAG_REPLY, FRAME_SEGMENT_AT_ADDRESS, FRAME_SEGMENT_AT_LENGTH, FRAME_SEGMENTS_MAX, FRAME_VERSION,
  FrameFunction, frameSegmentAt, FrameStatus,
} from "../message_frame.ts";
import { bytes, type FuzzTarget, type InputReader, OPS_PER_INPUT_MAX } from "../target.ts";
import { BLOCK_BYTES, joined, ShadowDisk } from "./session.ts";

const FIRMWARE = 1;
const PEER = 2;
const PEER_INDEX = 1; // board b's index in the routing table
const COPY_MIB = 2; // 1 MiB of metadata, then 1 MiB of data: 2 048 blocks, 16 chunks of 64 KiB
const COPY_BYTES = COPY_MIB << 20;
const METADATA_BYTES = 1 << 20;
const VOLUME_BLOCKS = (COPY_BYTES - METADATA_BYTES) / BLOCK_BYTES;
// A part the copy never answers is sent again until 5 s after it first went (assembly/cta/cta.ts GIVE_UP_NS), then the
// copy (on another board) is failed; one the copy answers with an error gets it again three times (MEMBER_RETRIES_MAX)
// before it is failed: at most 20 s, then the answer.
const REPLICA_ANSWER_WITHIN_NS = 26_000_000_000;
const RETAIN_NS = 10_000_000_000;
const QUIESCE_NS = 200_000_000;
const FN_READ = FrameFunction.Read;
const FN_WRITE = FrameFunction.Write;
const FN_WRITE_FUA = FrameFunction.WriteFua;
const FN_UNMAP = FrameFunction.Unmap;
const S = FrameStatus;
const ERROR_STATUSES = [S.MediumError, S.DeviceError, S.Timeout, S.Busy, S.Aborted, S.NoDisk, S.NotStarted, S.DiskChanged];

// A frame the peer is serving: the RDMA READs of its data still out (a write), then the answer.
interface Serving { frame: Uint8Array; reads: Map<number, { offset: number; data?: Uint8Array }>; status: number; twice: boolean }

// Board b: an honest RTA over rep-b unless the input says otherwise. State in fields only (the snapshot restores
// fields, not closures).
class ReplicaPeer implements FabricEndpoint {
  readonly fabricAddress = PEER;
  readonly links: readonly FabricLink[];
  readonly disk = new Uint8Array(COPY_BYTES);
  incarnation = 11;
  sequence = 1;
  idNext = 1;
  firmwareKey = 0;
  firmwareBase = 0n;
  firmwareLength = 0;
  on = true;
  errorsNext = 0; // the next frames answered with errorStatus (not executed)
  errorStatus = 3;
  dropsNext = 0; // the next frames neither executed nor answered
  twiceNext = 0; // the next frames answered twice
  framesReceived = 0;
  readonly serving = new Map<number, Serving>(); // by RDMA request id
  violation = "";

  constructor(private readonly fabric: Fabric) {
    this.links = fabric.linksFor(PEER, "replica-peer");
    fabric.attach(this);
  }

  receive(packet: FabricPacket): void {
    if (!this.on) return;
    const message = packet.body as FabricMessage;
    if (message.kind === "answer") {
      this.rdmaAnswered(message.id, message.status, message.bytes);
      return;
    }
    const data = message.bytes;
    this.reply(message.id, 0); // the port's own answer to a SEND: it arrived
    if (message.opcode !== FabricOpcode.Send || data === undefined) return;
    const hello = decodeFabricHello(data);
    if (hello !== undefined) {
      this.firmwareKey = hello.key;
      this.firmwareBase = hello.regionBase;
      this.firmwareLength = Number(hello.regionLength);
      if ((hello.flags & FABRIC_HELLO_ANSWER) !== 0) this.hello();
      return;
    }
    if (data.length === FRAME_BYTES) this.onFrame(data.slice());
  }

  private onFrame(f: Uint8Array): void {
    this.framesReceived += 1;
    if (f[FRAME_AT_FLAGS] !== 0) return; // a reply: b's CTA sends nothing, so none is expected
    if (this.dropsNext > 0) {
      this.dropsNext -= 1;
      return;
    }
    const twice = this.twiceNext > 0;
    if (twice) this.twiceNext -= 1;
    if (this.errorsNext > 0) {
      this.errorsNext -= 1;
      this.answerFrame(f, this.errorStatus, 0, twice);
      return;
    }
    const view = new DataView(f.buffer);
    const fn = f[FRAME_AT_FUNCTION]!;
    const disk = view.getUint16(FRAME_AT_DISK, true);
    const blocks = view.getUint32(FRAME_AT_BLOCK_COUNT, true);
    const lba = Number(view.getBigUint64(FRAME_AT_LBA, true));
    const bytesTotal = blocks * BLOCK_BYTES;
    if (disk !== 0 || (lba + blocks) * BLOCK_BYTES > COPY_BYTES) {
      this.answerFrame(f, S.IllegalRequest, 0, twice); // b has one disk, this size
      return;
    }
    if (fn === FN_UNMAP) {
      this.disk.fill(0, lba * BLOCK_BYTES, (lba + blocks) * BLOCK_BYTES);
      this.answerFrame(f, S.Ok, 0, twice);
      return;
    }
    if (fn !== FN_READ && fn !== FN_WRITE && fn !== FN_WRITE_FUA) {
      this.answerFrame(f, S.Ok, 0, twice); // Flush: b's disk has no cache
      return;
    }
    // The segments, in the firmware's bus addresses, inside the region it registered.
    const segments: { offset: bigint; length: number }[] = [];
    let sum = 0;
    for (let s = 0; s < Math.min(f[FRAME_AT_SEGMENT_COUNT]!, FRAME_SEGMENTS_MAX); s++) {
      const address = view.getBigUint64(frameSegmentAt(s) + FRAME_SEGMENT_AT_ADDRESS, true);
      const length = view.getUint32(frameSegmentAt(s) + FRAME_SEGMENT_AT_LENGTH, true);
      segments.push({ offset: address - this.firmwareBase, length });
      sum += length;
    }
    if (sum !== bytesTotal || segments.some((g) => g.offset < 0n || g.offset + BigInt(g.length) > BigInt(this.firmwareLength))) {
      this.violation ||= `a frame for ${blocks} blocks named ${segments.length} segments of ${sum} bytes, not all inside the region of ${this.firmwareLength} bytes the firmware registered`;
      this.answerFrame(f, S.BadFrame, 0, twice);
      return;
    }
    if (fn === FN_READ) {
      let at = lba * BLOCK_BYTES;
      for (const g of segments) {
        this.request(FabricOpcode.Write, this.firmwareKey, g.offset, g.length, this.disk.slice(at, at + g.length));
        at += g.length;
      }
      this.answerFrame(f, S.Ok, bytesTotal, twice); // after the RDMA WRITEs: packets between two ports keep their order
      return;
    }
    const serving: Serving = { frame: f, reads: new Map(), status: 0, twice };
    let at = 0;
    for (const g of segments) {
      const id = this.request(FabricOpcode.Read, this.firmwareKey, g.offset, g.length);
      serving.reads.set(id, { offset: at });
      this.serving.set(id, serving);
      at += g.length;
    }
  }

  // An RDMA READ of a write's data came back: once all have, the blocks are stored and the write answered.
  private rdmaAnswered(id: number, status: number, data: Uint8Array | undefined): void {
    const serving = this.serving.get(id);
    if (serving === undefined) return;
    this.serving.delete(id);
    const read = serving.reads.get(id)!;
    if (status !== 0 || data === undefined) serving.status = S.DeviceError; // the data never came
    else read.data = data;
    if ([...serving.reads.values()].some((r) => r.data === undefined) && serving.status === 0) return;
    if ([...serving.reads.keys()].some((k) => this.serving.has(k))) return;
    const view = new DataView(serving.frame.buffer);
    const lba = Number(view.getBigUint64(FRAME_AT_LBA, true));
    const blocks = view.getUint32(FRAME_AT_BLOCK_COUNT, true);
    if (serving.status === 0) for (const r of serving.reads.values()) this.disk.set(r.data!, lba * BLOCK_BYTES + r.offset);
    this.answerFrame(serving.frame, serving.status, serving.status === 0 ? blocks * BLOCK_BYTES : 0, serving.twice);
  }

  answerFrame(f: Uint8Array, status: number, bytesMoved: number, twice: boolean): void {
    const r = f.slice();
    const view = new DataView(r.buffer);
    r[FRAME_AT_FLAGS] = FRAME_FLAG_REPLY;
    r[FRAME_AT_STATUS] = status;
    view.setUint16(FRAME_AT_SOURCE, new DataView(f.buffer).getUint16(FRAME_AT_TARGET, true), true); // the agent it was sent to (b's RTA)
    view.setUint16(FRAME_AT_TARGET, new DataView(f.buffer).getUint16(FRAME_AT_SOURCE, true), true); // the requester (a's CTA)
    view.setBigUint64(FRAME_AT_BYTES, BigInt(bytesMoved), true);
    this.send(r);
    if (twice) this.send(r.slice());
    // The tunneled completion (docs/cluster.md, "Tunneled completions"): the firmware's fabric task holds a reply until
    // the sender's tunneled vector (its board index, 1, mod 8) fires, after everything sent before it.
    this.request(FabricOpcode.Interrupt, 0, BigInt(PEER_INDEX % CLUSTER_PORT_TUNNEL_VECTORS), 0);
  }

  hello(): void {
    this.send(encodeFabricHello({ flags: 0, key: 0x4200, regionBase: 0x10_0000n, regionLength: 0x1_0000n }));
  }

  reply(id: number, status: number): void {
    this.fabric.send(this, this.links[0]!.up ? 0 : 1, { source: PEER, destination: FIRMWARE, body: { kind: "answer", id, status } as FabricMessage });
  }

  request(opcode: number, key: number, offset: bigint, length: number, data?: Uint8Array): number {
    const id = this.idNext++;
    const body = { kind: "request", opcode, incarnation: this.incarnation, sequence: this.sequence++, id, key, offset, length, bytes: data } as FabricMessage;
    this.fabric.send(this, this.links[0]!.up ? 0 : 1, { source: PEER, destination: FIRMWARE, body });
    return id;
  }

  send(data: Uint8Array): void {
    this.request(FabricOpcode.Send, 0, 0n, data.length, data);
  }
}

interface ReplicaState {
  peer: ReplicaPeer;
  initiator: FuzzInitiator;
  shadow: ShadowDisk;
}

function setPower(fuzz: FuzzBoard, peer: ReplicaPeer, on: boolean): void {
  for (const link of [0, 1]) fuzz.fabric!.setLink(PEER, link, on);
  peer.on = on;
  peer.serving.clear();
  if (on) {
    peer.incarnation += 1; // b booted again: a new incarnation, a hello asking for the firmware's
    peer.sequence = 1;
    peer.hello();
  }
}

// The data of a WRITE with pattern byte p.
function pattern(p: number, length: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (p + i * 13 + (i >> 9)) & 0xff;
  return data;
}

function write(state: ReplicaState, lba: number, blocks: number, p: number): void {
  const data = pattern(p, blocks * BLOCK_BYTES);
  const cdb = new Uint8Array(16);
  cdb[0] = 0x8a;
  new DataView(cdb.buffer).setUint32(6, lba);
  new DataView(cdb.buffer).setUint32(10, blocks);
  const task = state.initiator.command(0, cdb, data.length, data, false);
  state.initiator.pumpUntil(() => task.status !== undefined, REPLICA_ANSWER_WITHIN_NS);
  if (task.status === undefined) throw new FindingError({ kind: "lost-command", message: `no response in ${REPLICA_ANSWER_WITHIN_NS / 1e9} s of board time to a WRITE of ${blocks} blocks at LBA ${lba}` });
  state.shadow.wrote(lba, data, task.status === 0);
}

function read(fuzz: FuzzBoard, state: ReplicaState, lba: number, blocks: number): void {
  const cdb = new Uint8Array(16);
  cdb[0] = 0x88;
  new DataView(cdb.buffer).setUint32(6, lba);
  new DataView(cdb.buffer).setUint32(10, blocks);
  const task = state.initiator.command(0, cdb, blocks * BLOCK_BYTES, new Uint8Array(0), true);
  state.initiator.pumpUntil(() => task.status !== undefined, REPLICA_ANSWER_WITHIN_NS);
  fuzz.check();
  if (task.status === undefined) throw new FindingError({ kind: "lost-command", message: `no response in ${REPLICA_ANSWER_WITHIN_NS / 1e9} s of board time to a READ of ${blocks} blocks at LBA ${lba}` });
  if (task.status === 0 && task.response === 0) state.shadow.check(lba, joined(task.dataIn), `READ at LBA ${lba}`);
}

function checkPeer(peer: ReplicaPeer): void {
  if (peer.violation !== "") throw new FindingError({ kind: "bus-fault", message: peer.violation });
}

export const replicaTarget: FuzzTarget<ReplicaState> = {
  name: "replica",
  summary: "a replica's copy on a hostile remote board: errors, drops, double answers, power off and on, forged answers, a scribbled superblock",
  board: {
    processors: [{ ramMiB: 8, disksMiB: [COPY_MIB], nic: true }],
    allowDmaFaults: true,
    fabric: true,
    cluster: {
      version: 1,
      board: "a",
      boards: [
        { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 3260 }] },
        { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: 3261 }] },
      ],
      volumes: [],
    },
    volumes: [{ name: "rep", type: "replica", copies: ["host-disk0", "b:rep-b"], chunkKiB: 64 }],
    remoteDisks: [{ name: "b:rep-b", board: "b", boardId: PEER, index: 0, disk: { name: "rep-b", sizeMiB: COPY_MIB, blockSize: 512, physicalBlockSize: 512, backend: "memory" } }],
  },
  prepare(fuzz) {
    const peer = new ReplicaPeer(fuzz.fabric!);
    fuzz.board.runFor(200_000_000); // hellos, the superblocks (blank copies: formatted), the transport serving
    if (peer.firmwareKey === 0) throw new Error(`replica target: the firmware sent no hello\n${fuzz.console.join("\n")}`);
    if (!fuzz.console.some((l) => /volume index=0 name=rep type=replica .*state=optimal/.test(l))) {
      throw new Error(`replica target: rep is not optimal after boot\n${fuzz.console.join("\n")}`);
    }
    fuzz.recordBaseline();
    const initiator = new FuzzInitiator(fuzz.board, fuzz.board.network as LoopbackBackend);
    if (!initiator.login()) throw new Error(`replica target: the login was refused\n${fuzz.console.join("\n")}`);
    fuzz.board.runFor(1_000_000);
    const shadow = new ShadowDisk(fuzz);
    fuzz.board.disk("host-disk0")!.read(METADATA_BYTES, shadow.base.subarray(0, VOLUME_BLOCKS * BLOCK_BYTES));
    return { peer, initiator, shadow };
  },
  run(fuzz, state, input, log) {
    const { peer } = state;
    state.shadow.reset();
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 10;
      switch (op) {
        case 0: {
          const lba = input.u16() % VOLUME_BLOCKS;
          const blocks = Math.min((input.u8() % 32) + 1, VOLUME_BLOCKS - lba);
          const p = input.u8();
          log(`write LBA ${lba} blocks ${blocks} pattern ${p}`);
          write(state, lba, blocks, p);
          break;
        }
        case 1: {
          const lba = input.u16() % VOLUME_BLOCKS;
          const blocks = Math.min((input.u8() % 32) + 1, VOLUME_BLOCKS - lba);
          log(`read LBA ${lba} blocks ${blocks}`);
          read(fuzz, state, lba, blocks);
          break;
        }
        case 2:
          peer.errorsNext = (input.u8() % 8) + 1;
          peer.errorStatus = ERROR_STATUSES[input.u8() % ERROR_STATUSES.length]!;
          log(`b answers the next ${peer.errorsNext} frames with status ${peer.errorStatus}`);
          break;
        case 3:
          peer.dropsNext = (input.u8() % 8) + 1;
          log(`b drops the next ${peer.dropsNext} frames`);
          break;
        case 4:
          peer.twiceNext = (input.u8() % 8) + 1;
          log(`b answers the next ${peer.twiceNext} frames twice`);
          break;
        case 5:
          setPower(fuzz, peer, !peer.on);
          log(`b powered ${peer.on ? "on" : "off"}`);
          break;
        case 6: {
          const f = new Uint8Array(FRAME_BYTES);
          const view = new DataView(f.buffer);
          f[FRAME_AT_VERSION] = FRAME_VERSION;
          f[FRAME_AT_FUNCTION] = [FN_READ, FN_WRITE_FUA, FrameFunction.Flush, FN_UNMAP][input.u8() % 4]!;
          view.setUint16(FRAME_AT_SOURCE, agentAddress(0, AgentKind.Rta), true); // b's RTA
          view.setUint16(FRAME_AT_TARGET, agentAddress(0, AgentKind.Cta), true); // a's CTA
          view.setUint32(FRAME_AT_TRANSACTION, input.u8() % 64, true); // a transaction b was sent or not: only errors, never Ok
          const status = ERROR_STATUSES[input.u8() % ERROR_STATUSES.length]!;
          log(`forged answer: transaction ${view.getUint32(FRAME_AT_TRANSACTION, true)} status ${status}`);
          peer.answerFrame(f.slice(0, FRAME_BYTES), status, 0, false);
          break;
        }
        case 7:
          fuzz.board.runFor((input.u8() + 1) * 50_000_000);
          break;
        case 8: {
          const at = input.u8() * 16;
          peer.disk.fill(input.u8(), at, at + 64);
          log(`b's superblock scribbled at byte ${at}`);
          break;
        }
        default: {
          const kind = input.u8() % 3;
          if (kind === 0) fuzz.fabric!.inject({ kind: "drop-next", count: (input.u8() % 4) + 1 });
          else if (kind === 1) fuzz.fabric!.inject({ kind: "duplicate-next", count: (input.u8() % 4) + 1 });
          else fuzz.fabric!.setLink(PEER, input.u8() & 1, false);
          log(`fabric: ${["drop", "duplicate", "a link of b down"][kind]}`);
          break;
        }
      }
      fuzz.check();
      checkPeer(peer);
    }
    // b back, honest and quiet: every command answered, the resync done, what the firmware holds given back.
    peer.errorsNext = 0;
    peer.dropsNext = 0;
    peer.twiceNext = 0;
    if (!peer.on) setPower(fuzz, peer, true);
    for (const link of [0, 1]) fuzz.fabric!.setLink(PEER, link, true);
    state.initiator.pumpUntil(() => state.initiator.outstanding() === 0, REPLICA_ANSWER_WITHIN_NS);
    fuzz.check();
    if (state.initiator.outstanding() > 0 && !state.initiator.client.closed) {
      throw new FindingError({ kind: "lost-command", message: `no response in ${REPLICA_ANSWER_WITHIN_NS / 1e9} s of board time to ${state.initiator.outstanding()} commands` });
    }
    fuzz.board.runFor(RETAIN_NS + 20_000_000);
    fuzz.check();
    checkPeer(peer);
    log(`board b: ${peer.framesReceived} frames received`);
    if (!state.initiator.client.closed) state.initiator.client.end();
    fuzz.quiesce(QUIESCE_NS);
  },
  dictionary: [bytes(0), bytes(1), bytes(5), bytes(0, 0x80), bytes(0x04, 0x00), bytes(31)],
  seeds: [
    // Writes, b off, writes (degraded), b on (resync of the logged regions), reads of both copies' chunks.
    bytes(0, 0, 10, 7, 1, 0, 0x90, 3, 5, 0, 1, 0, 15, 2, 0, 3, 0, 31, 3, 7, 20, 5, 7, 100, 1, 0, 10, 7, 1, 0, 0x90, 3, 1, 3, 0, 31),
    // Errors then drops on b's frames under writes, then reads.
    bytes(2, 2, 1, 0, 0, 0x80, 5, 9, 3, 1, 0, 0x81, 0, 5, 10, 7, 200, 1, 0, 0x80, 5, 1, 0x81, 0, 5),
    // A scribbled superblock, b off and on (the probe finds a foreign copy: copied whole), a forged answer.
    bytes(0, 0x02, 0, 15, 9, 8, 0, 0xaa, 5, 0, 0x02, 0, 3, 4, 5, 6, 1, 3, 2, 7, 255, 7, 255, 1, 0x02, 0, 15),
    // Double answers and fabric drops under writes.
    bytes(4, 6, 9, 0, 3, 0, 0x01, 0x10, 31, 33, 9, 1, 2, 0, 0x04, 0x20, 12, 34, 1, 0x04, 0x20, 12),
  ],
};
