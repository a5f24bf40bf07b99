// Links carry message frames between agents. One frame format, three ways across:
//   LocalLink     agents on this processor: the frame is copied into a pool slot and posted to the peer task;
//   MuHostLink    host → storage processor through an iop-bridge's messaging unit (the host side);
//   MuLocalLink   storage processor → host through its own messaging unit (the local side).
// A sender cannot tell them apart: send() copies the frame out and answers false when there is no room (the caller
// keeps the frame and retries: backpressure), and received frames arrive as Frame messages or through receive().
// Frames from across the bus are validated: a peer's bad frame address is counted and dropped, never followed.
import { bootInfoMuLocalBase, bootInfoOutboundWindowBase } from "../board/boot_info";
import { busRead32, busWrite32, busWrite64 } from "../board/bus";
import { FRAME_ADDRESS_NONE, FRAME_BYTES } from "../board/frame";
import {
  MU_HOST_INBOUND_PORT, MU_HOST_OIMR, MU_HOST_OUTBOUND_PORT, MU_IISR_INBOUND_POST, MU_LOCAL_IFHPR, MU_LOCAL_IIMR,
  MU_LOCAL_IISR, MU_LOCAL_IPHPR, MU_LOCAL_IPTPR, MU_LOCAL_LVEC, MU_LOCAL_MUCR, MU_LOCAL_OFHPR, MU_LOCAL_OFTPR,
  MU_LOCAL_OPHPR, MU_LOCAL_QBAR, MU_MUCR_ENABLE, MU_OISR_OUTBOUND_POST, MU_QUEUE_ENTRIES, MU_QUEUE_INBOUND_FREE,
  MU_QUEUE_INBOUND_POST, MU_QUEUE_OUTBOUND_FREE, MU_QUEUE_OUTBOUND_POST, MU_QUEUE_SIZE_CODE,
} from "../board/mu";
import { carve } from "../kernel/carve";
import { Msg, MsgKind } from "../kernel/msg";
import { Pool, POOL_NONE } from "../kernel/pool";
import { post } from "../kernel/scheduler";

/** Frames each messaging-unit link keeps in flight in each direction. */
export const MU_FRAMES: u32 = 64;
/** Frames in this processor's pool: local links, frames being processed, residual copies. */
export const FRAME_POOL_SLOTS: u32 = 1024;

let framePool: Pool | null = null;

// Frames across a messaging unit travel trimmed: the sender writes the frame's 8-byte words up to its last non-zero
// one, and every receiver zeroes a frame before it gives the frame back to its free queue (and at start), so the
// words not written are zero on the far side as they were on the near one. A 4 KiB request with one segment is 8
// bus writes instead of 16, a reply 6.
function frameWrittenBytes(frame: usize): u32 {
  let bytes = FRAME_BYTES;
  while (bytes > 8 && load<u64>(frame + <usize>bytes - 8) == 0) bytes -= 8;
  return bytes;
}

function frameWrite(target: u64, frame: usize): void {
  const bytes = frameWrittenBytes(frame);
  for (let offset: u32 = 0; offset < bytes; offset += 8) busWrite64(target + offset, load<u64>(frame + offset));
}

export function framesInit(): void {
  framePool = new Pool("frames", FRAME_POOL_SLOTS, FRAME_BYTES, 16);
}

export function frames(): Pool { return framePool!; }

export abstract class Link {
  sentCount: u64 = 0;
  receivedCount: u64 = 0;
  refusedCount: u64 = 0; // send() found no room
  badFrameCount: u64 = 0; // frame addresses from the peer that were not ours

  constructor(readonly peer: u32) {}

  /** Copies the frame at `frame` to the peer; false (nothing sent) when there is no room now. */
  abstract send(frame: usize): bool;

  /** A send through a task on this processor: the frame copied into a pool slot, posted to `task` as
   *  `out.set(kind, from, slot, arg)`; false (slot given back, counted refused) when either has no room. */
  protected postCopy(frame: usize, task: u32, out: Msg, kind: MsgKind, from: u32, arg: u32): bool {
    const slot = frames().acquire();
    if (slot == POOL_NONE) {
      this.refusedCount += 1;
      return false;
    }
    memory.copy(frames().address(slot), frame, FRAME_BYTES);
    if (!post(task, out.set(kind, from, slot, arg))) {
      frames().release(slot);
      this.refusedCount += 1;
      return false;
    }
    this.sentCount += 1;
    return true;
  }

  /** Copies the next frame that arrived from the peer into `into`; false when none is waiting. Polling links only. */
  receive(into: usize): bool { return false; }

  /** Added to a peer's data addresses to reach them from this processor's bus. */
  dataWindowBase(): u64 { return 0; }

  /** A link to another board (rta/fabric_link.ts): its data lies in [dataFloor, dataLimit) of the peer's addresses. */
  isRemote(): bool { return false; }
  /** A remote link whose data is reached only by RDMA, through this board's buffers (rta/bounce.ts), not a window. */
  bounces(): bool { return false; }
  /** Whether the peer's data can be reached yet (a remote link: once its window is open). */
  ready(): bool { return true; }
  dataFloor(): u64 { return 0; }
  dataLimit(): u64 { return 0; }
}

