/*
 * Tunnel set-ups for the proxy benchmark, as a C load generator (compiled by setup-loop.ts when a
 * C compiler is there): new TCP connection to 127.0.0.1:PORT, `CONNECT` (PROXY=1), the 200, one
 * small GET inside the tunnel and its whole response (Content-Length), close; LOOPS loops at once
 * for SECONDS. The same work as clients.ts' rawSetupRate, for a fraction of its CPU: with a Node
 * client the load side took most of the second core, and a second proxy worker had nothing left.
 *
 *   setup-loop PORT PROXY(0|1) HOST:PORT LOOPS SECONDS   → prints "ok errors seconds"
 *
 * Loopback only (127.0.0.1); a set-up that takes more than 5 s counts as an error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, WAIT_200, WAIT_GET };

struct loop {
  int fd;
  int phase;
  double started;
  size_t have;
  char buf[8192];
};

static char connect_req[512], get_req[512];
static size_t connect_len, get_len;
static struct sockaddr_in proxy;
static int via_proxy, ep;
static long ok, errors;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void finish(struct loop *l, int good) {
  if (l->fd >= 0) close(l->fd); /* close() also takes it out of the epoll set */
  l->fd = -1;
  if (good) ok++;
  else errors++;
}

static int start(struct loop *l) {
  l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (l->fd < 0) return -1;
  int one = 1;
  setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  l->phase = CONNECTING;
  l->have = 0;
  l->started = now();
  if (connect(l->fd, (struct sockaddr *)&proxy, sizeof proxy) < 0 && errno != EINPROGRESS) {
    finish(l, 0);
    return -1;
  }
  struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = l };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
    finish(l, 0);
    return -1;
  }
  return 0;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Bytes of a complete response at the start of buf (head + Content-Length body), or 0. */
static size_t complete(const char *buf, size_t have, int want_body) {
  const char *end = memmem(buf, have, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head = (size_t)(end - buf) + 4;
  if (!want_body) return head;
  size_t body = 0;
  for (const char *p = buf; p < end; p++) {
    if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
      body = strtoul(p + 15, NULL, 10);
      break;
    }
  }
  return have >= head + body ? head + body : 0;
}

static void on_event(struct loop *l, unsigned events) {
  if (l->phase == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (!(events & EPOLLOUT) || getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) return finish(l, 0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };
    epoll_ctl(ep, EPOLL_CTL_MOD, l->fd, &ev);
    l->phase = via_proxy ? WAIT_200 : WAIT_GET;
    if (send_all(l->fd, via_proxy ? connect_req : get_req, via_proxy ? connect_len : get_len) < 0) return finish(l, 0);
    return;
  }
  ssize_t r = read(l->fd, l->buf + l->have, sizeof l->buf - l->have);
  if (r <= 0) return finish(l, 0);
  l->have += (size_t)r;
  size_t n = complete(l->buf, l->have, l->phase == WAIT_GET);
  if (n == 0) {
    if (l->have == sizeof l->buf) finish(l, 0);
    return;
  }
  if (l->phase == WAIT_200) {
    if (strncmp(l->buf, "HTTP/1.1 200", 12) != 0 && strncmp(l->buf, "HTTP/1.0 200", 12) != 0) return finish(l, 0);
    memmove(l->buf, l->buf + n, l->have - n);
    l->have -= n;
    l->phase = WAIT_GET;
    if (send_all(l->fd, get_req, get_len) < 0) return finish(l, 0);
    return;
  }
  finish(l, strncmp(l->buf, "HTTP/1.1 2", 10) == 0);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s PORT PROXY(0|1) HOST:PORT LOOPS SECONDS\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]), loops = atoi(argv[4]);
  via_proxy = atoi(argv[2]);
  double seconds = atof(argv[5]);
  if (port <= 0 || loops <= 0 || loops > 4096 || seconds <= 0 || strlen(argv[3]) > 200) return 2;
  connect_len = (size_t)snprintf(connect_req, sizeof connect_req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", argv[3], argv[3]);
  get_len = (size_t)snprintf(get_req, sizeof get_req, "GET /small HTTP/1.1\r\nHost: %s\r\n\r\n", argv[3]);
  proxy.sin_family = AF_INET;
  proxy.sin_port = htons((unsigned short)port);
  proxy.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ep = epoll_create1(0);
  struct loop *all = calloc((size_t)loops, sizeof *all);
  if (ep < 0 || !all) return 1;
  double t0 = now(), deadline = t0 + seconds;
  for (int i = 0; i < loops; i++) start(&all[i]);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
    double t = now();
    int running = 0;
    for (int i = 0; i < loops; i++) {
      struct loop *l = &all[i];
      if (l->fd >= 0 && t - l->started > 5) finish(l, 0);
      if (l->fd < 0 && t < deadline) start(l);
      if (l->fd >= 0) running++;
    }
    if (!running && t >= deadline) break;
  }
  printf("%ld %ld %.3f\n", ok, errors, now() - t0);
  return 0;
}
