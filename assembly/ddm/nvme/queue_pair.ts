// One submission queue and its completion queue, in RAM the controller reaches by DMA, reserved at boot (NVMe 1.4
// §4.1), and the driver's side of them: the SQ tail it writes, the CQ head it consumes and the phase tag it expects
// there (1 after creation, inverted at each wrap, §4.6). The controller's writes are read only through the entry at
// the head; nothing it writes moves the driver's indexes except a completion whose phase tag is the expected one.
import { cqeDw3, dw3Phase } from "./command";
import { CQ_ENTRY_BYTES, SQ_ENTRY_BYTES } from "./registers";

export class QueuePair {
  // sq and cq: page aligned, one contiguous area each (CAP.CQR), of entries × 64 and entries × 16 bytes.
  size: u32; // entries in use: at most `entries`, as CAP.MQES allows
  sqTail: u32 = 0;
  cqHead: u32 = 0;
  phase: u32 = 1;
  sqDoorbell: u64 = 0;
  cqDoorbell: u64 = 0;

  /** Both rings for `entries` entries, at `sq` and `cq`. Boot only. */
  constructor(readonly id: u32, readonly entries: u32, readonly sq: usize, readonly cq: usize) {
    assert(entries >= 2 && entries <= 1024, "nvme: queue entries out of range");
    assert((sq & 4095) == 0 && (cq & 4095) == 0, "nvme: queues are page aligned");
    this.size = entries;
    this.reset(entries);
  }

  /** Empty rings of `size` entries (CQ all zeros: no entry carries phase 1 yet). */
  reset(size: u32): void {
    assert(size >= 2 && size <= this.entries);
    this.size = size;
    memory.fill(this.sq, 0, this.entries * SQ_ENTRY_BYTES);
    memory.fill(this.cq, 0, this.entries * CQ_ENTRY_BYTES);
    this.sqTail = 0;
    this.cqHead = 0;
    this.phase = 1;
  }

  /** The SQ entry at the tail, to be filled and then pushed. */
  @inline sqeNext(): usize { return this.sq + <usize>this.sqTail * SQ_ENTRY_BYTES; }

  push(): void { this.sqTail = (this.sqTail + 1) % this.size; }

  /** The CQ entry at the head. */
  @inline cqeHead(): usize { return this.cq + <usize>this.cqHead * CQ_ENTRY_BYTES; }

  /** True when the entry at the head carries the expected phase: a new completion. */
  fresh(): bool { return dw3Phase(cqeDw3(this.cqeHead())) == this.phase; }

  cqAdvance(): void {
    this.cqHead += 1;
    if (this.cqHead == this.size) {
      this.cqHead = 0;
      this.phase ^= 1;
    }
  }
}
