#include "clock.h"

#include <stdlib.h>

struct clock_event {
  uint64_t at_ns, sequence;
  clock_fn fn; /* NULL: cancelled */
  void *ctx;
};

static int before(const clock_event *a, const clock_event *b) {
  return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->sequence < b->sequence);
}

void clock_init(vclock *c) {
  c->now_ns = 0;
  c->sequence_next = 0;
  c->length = 0;
  c->capacity = 256;
  c->heap = malloc(c->capacity * sizeof *c->heap);
  c->live = 0;
}

void clock_free(vclock *c) {
  for (size_t i = 0; i < c->length; i++) free(c->heap[i]);
  free(c->heap);
  c->heap = NULL;
  c->length = c->capacity = 0;
}

static void sift_down(vclock *c, size_t index) {
  clock_event *e = c->heap[index];
  for (;;) {
    size_t child = 2 * index + 1;
    if (child >= c->length) break;
    if (child + 1 < c->length && before(c->heap[child + 1], c->heap[child])) child++;
    if (!before(c->heap[child], e)) break;
    c->heap[index] = c->heap[child];
    index = child;
  }
  c->heap[index] = e;
}

static clock_event *pop(vclock *c) {
  clock_event *top = c->heap[0];
  clock_event *last = c->heap[--c->length];
  if (c->length > 0) {
    c->heap[0] = last;
    sift_down(c, 0);
  }
  return top;
}

clock_event *clock_at(vclock *c, uint64_t at_ns, clock_fn fn, void *ctx) {
  clock_event *e = malloc(sizeof *e);
  e->at_ns = at_ns < c->now_ns ? c->now_ns : at_ns;
  e->sequence = c->sequence_next++;
  e->fn = fn;
  e->ctx = ctx;
  if (c->length == c->capacity) {
    c->capacity *= 2;
    c->heap = realloc(c->heap, c->capacity * sizeof *c->heap);
  }
  size_t index = c->length++;
  while (index > 0) {
    size_t parent = (index - 1) / 2;
    if (!before(e, c->heap[parent])) break;
    c->heap[index] = c->heap[parent];
    index = parent;
  }
  c->heap[index] = e;
  c->live++;
  return e;
}

int clock_cancel(vclock *c, clock_event *e) {
  if (e == NULL || e->fn == NULL) return 0;
  e->fn = NULL; /* freed lazily when it reaches the top */
  c->live--;
  return 1;
}

static void drop_cancelled_top(vclock *c) {
  while (c->length > 0 && c->heap[0]->fn == NULL) free(pop(c));
}

uint64_t clock_next_deadline(vclock *c) {
  drop_cancelled_top(c);
  return c->length > 0 ? c->heap[0]->at_ns : UINT64_MAX;
}

void clock_advance_to(vclock *c, uint64_t at_ns) {
  for (;;) {
    uint64_t deadline = clock_next_deadline(c);
    if (deadline == UINT64_MAX || deadline > at_ns) break;
    clock_event *e = pop(c);
    clock_fn fn = e->fn;
    void *ctx = e->ctx;
    e->fn = NULL;
    c->live--;
    c->now_ns = e->at_ns;
    free(e);
    fn(ctx);
  }
  if (at_ns > c->now_ns) c->now_ns = at_ns;
}
