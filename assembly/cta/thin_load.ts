// Loading the thin volumes' metadata at boot (docs/volumes.md, "On-disk formats"), when the UMA asks (VolumesLoad),
// one volume after another, through the thin layer's children (reads and writes on the pool, as any request):
//   superblock area → both copies blank: format; a valid copy that agrees with the configuration: read the map, up to
//   eight map blocks (both copies of each) per read, each block from its valid copy of the higher generation, every
//   entry in range and no pool chunk twice. Anything else: the volume fails, with a line saying why.
//   format → every map block's copy 0 written empty at generation 1 (copy 1 left blank), the pool flushed, then the
//   superblock (both copies) written FUA: a format cut short leaves a blank superblock and runs again.
// When every thin volume is done the UMA hears VolumesLoaded.
import { FrameFunction, FrameStatus } from "../board/frame";
import { line } from "../kernel/console";
import { Msg, MsgKind } from "../kernel/msg";
import { post } from "../kernel/scheduler";
import { SGL_NONE } from "../kernel/sgl";
import {
  THIN_MAP_BLOCK_BYTES, THIN_MAP_COPIES, THIN_MAP_ENTRIES_PER_BLOCK, THIN_SUPERBLOCK_AREA_BYTES, thinBlockSizeFits, thinMapBlockBlocks,
  thinMapCopyLba, thinMetadataBytes, thinPoolChunks, thinUsableChunks,
} from "../volumes/thin";
import {
  mapEntry, mapGeneration, mapSeal, mapValid, recordBlank, superBlockSizeBytes, superChunkBytes, superMapBlocks, superMetadataBytes,
  superPoolChunks, superValid, superVirtualBytes, superWrite,
} from "../volumes/thin_format";
import { volumeAt, volumesCount, VolumeState, VolumeType } from "../volumes/volume";
import { ThinLayer, ThinOwner } from "./thin";

export const THIN_BUFFER_BYTES: u32 = 65536; // the loader's reads (8 map blocks), or the commits' map blocks (one each)

const BATCH_BLOCKS_MAX: u32 = THIN_BUFFER_BYTES / (THIN_MAP_BLOCK_BYTES * THIN_MAP_COPIES); // 8 map blocks per I/O
const NONE: u32 = 0xffff_ffff;

enum LoadPhase {
  Idle = 0, // not asked yet, or done
  Super = 1, // reading the superblock area
  Map = 2, // reading map blocks
  FormatMap = 3, // writing empty map blocks
  FormatFlush = 4, // flushing them
  FormatSuper = 5, // writing the superblock
}

export class ThinLoader {
  private phase: LoadPhase = LoadPhase.Idle;
  private uma: u32 = NONE;
  private volume: u32 = 0; // the thin volume being loaded
  private nextBlock: u32 = 0; // the first map block of the I/O in flight
  private batch: u32 = 0; // map blocks in it
  private readonly out: Msg = new Msg();
  formatted: u32 = 0;
  failed: u32 = 0;

  constructor(private readonly layer: ThinLayer) {}

  /** The UMA asks: load every thin volume, then answer it. */
  start(uma: u32): void {
    assert(this.phase == LoadPhase.Idle, "thin: load asked twice at once");
    this.uma = uma;
    this.volume = 0;
    this.nextVolume();
  }

  // From this.volume on, the next thin volume to load; the UMA's answer when there is none.
  private nextVolume(): void {
    for (; this.volume < volumesCount(); this.volume++) {
      if (volumeAt(this.volume).type != VolumeType.Thin) continue;
      if (this.begin()) return;
    }
    this.phase = LoadPhase.Idle;
    assert(post(this.uma, this.out.set(MsgKind.VolumesLoaded, this.layer.ctaIndex(), volumesCount(), 0)), "thin: UMA inbox full");
  }

