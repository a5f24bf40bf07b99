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

  /** Copies the next frame that arrived from the peer into `into`; false when none is waiting. Polling links only. */
  receive(into: usize): bool { return false; }

  /** Added to a peer's data addresses to reach them from this processor's bus. */
  dataWindowBase(): u64 { return 0; }
}

/** Agents on one processor: a pool slot and a Frame message to the peer task. */
export class LocalLink extends Link {
  private readonly out: Msg = new Msg();

  constructor(peer: u32, private readonly peerTask: u32, private readonly selfTask: u32) { super(peer); }

  send(frame: usize): bool {
    const slot = frames().acquire();
    if (slot == POOL_NONE) {
      this.refusedCount += 1;
      return false;
    }
    memory.copy(frames().address(slot), frame, FRAME_BYTES);
    if (!post(this.peerTask, this.out.set(MsgKind.Frame, this.selfTask, slot, 0))) {
      frames().release(slot);
      this.refusedCount += 1;
      return false;
    }
    this.sentCount += 1;
    return true;
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
    const target = this.windowBase + address;
    for (let offset: u32 = 0; offset < FRAME_BYTES; offset += 8) busWrite64(target + offset, load<u64>(frame + offset));
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
    for (let i: u32 = 0; i < MU_FRAMES; i++) store<u32>(free + <usize>i * 4, <u32>(this.inboundFrames + <usize>i * FRAME_BYTES));
    busWrite32(this.muBase + MU_LOCAL_IFHPR, MU_FRAMES);
    busWrite32(this.muBase + MU_LOCAL_IIMR, ~MU_IISR_INBOUND_POST);
  }

  send(frame: usize): bool {
    const tail = busRead32(this.muBase + MU_LOCAL_OFTPR);
    const head = busRead32(this.muBase + MU_LOCAL_OFHPR);
    if (tail == head || tail >= MU_QUEUE_ENTRIES || head >= MU_QUEUE_ENTRIES) {
      this.refusedCount += 1;
      return false;
    }
    const address = atomic.load<u32>(this.queue(MU_QUEUE_OUTBOUND_FREE) + <usize>tail * 4);
    busWrite32(this.muBase + MU_LOCAL_OFTPR, (tail + 1) % MU_QUEUE_ENTRIES);
    if ((address & 7) != 0) {
      this.badFrameCount += 1;
      return false;
    }
    const target = this.outboundBase + address;
    for (let offset: u32 = 0; offset < FRAME_BYTES; offset += 8) busWrite64(target + offset, load<u64>(frame + offset));
    const postHead = busRead32(this.muBase + MU_LOCAL_OPHPR) % MU_QUEUE_ENTRIES;
    atomic.store<u32>(this.queue(MU_QUEUE_OUTBOUND_POST) + <usize>postHead * 4, address);
    busWrite32(this.muBase + MU_LOCAL_OPHPR, (postHead + 1) % MU_QUEUE_ENTRIES);
    this.sentCount += 1;
    return true;
  }

  receive(into: usize): bool {
    // Clear the status first: a frame posted after this read raises it again, so none is left unnoticed.
    busWrite32(this.muBase + MU_LOCAL_IISR, MU_IISR_INBOUND_POST);
    for (let attempts: u32 = 0; attempts < MU_QUEUE_ENTRIES; attempts++) {
      const tail = busRead32(this.muBase + MU_LOCAL_IPTPR);
      const head = busRead32(this.muBase + MU_LOCAL_IPHPR);
      if (tail == head || tail >= MU_QUEUE_ENTRIES) return false;
      const address = atomic.load<u32>(this.queue(MU_QUEUE_INBOUND_POST) + <usize>tail * 4);
      busWrite32(this.muBase + MU_LOCAL_IPTPR, (tail + 1) % MU_QUEUE_ENTRIES);
      const offset = <usize>address - this.inboundFrames;
      if (<usize>address < this.inboundFrames || offset >= <usize>(MU_FRAMES * FRAME_BYTES) || offset % FRAME_BYTES != 0) {
        this.badFrameCount += 1;
        continue;
      }
      memory.copy(into, <usize>address, FRAME_BYTES);
      this.returnInbound(<u32>address);
      this.receivedCount += 1;
      return true;
    }
    return false;
  }

  private returnInbound(address: u32): void {
    const head = busRead32(this.muBase + MU_LOCAL_IFHPR) % MU_QUEUE_ENTRIES;
    atomic.store<u32>(this.queue(MU_QUEUE_INBOUND_FREE) + <usize>head * 4, address);
    busWrite32(this.muBase + MU_LOCAL_IFHPR, (head + 1) % MU_QUEUE_ENTRIES);
  }

  @inline private queue(which: u32): usize { return this.queues + <usize>which * MU_QUEUE_ENTRIES * 4; }
}
