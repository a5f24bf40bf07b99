/* The system controller on the host processor's bus (host/bus/sysctl.ts, docs/hardware.md): what the ROM booted,
 * and the register through which the firmware confirms an image on trial. */
#ifndef IOP_SYSCTL_H
#define IOP_SYSCTL_H
#include "bus.h"

#define SYSCTL_BASE 0xf0020000ull
#define SYSCTL_SIZE 0x1000ull

typedef struct {
  int slot; /* 0 A, 1 B, -1 not booted from flash */
  int trial;
  int confirmed;
  void (*on_confirm)(void *ctx);
  void *ctx;
  void (*log)(void *ctx, const char *message);
} sysctl;

bus_region sysctl_region(sysctl *s);
#endif
