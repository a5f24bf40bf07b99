// Data buffers in three size classes, carved at boot from the RAM size in the boot-info block.
import { BUFFER_CLASS_COUNT, bufferClassBytes, bufferClassCount, sglBlockCount } from "../config";
import { Pool, POOL_NONE } from "./pool";
import { SglStore } from "./sgl";

const pools = new StaticArray<Pool | null>(BUFFER_CLASS_COUNT);
let sglStore: SglStore | null = null;
const reserved = new StaticArray<u32>(BUFFER_CLASS_COUNT); // taken for good at boot (bufferReserve)

/** Bytes the buffer pools and SGL blocks of a processor with `ramBytes` need, alignment included. */
export function buffersPlanBytes(ramBytes: u64): u64 {
  let total: u64 = 0;
  for (let c: u32 = 0; c < BUFFER_CLASS_COUNT; c++) {
    const count = <u64>bufferClassCount(c, ramBytes);
    total += count * bufferClassBytes(c) + (count + 7) / 8 + 4096 + 64;
  }
  return total + <u64>sglBlockCount(ramBytes) * 160 + 4096;
}

export function buffersInit(ramBytes: u64): void {
  for (let c: u32 = 0; c < BUFFER_CLASS_COUNT; c++) {
    const bytes = bufferClassBytes(c);
    // Page-aligned slots for page and large buffers: a device may map them without splitting a page.
    const name = c == 0 ? "buf512" : c == 1 ? "buf4k" : "buf64k";
    unchecked(pools[c] = new Pool(name, bufferClassCount(c, ramBytes), bytes, min(bytes, 4096), true));
  }
  // The slots of every class together, after all the bookkeeping: [buffersFloor, buffersEnd) holds data only.
  for (let c: u32 = 0; c < BUFFER_CLASS_COUNT; c++) unchecked(pools[c])!.placeSlots();
  sglStore = new SglStore(sglBlockCount(ramBytes));
}

/** Where the data buffers begin: the first slot of the first class (after buffersInit). */
export function buffersFloor(): usize { return bufferPool(0).address(0); }
/** The first byte past the data buffers: nothing but buffers lies in [buffersFloor, buffersEnd). */
export function buffersEnd(): usize { return bufferPool(BUFFER_CLASS_COUNT - 1).slotsEnd(); }

export function bufferPool(bufferClass: u32): Pool {
  assert(bufferClass < BUFFER_CLASS_COUNT, "buffer class out of range");
  return unchecked(pools[bufferClass])!;
}

export function sgls(): SglStore { return sglStore!; }

/** Every pool's free list and held bitmap agree. */
export function buffersCheck(): void {
  for (let c: u32 = 0; c < BUFFER_CLASS_COUNT; c++) bufferPool(c).check();
  sgls().blocks.check();
}

/**
 * Takes a buffer of `bufferClass` for good, at boot, for a task's own fixed area (the iSCSI staging slots): its index,
 * or POOL_NONE when the pool is empty. buffersAllFree counts reserved buffers as free.
 */
export function bufferReserve(bufferClass: u32): u32 {
  const index = bufferPool(bufferClass).acquire();
  if (index != POOL_NONE) unchecked(reserved[bufferClass] += 1);
  return index;
}

/** How many buffers of `bufferClass` bufferReserve took. */
export function buffersReserved(bufferClass: u32): u32 {
  assert(bufferClass < BUFFER_CLASS_COUNT, "buffer class out of range");
  return unchecked(reserved[bufferClass]);
}

/** True when every buffer and SGL block is back in its pool (reserved buffers count as back). */
export function buffersAllFree(): bool {
  for (let c: u32 = 0; c < BUFFER_CLASS_COUNT; c++) {
    const pool = bufferPool(c);
    if (pool.freeCount + unchecked(reserved[c]) != pool.capacity) return false;
  }
  return sgls().blocks.freeCount == sgls().blocks.capacity;
}
