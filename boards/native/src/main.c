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
#include "nic.h"
#include "scsi_disk.h"
#include "tcp_backend.h"
#include "virtio_scsi.h"
#include <sodium.h>

#define ECAM_BASE 0xe0000000ull
#define PCI_MEM_BASE 0xc0000000ull
#define PCI_MEM_SIZE 0x20000000ull
#define MSI_ADDRESS 0xfee00000ull
#define DMA_BASE 0xf0010000ull
/* Board time may run ahead of wall time by this much to run an event now rather than sleep (host/sim/realtime.ts). */
#define LEAD_NS_MAX 1000000ull
#define SLEEP_MS_MAX 50

static const char USAGE[] =
    "usage: iop-native-board --board FILE [--data-dir DIR] [--portal HOST:PORT] [--seed SEED] [--stop-after-ms N]\n"
    "                        [--no-pace] [--verbose]\n"
    "\n"
    "Boots the board's host processor from its flash (the file `wasm-iop flash` writes into DIR): the boot ROM\n"
    "verifies the signed image, runs a new one once as a trial and reverts it at the next start unless the firmware\n"
    "confirmed it. Then it runs the firmware until SIGINT/SIGTERM, a panic, or --stop-after-ms of board time.\n"
    "\n"
    "  --board FILE        board description (the subset in boards/native/README.md; anything else is refused)\n"
    "  --data-dir DIR      where the flash file and the disk images live (default: ./var/<board name>)\n"
    "  --portal HOST:PORT  where the NIC's iSCSI portal listens (default: the board's first portal, else\n"
    "                      127.0.0.1:3260; port 0 picks a free one). Once the firmware serves, one\n"
    "                      iscsi://HOST:PORT/IQN/LUN line is printed per LUN\n"
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
static board_spec spec;
static scsi_disk disks[BOARD_DISKS_MAX];
static virtio_scsi controllers[BOARD_PCI_MAX];
static nic network_card;
static tcp_backend network;
static int has_nic = 0, urls_printed = 0;
static char bound_portal[80];
static msi_ctx msi;
static ecam_ctx ecam;
static config_rom rom;

static void raise_irq(void *ctx, int vector) { processor_raise_irq(ctx, vector); }

/* One URL per LUN of every target, as `wasm-iop run` prints them once the firmware serves. */
static void print_urls(void) {
  if (urls_printed || !has_nic) return;
  urls_printed = 1;
  for (int t = 0; t < spec.target_count; t++) {
    int luns = spec.targets[t].luns_given ? spec.targets[t].lun_count : spec.volume_count;
    for (int l = 0; l < luns; l++) printf("iscsi://%s/%s/%d\n", bound_portal, spec.targets[t].name, l);
  }
  fflush(stdout);
}

static void on_console(processor *p, int fd, const char *line) {
  FILE *to = fd == 1 ? stdout : stderr;
  fprintf(to, "[%s] %s\n", p->name, line);
  fflush(to);
  if (strncmp(line, "tts: serving", 12) == 0) print_urls();
}

static void device_log(void *ctx, const char *message) {
  processor *p = ctx;
  fprintf(stderr, "[%s] [board] %s\n", p->name, message);
}

static void nic_log(void *ctx, const char *message) {
  (void)ctx;
  fprintf(stderr, "[nic] %s\n", message);
}

/* The disk's NAA designator: 5h, company ID 0, and 36 bits of SHA-256("board/disk"), as host/board/board.ts. */
static uint64_t naa_for(const char *board, const char *disk) {
  char text[128];
  uint8_t digest[32];
  snprintf(text, sizeof text, "%s/%s", board, disk);
  crypto_hash_sha256(digest, (const uint8_t *)text, strlen(text));
  uint64_t high = 0;
  for (int i = 0; i < 8; i++) high = high << 8 | digest[i];
  return 5ull << 60 | (high & 0xfffffffffull);
}

