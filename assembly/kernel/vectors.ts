// Interrupt vectors of this processor, handed out at boot to whoever programs a device's MSI-X table.
import { VECTORS_MAX } from "../config";

export const VECTOR_NONE: u32 = 0xffff_ffff;
let next: u32 = 0;

/** `count` consecutive vectors, or VECTOR_NONE when too few are left. Boot only. */
export function vectorAllocate(count: u32): u32 {
  if (count == 0 || next + count > VECTORS_MAX) return VECTOR_NONE;
  const first = next;
  next += count;
  return first;
}
