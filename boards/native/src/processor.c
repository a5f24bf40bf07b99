#include "processor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const processor_costs DEFAULT_COSTS = {
    .bus_access_ns = 200,
    .clock_read_ns = 20,
    .run_call_ns = 100,
    .run_budget_ns = 1000000,
    .hard_watchdog_ns = 1000000000,
};

enum { WASI_SUCCESS = 0, WASI_BADF = 8, WASI_FAULT = 21, WASI_INVAL = 28 };
enum { ABORT_EXIT = 1, ABORT_WATCHDOG = 2 };

static const char *BOOT_ERRORS[] = {NULL, "RAM too small", "bad boot-info block", "boot objects over their reserve"};

static void put32(uint8_t *at, uint32_t v) { memcpy(at, &v, 4); } /* the board runs little-endian hosts only */
static void put16(uint8_t *at, uint16_t v) { memcpy(at, &v, 2); }
static void put64(uint8_t *at, uint64_t v) { memcpy(at, &v, 8); }
static uint32_t get32(const uint8_t *at) {
  uint32_t v;
  memcpy(&v, at, 4);
  return v;
}

uint64_t processor_now_ns(const processor *p) { return p->clock->now_ns + (p->in_call ? p->consumed_ns : 0); }

static void board_log(void *ctx, const char *message) {
  processor *p = ctx;
  char line[256];
  snprintf(line, sizeof line, "[board] %s", message);
  if (p->on_console != NULL) p->on_console(p, 2, line);
}

void processor_init(processor *p, vclock *clock, const char *name, uint32_t index, uint32_t role, uint64_t ram_bytes,
                    const char *board_name, const char *seed_label, const prng *board_random) {
  memset(p, 0, sizeof *p);
  p->clock = clock;
  snprintf(p->name, sizeof p->name, "%s", name);
  snprintf(p->board_name, sizeof p->board_name, "%s", board_name);
  p->index = index;
  p->role = role;
  p->ram_bytes = ram_bytes;
  p->costs = DEFAULT_COSTS;
  p->bus.owner = p->name;
  p->bus.log = board_log;
  p->bus.log_ctx = p;
  p->wake_at_ns = UINT64_MAX;
  prng_fork(board_random, seed_label, &p->random);
}

/* Charges board time for an access; past the hard watchdog the call is aborted. */
static int charge(processor *p, uint64_t cost_ns) {
  p->consumed_ns += cost_ns;
  if (p->consumed_ns > p->costs.hard_watchdog_ns) {
    p->abort_reason = ABORT_WATCHDOG;
    return -1;
  }
  return 0;
}

static int in_range(const processor *p, uint64_t ptr, uint64_t length) {
  return ptr <= p->ram_bytes && length <= p->ram_bytes - ptr;
}

/* ---- board.bus_* ---- */
static int bus_read_n(processor *p, uint64_t address, int size, uint64_t *result) {
  p->bus_access_count++;
  if (charge(p, p->costs.bus_access_ns) != 0) return 1;
  *result = bus_read(&p->bus, address, size);
  return 0;
}
static int bus_write_n(processor *p, uint64_t address, int size, uint64_t value) {
  p->bus_access_count++;
  if (charge(p, p->costs.bus_access_ns) != 0) return 1;
  bus_write(&p->bus, address, size, value);
  return 0;
}
/* Board ABI 2: addresses and values arrive as 32-bit halves, low first (docs/board-abi.md). */
static uint64_t halves(uint64_t low, uint64_t high) { return (high & 0xffffffffu) << 32 | (low & 0xffffffffu); }
static const uint64_t LOW_MASK[5] = {0, 0xff, 0xffff, 0, 0xffffffffu};
#define BUS_ACCESS(bits, bytes)                                                         \
  static int imp_bus_read##bits(void *ctx, const uint64_t *a, uint64_t *r) {            \
    return bus_read_n(ctx, halves(a[0], a[1]), bytes, r);                                \
  }                                                                                      \
  static int imp_bus_write##bits(void *ctx, const uint64_t *a, uint64_t *r) {           \
    (void)r;                                                                             \
    return bus_write_n(ctx, halves(a[0], a[1]), bytes, a[2] & LOW_MASK[bytes]);          \
  }
BUS_ACCESS(8, 1)
BUS_ACCESS(16, 2)
BUS_ACCESS(32, 4)

