/* The board's seeded generator, the same stream as host/sim/prng.ts: xoshiro128** seeded by splitmix64, with the
 * same fork(label) derivation, so random_get gives the firmware the bytes the JS board gives it for the same seed. */
#ifndef IOP_PRNG_H
#define IOP_PRNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t key;
  uint32_t s[4];
} prng;

/* A seed of decimal digits is that integer (mod 2^64); any other text is hashed, as in prng.ts. */
void prng_seed_text(prng *p, const char *seed);
void prng_seed_key(prng *p, uint64_t key);
uint32_t prng_next_u32(prng *p);
void prng_fill(prng *p, uint8_t *bytes, size_t length);
/* An independent stream derived from this one's seed and `label` only. */
void prng_fork(const prng *p, const char *label, prng *child);
#endif
