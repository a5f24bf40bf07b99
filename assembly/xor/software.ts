// The software fallback: the XOR of a request's sources into its destination, done by the processor itself when
// the board has no XOR engine. A pass covers one range of the request, so the task bounds the work per run.
// Addresses are bus addresses of this processor's RAM, which is the firmware's own memory (docs/board-abi.md).
import { XOR_ADDRESS_ALIGN_BYTES, XOR_SOURCES_MAX } from "./descriptor";

/**
 * XORs bytes [offsetBytes, offsetBytes + lengthBytes) of `sourceCount` sources (the u64 addresses at `sources`)
 * into the destination at the same offsets, a word at a time: every source's word is read before the destination's
 * is written, so a destination equal to a source accumulates in place. Returns the OR of the result words (zero
 * when that range of the result is all zeros).
 */
export function xorSoftware(destination: u64, sources: usize, sourceCount: u32, offsetBytes: u32, lengthBytes: u32, write: bool): u64 {
  assert(sourceCount > 0 && sourceCount <= XOR_SOURCES_MAX, "xor: source count out of range");
  assert(offsetBytes % XOR_ADDRESS_ALIGN_BYTES == 0 && lengthBytes % XOR_ADDRESS_ALIGN_BYTES == 0, "xor: range not in words");
  let any: u64 = 0;
  // Bound: lengthBytes / 8 words, each over at most XOR_SOURCES_MAX sources.
  for (let at: u32 = offsetBytes; at < offsetBytes + lengthBytes; at += 8) {
    let word: u64 = load<u64>(<usize>load<u64>(sources) + at);
    for (let s: u32 = 1; s < sourceCount; s++) word ^= load<u64>(<usize>load<u64>(sources + <usize>s * 8) + at);
    if (write) store<u64>(<usize>destination + at, word);
    any |= word;
  }
  return any;
}
