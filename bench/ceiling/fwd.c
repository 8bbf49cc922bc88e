/*
 * bench/ceiling/fwd.c -- "the ceiling without JS".
 *
 * A minimal TUN <-> UDP forwarder in plain C with the same syscall pattern as
 * udptun's plain batched loop, so the benchmark can show what the kernel
 * allows with no JavaScript at all and no offloads:
 *
 *   TUN (IFF_TUN | IFF_NO_PI, TUNSETOFFLOAD 0), non-blocking
 *   UDP socket, non-blocking, unconnected (destination in msg_name)
 *   epoll (level-triggered) on both fds
 *   TUN readable: read() packets until EAGAIN (or a full batch of 64), prepend
 *                 a HDR_LEN-byte header, one sendmmsg() per batch; up to 8
 *                 batches per wakeup (udptun's ROUNDS_PER_WAKEUP)
 *   UDP readable: recvmmsg() a batch, strip the header, one write() per packet
 *                 to the TUN, repeat until a short batch / EAGAIN (same budget)
 *   sendmmsg EAGAIN: keep the unsent rest, stop reading the TUN, wait for
 *                 EPOLLOUT on the socket, then finish the batch (udptun's
 *                 back-pressure) -- no drops in the forwarder itself
 *
 * It only talks to another instance of itself. Addresses, MTU and link state
 * of the TUN device are set by the caller (ip addr / ip link) after start-up.
 *
 * Build: cc -O2 -Wall -o fwd fwd.c
 * Usage: fwd -i DEV -l LISTEN_ADDR:PORT -p PEER_ADDR:PORT
 *            [-b BATCH(64)] [-B BUDGET(512)] [-r RCVBUF(4 MiB)] [-s SNDBUF(4 MiB)]
 *        IPv6 addresses as [addr]:port.
 * On SIGTERM/SIGINT it prints counters to stderr and exits 0 (the TUN device,
 * not persistent, disappears with the fd).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#define PROG "fwd"
#include "loop.h"

/* udptun's wire header (src/tunnel/header.ts): byte 0 = version 1 (high nibble) |
 * type 1 = data (low nibble), bytes 1-3 reserved zero. */
#define HDR_LEN 4
static const unsigned char HDR[HDR_LEN] = {0x11, 0x00, 0x00, 0x00};
#define MAX_PKT 65535
#define SLOT (HDR_LEN + MAX_PKT)
#define MAX_BATCH 1024

static struct {
  unsigned long long tun_rx, udp_tx, udp_tx_err, udp_tx_eagain, sendmmsg_calls;
  unsigned long long udp_rx, tun_tx, tun_tx_err, bad_hdr, recvmmsg_calls, wakeups;
} st;

