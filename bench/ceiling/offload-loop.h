/*
 * bench/ceiling/offload-loop.h -- udptun's offload data path with the JavaScript taken
 * out, shared by fwd-offload.c (plain) and fwd-wg.c (WireGuard): the addon's own plain-C
 * cores (src/native/segment.c splits super-packets and sends them with UDP GSO;
 * src/native/coalesce.c joins segments of a flow into one TUN write), the same kernel
 * calls, the same batch limits, driven by a bare epoll loop. What udptun loses against
 * this is the price of the event loop, N-API and the JS around the batches.
 *
 *   TUN: IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, TUNSETVNETHDRSZ 10,
 *        TUNSETOFFLOAD CSUM|TSO4|TSO6 (+USO4|USO6 when the kernel takes them)
 *   UDP: UDP_GRO on; sends with UDP_SEGMENT (inside send_segments)
 *   TUN readable: read() super-packets until EAGAIN, 64 or 512 KiB, then send_segments
 *                 (behind the wire's header, or through its seal step); up to 8 such
 *                 batches per wakeup (udptun's ROUNDS_PER_WAKEUP)
 *   UDP readable: recvmmsg() up to 64 GRO datagrams, cut each at its gso_size, unwrap
 *                 each (check and strip a header, or open in place), write_joined();
 *                 the same 8-round budget
 *   socket full:  hold the batch, stop reading the TUN, wait for EPOLLOUT, resume the
 *                 batch where send_segments stopped (its state[SEND_STATE_RESUME])
 *
 * Define PROG and include after core.h. On SIGTERM/SIGINT run_offload_loop prints
 * counters to stderr and returns.
 */
#ifndef CEILING_OFFLOAD_LOOP_H
#define CEILING_OFFLOAD_LOOP_H

#include <fcntl.h>
#include <linux/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include "linux-compat.h"
#include "loop.h"

#define VNET ((int)sizeof(struct virtio_net_hdr))
#define SLOT (64 + VNET + 65535)   /* headroom as udptun's pools, then the largest read */
#define BATCH 64                   /* udptun's BATCH */
#define ROUNDS 8                   /* udptun's ROUNDS_PER_WAKEUP */
#define BATCH_BYTES (512 * 1024)   /* udptun's SUPER_BATCH_BYTES */

/* What wraps an inner packet on the wire. */
typedef struct {
  const uint8_t *hdr; /* written before every datagram (hl bytes; 0 with a seal step) */
  uint32_t hl;
  /* The seal step for the next send_segments call, or NULL. */
  seal_step_t *(*seal)(void);
  /* A received datagram of len bytes at p: 1 with the inner packet at p + *off, *plen
   * bytes, or 0 to drop it (counted as bad). */
  int (*unwrap)(uint8_t *p, uint32_t len, uint32_t *off, uint32_t *plen);
} wire_t;

static struct {
  unsigned long long wakeups, tun_reads, tun_rx_inner, udp_sends, stalls, send_err;
  unsigned long long udp_rx, recvmmsg_calls, segs_rx, bad, tun_writes, tun_tx, tun_tx_err;
} st;

/* "-l ADDR:PORT -p ADDR:PORT" into laddr/paddr; 0 if either is malformed or the families differ. */
static int parse_ends(const char *listen_s, const char *peer_s, struct sockaddr_storage *laddr, socklen_t *llen,
                      struct sockaddr_storage *paddr) {
  if (!listen_s || !peer_s) return 0;
  *llen = parse_addr(listen_s, laddr);
  return *llen && parse_addr(peer_s, paddr) && laddr->ss_family == paddr->ss_family;
}

