/* The trace-driven board in C, on the native board's runtime port (boards/native/src/runtime.h): the same board as
 * tools/trace_board/replay.py, for runtimes a C board links (wabt's interpreter today, WAMR behind the same port).
 * It makes every call the trace holds, answers every import from it, applies the memory the JS board's devices
 * wrote, and checks writes, console lines, results, endings and device reads; the first difference is named (line,
 * call, expected, actual). docs/trace-format.md describes the file; exit status 0 no difference, 1 a difference, 2
 * usage or format error.
 *
 *   iop-trace-board TRACE [--image WASM ...] [--json]
 *
 * Libraries: libcjson (the lines), libsodium (SHA-256, base64); a .gz trace is read through `gzip -dc`. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime.h"

#define PROCESSORS_MAX 16
#define IMAGES_MAX 8
#define MESSAGE_BYTES 1024
#define WASI_ERRNO_SUCCESS 0
#define WASI_ERRNO_BADF 8
#define WASI_ERRNO_FAULT 21
#define WASI_ERRNO_INVAL 28

typedef struct {
  char name[64];
  uint32_t pages;
  rt_instance *instance; /* NULL until its "power" line (and again after a "ram" line: a reset) */
  uint8_t *memory;
  uint64_t memory_bytes;
  char *console[2]; /* fd 1 and 2: the pending part of a line */
  size_t console_bytes[2];
  uint64_t read64_high; /* the high half of the last bus_read64's value, for bus_read64_high */
} Processor;

typedef struct {
  char digest[65];
  uint8_t *bytes;
  size_t size;
} Image;

typedef struct {
  long line;
  cJSON *event;
} Item;

/* The board: the trace being read, the processors, the call in progress, the first difference. */
static struct {
  const char *path;
  FILE *file;
  bool piped; /* through gzip -dc */
  char *text;
  size_t text_bytes;
  long line;
  bool have_back;
  Item back;
  crypto_hash_sha256_state hash;
  long hashed_lines, replay_lines;
  Processor processors[PROCESSORS_MAX];
  int processor_count;
  Image images[IMAGES_MAX];
  int image_count;
  Processor *current;
  char call_text[256];
  bool device_cycle_next;
  /* Why the firmware's call was aborted from an import. */
  bool difference;
  long difference_line;
  char expected[MESSAGE_BYTES], actual[MESSAGE_BYTES], difference_call[256];
  bool exited, stopped;
  int exit_code;
  /* Counts for the report. */
  long calls, imports, mem_writes, mem_bytes, peeks, power_ons;
} board;

