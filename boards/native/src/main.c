#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "processor.h"

static void on_console(processor *p, int fd, const char *line) {
  fprintf(fd == 1 ? stdout : stderr, "[%s] %s\n", p->name, line);
  fflush(fd == 1 ? stdout : stderr);
}
static void on_stop(processor *p, const panic_report *r) {
  if (r == NULL) fprintf(stderr, "%s: stopped (proc_exit 0)\n", p->name);
  else fprintf(stderr, "%s: %s code=%u task=%s: %s\n", p->name, r->kind, r->code, r->task, r->message);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  FILE *f = fopen(argv[1], "rb");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *wasm = malloc(n);
  fread(wasm, 1, n, f);
  fclose(f);
  prng board;
  prng_seed_text(&board, "1");
  processor p;
  processor_init(&p, "host", 0, 0, 64ull << 20, "proto", "host/0", &board);
  p.on_console = on_console;
  p.on_stop = on_stop;
  p.map.ecam_base = 0xE0000000ull;
  p.map.ecam_bus_count = 1;
  p.map.pci_mem_base = 0xC0000000ull;
  p.map.pci_mem_size = 512ull << 20;
  p.map.msi_address = 0xFEE00000ull;
  char error[300];
  if (processor_power_on(&p, wasm, n, error, sizeof error) != 0) {
    fprintf(stderr, "power on: %s\n", error);
    return 1;
  }
  for (int i = 0; i < 300 && p.state == PROC_RUNNING; i++) {
    if (p.wake_at_ns == UINT64_MAX) break;
    p.clock_ns = p.wake_at_ns;
    processor_step(&p);
  }
  printf("runs %" PRIu64 " clock %" PRIu64 "\n", p.run_count, p.clock_ns);
  return 0;
}
