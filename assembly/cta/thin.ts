// The CTA's thin layer (docs/volumes.md, "Thin provisioning"): a request on a thin volume resolves per virtual chunk
// through its chunk map (thin_map.ts). A mapped chunk becomes a child request on the pool volume, a service of the
// CTA's own whose requester is the CTA, over a slice of the parent's SGL; the pool's own type (disk, RAID 0/1/5)
// takes it from there, and the child's ServiceIoDone joins back into the parent. A read of an unmapped chunk is
// zeros. A write to one allocates: a free pool chunk, the rest of it zeroed (an unmap on the pool, which reads as
// zeros) beside the data, then the entry is made durable (pool flushed, map block written FUA to the copy that does
// not hold the durable generation) before the write is answered. Unmaps free whole chunks (durably, and the chunk is
// handed out again only once no child still uses it) and zero parts of chunks. An allocation or a free holds its
// virtual chunk until durable: other requests on it wait. Tables are carved at boot; short of room a request waits.
//
// Loading (thin_load.ts) reads the superblock and the map at boot, when the UMA asks (VolumesLoad), formatting a
// blank pool; a volume whose metadata is corrupt fails with a console line saying why.
//
// ServiceIoDone from the thin layer: a: FrameStatus; b: LbaStatus's provisioning (0 mapped, 1 deallocated); c: bytes
// moved (LbaStatus: blocks in the run); d: events (THIN_EVENT_SOFT_THRESHOLD: this write took the pool over its
// soft threshold); e: the requester's tag.
import { FrameFunction, FrameStatus } from "../board/frame";
import { BUFFER_CLASS_LARGE, BUFFER_LARGE_BYTES } from "../config";
import { bufferPool, bufferReserve, sgls } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { Msg, MsgKind } from "../kernel/msg";
import { POOL_NONE } from "../kernel/pool";
import { post } from "../kernel/scheduler";
import { SGL_NONE, sglSegmentLengthBytes } from "../kernel/sgl";
import { volumeStateLine } from "../volumes/report";
import { THIN_CHUNK_NONE, THIN_MAP_BLOCK_BYTES, THIN_MAP_ENTRIES_PER_BLOCK, thinChunkLba, thinMapBlockBlocks, thinMapCopyLba } from "../volumes/thin";
import { mapSeal } from "../volumes/thin_format";
import { Volume, volumeAt, volumesCount, VolumeState, VolumeType, VOLUMES_MAX } from "../volumes/volume";
import { CtaTask } from "./cta";
import { THIN_BUFFER_BYTES, ThinLoader } from "./thin_load";
import { ThinMap } from "./thin_map";
import {
  THIN_REQUEST_BYTES, requestActive, requestBlocked, requestBlocks, requestBytes, requestCursor, requestEvents,
  requestFlushIssued, requestFunction, requestLba, requestOutstanding, requestRequester, requestSetActive,
  requestSetBlocked, requestSetBlocks, requestSetBytes, requestSetCursor, requestSetEvents, requestSetFlushIssued,
  requestSetFunction, requestSetLba, requestSetOutstanding, requestSetRequester, requestSetSgl, requestSetStatus,
  requestSetTag, requestSetVolume, requestSgl, requestStatus, requestTag, requestVolume,
} from "./thin_request_record";
import {
  THIN_CHILD_BYTES, childBlocks, childBusy, childFunction, childLba, childOwner, childOwnerKind,
  childSetBlocks, childSetBusy, childSetFunction, childSetLba, childSetOwner, childSetOwnerKind, childSetSgl,
  childSetState, childSetVolume, childSgl, childState, childVolume,
} from "./thin_child_record";
import {
  THIN_RECORD_BYTES, recordBytes, recordChunk, recordGeneration, recordOutstanding, recordRequest, recordSetBytes,
  recordSetChunk, recordSetGeneration, recordSetOutstanding, recordSetRequest, recordSetState, recordSetStatus,
  recordSetVc, recordSetVolume, recordState, recordStatus, recordVc, recordVolume,
} from "./thin_allocation_record";
import {
  THIN_COMMIT_BYTES, commitBlock, commitCopy, commitGeneration, commitSetBlock, commitSetCopy,
  commitSetGeneration, commitSetState, commitSetVolume, commitState, commitVolume,
} from "./thin_commit_record";

