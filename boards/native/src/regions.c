#include "regions.h"

#include <string.h>

uint64_t read_le(const uint8_t *bytes, int size_bytes) {
  uint64_t v = 0;
  for (int i = size_bytes - 1; i >= 0; i--) v = v << 8 | bytes[i];
  return v;
}

void write_le(uint8_t *bytes, int size_bytes, uint64_t value) {
  for (int i = 0; i < size_bytes; i++) bytes[i] = (uint8_t)(value >> (8 * i));
}

static uint64_t ram_read(void *ctx, uint64_t offset, int size) {
  return read_le(*((ram_region_ctx *)ctx)->ram + offset, size);
}
static void ram_write(void *ctx, uint64_t offset, int size, uint64_t value) {
  write_le(*((ram_region_ctx *)ctx)->ram + offset, size, value);
}
bus_region ram_region(ram_region_ctx *ctx, uint64_t ram_bytes) {
  bus_region r = {"ram", 0, ram_bytes, ctx, ram_read, ram_write, ctx->ram};
  return r;
}

static uint64_t msi_read(void *ctx, uint64_t offset, int size) {
  (void)ctx, (void)offset, (void)size;
  return 0xffffffffu;
}
static void msi_write(void *ctx, uint64_t offset, int size, uint64_t value) {
  (void)offset;
  msi_ctx *m = ctx;
  if (size == 4) m->raise(m->ctx, (int)(value & 63));
}
bus_region msi_region(msi_ctx *ctx, uint64_t base) {
  bus_region r = {"msi", base, 4096, ctx, msi_read, msi_write, NULL};
  return r;
}

int ecam_plug(ecam_ctx *e, int device, int function, pci_function_ops *ops) {
  if (device < 0 || device > 31 || function < 0 || function > 7) return -1;
  int key = device << 3 | function;
  if (e->functions[key] != NULL) return -1;
  e->functions[key] = ops;
  return 0;
}
static uint64_t ecam_read(void *ctx, uint64_t offset, int size) {
  ecam_ctx *e = ctx;
  if (size == 8) return UINT64_MAX; /* config space is accessed in up to 32 bits */
  pci_function_ops *f = e->functions[(offset >> 12) & 0xff];
  if (f == NULL) return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
  return f->config_read(f->ctx, (uint32_t)(offset & 0xfff), size);
}
static void ecam_write(void *ctx, uint64_t offset, int size, uint64_t value) {
  ecam_ctx *e = ctx;
  if (size == 8) return;
  pci_function_ops *f = e->functions[(offset >> 12) & 0xff];
  if (f != NULL) f->config_write(f->ctx, (uint32_t)(offset & 0xfff), size, (uint32_t)value);
}
bus_region ecam_region(ecam_ctx *ctx, uint64_t base) {
  bus_region r = {"pci-ecam", base, 1u << 20, ctx, ecam_read, ecam_write, NULL}; /* one bus */
  return r;
}

#define CONFIG_ROM_MAGIC 0x47464357u /* "WCFG" */
#define CONFIG_ROM_VERSION 1

void config_rom_begin(config_rom *rom) {
  memset(rom->bytes, 0, sizeof rom->bytes);
  rom->at = 16;
  rom->count = 0;
}
int config_rom_add(config_rom *rom, uint16_t type, const void *value, uint16_t length) {
  uint32_t padded = (length + 3u) & ~3u;
  if (rom->at + 4 + padded > CONFIG_ROM_SIZE_BYTES) return -1;
  write_le(rom->bytes + rom->at, 2, type);
  write_le(rom->bytes + rom->at + 2, 2, length);
  if (length > 0) memcpy(rom->bytes + rom->at + 4, value, length);
  rom->at += 4 + padded;
  rom->count++;
  return 0;
}
int config_rom_add_text(config_rom *rom, uint16_t type, const char *text) {
  return config_rom_add(rom, type, text, (uint16_t)strlen(text));
}
int config_rom_add_u32(config_rom *rom, uint16_t type, uint32_t value) {
  uint8_t bytes[4];
  write_le(bytes, 4, value);
  return config_rom_add(rom, type, bytes, 4);
}
void config_rom_finish(config_rom *rom) {
  write_le(rom->bytes, 4, CONFIG_ROM_MAGIC);
  write_le(rom->bytes + 4, 2, CONFIG_ROM_VERSION);
  write_le(rom->bytes + 6, 2, rom->count);
  write_le(rom->bytes + 8, 4, rom->at);
}
static uint64_t rom_read(void *ctx, uint64_t offset, int size) { return read_le(((config_rom *)ctx)->bytes + offset, size); }
static void rom_write(void *ctx, uint64_t offset, int size, uint64_t value) {
  (void)ctx, (void)offset, (void)size, (void)value; /* read-only: a write to a ROM is ignored */
}
bus_region config_rom_region(config_rom *rom) {
  bus_region r = {"config-rom", CONFIG_ROM_BASE, CONFIG_ROM_SIZE_BYTES, rom, rom_read, rom_write, NULL};
  return r;
}
