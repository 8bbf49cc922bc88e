/*
 * bench/ceiling/loop.h -- what both C loops (fwd.c, fwd-offload.c) share: stop on
 * SIGTERM/SIGINT, die with errno, ip:port parsing, and the epoll set over the TUN fd and
 * the UDP socket. Header-only: each loop is one cc command. Define PROG first.
 */
#ifndef CEILING_LOOP_H
#define CEILING_LOOP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

/* No SA_RESTART: epoll_wait returns EINTR and the loop sees stop_flag. */
static void catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

static void die(const char *what) {
  fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
  exit(1);
}

/* "a.b.c.d:port" or "[v6]:port" -> sockaddr; its length, or 0 if malformed. */
static socklen_t parse_addr(const char *s, struct sockaddr_storage *ss) {
  char buf[128];
  const char *port;
  memset(ss, 0, sizeof(*ss));
  if (strlen(s) >= sizeof(buf)) return 0;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':') return 0;
    memcpy(buf, s + 1, (size_t)(end - s - 1));
    buf[end - s - 1] = 0;
    port = end + 2;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET6, buf, &a6->sin6_addr) != 1) return 0;
    return sizeof(*a6);
  }
  const char *colon = strrchr(s, ':');
  if (!colon) return 0;
  memcpy(buf, s, (size_t)(colon - s));
  buf[colon - s] = 0;
  port = colon + 1;
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  a4->sin_family = AF_INET;
  a4->sin_port = htons((uint16_t)atoi(port));
  if (inet_pton(AF_INET, buf, &a4->sin_addr) != 1) return 0;
  return sizeof(*a4);
}

/* An epoll set watching both fds for input, level-triggered (udptun's uv_poll is too). */
static int watch_both(int tun, int udp) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = tun};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tun, &ev) < 0) die("epoll_ctl tun");
  ev.data.fd = udp;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, udp, &ev) < 0) die("epoll_ctl udp");
  return ep;
}

static void set_events(int ep, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl mod");
}

/* Ready fds into evs[2]; 0 when a signal interrupted the wait. */
static int wait_ready(int ep, struct epoll_event *evs) {
  int n = epoll_wait(ep, evs, 2, -1);
  if (n < 0 && errno != EINTR) die("epoll_wait");
  return n < 0 ? 0 : n;
}

#endif