export const THIN_REQUESTS_MAX: u32 = 64;
export const THIN_CHILDREN_MAX: u32 = 64;
const THIN_RECORDS_MAX: u32 = 32;
export const THIN_COMMITS_MAX: u32 = 8;
const THIN_MAP_RAM_BYTES_MAX: u64 = 8 << 20; // every thin volume's map in RAM together
const CHILDREN_PER_SEGMENT: u32 = 3; // an allocating write: data, and zeros before and after it
const COMMIT_ATTEMPTS_MAX: u32 = 3; // map writes of one block failing in a row: the volume's metadata fails
const LBA_STATUS_CHUNKS_MAX: u32 = 65536; // chunks one LbaStatus answer looks at: the initiator asks again after the run
const TAG_CHILD: u64 = 0x7468_696e_0000_0000; // "thin": children's tags
export const THIN_EVENT_SOFT_THRESHOLD: u64 = 1;

export enum ThinOwner {
  Request = 0, // a requester's data
  Record = 1, // an allocation's data and zeros
  Commit = 2, // a map block write (and the flush before it)
  Load = 3, // the loader's reads and format writes
}

enum ChildState {
  Free = 0,
  Posting = 1, // to be posted to the CTA (its inbox was full, or the CTA answered Busy)
  Sent = 2, // the CTA has it
}

enum RecordState {
  Free = 0,
  Writing = 1, // an allocation: its data and zeros are being written
  Committing = 2, // an allocation: mapped in RAM, waiting for its map block to be durable
  Freeing = 3, // a free: unmapped in RAM, waiting for durable, then for no child to use the chunk
}

enum CommitState {
  Free = 0,
  Flushing = 1, // the pool's caches, so every allocated chunk's data is durable before the map says so
  Writing = 2, // the map block, FUA
}

// The records of the tables below: thin_request_record.ts, thin_child_record.ts, thin_allocation_record.ts (Record)
// and thin_commit_record.ts.

export class ThinLayer {
  readonly maps: StaticArray<ThinMap | null> = new StaticArray<ThinMap | null>(VOLUMES_MAX);
  private readonly requests: usize = carve(THIN_REQUESTS_MAX * THIN_REQUEST_BYTES, 16);
  private readonly children: usize = carve(THIN_CHILDREN_MAX * THIN_CHILD_BYTES, 16);
  private readonly records: usize = carve(THIN_RECORDS_MAX * THIN_RECORD_BYTES, 16);
  private readonly commits: usize = carve(THIN_COMMITS_MAX * THIN_COMMIT_BYTES, 16);
  readonly buffer: usize = reservedLargeBuffer(); // THIN_BUFFER_BYTES: one large pool buffer, taken for good at boot
  private readonly out: Msg = new Msg();
  readonly loader: ThinLoader = new ThinLoader(this);
  private childrenFree: u32 = THIN_CHILDREN_MAX;
  private requestsActive: u32 = 0;
  private recordsActive: u32 = 0;
  private posting: u32 = 0; // children waiting to be posted
  private busyAt: u64 = 0; // the CTA's servicesDone when a child was last answered Busy
  commitFailures: u64 = 0;
  allocations: u64 = 0;

  constructor(private readonly cta: CtaTask) {
    let ramBytes: u64 = 0;
    for (let n: u32 = 0; n < volumesCount(); n++) {
      const v = volumeAt(n);
      if (v.type != VolumeType.Thin) continue;
      const bytes = ThinMap.bytesFor(v);
      const fits = ramBytes + bytes <= THIN_MAP_RAM_BYTES_MAX;
      if (fits) ramBytes += bytes;
      unchecked(this.maps[n] = new ThinMap(n, v, fits));
    }
  }

  ctaIndex(): u32 { return this.cta.index; }

  /** The CTA hands over a service: a thin volume's, or any LbaStatus. */
  claims(fn: u32, volume: u32): bool {
    if (fn == FrameFunction.LbaStatus) return true;
    return volume < volumesCount() && volumeAt(volume).type == VolumeType.Thin;
  }

  map(volume: u32): ThinMap {
    assert(volume < VOLUMES_MAX);
    const m = unchecked(this.maps[volume]);
    assert(m != null, "thin: no map for the volume");
    return m!;
  }

  // ---- Requests ----

