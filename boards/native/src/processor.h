/* One I/O processor: the firmware instance, its RAM, its bus, its interrupt latch and the run loop's side of the
 * board ABI (docs/board-abi.md), as host/board/processor.ts. Board time is virtual: inside a call it advances by the
 * cost charged for each bus access and clock read; a call that uses more than the hard watchdog is stopped. */
#ifndef IOP_PROCESSOR_H
#define IOP_PROCESSOR_H
#include <stdint.h>

#include "bus.h"
#include "clock.h"
#include "prng.h"
#include "runtime.h"

#define VECTORS_MAX 64
#define WASM_PAGE_BYTES 65536u
#define BOOT_INFO_MAGIC 0x42504f49u
#define BOOT_INFO_SIZE_BYTES 512u
#define BOOT_INFO_OFFSET_FROM_TOP 4096u
#define TASK_INDEX_NONE 0xffffffffu
#define ABI_VERSION 2 /* the board ABI (docs/board-abi.md); host/abi/board_imports.ts has the same, checked by test/unit/abi */

typedef struct {
  uint64_t bus_access_ns, clock_read_ns, run_call_ns, run_budget_ns, hard_watchdog_ns;
} processor_costs;

extern const processor_costs DEFAULT_COSTS;

typedef struct {
  uint64_t ecam_base;
  uint32_t ecam_bus_count;
  uint64_t pci_mem_base, pci_mem_size, msi_address;
  uint64_t mu_local_base, dma_base, outbound_window_base, outbound_window_size, sysctl_base, config_rom_base;
  uint32_t config_rom_bytes;
} bus_map_info;

typedef enum { PROC_OFF, PROC_RUNNING, PROC_STOPPED } processor_state;

typedef struct {
  const char *kind; /* "panic", "trap", "watchdog", "boot" */
  uint32_t code;
  char task[24];
  char message[300];
  uint64_t time_ns;
} panic_report;

typedef struct processor processor;
struct processor {
  char name[32];
  uint32_t index;
  uint32_t role; /* 0 host, 1 storage */
  uint64_t ram_bytes;
  char board_name[64];
  int verbose;
  bus_map_info map;
  processor_costs costs;
  bus bus;
  prng random;
  rt_instance *rt;
  uint8_t *ram;
  uint32_t boot_info;
  processor_state state;
  /* Board time: the board clock between calls; inside a call processor_now_ns() adds what the call has used. */
  vclock *clock;
  clock_event *wake_handle;
  uint64_t consumed_ns;
  uint64_t last_call_ns;
  int in_call;
  /* Why a host function aborted the call: 1 proc_exit (code in exit_code), 2 the board's watchdog. */
  int abort_reason;
  uint32_t exit_code;
  uint8_t pending[VECTORS_MAX];
  int pending_count;
  uint64_t busy_until_ns;
  /* The next turn in board time (a clock event); UINT64_MAX when idle until an interrupt. */
  uint64_t wake_at_ns;
  uint64_t heap_top_at_boot;
  uint64_t run_count, bus_access_count;
  uint32_t read64_high; /* the high half of the last bus_read64's value, for bus_read64_high */
  char console[2][512];
  size_t console_length[2];
  void (*on_console)(processor *p, int fd, const char *line);
  void (*on_stop)(processor *p, const panic_report *report); /* report NULL: a clean proc_exit(0) */
  panic_report last_panic;
};

/* Fills the processor's identity and defaults; the caller then maps devices on p->bus. */
void processor_init(processor *p, vclock *clock, const char *name, uint32_t index, uint32_t role, uint64_t ram_bytes,
                    const char *board_name, const char *seed_label, const prng *board_random);
/* Instantiates `wasm`, writes the boot-info block and calls boot(). 0 when it runs, -1 when it stopped (the
 * report went to on_stop) or did not instantiate (the reason in `error`). */
int processor_power_on(processor *p, const uint8_t *wasm, size_t wasm_bytes, char *error, size_t error_bytes);
void processor_raise_irq(processor *p, int vector);
uint64_t processor_now_ns(const processor *p);
void processor_halt(processor *p);
void processor_free(processor *p);
#endif
