// The buffers a SCSI disk model reads into (host/devices/scsi_disk.ts): a READ's data waits in one from the command's
// execution until the controller copies it into the guest's buffers at its completion, then the buffer comes back
// here for the next READ. Without it every READ allocated a fresh backing store (4 KiB at QD32: one per request),
// which V8 accounts as external memory and collects with the young generation's work on both threads.
//
// Buffers come in power-of-two classes from CLASS_BYTES_MIN to CLASS_BYTES_MAX; a class keeps at most
// KEPT_BYTES_PER_CLASS of free buffers (and at least KEPT_COUNT_MIN), and all classes together at most
// KEPT_BYTES_TOTAL; more are left to the collector, so the pool's memory is bounded whatever the queue depth and the
// mix of sizes were. A length above CLASS_BYTES_MAX gets a fresh buffer every time.
// A buffer is lent until given back once; giving back a buffer twice, or one the pool did not lend, is ignored, so a
// caller's mistake can never hand the same bytes to two READs.

const CLASS_BYTES_MIN = 512;
// 1 MiB READs (QD8: eight in flight) come from the pool too: a fresh 1 MiB backing store per READ cost a zero fill,
// fresh pages and the collector's external-memory pressure (GC was 20% of a 1 MiB read's time). Larger READs get a
// fresh buffer each.
const CLASS_BYTES_MAX = 1 << 20;
const KEPT_BYTES_PER_CLASS = 8 << 20;
const KEPT_COUNT_MIN = 8;
const KEPT_COUNT_MAX = 128; // QD32 on each of several connections, with completions still waiting their turn
const KEPT_BYTES_TOTAL = 12 << 20; // eight 1 MiB buffers and the small classes' 4 MiB

export interface ReadBufferPoolStats {
  taken: number; // buffers handed out
  reused: number; // of those, how many came from the free lists
  given: number; // buffers given back and kept
}

export class ReadBufferPool {
  readonly stats: ReadBufferPoolStats = { taken: 0, reused: 0, given: 0 };
  private readonly free: ArrayBuffer[][] = []; // by class: log2(capacity / CLASS_BYTES_MIN)
  private readonly lent = new WeakSet<ArrayBuffer>();
  /** Bytes of the free buffers kept, all classes. */
  keptBytes = 0;

  constructor() {
    for (let capacity = CLASS_BYTES_MIN; capacity <= CLASS_BYTES_MAX; capacity *= 2) this.free.push([]);
  }

  /** A buffer of exactly `lengthBytes` bytes (contents undefined: the caller fills all of it). */
  take(lengthBytes: number): Uint8Array {
    this.stats.taken += 1;
    const classIndex = classOf(lengthBytes);
    if (classIndex < 0) return new Uint8Array(lengthBytes);
    const buffer = this.free[classIndex]!.pop();
    if (buffer !== undefined) {
      this.stats.reused += 1;
      this.keptBytes -= buffer.byteLength;
    }
    const backing = buffer ?? new ArrayBuffer(CLASS_BYTES_MIN << classIndex);
    this.lent.add(backing);
    return new Uint8Array(backing, 0, lengthBytes);
  }

  /** `data` (a view of a buffer from take()) is no longer used by anyone: its buffer may be lent again. */
  give(data: Uint8Array): void {
    const backing = data.buffer as ArrayBuffer;
    if (!this.lent.has(backing)) return;
    this.lent.delete(backing);
    const classIndex = classOf(backing.byteLength);
    const list = this.free[classIndex]!;
    if (list.length >= keptCountOf(classIndex) || this.keptBytes + backing.byteLength > KEPT_BYTES_TOTAL) return;
    list.push(backing);
    this.keptBytes += backing.byteLength;
    this.stats.given += 1;
  }

  /** Free buffers kept, all classes. */
  get keptCount(): number {
    return this.free.reduce((sum, list) => sum + list.length, 0);
  }
}

// The class a length falls in (the smallest that holds it), or -1 for 0 bytes and lengths above CLASS_BYTES_MAX.
function classOf(lengthBytes: number): number {
  if (lengthBytes <= 0 || lengthBytes > CLASS_BYTES_MAX) return -1;
  let classIndex = 0;
  while (CLASS_BYTES_MIN << classIndex < lengthBytes) classIndex += 1;
  return classIndex;
}

function keptCountOf(classIndex: number): number {
  const capacity = CLASS_BYTES_MIN << classIndex;
  return Math.min(KEPT_COUNT_MAX, Math.max(KEPT_COUNT_MIN, Math.floor(KEPT_BYTES_PER_CLASS / capacity)));
}