  onService(msg: Msg): void {
    const fn = msg.a & 0xff;
    const volume = msg.a >> 8;
    if (fn == FrameFunction.LbaStatus) { this.lbaStatus(msg, volume); return; }
    const status = this.check(fn, volume, msg.d, <u64>msg.b, msg.c);
    if (status != FrameStatus.Ok) { this.answer(msg.source, msg.e, status, 0, 0, 0); return; }
    let r: u32 = POOL_NONE;
    for (let i: u32 = 0; i < THIN_REQUESTS_MAX; i++) if (!requestActive(this.request(i))) { r = i; break; }
    if (r == POOL_NONE) { this.answer(msg.source, msg.e, FrameStatus.Busy, 0, 0, 0); return; }
    const q = this.request(r);
    memory.fill(q, 0, THIN_REQUEST_BYTES);
    requestSetActive(q, true);
    requestSetRequester(q, msg.source);
    requestSetTag(q, msg.e);
    requestSetFunction(q, fn);
    requestSetVolume(q, volume);
    requestSetBlocks(q, fn == FrameFunction.Flush ? 0 : msg.b);
    requestSetLba(q, msg.d);
    requestSetCursor(q, msg.d);
    requestSetSgl(q, msg.c);
    this.requestsActive += 1;
    if (fn == FrameFunction.Flush) {
      // Every acknowledged write's mapping is durable already: the pool's caches are what is left.
      if (!this.childStart(ThinOwner.Request, r, FrameFunction.Flush, volumeAt(volume).poolVolume, 0, 0, SGL_NONE)) requestSetBlocked(q, true);
      else requestSetFlushIssued(q, true); // flush issued
    } else {
      this.advance(r);
    }
    this.finishIfDone(r);
  }

  private check(fn: u32, volume: u32, lba: u64, blocks: u64, sgl: u32): FrameStatus {
    if (volume >= volumesCount()) return FrameStatus.NoDisk;
    const v = volumeAt(volume);
    const m = unchecked(this.maps[volume]);
    if (m == null || !m.loaded) return FrameStatus.MediumError; // the metadata failed to load: no wrong data
    if (v.state == VolumeState.Failed) return FrameStatus.MediumError;
    if (fn == FrameFunction.Flush) return FrameStatus.Ok;
    if (lba > v.blockCount || blocks > v.blockCount - lba) return FrameStatus.IllegalRequest;
    if (fn == FrameFunction.Unmap) return FrameStatus.Ok;
    if (fn != FrameFunction.Read && fn != FrameFunction.Write && fn != FrameFunction.WriteFua) return FrameStatus.IllegalRequest;
    if (sgl == SGL_NONE || blocks == 0 || sgls().totalBytes(sgl) != blocks * <u64>v.blockSizeBytes) return FrameStatus.IllegalRequest;
    sgls().check(sgl);
    const count = sgls().segmentCount(sgl);
    for (let i: u32 = 0; i < count; i++) if (sglSegmentLengthBytes(sgls().segment(sgl, i)) % v.blockSizeBytes != 0) return FrameStatus.IllegalRequest;
    return FrameStatus.Ok;
  }

  // GET LBA STATUS's question: the provisioning status at lba and how many blocks from there share it.
  private lbaStatus(msg: Msg, volume: u32): void {
    if (volume >= volumesCount()) { this.answer(msg.source, msg.e, FrameStatus.NoDisk, 0, 0, 0); return; }
    const v = volumeAt(volume);
    const lba = msg.d;
    if (lba >= v.blockCount) { this.answer(msg.source, msg.e, FrameStatus.IllegalRequest, 0, 0, 0); return; }
    const limit = min(v.blockCount - lba, <u64>0xffff_ffff);
    if (v.type != VolumeType.Thin) { this.answer(msg.source, msg.e, FrameStatus.Ok, 0, limit, 0); return; }
    const m = unchecked(this.maps[volume]);
    if (m == null || !m.loaded) { this.answer(msg.source, msg.e, FrameStatus.MediumError, 0, 0, 0); return; }
    const chunk = <u64>v.chunkBlocks;
    let vc = <u32>(lba / chunk);
    const mapped = m.lookup(vc) != THIN_CHUNK_NONE;
    let run = chunk - lba % chunk;
    vc += 1;
    // Bounded by the virtual chunks, LBA_STATUS_CHUNKS_MAX (a dispatch stays short) and the u32 run length.
    const last = min(m.virtualChunks, vc + LBA_STATUS_CHUNKS_MAX);
    while (vc < last && run < limit && (m.lookup(vc) != THIN_CHUNK_NONE) == mapped) { run += chunk; vc += 1; }
    this.answer(msg.source, msg.e, FrameStatus.Ok, mapped ? 0 : 1, min(run, limit), 0);
  }

