#define _GNU_SOURCE
#include "tcp_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* epoll tags: the kind in the top byte, the index below. */
#define TAG_LISTEN (1ull << 56)
#define TAG_CONNECTION (2ull << 56)
#define TAG_DRAINING (3ull << 56)
#define TAG_KIND(tag) ((tag) & (0xffull << 56))
#define TAG_INDEX(tag) ((tag) & ((1ull << 56) - 1))
#define READ_CHUNK (64 * 1024)


static void watch(tcp_backend *t, int fd, uint32_t events, uint64_t tag, int op) {
  struct epoll_event ev = {.events = events, .data.u64 = tag};
  epoll_ctl(t->epoll_fd, op, fd, &ev);
}

static void set_interest(tcp_backend *t, int index) {
  tcp_connection *c = &t->connections[index];
  uint32_t events = (c->paused ? 0 : EPOLLIN) | (c->out_length > 0 ? EPOLLOUT : 0) | EPOLLRDHUP;
  watch(t, c->fd, events, TAG_CONNECTION | (uint64_t)index, EPOLL_CTL_MOD);
}

int tcp_backend_start(tcp_backend *t, int epoll_fd, nic *port, const char *const *portals, int count, char *error,
                      size_t error_bytes) {
  memset(t, 0, sizeof *t);
  t->epoll_fd = epoll_fd;
  t->port = port;
  for (int i = 0; i < NIC_CONN_MAX; i++) t->connections[i].fd = -1;
  for (int i = 0; i < count && i < PORTALS_MAX; i++) {
    char host[64];
    const char *colon = strrchr(portals[i], ':');
    if (colon == NULL || (size_t)(colon - portals[i]) >= sizeof host) return snprintf(error, error_bytes, "portal \"%s\": expected host:port", portals[i]), -1;
    memcpy(host, portals[i], (size_t)(colon - portals[i]));
    host[colon - portals[i]] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST}, *found;
    if (getaddrinfo(host, colon + 1, &hints, &found) != 0) return snprintf(error, error_bytes, "portal \"%s\": not a numeric address", portals[i]), -1;
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      snprintf(error, error_bytes, "portal %s: %s", portals[i], strerror(errno));
      freeaddrinfo(found);
      if (fd >= 0) close(fd);
      return -1;
    }
    freeaddrinfo(found);
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    getsockname(fd, (struct sockaddr *)&address, &length);
    char text[64];
    int bound_port;
    if (address.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&address)->sin6_addr, text, sizeof text);
      bound_port = ntohs(((struct sockaddr_in6 *)&address)->sin6_port);
      snprintf(t->bound[i], sizeof t->bound[i], "[%s]:%d", text, bound_port);
    } else {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&address)->sin_addr, text, sizeof text);
      bound_port = ntohs(((struct sockaddr_in *)&address)->sin_port);
      snprintf(t->bound[i], sizeof t->bound[i], "%s:%d", text, bound_port);
    }
    t->listen_fds[i] = fd;
    t->portal_count = i + 1;
    watch(t, fd, EPOLLIN, TAG_LISTEN | (uint64_t)i, EPOLL_CTL_ADD);
  }
  return 0;
}

/* A socket the NIC no longer holds: FIN sent; read and drop until the peer's FIN, then close. */
static void start_draining(tcp_backend *t, int fd) {
  shutdown(fd, SHUT_WR);
  if (t->draining_count == (int)(sizeof t->draining / sizeof t->draining[0])) {
    close(fd);
    return;
  }
  t->draining[t->draining_count] = fd;
  watch(t, fd, EPOLLIN | EPOLLRDHUP, TAG_DRAINING | (uint64_t)fd, EPOLL_CTL_MOD);
  t->draining_count++;
}

