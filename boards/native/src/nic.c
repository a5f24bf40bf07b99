#include "nic.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NIC_VENDOR_ID 0x1234
#define NIC_DEVICE_ID 0x11e0
#define NIC_CLASS_CODE 0x020000
#define BAR_REGISTERS 0
#define BAR_MSIX 4
enum {
  R_CTRL = 0x00, R_STATUS = 0x04, R_CONN_MAX = 0x08, R_EVQ_BASE_LO = 0x10, R_EVQ_BASE_HI = 0x14, R_EVQ_SIZE = 0x18,
  R_EVQ_HEAD = 0x1c, R_EVQ_TAIL = 0x20, R_RXQ_BASE_LO = 0x30, R_RXQ_BASE_HI = 0x34, R_RXQ_SIZE = 0x38, R_RXQ_HEAD = 0x3c,
  R_RXQ_TAIL = 0x40, R_TXQ_BASE_LO = 0x50, R_TXQ_BASE_HI = 0x54, R_TXQ_SIZE = 0x58, R_TXQ_HEAD = 0x5c, R_TXQ_TAIL = 0x60,
  R_CONN_CLOSE = 0x70
};
#define CTRL_ENABLE 1u
#define CTRL_RESET 2u
#define STATUS_ENABLED 1u
#define STATUS_EVENTS_LOST 2u
#define TX_FLAG_CLOSE 1u
#define EVENT_BYTES 16
#define RX_ENTRY_BYTES 16
#define TX_ENTRY_BYTES 24
#define EVQ_ENTRIES_MIN 2
#define EVQ_ENTRIES_MAX 4096
#define RING_ENTRIES_MAX 65536
enum { EV_OPENED = 1, EV_CLOSED = 2, EV_RECEIVED = 3, EV_SENT = 4 };
#define NIC_TX_ENTRY_BYTES_MAX (16u << 20)
#define ENGINE_EVENTS_MAX 32
#define RX_HOLD_BYTES_MAX (256u * 1024u)
#define LATENCY_EVENT_NS 2000
#define LATENCY_ENTRY_NS 500
enum { SLOT_FREE, SLOT_OPEN, SLOT_CLOSED, SLOT_DRAINING };
enum { CLOSE_NONE, CLOSE_PEER, CLOSE_FIRMWARE };

