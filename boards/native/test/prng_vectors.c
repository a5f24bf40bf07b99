/* iop-native-prng SEED [LABEL] COUNT: prints COUNT 32-bit draws (decimal, one a line) of the board's generator seeded
 * with SEED, or of its fork LABEL, then 8 bytes of prng_fill. test/native/native_prng.test.ts compares them with
 * host/sim/prng.ts: random_get must give the firmware the JS board's bytes for the same seed. */
#include <stdio.h>
#include <stdlib.h>

#include "prng.h"

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: iop-native-prng SEED [LABEL] COUNT\n");
    return 2;
  }
  prng root, p;
  prng_seed_text(&root, argv[1]);
  if (argc == 4) prng_fork(&root, argv[2], &p);
  else p = root;
  int count = atoi(argv[argc - 1]);
  for (int i = 0; i < count; i++) printf("%u\n", prng_next_u32(&p));
  uint8_t bytes[7];
  prng_fill(&p, bytes, sizeof bytes);
  for (size_t i = 0; i < sizeof bytes; i++) printf("%02x", bytes[i]);
  printf("\n");
  return 0;
}
