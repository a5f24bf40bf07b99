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
import { SGL_NONE } from "../kernel/sgl";
import { volumeStateLine } from "../volumes/report";
import { THIN_CHUNK_NONE, THIN_MAP_BLOCK_BYTES, THIN_MAP_ENTRIES_PER_BLOCK, thinChunkLba, thinMapBlockBlocks, thinMapCopyLba } from "../volumes/thin";
import { mapSeal } from "../volumes/thin_format";
import { Volume, volumeAt, volumesCount, VolumeState, VolumeType, VOLUMES_MAX } from "../volumes/volume";
import { CtaTask } from "./cta";
import { THIN_BUFFER_BYTES, ThinLoader } from "./thin_load";
import { ThinMap } from "./thin_map";

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

// Request: |0 active u8|1 status u8|2 requester u16|4 outstanding u32|8 tag u64|16 bytes u64|24 fn u8|25 events u8|
// |26 volume u16|28 blocks u32|32 lba u64|40 cursor u64|48 sgl u32|52 blocked u8|
const REQUEST_BYTES: u32 = 64;
// Child: |0 state u8|1 owner kind u8|2 owner u16|4 fn u8|5 busy u8|6 volume u16|8 lba u64|16 blocks u32|20 sgl u32|
// |24 status u8|
const CHILD_BYTES: u32 = 32;
// Record: |0 state u8|1 status u8|2 volume u16|4 vc u32|8 chunk u32|12 request u16|14 outstanding u8|
// |16 generation u64|24 bytes u32|
const RECORD_BYTES: u32 = 32;
// Commit: |0 state u8|1 copy u8|2 volume u16|4 block u32|8 generation u64|16 sgl u32|
const COMMIT_BYTES: u32 = 24;

export class ThinLayer {
  readonly maps: StaticArray<ThinMap | null> = new StaticArray<ThinMap | null>(VOLUMES_MAX);
  private readonly requests: usize = carve(THIN_REQUESTS_MAX * REQUEST_BYTES, 16);
  private readonly children: usize = carve(THIN_CHILDREN_MAX * CHILD_BYTES, 16);
  private readonly records: usize = carve(THIN_RECORDS_MAX * RECORD_BYTES, 16);
  private readonly commits: usize = carve(THIN_COMMITS_MAX * COMMIT_BYTES, 16);
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
    for (let i: u32 = 0; i < THIN_REQUESTS_MAX; i++) if (load<u8>(this.request(i)) == 0) { r = i; break; }
    if (r == POOL_NONE) { this.answer(msg.source, msg.e, FrameStatus.Busy, 0, 0, 0); return; }
    const q = this.request(r);
    memory.fill(q, 0, REQUEST_BYTES);
    store<u8>(q, 1);
    store<u16>(q, <u16>msg.source, 2);
    store<u64>(q, msg.e, 8);
    store<u8>(q, <u8>fn, 24);
    store<u16>(q, <u16>volume, 26);
    store<u32>(q, fn == FrameFunction.Flush ? 0 : msg.b, 28);
    store<u64>(q, msg.d, 32);
    store<u64>(q, msg.d, 40);
    store<u32>(q, msg.c, 48);
    this.requestsActive += 1;
    if (fn == FrameFunction.Flush) {
      // Every acknowledged write's mapping is durable already: the pool's caches are what is left.
      if (!this.childStart(ThinOwner.Request, r, FrameFunction.Flush, volumeAt(volume).poolVolume, 0, 0, SGL_NONE)) store<u8>(q, 1, 52);
      else store<u8>(q, 1, 52 + 1); // flush issued
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
    for (let i: u32 = 0; i < count; i++) if (load<u32>(sgls().segment(sgl, i), 8) % v.blockSizeBytes != 0) return FrameStatus.IllegalRequest;
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
    const volume = <u32>load<u16>(q, 26);
    const v = volumeAt(volume);
    const m = this.map(volume);
    const end = load<u64>(q, 32) + <u64>load<u32>(q, 28);
    const chunk = <u64>v.chunkBlocks;
    store<u8>(q, 0, 52);
    while (load<u8>(q, 1) == FrameStatus.Ok && load<u64>(q, 40) < end) {
      const cursor = load<u64>(q, 40);
      const vc = <u32>(cursor / chunk);
      const offset = cursor % chunk;
      const blocks = min(end - cursor, chunk - offset);
      if (this.locked(volume, vc) || this.childrenFree < CHILDREN_PER_SEGMENT) { store<u8>(q, 1, 52); return; }
      if (!this.segment(r, v, m, vc, offset, blocks)) { if (load<u8>(q, 1) == FrameStatus.Ok) store<u8>(q, 1, 52); return; }
      store<u64>(q, cursor + blocks, 40);
    }
  }