  // Emits the request's next chunk segments while the tables allow; marks it blocked otherwise.
  private advance(r: u32): void {
    const q = this.request(r);
    const volume = requestVolume(q);
    const v = volumeAt(volume);
    const m = this.map(volume);
    const end = requestLba(q) + <u64>requestBlocks(q);
    const chunk = <u64>v.chunkBlocks;
    requestSetBlocked(q, false);
    while (requestStatus(q) == FrameStatus.Ok && requestCursor(q) < end) {
      const cursor = requestCursor(q);
      const vc = <u32>(cursor / chunk);
      const offset = cursor % chunk;
      const blocks = min(end - cursor, chunk - offset);
      if (this.locked(volume, vc) || this.childrenFree < CHILDREN_PER_SEGMENT) { requestSetBlocked(q, true); return; }
      if (!this.segment(r, v, m, vc, offset, blocks)) { if (requestStatus(q) == FrameStatus.Ok) requestSetBlocked(q, true); return; }
      requestSetCursor(q, cursor + blocks);
    }
  }

  // One segment of request `r`, within virtual chunk `vc`. False when it must wait (or failed the request).
  private segment(r: u32, v: Volume, m: ThinMap, vc: u32, offset: u64, blocks: u64): bool {
    const q = this.request(r);
    const fn = requestFunction(q);
    const chunk = m.lookup(vc);
    const pool = v.poolVolume;
    const sglOffset = (<u64>vc * <u64>v.chunkBlocks + offset - requestLba(q)) * <u64>v.blockSizeBytes;
    const bytes = blocks * <u64>v.blockSizeBytes;
    if (fn == FrameFunction.Read) {
      if (chunk == THIN_CHUNK_NONE) {
        sgls().zeroRange(requestSgl(q), sglOffset, bytes); // unmapped: zeros (LBPRZ)
        requestSetBytes(q, requestBytes(q) + bytes);
        return true;
      }
      return this.childSlice(ThinOwner.Request, r, fn, pool, thinChunkLba(v, chunk) + offset, blocks, requestSgl(q), sglOffset);
    }
    if (fn == FrameFunction.Unmap) {
      if (chunk == THIN_CHUNK_NONE) return true;
      const whole = offset == 0 && (blocks == <u64>v.chunkBlocks || <u64>vc * <u64>v.chunkBlocks + blocks == v.blockCount);
      if (!whole) return this.childStart(ThinOwner.Request, r, FrameFunction.Unmap, pool, thinChunkLba(v, chunk) + offset, blocks, SGL_NONE);
      const rec = this.recordOpen(m.volume, vc, chunk, r);
      if (rec == POOL_NONE) return false;
      const at = this.record(rec);
      recordSetState(at, RecordState.Freeing);
      recordSetGeneration(at, m.set(vc, THIN_CHUNK_NONE));
      requestSetOutstanding(q, requestOutstanding(q) + 1);
      return true;
    }
    if (chunk != THIN_CHUNK_NONE) {
      return this.childSlice(ThinOwner.Request, r, fn, pool, thinChunkLba(v, chunk) + offset, blocks, requestSgl(q), sglOffset);
    }
    return this.allocate(r, v, m, vc, offset, blocks, sglOffset);
  }

  // A write to an unmapped chunk: a free pool chunk, its data and zeros around it, then (records) the map entry.
  private allocate(r: u32, v: Volume, m: ThinMap, vc: u32, offset: u64, blocks: u64, sglOffset: u64): bool {
    const q = this.request(r);
    if (this.recordsActive == THIN_RECORDS_MAX) return false;
    const chunk = m.takeFree();
    if (chunk == THIN_CHUNK_NONE) {
      // Chunks being freed come back soon: wait for them. Otherwise the pool is full.
      if (this.freeing(m.volume)) return false;
      this.requestFail(r, FrameStatus.SpaceAllocFailed);
      return false;
    }
    this.usageChanged(m, r);
    const rec = this.recordOpen(m.volume, vc, chunk, r);
    assert(rec != POOL_NONE, "thin: no record though one was free");
    const at = this.record(rec);
    recordSetState(at, RecordState.Writing);
    recordSetBytes(at, <u32>(blocks * <u64>v.blockSizeBytes));
    requestSetOutstanding(q, requestOutstanding(q) + 1);
    this.allocations += 1;
    const base = thinChunkLba(v, chunk);
    const fn = requestFunction(q);
    const chunkBlocks = <u64>v.chunkBlocks;
    if (!this.childSlice(ThinOwner.Record, rec, fn, v.poolVolume, base + offset, blocks, requestSgl(q), sglOffset)) {
      // No SGL block for the slice: nothing is out yet, so the record goes and the chunk back.
      requestSetOutstanding(q, requestOutstanding(q) - 1);
      recordSetState(at, RecordState.Free);
      this.recordsActive -= 1;
      m.release(chunk);
      this.usageChanged(m, POOL_NONE);
      return false;
    }
    recordSetOutstanding(at, recordOutstanding(at) + 1);
    if (offset > 0) {
      assert(this.childStart(ThinOwner.Record, rec, FrameFunction.Unmap, v.poolVolume, base, offset, SGL_NONE));
      recordSetOutstanding(at, recordOutstanding(at) + 1);
    }
    if (offset + blocks < chunkBlocks) {
      assert(this.childStart(ThinOwner.Record, rec, FrameFunction.Unmap, v.poolVolume, base + offset + blocks, chunkBlocks - offset - blocks, SGL_NONE));
      recordSetOutstanding(at, recordOutstanding(at) + 1);
    }
    return true;
  }

