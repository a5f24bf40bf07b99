// A parity scrub of a RAID-5 volume read straight from its members' disk images, with the layout docs/volumes.md
// documents: every member keeps its first 1 MiB for metadata, data after it in stripe units (chunks), and in each
// stripe row one chunk per member, parity among them, so the row's chunks XOR to zero whatever the rotation.

import { RAID_METADATA_BYTES } from "../../host/board/volume_geometry.ts";

export { RAID_METADATA_BYTES };

export interface ScrubResult {
  rows: number; // stripe rows checked
  mismatches: number[]; // rows whose chunks do not XOR to zero
  rowsWithData: number; // rows holding any non-zero byte: a scrub of blank members proves nothing
}

/** Checks every whole stripe row of `members` (their images, in any order) with `chunkBytes` chunks. */
export function scrubRaid5(members: readonly Uint8Array[], chunkBytes: number): ScrubResult {
  const smallest = Math.min(...members.map((m) => m.length));
  const rows = Math.floor((smallest - RAID_METADATA_BYTES) / chunkBytes);
  const mismatches: number[] = [];
  let rowsWithData = 0;
  // 32-bit words: a chunk is a whole number of them, and a copy aligns an image that does not start on one.
  const words = members.map((m) => new Uint32Array(m.byteOffset % 4 === 0 ? m.buffer : m.slice().buffer, m.byteOffset % 4 === 0 ? m.byteOffset : 0, m.length >> 2));
  const chunkWords = chunkBytes >> 2;
  const xor = new Uint32Array(chunkWords);
  for (let row = 0; row < rows; row++) {
    const start = (RAID_METADATA_BYTES + row * chunkBytes) >> 2;
    xor.fill(0);
    let data = false;
    for (const member of words) {
      for (let i = 0; i < chunkWords; i++) {
        const word = member[start + i]!;
        xor[i] = xor[i]! ^ word;
        if (word !== 0) data = true;
      }
    }
    if (data) rowsWithData += 1;
    if (xor.some((b) => b !== 0)) mismatches.push(row);
  }
  return { rows, mismatches, rowsWithData };
}