static void forget(tcp_backend *t, int index) {
  tcp_connection *c = &t->connections[index];
  free(c->outbox);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

/* The peer closed or reset: the NIC is told once, unless it already gave the slot up. */
static void lost(tcp_backend *t, int index) {
  tcp_connection *c = &t->connections[index];
  if (c->fd < 0) return;
  epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  forget(t, index);
  nic_closed(t->port, index);
}

static void write_out(tcp_backend *t, int index) {
  tcp_connection *c = &t->connections[index];
  while (c->out_length > 0) {
    ssize_t n = send(c->fd, c->outbox + c->out_start, c->out_length, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      c->out_length = 0; /* the peer is gone; its close comes through epoll */
      break;
    }
    c->out_start += (size_t)n;
    c->out_length -= (size_t)n;
  }
  if (c->out_length == 0) c->out_start = 0;
  if (c->ending && c->out_length == 0) {
    int fd = c->fd;
    forget(t, index);
    start_draining(t, fd);
    return;
  }
  set_interest(t, index);
}

static void nb_send(void *ctx, int connection, const uint8_t *bytes, size_t length) {
  tcp_backend *t = ctx;
  tcp_connection *c = &t->connections[connection];
  if (c->fd < 0 || c->ending) return;
  if (c->out_start + c->out_length + length > c->out_capacity) {
    if (c->out_start > 0) {
      memmove(c->outbox, c->outbox + c->out_start, c->out_length);
      c->out_start = 0;
    }
    if (c->out_length + length > c->out_capacity) {
      c->out_capacity = (c->out_length + length) * 2;
      c->outbox = realloc(c->outbox, c->out_capacity);
    }
  }
  memcpy(c->outbox + c->out_start + c->out_length, bytes, length);
  c->out_length += length;
}

static void nb_close(void *ctx, int connection) {
  tcp_backend *t = ctx;
  tcp_connection *c = &t->connections[connection];
  if (c->fd < 0) return;
  c->ending = 1;
  c->paused = 0;
  write_out(t, connection); /* FIN after the outbox; the slot may be handed to a new socket from now on */
}

static void nb_pause(void *ctx, int connection, int paused) {
  tcp_backend *t = ctx;
  tcp_connection *c = &t->connections[connection];
  if (c->fd < 0) return;
  c->paused = paused;
  set_interest(t, connection);
}

network_backend tcp_backend_interface(tcp_backend *t) { return (network_backend){t, nb_send, nb_close, nb_pause}; }

void tcp_backend_flush(tcp_backend *t) {
  for (int i = 0; i < NIC_CONN_MAX; i++)
    if (t->connections[i].fd >= 0 && t->connections[i].out_length > 0) write_out(t, i);
}

int tcp_backend_on_event(tcp_backend *t, uint64_t tag, uint32_t events) {
  uint64_t kind = TAG_KIND(tag), index = TAG_INDEX(tag);
  static uint8_t chunk[READ_CHUNK];
  if (kind == TAG_LISTEN) {
    for (;;) {
      int fd = accept4(t->listen_fds[index], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      int connection = nic_opened(t->port, (int)index);
      if (connection < 0) {
        close(fd); /* refused: every slot is taken, or the NIC is not accepting */
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      tcp_connection *c = &t->connections[connection];
      forget(t, connection);
      c->fd = fd;
      c->held = 1;
      watch(t, fd, EPOLLIN | EPOLLRDHUP, TAG_CONNECTION | (uint64_t)connection, EPOLL_CTL_ADD);
    }
    return 1;
  }
  if (kind == TAG_CONNECTION) {
    tcp_connection *c = &t->connections[index];
    if (c->fd < 0) return 1;
    if (events & EPOLLOUT) write_out(t, (int)index);
    if (c->fd < 0) return 1;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !c->paused) {
      for (;;) {
        ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n > 0) {
          nic_received(t->port, (int)index, chunk, (size_t)n);
          if (c->paused) break;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        lost(t, (int)index); /* 0: the peer's FIN; < 0: a reset */
        break;
      }
    } else if (events & (EPOLLHUP | EPOLLERR)) {
      lost(t, (int)index);
    }
    return 1;
  }
  if (kind == TAG_DRAINING) {
    int fd = (int)index;
    for (;;) {
      ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 1;
      break;
    }
    epoll_ctl(t->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    for (int i = 0; i < t->draining_count; i++)
      if (t->draining[i] == fd) t->draining[i] = t->draining[--t->draining_count];
    return 1;
  }
  return 0;
}

void tcp_backend_stop(tcp_backend *t) {
  for (int i = 0; i < NIC_CONN_MAX; i++)
    if (t->connections[i].fd >= 0) {
      close(t->connections[i].fd);
      forget(t, i);
    }
  for (int i = 0; i < t->draining_count; i++) close(t->draining[i]);
  t->draining_count = 0;
  for (int i = 0; i < t->portal_count; i++) close(t->listen_fds[i]);
  t->portal_count = 0;
}