/** Agents on one processor: a pool slot and a Frame message to the peer task. */
export class LocalLink extends Link {
  private readonly out: Msg = new Msg();

  constructor(peer: u32, private readonly peerTask: u32, private readonly selfTask: u32) { super(peer); }

  send(frame: usize): bool {
    return this.postCopy(frame, this.peerTask, this.out, MsgKind.Frame, this.selfTask, 0);
  }
}

/** The host's side of one storage processor's messaging unit (an iop-bridge function's BAR 0 and BAR 2). */
export class MuHostLink extends Link {
  private readonly outboundFrames: usize; // this processor's RAM, where the peer writes its frames to us
  private windowSizeBytes: u64 = 0;

  constructor(peer: u32, private readonly muBase: u64, private readonly windowBase: u64, windowSizeBytes: u64) {
    super(peer);
    this.windowSizeBytes = windowSizeBytes;
    this.outboundFrames = carve(MU_FRAMES * FRAME_BYTES, 64);
  }

  /** Gives the unit our free outbound frames and unmasks its outbound-post interrupt. */
  start(): void {
    memory.fill(this.outboundFrames, 0, MU_FRAMES * FRAME_BYTES); // trimmed frames land on zeroes
    for (let i: u32 = 0; i < MU_FRAMES; i++) {
      busWrite32(this.muBase + MU_HOST_OUTBOUND_PORT, <u32>(this.outboundFrames + <usize>i * FRAME_BYTES));
    }
    busWrite32(this.muBase + MU_HOST_OIMR, ~MU_OISR_OUTBOUND_POST);
  }

  send(frame: usize): bool {
    const address = busRead32(this.muBase + MU_HOST_INBOUND_PORT);
    if (address == FRAME_ADDRESS_NONE) {
      this.refusedCount += 1;
      return false;
    }
    if ((address & 7) != 0 || <u64>address + FRAME_BYTES > this.windowSizeBytes) {
      this.badFrameCount += 1; // not a frame the peer could have given: drop it, never write there
      return false;
    }
    frameWrite(this.windowBase + address, frame);
    busWrite32(this.muBase + MU_HOST_INBOUND_PORT, address);
    this.sentCount += 1;
    return true;
  }

  receive(into: usize): bool {
    // Bounded by the outbound post queue's size: every pass pops one entry or stops.
    for (let attempts: u32 = 0; attempts < MU_QUEUE_ENTRIES; attempts++) {
      const address = busRead32(this.muBase + MU_HOST_OUTBOUND_PORT);
      if (address == FRAME_ADDRESS_NONE) return false;
      const offset = <usize>address - this.outboundFrames;
      if (<usize>address < this.outboundFrames || offset >= <usize>(MU_FRAMES * FRAME_BYTES) || offset % FRAME_BYTES != 0) {
        this.badFrameCount += 1; // not one of ours: ignore it and do not return it to the free queue
        continue;
      }
      memory.copy(into, <usize>address, FRAME_BYTES);
      memory.fill(<usize>address, 0, FRAME_BYTES); // the next frame written here may be trimmed
      busWrite32(this.muBase + MU_HOST_OUTBOUND_PORT, address);
      this.receivedCount += 1;
      return true;
    }
    return false;
  }
}

/** A storage processor's own messaging unit: frames from the host arrive here, replies go out through it. */
export class MuLocalLink extends Link {
  private readonly muBase: u64;
  private readonly outboundBase: u64;
  private readonly queues: usize; // the four queues, in this processor's RAM
  private readonly inboundFrames: usize;
  // The queue pointers this side owns (hardware.md: RW on the local side; only this link writes them), kept here
  // rather than read back over the bus; and the host-advanced heads as last read.
  private outboundFreeTail: u32 = 0; // OFTPR
  private outboundPostHead: u32 = 0; // OPHPR
  private inboundPostTail: u32 = 0; // IPTPR
  private inboundFreeHead: u32 = 0; // IFHPR
  private outboundFreeHeadSeen: u32 = 0; // OFHPR as last read
  private inboundPostHeadSeen: u32 = 0; // IPHPR as last read

  constructor(peer: u32, bootInfo: usize) {
    super(peer);
    this.muBase = bootInfoMuLocalBase(bootInfo);
    this.outboundBase = bootInfoOutboundWindowBase(bootInfo);
    assert(this.muBase != 0, "MuLocalLink on a processor without a messaging unit");
    this.queues = carve(4 * MU_QUEUE_ENTRIES * 4, 4096);
    this.inboundFrames = carve(MU_FRAMES * FRAME_BYTES, 64);
  }

  dataWindowBase(): u64 { return this.outboundBase; }