static void fail_format(const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  fprintf(stderr, "iop-trace-board: %s:%ld: ", board.path, board.line);
  vfprintf(stderr, format, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

/* Records the first difference (later ones are consequences); the caller unwinds the firmware's call. */
static void set_difference(long line, const char *expected, const char *actual_format, ...) {
  if (board.difference) return;
  board.difference = true;
  board.difference_line = line;
  snprintf(board.difference_call, sizeof board.difference_call, "%s", board.call_text);
  snprintf(board.expected, sizeof board.expected, "%s", expected);
  va_list ap;
  va_start(ap, actual_format);
  vsnprintf(board.actual, sizeof board.actual, actual_format, ap);
  va_end(ap);
}

static void difference_at(const Item *item, const char *actual_format, ...) {
  char *text = cJSON_PrintUnformatted(item->event);
  char actual[MESSAGE_BYTES];
  va_list ap;
  va_start(ap, actual_format);
  vsnprintf(actual, sizeof actual, actual_format, ap);
  va_end(ap);
  set_difference(item->line, text, "%s", actual);
  free(text);
}

/* --- the trace, line by line --- */

static bool read_line(void) {
  if (getline(&board.text, &board.text_bytes, board.file) < 0) return false;
  board.line += 1;
  return true;
}

/* The next line, or an Item with a NULL event at the end. */
static Item next_item(void) {
  if (board.have_back) {
    board.have_back = false;
    return board.back;
  }
  Item item = {0, NULL};
  if (!read_line()) return item;
  item.line = board.line;
  item.event = cJSON_Parse(board.text);
  if (item.event == NULL) fail_format("not JSON");
  if (cJSON_GetObjectItemCaseSensitive(item.event, "seq") != NULL) {
    board.hashed_lines += 1;
    crypto_hash_sha256_update(&board.hash, (const unsigned char *)board.text, strlen(board.text));
  } else {
    board.replay_lines += 1;
  }
  return item;
}

static void push_back(Item item) {
  board.have_back = true;
  board.back = item;
}

static const char *string_field(const cJSON *event, const char *name) {
  const cJSON *field = cJSON_GetObjectItemCaseSensitive(event, name);
  return cJSON_IsString(field) ? field->valuestring : NULL;
}

static bool has_string(const cJSON *event, const char *name, const char *value) {
  const char *text = string_field(event, name);
  return text != NULL && strcmp(text, value) == 0;
}

/* An integer field: a JSON number, a decimal string (64-bit) or a "0x" hex string (bus values). */
static uint64_t int_field(const cJSON *event, const char *name) {
  const cJSON *field = cJSON_GetObjectItemCaseSensitive(event, name);
  if (cJSON_IsNumber(field)) return (uint64_t)(int64_t)field->valuedouble;
  if (cJSON_IsString(field)) {
    const char *text = field->valuestring;
    if (text[0] == '-') return (uint64_t)strtoll(text, NULL, 10);
    return strtoull(text, NULL, strncmp(text, "0x", 2) == 0 ? 16 : 10);
  }
  fail_format("no integer field \"%s\"", name);
  return 0;
}

static Processor *processor_named(const char *name, bool make) {
  for (int i = 0; i < board.processor_count; i++) {
    if (strcmp(board.processors[i].name, name) == 0) return &board.processors[i];
  }
  if (!make) return NULL;
  if (board.processor_count == PROCESSORS_MAX) fail_format("more than %d processors", PROCESSORS_MAX);
  Processor *p = &board.processors[board.processor_count++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  return p;
}

static Processor *processor_of(const Item *item) {
  const char *name = string_field(item->event, "p");
  Processor *p = name == NULL ? NULL : processor_named(name, false);
  if (p == NULL) fail_format("processor %s has no \"ram\" line before it", name == NULL ? "(none)" : name);
  return p;
}

static bool in_range(const Processor *p, uint64_t at, uint64_t length) {
  return at <= p->memory_bytes && length <= p->memory_bytes - at;
}

static void power_on(const Item *item);

static void check_peek(const Item *item) {
  Processor *p = processor_of(item);
  uint64_t at = int_field(item->event, "at"), length = int_field(item->event, "len");
  if (p->instance == NULL) fail_format("a device read of %s's memory before its power-on (not supported here)", p->name);
  if (!in_range(p, at, length)) fail_format("a device read outside %s's memory", p->name);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, p->memory + at, length);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  hex[16] = '\0';
  board.peeks += 1;
  const char *sha = string_field(item->event, "sha");
  if (sha == NULL || strcmp(sha, hex) != 0) {
    char expected[256];
    snprintf(expected, sizeof expected, "%s's memory [%" PRIu64 ", %" PRIu64 ") as a device read it (sha256 %s...)", p->name, at,
             at + length, sha == NULL ? "?" : sha);
    set_difference(item->line, expected, "other bytes (sha256 %s...)", hex);
  }
}

static void write_memory(const Item *item) {
  Processor *p = processor_of(item);
  const char *b64 = string_field(item->event, "b64");
  if (p->instance == NULL) fail_format("a write into %s's memory before its power-on (not supported here)", p->name);
  if (b64 == NULL) fail_format("a \"mem\" line without b64");
  size_t capacity = strlen(b64) / 4 * 3 + 3, length = 0;
  uint8_t *data = malloc(capacity);
  if (data == NULL || sodium_base642bin(data, capacity, b64, strlen(b64), NULL, &length, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
    fail_format("bad base64");
  }
  uint64_t at = int_field(item->event, "at");
  if (!in_range(p, at, length)) fail_format("a write outside %s's memory", p->name);
  memcpy(p->memory + at, data, length);
  free(data);
  board.mem_writes += 1;
  board.mem_bytes += (long)length;
}

static bool import_event(const cJSON *event) {
  static const char *const kinds[] = {"r8", "r16", "r32", "r64", "w8", "w16", "w32", "w64", "clock", "random", "console"};
  const char *ev = string_field(event, "ev");
  if (ev == NULL) return false;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (strcmp(ev, kinds[i]) == 0) return true;
  }
  return false;
}

/* Applies a line that needs no firmware step; false for the others (calls, results, the firmware's imports). */
static bool apply_passive(const Item *item) {
  const cJSON *event = item->event;
  const char *kind = string_field(event, "rp");
  if (kind == NULL) {
    if (board.device_cycle_next) {
      board.device_cycle_next = false;
      return true;
    }
    const char *src = string_field(event, "src");
    if (!import_event(event) || src == NULL) return true;
    if (board.current != NULL) return strcmp(src, board.current->name) != 0;
    return processor_named(src, false) == NULL;
  }
  if (strcmp(kind, "dev") == 0) {
    board.device_cycle_next = true;
  } else if (strcmp(kind, "mem") == 0) {
    write_memory(item);
  } else if (strcmp(kind, "peek") == 0) {
    check_peek(item);
  } else if (strcmp(kind, "ram") == 0) {
    Processor *p = processor_named(string_field(event, "p"), true);
    if (p->instance != NULL) rt_free(p->instance);
    p->instance = NULL;
    p->memory = NULL;
    p->memory_bytes = 0;
    p->pages = (uint32_t)int_field(event, "pages");
  } else if (strcmp(kind, "power") == 0) {
    power_on(item);
  } else if (strcmp(kind, "trace") != 0) {
    return false;
  }
  return true;
}

/* The next line the firmware's step must match; a NULL event when the trace ends inside the call. */
static Item next_active(void) {
  for (;;) {
    Item item = next_item();
    if (item.event == NULL) return item;
    if (!apply_passive(&item)) return item;
    cJSON_Delete(item.event);
    if (board.difference) return (Item){board.difference_line, NULL};
  }
}

/* Applies the passive lines after the last matched one: what a device did inside that import. */
static void apply_following(void) {
  for (;;) {
    Item item = next_item();
    if (item.event == NULL) return;
    if (!apply_passive(&item)) {
      push_back(item);
      return;
    }
    cJSON_Delete(item.event);
  }
}

/* --- the imports --- */

/* The line import `what` must match, or NULL after recording why the call stops here (`actual`: what the firmware
 * did, for the message). */
static cJSON *expect(Processor *p, const char *what, const char *actual, long *line) {
  board.imports += 1;
  Item item = next_active();
  if (board.difference) return NULL;
  if (item.event == NULL) {
    set_difference(board.line + 1, "the rest of the call", "the end of the trace");
    return NULL;
  }
  *line = item.line;
  if (has_string(item.event, "rp", "end") && has_string(item.event, "p", p->name) && has_string(item.event, "how", "stop")) {
    board.stopped = true;
    cJSON_Delete(item.event);
    return NULL;
  }
  if (!has_string(item.event, "src", p->name) || !has_string(item.event, "ev", what)) {
    difference_at(&item, "%s", actual);
    cJSON_Delete(item.event);
    return NULL;
  }
  return item.event;
}

/* Board ABI 2: addresses and values arrive as 32-bit halves, low first (docs/board-abi.md). */
static uint64_t halves(uint64_t low, uint64_t high) { return (high & 0xffffffffu) << 32 | (low & 0xffffffffu); }

static int bus_read(Processor *p, unsigned bits, const uint64_t *args, uint64_t *result) {
  char what[8], actual[64];
  uint64_t address = halves(args[0], args[1]);
  snprintf(what, sizeof what, "r%u", bits);
  snprintf(actual, sizeof actual, "%s at 0x%" PRIx64, what, address);
  long line = 0;
  cJSON *event = expect(p, what, actual, &line);
  if (event == NULL) return 1;
  Item item = {line, event};
  if (int_field(event, "addr") != address) {
    difference_at(&item, "%s", actual);
    cJSON_Delete(event);
    return 1;
  }
  uint64_t value = int_field(event, "val");
  *result = value & 0xffffffffu; /* bus_read64: the low half; bus_read64_high answers the rest */
  p->read64_high = value >> 32;
  cJSON_Delete(event);
  apply_following();
  return board.difference ? 1 : 0;
}

static int bus_write(Processor *p, unsigned bits, const uint64_t *args) {
  char what[8], actual[80];
  snprintf(what, sizeof what, "w%u", bits);
  uint64_t address = halves(args[0], args[1]);
  uint64_t value = bits == 64 ? halves(args[2], args[3]) : args[2] & ((1ull << bits) - 1);
  snprintf(actual, sizeof actual, "%s at 0x%" PRIx64 " of 0x%" PRIx64, what, address, value);
  long line = 0;
  cJSON *event = expect(p, what, actual, &line);
  if (event == NULL) return 1;
  Item item = {line, event};
  if (int_field(event, "addr") != address || int_field(event, "val") != value) {
    difference_at(&item, "%s", actual);
    cJSON_Delete(event);
    return 1;
  }
  cJSON_Delete(event);
  apply_following();
  return board.difference ? 1 : 0;
}

#define BUS_READ(bits) \
  static int bus_read##bits(void *ctx, const uint64_t *args, uint64_t *result) { return bus_read(ctx, bits, args, result); }
#define BUS_WRITE(bits) \
  static int bus_write##bits(void *ctx, const uint64_t *args, uint64_t *result) { (void)result; return bus_write(ctx, bits, args); }
BUS_READ(8) BUS_READ(16) BUS_READ(32) BUS_READ(64)
BUS_WRITE(8) BUS_WRITE(16) BUS_WRITE(32) BUS_WRITE(64)

static int bus_read64_high(void *ctx, const uint64_t *args, uint64_t *result) {
  (void)args;
  *result = ((Processor *)ctx)->read64_high;
  return 0;
}

static uint32_t load_u32(const Processor *p, uint64_t at) {
  uint32_t value;
  memcpy(&value, p->memory + at, 4);
  return value; /* little-endian hosts only (x86-64, ARMv7 as the board builds it) */
}

/* One complete console line: it must be the next console line of the trace. */
static int console_line(Processor *p, int fd, const char *text, size_t length) {
  char actual[MESSAGE_BYTES];
  snprintf(actual, sizeof actual, "console fd %d: \"%.*s\"", fd, (int)length, text);
  long line = 0;
  cJSON *event = expect(p, "console", actual, &line);
  if (event == NULL) return 1;
  Item item = {line, event};
  const char *expected = string_field(event, "text");
  /* Byte comparison: the JS board decodes UTF-8 with replacement characters; the firmware writes ASCII. */
  if (int_field(event, "fd") != (uint64_t)fd || expected == NULL || strlen(expected) != length || memcmp(expected, text, length) != 0) {
    difference_at(&item, "%s", actual);
    cJSON_Delete(event);
    return 1;
  }
  cJSON_Delete(event);
  return 0;
}

static int fd_write(void *ctx, const uint64_t *args, uint64_t *result) {
  Processor *p = ctx;
  uint32_t fd = (uint32_t)args[0], iovs = (uint32_t)args[1], count = (uint32_t)args[2], written_at = (uint32_t)args[3];
  if (fd != 1 && fd != 2) return *result = WASI_ERRNO_BADF, 0;
  if (!in_range(p, iovs, (uint64_t)count * 8) || !in_range(p, written_at, 4)) return *result = WASI_ERRNO_FAULT, 0;
  uint32_t written = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t buf = load_u32(p, iovs + i * 8), length = load_u32(p, iovs + i * 8 + 4);
    if (!in_range(p, buf, length)) return *result = WASI_ERRNO_FAULT, 0;
    int slot = (int)fd - 1;
    size_t pending = p->console_bytes[slot];
    p->console[slot] = realloc(p->console[slot], pending + length + 1);
    memcpy(p->console[slot] + pending, p->memory + buf, length);
    pending += length;
    size_t start = 0;
    for (size_t at = 0; at < pending; at++) {
      if (p->console[slot][at] != '\n') continue;
      if (console_line(p, (int)fd, p->console[slot] + start, at - start) != 0) return 1;
      start = at + 1;
    }
    memmove(p->console[slot], p->console[slot] + start, pending - start);
    p->console_bytes[slot] = pending - start;
    written += length;
  }
  memcpy(p->memory + written_at, &written, 4);
  apply_following();
  *result = WASI_ERRNO_SUCCESS;
  return board.difference ? 1 : 0;
}

static int clock_time_get(void *ctx, const uint64_t *args, uint64_t *result) {
  Processor *p = ctx;
  uint32_t clock = (uint32_t)args[0], at = (uint32_t)args[2];
  if (clock != 0 && clock != 1) return *result = WASI_ERRNO_INVAL, 0;
  if (!in_range(p, at, 8)) return *result = WASI_ERRNO_FAULT, 0;
  char actual[64];
  snprintf(actual, sizeof actual, "a clock read (clock %u)", clock);
  long line = 0;
  cJSON *event = expect(p, "clock", actual, &line);
  if (event == NULL) return 1;
  uint64_t now = int_field(event, "t");
  memcpy(p->memory + at, &now, 8);
  cJSON_Delete(event);
  apply_following();
  *result = WASI_ERRNO_SUCCESS;
  return board.difference ? 1 : 0;
}

static int random_get(void *ctx, const uint64_t *args, uint64_t *result) {
  Processor *p = ctx;
  uint32_t buf = (uint32_t)args[0], length = (uint32_t)args[1];
  if (!in_range(p, buf, length)) return *result = WASI_ERRNO_FAULT, 0;
  char actual[64];
  snprintf(actual, sizeof actual, "random_get of %u bytes", length);
  long line = 0;
  cJSON *event = expect(p, "random", actual, &line);
  if (event == NULL) return 1;
  Item item = {line, event};
  const char *hex = string_field(event, "bytes");
  size_t got = 0;
  if (hex == NULL || strlen(hex) != (size_t)length * 2 ||
      sodium_hex2bin(p->memory + buf, length, hex, strlen(hex), NULL, &got, NULL) != 0 || got != length) {
    difference_at(&item, "%s", actual);
    cJSON_Delete(event);
    return 1;
  }
  cJSON_Delete(event);
  apply_following();
  *result = WASI_ERRNO_SUCCESS;
  return board.difference ? 1 : 0;
}

static int proc_exit(void *ctx, const uint64_t *args, uint64_t *result) {
  (void)ctx;
  (void)result;
  board.exited = true;
  board.exit_code = (int)(int32_t)args[0];
  return 1;
}

static const rt_import IMPORTS[] = {
    {"board", "bus_read8", "ii", "i", bus_read8},
    {"board", "bus_read16", "ii", "i", bus_read16},
    {"board", "bus_read32", "ii", "i", bus_read32},
    {"board", "bus_read64", "ii", "i", bus_read64},
    {"board", "bus_read64_high", "", "i", bus_read64_high},
    {"board", "bus_write8", "iii", "", bus_write8},
    {"board", "bus_write16", "iii", "", bus_write16},
    {"board", "bus_write32", "iii", "", bus_write32},
    {"board", "bus_write64", "iiii", "", bus_write64},
    {"wasi_snapshot_preview1", "fd_write", "iiii", "i", fd_write},
    {"wasi_snapshot_preview1", "clock_time_get", "iIi", "i", clock_time_get},
    {"wasi_snapshot_preview1", "random_get", "ii", "i", random_get},
    {"wasi_snapshot_preview1", "proc_exit", "i", "", proc_exit},
};

/* --- power and calls --- */

static void power_on(const Item *item) {
  Processor *p = processor_of(item);
  const char *digest = string_field(item->event, "image");
  const Image *image = NULL;
  for (int i = 0; i < board.image_count; i++) {
    if (digest != NULL && strcmp(board.images[i].digest, digest) == 0) image = &board.images[i];
  }
  if (image == NULL && digest != NULL && strcmp(digest, "unknown") == 0 && board.image_count == 1) image = &board.images[0];
  if (image == NULL) fail_format("the trace ran image sha256 %s; pass it with --image", digest == NULL ? "?" : digest);
  char error[MESSAGE_BYTES];
  if (p->instance != NULL) rt_free(p->instance);
  p->instance = rt_instantiate(image->bytes, image->size, p->pages, IMPORTS, sizeof IMPORTS / sizeof IMPORTS[0], p, error, sizeof error);
  if (p->instance == NULL) {
    char expected[128];
    snprintf(expected, sizeof expected, "%s powers on", p->name);
    set_difference(item->line, expected, "%s", error);
    return;
  }
  p->memory = rt_memory(p->instance);
  p->memory_bytes = rt_memory_bytes(p->instance);
  for (int fd = 0; fd < 2; fd++) p->console_bytes[fd] = 0;
  board.power_ons += 1;
}

typedef struct {
  const char *name, *params, *results;
} ExportSignature;

static const ExportSignature EXPORTS[] = {
    {"boot", "i", "i"}, {"heapTop", "", "i"}, {"irq", "i", ""}, {"run", "I", "I"}, {"abiVersion", "", "i"},
};

/* Checks the line after a call that did not return: it must say the call ended `how` (and with `code`). */
static void expect_end(Processor *p, const char *how, int code, const char *actual) {
  Item item = next_active();
  if (board.difference) return;
  if (item.event == NULL) {
    set_difference(board.line + 1, "the end of the call", "the end of the trace");
    return;
  }
  bool ok = has_string(item.event, "rp", "end") && has_string(item.event, "p", p->name) && has_string(item.event, "how", how);
  if (ok && strcmp(how, "exit") == 0) ok = (int)(int64_t)int_field(item.event, "code") == code;
  if (!ok) difference_at(&item, "%s", actual);
  cJSON_Delete(item.event);
}

static void call(const Item *item) {
  Processor *p = processor_of(item);
  const char *name = string_field(item->event, "fn");
  const ExportSignature *signature = NULL;
  for (size_t i = 0; name != NULL && i < sizeof EXPORTS / sizeof EXPORTS[0]; i++) {
    if (strcmp(EXPORTS[i].name, name) == 0) signature = &EXPORTS[i];
  }
  if (signature == NULL) fail_format("export %s: not one of the ABI's (a test build's export is not replayed here)", name == NULL ? "?" : name);
  uint64_t args[4] = {0};
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(item->event, "args");
  int count = cJSON_GetArraySize(list);
  char shown[128] = "";
  for (int i = 0; i < count && i < 4; i++) {
    const cJSON *arg = cJSON_GetArrayItem(list, i);
    args[i] = cJSON_IsNumber(arg) ? (uint64_t)(int64_t)arg->valuedouble : (uint64_t)strtoll(arg->valuestring, NULL, 10);
    snprintf(shown + strlen(shown), sizeof shown - strlen(shown), "%s%" PRId64, i == 0 ? "" : ", ", (int64_t)args[i]);
  }
  snprintf(board.call_text, sizeof board.call_text, "%s %s(%s) at line %ld", p->name, name, shown, item->line);
  if (p->instance == NULL) {
    set_difference(item->line, "a powered-on processor", "no instance (no \"power\" line)");
    return;
  }
  board.current = p;
  board.calls += 1;
  board.exited = board.stopped = false;
  uint64_t result = 0;
  char error[MESSAGE_BYTES] = "";
  rt_status status = rt_call(p->instance, name, signature->params, signature->results, args, &result, error, sizeof error);
  if (board.difference) {
    /* named inside an import */
  } else if (status == RT_ABORTED && board.exited) {
    char actual[64];
    snprintf(actual, sizeof actual, "proc_exit(%d)", board.exit_code);
    expect_end(p, "exit", board.exit_code, actual);
  } else if (status == RT_ABORTED && board.stopped) {
    /* the JS board's watchdog stopped the call at this import; the "end" line is consumed */
  } else if (status == RT_TRAP) {
    char actual[MESSAGE_BYTES + 16];
    snprintf(actual, sizeof actual, "a trap (%s)", error);
    expect_end(p, "trap", 0, actual);
  } else {
    Item ret = next_active();
    if (!board.difference) {
      if (ret.event == NULL) {
        set_difference(board.line + 1, "the call's result", "the end of the trace");
      } else if (!has_string(ret.event, "rp", "ret") || !has_string(ret.event, "p", p->name)) {
        difference_at(&ret, "the call returned %" PRId64, (int64_t)result);
      } else if (signature->results[0] != '\0') {
        uint64_t expected = int_field(ret.event, "val");
        bool same = signature->results[0] == 'i' ? (uint32_t)expected == (uint32_t)result : expected == result;
        if (!same) {
          char text[96];
          snprintf(text, sizeof text, "the result %" PRId64, (int64_t)expected);
          set_difference(ret.line, text, "%" PRId64, signature->results[0] == 'i' ? (int64_t)(int32_t)result : (int64_t)result);
        }
      }
      if (ret.event != NULL) cJSON_Delete(ret.event);
    }
  }
  board.current = NULL;
  snprintf(board.call_text, sizeof board.call_text, "-");
}

static void run_trace(void) {
  for (;;) {
    Item item = next_item();
    if (item.event == NULL || board.difference) return;
    if (!apply_passive(&item)) {
      const char *kind = string_field(item.event, "rp");
      if (kind != NULL && strcmp(kind, "call") == 0) {
        call(&item);
      } else if (kind != NULL) {
        difference_at(&item, "a %s line with no call in progress", kind);
      } else {
        difference_at(&item, "an import outside any call");
      }
    }
    cJSON_Delete(item.event);
    if (board.difference) return;
  }
}

static bool load_image(const char *path) {
  FILE *file = fopen(path, "rb");
  if (file == NULL) return false;
  Image *image = &board.images[board.image_count++];
  fseek(file, 0, SEEK_END);
  image->size = (size_t)ftell(file);
  fseek(file, 0, SEEK_SET);
  image->bytes = malloc(image->size);
  bool ok = image->bytes != NULL && fread(image->bytes, 1, image->size, file) == image->size;
  fclose(file);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, image->bytes, image->size);
  sodium_bin2hex(image->digest, sizeof image->digest, digest, sizeof digest);
  return ok;
}

