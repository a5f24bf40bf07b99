/* iop-native-board: boots the board's host processor from its flash, as a real board would, and runs it.
 * See boards/native/README.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "board_file.h"
#include "flash.h"
#include "processor.h"
#include "regions.h"
#include "sysctl.h"

#define ECAM_BASE 0xe0000000ull
#define PCI_MEM_BASE 0xc0000000ull
#define PCI_MEM_SIZE 0x20000000ull
#define MSI_ADDRESS 0xfee00000ull
#define DMA_BASE 0xf0010000ull
/* Board time may run ahead of wall time by this much to run an event now rather than sleep (host/sim/realtime.ts). */
#define LEAD_NS_MAX 1000000ull
#define SLEEP_MS_MAX 50

static const char USAGE[] =
    "usage: iop-native-board --board FILE [--data-dir DIR] [--seed SEED] [--stop-after-ms N] [--no-pace] [--verbose]\n"
    "\n"
    "Boots the board's host processor from its flash (the file `wasm-iop flash` writes into DIR): the boot ROM\n"
    "verifies the signed image, runs a new one once as a trial and reverts it at the next start unless the firmware\n"
    "confirmed it. Then it runs the firmware until SIGINT/SIGTERM, a panic, or --stop-after-ms of board time.\n"
    "\n"
    "  --board FILE        board description (the subset in boards/native/README.md; anything else is refused)\n"
    "  --data-dir DIR      where the flash file lives (default: ./var/<board name>)\n"
    "  --seed SEED         the board's random seed (default: the board file's)\n"
    "  --stop-after-ms N   stop cleanly when board time reaches N ms\n"
    "  --no-pace           run board time as fast as the firmware runs, not paced to wall time (tests)\n"
    "  --verbose           the firmware's verbose console (boot-info flag 0)\n"
    "\n"
    "Exit status: 0 stopped cleanly; 1 nothing bootable or a bad board file (the message says why); 2 usage;\n"
    "3 the processor stopped on a panic, trap or watchdog.\n";

static vclock board_clock;
static processor cpu;
static flash part;
static sysctl controller;
static ram_region_ctx ram_ctx = {&cpu.ram};
static msi_ctx msi;
static ecam_ctx ecam;
static config_rom rom;

static void raise_irq(void *ctx, int vector) { processor_raise_irq(ctx, vector); }

static void on_console(processor *p, int fd, const char *line) {
  FILE *to = fd == 1 ? stdout : stderr;
  fprintf(to, "[%s] %s\n", p->name, line);
  fflush(to);
}

static int stopped_on_panic = 0;
static void on_stop(processor *p, const panic_report *r) {
  if (r == NULL) {
    fprintf(stderr, "board: %s stopped (proc_exit 0)\n", p->name);
    return;
  }
  stopped_on_panic = 1;
  fprintf(stderr, "board: %s stopped: %s code=%" PRIu32 " task=%s at %" PRIu64 " ns: %s\n", p->name, r->kind, r->code,
          r->task, r->time_ns, r->message);
}

static void rom_log(void *ctx, const char *line) {
  (void)ctx;
  printf("rom: %s\n", line);
  fflush(stdout);
}

static void on_confirm(void *ctx) {
  (void)ctx;
  rom_confirm(&part, rom_log, NULL);
}

static void sysctl_log(void *ctx, const char *message) {
  processor *p = ctx == NULL ? &cpu : ctx;
  fprintf(stderr, "[%s] [board] %s\n", p->name, message);
}

static uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
  const char *board_path = NULL, *data_dir = NULL, *seed = NULL;
  uint64_t stop_after_ns = UINT64_MAX;
  int pace = 1, verbose = 0;
  static const struct option options[] = {
      {"board", required_argument, NULL, 'b'},        {"data-dir", required_argument, NULL, 'd'},
      {"seed", required_argument, NULL, 's'},         {"stop-after-ms", required_argument, NULL, 't'},
      {"no-pace", no_argument, NULL, 'n'},            {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},               {NULL, 0, NULL, 0}};
  for (int c; (c = getopt_long(argc, argv, "h", options, NULL)) != -1;) {
    switch (c) {
      case 'b': board_path = optarg; break;
      case 'd': data_dir = optarg; break;
      case 's': seed = optarg; break;
      case 't': {
        char *end;
        unsigned long long ms = strtoull(optarg, &end, 10);
        if (*end != 0 || ms > UINT64_MAX / 1000000ull) {
          fprintf(stderr, "iop-native-board: --stop-after-ms: expected a whole number of ms, got \"%s\"\n", optarg);
          return 2;
        }
        stop_after_ns = ms * 1000000ull;
        break;
      }
      case 'n': pace = 0; break;
      case 'v': verbose = 1; break;
      case 'h': fputs(USAGE, stdout); return 0;
      default: fputs(USAGE, stderr); return 2;
    }
  }
  if (board_path == NULL || optind != argc) {
    fputs(USAGE, stderr);
    return 2;
  }
  static board_spec spec;
  char error[1200];
  if (board_file_load(board_path, &spec, error, sizeof error) != 0) {
    fprintf(stderr, "iop-native-board: %s\n", error);
    return 1;
  }
  char default_dir[256], flash_path[4400];
  if (data_dir == NULL) {
    snprintf(default_dir, sizeof default_dir, "var/%s", spec.name);
    data_dir = default_dir;
  }
  snprintf(flash_path, sizeof flash_path, "%s/%s", data_dir, spec.flash_image);
  if (flash_open(&part, flash_path, spec.slot_size_mib, error, sizeof error) != 0) {
    fprintf(stderr, "iop-native-board: %s\n", error);
    return 1;
  }
  printf("board: %s (native, %s), flash %s\n", spec.name, rt_name(), flash_path);
  boot_policy policy = {spec.keys, spec.key_count, spec.board_compat, ABI_VERSION};
  int slot = -1, trial = 0;
  const uint8_t *payload = NULL;
  uint32_t payload_bytes = 0;
  decoded_image decoded;
  if (rom_boot_select(&part, &policy, rom_log, NULL, &slot, &payload, &payload_bytes, &trial, &decoded, error,
                      sizeof error) != 0) {
    fprintf(stderr, "iop-native-board: %s\n", error);
    flash_close(&part);
    return 1;
  }
  printf("rom: booting slot %c%s, version %u.%u.%u\n", slot == 0 ? 'A' : 'B', trial ? " (trial)" : "", decoded.major,
         decoded.minor, decoded.revision);
  fflush(stdout);

  prng board_random;
  prng_seed_text(&board_random, seed != NULL ? seed : spec.seed);
  char label[64];
  snprintf(label, sizeof label, "%s/0", spec.processor_name); /* the JS board forks `${name}/${resetCount}` */
  clock_init(&board_clock);
  processor_init(&cpu, &board_clock, spec.processor_name, 0, 0, (uint64_t)spec.ram_mib << 20, spec.name, label, &board_random);
  cpu.verbose = verbose;
  cpu.on_console = on_console;
  cpu.on_stop = on_stop;
  cpu.map = (bus_map_info){.ecam_base = ECAM_BASE, .ecam_bus_count = 1, .pci_mem_base = PCI_MEM_BASE,
                           .pci_mem_size = PCI_MEM_SIZE, .msi_address = MSI_ADDRESS, .dma_base = DMA_BASE,
                           .sysctl_base = SYSCTL_BASE};
  /* The host processor's bus, as host/board/board.ts maps it: RAM, ECAM, MSI, the configuration ROM, sysctl. */
  msi = (msi_ctx){raise_irq, &cpu};
  config_rom_begin(&rom);
  char target_name[128];
  snprintf(target_name, sizeof target_name, "iqn.2026-11.org.wasm-iop:%s", spec.name); /* the default target */
  config_rom_add_text(&rom, CONFIG_TARGET_BEGIN, target_name);
  config_rom_add(&rom, CONFIG_TARGET_END, NULL, 0);
  config_rom_finish(&rom);
  cpu.map.config_rom_base = CONFIG_ROM_BASE;
  cpu.map.config_rom_bytes = CONFIG_ROM_SIZE_BYTES;
  bus_region regions[] = {ram_region(&ram_ctx, cpu.ram_bytes), ecam_region(&ecam, ECAM_BASE), msi_region(&msi, MSI_ADDRESS),
                          config_rom_region(&rom)};
  for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) bus_map(&cpu.bus, &regions[i]);
  controller = (sysctl){.slot = slot, .trial = trial, .on_confirm = on_confirm, .ctx = &cpu, .log = sysctl_log};
  bus_region r = sysctl_region(&controller);
  bus_map(&cpu.bus, &r);

  /* SIGINT and SIGTERM arrive on the event loop as a readable signalfd: a clean stop between two turns. */
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &signals, NULL);
  int sfd = signalfd(-1, &signals, SFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = sfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

  if (processor_power_on(&cpu, payload, payload_bytes, error, sizeof error) != 0) {
    if (cpu.state != PROC_STOPPED) fprintf(stderr, "iop-native-board: %s\n", error);
    flash_close(&part);
    return cpu.state == PROC_STOPPED ? 3 : 1;
  }
  uint64_t wall_start = wall_ns(), board_start = board_clock.now_ns;
  int exit_status = 0, running = 1;
  while (running && cpu.state == PROC_RUNNING) {
    uint64_t due = clock_next_deadline(&board_clock);
    if (due != UINT64_MAX && due >= stop_after_ns) break;
    if (due == UINT64_MAX && stop_after_ns != UINT64_MAX && !pace) break; /* idle with nothing to wake it */
    int timeout_ms = 0;
    if (pace) {
      uint64_t wall_board = board_start + (wall_ns() - wall_start);
      if (due == UINT64_MAX) timeout_ms = SLEEP_MS_MAX;
      else if (due > wall_board + LEAD_NS_MAX) {
        uint64_t ms = (due - wall_board - LEAD_NS_MAX) / 1000000ull + 1;
        timeout_ms = ms > SLEEP_MS_MAX ? SLEEP_MS_MAX : (int)ms;
      }
      if (stop_after_ns != UINT64_MAX && wall_board >= stop_after_ns) break;
    }
    struct epoll_event events[8];
    int n = epoll_wait(ep, events, 8, timeout_ms);
    for (int i = 0; i < n; i++) {
      if (events[i].data.fd == sfd) {
        struct signalfd_siginfo info;
        if (read(sfd, &info, sizeof info) > 0) fprintf(stderr, "board: signal %u: stopping\n", info.ssi_signo);
        running = 0;
      }
    }
    if (!running) break;
    if (due == UINT64_MAX) continue;
    if (pace) {
      uint64_t wall_board = board_start + (wall_ns() - wall_start);
      if (due > wall_board + LEAD_NS_MAX) continue;
    }
    clock_advance_to(&board_clock, due);
  }
  if (stopped_on_panic) exit_status = 3;
  printf("board: stopped at %" PRIu64 " ns of board time after %" PRIu64 " run() calls, %" PRIu64 " bus accesses\n",
         board_clock.now_ns, cpu.run_count, cpu.bus_access_count);
  processor_free(&cpu);
  flash_close(&part);
  close(ep);
  close(sfd);
  return exit_status;
}