  private requestFail(r: u32, status: FrameStatus): void {
    const q = this.request(r);
    if (requestStatus(q) == FrameStatus.Ok) requestSetStatus(q, status);
  }

  private finishIfDone(r: u32): void {
    const q = this.request(r);
    if (!requestActive(q) || requestOutstanding(q) != 0) return;
    const failed = requestStatus(q) != FrameStatus.Ok;
    const fn = requestFunction(q);
    if (!failed) {
      if (fn == FrameFunction.Flush && !requestFlushIssued(q)) return; // its flush is still to be posted
      if (fn != FrameFunction.Flush && requestCursor(q) < requestLba(q) + <u64>requestBlocks(q)) return;
    }
    requestSetActive(q, false);
    this.requestsActive -= 1;
    this.answer(requestRequester(q), requestTag(q), requestStatus(q), 0, requestBytes(q), <u64>requestEvents(q));
  }

  private answer(requester: u32, tag: u64, status: FrameStatus, provisioning: u32, bytes: u64, events: u64): void {
    this.out.set(MsgKind.ServiceIoDone, this.cta.index, <u32>status, provisioning);
    this.out.c = <u32>bytes;
    this.out.d = events;
    this.out.e = tag;
    assert(post(requester, this.out), "cta: requester inbox full");
  }

  // ---- Children: services of the CTA's own on the pool ----

  /** A child over `blocks` of `sgl` from `sglOffset` (a slice, made here). False when no SGL block is free. */
  childSlice(kind: ThinOwner, owner: u32, fn: u32, volume: u32, lba: u64, blocks: u64, sgl: u32, sglOffset: u64): bool {
    const slice = sgls().create();
    if (slice == SGL_NONE) return this.sglWait();
    if (!sgls().appendRange(slice, sgl, sglOffset, blocks * <u64>volumeAt(volume).blockSizeBytes)) {
      sgls().release(slice);
      return this.sglWait();
    }
    return this.childStart(kind, owner, fn, volume, lba, blocks, slice);
  }

  /** A child over flat memory the layer owns (`address`, `bytes`). False when no SGL block is free. */
  childFlat(kind: ThinOwner, owner: u32, fn: u32, volume: u32, lba: u64, blocks: u64, address: usize): bool {
    const sgl = sgls().create();
    if (sgl == SGL_NONE) return this.sglWait();
    assert(sgls().append(sgl, <u64>address, <u32>(blocks * <u64>volumeAt(volume).blockSizeBytes)));
    return this.childStart(kind, owner, fn, volume, lba, blocks, sgl);
  }

  private sglWait(): bool {
    const block = sgls().blocks.acquireOrWait(this.cta.index);
    if (block != POOL_NONE) sgls().blocks.release(block);
    return false;
  }

  /** Starts a child (its `sgl`, if any, is the child's to release). False only when no child is free. */
  childStart(kind: ThinOwner, owner: u32, fn: u32, volume: u32, lba: u64, blocks: u64, sgl: u32): bool {
    let c: u32 = POOL_NONE;
    for (let i: u32 = 0; i < THIN_CHILDREN_MAX; i++) if (childState(this.child(i)) == ChildState.Free) { c = i; break; }
    if (c == POOL_NONE) {
      if (sgl != SGL_NONE) sgls().release(sgl);
      return false;
    }
    const at = this.child(c);
    memory.fill(at, 0, THIN_CHILD_BYTES);
    childSetOwnerKind(at, kind);
    childSetOwner(at, owner);
    childSetFunction(at, fn);
    childSetVolume(at, volume);
    childSetLba(at, lba);
    childSetBlocks(at, <u32>blocks);
    childSetSgl(at, sgl);
    this.childrenFree -= 1;
    if (kind == ThinOwner.Request) requestSetOutstanding(this.request(owner), requestOutstanding(this.request(owner)) + 1);
    this.childPost(c);
    return true;
  }

