/* The network behind the NIC (host/devices/tcp_backend.ts's TcpBackend): real TCP on the board's portals, on the
 * board's epoll loop. Socket input calls the NIC's port, which schedules its effects on the board clock at the
 * current time; the NIC's sends of one turn are gathered and leave together when the loop flushes. */
#ifndef IOP_TCP_BACKEND_H
#define IOP_TCP_BACKEND_H
#include <stddef.h>
#include <stdint.h>

#include "nic.h"

#define PORTALS_MAX 8

typedef struct {
  int fd;
  uint8_t *outbox;
  size_t out_start, out_length, out_capacity;
  int ending;  /* the NIC closed it: FIN once the outbox is written */
  int paused;
  int held;    /* the NIC holds this connection in its slot */
} tcp_connection;

typedef struct {
  int epoll_fd;
  nic *port;
  int listen_fds[PORTALS_MAX];
  char bound[PORTALS_MAX][80];
  int portal_count;
  tcp_connection connections[NIC_CONN_MAX];
  /* Sockets the NIC gave up that are draining to the peer's FIN, by fd (no slot). */
  int draining[256];
  int draining_count;
  void (*log)(void *ctx, const char *message);
  void *log_ctx;
} tcp_backend;

/* Listens on each "host:port" (port 0: the system picks); -1 with a message. */
int tcp_backend_start(tcp_backend *t, int epoll_fd, nic *port, const char *const *portals, int count, char *error,
                      size_t error_bytes);
network_backend tcp_backend_interface(tcp_backend *t);
/* An epoll event on one of its fds (data.u64 tags it); 0 when the fd is not the backend's. */
int tcp_backend_on_event(tcp_backend *t, uint64_t tag, uint32_t events);
/* Writes what the NIC sent this turn. */
void tcp_backend_flush(tcp_backend *t);
void tcp_backend_stop(tcp_backend *t);
#endif
