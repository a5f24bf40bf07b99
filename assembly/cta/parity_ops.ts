// RAID-5 parity operations, run by the CTA: a write (or an unmap, written as zeros) over one window of one stripe
// row, and a read of a failed member rebuilt from the others. A window is at most one large buffer of every member's
// chunk (64 KiB); parity is byte-wise, so windows are independent and an operation holds the lock of its own window
// only. Each operation has one buffer per member ("columns").
//
// Write, in order: wait for the window (earlier operations on it finish first) and the columns. Parity changes only
// over the blocks the write touches in some member (dLo..dHi, at most the window); over those, read what the parity
// needs and the write does not bring (each data column it covers only in part, or every other column when the failed
// member's old data must be rebuilt); lay the new data over the columns; parity = XOR of the data columns; write the
// new data and the parity (a failed member is skipped). So a full-row write reads nothing, and a 4 KiB write reads
// 4 KiB of each other data member (reconstruct-write: with the default three members that is one read). A read that
// fails before anything was written re-plans with the member failed; a write that fails is done, degraded.
// Every XOR goes to the XOR task (assembly/xor/: the XOR engine on the bus, or its firmware loop) as an XorRequest;
// the operation waits in Computing for the XorDone. Without an XOR task, or when it answers Fault or Busy, or no SGL
// block is free, the operation XORs in its own loop (xorInline) rather than fail: parity is never optional.
import { FrameFunction, FrameStatus } from "../board/frame";
import { bufferPool, sgls } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { POOL_NONE } from "../kernel/pool";
import { BUFFER_CLASS_LARGE, BUFFER_LARGE_BYTES } from "../config";
import { Extent } from "../volumes/extent";
import { raid5DataIndex, raid5DataMember, raid5MemberLba, raid5ParityMember, raid5RowBlocks } from "../volumes/raid5";
import { MEMBERS_MAX, Volume, volumeAt, VolumeState } from "../volumes/volume";
import { Msg, MsgKind } from "../kernel/msg";
import { post } from "../kernel/scheduler";
import { SGL_NONE, sglSegmentAddress, sglSegmentLengthBytes } from "../kernel/sgl";
import { CtaTask } from "./cta";
import {
  OP_BYTES, opColumn, opDHi, opDLo, opFailed, opKind, opOutstanding, opRHi, opRLo, opReplan, opRow, opSeq, opService,
  opSetColumn, opSetDHi, opSetDLo, opSetFailed, opSetKind, opSetOutstanding, opSetRHi, opSetRLo, opSetReplan,
  opSetRow, opSetSeq, opSetService, opSetState, opSetStatus, opSetStep, opSetTarget, opSetVolume, opSetWinHi,
  opSetWinLo, opState, opStatus, opStep, opTarget, opVolume, opWinHi, opWinLo,
} from "./parity_op_record";

export const OP_NONE: u32 = 0xffff;
export const OPS_MAX: u32 = 64;
const MEMBER_NONE: u32 = 0xff;
const XOR_STEP_REBUILT: u8 = 1; // a write's failed member's old data is rebuilt: lay the new data over, then parity
const XOR_STEP_PARITY: u8 = 2; // the parity column is done: write

export enum ParityOpKind {
  Write = 0, // the requester's data
  Zero = 1, // zeros (an unmap: deallocated blocks read as zeros)
  Read = 2, // a failed member's blocks, rebuilt into the requester's buffers
  Rebuild = 3, // a window of a member being rebuilt (rebuild.ts), from the others
}

enum OpState {
  Free = 0,
  Waiting = 1, // for its window (an earlier operation on it) or its columns
  Reading = 2,
  Writing = 3,
  Computing = 4, // an XorRequest out
}

// Each operation's record: parity_op_record.ts.

export class ParityOps {
  private readonly ops: usize = carve(OPS_MAX * OP_BYTES, 16);
  private readonly extent: Extent = new Extent();
  private readonly out: Msg = new Msg();
  private nextSeq: u32 = 1;
  private active: u32 = 0;
  opsStarted: u64 = 0;
  fullRowWrites: u64 = 0; // writes that read nothing
  xorRequests: u64 = 0; // XORs the XOR task did
  inlineXors: u64 = 0; // XORs done here (no XOR task, or it answered Fault or Busy)
  xorTask: u32 = 0xffff_ffff; // set at boot when the host has one

