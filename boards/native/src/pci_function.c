#include "pci_function.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CAPABILITIES_START 0x40
#define MSIX_MESSAGE_CONTROL 0x02
#define MSIX_TABLE_OFFSET_BIR 0x04
#define MSIX_PBA_OFFSET_BIR 0x08
#define MSIX_CONTROL_FUNCTION_MASK 0x4000u
#define MSIX_CONTROL_ENABLE 0x8000u
#define MSIX_ENTRY_BYTES 16
#define MSIX_VECTOR_CONTROL 12

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)read_le(p, 4); }

uint64_t pci_fn_guest_error(pci_fn *fn, int size_bytes, const char *format, ...) {
  fn->guest_errors++;
  if (fn->guest_errors <= 8 && fn->log != NULL) {
    char detail[200], line[300];
    va_list args;
    va_start(args, format);
    vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    snprintf(line, sizeof line, "%s: guest error: %s", fn->name, detail);
    fn->log(fn->log_ctx, line);
  }
  return size_bytes >= 4 ? 0xffffffffu : (1u << (size_bytes * 8)) - 1;
}

uint16_t pci_fn_command(const pci_fn *fn) { return (uint16_t)(fn->config[CFG_COMMAND] | fn->config[CFG_COMMAND + 1] << 8); }

static uint64_t bar_address(const pci_fn *fn, int index) {
  if (fn->bar_size[index] == 0) return 0;
  uint64_t low = get32(fn->config + CFG_BAR0 + index * 4) & ~0xfu;
  uint64_t high = fn->bar_is64[index] ? get32(fn->config + CFG_BAR0 + (index + 1) * 4) : 0;
  return high << 32 | low;
}

static uint16_t msix_control(const pci_fn *fn) {
  if (fn->msix_capability == 0) return 0;
  int at = fn->msix_capability + MSIX_MESSAGE_CONTROL;
  return (uint16_t)(fn->config[at] | fn->config[at + 1] << 8);
}

static int msix_masked(const pci_fn *fn, uint32_t vector) {
  uint16_t control = msix_control(fn);
  return (control & MSIX_CONTROL_ENABLE) == 0 || (control & MSIX_CONTROL_FUNCTION_MASK) != 0 ||
         (fn->msix_table[vector * MSIX_ENTRY_BYTES + MSIX_VECTOR_CONTROL] & 1) != 0 ||
         (pci_fn_command(fn) & COMMAND_BUS_MASTER) == 0;
}

void pci_fn_signal(pci_fn *fn, uint32_t vector) {
  if (vector >= fn->msix_vectors) return;
  if (msix_masked(fn, vector)) {
    fn->msix_pending[vector >> 3] |= (uint8_t)(1u << (vector & 7));
    return;
  }
  const uint8_t *entry = fn->msix_table + vector * MSIX_ENTRY_BYTES;
  uint64_t address = (uint64_t)get32(entry + 4) << 32 | get32(entry);
  if (fn->bus != NULL) bus_write(fn->bus, address, 4, get32(entry + 8));
}

static void msix_deliver_pending(pci_fn *fn) {
  for (uint32_t vector = 0; vector < fn->msix_vectors; vector++) {
    if ((fn->msix_pending[vector >> 3] & (1u << (vector & 7))) == 0 || msix_masked(fn, vector)) continue;
    fn->msix_pending[vector >> 3] &= (uint8_t)~(1u << (vector & 7));
    pci_fn_signal(fn, vector);
  }
}

static uint64_t bar_read(void *ctx, uint64_t offset, int size) {
  pci_bar_ctx *b = ctx;
  pci_fn *fn = b->fn;
  if (fn->msix_vectors > 0 && b->index == fn->msix_bar) {
    if (offset >= fn->msix_table_offset && offset < fn->msix_table_offset + fn->msix_vectors * MSIX_ENTRY_BYTES)
      return read_le(fn->msix_table + (offset - fn->msix_table_offset), size);
    if (offset >= fn->msix_pba_offset && offset < fn->msix_pba_offset + (fn->msix_vectors + 63) / 64 * 8) {
      uint64_t at = offset - fn->msix_pba_offset;
      return at + (uint64_t)size <= sizeof fn->msix_pending ? read_le(fn->msix_pending + at, size) : 0;
    }
  }
  return fn->mmio_read(fn, b->index, (uint32_t)offset, size);
}