/* One 64-bit access: the low half now, the high half kept for bus_read64_high (no access, no charge). */
static int imp_bus_read64(void *ctx, const uint64_t *a, uint64_t *r) {
  processor *p = ctx;
  uint64_t value = 0;
  if (bus_read_n(p, halves(a[0], a[1]), 8, &value) != 0) return 1;
  p->read64_high = (uint32_t)(value >> 32);
  *r = value & 0xffffffffu;
  return 0;
}
static int imp_bus_read64_high(void *ctx, const uint64_t *a, uint64_t *r) {
  (void)a;
  *r = ((processor *)ctx)->read64_high;
  return 0;
}
static int imp_bus_write64(void *ctx, const uint64_t *a, uint64_t *r) {
  (void)r;
  return bus_write_n(ctx, halves(a[0], a[1]), 8, halves(a[2], a[3]));
}

/* ---- wasi_snapshot_preview1 ---- */
static void console_write(processor *p, int fd, const uint8_t *bytes, size_t length) {
  int slot = fd - 1;
  for (size_t i = 0; i < length; i++) {
    if (bytes[i] == '\n') {
      p->console[slot][p->console_length[slot]] = 0;
      if (p->on_console != NULL) p->on_console(p, fd, p->console[slot]);
      p->console_length[slot] = 0;
    } else if (p->console_length[slot] < sizeof p->console[slot] - 1) {
      p->console[slot][p->console_length[slot]++] = (char)bytes[i];
    }
  }
}

static int imp_fd_write(void *ctx, const uint64_t *a, uint64_t *r) {
  processor *p = ctx;
  uint32_t fd = (uint32_t)a[0], iovs = (uint32_t)a[1], count = (uint32_t)a[2], written_ptr = (uint32_t)a[3];
  if (fd != 1 && fd != 2) return *r = WASI_BADF, 0;
  if (!in_range(p, iovs, (uint64_t)count * 8) || !in_range(p, written_ptr, 4)) return *r = WASI_FAULT, 0;
  uint32_t written = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t buf = get32(p->ram + iovs + i * 8), length = get32(p->ram + iovs + i * 8 + 4);
    if (!in_range(p, buf, length)) return *r = WASI_FAULT, 0;
    console_write(p, (int)fd, p->ram + buf, length);
    written += length;
  }
  put32(p->ram + written_ptr, written);
  return *r = WASI_SUCCESS, 0;
}

static int imp_clock_time_get(void *ctx, const uint64_t *a, uint64_t *r) {
  processor *p = ctx;
  uint32_t clock_id = (uint32_t)a[0], time_ptr = (uint32_t)a[2];
  if (clock_id != 0 && clock_id != 1) return *r = WASI_INVAL, 0;
  if (!in_range(p, time_ptr, 8)) return *r = WASI_FAULT, 0;
  if (charge(p, p->costs.clock_read_ns) != 0) return 1;
  put64(p->ram + time_ptr, processor_now_ns(p));
  return *r = WASI_SUCCESS, 0;
}

static int imp_random_get(void *ctx, const uint64_t *a, uint64_t *r) {
  processor *p = ctx;
  uint32_t buf = (uint32_t)a[0], length = (uint32_t)a[1];
  if (!in_range(p, buf, length)) return *r = WASI_FAULT, 0;
  prng_fill(&p->random, p->ram + buf, length);
  return *r = WASI_SUCCESS, 0;
}

static int imp_proc_exit(void *ctx, const uint64_t *a, uint64_t *r) {
  processor *p = ctx;
  (void)r;
  p->abort_reason = ABORT_EXIT;
  p->exit_code = (uint32_t)a[0];
  return 1;
}

static const rt_import IMPORTS[] = {
    {"board", "bus_read8", "ii", "i", imp_bus_read8},
    {"board", "bus_read16", "ii", "i", imp_bus_read16},
    {"board", "bus_read32", "ii", "i", imp_bus_read32},
    {"board", "bus_read64", "ii", "i", imp_bus_read64},
    {"board", "bus_read64_high", "", "i", imp_bus_read64_high},
    {"board", "bus_write8", "iii", "", imp_bus_write8},
    {"board", "bus_write16", "iii", "", imp_bus_write16},
    {"board", "bus_write32", "iii", "", imp_bus_write32},
    {"board", "bus_write64", "iiii", "", imp_bus_write64},
    {"wasi_snapshot_preview1", "fd_write", "iiii", "i", imp_fd_write},
    {"wasi_snapshot_preview1", "clock_time_get", "iIi", "i", imp_clock_time_get},
    {"wasi_snapshot_preview1", "random_get", "ii", "i", imp_random_get},
    {"wasi_snapshot_preview1", "proc_exit", "i", "", imp_proc_exit},
};

/* ---- stops ---- */
static void copy_text(char *to, size_t capacity, const uint8_t *from, size_t max_bytes) {
  size_t i = 0;
  for (; i < max_bytes && i < capacity - 1 && from[i] != 0; i++) to[i] = (char)from[i];
  to[i] = 0;
}

