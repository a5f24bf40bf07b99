// One thin volume's chunk map in RAM, carved at boot from its virtual size and chunk size: an entry per virtual chunk
// (0 unmapped, else pool chunk + 1, as on disk), a bitmap of the pool chunks in use, and per map block the
// generations written and made durable, whether it changed since its last write, and which copy holds the durable
// one. The CTA's thin layer (thin.ts) changes it; map writes (thin.ts, commits) make each change durable.
import { carve } from "../kernel/carve";
import { THIN_CHUNK_NONE, THIN_MAP_ENTRIES_PER_BLOCK, thinMapBlocks, thinVirtualChunks } from "../volumes/thin";
import { Volume } from "../volumes/volume";

// Map block state: |0 writeGeneration u64|8 durableGeneration u64|16 flags u8|17-23 -|; read and written only through
// the accessors below.
const BLOCK_STATE_BYTES: u32 = 24;
const AT_WRITE_GENERATION: usize = 0;
const AT_DURABLE_GENERATION: usize = 8;
const AT_FLAGS: usize = 16;
if (AT_FLAGS + 1 + 7 != BLOCK_STATE_BYTES) ERROR("thin map block state: flags and the unused tail end the record");
@inline function stateWriteGeneration(at: usize): u64 { return load<u64>(at, AT_WRITE_GENERATION); }
@inline function stateDurableGeneration(at: usize): u64 { return load<u64>(at, AT_DURABLE_GENERATION); }
@inline function stateFlags(at: usize): u8 { return load<u8>(at, AT_FLAGS); }
@inline function stateSetWriteGeneration(at: usize, generation: u64): void { store<u64>(at, generation, AT_WRITE_GENERATION); }
@inline function stateSetDurableGeneration(at: usize, generation: u64): void { store<u64>(at, generation, AT_DURABLE_GENERATION); }
@inline function stateSetFlags(at: usize, flags: u8): void { store<u8>(at, flags, AT_FLAGS); }
const FLAG_DIRTY: u8 = 1; // changed since the last write started
const FLAG_WRITING: u8 = 2; // a write of it is in flight
const FLAG_DURABLE_COPY_1: u8 = 4; // the durable generation is in copy 1 (else copy 0)

export class ThinMap {
  readonly volume: u32;
  readonly virtualChunks: u32;
  readonly mapBlocks: u32;
  readonly carved: bool; // false: over the RAM set aside for thin maps; the volume fails at load
  private readonly entries: usize;
  private readonly bitmap: usize;
  private readonly blockStates: usize;
  usableChunks: u32 = 0; // pool chunks it may hand out (set at load)
  poolChunks: u64 = 0; // the pool's chunks after the metadata (the threshold's and the report's base)
  used: u32 = 0;
  loaded: bool = false; // the map was read (or formatted) and the volume serves I/O
  aboveThreshold: bool = false;
  full: bool = false;
  dirtyBlocks: u32 = 0; // map blocks changed since their last write started
  commitFailures: u32 = 0; // map writes failed in a row
  private cursor: u32 = 0; // where the next free-chunk search starts

  constructor(volume: u32, v: Volume, fits: bool) {
    this.volume = volume;
    this.virtualChunks = thinVirtualChunks(v);
    this.mapBlocks = thinMapBlocks(v);
    this.carved = fits;
    this.entries = fits ? carve(this.virtualChunks * 4, 16) : 0;
    this.bitmap = fits ? carve((this.virtualChunks + 7) / 8, 16) : 0;
    this.blockStates = fits ? carve(this.mapBlocks * BLOCK_STATE_BYTES, 16) : 0;
  }

  /** RAM the map of `v` takes. */
  static bytesFor(v: Volume): u64 {
    const chunks = <u64>thinVirtualChunks(v);
    return chunks * 4 + (chunks + 7) / 8 + <u64>thinMapBlocks(v) * BLOCK_STATE_BYTES + 48;
  }

  /** The pool chunk virtual chunk `vc` maps to, or THIN_CHUNK_NONE. */
  lookup(vc: u32): u32 {
    assert(vc < this.virtualChunks, "thin: virtual chunk out of range");
    const raw = load<u32>(this.entries + <usize>vc * 4);
    return raw == 0 ? THIN_CHUNK_NONE : raw - 1;
  }

  /** Raw entry (as on disk) of `vc`. */
  raw(vc: u32): u32 { assert(vc < this.virtualChunks); return load<u32>(this.entries + <usize>vc * 4); }

  /** Maps `vc` to `chunk` (THIN_CHUNK_NONE: unmaps it); its map block is dirty. Returns the generation that covers it. */
  set(vc: u32, chunk: u32): u64 {
    assert(vc < this.virtualChunks, "thin: virtual chunk out of range");
    store<u32>(this.entries + <usize>vc * 4, chunk == THIN_CHUNK_NONE ? 0 : chunk + 1);
    const b = vc / THIN_MAP_ENTRIES_PER_BLOCK;
    const at = this.blockState(b);
    if ((stateFlags(at) & FLAG_DIRTY) == 0) this.dirtyBlocks += 1;
    stateSetFlags(at, stateFlags(at) | FLAG_DIRTY);
    return stateWriteGeneration(at) + 1; // the next write to start
  }