  private childPost(c: u32): void {
    const at = this.child(c);
    this.out.set(MsgKind.ServiceIo, this.cta.index, childFunction(at) | (childVolume(at) << 8), childBlocks(at));
    this.out.c = childSgl(at);
    this.out.d = childLba(at);
    this.out.e = TAG_CHILD | <u64>c;
    if (post(this.cta.index, this.out)) {
      childSetState(at, ChildState.Sent);
    } else {
      if (childState(at) != ChildState.Posting) this.posting += 1;
      childSetState(at, ChildState.Posting);
    }
  }

  /** A ServiceIoDone for the CTA itself: one of the children. */
  onChildDone(msg: Msg): void {
    assert((msg.e & 0xffff_ffff_0000_0000) == TAG_CHILD, "cta: ServiceIoDone that is no thin child's");
    const c = <u32>(msg.e & 0xffff);
    const at = this.child(c);
    assert(childState(at) == ChildState.Sent, "thin: answer for a child not sent");
    const status = <FrameStatus>msg.a;
    if (status == FrameStatus.Busy) {
      // The CTA's tables were full: posted again once a service of the CTA's has finished.
      childSetState(at, ChildState.Posting);
      childSetBusy(at, true);
      this.posting += 1;
      this.busyAt = this.cta.servicesDone;
      return;
    }
    const kind = <ThinOwner>childOwnerKind(at);
    const owner = childOwner(at);
    const sgl = childSgl(at);
    if (sgl != SGL_NONE) sgls().release(sgl);
    childSetState(at, ChildState.Free);
    this.childrenFree += 1;
    switch (<i32>kind) {
      case ThinOwner.Request: {
        const q = this.request(owner);
        requestSetOutstanding(q, requestOutstanding(q) - 1);
        if (status != FrameStatus.Ok) this.requestFail(owner, status);
        else if (requestFunction(q) != FrameFunction.Unmap) requestSetBytes(q, requestBytes(q) + <u64>msg.c);
        this.finishIfDone(owner);
        break;
      }
      case ThinOwner.Record: this.recordChildDone(owner, status); break;
      case ThinOwner.Commit: this.commitChildDone(owner, status); break;
      case ThinOwner.Load: this.loader.childDone(status); break;
      default: assert(false, "thin: child of no owner");
    }
  }

  /** After each CTA run: posts what waited, moves records and commits, advances blocked requests. True when moved. */
  poll(): bool {
    let moved = false;
    if (this.posting > 0) moved = this.postWaiting() || moved;
    if (this.recordsActive > 0) moved = this.recordsPoll() || moved;
    moved = this.commitsPoll() || moved;
    if (this.requestsActive > 0) {
      for (let r: u32 = 0; r < THIN_REQUESTS_MAX; r++) {
        const q = this.request(r);
        if (!requestActive(q)) continue;
        if (requestFunction(q) == FrameFunction.Flush) {
          if (!requestFlushIssued(q) && this.childStart(ThinOwner.Request, r, FrameFunction.Flush, volumeAt(requestVolume(q)).poolVolume, 0, 0, SGL_NONE)) {
            requestSetFlushIssued(q, true);
            moved = true;
          }
          continue;
        }
        if (!requestBlocked(q)) continue;
        const before = requestCursor(q);
        this.advance(r);
        if (requestCursor(q) != before || !requestBlocked(q)) moved = true;
        this.finishIfDone(r);
      }
    }
    return moved;
  }

  private postWaiting(): bool {
    let moved = false;
    for (let c: u32 = 0; c < THIN_CHILDREN_MAX && this.posting > 0; c++) {
      const at = this.child(c);
      if (childState(at) != ChildState.Posting) continue;
      if (childBusy(at) && this.cta.servicesDone == this.busyAt) continue; // nothing has finished since Busy
      childSetBusy(at, false);
      this.posting -= 1;
      childSetState(at, ChildState.Sent);
      this.childPost(c);
      moved = true;
    }
    return moved;
  }

  /** A child of the volume's pool targets pool chunk `chunk` (a freed chunk waits until none does). */
  private chunkInUse(volume: u32, chunk: u32): bool {
    const v = volumeAt(volume);
    const lo = thinChunkLba(v, chunk);
    const hi = lo + <u64>v.chunkBlocks;
    for (let c: u32 = 0; c < THIN_CHILDREN_MAX; c++) {
      const at = this.child(c);
      if (childState(at) == ChildState.Free || childVolume(at) != v.poolVolume) continue;
      const lba = childLba(at);
      if (lba < hi && lba + <u64>childBlocks(at) > lo) return true;
    }
    return false;
  }

  // ---- Records: allocations and frees until durable ----

