/* The part of the board file (boards/board.schema.json) the native board supports, read with libcjson. A key or
 * value outside that part is refused with a message naming the file and the field: the native board never runs a
 * board it would model differently from the JS board. */
#ifndef IOP_BOARD_FILE_H
#define IOP_BOARD_FILE_H
#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define TRUSTED_KEYS_MAX 8

typedef struct {
  char name[64];
  char seed[32];
  char processor_name[32];
  uint32_t ram_mib;
  char flash_image[4096];
  uint32_t slot_size_mib;
  char board_compat[32];
  trusted_key keys[TRUSTED_KEYS_MAX];
  size_t key_count;
} board_spec;

int board_file_load(const char *path, board_spec *out, char *error, size_t error_bytes);
#endif