  constructor(private readonly cta: CtaTask) {}

  /** An operation (other than a rebuild's) is on `region` of `volume`. */
  onRegion(volume: u32, region: u64, regionRows: u64): bool {
    for (let o: u32 = 0; o < OPS_MAX; o++) {
      const op = this.op(o);
      if (opState(op) != OpState.Free && opVolume(op) == volume && opRow(op) / regionRows == region) return true;
    }
    return false;
  }

  /** A free operation slot. */
  hasRoom(): bool { return this.active < OPS_MAX; }

  /** Windows per chunk: a chunk larger than one large buffer is worked in pieces of one. */
  windowsPerChunk(v: Volume): u32 { return (v.chunkBlocks + this.windowBlocks(v) - 1) / this.windowBlocks(v); }

  windowBlocks(v: Volume): u32 { return min(v.chunkBlocks, BUFFER_LARGE_BYTES / v.blockSizeBytes); }

  /** Starts the write of service `s`'s data (or zeros) that falls in `window` of stripe `row`. False: no room yet. */
  startWrite(s: u32, volume: u32, row: u64, window: u32, kind: ParityOpKind): bool {
    const v = volumeAt(volume);
    const winLo = window * this.windowBlocks(v);
    const winHi = min(winLo + this.windowBlocks(v), v.chunkBlocks);
    // The blocks of the window the write touches in any data member: parity changes there only.
    let dLo = winHi;
    let dHi = winLo;
    for (let j: u32 = 0; j + 1 < v.memberCount; j++) {
      const lo = this.newLo(s, v, row, j, winLo, winHi);
      const hi = this.newHi(s, v, row, j, winLo, winHi);
      if (hi <= lo) continue;
      dLo = min(dLo, lo);
      dHi = max(dHi, hi);
    }
    if (dHi <= dLo) return true; // the service has nothing in this window
    const o = this.open(s, volume, kind, row, winLo, winHi);
    if (o == OP_NONE) return false;
    opSetDLo(this.op(o), dLo);
    opSetDHi(this.op(o), dHi);
    return true;
  }

  /** Starts reads of [lba, lba + blocks) (within one data chunk) rebuilt from the other members. False: no room. */
  startRead(s: u32, volume: u32, lba: u64, blocks: u64): bool {
    const v = volumeAt(volume);
    const rowBlocks = raid5RowBlocks(v);
    const row = lba / rowBlocks;
    const j = <u32>((lba % rowBlocks) / <u64>v.chunkBlocks);
    const first = <u32>((lba % rowBlocks) % <u64>v.chunkBlocks);
    const last = first + <u32>blocks; // exclusive, within the chunk
    const w = this.windowBlocks(v);
    const needed = (last - 1) / w - first / w + 1;
    if (OPS_MAX - this.active < needed) return false;
    for (let winLo = first / w * w; winLo < last; winLo += w) {
      const o = this.open(s, volume, ParityOpKind.Read, row, winLo, min(winLo + w, v.chunkBlocks));
      const op = this.op(o);
      opSetTarget(op, raid5DataMember(v, row, j));
      opSetRLo(op, max(first, winLo));
      opSetRHi(op, min(last, winLo + w));
    }
    return true;
  }

  /** Starts the rebuild of `window` of `row` onto member `target`, for internal service `s`. False: no room. */
  startRebuild(s: u32, volume: u32, row: u64, window: u32, target: u32): bool {
    const v = volumeAt(volume);
    const winLo = window * this.windowBlocks(v);
    const o = this.open(s, volume, ParityOpKind.Rebuild, row, winLo, min(winLo + this.windowBlocks(v), v.chunkBlocks));
    if (o == OP_NONE) return false;
    opSetTarget(this.op(o), target);
    return true;
  }