void processor_halt(processor *p) {
  p->state = PROC_STOPPED;
  if (p->wake_handle != NULL) clock_cancel(p->clock, p->wake_handle);
  p->wake_handle = NULL;
  p->wake_at_ns = UINT64_MAX;
}

static void stop(processor *p, const char *kind, uint32_t code, const char *task, const char *message) {
  processor_halt(p);
  panic_report *report = &p->last_panic;
  report->kind = kind;
  report->code = code;
  report->time_ns = processor_now_ns(p);
  snprintf(report->task, sizeof report->task, "%s", task);
  snprintf(report->message, sizeof report->message, "%s", message);
  if (p->on_stop != NULL) p->on_stop(p, report);
}

/* After an aborted or trapped call: the panic record, the board's watchdog or the trap's message. */
static void stop_on_error(processor *p, rt_status status, const char *trap_message) {
  const uint8_t *info = p->ram + p->boot_info;
  uint32_t current = get32(info + 444);
  char task[24];
  if (current == TASK_INDEX_NONE) snprintf(task, sizeof task, "-");
  else snprintf(task, sizeof task, "#%" PRIu32, current);
  if (status == RT_ABORTED && p->abort_reason == ABORT_EXIT) {
    if (p->exit_code == 0) {
      processor_halt(p);
      if (p->on_stop != NULL) p->on_stop(p, NULL);
      return;
    }
    char task_name[17], message[257];
    copy_text(task_name, sizeof task_name, info + 168, 16);
    uint32_t length = get32(info + 184);
    copy_text(message, sizeof message, info + 188, length < 256 ? length : 256);
    if (message[0] == 0) snprintf(message, sizeof message, "proc_exit(%" PRIu32 ")", p->exit_code);
    stop(p, "panic", p->exit_code, task_name[0] != 0 ? task_name : "-", message);
    return;
  }
  if (status == RT_ABORTED && p->abort_reason == ABORT_WATCHDOG) {
    char message[120];
    snprintf(message, sizeof message, "watchdog: no return from run() after %" PRIu64 " ns of board time", p->consumed_ns);
    stop(p, "watchdog", 3, task, message);
    return;
  }
  stop(p, "trap", 5, task, trap_message);
}

/* Calls an export as the board does: charged, with proc_exit, traps and the watchdog turned into a stop. */
static int call(processor *p, const char *name, const char *params, const char *results, const uint64_t *args,
                uint64_t *result, int fresh) {
  char error[300];
  if (fresh) {
    p->in_call = 1;
    p->consumed_ns = p->costs.run_call_ns;
    p->abort_reason = 0;
  }
  rt_status status = rt_call(p->rt, name, params, results, args, result, error, sizeof error);
  if (status != RT_OK) {
    p->last_call_ns = p->consumed_ns;
    p->in_call = 0;
    stop_on_error(p, status, error);
    return -1;
  }
  return 0;
}

static void end_call(processor *p) {
  p->last_call_ns = p->consumed_ns;
  p->in_call = 0;
}

static void step(void *ctx);

static void wake(processor *p, uint64_t at_ns) {
  uint64_t when = at_ns;
  if (p->busy_until_ns > when) when = p->busy_until_ns;
  if (p->clock->now_ns > when) when = p->clock->now_ns;
  if (p->state != PROC_RUNNING || when >= p->wake_at_ns) return;
  if (p->wake_handle != NULL) clock_cancel(p->clock, p->wake_handle);
  p->wake_at_ns = when;
  p->wake_handle = clock_at(p->clock, when, step, p);
}