static void json_string(const char *text) {
  cJSON *string = cJSON_CreateString(text);
  char *printed = cJSON_PrintUnformatted(string);
  fputs(printed, stdout);
  free(printed);
  cJSON_Delete(string);
}

int main(int argc, char **argv) {
  bool json = false;
  const char *images[IMAGES_MAX];
  int image_count = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (strcmp(argv[i], "--image") == 0 && i + 1 < argc && image_count < IMAGES_MAX) {
      images[image_count++] = argv[++i];
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      printf("usage: iop-trace-board TRACE [--image WASM ...] [--json]\n\nReplays a trace of the JS board (docs/trace-format.md) on %s;\n"
             "exit 0 no difference, 1 a difference, 2 usage or format error.\n", rt_name());
      return 0;
    } else if (argv[i][0] != '-' && board.path == NULL) {
      board.path = argv[i];
    } else {
      fprintf(stderr, "iop-trace-board: unexpected argument %s (--help)\n", argv[i]);
      return 2;
    }
  }
  if (board.path == NULL) {
    fprintf(stderr, "usage: iop-trace-board TRACE [--image WASM ...] [--json]\n");
    return 2;
  }
  if (sodium_init() < 0) return 2;
  if (image_count == 0) images[image_count++] = "build/firmware.wasm";
  for (int i = 0; i < image_count; i++) {
    if (!load_image(images[i])) {
      fprintf(stderr, "iop-trace-board: --image %s: cannot read it\n", images[i]);
      return 2;
    }
  }
  size_t path_length = strlen(board.path);
  board.piped = path_length > 3 && strcmp(board.path + path_length - 3, ".gz") == 0;
  board.file = fopen(board.path, "rb");
  if (board.file != NULL && board.piped) {
    fclose(board.file);
    char command[4096];
    snprintf(command, sizeof command, "gzip -dc -- '%s'", board.path); /* the path is the user's own argument */
    board.file = strchr(board.path, '\'') == NULL ? popen(command, "r") : NULL;
  }
  if (board.file == NULL) {
    fprintf(stderr, "iop-trace-board: %s: cannot open it\n", board.path);
    return 2;
  }
  crypto_hash_sha256_init(&board.hash);
  snprintf(board.call_text, sizeof board.call_text, "-");
  Item header = next_item();
  if (header.event == NULL || !has_string(header.event, "rp", "trace") || !has_string(header.event, "format", "wasm-iop-trace")) {
    fail_format("expected the header {\"rp\":\"trace\",\"format\":\"wasm-iop-trace\",...}");
  }
  if (int_field(header.event, "version") != 2) fail_format("format version %" PRIu64 ", this board knows 2", int_field(header.event, "version"));
  cJSON_Delete(header.event);

  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  run_trace();
  clock_gettime(CLOCK_MONOTONIC, &end);
  double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&board.hash, digest);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  if (json) {
    printf("{\"trace\":");
    json_string(board.path);
    printf(",\"runtime\":");
    json_string(rt_name());
    printf(",\"ok\":%s,\"seconds\":%.3f,\"lines\":%ld,\"hashedLines\":%ld,\"replayLines\":%ld,\"calls\":%ld,\"imports\":%ld,"
           "\"memWrites\":%ld,\"memBytes\":%ld,\"peeks\":%ld,\"powerOns\":%ld",
           board.difference ? "false" : "true", seconds, board.line, board.hashed_lines, board.replay_lines, board.calls,
           board.imports, board.mem_writes, board.mem_bytes, board.peeks, board.power_ons);
    if (board.difference) {
      printf(",\"difference\":{\"line\":%ld,\"call\":", board.difference_line);
      json_string(board.difference_call);
      printf(",\"expected\":");
      json_string(board.expected);
      printf(",\"actual\":");
      json_string(board.actual);
      printf("}");
    } else {
      printf(",\"sha256\":\"%s\"", hex);
    }
    printf("}\n");
  } else if (board.difference) {
    printf("first difference at line %ld, in %s:\n  expected: %s\n  actual:   %s\n", board.difference_line, board.difference_call,
           board.expected, board.actual);
  } else {
    printf("no difference on %s: %ld lines, %ld calls, %ld imports answered, %ld memory writes (%ld bytes), %ld device reads "
           "checked, in %.3f s; trace sha256 %s\n",
           rt_name(), board.line, board.calls, board.imports, board.mem_writes, board.mem_bytes, board.peeks, seconds, hex);
  }
  if (board.piped) pclose(board.file);
  else fclose(board.file);
  return board.difference ? 1 : 0;
}