  /** Sets up the queues, hands the host our free inbound frames, and unmasks the inbound-post interrupt on `vector`. */
  start(vector: u32): void {
    busWrite32(this.muBase + MU_LOCAL_QBAR, <u32>this.queues);
    busWrite32(this.muBase + MU_LOCAL_MUCR, MU_MUCR_ENABLE | (MU_QUEUE_SIZE_CODE << 1));
    busWrite32(this.muBase + MU_LOCAL_LVEC, vector);
    const free = this.queue(MU_QUEUE_INBOUND_FREE);
    memory.fill(this.inboundFrames, 0, MU_FRAMES * FRAME_BYTES); // trimmed frames land on zeroes
    for (let i: u32 = 0; i < MU_FRAMES; i++) store<u32>(free + <usize>i * 4, <u32>(this.inboundFrames + <usize>i * FRAME_BYTES));
    // The pointers as the unit has them after the writes above (every other one is 0 after MUCR's enable).
    this.outboundFreeTail = busRead32(this.muBase + MU_LOCAL_OFTPR) % MU_QUEUE_ENTRIES;
    this.outboundPostHead = busRead32(this.muBase + MU_LOCAL_OPHPR) % MU_QUEUE_ENTRIES;
    this.inboundPostTail = busRead32(this.muBase + MU_LOCAL_IPTPR) % MU_QUEUE_ENTRIES;
    this.outboundFreeHeadSeen = this.outboundFreeTail;
    this.inboundPostHeadSeen = this.inboundPostTail;
    this.inboundFreeHead = MU_FRAMES;
    busWrite32(this.muBase + MU_LOCAL_IFHPR, MU_FRAMES);
    busWrite32(this.muBase + MU_LOCAL_IIMR, ~MU_IISR_INBOUND_POST);
  }

  send(frame: usize): bool {
    const tail = this.outboundFreeTail;
    // OFHPR is read only when the free frames seen last time are used up.
    if (tail == this.outboundFreeHeadSeen) this.outboundFreeHeadSeen = busRead32(this.muBase + MU_LOCAL_OFHPR);
    const head = this.outboundFreeHeadSeen;
    if (tail == head || head >= MU_QUEUE_ENTRIES) {
      this.refusedCount += 1;
      return false;
    }
    const address = atomic.load<u32>(this.queue(MU_QUEUE_OUTBOUND_FREE) + <usize>tail * 4);
    this.outboundFreeTail = (tail + 1) % MU_QUEUE_ENTRIES;
    busWrite32(this.muBase + MU_LOCAL_OFTPR, this.outboundFreeTail);
    if ((address & 7) != 0) {
      this.badFrameCount += 1;
      return false;
    }
    frameWrite(this.outboundBase + address, frame);
    const postHead = this.outboundPostHead;
    atomic.store<u32>(this.queue(MU_QUEUE_OUTBOUND_POST) + <usize>postHead * 4, address);
    this.outboundPostHead = (postHead + 1) % MU_QUEUE_ENTRIES;
    busWrite32(this.muBase + MU_LOCAL_OPHPR, this.outboundPostHead);
    this.sentCount += 1;
    return true;
  }

  receive(into: usize): bool {
    for (let attempts: u32 = 0; attempts < MU_QUEUE_ENTRIES; attempts++) {
      const tail = this.inboundPostTail;
      if (tail == this.inboundPostHeadSeen) {
        // The posts seen last time are used up. Clear the status first, then read the head: a frame posted after
        // this read raises the status again, so none is left unnoticed.
        busWrite32(this.muBase + MU_LOCAL_IISR, MU_IISR_INBOUND_POST);
        this.inboundPostHeadSeen = busRead32(this.muBase + MU_LOCAL_IPHPR);
      }
      const head = this.inboundPostHeadSeen;
      if (tail == head || head >= MU_QUEUE_ENTRIES) return false;
      const address = atomic.load<u32>(this.queue(MU_QUEUE_INBOUND_POST) + <usize>tail * 4);
      this.inboundPostTail = (tail + 1) % MU_QUEUE_ENTRIES;
      busWrite32(this.muBase + MU_LOCAL_IPTPR, this.inboundPostTail);
      const offset = <usize>address - this.inboundFrames;
      if (<usize>address < this.inboundFrames || offset >= <usize>(MU_FRAMES * FRAME_BYTES) || offset % FRAME_BYTES != 0) {
        this.badFrameCount += 1;
        continue;
      }
      memory.copy(into, <usize>address, FRAME_BYTES);
      memory.fill(<usize>address, 0, FRAME_BYTES); // the next frame written here may be trimmed
      this.returnInbound(<u32>address);
      this.receivedCount += 1;
      return true;
    }
    return false;
  }

  private returnInbound(address: u32): void {
    const head = this.inboundFreeHead;
    atomic.store<u32>(this.queue(MU_QUEUE_INBOUND_FREE) + <usize>head * 4, address);
    this.inboundFreeHead = (head + 1) % MU_QUEUE_ENTRIES;
    busWrite32(this.muBase + MU_LOCAL_IFHPR, this.inboundFreeHead);
  }

  @inline private queue(which: u32): usize { return this.queues + <usize>which * MU_QUEUE_ENTRIES * 4; }
}