/* The configuration ROM (host/bus/config_rom.ts): the portals, every volume, then every target. */
static int build_config_rom(const char *portal) {
  config_rom_begin(&rom);
  int ok = 0;
  if (portal != NULL) ok |= config_rom_add_text(&rom, CONFIG_PORTAL, portal);
  else
    for (int i = 0; i < spec.portal_count; i++) {
      char text[300];
      const portal_spec *ps = &spec.portals[i];
      snprintf(text, sizeof text, strchr(ps->host, ':') != NULL ? "[%s]:%d" : "%s:%d", ps->host, ps->port);
      ok |= config_rom_add_text(&rom, CONFIG_PORTAL, text);
    }
  /* Disk addresses: (processor, index among its disks in controller order: slot, then function). */
  int order[BOARD_PCI_MAX], count = 0, disk_index[BOARD_DISKS_MAX], next = 0;
  for (int i = 0; i < spec.pci_count; i++)
    if (spec.pci[i].model == PCI_VIRTIO_SCSI) order[count++] = i;
  for (int a = 1; a < count; a++)
    for (int b = a; b > 0; b--) {
      const pci_spec *x = &spec.pci[order[b - 1]], *y = &spec.pci[order[b]];
      if (x->slot < y->slot || (x->slot == y->slot && x->function <= y->function)) break;
      int swap = order[b - 1];
      order[b - 1] = order[b], order[b] = swap;
    }
  for (int i = 0; i < count; i++)
    for (int k = 0; k < spec.pci[order[i]].disk_count; k++) disk_index[spec.pci[order[i]].disks[k]] = next++;
  for (int v = 0; v < spec.volume_count; v++) {
    uint8_t layout[16] = {0}; /* type 0: a whole disk */
    uint8_t disk[4 + 32];
    size_t name_length = strlen(spec.processor_name);
    write_le(disk, 4, (uint32_t)disk_index[spec.volumes[v].disk]);
    memcpy(disk + 4, spec.processor_name, name_length);
    ok |= config_rom_add_text(&rom, CONFIG_VOLUME_BEGIN, spec.volumes[v].name);
    ok |= config_rom_add(&rom, CONFIG_VOLUME_LAYOUT, layout, sizeof layout);
    ok |= config_rom_add(&rom, CONFIG_VOLUME_DISK, disk, (uint16_t)(4 + name_length));
    ok |= config_rom_add(&rom, CONFIG_VOLUME_END, NULL, 0);
  }
  for (int t = 0; t < spec.target_count; t++) {
    const target_spec *target = &spec.targets[t];
    ok |= config_rom_add_text(&rom, CONFIG_TARGET_BEGIN, target->name);
    if (target->alias[0] != 0) ok |= config_rom_add_text(&rom, CONFIG_TARGET_ALIAS, target->alias);
    int luns = target->luns_given ? target->lun_count : spec.volume_count;
    for (int l = 0; l < luns; l++) {
      uint32_t volume = target->luns_given ? (uint32_t)target->lun_volume[l] : (uint32_t)l;
      if (target->luns_given && target->lun_read_only[l]) volume |= 0x80000000u;
      ok |= config_rom_add_u32(&rom, CONFIG_LUN, volume);
    }
    if (target->has_chap) {
      ok |= config_rom_add_text(&rom, CONFIG_CHAP_USER, target->chap_user);
      ok |= config_rom_add_text(&rom, CONFIG_CHAP_SECRET, target->chap_secret);
      if (target->has_mutual_user) ok |= config_rom_add_text(&rom, CONFIG_MUTUAL_USER, target->mutual_user);
      if (target->has_mutual_secret) ok |= config_rom_add_text(&rom, CONFIG_MUTUAL_SECRET, target->mutual_secret);
    }
    for (int i = 0; i < target->initiator_count; i++) ok |= config_rom_add_text(&rom, CONFIG_ALLOWED_INITIATOR, target->initiators[i]);
    ok |= config_rom_add(&rom, CONFIG_TARGET_END, NULL, 0);
  }
  config_rom_finish(&rom);
  return ok;
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
  const char *board_path = NULL, *data_dir = NULL, *seed = NULL, *portal_option = NULL;
  uint64_t stop_after_ns = UINT64_MAX;
  int pace = 1, verbose = 0;
  static const struct option options[] = {
      {"board", required_argument, NULL, 'b'},        {"data-dir", required_argument, NULL, 'd'},
      {"seed", required_argument, NULL, 's'},         {"stop-after-ms", required_argument, NULL, 't'},
      {"portal", required_argument, NULL, 'p'},
      {"no-pace", no_argument, NULL, 'n'},            {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},               {NULL, 0, NULL, 0}};
  for (int c; (c = getopt_long(argc, argv, "h", options, NULL)) != -1;) {
    switch (c) {
      case 'b': board_path = optarg; break;
      case 'd': data_dir = optarg; break;
      case 's': seed = optarg; break;
      case 'p': portal_option = optarg; break;
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
  /* The host processor's bus, as host/board/board.ts maps it: RAM, ECAM, MSI, the configuration ROM, sysctl; then
   * the PCI functions. */
  msi = (msi_ctx){raise_irq, &cpu};
  cpu.map.config_rom_base = CONFIG_ROM_BASE;
  cpu.map.config_rom_bytes = CONFIG_ROM_SIZE_BYTES;
  bus_region regions[] = {ram_region(&ram_ctx, cpu.ram_bytes), ecam_region(&ecam, ECAM_BASE), msi_region(&msi, MSI_ADDRESS),
                          config_rom_region(&rom)};
  for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) bus_map(&cpu.bus, &regions[i]);
  if (sodium_init() < 0) {
    fprintf(stderr, "iop-native-board: libsodium did not initialize\n");
    return 1;
  }
  for (int d = 0; d < spec.disk_count; d++) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", data_dir, spec.disks[d].image);
    if (scsi_disk_open(&disks[d], spec.disks[d].name, path, (uint64_t)spec.disks[d].size_mib << 20, spec.disks[d].block_size,
                       spec.disks[d].physical_block_size, naa_for(spec.name, spec.disks[d].name), error, sizeof error) != 0) {
      fprintf(stderr, "iop-native-board: %s\n", error);
      return 1;
    }
  }
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
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
  epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

  const char *rom_portal = NULL;
  for (int i = 0; i < spec.pci_count; i++) {
    char name[48];
    snprintf(name, sizeof name, "%s.slot%d", spec.processor_name, spec.pci[i].slot);
    pci_fn *fn;
    if (spec.pci[i].model == PCI_VIRTIO_SCSI) {
      scsi_disk *held[BOARD_DISKS_MAX];
      for (int k = 0; k < spec.pci[i].disk_count; k++) held[k] = &disks[spec.pci[i].disks[k]];
      virtio_scsi_init(&controllers[i], name, &board_clock, held, spec.pci[i].disk_count, spec.pci[i].queue_size, device_log, &cpu);
      fn = &controllers[i].fn;
    } else {
      /* The portal is bound first, so the configuration ROM can name the real port (port 0 picks one). */
      char portal[300];
      if (portal_option != NULL) snprintf(portal, sizeof portal, "%s", portal_option);
      else if (spec.portal_count > 0) snprintf(portal, sizeof portal, "%s:%d", spec.portals[0].host, spec.portals[0].port);
      else snprintf(portal, sizeof portal, "127.0.0.1:3260");
      const char *portals[1] = {portal};
      nic_init(&network_card, name, &board_clock, tcp_backend_interface(&network), device_log, &cpu);
      if (tcp_backend_start(&network, ep, &network_card, portals, 1, error, sizeof error) != 0) {
        fprintf(stderr, "iop-native-board: %s\n", error);
        return 1;
      }
      network.log = nic_log;
      network_card.backend = tcp_backend_interface(&network);
      snprintf(bound_portal, sizeof bound_portal, "%s", network.bound[0]);
      rom_portal = bound_portal;
      has_nic = 1;
      fn = &network_card.fn;
    }
    if (pci_fn_attach(fn, &ecam, spec.pci[i].slot, spec.pci[i].function, &cpu.bus) != 0) {
      fprintf(stderr, "iop-native-board: PCI slot %d function %d is taken\n", spec.pci[i].slot, spec.pci[i].function);
      return 1;
    }
  }
  if (build_config_rom(rom_portal) != 0) {
    fprintf(stderr, "iop-native-board: %s: the board's configuration does not fit the 64 KiB configuration ROM\n", board_path);
    return 1;
  }

  if (processor_power_on(&cpu, payload, payload_bytes, error, sizeof error) != 0) {
    if (cpu.state != PROC_STOPPED) fprintf(stderr, "iop-native-board: %s\n", error);
    flash_close(&part);
    return cpu.state == PROC_STOPPED ? 3 : 1;
  }
  if (has_nic) {
    printf("listening on %s\n", bound_portal);
    fflush(stdout);
  }
  /* The loop (host/sim/realtime.ts): board time follows wall time and may run ahead of it by the lead; socket input
   * and signals wake the epoll wait. With --no-pace board time jumps from event to event. */
  uint64_t wall_start = wall_ns(), board_start = board_clock.now_ns;
  int exit_status = 0, running = 1;
  while (running && cpu.state == PROC_RUNNING) {
    uint64_t next = clock_next_deadline(&board_clock);
    int timeout_ms;
    if (!pace) {
      timeout_ms = next != UINT64_MAX ? 0 : (has_nic ? SLEEP_MS_MAX : -1);
      if (next == UINT64_MAX && !has_nic) break; /* idle, and nothing outside can wake it */
    } else {
      uint64_t wall_board = board_start + (wall_ns() - wall_start);
      uint64_t base = wall_board > board_clock.now_ns ? wall_board : board_clock.now_ns;
      if (next != UINT64_MAX && next <= base + LEAD_NS_MAX) timeout_ms = 0;
      else if (next == UINT64_MAX) timeout_ms = SLEEP_MS_MAX;
      else {
        uint64_t ms = (next - LEAD_NS_MAX - wall_board) / 1000000ull;
        timeout_ms = ms > SLEEP_MS_MAX ? SLEEP_MS_MAX : (int)ms;
      }
    }
    struct epoll_event events[32];
    int n = epoll_wait(ep, events, 32, timeout_ms);
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == 0) {
        struct signalfd_siginfo info;
        if (read(sfd, &info, sizeof info) > 0) fprintf(stderr, "board: signal %u: stopping\n", info.ssi_signo);
        running = 0;
      } else if (has_nic) {
        tcp_backend_on_event(&network, events[i].data.u64, events[i].events);
      }
    }
    if (!running) break;
    if (pace) {
      uint64_t wall_board = board_start + (wall_ns() - wall_start);
      if (wall_board > board_clock.now_ns) clock_advance_to(&board_clock, wall_board < stop_after_ns ? wall_board : stop_after_ns);
      uint64_t limit = (wall_board > board_clock.now_ns ? wall_board : board_clock.now_ns) + LEAD_NS_MAX;
      for (next = clock_next_deadline(&board_clock); cpu.state == PROC_RUNNING && next <= limit && next < stop_after_ns;
           next = clock_next_deadline(&board_clock))
        clock_advance_to(&board_clock, next);
    } else {
      next = clock_next_deadline(&board_clock);
      if (next != UINT64_MAX && next < stop_after_ns) clock_advance_to(&board_clock, next);
    }
    if (has_nic) tcp_backend_flush(&network);
    if (board_clock.now_ns >= stop_after_ns || (next != UINT64_MAX && next >= stop_after_ns && !pace)) break;
    if (pace && stop_after_ns != UINT64_MAX && board_start + (wall_ns() - wall_start) >= stop_after_ns) break;
  }
  if (stopped_on_panic) exit_status = 3;
  printf("board: stopped at %" PRIu64 " ns of board time after %" PRIu64 " run() calls, %" PRIu64 " bus accesses\n",
         board_clock.now_ns, cpu.run_count, cpu.bus_access_count);
  processor_free(&cpu);
  if (has_nic) tcp_backend_stop(&network);
  for (int d = 0; d < spec.disk_count; d++) scsi_disk_close(&disks[d]);
  flash_close(&part);
  close(ep);
  close(sfd);
  return exit_status;
}