  private open(s: u32, volume: u32, kind: ParityOpKind, row: u64, winLo: u32, winHi: u32): u32 {
    let o: u32 = OP_NONE;
    for (let i: u32 = 0; i < OPS_MAX; i++) if (opState(this.op(i)) == OpState.Free) { o = i; break; }
    if (o == OP_NONE) return OP_NONE;
    const op = this.op(o);
    memory.fill(op, 0, OP_BYTES);
    opSetState(op, OpState.Waiting);
    opSetKind(op, kind);
    opSetService(op, s);
    opSetVolume(op, volume);
    opSetFailed(op, MEMBER_NONE);
    opSetRow(op, row);
    opSetWinLo(op, winLo);
    opSetWinHi(op, winHi);
    opSetSeq(op, this.nextSeq);
    this.nextSeq += 1;
    for (let m: u32 = 0; m < MEMBERS_MAX; m++) opSetColumn(op, m, POOL_NONE);
    this.active += 1;
    this.opsStarted += 1;
    this.cta.serviceHold(s);
    return o;
  }

  /** Moves every waiting operation that can go. True when one moved. */
  poll(): bool {
    if (this.active == 0) return false;
    let moved = false;
    for (let o: u32 = 0; o < OPS_MAX; o++) {
      const op = this.op(o);
      if (opState(op) != OpState.Waiting || !this.windowFree(o)) continue;
      // A write's region is marked in the write-intent bitmap on the disks first (write_intent.ts).
      const kind = opKind(op);
      if ((kind == ParityOpKind.Write || kind == ParityOpKind.Zero) && !this.cta.intent.ready(opVolume(op), opRow(op))) continue;
      // A window a rebuild has written but no superblock names yet: the write would include the member, and a reset
      // would rebuild it from parity again. It waits for the checkpoint (rebuild.ts, "Durable checkpoint").
      if ((kind == ParityOpKind.Write || kind == ParityOpKind.Zero) && this.awaitsCheckpoint(o)) continue;
      if (!this.takeColumns(o)) continue;
      this.plan(o);
      moved = true;
    }
    return moved;
  }

  // Operation `o`'s window is rebuilt but not yet durable: true, and the checkpoint is asked for.
  private awaitsCheckpoint(o: u32): bool {
    const op = this.op(o);
    const volume = opVolume(op);
    const v = volumeAt(volume);
    if (!v.rebuiltNotDurable(opRow(op), opWinLo(op) / this.windowBlocks(v))) return false;
    if (!this.cta.metadata.settling(volume)) this.cta.metadata.update(volume);
    return true;
  }

  /** A part of operation `o` on `member` was answered. */
  partDone(o: u32, member: u32, status: FrameStatus): void {
    const op = this.op(o);
    opSetOutstanding(op, opOutstanding(op) - 1);
    if (status != FrameStatus.Ok) {
      const v = volumeAt(opVolume(op));
      // A read whose member has just failed: plan again without it (nothing was written yet). A medium error on a
      // member that stays in service fails the operation.
      if (opState(op) == OpState.Reading && member < v.memberCount && v.member(member).failed) opSetReplan(op, true);
      else if (opState(op) == OpState.Reading) this.fail(o, status);
      else if (v.state == VolumeState.Failed || opKind(op) == ParityOpKind.Rebuild) this.fail(o, FrameStatus.DeviceError);
    }
    if (opOutstanding(op) != 0) return;
    if (opState(op) == OpState.Reading) {
      if (opReplan(op)) {
        opSetReplan(op, false);
        this.plan(o);
      } else {
        this.afterReads(o);
      }
    } else {
      this.finish(o);
    }
  }

  // No earlier operation holds or waits for the same window of the same row.
  private windowFree(o: u32): bool {
    const op = this.op(o);
    const seq = opSeq(op);
    for (let i: u32 = 0; i < OPS_MAX; i++) {
      const other = this.op(i);
      if (i == o || opState(other) == OpState.Free || opSeq(other) > seq) continue;
      if (opVolume(other) == opVolume(op) && opRow(other) == opRow(op) && opWinLo(other) == opWinLo(op)) return false;
    }
    return true;
  }

