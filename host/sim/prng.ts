// The board's seeded random generator: every chance the emulator takes (latencies, faults, workload, the
// firmware's random_get) draws from one of these, so a run replays exactly from its seed.
//
// The generator is xoshiro128** (Blackman and Vigna, "Scrambled Linear Pseudorandom Number Generators") on four
// 32-bit words, which JavaScript computes exactly with Math.imul and >>> 0. BigInt appears only while seeding:
// splitmix64 (Steele, Lea and Flood, "Fast Splittable Pseudorandom Number Generators") turns any seed into the
// 128-bit state.

const MASK_64 = (1n << 64n) - 1n;
const SPLITMIX_GAMMA = 0x9e3779b97f4a7c15n;
const FNV_OFFSET_64 = 0xcbf29ce484222325n;
const FNV_PRIME_64 = 0x100000001b3n;
const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_53 = 2 ** 53;
// Mixed into a fork's label so that fork("x") never lands on the key of a string seed "x".
const FORK_DOMAIN = 0x666f726b5f6b6579n; // "fork_key" in ASCII

// splitmix64's output function: a bijection on 64-bit values that spreads every input bit over the output.
function mix64(value: bigint): bigint {
  let z = value & MASK_64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK_64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK_64;
  return z ^ (z >> 31n);
}

// FNV-1a over the UTF-8 bytes of `text`, then mixed: a stable 64-bit key for a string.
function hashText64(text: string): bigint {
  let hash = FNV_OFFSET_64;
  for (const byte of new TextEncoder().encode(text)) hash = ((hash ^ BigInt(byte)) * FNV_PRIME_64) & MASK_64;
  return mix64(hash);
}

// The 64-bit key a seed stands for. Integers are taken modulo 2^64 (so -1 and 2^64 - 1 are the same seed).
// A string of decimal digits means that integer, so `SEED=42` on a command line replays `seed: 42` from a
// board file; any other string is hashed.
function seedKey(seed: number | bigint | string): bigint {
  if (typeof seed === "bigint") return seed & MASK_64;
  if (typeof seed === "number") {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`Prng: seed ${seed} is not a safe integer`);
    return BigInt(seed) & MASK_64;
  }
  if (/^(0|[1-9][0-9]*)$/.test(seed)) return BigInt(seed) & MASK_64;
  return hashText64(seed);
}

export class Prng {
  // The key this stream was seeded from, kept so that fork() derives children from it and not from the state.
  private readonly key: bigint;
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number | bigint | string) {
    this.key = seedKey(seed);
    // Two splitmix64 outputs fill the four state words. They come from distinct counter values through a
    // bijection, so they cannot both be zero and the state is never the all-zero one xoshiro cannot leave.
    const first = mix64(this.key + SPLITMIX_GAMMA);
    const second = mix64(this.key + 2n * SPLITMIX_GAMMA);
    this.s0 = Number(first & 0xffff_ffffn);
    this.s1 = Number(first >> 32n);
    this.s2 = Number(second & 0xffff_ffffn);
    this.s3 = Number(second >> 32n);
  }

  // The next 32 bits, as an integer in [0, 2^32).
  nextU32(): number {
    const result = Math.imul(rotl32(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl32(this.s3, 11);
    return result;
  }

  // A float in [0, 1) with 53 random bits, every value a multiple of 2^-53.
  nextFloat(): number {
    const high = this.nextU32() >>> 5; // 27 bits
    const low = this.nextU32() >>> 6; // 26 bits
    return (high * 2 ** 26 + low) / TWO_POW_53;
  }

  // An integer in [0, n), each value equally likely, for an integer n in [1, 2^32].
  intBelow(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new RangeError(`Prng.intBelow: ${n} is not an integer from 1 to 2^32`);
    }
    if (n === TWO_POW_32) return this.nextU32();
    // Rejection keeps the result unbiased: draws at or above the largest multiple of n below 2^32 are retried.
    // Fewer than half of all draws are rejected, so the expected number of passes is below two.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const draw = this.nextU32();
      if (draw < limit) return draw % n;
    }
  }

  // Fills `bytes` with random bytes, four per 32-bit draw, least significant byte first.
  fill(bytes: Uint8Array): void {
    let index = 0;
    while (index < bytes.length) {
      let word = this.nextU32();
      const end = Math.min(index + 4, bytes.length);
      for (; index < end; index += 1) {
        bytes[index] = word & 0xff;
        word >>>= 8;
      }
    }
  }

  // An independent stream named `label`, derived from this stream's seed and the label only. Drawing from this
  // stream first does not change it, and forking the same label twice yields the same stream, so a new consumer
  // of randomness never shifts the numbers another consumer sees.
  fork(label: string): Prng {
    return new Prng(mix64(this.key ^ mix64(hashText64(label) ^ FORK_DOMAIN)));
  }
}

function rotl32(value: number, shift: number): number {
  return (value << shift) | (value >>> (32 - shift));
}