  /** At load: the entry as read, its chunk marked in use. False when it is out of range or used twice. */
  loadEntry(vc: u32, raw: u32): bool {
    if (raw == 0) { store<u32>(this.entries + <usize>vc * 4, 0); return true; }
    const chunk = raw - 1;
    if (chunk >= this.usableChunks || this.inUse(chunk)) return false;
    store<u32>(this.entries + <usize>vc * 4, raw);
    this.mark(chunk, true);
    this.used += 1;
    return true;
  }

  /** Forgets everything (before a load or format). */
  reset(): void {
    memory.fill(this.entries, 0, this.virtualChunks * 4);
    memory.fill(this.bitmap, 0, (this.virtualChunks + 7) / 8);
    memory.fill(this.blockStates, 0, this.mapBlocks * BLOCK_STATE_BYTES);
    this.used = 0;
    this.cursor = 0;
    this.dirtyBlocks = 0;
    this.commitFailures = 0;
  }

  /** Takes a free pool chunk, or THIN_CHUNK_NONE when the pool is full. */
  takeFree(): u32 {
    for (let i: u32 = 0; i < this.usableChunks; i++) {
      const chunk = (this.cursor + i) % this.usableChunks;
      if ((chunk & 7) == 0 && chunk + 8 <= this.usableChunks && load<u8>(this.bitmap + (chunk >> 3)) == 0xff) {
        i += 7; // eight in use: the next byte (bounded by usableChunks all the same)
        continue;
      }
      if (this.inUse(chunk)) continue;
      this.mark(chunk, true);
      this.used += 1;
      this.cursor = (chunk + 1) % this.usableChunks;
      return chunk;
    }
    return THIN_CHUNK_NONE;
  }

  /** Gives a pool chunk back. */
  release(chunk: u32): void {
    assert(chunk < this.usableChunks && this.inUse(chunk), "thin: freeing a chunk not in use");
    this.mark(chunk, false);
    this.used -= 1;
  }

  inUse(chunk: u32): bool { return (load<u8>(this.bitmap + (chunk >> 3)) & (<u8>1 << <u8>(chunk & 7))) != 0; }

  private mark(chunk: u32, on: bool): void {
    const at = this.bitmap + (chunk >> 3);
    const bit = <u8>1 << <u8>(chunk & 7);
    store<u8>(at, on ? load<u8>(at) | bit : load<u8>(at) & ~bit);
  }

  // ---- Map block generations ----

  dirty(b: u32): bool { return (stateFlags(this.blockState(b)) & FLAG_DIRTY) != 0; }
  writing(b: u32): bool { return (stateFlags(this.blockState(b)) & FLAG_WRITING) != 0; }
  durableGeneration(b: u32): u64 { return stateDurableGeneration(this.blockState(b)); }
  durableCopy(b: u32): u32 { return (stateFlags(this.blockState(b)) & FLAG_DURABLE_COPY_1) != 0 ? 1 : 0; }

  /** Starts a write of block `b`: its new generation (the copy to write is the other one than the durable). */
  writeStart(b: u32): u64 {
    const at = this.blockState(b);
    assert(!this.writing(b), "thin: two writes of one map block");
    assert(this.dirty(b), "thin: writing a clean map block");
    const generation = stateWriteGeneration(at) + 1;
    stateSetWriteGeneration(at, generation);
    this.dirtyBlocks -= 1;
    stateSetFlags(at, (stateFlags(at) & ~FLAG_DIRTY) | FLAG_WRITING);
    return generation;
  }

  /** The write of `generation` ended; when `ok` it is durable in `copy`, else the block stays to be written again. */
  writeDone(b: u32, generation: u64, copy: u32, ok: bool): void {
    const at = this.blockState(b);
    let flags = stateFlags(at) & ~FLAG_WRITING;
    if (ok) {
      stateSetDurableGeneration(at, generation);
      flags = copy == 1 ? flags | FLAG_DURABLE_COPY_1 : flags & ~FLAG_DURABLE_COPY_1;
    } else if ((flags & FLAG_DIRTY) == 0) {
      flags |= FLAG_DIRTY;
      this.dirtyBlocks += 1;
    }
    stateSetFlags(at, flags);
  }

  /** At load: block `b` is durable at `generation` in `copy`. */
  loadBlock(b: u32, generation: u64, copy: u32): void {
    const at = this.blockState(b);
    stateSetWriteGeneration(at, generation);
    stateSetDurableGeneration(at, generation);
    stateSetFlags(at, copy == 1 ? FLAG_DURABLE_COPY_1 : 0);
  }

  /** Entries in map block `b`. */
  entryCount(b: u32): u32 {
    assert(b < this.mapBlocks);
    return min(THIN_MAP_ENTRIES_PER_BLOCK, this.virtualChunks - b * THIN_MAP_ENTRIES_PER_BLOCK);
  }

  private blockState(b: u32): usize {
    assert(b < this.mapBlocks, "thin: map block out of range");
    return this.blockStates + <usize>b * BLOCK_STATE_BYTES;
  }
}