  // One large buffer per member, all or none. Short of buffers, the CTA is woken by the next release of one.
  private takeColumns(o: u32): bool {
    const op = this.op(o);
    const n = volumeAt(opVolume(op)).memberCount;
    const pool = bufferPool(BUFFER_CLASS_LARGE);
    if (this.cta.freeParts() < n) return false;
    if (pool.freeCount < n) {
      const one = pool.acquireOrWait(this.cta.index);
      if (one != POOL_NONE) pool.release(one);
      return false;
    }
    for (let m: u32 = 0; m < n; m++) opSetColumn(op, m, pool.acquire());
    return true;
  }

  // Reads what the operation needs, for the members as they are now; straight on when it needs none.
  private plan(o: u32): void {
    const op = this.op(o);
    const v = volumeAt(opVolume(op));
    const row = opRow(op);
    const winLo = opWinLo(op);
    const winHi = opWinHi(op);
    const f = v.downMember(row, winLo / this.windowBlocks(v));
    if (f > MEMBERS_MAX) { this.fail(o, FrameStatus.DeviceError); this.finishIfIdle(o); return; }
    opSetFailed(op, f == MEMBERS_MAX ? MEMBER_NONE : f);
    opSetState(op, OpState.Reading);
    const kind = opKind(op);
    if (kind == ParityOpKind.Read || kind == ParityOpKind.Rebuild) {
      const target = opTarget(op);
      // Rebuilding needs every other member.
      if (f != MEMBERS_MAX && f != target) { this.fail(o, FrameStatus.DeviceError); this.finishIfIdle(o); return; }
      // The write hole: a row written when the volume stopped, not resynchronized before the member failed, may hold
      // parity that disagrees with the data; what it rebuilds may be wrong, so the read ends MEDIUM ERROR instead.
      if (kind == ParityOpKind.Read && this.suspect(v, opVolume(op), row)) { this.fail(o, FrameStatus.MediumError); this.finishIfIdle(o); return; }
      const lo = kind == ParityOpKind.Read ? opRLo(op) : winLo;
      const hi = kind == ParityOpKind.Read ? opRHi(op) : winHi;
      for (let m: u32 = 0; m < v.memberCount; m++) {
        if (m != target && !this.read(o, v, m, lo, hi)) return;
      }
    } else {
      const p = raid5ParityMember(v, row);
      const rebuild = this.mustRebuild(o, v, f, p);
      const s = opService(op);
      for (let j: u32 = 0; j + 1 < v.memberCount; j++) {
        const m = raid5DataMember(v, row, j);
        if (m == f || f == p) continue; // without parity to write, nothing need be read
        if ((!this.covers(o, v, j) || rebuild) && !this.read(o, v, m, opDLo(op), opDHi(op))) return;
      }
      if (rebuild && !this.read(o, v, p, opDLo(op), opDHi(op))) return;
      if (opOutstanding(op) == 0 && f == MEMBERS_MAX) this.fullRowWrites += 1;
    }
    if (opOutstanding(op) == 0) this.afterReads(o);
  }

  /**
   * `row` of `volume` may hold parity that disagrees with its data: dirty when the volume stopped, and a member failed
   * at run time before it was resynchronized. (A member already down at boot is not counted: the bitmap then names
   * every region written in the last tick before the stop, writes in flight or not, and failing all those reads would
   * leave a volume stopped after writes and booted degraded unreadable there.)
   */
  suspect(v: Volume, volume: u32, row: u64): bool {
    return v.holeOpen && v.resyncPending && this.cta.intent.isDirty(volume, row);
  }

  // The failed member is a data member whose old data the write does not wholly replace: rebuild it from the others.
  private mustRebuild(o: u32, v: Volume, f: u32, p: u32): bool {
    if (f == MEMBERS_MAX || f == p) return false;
    return !this.covers(o, v, raid5DataIndex(v, opRow(this.op(o)), f));
  }

  // A write brings data chunk `j` new over the whole of the part its parity changes (dLo..dHi).
  private covers(o: u32, v: Volume, j: u32): bool {
    const op = this.op(o);
    const s = opService(op);
    const row = opRow(op);
    const winLo = opWinLo(op);
    const winHi = opWinHi(op);
    return this.newLo(s, v, row, j, winLo, winHi) <= opDLo(op) && this.newHi(s, v, row, j, winLo, winHi) >= opDHi(op);
  }

