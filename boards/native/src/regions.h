/* The processor's plain bus regions (host/bus/ram.ts, ecam.ts, config_rom.ts): RAM as devices address it, the
 * MSI doorbell, PCI configuration space as an ECAM window, and the configuration ROM. */
#ifndef IOP_REGIONS_H
#define IOP_REGIONS_H
#include <stddef.h>
#include <stdint.h>

#include "bus.h"

/* ---- RAM on the bus ---- */
typedef struct {
  uint8_t **ram; /* the processor's RAM pointer (set at power-on) */
} ram_region_ctx;
bus_region ram_region(ram_region_ctx *ctx, uint64_t ram_bytes);

/* ---- MSI: a 32-bit write raises irq(data & 63) ---- */
typedef struct {
  void (*raise)(void *ctx, int vector);
  void *ctx;
} msi_ctx;
bus_region msi_region(msi_ctx *ctx, uint64_t base);

/* ---- PCI configuration space ---- */
typedef struct pci_function_ops {
  const char *name;
  void *ctx;
  uint32_t (*config_read)(void *ctx, uint32_t reg, int size_bytes);
  void (*config_write)(void *ctx, uint32_t reg, int size_bytes, uint32_t value);
} pci_function_ops;

typedef struct {
  pci_function_ops *functions[256]; /* (device << 3 | function) on bus 0 */
} ecam_ctx;
/* 0, or -1 when the slot is taken or out of range. */
int ecam_plug(ecam_ctx *e, int device, int function, pci_function_ops *ops);
bus_region ecam_region(ecam_ctx *ctx, uint64_t base);

/* ---- the configuration ROM ---- */
#define CONFIG_ROM_BASE 0xf0030000ull
#define CONFIG_ROM_SIZE_BYTES 65536u
typedef struct {
  uint8_t bytes[CONFIG_ROM_SIZE_BYTES];
  uint32_t at;
  uint16_t count;
} config_rom;
enum {
  CONFIG_TARGET_BEGIN = 0x01, CONFIG_TARGET_ALIAS = 0x02, CONFIG_LUN = 0x03, CONFIG_CHAP_USER = 0x04, CONFIG_CHAP_SECRET = 0x05,
  CONFIG_MUTUAL_USER = 0x06, CONFIG_MUTUAL_SECRET = 0x07, CONFIG_ALLOWED_INITIATOR = 0x08, CONFIG_TARGET_END = 0x0f, CONFIG_PORTAL = 0x10,
  CONFIG_VOLUME_BEGIN = 0x20, CONFIG_VOLUME_LAYOUT = 0x21, CONFIG_VOLUME_DISK = 0x22, CONFIG_VOLUME_END = 0x2f
};
void config_rom_begin(config_rom *rom);
/* -1 when the record does not fit the 64 KiB ROM. */
int config_rom_add(config_rom *rom, uint16_t type, const void *value, uint16_t length);
int config_rom_add_text(config_rom *rom, uint16_t type, const char *text);
int config_rom_add_u32(config_rom *rom, uint16_t type, uint32_t value);
void config_rom_finish(config_rom *rom);
bus_region config_rom_region(config_rom *rom);

uint64_t read_le(const uint8_t *bytes, int size_bytes);
void write_le(uint8_t *bytes, int size_bytes, uint64_t value);
#endif
