// The fuzzing build's entry: the release image's exports (board ABI v1, unchanged) plus two read-only probes the
// fuzzer's leak oracle reads once the board quiesces. Nothing here changes what the firmware does; the release
// image (assembly/index.ts) never carries these. tools/fuzz/instrument.ts adds the coverage counters afterwards.
export * from "../../../assembly/index";
import { BUFFER_CLASS_COUNT } from "../../../assembly/config";
import { bufferPool, sgls } from "../../../assembly/kernel/buffers";
import { frames } from "../../../assembly/rta/links";

/** Data buffers of every class and SGL blocks not in their pools. */
export function fuzzBuffersInUse(): u32 {
  let used: u32 = 0;
  for (let c: u32 = 0; c < BUFFER_CLASS_COUNT; c++) used += bufferPool(c).capacity - bufferPool(c).freeCount;
  return used + sgls().blocks.capacity - sgls().blocks.freeCount;
}

/** Message frames not in the frame pool. */
export function fuzzFramesInUse(): u32 {
  const pool = frames();
  return pool.capacity - pool.freeCount;
}
