#include "bus.h"

#include <inttypes.h>
#include <stdio.h>

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

static bus_region *decode(bus *b, uint64_t address, int size_bytes) {
  if (size_bytes > 1 && (address & (uint64_t)(size_bytes - 1)) != 0) return NULL; /* unaligned: nothing decodes it */
  for (int i = 0; i < b->count; i++) {
    bus_region *m = &b->regions[i];
    if (address >= m->base && address - m->base + (uint64_t)size_bytes <= m->size) return m;
  }
  return NULL;
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
