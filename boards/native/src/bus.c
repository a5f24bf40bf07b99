#include "bus.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const uint64_t ALL_ONES[9] = {0, 0xff, 0xffff, 0, 0xffffffffu, 0, 0, 0, UINT64_MAX};

int bus_map(bus *b, const bus_region *region) {
  uint64_t end = region->base + region->size;
  for (int i = 0; i < b->count; i++) {
    const bus_region *m = &b->regions[i];
    if (region->base < m->base + m->size && m->base < end) {
      char message[160];
      snprintf(message, sizeof message, "%s bus: %s at 0x%" PRIx64 " overlaps %s at 0x%" PRIx64, b->owner, region->name,
               region->base, m->name, m->base);
      if (b->log != NULL) b->log(b->log_ctx, message);
      return -1;
    }
  }
  if (b->count == BUS_REGIONS_MAX) return -1;
  b->regions[b->count++] = *region;
  return 0;
}

void bus_unmap(bus *b, const void *ctx, uint64_t (*read)(void *, uint64_t, int)) {
  for (int i = 0; i < b->count; i++) {
    if (b->regions[i].ctx != ctx || b->regions[i].read != read) continue;
    b->regions[i] = b->regions[--b->count];
    return;
  }
}

static bus_region *decode_range(bus *b, uint64_t address, int align_bytes, uint64_t length) {
  if (length == 0 || (align_bytes > 1 && (address & (uint64_t)(align_bytes - 1)) != 0)) return NULL; /* unaligned */
  for (int i = 0; i < b->count; i++) {
    bus_region *m = &b->regions[i];
    if (address >= m->base && address - m->base <= m->size && length <= m->size - (address - m->base)) return m;
  }
  return NULL;
}

static bus_region *decode(bus *b, uint64_t address, int size_bytes) {
  return decode_range(b, address, size_bytes, (uint64_t)size_bytes);
}

static int dma_fault(bus *b, const char *master, const char *kind, uint64_t address, uint64_t length, char *fault,
                     size_t fault_bytes) {
  snprintf(fault, fault_bytes, "%s of %" PRIu64 " bytes at 0x%" PRIx64 " is outside every window", kind, length, address);
  b->guest_errors++;
  if (b->log != NULL && b->guest_errors <= 8) {
    char message[200];
    snprintf(message, sizeof message, "DMA fault by %s: %s", master, fault);
    b->log(b->log_ctx, message);
  }
  return -1;
}

int bus_dma_read(bus *b, const char *master, uint64_t address, uint8_t *into, uint64_t length, char *fault,
                 size_t fault_bytes) {
  bus_region *m = decode_range(b, address, 1, length);
  if (m == NULL || m->memory == NULL) return dma_fault(b, master, "read", address, length, fault, fault_bytes);
  memcpy(into, *m->memory + (address - m->base), length);
  return 0;
}

int bus_dma_write(bus *b, const char *master, uint64_t address, const uint8_t *from, uint64_t length, char *fault,
                  size_t fault_bytes) {
  bus_region *m = decode_range(b, address, 1, length);
  if (m == NULL) return dma_fault(b, master, "write", address, length, fault, fault_bytes);
  if (m->memory != NULL) {
    memcpy(*m->memory + (address - m->base), from, length);
    return 0;
  }
  if (length != 4 || m->write == NULL) return dma_fault(b, master, "write", address, length, fault, fault_bytes);
  m->write(m->ctx, address - m->base, 4, (uint64_t)from[0] | (uint64_t)from[1] << 8 | (uint64_t)from[2] << 16 | (uint64_t)from[3] << 24);
  return 0;
}

static void master_abort(bus *b, const char *what, uint64_t address, int size_bytes) {
  b->guest_errors++;
  /* The first few are worth a line each; after that, the count is enough (as host/bus/bus.ts). */
  if (b->log == NULL || b->guest_errors > 8) return;
  char message[160];
  snprintf(message, sizeof message, "guest error: %s of %d bytes at 0x%" PRIx64 " decodes to nothing", what, size_bytes,
           address);
  b->log(b->log_ctx, message);
}

uint64_t bus_read(bus *b, uint64_t address, int size_bytes) {
  bus_region *m = decode(b, address, size_bytes);
  if (m == NULL || m->read == NULL) {
    master_abort(b, "read", address, size_bytes);
    return ALL_ONES[size_bytes];
  }
  return m->read(m->ctx, address - m->base, size_bytes);
}

void bus_write(bus *b, uint64_t address, int size_bytes, uint64_t value) {
  bus_region *m = decode(b, address, size_bytes);
  if (m == NULL || m->write == NULL) {
    master_abort(b, "write", address, size_bytes);
    return;
  }
  m->write(m->ctx, address - m->base, size_bytes, value);
}
