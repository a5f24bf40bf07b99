#include "flash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOT_RECORD_MAGIC 0x41545342u
#define BOOT_RECORD_BYTES 32u
#define SLOT_CODE_NONE 0xffu

static const char SLOT_NAME[2] = {'A', 'B'};

int flash_open(flash *f, const char *path, uint32_t slot_mib, char *error, size_t error_bytes) {
  memset(f, 0, sizeof *f);
  f->fd = -1;
  uint64_t slot_bytes = (uint64_t)slot_mib << 20;
  f->size_bytes = BOOT_STATE_BLOCK_COUNT * FLASH_ERASE_BLOCK_BYTES + 2 * slot_bytes;
  f->slot_bytes = slot_bytes;
  f->slot_offset[0] = BOOT_STATE_BLOCK_COUNT * FLASH_ERASE_BLOCK_BYTES;
  f->slot_offset[1] = f->slot_offset[0] + slot_bytes;
  int fd = open(path, O_RDWR);
  if (fd < 0) {
    snprintf(error, error_bytes, "cannot open flash file %s: %s (write an image with `wasm-iop flash` first)", path,
             strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != f->size_bytes) {
    snprintf(error, error_bytes, "flash file %s is %" PRIu64 " bytes; the board's flash is %" PRIu64, path,
             (uint64_t)st.st_size, f->size_bytes);
    close(fd);
    return -1;
  }
  f->bytes = malloc(f->size_bytes);
  if (f->bytes == NULL || pread(fd, f->bytes, f->size_bytes, 0) != (ssize_t)f->size_bytes) {
    snprintf(error, error_bytes, "cannot read flash file %s", path);
    free(f->bytes);
    close(fd);
    return -1;
  }
  f->fd = fd;
  return 0;
}

void flash_close(flash *f) {
  if (f->fd >= 0) close(f->fd);
  free(f->bytes);
  f->bytes = NULL;
  f->fd = -1;
}

/* One program step: clears bits only (a 1 over a programmed 0 stays 0), written through. */
static int flash_program(flash *f, uint64_t offset, const uint8_t *data, size_t length) {
  for (size_t i = 0; i < length; i++) f->bytes[offset + i] &= data[i];
  return pwrite(f->fd, f->bytes + offset, length, (off_t)offset) == (ssize_t)length ? 0 : -1;
}

static int flash_erase_block(flash *f, uint64_t block) {
  uint64_t offset = block * FLASH_ERASE_BLOCK_BYTES;
  memset(f->bytes + offset, 0xff, FLASH_ERASE_BLOCK_BYTES);
  return pwrite(f->fd, f->bytes + offset, FLASH_ERASE_BLOCK_BYTES, (off_t)offset) == FLASH_ERASE_BLOCK_BYTES ? 0 : -1;
}

/* ---- the boot-state log (boot_state.ts) ---- */
static uint32_t crc32_ieee(const uint8_t *bytes, size_t length) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < length; i++) {
    crc ^= bytes[i];
    for (int bit = 0; bit < 8; bit++) crc = (crc & 1) ? 0xedb88320u ^ (crc >> 1) : crc >> 1;
  }
  return crc ^ 0xffffffffu;
}
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}
static int slot_from_code(uint8_t code, int *slot) {
  if (code == SLOT_CODE_NONE) *slot = SLOT_NONE;
  else if (code <= 1) *slot = code;
  else return -1;
  return 0;
}

static int decode_record(const uint8_t *r, boot_state *out) {
  if (le32(r) != BOOT_RECORD_MAGIC || le32(r + 28) != crc32_ieee(r, 28)) return -1;
  boot_state s;
  s.sequence = le32(r + 4);
  if (slot_from_code(r[8], &s.active_slot) || slot_from_code(r[9], &s.pending_slot) || slot_from_code(r[10], &s.trial_slot) ||
      s.sequence == 0)
    return -1;
  s.security_counter = le32(r + 12);
  *out = s;
  return 0;
}

typedef struct {
  boot_state latest;
  int block; /* -1: no record */
  uint32_t record;
} log_scan;

