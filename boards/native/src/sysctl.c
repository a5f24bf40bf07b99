#include "sysctl.h"

#include <stdio.h>

#define SYSCTL_ID 0x53595343u            /* "SYSC" */
#define SYSCTL_CONFIRM_MAGIC 0x434f4e46u /* "CONF" */
enum { REG_ID = 0x00, REG_BOOT_SLOT = 0x04, REG_BOOT_FLAGS = 0x08, REG_CONFIRM = 0x10, REG_CONFIRMED = 0x14 };

static uint64_t guest_error(sysctl *s, const char *message) {
  char line[160];
  snprintf(line, sizeof line, "sysctl: guest error: %s", message);
  if (s->log != NULL) s->log(s->ctx, line);
  return 0xffffffffu;
}

static uint64_t sysctl_read(void *ctx, uint64_t offset, int size) {
  sysctl *s = ctx;
  char message[80];
  if (size != 4) {
    snprintf(message, sizeof message, "read of %d bytes at %llu", size, (unsigned long long)offset);
    return guest_error(s, message);
  }
  switch (offset) {
    case REG_ID: return SYSCTL_ID;
    case REG_BOOT_SLOT: return s->slot < 0 ? 0xff : (uint64_t)s->slot;
    case REG_BOOT_FLAGS: return s->trial && !s->confirmed ? 1 : 0;
    case REG_CONFIRMED: return s->confirmed ? 1 : 0;
    default:
      snprintf(message, sizeof message, "read of unknown register %llu", (unsigned long long)offset);
      return guest_error(s, message);
  }
}

static void sysctl_write(void *ctx, uint64_t offset, int size, uint64_t value) {
  sysctl *s = ctx;
  char message[80];
  if (size != 4 || offset != REG_CONFIRM) {
    snprintf(message, sizeof message, "write of %d bytes at %llu", size, (unsigned long long)offset);
    guest_error(s, message);
    return;
  }
  if ((uint32_t)value != SYSCTL_CONFIRM_MAGIC) {
    snprintf(message, sizeof message, "confirm with %x instead of the magic", (uint32_t)value);
    guest_error(s, message);
    return;
  }
  if (s->confirmed) return;
  s->confirmed = 1;
  if (s->on_confirm != NULL) s->on_confirm(s->ctx);
}

bus_region sysctl_region(sysctl *s) {
  bus_region r = {"sysctl", SYSCTL_BASE, SYSCTL_SIZE, s, sysctl_read, sysctl_write, NULL};
  return r;
}
