// A stand-in for a transport (TTS) in the test build: it builds SGLs over pool buffers, sends ServiceIo requests to
// the CTA, and records each ServiceIoDone, so tests can move data through CTA → RTA → DDM → controller and back.
import { bufferPool, sgls } from "../../assembly/kernel/buffers";
import { Msg, MsgKind } from "../../assembly/kernel/msg";
import { POOL_NONE } from "../../assembly/kernel/pool";
import { post } from "../../assembly/kernel/scheduler";
import { SGL_NONE } from "../../assembly/kernel/sgl";
import { RunResult, Task } from "../../assembly/kernel/task";

export const CLIENT_REQUESTS_MAX: u32 = 64;
export const CLIENT_BUFFERS_MAX: u32 = 32; // per request
export const CLIENT_PENDING: u32 = 0xff;
export const CLIENT_NONE: u32 = 0xffff_ffff;

export class ClientTask extends Task {
  ctaTask: u32 = 0;
  private readonly out: Msg = new Msg();
  readonly inUse: StaticArray<bool> = new StaticArray<bool>(CLIENT_REQUESTS_MAX);
  readonly status: StaticArray<u32> = new StaticArray<u32>(CLIENT_REQUESTS_MAX);
  readonly bytes: StaticArray<u32> = new StaticArray<u32>(CLIENT_REQUESTS_MAX);
  readonly sgl: StaticArray<u32> = new StaticArray<u32>(CLIENT_REQUESTS_MAX);
  readonly bufferClass: StaticArray<u32> = new StaticArray<u32>(CLIENT_REQUESTS_MAX);
  readonly bufferCount: StaticArray<u32> = new StaticArray<u32>(CLIENT_REQUESTS_MAX);
  readonly buffers: StaticArray<u32> = new StaticArray<u32>(CLIENT_REQUESTS_MAX * CLIENT_BUFFERS_MAX);
  doneCount: u32 = 0;

  constructor() { super("client", 5, CLIENT_REQUESTS_MAX * 2); }

  /** Takes `count` buffers of `bufferClass` and an SGL over them; CLIENT_NONE when anything is short. */
  prepare(bufferClass: u32, count: u32): u32 {
    if (count > CLIENT_BUFFERS_MAX) return CLIENT_NONE;
    let r: u32 = 0;
    while (r < CLIENT_REQUESTS_MAX && unchecked(this.inUse[r])) r += 1;
    if (r == CLIENT_REQUESTS_MAX) return CLIENT_NONE;
    const sgl = count == 0 ? SGL_NONE : sgls().create();
    if (count > 0 && sgl == SGL_NONE) return CLIENT_NONE;
    const pool = bufferPool(bufferClass);
    for (let i: u32 = 0; i < count; i++) {
      const index = pool.acquire();
      if (index == POOL_NONE || !sgls().append(sgl, <u64>pool.address(index), pool.slotBytes)) {
        if (index != POOL_NONE) pool.release(index);
        for (let j: u32 = 0; j < i; j++) pool.release(unchecked(this.buffers[r * CLIENT_BUFFERS_MAX + j]));
        sgls().release(sgl);
        return CLIENT_NONE;
      }
      unchecked(this.buffers[r * CLIENT_BUFFERS_MAX + i] = index);
    }
    unchecked(this.inUse[r] = true);
    unchecked(this.status[r] = CLIENT_PENDING);
    unchecked(this.bytes[r] = 0);
    unchecked(this.sgl[r] = sgl);
    unchecked(this.bufferClass[r] = bufferClass);
    unchecked(this.bufferCount[r] = count);
    return r;
  }

  /** Sends request `r` (prepared) to the CTA: fn is a FrameFunction, blockCount 0 for a flush. */
  submit(r: u32, fn: u32, lun: u32, lba: u64, blockCount: u32): bool {
    assert(r < CLIENT_REQUESTS_MAX && unchecked(this.inUse[r]), "client: request not prepared");
    this.out.set(MsgKind.ServiceIo, this.index, fn | (lun << 8), blockCount);
    this.out.c = unchecked(this.sgl[r]);
    this.out.d = lba;
    this.out.e = <u64>r;
    return post(this.ctaTask, this.out);
  }

  bufferAddress(r: u32, i: u32): usize {
    assert(r < CLIENT_REQUESTS_MAX && i < unchecked(this.bufferCount[r]));
    return bufferPool(unchecked(this.bufferClass[r])).address(unchecked(this.buffers[r * CLIENT_BUFFERS_MAX + i]));
  }

  release(r: u32): void {
    assert(r < CLIENT_REQUESTS_MAX && unchecked(this.inUse[r]), "client: release of a free request");
    assert(unchecked(this.status[r]) != CLIENT_PENDING, "client: release of a pending request");
    const pool = bufferPool(unchecked(this.bufferClass[r]));
    const count = unchecked(this.bufferCount[r]);
    for (let i: u32 = 0; i < count; i++) pool.release(unchecked(this.buffers[r * CLIENT_BUFFERS_MAX + i]));
    if (unchecked(this.sgl[r]) != SGL_NONE) sgls().release(unchecked(this.sgl[r]));
    unchecked(this.inUse[r] = false);
  }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < 16 && this.inbox.pop(this.scratch)) {
      handled += 1;
      switch (<i32>this.scratch.kind) {
        case MsgKind.ServiceIoDone: {
          const r = <u32>this.scratch.e;
          assert(r < CLIENT_REQUESTS_MAX && unchecked(this.inUse[r]), "client: completion for no request");
          assert(unchecked(this.status[r]) == CLIENT_PENDING, "client: a request answered twice");
          unchecked(this.status[r] = this.scratch.a);
          unchecked(this.bytes[r] = this.scratch.c);
          this.doneCount += 1;
          break;
        }
        default: assert(false, "client: unexpected message kind");
      }
    }
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }
}