static log_scan scan_log(const flash *f) {
  log_scan scan = {{0, SLOT_NONE, SLOT_NONE, SLOT_NONE, 0}, -1, 0};
  uint32_t per_block = FLASH_ERASE_BLOCK_BYTES / BOOT_RECORD_BYTES;
  for (uint32_t block = 0; block < BOOT_STATE_BLOCK_COUNT; block++) {
    for (uint32_t record = 0; record < per_block; record++) {
      boot_state s;
      const uint8_t *at = f->bytes + block * FLASH_ERASE_BLOCK_BYTES + record * BOOT_RECORD_BYTES;
      if (decode_record(at, &s) == 0 && s.sequence > scan.latest.sequence) {
        scan.latest = s;
        scan.block = (int)block;
        scan.record = record;
      }
    }
  }
  return scan;
}

boot_state boot_state_read(const flash *f) { return scan_log(f).latest; }

int boot_state_write(flash *f, boot_state fields, boot_state *out) {
  log_scan scan = scan_log(f);
  if (scan.latest.sequence == 0xffffffffu) return -1;
  fields.sequence = scan.latest.sequence + 1;
  uint8_t r[BOOT_RECORD_BYTES] = {0};
  put_le32(r, BOOT_RECORD_MAGIC);
  put_le32(r + 4, fields.sequence);
  r[8] = fields.active_slot == SLOT_NONE ? SLOT_CODE_NONE : (uint8_t)fields.active_slot;
  r[9] = fields.pending_slot == SLOT_NONE ? SLOT_CODE_NONE : (uint8_t)fields.pending_slot;
  r[10] = fields.trial_slot == SLOT_NONE ? SLOT_CODE_NONE : (uint8_t)fields.trial_slot;
  put_le32(r + 12, fields.security_counter);
  put_le32(r + 28, crc32_ieee(r, 28));
  uint32_t per_block = FLASH_ERASE_BLOCK_BYTES / BOOT_RECORD_BYTES;
  uint32_t block = scan.block < 0 ? 0 : (uint32_t)scan.block;
  uint32_t first = scan.block < 0 ? 0 : scan.record + 1;
  if (out != NULL) *out = fields;
  for (uint32_t record = first; record < per_block; record++) {
    uint64_t at = (uint64_t)block * FLASH_ERASE_BLOCK_BYTES + record * BOOT_RECORD_BYTES;
    int erased = 1;
    for (uint32_t i = 0; i < BOOT_RECORD_BYTES && erased; i++) erased = f->bytes[at + i] == 0xff;
    if (erased) return flash_program(f, at, r, sizeof r);
  }
  uint32_t next = (block + 1) % BOOT_STATE_BLOCK_COUNT;
  if (flash_erase_block(f, next) != 0) return -1;
  return flash_program(f, (uint64_t)next * FLASH_ERASE_BLOCK_BYTES, r, sizeof r);
}

/* ---- the ROM (rom.ts) ---- */
static void logf_(rom_log_fn log, void *ctx, const char *format, ...) __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void logf_(rom_log_fn log, void *ctx, const char *format, ...) {
  char line[600];
  va_list args;
  va_start(args, format);
  vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (log != NULL) log(ctx, line);
}

static int check_slot(const flash *f, int slot, const boot_policy *policy, const boot_state *state, decoded_image *d,
                      char *reason, size_t reason_bytes) {
  image_policy p = {policy->keys, policy->key_count, policy->board_compat, policy->abi_version,
                    (int64_t)state->security_counter, f->slot_bytes, 1};
  /* readSlotImage: the structure over the whole slot (its unused tail allowed), then the image alone. */
  const uint8_t *bytes = f->bytes + f->slot_offset[slot];
  if (image_decode(bytes, f->slot_bytes, &p, d, reason, reason_bytes) != 0) return -1;
  p.allow_trailing = 0;
  return image_verify(bytes, d->total_size, &p, d, reason, reason_bytes);
}