static int open_tun(const char *dev) {
  int tun = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tun < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
  strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
  if (ioctl(tun, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  int vnet = VNET;
  if (ioctl(tun, TUNSETVNETHDRSZ, &vnet) < 0) die("TUNSETVNETHDRSZ");
  unsigned long off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  if (ioctl(tun, TUNSETOFFLOAD, off | TUN_F_USO4 | TUN_F_USO6) < 0 && ioctl(tun, TUNSETOFFLOAD, off) < 0)
    die("TUNSETOFFLOAD");
  return tun;
}

static int open_udp(const struct sockaddr_storage *laddr, socklen_t llen) {
  int udp = socket(laddr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (udp < 0) die("socket");
  int bufsz = 4 << 20, one = 1;
  if (setsockopt(udp, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof bufsz) < 0) die("SO_RCVBUFFORCE");
  if (setsockopt(udp, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof bufsz) < 0) die("SO_SNDBUFFORCE");
  if (setsockopt(udp, SOL_UDP, UDP_GRO, &one, sizeof one) < 0) die("UDP_GRO");
  if (bind(udp, (const struct sockaddr *)laddr, llen) < 0) die("bind");
  return udp;
}

/* The peer in the 20-byte endpoint form send_segments takes (core.h). */
static void endpoint_of(const struct sockaddr_storage *paddr, uint8_t *ep) {
  memset(ep, 0, ENDPOINT_BYTES);
  if (paddr->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)paddr;
    ep[0] = 6;
    memcpy(ep + 2, &a6->sin6_port, 2);
    memcpy(ep + 4, &a6->sin6_addr, 16);
  } else {
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)paddr;
    ep[0] = 4;
    memcpy(ep + 2, &a4->sin_port, 2);
    memcpy(ep + 4, &a4->sin_addr, 4);
  }
}

static void run_offload_loop(const char *dev, const struct sockaddr_storage *laddr, socklen_t llen,
                             const struct sockaddr_storage *paddr, const wire_t *w) {
  uint8_t peer_ep[ENDPOINT_BYTES];
  endpoint_of(paddr, peer_ep);
  int v6 = paddr->ss_family == AF_INET6;
  catch_stop_signals();
  int tun = open_tun(dev);
  int udp = open_udp(laddr, llen);
  int ep = watch_both(tun, udp);

  /* Device side: one slab of BATCH slots; the batch arrays send_segments takes. */
  uint8_t *tslab = aligned_alloc(64, (size_t)BATCH * SLOT);
  uint8_t *rslab = aligned_alloc(64, (size_t)BATCH * SLOT);
  if (!tslab || !rslab) die("malloc");
  int32_t toffs[BATCH], tlens[BATCH], tstatus[BATCH], tbytes[BATCH], tstate[SEND_STATE_LEN] = {0};
  uint8_t dst[BATCH * ENDPOINT_BYTES];
  for (int i = 0; i < BATCH; i++) memcpy(dst + i * ENDPOINT_BYTES, peer_ep, ENDPOINT_BYTES);
  batch_t tb = {.slab = tslab, .slab_len = (size_t)BATCH * SLOT, .offs = toffs, .lens = tlens};
  uint32_t held = 0, held_from = 0; /* a batch waiting for the socket: packets [held_from, held) */
  int paused = 0;                   /* TUN reads off, socket watched for EPOLLOUT */

  /* Network side: recvmmsg into slots, with room for the UDP_GRO cmsg. */
  struct mmsghdr rm[BATCH];
  struct iovec rv[BATCH];
  char cms[BATCH][CMSG_SPACE(sizeof(int))];
  static int32_t woffs[BATCH * GRO_MAX_SEGS], wlens[BATCH * GRO_MAX_SEGS], wstatus[BATCH * GRO_MAX_SEGS];
  batch_t wb = {.slab = rslab, .slab_len = (size_t)BATCH * SLOT, .offs = woffs, .lens = wlens};

  printf("ready %s\n", dev);
  fflush(stdout);

  struct epoll_event evs[2];
  while (!stop_flag) {
    int n = wait_ready(ep, evs);
    if (n == 0) continue;
    st.wakeups++;
    for (int e = 0; e < n; e++) {
      int fd = evs[e].data.fd;
      uint32_t events = evs[e].events;
      int resume = fd == udp && (events & EPOLLOUT) && paused;
      if ((fd == tun && (events & EPOLLIN) && !paused) || resume) {
        for (int round = 0; round < ROUNDS; round++) {
          int drained = 0;
          if (!resume) {
            /* TUN -> UDP: super-packets until EAGAIN or the batch is full */
            uint32_t k = 0, bytes = 0;
            while (k < BATCH && bytes < BATCH_BYTES) {
              uint8_t *at = tslab + (size_t)k * SLOT + 64;
              ssize_t r = read(tun, at, VNET + 65535);
              if (r < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) { drained = 1; break; }
                die("read tun");
              }
              toffs[k] = (int32_t)(at - tslab);
              tlens[k] = (int32_t)r;
              bytes += (uint32_t)r;
              k++;
            }
            st.tun_reads += k;
            held = k;
            held_from = 0;
          }
          resume = 0;
          if (held == 0) break;
          /* send the rest of the batch; a full socket keeps it for EPOLLOUT */
          tb.offs = toffs + held_from;
          tb.lens = tlens + held_from;
          tb.count = held - held_from;
          uint32_t done = send_segments(udp, v6, &tb, dst, tstatus, tbytes, tstate, w->hdr, w->hl, 1,
                                        w->seal ? w->seal() : NULL);
          st.udp_sends += (unsigned long long)tstate[SEND_STATE_SENDS];
          for (uint32_t i = 0; i < done; i++) {
            if (tstatus[i] > 0) st.tun_rx_inner += (unsigned long long)tstatus[i];
            else st.send_err++;
          }
          if (done < tb.count) {
            st.stalls++;
            held_from += done;
            if (!paused) {
              set_events(ep, tun, 0);
              set_events(ep, udp, EPOLLIN | EPOLLOUT);
              paused = 1;
            }
            break;
          }
          if (paused) {
            set_events(ep, tun, EPOLLIN);
            set_events(ep, udp, EPOLLIN);
            paused = 0;
          }
          held = held_from = 0;
          if (drained) break;
        }
      }
      if (fd == udp && (events & EPOLLIN)) {
        /* UDP -> TUN: GRO datagrams cut into the peer's datagrams, joined per flow */
        for (int round = 0; round < ROUNDS; round++) {
          for (int i = 0; i < BATCH; i++) {
            rv[i] = (struct iovec){rslab + (size_t)i * SLOT + 64, SLOT - 64};
            rm[i].msg_hdr = (struct msghdr){.msg_iov = &rv[i], .msg_iovlen = 1,
                                             .msg_control = cms[i], .msg_controllen = sizeof cms[i]};
          }
          int r = recvmmsg(udp, rm, BATCH, MSG_DONTWAIT, NULL);
          st.recvmmsg_calls++;
          if (r < 0) {
            if (errno == EINTR) continue;
            break; /* EAGAIN */
          }
          st.udp_rx += (unsigned long long)r;
          uint32_t k = 0;
          for (int i = 0; i < r; i++) {
            uint32_t len = rm[i].msg_len, size = len;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&rm[i].msg_hdr); c; c = CMSG_NXTHDR(&rm[i].msg_hdr, c)) {
              if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                int g;
                memcpy(&g, CMSG_DATA(c), sizeof g);
                if (g > 0) size = (uint32_t)g;
              }
            }
            uint8_t *base = rslab + (size_t)i * SLOT + 64;
            for (uint32_t at = 0; at < len; at += size) {
              uint32_t seg = len - at < size ? len - at : size, off, plen;
              st.segs_rx++;
              if (!w->unwrap(base + at, seg, &off, &plen)) {
                st.bad++;
                continue;
              }
              woffs[k] = (int32_t)(base + at + off - rslab);
              wlens[k] = (int32_t)plen;
              k++;
            }
          }
          wb.count = k;
          int32_t writes = 0;
          int32_t ok = write_joined(tun, &wb, wstatus, JOIN_TCP, &writes);
          st.tun_writes += (unsigned long long)writes;
          st.tun_tx += (unsigned long long)ok;
          st.tun_tx_err += k - (uint32_t)ok;
          if (r < BATCH) break;
        }
      }
    }
  }
  fprintf(stderr,
          PROG " %s: wakeups %llu | tun_reads %llu inner_sent %llu udp_sends %llu stalls %llu send_err %llu | "
          "udp_rx %llu recvmmsg %llu segs %llu bad %llu tun_writes %llu tun_tx %llu tun_tx_err %llu\n",
          dev, st.wakeups, st.tun_reads, st.tun_rx_inner, st.udp_sends, st.stalls, st.send_err, st.udp_rx,
          st.recvmmsg_calls, st.segs_rx, st.bad, st.tun_writes, st.tun_tx, st.tun_tx_err);
  close(tun);
  close(udp);
}

#endif
