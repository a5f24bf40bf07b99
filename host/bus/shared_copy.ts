// Copies to and from shared memory (a processor's RAM, a worker's slabs) at full speed. V8 copies the bytes of a
// SharedArrayBuffer with relaxed atomic loads and stores (TypedArray set and slice, Buffer copy), a word at a time
// only when source and target sit at the same address modulo 8, else byte by byte: measured on this machine (Node
// 20.20), 1 MiB into shared memory 0.044 ms aligned, 0.29 ms not. So a copy whose two sides are not so aligned goes
// through a scratch buffer (not shared, so its own copy is a plain memmove) placed at the shared side's alignment:
// two or three copies at word speed instead of one byte by byte. The bytes are the same either way.

/** Below this a copy is done as it comes: the relaxed byte loop is cheap for a few words. */
const BOUNCE_BYTES_MIN = 256;
/** A copy goes through the scratch buffers this much at a time (they stay in the caches). */
const CHUNK_BYTES = 256 << 10;

const scratchSource = new Uint8Array(CHUNK_BYTES + 8);
const scratchTarget = new Uint8Array(CHUNK_BYTES + 8);

function isShared(bytes: Uint8Array): boolean {
  return bytes.buffer instanceof SharedArrayBuffer;
}

/** `target.set(source, targetOffset)`, each side shared or not, at word speed whatever their alignment. */
export function copyBytes(target: Uint8Array, targetOffset: number, source: Uint8Array): void {
  const length = source.length;
  const targetAt = target.byteOffset + targetOffset;
  if (length < BOUNCE_BYTES_MIN || ((targetAt - source.byteOffset) & 7) === 0) {
    target.set(source, targetOffset);
    return;
  }
  const sourceShared = isShared(source);
  const targetShared = isShared(target);
  if (!sourceShared && !targetShared) {
    target.set(source, targetOffset);
    return;
  }
  if (targetOffset < 0 || targetOffset + length > target.length) throw new RangeError("copyBytes: the source does not fit in the target");
  if (source.buffer === target.buffer && source.byteOffset < targetAt + length && targetAt < source.byteOffset + length) {
    // Overlapping ranges of one buffer: set() copies them as memmove does; the chunks below would overwrite source
    // bytes not yet read once the copy is longer than a chunk.
    target.set(source, targetOffset);
    return;
  }
  for (let from = 0; from < length; from += CHUNK_BYTES) {
    const take = Math.min(CHUNK_BYTES, length - from);
    let piece = source.subarray(from, from + take);
    if (sourceShared) { // out of shared memory into scratch at the source's alignment: word speed
      const k = piece.byteOffset & 7;
      const out = scratchSource.subarray(k, k + take);
      out.set(piece);
      piece = out;
    }
    if (targetShared) { // into scratch at the target's alignment (a plain memmove), then into shared memory at word speed
      const k = (targetAt + from) & 7;
      const out = scratchTarget.subarray(k, k + take);
      out.set(piece);
      piece = out;
    }
    target.set(piece, targetOffset + from);
  }
}

/** A copy of `source` (shared or not) in a buffer of its own, as `source.slice()` makes, at word speed. */
export function copyOf(source: Uint8Array): Uint8Array {
  const out = new Uint8Array(source.length);
  copyBytes(out, 0, source);
  return out;
}
