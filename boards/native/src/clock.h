/* The board's virtual clock (host/sim/clock.ts): events at board-time ns, run in time order and, at one time, in
 * the order they were scheduled. A handle stays valid until its event has run or been cancelled; the owner forgets
 * it then. */
#ifndef IOP_CLOCK_H
#define IOP_CLOCK_H
#include <stddef.h>
#include <stdint.h>

typedef struct clock_event clock_event;
typedef void (*clock_fn)(void *ctx);

typedef struct {
  uint64_t now_ns;
  uint64_t sequence_next;
  clock_event **heap;
  size_t length, capacity;
  size_t live;
} vclock;

void clock_init(vclock *c);
void clock_free(vclock *c);
/* Schedules fn(ctx) at `at_ns` (not before now; earlier is taken as now). */
clock_event *clock_at(vclock *c, uint64_t at_ns, clock_fn fn, void *ctx);
/* 1 when it was pending, 0 when it had run or was cancelled already (then the handle must not be used again). */
int clock_cancel(vclock *c, clock_event *event);
/* The earliest pending event's time, or UINT64_MAX. */
uint64_t clock_next_deadline(vclock *c);
/* Runs every event due at or before `at_ns` (and those they schedule within it), then leaves the clock there. */
void clock_advance_to(vclock *c, uint64_t at_ns);
#endif
