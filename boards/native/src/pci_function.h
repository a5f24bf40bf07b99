/* A PCI function with a type-0 configuration header, BARs with the sizing protocol, a capability list, MSI-X and
 * DMA as bus master, as host/bus/pci_function.ts. Device models embed it and set mmio_read/mmio_write. BARs decode
 * on the bus only while Memory Space is on; DMA and MSI-X messages only with Bus Master on. */
#ifndef IOP_PCI_FUNCTION_H
#define IOP_PCI_FUNCTION_H
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "regions.h"

#define CFG_VENDOR_ID 0x00
#define CFG_DEVICE_ID 0x02
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_REVISION 0x08
#define CFG_CLASS_CODE 0x09
#define CFG_BAR0 0x10
#define CFG_SUBSYSTEM_VENDOR_ID 0x2c
#define CFG_SUBSYSTEM_ID 0x2e
#define CFG_CAPABILITIES 0x34
#define COMMAND_MEMORY (1u << 1)
#define COMMAND_BUS_MASTER (1u << 2)
#define CAP_MSIX 0x11
#define CAP_VENDOR 0x09
#define MSIX_VECTORS_MAX 64

typedef struct pci_fn pci_fn;

typedef struct {
  pci_fn *fn;
  int index;
  int mapped;
} pci_bar_ctx;

struct pci_fn {
  char name[48];
  uint8_t config[4096];
  uint8_t writable[4096];
  uint32_t bar_size[6]; /* 0: no BAR */
  int bar_is64[6];
  pci_bar_ctx bar_ctx[6];
  int last_capability, next_capability, msix_capability;
  uint32_t msix_vectors; /* 0: no MSI-X */
  int msix_bar;
  uint32_t msix_table_offset, msix_pba_offset;
  uint8_t msix_table[MSIX_VECTORS_MAX * 16];
  uint8_t msix_pending[MSIX_VECTORS_MAX / 8];
  bus *bus;
  uint64_t guest_errors;
  void (*log)(void *ctx, const char *message);
  void *log_ctx;
  uint64_t (*mmio_read)(pci_fn *fn, int bar, uint32_t offset, int size_bytes);
  void (*mmio_write)(pci_fn *fn, int bar, uint32_t offset, int size_bytes, uint64_t value);
  pci_function_ops ops;
};

void pci_fn_init(pci_fn *fn, const char *name, uint16_t vendor, uint16_t device, uint32_t class_code, uint8_t revision,
                 uint16_t subsystem_vendor, uint16_t subsystem);
void pci_fn_add_bar(pci_fn *fn, int index, uint32_t size_bytes, int is64);
/* Returns the capability's offset; `body` starts after the ID and next-pointer bytes. */
int pci_fn_add_capability(pci_fn *fn, uint8_t id, const uint8_t *body, size_t length, const uint8_t *writable);
void pci_fn_add_msix(pci_fn *fn, uint32_t vectors, int bar, uint32_t table_offset, uint32_t pba_offset);
/* Plugs it into device/function of the ECAM window and remembers the bus its BARs and DMA use. */
int pci_fn_attach(pci_fn *fn, ecam_ctx *ecam, int device, int function, bus *b);
uint16_t pci_fn_command(const pci_fn *fn);
void pci_fn_signal(pci_fn *fn, uint32_t vector);
int pci_fn_dma_read(pci_fn *fn, uint64_t address, uint8_t *into, uint64_t length, char *fault, size_t fault_bytes);
int pci_fn_dma_write(pci_fn *fn, uint64_t address, const uint8_t *from, uint64_t length, char *fault, size_t fault_bytes);
/* A bad access: logged (the first few), counted; returns all ones of `size_bytes` (32 bits for 8). */
uint64_t pci_fn_guest_error(pci_fn *fn, int size_bytes, const char *format, ...) __attribute__((format(printf, 3, 4)));
#endif