  // Checks what needs no I/O and reads the superblock area. False when the volume failed already.
  private begin(): bool {
    const v = volumeAt(this.volume);
    const m = this.layer.map(this.volume);
    v.chunksVirtual = m.virtualChunks;
    if (!m.carved) return this.fail("its chunk map does not fit the RAM set aside for thin maps", NONE);
    if (volumeAt(v.poolVolume).state == VolumeState.Failed) return this.fail("its pool has failed", NONE);
    if (!thinBlockSizeFits(v)) return this.fail("the pool's block size does not divide 4096 and the chunk", NONE);
    if (thinPoolChunks(v) == 0) return this.fail("the pool cannot hold the metadata and one chunk", NONE);
    m.reset();
    m.usableChunks = thinUsableChunks(v);
    m.poolChunks = thinPoolChunks(v);
    this.phase = LoadPhase.Super;
    this.io(FrameFunction.Read, 0, THIN_SUPERBLOCK_AREA_BYTES);
    return true;
  }

  /** The loader's I/O in flight ended. */
  childDone(status: FrameStatus): void {
    if (status != FrameStatus.Ok) {
      this.fail("its metadata could not be read or written", NONE);
      this.volume += 1;
      this.nextVolume();
      return;
    }
    let next = false;
    switch (<i32>this.phase) {
      case LoadPhase.Super: next = this.onSuper(); break;
      case LoadPhase.Map: next = this.onMap(); break;
      case LoadPhase.FormatMap: next = this.onFormatMap(); break;
      case LoadPhase.FormatFlush: {
        this.phase = LoadPhase.FormatSuper;
        const v = volumeAt(this.volume);
        const at = this.layer.buffer;
        const m = this.layer.map(this.volume);
        for (let copy: u32 = 0; copy < 2; copy++) {
          superWrite(at + copy * THIN_MAP_BLOCK_BYTES, v.blockSizeBytes, v.chunkBytes, m.mapBlocks, v.virtualBytes, thinPoolChunks(v), thinMetadataBytes(v), 1);
        }
        this.io(FrameFunction.WriteFua, 0, THIN_SUPERBLOCK_AREA_BYTES);
        break;
      }
      case LoadPhase.FormatSuper: {
        const m = this.layer.map(this.volume);
        for (let b: u32 = 0; b < m.mapBlocks; b++) m.loadBlock(b, 1, 0);
        this.formatted += 1;
        line().s("thin: volume ").bytes(changetype<usize>(volumeAt(this.volume).name), volumeAt(this.volume).nameBytes)
          .s(": blank pool formatted (").u32(m.mapBlocks).s(" map blocks)").out();
        next = this.done();
        break;
      }
      default: assert(false, "thin: load answer in no phase");
    }
    if (next) {
      this.volume += 1;
      this.nextVolume();
    }
  }

  // The superblock area is in the buffer. True when the volume is finished with (failed).
  private onSuper(): bool {
    const v = volumeAt(this.volume);
    const m = this.layer.map(this.volume);
    const at = this.layer.buffer;
    if (recordBlank(at) && recordBlank(at + THIN_MAP_BLOCK_BYTES)) return this.formatBatch(0);
    const copy = superValid(at) ? at : superValid(at + THIN_MAP_BLOCK_BYTES) ? at + THIN_MAP_BLOCK_BYTES : 0;
    if (copy == 0) return !this.fail("superblock: neither copy is valid (checksum or magic)", NONE);
    if (superChunkBytes(copy) != v.chunkBytes || superVirtualBytes(copy) != v.virtualBytes || superMapBlocks(copy) != m.mapBlocks) {
      return !this.fail("superblock: chunk size or virtual size differs from the configuration", NONE);
    }
    if (superBlockSizeBytes(copy) != v.blockSizeBytes || superPoolChunks(copy) != thinPoolChunks(v) || superMetadataBytes(copy) != thinMetadataBytes(v)) {
      return !this.fail("superblock: the pool's size or block size differs from when it was formatted", NONE);
    }
    return this.mapBatch(0);
  }

  // Reads map blocks from `first`. True when the volume is finished with (loaded).
  private mapBatch(first: u32): bool {
    const m = this.layer.map(this.volume);
    if (first == m.mapBlocks) return this.done();
    this.phase = LoadPhase.Map;
    this.nextBlock = first;
    this.batch = min(BATCH_BLOCKS_MAX, m.mapBlocks - first);
    this.io(FrameFunction.Read, thinMapCopyLba(volumeAt(this.volume), first, 0), this.batch * THIN_MAP_BLOCK_BYTES * THIN_MAP_COPIES);
    return false;
  }