  private read(o: u32, v: Volume, m: u32, lo: u32, hi: u32): bool {
    const op = this.op(o);
    return this.io(o, v, m, FrameFunction.Read, lo, hi, this.column(op, m) + <usize>(lo - opWinLo(op)) * v.blockSizeBytes);
  }

  private io(o: u32, v: Volume, m: u32, fn: u32, lo: u32, hi: u32, address: usize): bool {
    const op = this.op(o);
    const member = v.member(m);
    const e = this.extent;
    e.member = m;
    e.processor = member.processor;
    e.disk = member.disk;
    e.lba = raid5MemberLba(v, opRow(op), <u64>lo);
    e.blocks = <u64>(hi - lo);
    if (!this.cta.partAddFlat(opService(op), o, fn, e, address)) {
      this.fail(o, FrameStatus.Busy);
      this.finishIfIdle(o);
      return false;
    }
    opSetOutstanding(op, opOutstanding(op) + 1);
    return true;
  }

  // The reads are in: the XOR this operation needs, then afterXor.
  private afterReads(o: u32): void {
    const op = this.op(o);
    if (opStatus(op) != FrameStatus.Ok) { this.finish(o); return; }
    const v = volumeAt(opVolume(op));
    const bytes = v.blockSizeBytes;
    const winLo = opWinLo(op);
    const windowBytes = <u64>(opWinHi(op) - winLo) * bytes;
    const kind = opKind(op);
    if (kind == ParityOpKind.Read) {
      const rLo = opRLo(op);
      this.xor(o, v, opTarget(op), <usize>(rLo - winLo) * bytes, <u64>(opRHi(op) - rLo) * bytes);
    } else if (kind == ParityOpKind.Rebuild) {
      this.xor(o, v, opTarget(op), 0, windowBytes);
    } else {
      const f = opFailed(op);
      const p = raid5ParityMember(v, opRow(op));
      if (this.mustRebuild(o, v, f == MEMBER_NONE ? MEMBERS_MAX : f, p)) {
        opSetStep(op, XOR_STEP_REBUILT);
        const dLo = opDLo(op);
        this.xor(o, v, f, <usize>(dLo - winLo) * bytes, <u64>(opDHi(op) - dLo) * bytes);
      } else {
        this.overlayAndParity(o, v);
      }
    }
  }

  // A write: the new data over the columns, then the parity column (none when the parity member is down).
  private overlayAndParity(o: u32, v: Volume): void {
    const op = this.op(o);
    const s = opService(op);
    const bytes = v.blockSizeBytes;
    const row = opRow(op);
    const winLo = opWinLo(op);
    const winHi = opWinHi(op);
    const sgl = this.cta.serviceSgl(s);
    for (let j: u32 = 0; j + 1 < v.memberCount; j++) {
      const lo = this.newLo(s, v, row, j, winLo, winHi);
      const hi = this.newHi(s, v, row, j, winLo, winHi);
      if (hi <= lo) continue;
      const dest = this.column(op, raid5DataMember(v, row, j)) + <usize>(lo - winLo) * bytes;
      const length = <u64>(hi - lo) * bytes;
      if (opKind(op) == ParityOpKind.Zero) memory.fill(dest, 0, <usize>length);
      else sgls().copyFlat(sgl, (this.volumeLba(v, row, j, lo) - this.cta.serviceLba(s)) * bytes, dest, length, false);
    }
    const p = raid5ParityMember(v, row);
    opSetStep(op, XOR_STEP_PARITY);
    const dLo = opDLo(op);
    if (opFailed(op) != p) this.xor(o, v, p, <usize>(dLo - winLo) * bytes, <u64>(opDHi(op) - dLo) * bytes);
    else this.afterXor(o);
  }

