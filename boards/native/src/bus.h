/* The processor's local bus: regions decoded by address; an access nothing decodes is a master abort (reads all
 * ones, writes dropped), logged, as host/bus/bus.ts does. */
#ifndef IOP_BUS_H
#define IOP_BUS_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *name;
  uint64_t base;
  uint64_t size;
  void *ctx;
  uint64_t (*read)(void *ctx, uint64_t offset, int size_bytes);
  void (*write)(void *ctx, uint64_t offset, int size_bytes, uint64_t value);
  /* Memory-like regions (RAM) also take bulk DMA: their bytes, through a pointer set once the memory exists. */
  uint8_t **memory;
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
/* Unmaps the region mapped with this ctx and read function (a BAR that moved). */
void bus_unmap(bus *b, const void *ctx, uint64_t (*read)(void *, uint64_t, int));
uint64_t bus_read(bus *b, uint64_t address, int size_bytes);
/* DMA by `master`: one memory-like region must hold the whole range (a 4-byte write may also hit a register region,
 * an MSI-X message). 0, or -1 with the fault in `fault` (logged, the first few, and counted), as host/bus/bus.ts. */
int bus_dma_read(bus *b, const char *master, uint64_t address, uint8_t *into, uint64_t length, char *fault, size_t fault_bytes);
int bus_dma_write(bus *b, const char *master, uint64_t address, const uint8_t *from, uint64_t length, char *fault,
                  size_t fault_bytes);
void bus_write(bus *b, uint64_t address, int size_bytes, uint64_t value);
#endif