int main(int argc, char **argv) {
  const char *dev = NULL, *listen_s = NULL, *peer_s = NULL;
  int batch = 64, budget = 512, rcvbuf = 4 << 20, sndbuf = 4 << 20, opt;
  while ((opt = getopt(argc, argv, "i:l:p:b:B:r:s:")) != -1) {
    switch (opt) {
    case 'i': dev = optarg; break;
    case 'l': listen_s = optarg; break;
    case 'p': peer_s = optarg; break;
    case 'b': batch = atoi(optarg); break;
    case 'B': budget = atoi(optarg); break;
    case 'r': rcvbuf = atoi(optarg); break;
    case 's': sndbuf = atoi(optarg); break;
    default: goto usage;
    }
  }
  if (!dev || !listen_s || !peer_s || batch < 1 || batch > MAX_BATCH || budget < 1) {
  usage:
    fprintf(stderr, "usage: fwd -i DEV -l LISTEN:PORT -p PEER:PORT [-b batch] [-B budget] [-r rcvbuf] [-s sndbuf]\n");
    return 2;
  }

  struct sockaddr_storage laddr, paddr;
  socklen_t llen = parse_addr(listen_s, &laddr), plen = parse_addr(peer_s, &paddr);
  if (!llen || !plen || laddr.ss_family != paddr.ss_family) {
    fprintf(stderr, "fwd: bad address (listen %s, peer %s)\n", listen_s, peer_s);
    return 2;
  }

  catch_stop_signals();

  /* TUN */
  int tun = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tun < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
  if (ioctl(tun, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  if (ioctl(tun, TUNSETOFFLOAD, 0UL) < 0) die("TUNSETOFFLOAD 0");

  /* UDP */
  int udp = socket(laddr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (udp < 0) die("socket");
  /* FORCE variants lift net.core.[rw]mem_max (root), like udptun; fall back if refused */
  if (setsockopt(udp, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
      setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
    die("SO_RCVBUF");
  if (setsockopt(udp, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0 &&
      setsockopt(udp, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
    die("SO_SNDBUF");
  if (bind(udp, (struct sockaddr *)&laddr, llen) < 0) die("bind");

  int ep = watch_both(tun, udp);

  /* buffers: one slot per batch entry and direction */
  unsigned char *txbuf = malloc((size_t)batch * SLOT), *rxbuf = malloc((size_t)batch * SLOT);
  struct mmsghdr *txm = calloc((size_t)batch, sizeof(*txm)), *rxm = calloc((size_t)batch, sizeof(*rxm));
  struct iovec *txv = calloc((size_t)batch, sizeof(*txv)), *rxv = calloc((size_t)batch, sizeof(*rxv));
  struct sockaddr_storage *rxfrom = calloc((size_t)batch, sizeof(*rxfrom));
  if (!txbuf || !rxbuf || !txm || !rxm || !txv || !rxv || !rxfrom) die("malloc");
  for (int i = 0; i < batch; i++) {
    memcpy(txbuf + (size_t)i * SLOT, HDR, HDR_LEN);
    txv[i].iov_base = txbuf + (size_t)i * SLOT;
    txm[i].msg_hdr.msg_iov = &txv[i];
    txm[i].msg_hdr.msg_iovlen = 1;
    txm[i].msg_hdr.msg_name = &paddr;
    txm[i].msg_hdr.msg_namelen = plen;
    rxv[i].iov_base = rxbuf + (size_t)i * SLOT;
    rxv[i].iov_len = SLOT;
    rxm[i].msg_hdr.msg_iov = &rxv[i];
    rxm[i].msg_hdr.msg_iovlen = 1;
  }

  printf("ready %s\n", dev);
  fflush(stdout);

  struct epoll_event evs[2];
  int pend_off = 0, pend_n = 0; /* batch entries [pend_off, pend_n) wait for the socket */
  while (!stop_flag) {
    int n = wait_ready(ep, evs);
    if (n == 0) continue;
    st.wakeups++;
    for (int e = 0; e < n; e++) {
      int fd = evs[e].data.fd;
      int tun_turn = fd == tun && (evs[e].events & EPOLLIN);
      if (fd == udp && (evs[e].events & EPOLLOUT) && pend_n > 0) {
        /* the socket can take more: finish the held batch, then resume TUN reads */
        while (pend_off < pend_n) {
          int s2 = sendmmsg(udp, txm + pend_off, (unsigned)(pend_n - pend_off), MSG_DONTWAIT);
          st.sendmmsg_calls++;
          if (s2 < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) { st.udp_tx_eagain++; break; }
            st.udp_tx_err++;
            pend_off++; /* drop the failing datagram, keep the rest */
            continue;
          }
          st.udp_tx += (unsigned long long)s2;
          pend_off += s2;
        }
        if (pend_off >= pend_n) {
          pend_off = pend_n = 0;
          set_events(ep, udp, EPOLLIN);
          set_events(ep, tun, EPOLLIN);
        }
      }
      if (tun_turn && pend_n == 0) {
        /* TUN -> UDP: read until EAGAIN (bounded by budget), sendmmsg per batch */
        int done = 0, again = 0;
        while (!again && done < budget && pend_n == 0) {
          int k = 0;
          while (k < batch) {
            ssize_t r = read(tun, txbuf + (size_t)k * SLOT + HDR_LEN, MAX_PKT);
            if (r < 0) {
              if (errno == EAGAIN || errno == EWOULDBLOCK) { again = 1; break; }
              if (errno == EINTR) continue;
              die("read tun");
            }
            if (r == 0) { again = 1; break; }
            txv[k].iov_len = (size_t)r + HDR_LEN;
            k++;
          }
          st.tun_rx += (unsigned long long)k;
          done += k;
          int off = 0;
          while (off < k) {
            int s2 = sendmmsg(udp, txm + off, (unsigned)(k - off), MSG_DONTWAIT);
            st.sendmmsg_calls++;
            if (s2 < 0) {
              if (errno == EINTR) continue;
              if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* back-pressure: hold the rest, pause TUN reads, wait for EPOLLOUT */
                st.udp_tx_eagain++;
                pend_off = off; pend_n = k;
                set_events(ep, tun, 0);
                set_events(ep, udp, EPOLLIN | EPOLLOUT);
                break;
              }
              st.udp_tx_err++;
              off++; /* drop the failing datagram, keep the rest */
              continue;
            }
            st.udp_tx += (unsigned long long)s2;
            off += s2;
          }
        }
      }
      if (fd == udp && (evs[e].events & EPOLLIN)) {
        /* UDP -> TUN: recvmmsg a batch, one write() per packet */
        int done = 0;
        while (done < budget) {
          for (int i = 0; i < batch; i++) {
            rxm[i].msg_hdr.msg_name = &rxfrom[i];
            rxm[i].msg_hdr.msg_namelen = sizeof(rxfrom[i]);
          }
          int r = recvmmsg(udp, rxm, (unsigned)batch, MSG_DONTWAIT, NULL);
          st.recvmmsg_calls++;
          if (r < 0) {
            if (errno == EINTR) continue;
            break; /* EAGAIN */
          }
          st.udp_rx += (unsigned long long)r;
          for (int i = 0; i < r; i++) {
            unsigned len = rxm[i].msg_len;
            unsigned char *p = rxbuf + (size_t)i * SLOT;
            if (len <= HDR_LEN || memcmp(p, HDR, HDR_LEN) != 0) { st.bad_hdr++; continue; }
            ssize_t w;
            do w = write(tun, p + HDR_LEN, len - HDR_LEN);
            while (w < 0 && errno == EINTR);
            if (w < 0) st.tun_tx_err++;
            else st.tun_tx++;
          }
          done += r;
          if (r < batch) break;
        }
      }
    }
  }
  fprintf(stderr,
          "fwd %s: wakeups %llu | tun_rx %llu udp_tx %llu udp_tx_err %llu udp_tx_eagain %llu sendmmsg %llu | "
          "udp_rx %llu recvmmsg %llu tun_tx %llu tun_tx_err %llu bad_hdr %llu\n",
          dev, st.wakeups, st.tun_rx, st.udp_tx, st.udp_tx_err, st.udp_tx_eagain, st.sendmmsg_calls, st.udp_rx,
          st.recvmmsg_calls, st.tun_tx, st.tun_tx_err, st.bad_hdr);
  close(tun);
  close(udp);
  return 0;
}