int rom_boot_select(flash *f, const boot_policy *policy, rom_log_fn log, void *log_ctx, int *slot_out,
                    const uint8_t **payload, uint32_t *payload_bytes, int *trial_out, decoded_image *d, char *error,
                    size_t error_bytes) {
  boot_state state = boot_state_read(f);
  char reason[400];
  if (state.trial_slot != SLOT_NONE) {
    logf_(log, log_ctx, "slot %c: the trial boot was not confirmed before this reset; reverting", SLOT_NAME[state.trial_slot]);
    state.trial_slot = SLOT_NONE;
    if (boot_state_write(f, state, &state) != 0) return snprintf(error, error_bytes, "flash write failed"), -1;
  }
  if (state.pending_slot != SLOT_NONE) {
    int slot = state.pending_slot;
    if (check_slot(f, slot, policy, &state, d, reason, sizeof reason) == 0) {
      boot_state next = state;
      next.pending_slot = SLOT_NONE;
      next.trial_slot = slot;
      if (boot_state_write(f, next, NULL) != 0) return snprintf(error, error_bytes, "flash write failed"), -1;
      logf_(log, log_ctx, "slot %c: booting the new image as a trial", SLOT_NAME[slot]);
      *slot_out = slot, *trial_out = 1, *payload = d->payload, *payload_bytes = d->payload_size;
      return 0;
    }
    logf_(log, log_ctx, "slot %c: refused the new image: %s", SLOT_NAME[slot], reason);
    state.pending_slot = SLOT_NONE;
    if (boot_state_write(f, state, &state) != 0) return snprintf(error, error_bytes, "flash write failed"), -1;
  }
  int candidates[2];
  if (state.active_slot == SLOT_NONE) candidates[0] = 0, candidates[1] = 1;
  else candidates[0] = state.active_slot, candidates[1] = 1 - state.active_slot;
  char refusals[900] = "";
  for (int i = 0; i < 2; i++) {
    int slot = candidates[i];
    if (check_slot(f, slot, policy, &state, d, reason, sizeof reason) != 0) {
      logf_(log, log_ctx, "slot %c: refused: %s", SLOT_NAME[slot], reason);
      size_t used = strlen(refusals);
      snprintf(refusals + used, sizeof refusals - used, "%sslot %c: %s", used == 0 ? "" : "; ", SLOT_NAME[slot], reason);
      continue;
    }
    int trial = slot != state.active_slot;
    if (trial) {
      boot_state next = state;
      next.trial_slot = slot;
      if (boot_state_write(f, next, NULL) != 0) return snprintf(error, error_bytes, "flash write failed"), -1;
      logf_(log, log_ctx, "slot %c: no confirmed image boots; booting this one as a trial", SLOT_NAME[slot]);
    }
    *slot_out = slot, *trial_out = trial, *payload = d->payload, *payload_bytes = d->payload_size;
    return 0;
  }
  snprintf(error, error_bytes, "no bootable slot (%s)", refusals);
  return -1;
}

void rom_confirm(flash *f, rom_log_fn log, void *log_ctx) {
  boot_state state = boot_state_read(f);
  int slot = state.trial_slot;
  if (slot == SLOT_NONE) {
    logf_(log, log_ctx, "confirm ignored: no image is on trial (already confirmed, or reverted)");
    return;
  }
  image_policy p = {NULL, 0, NULL, -1, -1, f->slot_bytes, 1};
  decoded_image d;
  char reason[400];
  if (image_decode(f->bytes + f->slot_offset[slot], f->slot_bytes, &p, &d, reason, sizeof reason) != 0) {
    logf_(log, log_ctx, "confirm ignored: slot %c no longer holds an image: %s", SLOT_NAME[slot], reason);
    return;
  }
  uint32_t raised = state.security_counter > d.security_counter ? state.security_counter : d.security_counter;
  boot_state next = {0, slot, SLOT_NONE, SLOT_NONE, raised};
  if (boot_state_write(f, next, NULL) != 0) {
    logf_(log, log_ctx, "confirm failed: the flash file could not be written");
    return;
  }
  logf_(log, log_ctx, "slot %c confirmed (security counter %" PRIu32 ")", SLOT_NAME[slot], raised);
}