  // The XOR asked for is in its column.
  private afterXor(o: u32): void {
    const op = this.op(o);
    const v = volumeAt(opVolume(op));
    const s = opService(op);
    const bytes = v.blockSizeBytes;
    const row = opRow(op);
    const winLo = opWinLo(op);
    const winHi = opWinHi(op);
    const kind = opKind(op);
    if (kind == ParityOpKind.Read) {
      const target = opTarget(op);
      const rLo = opRLo(op);
      const length = <u64>(opRHi(op) - rLo) * bytes;
      const volumeLba = row * raid5RowBlocks(v) + <u64>raid5DataIndex(v, row, target) * <u64>v.chunkBlocks + rLo;
      sgls().copyFlat(this.cta.serviceSgl(s), (volumeLba - this.cta.serviceLba(s)) * bytes,
        this.column(op, target) + <usize>(rLo - winLo) * bytes, length, true);
      opSetState(op, OpState.Writing);
      this.finish(o);
      return;
    }
    opSetState(op, OpState.Writing);
    if (kind == ParityOpKind.Rebuild) {
      const target = opTarget(op);
      if (this.io(o, v, target, FrameFunction.Write, winLo, winHi, this.column(op, target)) && opOutstanding(op) == 0) this.finish(o);
      return;
    }
    if (opStep(op) == XOR_STEP_REBUILT) {
      opSetState(op, OpState.Computing);
      this.overlayAndParity(o, v);
      return;
    }
    const f = opFailed(op);
    const p = raid5ParityMember(v, row);
    const fn = this.cta.serviceFunction(s) == FrameFunction.WriteFua ? FrameFunction.WriteFua : FrameFunction.Write;
    for (let j: u32 = 0; j + 1 < v.memberCount; j++) {
      const m = raid5DataMember(v, row, j);
      const lo = this.newLo(s, v, row, j, winLo, winHi);
      const hi = this.newHi(s, v, row, j, winLo, winHi);
      if (hi <= lo || m == f) continue;
      if (!this.io(o, v, m, fn, lo, hi, this.column(op, m) + <usize>(lo - winLo) * bytes)) return;
    }
    const dLo = opDLo(op);
    if (p != f && !this.io(o, v, p, fn, dLo, opDHi(op), this.column(op, p) + <usize>(dLo - winLo) * bytes)) return;
    if (opOutstanding(op) == 0) this.finish(o);
  }

  // Column `dest` = XOR of every other member's column over [at, at + length): by the XOR task, or here.
  private xor(o: u32, v: Volume, dest: u32, at: usize, length: u64): void {
    const op = this.op(o);
    opSetState(op, OpState.Computing);
    if (this.xorTask != 0xffff_ffff) {
      const sgl = sgls().create();
      if (sgl != SGL_NONE) {
        let ok = sgls().append(sgl, <u64>(this.column(op, dest) + at), <u32>length);
        for (let m: u32 = 0; m < v.memberCount && ok; m++) {
          if (m != dest) ok = sgls().append(sgl, <u64>(this.column(op, m) + at), <u32>length);
        }
        this.out.set(MsgKind.XorRequest, this.cta.index, v.memberCount - 1, 0);
        this.out.c = sgl;
        this.out.e = <u64>o;
        if (ok && post(this.xorTask, this.out)) {
          this.xorRequests += 1;
          return;
        }
        sgls().release(sgl);
      }
    }
    this.xorInline(op, v, dest, at, length);
    this.afterXor(o);
  }

  /** XorDone from the XOR task. Fault or Busy: the operation XORs here instead. */
  onXorDone(msg: Msg): void {
    const o = <u32>msg.e;
    const op = this.op(o);
    assert(opState(op) == OpState.Computing, "parity op: XorDone for an operation not computing");
    // The request's own fields, from the SGL: destination column, offset, length.
    const sgl = msg.c;
    const count = sgls().segmentCount(sgl);
    const length = <u64>sglSegmentLengthBytes(sgls().segment(sgl, 0));
    const v = volumeAt(opVolume(op));
    if (msg.a != 0) {
      // Find which column the destination is, and where in it.
      const destination = <usize>sglSegmentAddress(sgls().segment(sgl, 0));
      let dest: u32 = MEMBERS_MAX;
      for (let m: u32 = 0; m < v.memberCount; m++) {
        const column = this.column(op, m);
        if (destination >= column && destination < column + BUFFER_LARGE_BYTES) { dest = m; break; }
      }
      assert(dest != MEMBERS_MAX && count == v.memberCount, "parity op: XorDone for another request");
      this.xorInline(op, v, dest, destination - this.column(op, dest), length);
    }
    sgls().release(sgl);
    this.afterXor(o);
  }

