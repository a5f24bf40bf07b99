// A disk volume: one whole disk, block for block (today's 1:1).
import { Extent } from "./extent";
import { Volume } from "./volume";

export function diskCapacityBlocks(v: Volume): u64 {
  const m = v.member(0);
  return m.present ? m.blockCount : 0;
}

/** The whole range, on the one disk. */
export function diskMap(v: Volume, lba: u64, blocks: u64, into: Extent): void {
  const m = v.member(0);
  into.member = 0;
  into.processor = m.processor;
  into.disk = m.disk;
  into.lba = lba;
  into.blocks = blocks;
}