int processor_power_on(processor *p, const uint8_t *wasm, size_t wasm_bytes, char *error, size_t error_bytes) {
  if (p->ram_bytes % WASM_PAGE_BYTES != 0 || p->ram_bytes < 2 * WASM_PAGE_BYTES) {
    snprintf(error, error_bytes, "%s: RAM must be a multiple of 64 KiB", p->name);
    return -1;
  }
  p->rt = rt_instantiate(wasm, wasm_bytes, (uint32_t)(p->ram_bytes / WASM_PAGE_BYTES), IMPORTS,
                         sizeof IMPORTS / sizeof IMPORTS[0], p, error, error_bytes);
  if (p->rt == NULL) {
    /* A bus import of another signature: an image built for another board ABI (ABI 1 passed i64s). */
    size_t used = strlen(error);
    if (strncmp(error, "import board.", 13) == 0 && used < error_bytes)
      snprintf(error + used, error_bytes - used, " (this board implements board ABI %d)", ABI_VERSION);
    return -1;
  }
  p->ram = rt_memory(p->rt);
  if (rt_memory_bytes(p->rt) != p->ram_bytes) {
    snprintf(error, error_bytes, "%s: the runtime made %" PRIu64 " bytes of RAM, not %" PRIu64, p->name,
             rt_memory_bytes(p->rt), p->ram_bytes);
    return -1;
  }
  p->state = PROC_RUNNING;
  p->boot_info = (uint32_t)(p->ram_bytes - BOOT_INFO_OFFSET_FROM_TOP);
  uint8_t *b = p->ram + p->boot_info;
  memset(b, 0, BOOT_INFO_SIZE_BYTES);
  put32(b + 0, BOOT_INFO_MAGIC);
  put16(b + 4, ABI_VERSION);
  put16(b + 6, BOOT_INFO_SIZE_BYTES);
  put32(b + 8, p->role);
  put32(b + 12, p->index);
  put64(b + 16, p->ram_bytes);
  put64(b + 24, p->map.ecam_base);
  put32(b + 32, p->map.ecam_bus_count);
  put32(b + 36, p->verbose ? 1 : 0);
  put64(b + 40, p->map.pci_mem_base);
  put64(b + 48, p->map.pci_mem_size);
  put64(b + 56, p->map.msi_address);
  memcpy(b + 64, p->name, strnlen(p->name, 32));
  memcpy(b + 96, p->board_name, strnlen(p->board_name, 64));
  put32(b + 164, TASK_INDEX_NONE);
  put32(b + 444, TASK_INDEX_NONE);
  put64(b + 448, p->map.mu_local_base);
  put64(b + 456, p->map.dma_base);
  put64(b + 464, p->map.outbound_window_base);
  put64(b + 472, p->map.outbound_window_size);
  put64(b + 480, p->map.sysctl_base);
  put64(b + 488, p->map.config_rom_base);
  put32(b + 496, p->map.config_rom_bytes);
  uint64_t args[1] = {p->boot_info}, status = 0;
  if (call(p, "boot", "i", "i", args, &status, 1) != 0) return -1;
  end_call(p);
  if ((uint32_t)status != 0) {
    char message[120];
    uint32_t s = (uint32_t)status;
    snprintf(message, sizeof message, "boot() returned %" PRIu32 "%s%s%s", s, s < 4 ? " (" : "",
             s < 4 ? BOOT_ERRORS[s] : "", s < 4 ? ")" : "");
    stop(p, "boot", 2, "-", message);
    return -1;
  }
  uint64_t top = 0;
  if (call(p, "heapTop", "", "i", NULL, &top, 0) != 0) return -1;
  p->heap_top_at_boot = top;
  wake(p, processor_now_ns(p));
  return 0;
}

void processor_raise_irq(processor *p, int vector) {
  if (p->state != PROC_RUNNING) return;
  if (vector < 0 || vector >= VECTORS_MAX) {
    char message[100];
    snprintf(message, sizeof message, "interrupt on vector %d ignored: the processor takes 0..%d", vector, VECTORS_MAX - 1);
    board_log(p, message);
    return;
  }
  if (!p->pending[vector]) {
    p->pending[vector] = 1;
    p->pending_count++;
  }
  wake(p, processor_now_ns(p));
}

/* One turn: latched interrupts through irq(), then run() for one budget; the next turn from its answer. */
static void step(void *ctx) {
  processor *p = ctx;
  p->wake_handle = NULL;
  p->wake_at_ns = UINT64_MAX;
  if (p->state != PROC_RUNNING) return;
  uint64_t start_ns = p->clock->now_ns;
  p->in_call = 1;
  p->consumed_ns = p->costs.run_call_ns;
  p->abort_reason = 0;
  for (int vector = 0; p->pending_count > 0 && vector < VECTORS_MAX; vector++) {
    if (!p->pending[vector]) continue;
    p->pending[vector] = 0;
    p->pending_count--;
    uint64_t args[1] = {(uint64_t)vector};
    if (call(p, "irq", "i", "", args, NULL, 0) != 0) return;
  }
  uint64_t args[1] = {p->costs.run_budget_ns}, result = 0;
  if (call(p, "run", "I", "I", args, &result, 0) != 0) return;
  end_call(p);
  p->run_count++;
  uint64_t end_ns = start_ns + p->last_call_ns;
  p->busy_until_ns = end_ns;
  int64_t answer = (int64_t)result;
  if (answer == 0 || p->pending_count > 0) wake(p, end_ns);
  else if (answer != -1) wake(p, (uint64_t)answer > end_ns ? (uint64_t)answer : end_ns);
}

void processor_free(processor *p) {
  if (p->rt != NULL) rt_free(p->rt);
  p->rt = NULL;
  p->ram = NULL;
}