  private onMap(): bool {
    const m = this.layer.map(this.volume);
    for (let i: u32 = 0; i < this.batch; i++) {
      const b = this.nextBlock + i;
      const at0 = this.layer.buffer + <usize>i * THIN_MAP_BLOCK_BYTES * THIN_MAP_COPIES;
      const at1 = at0 + THIN_MAP_BLOCK_BYTES;
      const count = m.entryCount(b);
      const valid0 = mapValid(at0, b, count);
      const valid1 = mapValid(at1, b, count);
      if (!valid0 && !valid1) return !this.fail("chunk map: neither copy of a map block is valid", b);
      // The newer valid copy: the other is the one a torn write may have hit.
      const copy: u32 = !valid0 ? 1 : !valid1 ? 0 : mapGeneration(at1) > mapGeneration(at0) ? 1 : 0;
      const at = copy == 1 ? at1 : at0;
      m.loadBlock(b, mapGeneration(at), copy);
      for (let e: u32 = 0; e < count; e++) {
        if (!m.loadEntry(b * THIN_MAP_ENTRIES_PER_BLOCK + e, mapEntry(at, e))) {
          return !this.fail("chunk map: an entry names a pool chunk out of range or one already mapped", b);
        }
      }
    }
    return this.mapBatch(this.nextBlock + this.batch);
  }

  // Writes empty map blocks from `first` (copy 0 at generation 1, copy 1 blank); then the flush.
  private formatBatch(first: u32): bool {
    const m = this.layer.map(this.volume);
    if (first == m.mapBlocks) {
      this.phase = LoadPhase.FormatFlush;
      assert(this.layer.childStart(ThinOwner.Load, 0, FrameFunction.Flush, volumeAt(this.volume).poolVolume, 0, 0, SGL_NONE), "thin: no child at boot");
      return false;
    }
    this.phase = LoadPhase.FormatMap;
    this.nextBlock = first;
    this.batch = min(BATCH_BLOCKS_MAX, m.mapBlocks - first);
    const bytes = this.batch * THIN_MAP_BLOCK_BYTES * THIN_MAP_COPIES;
    memory.fill(this.layer.buffer, 0, bytes);
    for (let i: u32 = 0; i < this.batch; i++) {
      mapSeal(this.layer.buffer + <usize>i * THIN_MAP_BLOCK_BYTES * THIN_MAP_COPIES, first + i, 0, m.entryCount(first + i), 1);
    }
    this.io(FrameFunction.Write, thinMapCopyLba(volumeAt(this.volume), first, 0), bytes);
    return false;
  }

  private onFormatMap(): bool { return this.formatBatch(this.nextBlock + this.batch); }

  private io(fn: u32, lba: u64, bytes: u32): void {
    const v = volumeAt(this.volume);
    const blocks = <u64>(bytes / v.blockSizeBytes);
    assert(this.layer.childFlat(ThinOwner.Load, 0, fn, v.poolVolume, lba, blocks, this.layer.buffer), "thin: no child or SGL block at boot");
  }

  // The volume is loaded: it serves I/O. True (finished with).
  private done(): bool {
    const v = volumeAt(this.volume);
    const m = this.layer.map(this.volume);
    m.loaded = true;
    v.chunksUsed = m.used;
    m.aboveThreshold = v.softThresholdPercent != 0 && <u64>m.used * 100 >= <u64>v.softThresholdPercent * <u64>m.usableChunks;
    m.full = m.used == m.usableChunks;
    return true;
  }

  // The volume fails with `reason` (and the map block, if any). Returns false (so `!fail` reads "finished with").
  private fail(reason: string, block: u32): bool {
    const v = volumeAt(this.volume);
    v.state = VolumeState.Failed;
    this.layer.map(this.volume).loaded = false;
    this.failed += 1;
    const l = line().s("thin: volume ");
    if (v.nameBytes == 0) l.s("volume").u32(this.volume);
    else l.bytes(changetype<usize>(v.name), v.nameBytes);
    l.s(" failed: ").s(reason);
    if (block != NONE) l.s(" (map block ").u32(block).s(")");
    l.err();
    this.phase = LoadPhase.Idle;
    return false;
  }
}
