#include "prng.h"

#include <string.h>

static const uint64_t SPLITMIX_GAMMA = 0x9e3779b97f4a7c15ull;
static const uint64_t FNV_OFFSET_64 = 0xcbf29ce484222325ull;
static const uint64_t FNV_PRIME_64 = 0x100000001b3ull;
static const uint64_t FORK_DOMAIN = 0x666f726b5f6b6579ull; /* "fork_key" */

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t hash_text64(const char *text) {
  uint64_t hash = FNV_OFFSET_64;
  for (const unsigned char *c = (const unsigned char *)text; *c != 0; c++) hash = (hash ^ *c) * FNV_PRIME_64;
  return mix64(hash);
}

static uint32_t rotl32(uint32_t v, int shift) { return (v << shift) | (v >> (32 - shift)); }

void prng_seed_key(prng *p, uint64_t key) {
  p->key = key;
  uint64_t first = mix64(key + SPLITMIX_GAMMA);
  uint64_t second = mix64(key + 2 * SPLITMIX_GAMMA);
  p->s[0] = (uint32_t)first;
  p->s[1] = (uint32_t)(first >> 32);
  p->s[2] = (uint32_t)second;
  p->s[3] = (uint32_t)(second >> 32);
}

void prng_seed_text(prng *p, const char *seed) {
  int digits = seed[0] != 0 && !(seed[0] == '0' && seed[1] != 0);
  for (const char *c = seed; *c != 0 && digits; c++) digits = *c >= '0' && *c <= '9';
  if (!digits) {
    prng_seed_key(p, hash_text64(seed));
    return;
  }
  uint64_t key = 0;
  for (const char *c = seed; *c != 0; c++) key = key * 10 + (uint64_t)(*c - '0'); /* wraps: mod 2^64 */
  prng_seed_key(p, key);
}

uint32_t prng_next_u32(prng *p) {
  uint32_t *s = p->s;
  uint32_t result = rotl32(s[1] * 5, 7) * 9;
  uint32_t t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl32(s[3], 11);
  return result;
}

void prng_fill(prng *p, uint8_t *bytes, size_t length) {
  size_t index = 0;
  while (index < length) {
    uint32_t word = prng_next_u32(p);
    for (size_t end = index + 4 < length ? index + 4 : length; index < end; index++) {
      bytes[index] = (uint8_t)word;
      word >>= 8;
    }
  }
}

void prng_fork(const prng *p, const char *label, prng *child) {
  prng_seed_key(child, mix64(p->key ^ mix64(hash_text64(label) ^ FORK_DOMAIN)));
}
