/* The board's NOR flash in the file `wasm-iop flash` writes (docs/image-format.md, "The flash"): 64 KiB erase
 * blocks; two boot-state blocks, then slots A and B of equal whole blocks. Programming only clears bits; an erase sets
 * a block to 0xFF. Every step is written through to the file. And the boot ROM over it: the boot-state log,
 * the choice of slot with trial and revert, and confirm, as host/boot/boot_state.ts and rom.ts. */
#ifndef IOP_FLASH_H
#define IOP_FLASH_H
#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define FLASH_ERASE_BLOCK_BYTES 65536u
#define BOOT_STATE_BLOCK_COUNT 2u
#define SLOT_NONE (-1)

typedef struct {
  int fd;
  uint8_t *bytes;
  uint64_t size_bytes;
  uint64_t slot_offset[2], slot_bytes;
} flash;

typedef struct {
  uint32_t sequence;
  int active_slot, pending_slot, trial_slot; /* 0 A, 1 B, SLOT_NONE */
  uint32_t security_counter;
} boot_state;

typedef struct {
  const trusted_key *keys;
  size_t key_count;
  const char *board_compat;
  int abi_version;
} boot_policy;

/* Opens the flash file of a part with slots of `slot_mib` MiB; the file must exist with exactly that size. */
int flash_open(flash *f, const char *path, uint32_t slot_mib, char *error, size_t error_bytes);
void flash_close(flash *f);
boot_state boot_state_read(const flash *f);
/* Appends a record; -1 when the file write failed. */
int boot_state_write(flash *f, boot_state fields, boot_state *out);

typedef void (*rom_log_fn)(void *ctx, const char *line);

/* The ROM's choice (rom.ts bootSelect): 0 with the slot, its payload and whether it is on trial; -1 with
 * "no bootable slot (...)" in `error`. Each step is logged through `log` as the JS ROM words it. */
int rom_boot_select(flash *f, const boot_policy *policy, rom_log_fn log, void *log_ctx, int *slot, const uint8_t **payload,
                    uint32_t *payload_bytes, int *trial, decoded_image *decoded, char *error, size_t error_bytes);
/* The firmware on trial confirms itself (rom.ts confirm); logs what it did. */
void rom_confirm(flash *f, rom_log_fn log, void *log_ctx);
#endif
