// Boot-time carving: every pool, queue, table and ring takes its memory here, once, before boot() returns.
// After carveSeal() any carve is a programmer error: nothing allocates after boot.

let sealed = false;
let carvedBytes: u64 = 0;

/** Reserves `sizeBytes` aligned to `alignBytes` (a power of two), zero-filled. Boot only. */
export function carve(sizeBytes: u32, alignBytes: u32 = 16): usize {
  assert(!sealed, "carve after boot");
  assert(alignBytes != 0 && (alignBytes & (alignBytes - 1)) == 0, "alignment is a power of two");
  const raw = heap.alloc(<usize>sizeBytes + alignBytes);
  const ptr = (raw + alignBytes - 1) & ~(<usize>alignBytes - 1);
  memory.fill(ptr, 0, sizeBytes);
  carvedBytes += sizeBytes + alignBytes;
  return ptr;
}

/** Ends boot: from here on, carve() asserts. */
export function carveSeal(): void { sealed = true; }

export function carveSealed(): bool { return sealed; }

/** Bytes reserved so far, alignment slack included. */
export function carveTotalBytes(): u64 { return carvedBytes; }

/** The address the next allocation would take: must not move after boot. */
export function heapTop(): usize {
  const probe = heap.alloc(16);
  heap.free(probe);
  return probe;
}