static int reached(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static uint32_t distance(uint32_t from, uint32_t to) { return to - from; }
static int power_of_two_in(uint32_t v, uint32_t min, uint32_t max) { return v >= min && v <= max && (v & (v - 1)) == 0; }

/* ---- continuations on the board clock (the JS model's closures) ---- */
enum { K_PUMP, K_BUSY, K_WRITER, K_PORT };
enum { DONE_CLOSE, DONE_TX_SKIP, DONE_TX, DONE_RX_SKIP, DONE_RX };
enum { PORT_OPENED, PORT_RECEIVED, PORT_CLOSED };

typedef struct {
  nic *n;
  int kind;
  uint32_t epoch;
  int done; /* DONE_* for K_BUSY, PORT_* for K_PORT */
  int index;
  uint32_t generation;
  /* transmit */
  uint8_t *payload;
  uint32_t payload_length;
  int payload_ok;
  uint32_t id;
  uint16_t connection, flags;
  /* receive */
  uint64_t address;
  uint8_t *bytes;
  size_t length;
} continuation;

static void engine_step(nic *n);
static void pump(nic *n);
static void kick_writer(nic *n);
static void run_continuation(void *ctx);

static void later(nic *n, uint64_t delay_ns, continuation *k) {
  k->n = n;
  k->epoch = n->epoch;
  clock_at(n->clock, n->clock->now_ns + delay_ns, run_continuation, k);
}

static continuation *new_k(int kind) {
  continuation *k = calloc(1, sizeof *k);
  k->kind = kind;
  return k;
}


/* ---- events ---- */
static void start_draining(nic *n, nic_slot *slot);

static void lose_event(nic *n, const nic_event *e, const char *why) {
  n->events_lost = 1;
  pci_fn_guest_error(&n->fn, 4, "%s: event type %u for connection %u lost", why, e->type, e->connection);
  if (e->type == EV_CLOSED && e->connection < NIC_CONN_MAX && n->slots[e->connection].state == SLOT_CLOSED)
    start_draining(n, &n->slots[e->connection]);
}

static int enqueue_event(nic *n, nic_event e) {
  if (n->events_count >= NIC_EVENTS_PENDING_MAX) {
    lose_event(n, &e, "event FIFO full");
    return 0;
  }
  n->events[(n->events_start + n->events_count++) % NIC_EVENTS_PENDING_MAX] = e;
  kick_writer(n);
  return 1;
}

static void enqueue_engine_event(nic *n, nic_event e) {
  if (enqueue_event(n, e)) n->engine_events_pending++;
}

static int event_slot_free(const nic *n) { return n->evq.size > 0 && distance(n->evq.tail, n->evq.head) < n->evq.size; }

static void kick_writer(nic *n) {
  if (n->writer_busy || n->events_count == 0 || !event_slot_free(n)) return;
  n->writer_busy = 1;
  later(n, LATENCY_EVENT_NS, new_k(K_WRITER));
}

static void write_event(nic *n) {
  if (n->events_count == 0 || !event_slot_free(n)) return;
  nic_event e = n->events[n->events_start];
  n->events_start = (n->events_start + 1) % NIC_EVENTS_PENDING_MAX;
  n->events_count--;
  int engine_event = e.type == EV_RECEIVED || e.type == EV_SENT;
  uint8_t entry[EVENT_BYTES] = {0};
  entry[0] = e.type;
  write_le(entry + 2, 2, e.connection);
  write_le(entry + 4, 4, e.length);
  write_le(entry + 8, 4, e.id);
  write_le(entry + 12, 2, e.portal);
  uint64_t at = n->evq.base + (uint64_t)(n->evq.head & (n->evq.size - 1)) * EVENT_BYTES;
  char fault[160];
  if (pci_fn_dma_write(&n->fn, at, entry, EVENT_BYTES, fault, sizeof fault) == 0) {
    if (e.type == EV_CLOSED) n->slots[e.connection].closed_event_index = n->evq.head;
    n->evq.head++;
    n->events_written++;
    pci_fn_signal(&n->fn, 0);
  } else {
    lose_event(n, &e, "event queue entry unwritable");
  }
  if (engine_event) {
    n->engine_events_pending--;
    pump(n);
  }
}

/* ---- slots ---- */
static void free_slot(nic_slot *slot, uint32_t generation) {
  free(slot->rx);
  memset(slot, 0, sizeof *slot);
  slot->generation = generation;
  slot->closed_event_index = -1;
}

static void release_if_drained(nic *n, nic_slot *slot) {
  if (slot->state == SLOT_DRAINING && reached(n->txq.tail, slot->drain_tx_target)) slot->state = SLOT_FREE;
}

static void start_draining(nic *n, nic_slot *slot) {
  slot->state = SLOT_DRAINING;
  slot->drain_tx_target = n->txq.head;
  release_if_drained(n, slot);
}

static void drop_received(nic_slot *slot) {
  slot->rx_start = 0;
  slot->rx_pending = 0;
}

static void update_pause(nic *n, int index) {
  nic_slot *slot = &n->slots[index];
  if (slot->state != SLOT_OPEN || !slot->backend_open) return;
  int no_buffer = n->rxq.size == 0 || n->rxq.tail == n->rxq.head;
  if (!slot->paused && slot->rx_pending > 0 && (no_buffer || slot->rx_pending > RX_HOLD_BYTES_MAX)) {
    slot->paused = 1;
    n->backend.pause(n->backend.ctx, index, 1);
  } else if (slot->paused && slot->rx_pending == 0) {
    slot->paused = 0;
    n->backend.pause(n->backend.ctx, index, 0);
  }
}

static void rx_ready_push(nic *n, int index) {
  n->rx_ready_queue[(n->rx_ready_start + n->rx_ready_count++) % (NIC_CONN_MAX * 2)] = index;
}

static int rx_ready_next(nic *n) {
  while (n->rx_ready_count > 0) {
    int index = n->rx_ready_queue[n->rx_ready_start];
    nic_slot *slot = &n->slots[index];
    if (slot->state == SLOT_OPEN && slot->rx_pending > 0) return index;
    slot->rx_ready = 0;
    n->rx_ready_start = (n->rx_ready_start + 1) % (NIC_CONN_MAX * 2);
    n->rx_ready_count--;
  }
  return -1;
}

/* ---- the engine ---- */
static void pump(nic *n) {
  if (n->engine_busy) return;
  n->engine_busy = 1;
  later(n, 0, new_k(K_PUMP));
}

static void busy_for(nic *n, uint64_t delay_ns, continuation *k) {
  n->engine_busy = 1;
  k->kind = K_BUSY;
  later(n, delay_ns, k);
}

static int close_due(nic *n, const nic_slot *slot) {
  if (slot->state != SLOT_OPEN) return 0;
  switch (slot->close_cause) {
    case CLOSE_PEER: return slot->rx_pending == 0;
    case CLOSE_FIRMWARE: return reached(n->txq.tail, slot->close_tx_target);
    default: return 0;
  }
}

static void finish_close(nic *n, int index) {
  nic_slot *slot = &n->slots[index];
  if (slot->state != SLOT_OPEN) return;
  drop_received(slot);
  if (slot->backend_open) n->backend.close(n->backend.ctx, index);
  slot->backend_open = 0;
  slot->state = SLOT_CLOSED;
  slot->closed_event_index = -1;
  enqueue_event(n, (nic_event){EV_CLOSED, (uint16_t)index, 0, 0, slot->portal});
}

static void finish_transmit_entry(nic *n) {
  n->txq.tail++;
  for (int i = 0; i < NIC_CONN_MAX; i++) release_if_drained(n, &n->slots[i]);
}

static void start_transmit(nic *n) {
  uint64_t at = n->txq.base + (uint64_t)(n->txq.tail & (n->txq.size - 1)) * TX_ENTRY_BYTES;
  uint8_t entry[TX_ENTRY_BYTES];
  char fault[160];
  continuation *k = new_k(K_BUSY);
  if (pci_fn_dma_read(&n->fn, at, entry, TX_ENTRY_BYTES, fault, sizeof fault) != 0) {
    pci_fn_guest_error(&n->fn, 4, "transmit entry %u at 0x%" PRIx64 " unreadable (%s): skipped", n->txq.tail, at, fault);
    k->done = DONE_TX_SKIP;
    busy_for(n, LATENCY_ENTRY_NS, k);
    return;
  }
  uint64_t address = read_le(entry, 8);
  uint32_t length = (uint32_t)read_le(entry + 8, 4);
  k->done = DONE_TX;
  k->id = (uint32_t)read_le(entry + 12, 4);
  k->connection = (uint16_t)read_le(entry + 16, 2);
  k->flags = (uint16_t)read_le(entry + 18, 2);
  k->payload_ok = 1;
  if (length > NIC_TX_ENTRY_BYTES_MAX) {
    pci_fn_guest_error(&n->fn, 4, "transmit entry %u: %u bytes is more than %u: dropped", k->id, length, NIC_TX_ENTRY_BYTES_MAX);
    k->payload_ok = 0;
  } else if (length > 0) {
    k->payload = malloc(length);
    if (pci_fn_dma_read(&n->fn, address, k->payload, length, fault, sizeof fault) == 0) k->payload_length = length;
    else {
      pci_fn_guest_error(&n->fn, 4, "transmit entry %u: payload at 0x%" PRIx64 " unreadable (%s): dropped", k->id, address, fault);
      k->payload_ok = 0;
    }
  }
  busy_for(n, LATENCY_ENTRY_NS + (k->payload_ok ? k->payload_length : 0), k);
}

static void done_transmit(nic *n, continuation *k) {
  nic_slot *slot = k->connection < NIC_CONN_MAX ? &n->slots[k->connection] : NULL;
  uint32_t sent = 0;
  if (k->payload_ok && slot != NULL && slot->state == SLOT_OPEN && slot->backend_open) {
    if (k->payload_length > 0) n->backend.send(n->backend.ctx, k->connection, k->payload, k->payload_length);
    sent = k->payload_length;
    n->bytes_sent += sent;
  }
  finish_transmit_entry(n);
  enqueue_engine_event(n, (nic_event){EV_SENT, k->connection, sent, k->id, slot != NULL ? slot->portal : 0});
  if ((k->flags & TX_FLAG_CLOSE) && slot != NULL && slot->state == SLOT_OPEN) finish_close(n, k->connection);
}

static void start_receive(nic *n) {
  int index = rx_ready_next(n);
  nic_slot *slot = &n->slots[index];
  uint64_t at = n->rxq.base + (uint64_t)(n->rxq.tail & (n->rxq.size - 1)) * RX_ENTRY_BYTES;
  n->rxq.tail++;
  uint8_t entry[RX_ENTRY_BYTES];
  char fault[160];
  continuation *k = new_k(K_BUSY);
  k->index = index;
  if (pci_fn_dma_read(&n->fn, at, entry, RX_ENTRY_BYTES, fault, sizeof fault) != 0) {
    pci_fn_guest_error(&n->fn, 4, "receive buffer entry at 0x%" PRIx64 " unreadable (%s): skipped", at, fault);
    k->done = DONE_RX_SKIP;
    busy_for(n, LATENCY_ENTRY_NS, k);
    return;
  }
  k->address = read_le(entry, 8);
  uint32_t capacity = (uint32_t)read_le(entry + 8, 4);
  k->id = (uint32_t)read_le(entry + 12, 4);
  if (capacity == 0) {
    pci_fn_guest_error(&n->fn, 4, "receive buffer %u has 0 bytes: skipped", k->id);
    k->done = DONE_RX_SKIP;
    busy_for(n, LATENCY_ENTRY_NS, k);
    return;
  }
  /* Take up to `capacity` from the front of the stream; the slot goes to the back of the line if any remain. */
  size_t length = capacity < slot->rx_pending ? capacity : slot->rx_pending;
  k->bytes = malloc(length);
  memcpy(k->bytes, slot->rx + slot->rx_start, length);
  k->length = length;
  slot->rx_start += length;
  slot->rx_pending -= length;
  n->rx_ready_start = (n->rx_ready_start + 1) % (NIC_CONN_MAX * 2);
  n->rx_ready_count--;
  slot->rx_ready = slot->rx_pending > 0;
  if (slot->rx_ready) rx_ready_push(n, index);
  k->generation = slot->generation;
  k->done = DONE_RX;
  busy_for(n, LATENCY_ENTRY_NS + length, k);
}

/* Puts bytes a buffer could not take back at the front of the stream. */
static void untake_received(nic *n, int index, const uint8_t *bytes, size_t length) {
  nic_slot *slot = &n->slots[index];
  if (slot->rx_start >= length) {
    slot->rx_start -= length;
  } else {
    size_t need = length + slot->rx_pending;
    uint8_t *rx = malloc(need > slot->rx_capacity ? need : slot->rx_capacity);
    memcpy(rx + length, slot->rx + slot->rx_start, slot->rx_pending);
    free(slot->rx);
    slot->rx = rx;
    slot->rx_capacity = need > slot->rx_capacity ? need : slot->rx_capacity;
    slot->rx_start = 0;
  }
  memcpy(slot->rx + slot->rx_start, bytes, length);
  slot->rx_pending += length;
  if (!slot->rx_ready) {
    slot->rx_ready = 1;
    n->rx_ready_start = (n->rx_ready_start + NIC_CONN_MAX * 2 - 1) % (NIC_CONN_MAX * 2);
    n->rx_ready_queue[n->rx_ready_start] = index;
    n->rx_ready_count++;
  }
}

static void done_receive(nic *n, continuation *k) {
  nic_slot *slot = &n->slots[k->index];
  char fault[160];
  if (pci_fn_dma_write(&n->fn, k->address, k->bytes, k->length, fault, sizeof fault) != 0) {
    pci_fn_guest_error(&n->fn, 4, "receive buffer %u at 0x%" PRIx64 " unwritable (%s): skipped, its %zu bytes kept", k->id,
                       k->address, fault, k->length);
    if (slot->generation == k->generation && slot->state == SLOT_OPEN) untake_received(n, k->index, k->bytes, k->length);
    return;
  }
  n->bytes_received += k->length;
  enqueue_engine_event(n, (nic_event){EV_RECEIVED, (uint16_t)k->index, (uint32_t)k->length, k->id, slot->portal});
  update_pause(n, k->index);
}

static void engine_step(nic *n) {
  for (int i = 0; i < NIC_CONN_MAX; i++) {
    if (!close_due(n, &n->slots[i])) continue;
    continuation *k = new_k(K_BUSY);
    k->done = DONE_CLOSE;
    k->index = i;
    busy_for(n, LATENCY_ENTRY_NS, k);
    return;
  }
  if (n->engine_events_pending >= ENGINE_EVENTS_MAX) return;
  int tx_work = n->txq.size > 0 && n->txq.tail != n->txq.head;
  int rx_work = n->rxq.size > 0 && n->rxq.tail != n->rxq.head && rx_ready_next(n) >= 0;
  if (tx_work && (!rx_work || !n->prefer_rx)) {
    n->prefer_rx = 1;
    start_transmit(n);
  } else if (rx_work) {
    n->prefer_rx = 0;
    start_receive(n);
  }
}

static void run_continuation(void *ctx) {
  continuation *k = ctx;
  nic *n = k->n;
  if (k->epoch == n->epoch) {
    switch (k->kind) {
      case K_PUMP:
        n->engine_busy = 0;
        engine_step(n);
        break;
      case K_WRITER:
        n->writer_busy = 0;
        write_event(n);
        kick_writer(n);
        break;
      case K_BUSY:
        n->engine_busy = 0;
        switch (k->done) {
          case DONE_CLOSE: finish_close(n, k->index); break;
          case DONE_TX_SKIP: finish_transmit_entry(n); break;
          case DONE_TX: done_transmit(n, k); break;
          case DONE_RX_SKIP: update_pause(n, k->index); break;
          case DONE_RX: done_receive(n, k); break;
        }
        engine_step(n);
        break;
      case K_PORT: {
        nic_slot *slot = &n->slots[k->index];
        if (slot->generation != k->generation || slot->state != SLOT_OPEN) break;
        if (k->done == PORT_OPENED) {
          enqueue_event(n, (nic_event){EV_OPENED, (uint16_t)k->index, 0, 0, slot->portal});
        } else if (k->done == PORT_RECEIVED) {
          if (!slot->backend_open || slot->close_cause == CLOSE_FIRMWARE) break;
          if (slot->rx_start > 0 && slot->rx_start + slot->rx_pending + k->length > slot->rx_capacity) {
            memmove(slot->rx, slot->rx + slot->rx_start, slot->rx_pending);
            slot->rx_start = 0;
          }
          if (slot->rx_start + slot->rx_pending + k->length > slot->rx_capacity) {
            slot->rx_capacity = (slot->rx_pending + k->length) * 2;
            slot->rx = realloc(slot->rx, slot->rx_capacity);
          }
          memcpy(slot->rx + slot->rx_start + slot->rx_pending, k->bytes, k->length);
          slot->rx_pending += k->length;
          if (!slot->rx_ready) {
            slot->rx_ready = 1;
            rx_ready_push(n, k->index);
          }
          update_pause(n, k->index);
          pump(n);
        } else {
          slot->backend_open = 0;
          if (slot->close_cause == CLOSE_NONE) slot->close_cause = CLOSE_PEER;
          pump(n);
        }
        break;
      }
    }
  } else if (k->kind == K_PUMP || k->kind == K_BUSY || k->kind == K_WRITER) {
    /* scheduled before a reset: does nothing */
  }
  free(k->payload);
  free(k->bytes);
  free(k);
}

/* ---- the network's side ---- */
int nic_opened(nic *n, int portal) {
  int index = -1;
  for (int i = 0; n->enabled && i < NIC_CONN_MAX && index < 0; i++)
    if (n->slots[i].state == SLOT_FREE) index = i;
  if (index < 0) {
    n->connections_refused++;
    return -1;
  }
  nic_slot *slot = &n->slots[index];
  free_slot(slot, slot->generation + 1);
  slot->state = SLOT_OPEN;
  slot->portal = (uint16_t)portal;
  slot->backend_open = 1;
  continuation *k = new_k(K_PORT);
  k->done = PORT_OPENED;
  k->index = index;
  k->generation = slot->generation;
  later(n, 0, k);
  return index;
}

void nic_received(nic *n, int connection, const uint8_t *bytes, size_t length) {
  if (connection < 0 || connection >= NIC_CONN_MAX || length == 0) return;
  continuation *k = new_k(K_PORT);
  k->done = PORT_RECEIVED;
  k->index = connection;
  k->generation = n->slots[connection].generation;
  k->bytes = malloc(length);
  memcpy(k->bytes, bytes, length);
  k->length = length;
  later(n, 0, k);
}

void nic_closed(nic *n, int connection) {
  if (connection < 0 || connection >= NIC_CONN_MAX) return;
  continuation *k = new_k(K_PORT);
  k->done = PORT_CLOSED;
  k->index = connection;
  k->generation = n->slots[connection].generation;
  later(n, 0, k);
}

/* ---- registers ---- */
static void reset_nic(nic *n) {
  n->epoch++;
  for (int i = 0; i < NIC_CONN_MAX; i++) {
    nic_slot *slot = &n->slots[i];
    if (slot->backend_open) n->backend.close(n->backend.ctx, i);
    free_slot(slot, slot->generation);
  }
  n->enabled = n->events_lost = 0;
  n->evq = n->rxq = n->txq = (nic_ring){0, 0, 0, 0};
  n->events_start = n->events_count = 0;
  n->engine_events_pending = 0;
  n->rx_ready_start = n->rx_ready_count = 0;
  n->prefer_rx = n->engine_busy = n->writer_busy = 0;
}

static uint64_t mmio_read(pci_fn *fn, int bar, uint32_t offset, int size) {
  nic *n = (nic *)fn;
  if (bar != BAR_REGISTERS || size != 4) return pci_fn_guest_error(fn, size, "read of %d bytes at BAR%d + 0x%x", size, bar, offset);
  switch (offset) {
    case R_CTRL: return n->enabled ? CTRL_ENABLE : 0;
    case R_STATUS: return (n->enabled ? STATUS_ENABLED : 0) | (n->events_lost ? STATUS_EVENTS_LOST : 0);
    case R_CONN_MAX: return NIC_CONN_MAX;
    case R_EVQ_BASE_LO: return (uint32_t)n->evq.base;
    case R_EVQ_BASE_HI: return (uint32_t)(n->evq.base >> 32);
    case R_EVQ_SIZE: return n->evq.size;
    case R_EVQ_HEAD: return n->evq.head;
    case R_EVQ_TAIL: return n->evq.tail;
    case R_RXQ_BASE_LO: return (uint32_t)n->rxq.base;
    case R_RXQ_BASE_HI: return (uint32_t)(n->rxq.base >> 32);
    case R_RXQ_SIZE: return n->rxq.size;
    case R_RXQ_HEAD: return n->rxq.head;
    case R_RXQ_TAIL: return n->rxq.tail;
    case R_TXQ_BASE_LO: return (uint32_t)n->txq.base;
    case R_TXQ_BASE_HI: return (uint32_t)(n->txq.base >> 32);
    case R_TXQ_SIZE: return n->txq.size;
    case R_TXQ_HEAD: return n->txq.head;
    case R_TXQ_TAIL: return n->txq.tail;
    default: return pci_fn_guest_error(fn, size, "read of 0x%x (no such register, or write-only)", offset);
  }
}

static void size_write(nic *n, nic_ring *ring, const char *name, uint32_t value, uint32_t min, uint32_t max) {
  if (!power_of_two_in(value, min, max)) pci_fn_guest_error(&n->fn, 4, "%s %u is not a power of two in %u..%u", name, value, min, max);
  else ring->size = value;
}

static void head_write(nic *n, nic_ring *ring, const char *name, uint32_t value) {
  uint32_t posted = distance(ring->tail, value);
  if (posted > ring->size || distance(ring->head, value) > posted) {
    pci_fn_guest_error(&n->fn, 4, "%s %u with tail %u, head %u and %u entries", name, value, ring->tail, ring->head, ring->size);
    return;
  }
  ring->head = value;
  pump(n);
}

static void mmio_write(pci_fn *fn, int bar, uint32_t offset, int size, uint64_t value64) {
  nic *n = (nic *)fn;
  if (bar != BAR_REGISTERS || size != 4) {
    pci_fn_guest_error(fn, size, "write of %d bytes at BAR%d + 0x%x", size, bar, offset);
    return;
  }
  uint32_t v = (uint32_t)value64;
  switch (offset) {
    case R_CTRL:
      if (v & CTRL_RESET) reset_nic(n);
      n->enabled = (v & CTRL_ENABLE) != 0;
      return;
    case R_STATUS:
      if (v & STATUS_EVENTS_LOST) n->events_lost = 0;
      return;
    case R_EVQ_BASE_LO:
      if (v % 16 != 0) pci_fn_guest_error(fn, 4, "EVQ_BASE 0x%x is not 16-aligned", v);
      else n->evq.base = (n->evq.base & ~0xffffffffull) | v;
      return;
    case R_EVQ_BASE_HI: n->evq.base = (uint64_t)v << 32 | (n->evq.base & 0xffffffffull); return;
    case R_EVQ_SIZE: size_write(n, &n->evq, "EVQ_SIZE", v, EVQ_ENTRIES_MIN, EVQ_ENTRIES_MAX); return;
    case R_EVQ_TAIL:
      if (distance(n->evq.tail, v) > distance(n->evq.tail, n->evq.head)) {
        pci_fn_guest_error(fn, 4, "EVQ_TAIL %u with tail %u and head %u", v, n->evq.tail, n->evq.head);
        return;
      }
      n->evq.tail = v;
      for (int i = 0; i < NIC_CONN_MAX; i++) {
        nic_slot *slot = &n->slots[i];
        if (slot->state == SLOT_CLOSED && slot->closed_event_index >= 0 && !reached((uint32_t)slot->closed_event_index, v))
          start_draining(n, slot);
      }
      kick_writer(n);
      return;
    case R_RXQ_BASE_LO: n->rxq.base = (n->rxq.base & ~0xffffffffull) | v; return;
    case R_RXQ_BASE_HI: n->rxq.base = (uint64_t)v << 32 | (n->rxq.base & 0xffffffffull); return;
    case R_RXQ_SIZE: size_write(n, &n->rxq, "RXQ_SIZE", v, 1, RING_ENTRIES_MAX); return;
    case R_RXQ_HEAD: head_write(n, &n->rxq, "RXQ_HEAD", v); return;
    case R_TXQ_BASE_LO: n->txq.base = (n->txq.base & ~0xffffffffull) | v; return;
    case R_TXQ_BASE_HI: n->txq.base = (uint64_t)v << 32 | (n->txq.base & 0xffffffffull); return;
    case R_TXQ_SIZE: size_write(n, &n->txq, "TXQ_SIZE", v, 1, RING_ENTRIES_MAX); return;
    case R_TXQ_HEAD: head_write(n, &n->txq, "TXQ_HEAD", v); return;
    case R_CONN_CLOSE: {
      if (v >= NIC_CONN_MAX || n->slots[v].state == SLOT_FREE) {
        pci_fn_guest_error(fn, 4, "CONN_CLOSE of %u, which is not open", v);
        return;
      }
      nic_slot *slot = &n->slots[v];
      if (slot->state != SLOT_OPEN || slot->close_cause == CLOSE_FIRMWARE) return;
      slot->close_cause = CLOSE_FIRMWARE;
      slot->close_tx_target = n->txq.head;
      drop_received(slot);
      pump(n);
      return;
    }
    default: pci_fn_guest_error(fn, 4, "write of 0x%x to 0x%x (no such register, or read-only)", v, offset);
  }
}

void nic_init(nic *n, const char *name, vclock *clock, network_backend backend, void (*log)(void *, const char *), void *log_ctx) {
  memset(n, 0, sizeof *n);
  pci_fn_init(&n->fn, name, NIC_VENDOR_ID, NIC_DEVICE_ID, NIC_CLASS_CODE, 1, NIC_VENDOR_ID, NIC_DEVICE_ID);
  n->fn.log = log;
  n->fn.log_ctx = log_ctx;
  n->fn.mmio_read = mmio_read;
  n->fn.mmio_write = mmio_write;
  pci_fn_add_bar(&n->fn, BAR_REGISTERS, 4096, 0);
  pci_fn_add_bar(&n->fn, BAR_MSIX, 4096, 0);
  pci_fn_add_msix(&n->fn, 1, BAR_MSIX, 0x000, 0x800);
  n->clock = clock;
  n->backend = backend;
  for (int i = 0; i < NIC_CONN_MAX; i++) free_slot(&n->slots[i], 0);
}