  private recordOpen(volume: u32, vc: u32, chunk: u32, r: u32): u32 {
    if (this.recordsActive == THIN_RECORDS_MAX) return POOL_NONE;
    for (let i: u32 = 0; i < THIN_RECORDS_MAX; i++) {
      const at = this.record(i);
      if (recordState(at) != RecordState.Free) continue;
      memory.fill(at, 0, THIN_RECORD_BYTES);
      recordSetVolume(at, volume);
      recordSetVc(at, vc);
      recordSetChunk(at, chunk);
      recordSetRequest(at, r);
      this.recordsActive += 1;
      return i;
    }
    return POOL_NONE;
  }

  /** An allocation or free holds virtual chunk `vc` of `volume`. */
  private locked(volume: u32, vc: u32): bool {
    if (this.recordsActive == 0) return false;
    for (let i: u32 = 0; i < THIN_RECORDS_MAX; i++) {
      const at = this.record(i);
      if (recordState(at) != RecordState.Free && recordVolume(at) == volume && recordVc(at) == vc) return true;
    }
    return false;
  }

  private freeing(volume: u32): bool {
    for (let i: u32 = 0; i < THIN_RECORDS_MAX; i++) {
      const at = this.record(i);
      if (recordState(at) == RecordState.Freeing && recordVolume(at) == volume) return true;
    }
    return false;
  }

  private recordChildDone(rec: u32, status: FrameStatus): void {
    const at = this.record(rec);
    recordSetOutstanding(at, recordOutstanding(at) - 1);
    if (status != FrameStatus.Ok && recordStatus(at) == FrameStatus.Ok) recordSetStatus(at, status);
    if (recordOutstanding(at) != 0) return;
    const volume = recordVolume(at);
    const m = this.map(volume);
    if (recordStatus(at) != FrameStatus.Ok) {
      // Never mapped: the chunk goes back, the write fails.
      const r = recordRequest(at);
      m.release(recordChunk(at));
      this.usageChanged(m, POOL_NONE);
      recordSetState(at, RecordState.Free);
      this.recordsActive -= 1;
      this.requestFail(r, recordStatus(at));
      this.requestRelease(r, 0);
      return;
    }
    recordSetState(at, RecordState.Committing);
    recordSetGeneration(at, m.set(recordVc(at), recordChunk(at)));
  }

  private requestRelease(r: u32, bytes: u64): void {
    const q = this.request(r);
    requestSetOutstanding(q, requestOutstanding(q) - 1);
    requestSetBytes(q, requestBytes(q) + bytes);
    this.finishIfDone(r);
  }

  // Records whose map block is durable: allocations answer their write; frees give their chunk back once unused.
  private recordsPoll(): bool {
    let moved = false;
    for (let i: u32 = 0; i < THIN_RECORDS_MAX; i++) {
      const at = this.record(i);
      const state = recordState(at);
      if (state != RecordState.Committing && state != RecordState.Freeing) continue;
      const volume = recordVolume(at);
      const m = this.map(volume);
      const v = volumeAt(volume);
      const failed = v.state == VolumeState.Failed;
      const durable = m.durableGeneration(recordVc(at) / THIN_MAP_ENTRIES_PER_BLOCK) >= recordGeneration(at);
      if (!durable && !failed) continue;
      const r = recordRequest(at);
      if (r != POOL_NONE) {
        if (!durable) this.requestFail(r, FrameStatus.MediumError);
        recordSetRequest(at, POOL_NONE);
        this.requestRelease(r, state == RecordState.Committing ? <u64>recordBytes(at) : 0);
        moved = true;
      }
      if (state == RecordState.Freeing) {
        if (!durable || this.chunkInUse(volume, recordChunk(at))) continue;
        m.release(recordChunk(at));
        this.usageChanged(m, POOL_NONE);
      }
      recordSetState(at, RecordState.Free);
      this.recordsActive -= 1;
      moved = true;
    }
    return moved;
  }

  // Pool usage moved: the report's count, and the threshold and pool-full lines (request `r`, if any, carries the
  // crossing to its requester).
  private usageChanged(m: ThinMap, r: u32): void {
    const v = volumeAt(m.volume);
    v.chunksUsed = m.used;
    const pct = <u64>v.softThresholdPercent;
    if (pct != 0) {
      const above = <u64>m.used * 100 >= pct * <u64>m.usableChunks;
      if (above && !m.aboveThreshold) {
        m.aboveThreshold = true;
        volumeStateLine(m.volume, "threshold");
        if (r != POOL_NONE) requestSetEvents(this.request(r), requestEvents(this.request(r)) | <u8>THIN_EVENT_SOFT_THRESHOLD);
      } else if (!above && m.aboveThreshold) {
        m.aboveThreshold = false;
      }
    }
    const full = m.used == m.usableChunks;
    if (full && !m.full) volumeStateLine(m.volume, "full");
    m.full = full;
  }

