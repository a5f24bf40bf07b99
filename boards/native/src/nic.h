/* The TCP-offload NIC (docs/hardware.md, "TCP-offload NIC"), as host/devices/nic.ts: the board terminates TCP on
 * its portals through a network backend (tcp_backend.c: real sockets); the firmware sees connections and byte streams
 * moved by DMA through an event queue, a receive-buffer ring and a transmit ring. One engine does the ring work
 * serially, each step taking a modelled latency on the board clock; one writer puts events into the queue, 2 us
 * apiece, in the order they were produced. The JS model's interpretations are kept one for one. */
#ifndef IOP_NIC_H
#define IOP_NIC_H
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "pci_function.h"

#define NIC_CONN_MAX 64

/* What the NIC asks of the network (calls come from board-clock events). */
typedef struct {
  void *ctx;
  void (*send)(void *ctx, int connection, const uint8_t *bytes, size_t length); /* in order; copied */
  void (*close)(void *ctx, int connection); /* FIN after the bytes already sent; the backend forgets it */
  void (*pause)(void *ctx, int connection, int paused);
} network_backend;

typedef struct nic_slot {
  int state; /* SLOT_* */
  uint32_t generation;
  uint16_t portal;
  int backend_open;
  int close_cause;
  uint32_t close_tx_target;
  uint8_t *rx;     /* bytes received and not yet in a buffer: rx[rx_start .. rx_start + rx_pending) */
  size_t rx_start, rx_pending, rx_capacity;
  int rx_ready;
  int paused;
  int64_t closed_event_index; /* -1 while the Closed event waits in the FIFO */
  uint32_t drain_tx_target;
} nic_slot;

typedef struct {
  uint8_t type;
  uint16_t connection;
  uint32_t length, id;
  uint16_t portal;
} nic_event;

typedef struct {
  uint64_t base;
  uint32_t size, head, tail;
} nic_ring;

#define NIC_EVENTS_PENDING_MAX (2 * NIC_CONN_MAX + 32)

typedef struct {
  pci_fn fn; /* first */
  vclock *clock;
  network_backend backend;
  nic_slot slots[NIC_CONN_MAX];
  int enabled, events_lost;
  nic_ring evq, rxq, txq;
  nic_event events[NIC_EVENTS_PENDING_MAX]; /* a FIFO: events[events_start ...] */
  int events_start, events_count;
  int engine_events_pending;
  int rx_ready_queue[NIC_CONN_MAX * 2];
  int rx_ready_start, rx_ready_count;
  int prefer_rx, engine_busy, writer_busy;
  uint32_t epoch;
  uint8_t *tx_payload; /* NIC_TX_ENTRY_BYTES_MAX */
  uint64_t events_written, bytes_received, bytes_sent, connections_refused;
} nic;

void nic_init(nic *n, const char *name, vclock *clock, network_backend backend, void (*log)(void *, const char *), void *log_ctx);
/* The network's side (NicPort). opened: the slot, or -1 when refused. received: the bytes are copied. */
int nic_opened(nic *n, int portal);
void nic_received(nic *n, int connection, const uint8_t *bytes, size_t length);
void nic_closed(nic *n, int connection);
#endif
