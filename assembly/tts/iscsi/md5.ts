// MD5 (RFC 1321) over memory ranges, for CHAP (RFC 1994: Response = MD5(Identifier || secret || Challenge)).
// The state lives in memory its owner reserves (MD5_STATE_BYTES), so hashing never allocates:
//   md5Init(state); md5Update(state, ptr, lengthBytes)…; md5Final(state, digest16)
// State: |0 A u32|4 B u32|8 C u32|12 D u32|16 lengthBytes u64|24 bufferedBytes u32|28 -|32 block[64]|
// MD5 is little-endian throughout (RFC 1321, "Terminology"): words load and store without bswap.

export const MD5_STATE_BYTES: u32 = 96;
export const MD5_DIGEST_BYTES: u32 = 16;
const MD5_BLOCK_BYTES: u32 = 64;
const STATE_LENGTH: usize = 16;
const STATE_BUFFERED: usize = 24;
const STATE_BLOCK: usize = 32;

// RFC 1321, step 4: T[i] = floor(2^32 × abs(sin(i + 1))).
const T: StaticArray<u32> = [
  0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
  0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
  0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
  0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
  0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
  0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
  0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
  0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

// Rotation amounts, four per round (RFC 1321, S11…S44).
const S: StaticArray<u32> = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

/** Starts a digest in the MD5_STATE_BYTES at `state`. */
export function md5Init(state: usize): void {
  store<u32>(state, 0x67452301, 0);
  store<u32>(state, 0xefcdab89, 4);
  store<u32>(state, 0x98badcfe, 8);
  store<u32>(state, 0x10325476, 12);
  store<u64>(state, 0, STATE_LENGTH);
  store<u32>(state, 0, STATE_BUFFERED);
}

/** Adds `lengthBytes` at `ptr` to the digest. */
export function md5Update(state: usize, ptr: usize, lengthBytes: u32): void {
  let buffered = load<u32>(state, STATE_BUFFERED);
  assert(buffered < MD5_BLOCK_BYTES, "md5: state not initialised");
  store<u64>(state, load<u64>(state, STATE_LENGTH) + <u64>lengthBytes, STATE_LENGTH);
  let at = ptr;
  let remaining = lengthBytes;
  // Each pass consumes at least one byte, or a whole block: bounded by lengthBytes.
  while (remaining > 0) {
    if (buffered == 0 && remaining >= MD5_BLOCK_BYTES) {
      md5Block(state, at);
      at += MD5_BLOCK_BYTES;
      remaining -= MD5_BLOCK_BYTES;
      continue;
    }
    const take = min(remaining, MD5_BLOCK_BYTES - buffered);
    memory.copy(state + STATE_BLOCK + buffered, at, take);
    buffered += take;
    at += take;
    remaining -= take;
    if (buffered == MD5_BLOCK_BYTES) {
      md5Block(state, state + STATE_BLOCK);
      buffered = 0;
    }
  }
  store<u32>(state, buffered, STATE_BUFFERED);
}

/** Pads, finishes, and writes the 16-byte digest at `digest`. The state must be initialised again before reuse. */
export function md5Final(state: usize, digest: usize): void {
  const bitCount = load<u64>(state, STATE_LENGTH) << 3;
  let buffered = load<u32>(state, STATE_BUFFERED);
  assert(buffered < MD5_BLOCK_BYTES, "md5: state not initialised");
  // RFC 1321, steps 1 and 2: a 1 bit, zeros to 56 mod 64 bytes, then the bit count, little-endian.
  const block = state + STATE_BLOCK;
  store<u8>(block + buffered, 0x80);
  buffered += 1;
  if (buffered > 56) {
    memory.fill(block + buffered, 0, MD5_BLOCK_BYTES - buffered);
    md5Block(state, block);
    buffered = 0;
  }
  memory.fill(block + buffered, 0, 56 - buffered);
  store<u64>(block, bitCount, 56);
  md5Block(state, block);
  memory.copy(digest, state, MD5_DIGEST_BYTES);
  store<u32>(state, MD5_BLOCK_BYTES, STATE_BUFFERED); // poisoned: update or final without init asserts
}

// RFC 1321, step 4: one 64-byte block into A, B, C, D.
function md5Block(state: usize, block: usize): void {
  const a0 = load<u32>(state, 0);
  const b0 = load<u32>(state, 4);
  const c0 = load<u32>(state, 8);
  const d0 = load<u32>(state, 12);
  let a = a0;
  let b = b0;
  let c = c0;
  let d = d0;
  for (let i: u32 = 0; i < 64; i++) {
    const round = i >> 4;
    let f: u32;
    let g: u32;
    if (round == 0) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (round == 1) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (round == 2) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    // i < 64 and g < 16 by the loop bound and the masks: the unchecked reads stay in the tables.
    const sum = a + f + unchecked(T[i]) + load<u32>(block + (<usize>g << 2));
    a = d;
    d = c;
    c = b;
    b = b + rotl<u32>(sum, unchecked(S[(round << 2) | (i & 3)]));
  }
  store<u32>(state, a0 + a, 0);
  store<u32>(state, b0 + b, 4);
  store<u32>(state, c0 + c, 8);
  store<u32>(state, d0 + d, 12);
}