static void bar_write(void *ctx, uint64_t offset, int size, uint64_t value) {
  pci_bar_ctx *b = ctx;
  pci_fn *fn = b->fn;
  if (fn->msix_vectors > 0 && b->index == fn->msix_bar) {
    if (offset >= fn->msix_table_offset && offset < fn->msix_table_offset + fn->msix_vectors * MSIX_ENTRY_BYTES) {
      write_le(fn->msix_table + (offset - fn->msix_table_offset), size, value);
      msix_deliver_pending(fn);
      return;
    }
    if (offset >= fn->msix_pba_offset && offset < fn->msix_pba_offset + (fn->msix_vectors + 63) / 64 * 8) return;
  }
  fn->mmio_write(fn, b->index, (uint32_t)offset, size, value);
}

/* Maps each BAR at its programmed address while Memory Space is on; unmaps otherwise. */
static void remap(pci_fn *fn) {
  if (fn->bus == NULL) return;
  for (int i = 0; i < 6; i++) {
    if (!fn->bar_ctx[i].mapped) continue;
    bus_unmap(fn->bus, &fn->bar_ctx[i], bar_read);
    fn->bar_ctx[i].mapped = 0;
  }
  if ((pci_fn_command(fn) & COMMAND_MEMORY) == 0) return;
  for (int i = 0; i < 6; i++) {
    if (fn->bar_size[i] == 0) continue;
    uint64_t base = bar_address(fn, i);
    if (base == 0) continue; /* unprogrammed */
    bus_region region = {fn->name, base, fn->bar_size[i], &fn->bar_ctx[i], bar_read, bar_write, NULL};
    if (bus_map(fn->bus, &region) == 0) fn->bar_ctx[i].mapped = 1;
    else pci_fn_guest_error(fn, 4, "BAR%d at 0x%" PRIx64 ": overlaps another region", i, base);
  }
}

static uint32_t config_read(void *ctx, uint32_t reg, int size) {
  pci_fn *fn = ctx;
  if (reg % (uint32_t)size != 0) return (uint32_t)pci_fn_guest_error(fn, size, "config read of %d at 0x%x unaligned", size, reg);
  return (uint32_t)read_le(fn->config + reg, size);
}

static void config_write(void *ctx, uint32_t reg, int size, uint32_t value) {
  pci_fn *fn = ctx;
  if (reg % (uint32_t)size != 0) {
    pci_fn_guest_error(fn, size, "config write of %d at 0x%x unaligned", size, reg);
    return;
  }
  uint16_t command_before = pci_fn_command(fn), msix_before = msix_control(fn);
  uint64_t bars_before[6];
  for (int i = 0; i < 6; i++) bars_before[i] = bar_address(fn, i);
  for (int i = 0; i < size; i++) {
    uint32_t at = reg + (uint32_t)i;
    uint8_t byte = (uint8_t)(value >> (8 * i));
    fn->config[at] = (uint8_t)((fn->config[at] & ~fn->writable[at]) | (byte & fn->writable[at]));
  }
  int moved = pci_fn_command(fn) != command_before;
  for (int i = 0; i < 6; i++) moved = moved || bar_address(fn, i) != bars_before[i];
  if (moved) remap(fn);
  if (msix_control(fn) != msix_before || pci_fn_command(fn) != command_before) msix_deliver_pending(fn);
}

void pci_fn_init(pci_fn *fn, const char *name, uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                 uint16_t subsystem_vendor, uint16_t subsystem) {
  memset(fn, 0, sizeof *fn);
  snprintf(fn->name, sizeof fn->name, "%s", name);
  put16(fn->config + CFG_VENDOR_ID, vendor);
  put16(fn->config + CFG_DEVICE_ID, device);
  fn->config[CFG_REVISION] = revision;
  fn->config[CFG_CLASS_CODE] = (uint8_t)class_code;
  fn->config[CFG_CLASS_CODE + 1] = (uint8_t)(class_code >> 8);
  fn->config[CFG_CLASS_CODE + 2] = (uint8_t)(class_code >> 16);
  put16(fn->config + CFG_SUBSYSTEM_VENDOR_ID, subsystem_vendor);
  put16(fn->config + CFG_SUBSYSTEM_ID, subsystem);
  fn->writable[CFG_COMMAND] = COMMAND_MEMORY | COMMAND_BUS_MASTER;
  fn->next_capability = CAPABILITIES_START;
  for (int i = 0; i < 6; i++) fn->bar_ctx[i] = (pci_bar_ctx){fn, i, 0};
  fn->ops = (pci_function_ops){fn->name, fn, config_read, config_write};
}

