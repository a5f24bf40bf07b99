// A split virtqueue (virtio §2.7; REFERENCE.md §4.3): the descriptor table, the available ring (driver → device)
// and the used ring (device → driver), carved at boot in RAM the device reaches by DMA; and the driver's own
// bookkeeping, kept out of the device's reach: the descriptor free list and each chain's links, so a device that
// scribbles over the table cannot make the driver free or reuse the wrong descriptors.
// Descriptor, 16 B: |0 addr le64|8 len le32|12 flags le16|14 next le16|
// Avail ring, 6 + 2·QS B: |0 flags le16|2 idx le16|4 ring[QS] le16|(used_event, unused without EVENT_IDX)|
// Used ring, 6 + 8·QS B:  |0 flags le16|2 idx le16|4 ring[QS] {id le32, len le32}|(avail_event, unused)|
// The idx fields are free-running u16 counters; ring slots are idx % QS.
import { carve } from "../../kernel/carve";

export const DESC_NONE: u32 = 0xffff;
const DESC_BYTES: u32 = 16;
const DESC_F_NEXT: u32 = 1;
const DESC_F_WRITE: u32 = 2; // device-writable
const RING_IDX: usize = 2;
const RING_ENTRIES: usize = 4;
const USED_ELEM_BYTES: u32 = 8;

export class Virtqueue {
  readonly desc: usize; // aligned 16
  readonly avail: usize; // aligned 2 (carved 4)
  readonly used: usize; // aligned 4
  private readonly freeNext: StaticArray<u16>; // free list link of each free descriptor
  private readonly chainNext: StaticArray<u16>; // the link of each descriptor in a chain, as the driver built it
  private freeHead: u32 = DESC_NONE;
  freeCount: u32 = 0;
  private availIdx: u32 = 0; // the next avail idx to publish (u16 arithmetic)
  usedSeen: u32 = 0; // the used idx up to which entries were consumed (u16 arithmetic)

  /** Carves the three parts for `size` entries. Boot only. */
  constructor(readonly size: u32) {
    assert(size >= 2 && size <= 32768, "virtqueue size out of range");
    assert((size & (size - 1)) == 0, "split virtqueues have a power-of-two size");
    this.desc = carve(size * DESC_BYTES, 16);
    this.avail = carve(6 + 2 * size, 4);
    this.used = carve(6 + size * USED_ELEM_BYTES, 4);
    this.freeNext = new StaticArray<u16>(size);
    this.chainNext = new StaticArray<u16>(size);
    this.reset();
  }

  /** Zeroes the rings and frees every descriptor: the queue as a device sees it after reset. */
  reset(): void {
    memory.fill(this.desc, 0, this.size * DESC_BYTES);
    memory.fill(this.avail, 0, 6 + 2 * this.size);
    memory.fill(this.used, 0, 6 + this.size * USED_ELEM_BYTES);
    this.freeHead = DESC_NONE;
    this.freeCount = 0;
    for (let i: i32 = <i32>this.size - 1; i >= 0; i--) {
      unchecked(this.freeNext[i] = <u16>this.freeHead);
      unchecked(this.chainNext[i] = <u16>DESC_NONE);
      this.freeHead = <u32>i;
      this.freeCount += 1;
    }
    this.availIdx = 0;
    this.usedSeen = 0;
  }

  /** Takes `count` free descriptors linked in order; returns the head. The caller checked freeCount. */
  chainAlloc(count: u32): u32 {
    assert(count > 0 && count <= this.freeCount, "virtqueue: chain longer than the free descriptors");
    const head = this.freeHead;
    let d = head;
    for (let i: u32 = 0; i < count; i++) {
      assert(d < this.size, "virtqueue free list corrupt");
      const next = <u32>unchecked(this.freeNext[d]);
      unchecked(this.chainNext[d] = <u16>(i + 1 < count ? next : DESC_NONE));
      if (i + 1 == count) this.freeHead = next;
      d = next;
    }
    this.freeCount -= count;
    return head;
  }

  /** The descriptor after `d` in its chain, or DESC_NONE. */
  chainNextOf(d: u32): u32 {
    assert(d < this.size);
    return <u32>unchecked(this.chainNext[d]);
  }

  /** Writes descriptor `d` of a chain: NEXT follows the driver's own links. */
  descFill(d: u32, address: u64, lengthBytes: u32, deviceWritable: bool): void {
    const next = this.chainNextOf(d);
    const flags = (deviceWritable ? DESC_F_WRITE : 0) | (next != DESC_NONE ? DESC_F_NEXT : 0);
    const entry = this.desc + <usize>d * DESC_BYTES;
    store<u64>(entry, address, 0);
    store<u32>(entry, lengthBytes, 8);
    store<u16>(entry, <u16>flags, 12);
    store<u16>(entry, <u16>(next != DESC_NONE ? next : 0), 14);
  }

  /** Returns the `count` descriptors of the chain at `head` to the free list, walking the driver's links. */
  chainFree(head: u32, count: u32): void {
    let d = head;
    for (let i: u32 = 0; i < count; i++) {
      assert(d < this.size, "virtqueue chain shorter than its count");
      const next = <u32>unchecked(this.chainNext[d]);
      unchecked(this.chainNext[d] = <u16>DESC_NONE);
      unchecked(this.freeNext[d] = <u16>this.freeHead);
      this.freeHead = d;
      d = next;
    }
    assert(d == DESC_NONE, "virtqueue chain longer than its count");
    this.freeCount += count;
    assert(this.freeCount <= this.size, "virtqueue descriptors freed twice");
  }

  /** Makes the chain at `head` available: the ring entry first, then idx with a release store (virtio §2.7.13). */
  publish(head: u32): void {
    assert(head < this.size);
    store<u16>(this.avail + RING_ENTRIES + <usize>((this.availIdx & (this.size - 1)) * 2), <u16>head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    atomic.store<u16>(this.avail + RING_IDX, <u16>this.availIdx);
  }

  /** The device's used idx (an acquire load: the entries before it are visible after it). */
  usedIdx(): u32 { return <u32>atomic.load<u16>(this.used + RING_IDX); }

  /** The used element at free-running position `position`: its chain head id and the bytes written. */
  usedId(position: u32): u32 {
    return load<u32>(this.used + RING_ENTRIES + <usize>((position & (this.size - 1)) * USED_ELEM_BYTES), 0);
  }

  usedLen(position: u32): u32 {
    return load<u32>(this.used + RING_ENTRIES + <usize>((position & (this.size - 1)) * USED_ELEM_BYTES), 4);
  }
}
