/* The processor's local bus: regions decoded by address; an access nothing decodes is a master abort (reads all
 * ones, writes dropped), logged, as host/bus/bus.ts does. */
#ifndef IOP_BUS_H
#define IOP_BUS_H
#include <stdint.h>

typedef struct {
  const char *name;
  uint64_t base;
  uint64_t size;
  void *ctx;
  uint64_t (*read)(void *ctx, uint64_t offset, int size_bytes);
  void (*write)(void *ctx, uint64_t offset, int size_bytes, uint64_t value);
} bus_region;

#define BUS_REGIONS_MAX 32

typedef struct {
  const char *owner;
  bus_region regions[BUS_REGIONS_MAX];
  int count;
  uint64_t guest_errors;
  void (*log)(void *ctx, const char *message);
  void *log_ctx;
} bus;

/* 0, or -1 when the region overlaps another or the table is full (a board-construction bug, reported by name). */
int bus_map(bus *b, const bus_region *region);
uint64_t bus_read(bus *b, uint64_t address, int size_bytes);
void bus_write(bus *b, uint64_t address, int size_bytes, uint64_t value);
#endif