void pci_fn_add_bar(pci_fn *fn, int index, uint32_t size_bytes, int is64) {
  fn->bar_size[index] = size_bytes;
  fn->bar_is64[index] = is64;
  fn->config[CFG_BAR0 + index * 4] = is64 ? 0x4 : 0;
  /* The sizing protocol: address bits below the size are read-only zero, so all ones reads back ~(size - 1). */
  uint64_t mask = ~(uint64_t)(size_bytes - 1) & (is64 ? 0xfffffffffffffff0ull : 0xfffffff0ull);
  for (int i = 0; i < (is64 ? 8 : 4); i++) fn->writable[CFG_BAR0 + index * 4 + i] = (uint8_t)(mask >> (8 * i));
}

int pci_fn_add_capability(pci_fn *fn, uint8_t id, const uint8_t *body, size_t length, const uint8_t *writable) {
  int offset = fn->next_capability;
  fn->config[offset] = id;
  fn->config[offset + 1] = 0;
  memcpy(fn->config + offset + 2, body, length);
  if (writable != NULL) memcpy(fn->writable + offset + 2, writable, length);
  fn->next_capability = (int)((offset + 2 + length + 3) & ~(size_t)3);
  if (fn->last_capability == 0) fn->config[CFG_CAPABILITIES] = (uint8_t)offset;
  else fn->config[fn->last_capability + 1] = (uint8_t)offset;
  fn->last_capability = offset;
  fn->config[CFG_STATUS] |= 1u << 4;
  return offset;
}

void pci_fn_add_msix(pci_fn *fn, uint32_t vectors, int bar, uint32_t table_offset, uint32_t pba_offset) {
  uint8_t body[10] = {0}, writable[10] = {0};
  put16(body + MSIX_MESSAGE_CONTROL - 2, (uint16_t)(vectors - 1));
  write_le(body + MSIX_TABLE_OFFSET_BIR - 2, 4, table_offset | (uint32_t)bar);
  write_le(body + MSIX_PBA_OFFSET_BIR - 2, 4, pba_offset | (uint32_t)bar);
  put16(writable + MSIX_MESSAGE_CONTROL - 2, MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
  fn->msix_capability = pci_fn_add_capability(fn, CAP_MSIX, body, sizeof body, writable);
  fn->msix_vectors = vectors;
  fn->msix_bar = bar;
  fn->msix_table_offset = table_offset;
  fn->msix_pba_offset = pba_offset;
  for (uint32_t v = 0; v < vectors; v++) fn->msix_table[v * MSIX_ENTRY_BYTES + MSIX_VECTOR_CONTROL] = 1; /* masked */
}

int pci_fn_attach(pci_fn *fn, ecam_ctx *ecam, int device, int function, bus *b) {
  fn->bus = b;
  return ecam_plug(ecam, device, function, &fn->ops);
}

int pci_fn_dma_read(pci_fn *fn, uint64_t address, uint8_t *into, uint64_t length, char *fault, size_t fault_bytes) {
  if ((pci_fn_command(fn) & COMMAND_BUS_MASTER) == 0) return snprintf(fault, fault_bytes, "bus master disabled"), -1;
  return bus_dma_read(fn->bus, fn->name, address, into, length, fault, fault_bytes);
}

int pci_fn_dma_write(pci_fn *fn, uint64_t address, const uint8_t *from, uint64_t length, char *fault, size_t fault_bytes) {
  if ((pci_fn_command(fn) & COMMAND_BUS_MASTER) == 0) return snprintf(fault, fault_bytes, "bus master disabled"), -1;
  return bus_dma_write(fn->bus, fn->name, address, from, length, fault, fault_bytes);
}