  // ---- Commits: map block writes ----

  private commitsPoll(): bool {
    let moved = false;
    for (let n: u32 = 0; n < volumesCount(); n++) {
      const m = unchecked(this.maps[n]);
      if (m == null || !m.loaded || m.dirtyBlocks == 0) continue;
      for (let b: u32 = 0; b < m.mapBlocks && m.dirtyBlocks > 0; b++) {
        if (!m.dirty(b) || m.writing(b)) continue;
        if (!this.commitStart(m, b)) return moved;
        moved = true;
      }
    }
    return moved;
  }

  // Snapshots block `b` into a commit's buffer, then flushes the pool (the allocations' data first) and writes it.
  private commitStart(m: ThinMap, b: u32): bool {
    let k: u32 = POOL_NONE;
    for (let i: u32 = 0; i < THIN_COMMITS_MAX; i++) if (commitState(this.commit(i)) == CommitState.Free) { k = i; break; }
    if (k == POOL_NONE || this.childrenFree < 1) return false;
    const at = this.commit(k);
    const buffer = this.commitBuffer(k);
    const generation = m.writeStart(b);
    const copy = 1 - m.durableCopy(b);
    const count = m.entryCount(b);
    memory.fill(buffer, 0, THIN_MAP_BLOCK_BYTES);
    for (let i: u32 = 0; i < count; i++) store<u32>(buffer + 32 + <usize>i * 4, m.raw(b * THIN_MAP_ENTRIES_PER_BLOCK + i));
    mapSeal(buffer, b, copy, count, generation);
    commitSetState(at, CommitState.Flushing);
    commitSetCopy(at, copy);
    commitSetVolume(at, m.volume);
    commitSetBlock(at, b);
    commitSetGeneration(at, generation);
    assert(this.childStart(ThinOwner.Commit, k, FrameFunction.Flush, volumeAt(m.volume).poolVolume, 0, 0, SGL_NONE));
    return true;
  }

  private commitChildDone(k: u32, status: FrameStatus): void {
    const at = this.commit(k);
    const volume = commitVolume(at);
    const v = volumeAt(volume);
    const m = this.map(volume);
    const b = commitBlock(at);
    if (commitState(at) == CommitState.Flushing && status == FrameStatus.Ok) {
      commitSetState(at, CommitState.Writing);
      const copy = commitCopy(at);
      if (this.childFlat(ThinOwner.Commit, k, FrameFunction.WriteFua, v.poolVolume, thinMapCopyLba(v, b, copy), thinMapBlockBlocks(v), this.commitBuffer(k))) return;
      status = FrameStatus.Busy; // no SGL block or child: written again at the next poll
    }
    const ok = status == FrameStatus.Ok;
    m.writeDone(b, commitGeneration(at), commitCopy(at), ok);
    commitSetState(at, CommitState.Free);
    if (ok) { m.commitFailures = 0; return; }
    this.commitFailures += 1;
    if (status == FrameStatus.Busy) return;
    m.commitFailures += 1;
    if (m.commitFailures >= COMMIT_ATTEMPTS_MAX && v.state != VolumeState.Failed) {
      // The map cannot be made durable: the volume stops rather than answer writes it could lose.
      v.state = VolumeState.Failed;
      volumeStateLine(volume, "metadata");
    }
  }

  @inline commitBuffer(k: u32): usize { assert(k < THIN_COMMITS_MAX); return this.buffer + <usize>k * THIN_MAP_BLOCK_BYTES; }
  @inline private request(r: u32): usize { assert(r < THIN_REQUESTS_MAX); return this.requests + <usize>r * THIN_REQUEST_BYTES; }
  @inline private child(c: u32): usize { assert(c < THIN_CHILDREN_MAX); return this.children + <usize>c * THIN_CHILD_BYTES; }
  @inline private record(i: u32): usize { assert(i < THIN_RECORDS_MAX); return this.records + <usize>i * THIN_RECORD_BYTES; }
  @inline private commit(k: u32): usize { assert(k < THIN_COMMITS_MAX); return this.commits + <usize>k * THIN_COMMIT_BYTES; }
}

function reservedLargeBuffer(): usize {
  assert(THIN_BUFFER_BYTES <= BUFFER_LARGE_BYTES, "thin: the buffer is one large buffer");
  const index = bufferReserve(BUFFER_CLASS_LARGE);
  assert(index != POOL_NONE, "thin: no large buffer at boot");
  return bufferPool(BUFFER_CLASS_LARGE).address(index);
}
