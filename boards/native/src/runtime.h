/* The runtime port: the one place the native board meets a WebAssembly runtime. The board (board.c) never names a
 * runtime type; a port (runtime_wabt.cc today) loads the image, links the board's imports by module and name, gives
 * the board the processor's RAM, and calls the firmware's exports. Another runtime (WAMR, wasm3, wasmtime's C API)
 * is another file implementing these functions. */
#ifndef IOP_RUNTIME_H
#define IOP_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A host function. `args` holds the call's arguments (i32 zero-extended, i64 as is); write the result, if the
 * signature has one, to *result. Return 0 to go on, or non-zero to abort the firmware's call: the port unwinds it
 * and the export call returns RT_ABORTED (the board has recorded why: proc_exit, its watchdog). */
typedef int (*rt_host_fn)(void *ctx, const uint64_t *args, uint64_t *result);

typedef struct {
  const char *module;
  const char *name;
  const char *params;  /* one letter a parameter: 'i' i32, 'I' i64 */
  const char *results; /* "" or one letter */
  rt_host_fn fn;
} rt_import;

typedef enum { RT_OK = 0, RT_TRAP = 1, RT_ABORTED = 2 } rt_status;

typedef struct rt_instance rt_instance;

/* Decodes and validates `wasm`, links every import from `imports` (plus env.memory, made shared with initial =
 * maximum = `memory_pages`), and instantiates it. An import the table lacks, or one whose type differs, is refused
 * before any code runs: the message names it. Returns NULL with a message in `error` on failure. */
rt_instance *rt_instantiate(const uint8_t *wasm, size_t wasm_bytes, uint32_t memory_pages, const rt_import *imports,
                            size_t import_count, void *ctx, char *error, size_t error_bytes);

/* The processor's RAM: the imported memory's bytes; its size never changes. */
uint8_t *rt_memory(rt_instance *instance);
uint64_t rt_memory_bytes(rt_instance *instance);

/* Calls an export. `params`/`results` as in rt_import; args and the result travel as uint64_t. On RT_TRAP the trap's
 * message is in `error`. A missing export or a signature that differs is RT_TRAP with a message naming it. */
rt_status rt_call(rt_instance *instance, const char *name, const char *params, const char *results,
                  const uint64_t *args, uint64_t *result, char *error, size_t error_bytes);

void rt_free(rt_instance *instance);

/* The runtime's name and version, for the boot banner. */
const char *rt_name(void);

#ifdef __cplusplus
}
#endif
#endif
