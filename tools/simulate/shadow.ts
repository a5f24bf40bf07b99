// The shadow model of the simulator: for every block of every LUN, which writes may be what it holds now.
//
// Every write the workload issues gets an id (1, 2, ...; 0 is the disk's initial all-zero content) and its blocks
// get content derived from (run key, id, LUN, LBA): a block read back names the write it came from, and the rest of
// its bytes prove it is that write's block and not another's (see blockContent). Each block keeps the records of the
// writes that touched it, with when each was issued and when it ended:
// - acknowledged (GOOD): ended when the initiator saw the status;
// - failed with a status (CHECK CONDITION): ended then too; any of its blocks may or may not have been written;
// - lost with its connection, or in flight at a board reset: it may still land until the target has let go of it,
//   so it ends `settleNs` after the loss (at once for a reset: the devices lost power with it).
// A write X is superseded once an acknowledged write Y was issued after X ended: from Y's acknowledgement on, the
// block can no longer hold X. A read issued at t0 and completed at t1 may return any write issued before t1 and not
// superseded before t0; after the run the disk must hold a write not superseded at all. Anything else is a wrong
// read, or (after the run) a lost acknowledged write.
import { BLOCK_BYTES } from "../iscsi/pdu.ts";

const WORDS_PER_BLOCK = BLOCK_BYTES / 4;
const HEADER_WORDS = 4; // |0 write id|1 LUN|2 LBA|3 run key|, little-endian words, then the generated words
const INITIAL: WriteRecord = { id: 0, issueNs: -Infinity, endNs: -Infinity, acked: true };
// A block's list is pruned when it grows past this many records.
const RECORDS_PRUNE_AT = 8;

export interface WriteRecord {
  readonly id: number;
  readonly issueNs: number;
  endNs: number; // Infinity while in flight
  acked: boolean;
}

/** What a block turned out to hold, against the model. */
export type BlockVerdict = "ok" | "stale" | "future" | "garbage";

/** The content of block `lba` of `lun` as write `id` writes it (id 0: zeros). */
export function blockContent(key: number, id: number, lun: number, lba: number, into: Uint32Array): void {
  if (id === 0) {
    into.fill(0);
    return;
  }
  into[0] = id;
  into[1] = lun;
  into[2] = lba;
  into[3] = key;
  // xorshift32 from a mix of the header: cheap, and a block of another write or place differs in almost every word.
  let x = (Math.imul(id, 0x9e3779b1) ^ Math.imul(lba + 1, 0x85ebca6b) ^ Math.imul(lun + 1, 0xc2b2ae35) ^ key) | 1;
  for (let i = HEADER_WORDS; i < WORDS_PER_BLOCK; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    into[i] = x;
  }
}

export class ShadowDisk {
  private readonly blocks = new Map<number, WriteRecord[]>(); // by LBA; absent: only the initial content
  private readonly expected = new Uint32Array(WORDS_PER_BLOCK);
  private nextId = 1;

  constructor(readonly lun: number, readonly blockCount: number, private readonly key: number) {}

  /** A write of `count` blocks at `lba` is issued: its record, to end with ended(). Fills `data` with its content. */
  issueWrite(id: number, lba: number, count: number, nowNs: number, data: Uint8Array): WriteRecord {
    this.nextId = Math.max(this.nextId, id + 1);
    const record: WriteRecord = { id, issueNs: nowNs, endNs: Infinity, acked: false };
    const words = new Uint32Array(data.buffer, data.byteOffset, (count * BLOCK_BYTES) / 4);
    for (let b = 0; b < count; b++) {
      blockContent(this.key, id, this.lun, lba + b, words.subarray(b * WORDS_PER_BLOCK, (b + 1) * WORDS_PER_BLOCK));
      let list = this.blocks.get(lba + b);
      if (list === undefined) this.blocks.set(lba + b, (list = [INITIAL]));
      list.push(record);
    }
    return record;
  }

  /** The write ended: acknowledged at `nowNs`, or no longer able to land after `endNs`. */
  ended(record: WriteRecord, endNs: number, acked: boolean): void {
    record.endNs = endNs;
    record.acked = acked;
  }

  /**
   * Checks one block a read returned (issued at `issueNs`, completed at `endNs`; `endNs` Infinity and `issueNs`
   * Infinity for the final check of the disk after the run).
   */
  check(lba: number, block: Uint8Array, issueNs: number, endNs: number): BlockVerdict {
    const words = new Uint32Array(block.buffer, block.byteOffset, WORDS_PER_BLOCK);
    const id = words[0]!;
    blockContent(this.key, id, this.lun, lba, this.expected);
    for (let i = 0; i < WORDS_PER_BLOCK; i++) if (words[i] !== this.expected[i]) return "garbage";
    const list = this.blocks.get(lba) ?? [INITIAL];
    const record = list.find((r) => r.id === id);
    // Not among the block's records: pruned (so superseded), misdirected here, or never issued. All are wrong.
    if (record === undefined) return id < this.nextId ? "stale" : "future";
    if (record.issueNs >= endNs) return "future";
    for (const later of list) {
      if (later.acked && later.issueNs > record.endNs && later.endNs < issueNs) return "stale";
    }
    return "ok";
  }

  /** Drops records superseded before `horizonNs` (no read still in flight started before it). */
  prune(horizonNs: number): void {
    for (const [lba, list] of this.blocks) {
      if (list.length <= RECORDS_PRUNE_AT) continue;
      const kept = list.filter((r) => !list.some((later) => later.acked && later.issueNs > r.endNs && later.endNs < horizonNs));
      this.blocks.set(lba, kept);
    }
  }

  /**
   * The write's blocks from `lba` on (`count` of them) were never written: the target said so (a thin write refused
   * with 27h/07h stops at the chunk it could not allocate). Its content there is now wrong wherever it shows.
   */
  retract(record: WriteRecord, lba: number, count: number): void {
    for (let b = lba; b < lba + count; b++) {
      const list = this.blocks.get(b);
      if (list !== undefined) this.blocks.set(b, list.filter((r) => r !== record));
    }
  }

  /** Every LBA a write touched, for the final check. */
  writtenBlocks(): IterableIterator<number> {
    return this.blocks.keys();
  }
}