  // Column `dest` = XOR of every other member's column, over [at, at + length), in this task.
  private xorInline(op: usize, v: Volume, dest: u32, at: usize, length: u64): void {
    this.inlineXors += 1;
    const target = this.column(op, dest) + at;
    let first = true;
    for (let m: u32 = 0; m < v.memberCount; m++) {
      if (m == dest) continue;
      const source = this.column(op, m) + at;
      if (first) memory.copy(target, source, <usize>length);
      else for (let i: usize = 0; i < <usize>length; i += 8) store<u64>(target + i, load<u64>(target + i) ^ load<u64>(source + i));
      first = false;
    }
  }

  private fail(o: u32, status: FrameStatus): void {
    const op = this.op(o);
    if (opStatus(op) == FrameStatus.Ok) opSetStatus(op, status);
  }

  private finishIfIdle(o: u32): void { if (opOutstanding(this.op(o)) == 0) this.finish(o); }

  private finish(o: u32): void {
    const op = this.op(o);
    if (opState(op) == OpState.Free) return;
    const v = volumeAt(opVolume(op));
    const s = opService(op);
    let status = opStatus(op);
    if (status == FrameStatus.Ok && v.state == VolumeState.Failed) status = FrameStatus.DeviceError;
    let moved: u64 = 0;
    if (status == FrameStatus.Ok) {
      const kind = opKind(op);
      if (kind == ParityOpKind.Read) moved = <u64>(opRHi(op) - opRLo(op)) * v.blockSizeBytes;
      else if (kind == ParityOpKind.Write) {
        const row = opRow(op);
        for (let j: u32 = 0; j + 1 < v.memberCount; j++) {
          const lo = this.newLo(s, v, row, j, opWinLo(op), opWinHi(op));
          const hi = this.newHi(s, v, row, j, opWinLo(op), opWinHi(op));
          if (hi > lo) moved += <u64>(hi - lo) * v.blockSizeBytes;
        }
      }
    }
    const pool = bufferPool(BUFFER_CLASS_LARGE);
    for (let m: u32 = 0; m < MEMBERS_MAX; m++) {
      const column = opColumn(op, m);
      if (column != POOL_NONE) pool.release(column);
    }
    opSetState(op, OpState.Free);
    this.active -= 1;
    this.cta.serviceRelease(s, status, moved);
  }

  // Where service `s`'s range starts and ends in data chunk `j` of `row`, clipped to [winLo, winHi) (blocks into the
  // chunk); empty when hi <= lo.
  private newLo(s: u32, v: Volume, row: u64, j: u32, winLo: u32, winHi: u32): u32 {
    const base = this.volumeLba(v, row, j, 0);
    const lba = this.cta.serviceLba(s);
    return lba <= base + winLo ? winLo : <u32>min(lba - base, <u64>winHi);
  }

  private newHi(s: u32, v: Volume, row: u64, j: u32, winLo: u32, winHi: u32): u32 {
    const base = this.volumeLba(v, row, j, 0);
    const end = this.cta.serviceLba(s) + this.cta.serviceBlocks(s);
    return end >= base + winHi ? winHi : end <= base + winLo ? winLo : <u32>(end - base);
  }

  @inline private volumeLba(v: Volume, row: u64, j: u32, offset: u32): u64 {
    return row * raid5RowBlocks(v) + <u64>j * <u64>v.chunkBlocks + offset;
  }

  @inline private column(op: usize, m: u32): usize {
    const column = opColumn(op, m);
    assert(column != POOL_NONE, "parity op: no column");
    return bufferPool(BUFFER_CLASS_LARGE).address(column);
  }

  @inline private op(o: u32): usize { assert(o < OPS_MAX); return this.ops + <usize>o * OP_BYTES; }
}