  // One segment of request `r`, within virtual chunk `vc`. False when it must wait (or failed the request).
  private segment(r: u32, v: Volume, m: ThinMap, vc: u32, offset: u64, blocks: u64): bool {
    const q = this.request(r);
    const fn = <u32>load<u8>(q, 24);
    const chunk = m.lookup(vc);
    const pool = v.poolVolume;
    const sglOffset = (<u64>vc * <u64>v.chunkBlocks + offset - load<u64>(q, 32)) * <u64>v.blockSizeBytes;
    const bytes = blocks * <u64>v.blockSizeBytes;
    if (fn == FrameFunction.Read) {
      if (chunk == THIN_CHUNK_NONE) {
        sgls().zeroRange(load<u32>(q, 48), sglOffset, bytes); // unmapped: zeros (LBPRZ)
        store<u64>(q, load<u64>(q, 16) + bytes, 16);
        return true;
      }
      return this.childSlice(ThinOwner.Request, r, fn, pool, thinChunkLba(v, chunk) + offset, blocks, load<u32>(q, 48), sglOffset);
    }
    if (fn == FrameFunction.Unmap) {
      if (chunk == THIN_CHUNK_NONE) return true;
      const whole = offset == 0 && (blocks == <u64>v.chunkBlocks || <u64>vc * <u64>v.chunkBlocks + blocks == v.blockCount);
      if (!whole) return this.childStart(ThinOwner.Request, r, FrameFunction.Unmap, pool, thinChunkLba(v, chunk) + offset, blocks, SGL_NONE);
      const rec = this.recordOpen(m.volume, vc, chunk, r);
      if (rec == POOL_NONE) return false;
      const at = this.record(rec);
      store<u8>(at, <u8>RecordState.Freeing);
      store<u64>(at, m.set(vc, THIN_CHUNK_NONE), 16);
      store<u32>(q, load<u32>(q, 4) + 1, 4);
      return true;
    }
    if (chunk != THIN_CHUNK_NONE) {
      return this.childSlice(ThinOwner.Request, r, fn, pool, thinChunkLba(v, chunk) + offset, blocks, load<u32>(q, 48), sglOffset);
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
    store<u8>(at, <u8>RecordState.Writing);
    store<u32>(at, <u32>(blocks * <u64>v.blockSizeBytes), 24);
    store<u32>(q, load<u32>(q, 4) + 1, 4);
    this.allocations += 1;
    const base = thinChunkLba(v, chunk);
    const fn = <u32>load<u8>(q, 24);
    const chunkBlocks = <u64>v.chunkBlocks;
    if (!this.childSlice(ThinOwner.Record, rec, fn, v.poolVolume, base + offset, blocks, load<u32>(q, 48), sglOffset)) {
      // No SGL block for the slice: nothing is out yet, so the record goes and the chunk back.
      store<u32>(q, load<u32>(q, 4) - 1, 4);
      store<u8>(at, <u8>RecordState.Free);
      this.recordsActive -= 1;
      m.release(chunk);
      this.usageChanged(m, POOL_NONE);
      return false;
    }
    store<u8>(at, load<u8>(at, 14) + 1, 14);
    if (offset > 0) {
      assert(this.childStart(ThinOwner.Record, rec, FrameFunction.Unmap, v.poolVolume, base, offset, SGL_NONE));
      store<u8>(at, load<u8>(at, 14) + 1, 14);
    }
    if (offset + blocks < chunkBlocks) {
      assert(this.childStart(ThinOwner.Record, rec, FrameFunction.Unmap, v.poolVolume, base + offset + blocks, chunkBlocks - offset - blocks, SGL_NONE));
      store<u8>(at, load<u8>(at, 14) + 1, 14);
    }
    return true;
  }

  private requestFail(r: u32, status: FrameStatus): void {
    const q = this.request(r);
    if (load<u8>(q, 1) == FrameStatus.Ok) store<u8>(q, <u8>status, 1);
  }

  private finishIfDone(r: u32): void {
    const q = this.request(r);
    if (load<u8>(q) == 0 || load<u32>(q, 4) != 0) return;
    const failed = load<u8>(q, 1) != FrameStatus.Ok;
    const fn = <u32>load<u8>(q, 24);
    if (!failed) {
      if (fn == FrameFunction.Flush && load<u8>(q, 53) == 0) return; // its flush is still to be posted
      if (fn != FrameFunction.Flush && load<u64>(q, 40) < load<u64>(q, 32) + <u64>load<u32>(q, 28)) return;
    }
    store<u8>(q, 0);
    this.requestsActive -= 1;
    this.answer(load<u16>(q, 2), load<u64>(q, 8), <FrameStatus>load<u8>(q, 1), 0, load<u64>(q, 16), <u64>load<u8>(q, 25));
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
    for (let i: u32 = 0; i < THIN_CHILDREN_MAX; i++) if (load<u8>(this.child(i)) == ChildState.Free) { c = i; break; }
    if (c == POOL_NONE) {
      if (sgl != SGL_NONE) sgls().release(sgl);
      return false;
    }
    const at = this.child(c);
    memory.fill(at, 0, CHILD_BYTES);
    store<u8>(at, <u8>kind, 1);
    store<u16>(at, <u16>owner, 2);
    store<u8>(at, <u8>fn, 4);
    store<u16>(at, <u16>volume, 6);
    store<u64>(at, lba, 8);
    store<u32>(at, <u32>blocks, 16);
    store<u32>(at, sgl, 20);
    this.childrenFree -= 1;
    if (kind == ThinOwner.Request) store<u32>(this.request(owner), load<u32>(this.request(owner), 4) + 1, 4);
    this.childPost(c);
    return true;
  }

  private childPost(c: u32): void {
    const at = this.child(c);
    this.out.set(MsgKind.ServiceIo, this.cta.index, <u32>load<u8>(at, 4) | (<u32>load<u16>(at, 6) << 8), load<u32>(at, 16));
    this.out.c = load<u32>(at, 20);
    this.out.d = load<u64>(at, 8);
    this.out.e = TAG_CHILD | <u64>c;
    if (post(this.cta.index, this.out)) {
      store<u8>(at, <u8>ChildState.Sent);
    } else {
      if (load<u8>(at) != ChildState.Posting) this.posting += 1;
      store<u8>(at, <u8>ChildState.Posting);
    }
  }

  /** A ServiceIoDone for the CTA itself: one of the children. */
  onChildDone(msg: Msg): void {
    assert((msg.e & 0xffff_ffff_0000_0000) == TAG_CHILD, "cta: ServiceIoDone that is no thin child's");
    const c = <u32>(msg.e & 0xffff);
    const at = this.child(c);
    assert(load<u8>(at) == ChildState.Sent, "thin: answer for a child not sent");
    const status = <FrameStatus>msg.a;
    if (status == FrameStatus.Busy) {
      // The CTA's tables were full: posted again once a service of the CTA's has finished.
      store<u8>(at, <u8>ChildState.Posting);
      store<u8>(at, 1, 5);
      this.posting += 1;
      this.busyAt = this.cta.servicesDone;
      return;
    }
    const kind = <ThinOwner>load<u8>(at, 1);
    const owner = <u32>load<u16>(at, 2);
    const sgl = load<u32>(at, 20);
    if (sgl != SGL_NONE) sgls().release(sgl);
    store<u8>(at, <u8>ChildState.Free);
    this.childrenFree += 1;
    switch (<i32>kind) {
      case ThinOwner.Request: {
        const q = this.request(owner);
        store<u32>(q, load<u32>(q, 4) - 1, 4);
        if (status != FrameStatus.Ok) this.requestFail(owner, status);
        else if (load<u8>(q, 24) != FrameFunction.Unmap) store<u64>(q, load<u64>(q, 16) + <u64>msg.c, 16);
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
        if (load<u8>(q) == 0) continue;
        if (load<u8>(q, 24) == FrameFunction.Flush) {
          if (load<u8>(q, 53) == 0 && this.childStart(ThinOwner.Request, r, FrameFunction.Flush, volumeAt(load<u16>(q, 26)).poolVolume, 0, 0, SGL_NONE)) {
            store<u8>(q, 1, 53);
            moved = true;
          }
          continue;
        }
        if (load<u8>(q, 52) == 0) continue;
        const before = load<u64>(q, 40);
        this.advance(r);
        if (load<u64>(q, 40) != before || load<u8>(q, 52) == 0) moved = true;
        this.finishIfDone(r);
      }
    }
    return moved;
  }

  private postWaiting(): bool {
    let moved = false;
    for (let c: u32 = 0; c < THIN_CHILDREN_MAX && this.posting > 0; c++) {
      const at = this.child(c);
      if (load<u8>(at) != ChildState.Posting) continue;
      if (load<u8>(at, 5) != 0 && this.cta.servicesDone == this.busyAt) continue; // nothing has finished since Busy
      store<u8>(at, 0, 5);
      this.posting -= 1;
      store<u8>(at, <u8>ChildState.Sent);
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
      if (load<u8>(at) == ChildState.Free || load<u16>(at, 6) != v.poolVolume) continue;
      const lba = load<u64>(at, 8);
      if (lba < hi && lba + <u64>load<u32>(at, 16) > lo) return true;
    }
    return false;
  }

  // ---- Records: allocations and frees until durable ----

  private recordOpen(volume: u32, vc: u32, chunk: u32, r: u32): u32 {
    if (this.recordsActive == THIN_RECORDS_MAX) return POOL_NONE;
    for (let i: u32 = 0; i < THIN_RECORDS_MAX; i++) {
      const at = this.record(i);
      if (load<u8>(at) != RecordState.Free) continue;
      memory.fill(at, 0, RECORD_BYTES);
      store<u16>(at, <u16>volume, 2);
      store<u32>(at, vc, 4);
      store<u32>(at, chunk, 8);
      store<u16>(at, <u16>r, 12);
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
      if (load<u8>(at) != RecordState.Free && load<u16>(at, 2) == volume && load<u32>(at, 4) == vc) return true;
    }
    return false;
  }

  private freeing(volume: u32): bool {
    for (let i: u32 = 0; i < THIN_RECORDS_MAX; i++) {
      const at = this.record(i);
      if (load<u8>(at) == RecordState.Freeing && load<u16>(at, 2) == volume) return true;
    }
    return false;
  }

  private recordChildDone(rec: u32, status: FrameStatus): void {
    const at = this.record(rec);
    store<u8>(at, load<u8>(at, 14) - 1, 14);
    if (status != FrameStatus.Ok && load<u8>(at, 1) == FrameStatus.Ok) store<u8>(at, <u8>status, 1);
    if (load<u8>(at, 14) != 0) return;
    const volume = <u32>load<u16>(at, 2);
    const m = this.map(volume);
    if (load<u8>(at, 1) != FrameStatus.Ok) {
      // Never mapped: the chunk goes back, the write fails.
      const r = <u32>load<u16>(at, 12);
      m.release(load<u32>(at, 8));
      this.usageChanged(m, POOL_NONE);
      store<u8>(at, <u8>RecordState.Free);
      this.recordsActive -= 1;
      this.requestFail(r, <FrameStatus>load<u8>(at, 1));
      this.requestRelease(r, 0);
      return;
    }
    store<u8>(at, <u8>RecordState.Committing);
    store<u64>(at, m.set(load<u32>(at, 4), load<u32>(at, 8)), 16);
  }

  private requestRelease(r: u32, bytes: u64): void {
    const q = this.request(r);
    store<u32>(q, load<u32>(q, 4) - 1, 4);
    store<u64>(q, load<u64>(q, 16) + bytes, 16);
    this.finishIfDone(r);
  }

  // Records whose map block is durable: allocations answer their write; frees give their chunk back once unused.
  private recordsPoll(): bool {
    let moved = false;
    for (let i: u32 = 0; i < THIN_RECORDS_MAX; i++) {
      const at = this.record(i);
      const state = load<u8>(at);
      if (state != RecordState.Committing && state != RecordState.Freeing) continue;
      const volume = <u32>load<u16>(at, 2);
      const m = this.map(volume);
      const v = volumeAt(volume);
      const failed = v.state == VolumeState.Failed;
      const durable = m.durableGeneration(load<u32>(at, 4) / THIN_MAP_ENTRIES_PER_BLOCK) >= load<u64>(at, 16);
      if (!durable && !failed) continue;
      const r = <u32>load<u16>(at, 12);
      if (r != POOL_NONE) {
        if (!durable) this.requestFail(r, FrameStatus.MediumError);
        store<u16>(at, <u16>POOL_NONE, 12);
        this.requestRelease(r, state == RecordState.Committing ? <u64>load<u32>(at, 24) : 0);
        moved = true;
      }
      if (state == RecordState.Freeing) {
        if (!durable || this.chunkInUse(volume, load<u32>(at, 8))) continue;
        m.release(load<u32>(at, 8));
        this.usageChanged(m, POOL_NONE);
      }
      store<u8>(at, <u8>RecordState.Free);
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
        if (r != POOL_NONE) store<u8>(this.request(r), load<u8>(this.request(r), 25) | <u8>THIN_EVENT_SOFT_THRESHOLD, 25);
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
    for (let i: u32 = 0; i < THIN_COMMITS_MAX; i++) if (load<u8>(this.commit(i)) == CommitState.Free) { k = i; break; }
    if (k == POOL_NONE || this.childrenFree < 1) return false;
    const at = this.commit(k);
    const buffer = this.commitBuffer(k);
    const generation = m.writeStart(b);
    const copy = 1 - m.durableCopy(b);
    const count = m.entryCount(b);
    memory.fill(buffer, 0, THIN_MAP_BLOCK_BYTES);
    for (let i: u32 = 0; i < count; i++) store<u32>(buffer + 32 + <usize>i * 4, m.raw(b * THIN_MAP_ENTRIES_PER_BLOCK + i));
    mapSeal(buffer, b, copy, count, generation);
    store<u8>(at, <u8>CommitState.Flushing);
    store<u8>(at, <u8>copy, 1);
    store<u16>(at, <u16>m.volume, 2);
    store<u32>(at, b, 4);
    store<u64>(at, generation, 8);
    assert(this.childStart(ThinOwner.Commit, k, FrameFunction.Flush, volumeAt(m.volume).poolVolume, 0, 0, SGL_NONE));
    return true;
  }

  private commitChildDone(k: u32, status: FrameStatus): void {
    const at = this.commit(k);
    const volume = <u32>load<u16>(at, 2);
    const v = volumeAt(volume);
    const m = this.map(volume);
    const b = load<u32>(at, 4);
    if (load<u8>(at) == CommitState.Flushing && status == FrameStatus.Ok) {
      store<u8>(at, <u8>CommitState.Writing);
      const copy = <u32>load<u8>(at, 1);
      if (this.childFlat(ThinOwner.Commit, k, FrameFunction.WriteFua, v.poolVolume, thinMapCopyLba(v, b, copy), thinMapBlockBlocks(v), this.commitBuffer(k))) return;
      status = FrameStatus.Busy; // no SGL block or child: written again at the next poll
    }
    const ok = status == FrameStatus.Ok;
    m.writeDone(b, load<u64>(at, 8), <u32>load<u8>(at, 1), ok);
    store<u8>(at, <u8>CommitState.Free);
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
  @inline private request(r: u32): usize { assert(r < THIN_REQUESTS_MAX); return this.requests + <usize>r * REQUEST_BYTES; }
  @inline private child(c: u32): usize { assert(c < THIN_CHILDREN_MAX); return this.children + <usize>c * CHILD_BYTES; }
  @inline private record(i: u32): usize { assert(i < THIN_RECORDS_MAX); return this.records + <usize>i * RECORD_BYTES; }
  @inline private commit(k: u32): usize { assert(k < THIN_COMMITS_MAX); return this.commits + <usize>k * COMMIT_BYTES; }
}

function reservedLargeBuffer(): usize {
  assert(THIN_BUFFER_BYTES <= BUFFER_LARGE_BYTES, "thin: the buffer is one large buffer");
  const index = bufferReserve(BUFFER_CLASS_LARGE);
  assert(index != POOL_NONE, "thin: no large buffer at boot");
  return bufferPool(BUFFER_CLASS_LARGE).address(index);
}
