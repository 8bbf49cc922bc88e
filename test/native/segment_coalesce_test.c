/* Drives the C of both offload paths with no TUN device: send_segments (segment.c) splits
 * crafted super-packets and sends them to a loopback UDP socket that this program reads;
 * write_joined (coalesce.c) writes into a SOCK_SEQPACKET socketpair whose other end gives
 * back each virtio-net header + packet. Super-packets are built as the kernel hands them
 * over (NEEDS_CSUM, the checksum field holding the pseudo-header sum); every checksum is
 * judged by the plain sum in check.h, never by csum.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "../../src/native/core.h"
#include "check.h"

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

#define VH ((uint32_t)sizeof(struct virtio_net_hdr))
#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10
#define URG 0x20
#define ECE 0x40
#define CWR 0x80

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) << 16 | rd16(p + 2); }
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, v >> 16); wr16(p + 2, v); }
static uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

/* ---- packets, built and judged the reference way ---- */

typedef struct {
  int v6, udp;
  uint32_t payload; /* bytes after the transport header */
  uint8_t flags;    /* TCP flags */
  int df;           /* IPv4 don't-fragment */
  uint16_t id;      /* IPv4 ID */
  int ts;           /* TCP timestamps option (12 bytes of options) */
  int ipopt;        /* IPv4 options (4 bytes) */
  uint32_t seq;
  uint8_t seed;     /* payload pattern */
} pkt_t;

static int is_v4(const uint8_t *ip) { return (ip[0] >> 4) == 4; }
static uint32_t iphl_of(const uint8_t *ip) { return is_v4(ip) ? (uint32_t)(ip[0] & 15) * 4 : 40; }
static uint8_t proto_of(const uint8_t *ip) { return is_v4(ip) ? ip[9] : ip[6]; }
static uint8_t *l4_of(uint8_t *ip) { return ip + iphl_of(ip); }
static uint32_t hl_of(const uint8_t *ip) {
  uint32_t iphl = iphl_of(ip);
  return iphl + (proto_of(ip) == IPPROTO_TCP ? (uint32_t)(ip[iphl + 12] >> 4) * 4 : 8);
}
static uint32_t sum_field(const uint8_t *ip) { return proto_of(ip) == IPPROTO_TCP ? 16 : 6; }

static uint32_t pseudo(const uint8_t *ip, uint32_t l4len) {
  uint32_t s = is_v4(ip) ? ref_sum(0, ip + 12, 8) : ref_sum(0, ip + 8, 32);
  s = fold(s + proto_of(ip));
  return fold(s + l4len);
}
static int l4_ok(const uint8_t *ip, uint32_t len) {
  uint32_t iphl = iphl_of(ip);
  return fold(ref_sum(pseudo(ip, len - iphl), ip + iphl, len - iphl)) == 0xffff;
}
static int ip4_ok(const uint8_t *ip) { return !is_v4(ip) || fold(ref_sum(0, ip, iphl_of(ip))) == 0xffff; }

/* Full checksums (UDP's zero sent as 0xffff), or partial: the transport field holding the
 * folded pseudo-header sum, as the kernel leaves it with NEEDS_CSUM. */
static void set_sums(uint8_t *ip, uint32_t len, int partial) {
  uint32_t iphl = iphl_of(ip), l4len = len - iphl;
  if (is_v4(ip)) {
    ip[10] = ip[11] = 0;
    wr16(ip + 10, (uint16_t)~fold(ref_sum(0, ip, iphl)));
  }
  uint8_t *f = ip + iphl + sum_field(ip);
  f[0] = f[1] = 0;
  if (partial) {
    wr16(f, pseudo(ip, l4len));
    return;
  }
  uint16_t c = (uint16_t)~fold(ref_sum(pseudo(ip, l4len), ip + iphl, l4len));
  if (proto_of(ip) == IPPROTO_UDP && c == 0) c = 0xffff;
  wr16(f, c);
}

/* An IPv4 (10.77.0.2 -> 10.77.0.1) or IPv6 (fd00::2 -> fd00::1) packet; returns its length. */
static uint32_t build_ip(const pkt_t *p, uint8_t *ip, int partial) {
  uint32_t iphl = p->v6 ? 40 : 20 + (p->ipopt ? 4 : 0);
  uint32_t l4hl = p->udp ? 8 : 20 + (p->ts ? 12 : 0);
  uint32_t len = iphl + l4hl + p->payload;
  memset(ip, 0, iphl + l4hl);
  uint8_t proto = p->udp ? IPPROTO_UDP : IPPROTO_TCP;
  if (p->v6) {
    ip[0] = 0x60; /* flow label 0x12345 */
    ip[1] = 0x01;
    ip[2] = 0x23;
    ip[3] = 0x45;
    wr16(ip + 4, len - 40);
    ip[6] = proto;
    ip[7] = 64;
    ip[8] = ip[24] = 0xfd;
    ip[23] = 2;
    ip[39] = 1;
  } else {
    ip[0] = (uint8_t)(0x40 | iphl / 4);
    wr16(ip + 2, len);
    wr16(ip + 4, p->id);
    ip[6] = p->df ? 0x40 : 0;
    ip[8] = 64;
    ip[9] = proto;
    ip[12] = ip[16] = 10;
    ip[13] = ip[17] = 77;
    ip[15] = 2;
    ip[19] = 1;
    if (p->ipopt) ip[20] = ip[21] = ip[22] = 1; /* NOP NOP NOP EOL */
  }
  uint8_t *l4 = ip + iphl;
  wr16(l4, 40000);
  wr16(l4 + 2, 5201);
  if (p->udp) {
    wr16(l4 + 4, l4hl + p->payload);
  } else {
    wr32(l4 + 4, p->seq);
    wr32(l4 + 8, 0x0badcafe);
    l4[12] = (uint8_t)(l4hl / 4 << 4);
    l4[13] = p->flags;
    wr16(l4 + 14, 512);
    if (p->ts) {
      l4[20] = l4[21] = 1; /* NOP NOP, timestamps */
      l4[22] = 8;
      l4[23] = 10;
      wr32(l4 + 24, 0x11223344);
      wr32(l4 + 28, 0x55667788);
    }
  }
  for (uint32_t i = 0; i < p->payload; i++) ip[iphl + l4hl + i] = (uint8_t)(i * 31 + (i >> 8) + p->seed);
  set_sums(ip, len, partial);
  return len;
}

/* A super-packet as a TUN read with IFF_VNET_HDR gives it: virtio-net header + packet. */
static uint32_t build_super(const pkt_t *p, uint32_t gso_size, uint8_t *out) {
  uint32_t len = build_ip(p, out + VH, 1);
  struct virtio_net_hdr h = {0};
  uint8_t *ip = out + VH;
  h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  h.gso_type = p->udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : p->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
  h.hdr_len = (uint16_t)hl_of(ip);
  h.gso_size = (uint16_t)gso_size;
  h.csum_start = (uint16_t)iphl_of(ip);
  h.csum_offset = (uint16_t)sum_field(ip);
  memcpy(out, &h, VH);
  return VH + len;
}

static uint32_t segments_of(const uint8_t *ip, uint32_t len, uint32_t gso_size) {
  uint32_t payload = len - hl_of(ip);
  return payload <= gso_size ? 1 : (payload + gso_size - 1) / gso_size;
}

/* Segment k of the super-packet sp as the tests expect it, checksums set by the reference. */
static uint32_t expect_segment(const uint8_t *sp, uint32_t splen, uint32_t gso_size, uint32_t k, uint8_t *out) {
  uint32_t hl = hl_of(sp), payload = splen - hl, n = segments_of(sp, splen, gso_size);
  uint32_t off = k * gso_size, seglen = n == 1 ? payload : payload - off < gso_size ? payload - off : gso_size;
  memcpy(out, sp, hl);
  memcpy(out + hl, sp + hl + off, seglen);
  if (is_v4(out)) {
    wr16(out + 2, hl + seglen);
    wr16(out + 4, rd16(sp + 4) + k);
  } else {
    wr16(out + 4, hl - 40 + seglen);
  }
  uint8_t *l4 = l4_of(out);
  if (proto_of(out) == IPPROTO_TCP) {
    wr32(l4 + 4, rd32(l4 + 4) + off);
    if (k + 1 < n) l4[13] &= (uint8_t)~(FIN | PSH);
    if (k > 0) l4[13] &= (uint8_t)~CWR;
  } else {
    wr16(l4 + 4, hl - iphl_of(out) + seglen);
  }
  set_sums(out, hl + seglen, 0);
  return hl + seglen;
}

/* Got equals want byte for byte but for the checksum fields, whose values must be valid. */
static int same_packet(const uint8_t *got, uint32_t glen, const uint8_t *want, uint32_t wlen, const char *what) {
  EXPECT(glen == wlen, "%s: length %u, want %u", what, glen, wlen);
  uint32_t iphl = iphl_of(want), f = iphl + sum_field(want);
  for (uint32_t i = 0; i < wlen; i++) {
    if ((is_v4(want) && (i == 10 || i == 11)) || i == f || i == f + 1) continue;
    EXPECT(got[i] == want[i], "%s: byte %u is %02x, want %02x (header %u bytes)", what, i, got[i], want[i], hl_of(want));
  }
  EXPECT(ip4_ok(got), "%s: IPv4 header checksum %04x does not verify", what, rd16(got + 10));
  EXPECT(l4_ok(got, glen), "%s: transport checksum %04x does not verify", what, rd16(got + f));
  EXPECT(proto_of(got) != IPPROTO_UDP || rd16(got + f) != 0, "%s: UDP checksum 0 (means none)", what);
  return 1;
}

/* ---- sockets ---- */

static int rx4, rx6, tx4, tx6, join_w, join_r;
static uint8_t dgram[70000];
static uint8_t ep_rx4[ENDPOINT_BYTES], ep_rx6[ENDPOINT_BYTES];

static int open_rx(int v6, uint8_t *ep) {
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
  int big = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  struct timeval tv = {5, 0}; /* a datagram that never comes fails the case, not the run */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_storage ss = {0};
  socklen_t sl = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (v6) {
    ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
    ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
  } else {
    ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
    ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
    perror("receiver socket");
    exit(2);
  }
  memset(ep, 0, ENDPOINT_BYTES);
  ep[0] = v6 ? 6 : 4;
  uint16_t port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  wr16(ep + 2, port);
  if (v6) memcpy(ep + 4, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
  else memcpy(ep + 4, &((struct sockaddr_in *)&ss)->sin_addr, 4);
  return fd;
}

static void open_sockets(void) {
  rx4 = open_rx(0, ep_rx4);
  rx6 = open_rx(1, ep_rx6);
  tx4 = socket(AF_INET, SOCK_DGRAM, 0);
  tx6 = socket(AF_INET6, SOCK_DGRAM, 0); /* dual stack: IPv4 goes v4-mapped */
  int off = 0;
  setsockopt(tx6, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  int sv[2];
  if (tx4 < 0 || tx6 < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
    perror("sockets");
    exit(2);
  }
  join_w = sv[0];
  join_r = sv[1];
  /* A full queue is an error to report (EAGAIN), never a hang. */
  int big = 8 << 20;
  if (setsockopt(join_w, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
    setsockopt(join_w, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  fcntl(join_w, F_SETFL, O_NONBLOCK);
}

/* Empties a socket, so that what one failed case left behind cannot fail the next. */
static void drain(int fd) {
  while (recv(fd, dgram, sizeof dgram, MSG_DONTWAIT) >= 0) {
  }
}

/* ---- split ---- */

#define OURS_LEN 4
static const uint8_t ours[OURS_LEN] = {0x11, 0xa5, 0x5a, 0x00}; /* our header, as the caller passes it */
#define MAX_SPLIT 8
#define SUPER_ROOM (VH + 65536)
static uint8_t sp_slab[MAX_SPLIT * SUPER_ROOM];
static uint8_t sp_orig[MAX_SPLIT][65536];
static uint32_t sp_len[MAX_SPLIT];
static uint8_t want[70000];

/* The received inner segments, kept for a join. */
#define SEG_ROOM 2048
static uint8_t got_slab[256 * SEG_ROOM];
static int32_t got_offs[256], got_lens[256];
static uint32_t got_count;

typedef struct {
  uint8_t super[SUPER_ROOM]; /* filled by the case, as build_super writes it */
  uint32_t len, gso_size;
  int to6;                   /* destination: the IPv6 receiver */
} split_in_t;

/* Sends n super-packets (or whole packets) in one send_segments call and checks what the
 * receivers get: every expected segment, in order, and nothing else. */
static int split(split_in_t *in, uint32_t n, int gso, int v6sock) {
  int32_t offs[MAX_SPLIT], lens[MAX_SPLIT], status[MAX_SPLIT], bytes[MAX_SPLIT], state[SEND_STATE_LEN] = {0};
  uint8_t dst[MAX_SPLIT * ENDPOINT_BYTES];
  for (uint32_t i = 0; i < n; i++) {
    offs[i] = (int32_t)(i * SUPER_ROOM);
    lens[i] = (int32_t)in[i].len;
    memcpy(sp_slab + offs[i], in[i].super, in[i].len);
    sp_len[i] = in[i].len - VH;
    memcpy(sp_orig[i], in[i].super + VH, sp_len[i]);
    memcpy(dst + i * ENDPOINT_BYTES, in[i].to6 ? ep_rx6 : ep_rx4, ENDPOINT_BYTES);
  }
  drain(rx4);
  drain(rx6);
  batch_t b = {sp_slab, sizeof sp_slab, offs, lens, n};
  uint32_t r = send_segments(v6sock ? tx6 : tx4, v6sock, &b, dst, status, bytes, state, ours, OURS_LEN, gso, NULL);
  EXPECT(r == n, "processed %u of %u", r, n);
  EXPECT(state[SEND_STATE_RESUME] == 0 && state[SEND_STATE_GSO_ERRNO] == 0, "state %d %d", state[SEND_STATE_RESUME], state[SEND_STATE_GSO_ERRNO]);
  got_count = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t segs = segments_of(sp_orig[i], sp_len[i], in[i].gso_size), inner = 0;
    EXPECT(status[i] == (int32_t)segs, "packet %u: status %d, want %u segments", i, status[i], segs);
    for (uint32_t k = 0; k < segs; k++) {
      uint32_t wl = expect_segment(sp_orig[i], sp_len[i], in[i].gso_size, k, want);
      inner += wl;
      ssize_t got = recv(in[i].to6 ? rx6 : rx4, dgram, sizeof dgram, 0);
      EXPECT(got >= 0, "packet %u segment %u: nothing received (%s)", i, k, strerror(errno));
      EXPECT(got >= OURS_LEN && memcmp(dgram, ours, OURS_LEN) == 0, "packet %u segment %u: our header lost", i, k);
      char what[64];
      snprintf(what, sizeof what, "packet %u segment %u of %u", i, k, segs);
      if (!same_packet(dgram + OURS_LEN, (uint32_t)got - OURS_LEN, want, wl, what)) return 0;
      if (got_count < 256 && wl <= SEG_ROOM) {
        got_offs[got_count] = (int32_t)(got_count * SEG_ROOM);
        got_lens[got_count] = (int32_t)wl;
        memcpy(got_slab + got_offs[got_count], dgram + OURS_LEN, wl);
        got_count++;
      }
    }
    EXPECT(bytes[i] == (int32_t)inner, "packet %u: bytes %d, want %u", i, bytes[i], inner);
  }
  EXPECT(recv(rx4, dgram, sizeof dgram, MSG_DONTWAIT) < 0 && recv(rx6, dgram, sizeof dgram, MSG_DONTWAIT) < 0,
         "a datagram more than expected");
  return 1;
}

static split_in_t in[MAX_SPLIT];

static int split_one(pkt_t p, uint32_t gso_size, int gso) {
  in[0].len = build_super(&p, gso_size, in[0].super);
  in[0].gso_size = gso_size;
  in[0].to6 = 0;
  return split(in, 1, gso, 0);
}

/* Sets the last payload word of the standalone packet ip so that its UDP sum comes out zero. */
static void zero_udp_sum(uint8_t *ip, uint32_t len) {
  uint32_t iphl = iphl_of(ip);
  ip[len - 2] = ip[len - 1] = 0;
  ip[iphl + 6] = ip[iphl + 7] = 0;
  uint16_t s = fold(ref_sum(pseudo(ip, len - iphl), ip + iphl, len - iphl));
  wr16(ip + len - 2, 0xffff - s);
}

static int split_udp_zero_sum(int whole, int gso) {
  pkt_t p = {.udp = 1, .payload = whole ? 600 : 3000, .df = 1};
  uint32_t gso_size = 1000;
  uint8_t *ip = in[0].super + VH;
  in[0].len = build_super(&p, gso_size, in[0].super);
  uint32_t len = in[0].len - VH;
  /* The last segment alone, tuned, and its tuned word put back into the super-packet. */
  uint32_t n = segments_of(ip, len, gso_size);
  uint32_t wl = expect_segment(ip, len, gso_size, n - 1, want);
  zero_udp_sum(want, wl);
  memcpy(ip + len - 2, want + wl - 2, 2);
  if (whole) {
    struct virtio_net_hdr h = {0};
    memcpy(&h, in[0].super, VH);
    h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
    h.gso_size = 0;
    memcpy(in[0].super, &h, VH);
  }
  in[0].gso_size = gso_size;
  in[0].to6 = 0;
  if (!split(in, 1, gso, 0)) return 0;
  uint32_t last = (uint32_t)got_offs[got_count - 1];
  EXPECT(rd16(got_slab + last + 20 + 6) == 0xffff, "UDP checksum %04x, want ffff", rd16(got_slab + last + 26));
  return 1;
}

/* A batch mixing both inner families, whole packets (a pure ACK, a UDP train) and
 * super-packets, to both receivers. */
static int split_batch(int gso) {
  pkt_t tcp4 = {.payload = 7000, .flags = ACK | PSH, .df = 1, .id = 9, .seq = 77};
  pkt_t ack = {.v6 = 1, .payload = 0, .flags = ACK, .seq = 5};
  pkt_t udp = {.udp = 1, .payload = 1200, .id = 300};
  pkt_t udp6 = {.v6 = 1, .udp = 1, .payload = 4500};
  uint32_t n = 0;
  in[n].len = build_super(&tcp4, 1400, in[n].super), in[n].gso_size = 1400, in[n++].to6 = 0;
  in[n].len = build_super(&ack, 1400, in[n].super), in[n].gso_size = 1400, in[n++].to6 = 1;
  for (int k = 0; k < 3; k++) {
    udp.id = (uint16_t)(300 + k);
    udp.payload = k == 2 ? 700 : 1200; /* a train's last may be shorter */
    in[n].len = build_super(&udp, 1400, in[n].super), in[n].gso_size = 1400, in[n++].to6 = 0;
  }
  in[n].len = build_super(&udp6, 1000, in[n].super), in[n].gso_size = 1000, in[n++].to6 = 1;
  return split(in, n, gso, 1);
}

/* Malformed super-packets are refused one by one (-EBADMSG); the rest of the batch goes out. */
static int split_malformed(void) {
  drain(rx4);
  pkt_t good = {.payload = 2000, .flags = ACK, .df = 1, .seq = 1};
  int32_t offs[7], lens[7], status[7], bytes[7], state[SEND_STATE_LEN] = {0};
  uint8_t dst[7 * ENDPOINT_BYTES];
  struct virtio_net_hdr h;
  for (int i = 0; i < 7; i++) {
    offs[i] = i * (int32_t)SUPER_ROOM;
    lens[i] = (int32_t)build_super(&good, 1000, sp_slab + offs[i]);
    memcpy(dst + i * ENDPOINT_BYTES, ep_rx4, ENDPOINT_BYTES);
  }
  memcpy(&h, sp_slab + offs[1], VH);
  h.gso_type = 3; /* VIRTIO_NET_HDR_GSO_UDP: UFO, never offered */
  memcpy(sp_slab + offs[1], &h, VH);
  memcpy(&h, sp_slab + offs[2], VH);
  h.gso_size = 0;
  memcpy(sp_slab + offs[2], &h, VH);
  lens[3] = VH + 19; /* shorter than an IPv4 header */
  memcpy(&h, sp_slab + offs[4], VH);
  h.csum_start = (uint16_t)(lens[4] - VH - 10); /* transport header past the end */
  memcpy(sp_slab + offs[4], &h, VH);
  sp_slab[offs[5] + VH + 20 + 12] = 0x40; /* TCP data offset 4 words: shorter than a TCP header */
  batch_t b = {sp_slab, sizeof sp_slab, offs, lens, 7};
  uint32_t r = send_segments(tx4, 0, &b, dst, status, bytes, state, ours, OURS_LEN, 1, NULL);
  EXPECT(r == 7, "processed %u", r);
  int32_t want_status[7] = {2, -EBADMSG, -EBADMSG, -EBADMSG, -EBADMSG, -EBADMSG, 2};
  for (int i = 0; i < 7; i++) EXPECT(status[i] == want_status[i], "packet %d: status %d, want %d", i, status[i], want_status[i]);
  for (int k = 0; k < 4; k++) EXPECT(recv(rx4, dgram, sizeof dgram, 0) > 0, "segment %d not received", k);
  EXPECT(recv(rx4, dgram, sizeof dgram, MSG_DONTWAIT) < 0, "a refused packet was sent");
  return 1;
}

/* An IPv6 destination cannot go out of an IPv4 socket: that packet alone fails. */
static int split_wrong_family(void) {
  drain(rx4);
  pkt_t p = {.payload = 100, .flags = ACK, .df = 1};
  int32_t offs[2] = {0, (int32_t)SUPER_ROOM}, lens[2], status[2], bytes[2], state[SEND_STATE_LEN] = {0};
  uint8_t dst[2 * ENDPOINT_BYTES];
  lens[0] = (int32_t)build_super(&p, 1000, sp_slab);
  lens[1] = (int32_t)build_super(&p, 1000, sp_slab + SUPER_ROOM);
  memcpy(dst, ep_rx6, ENDPOINT_BYTES);
  memcpy(dst + ENDPOINT_BYTES, ep_rx4, ENDPOINT_BYTES);
  batch_t b = {sp_slab, sizeof sp_slab, offs, lens, 2};
  uint32_t r = send_segments(tx4, 0, &b, dst, status, bytes, state, ours, OURS_LEN, 1, NULL);
  EXPECT(r == 2 && status[0] == -EAFNOSUPPORT && status[1] == 1, "processed %u, status %d %d", r, status[0], status[1]);
  EXPECT(recv(rx4, dgram, sizeof dgram, 0) > 0, "the good packet was not sent");
  return 1;
}

/* ---- join ---- */

#define MAX_SEGS 80
#define SEG_SLOT 1600
static uint8_t seg[MAX_SEGS][SEG_SLOT];
static int32_t seg_offs[MAX_SEGS], seg_lens[MAX_SEGS];
static uint8_t msg[VH + 70000];

/* n segments of one flow as a receiver sees them: complete checksums, sequence numbers
 * running on, IPv4 IDs +1; sizes[i] bytes of payload each (size when sizes is NULL). */
static void flow(const pkt_t *p, int n, uint32_t size, const uint32_t *sizes) {
  uint32_t seq = p->seq;
  for (int i = 0; i < n; i++) {
    pkt_t q = *p;
    q.payload = sizes ? sizes[i] : size;
    q.seq = seq;
    q.id = (uint16_t)(p->id + i);
    q.seed = (uint8_t)i;
    seg_offs[i] = i * SEG_SLOT;
    seg_lens[i] = (int32_t)build_ip(&q, seg[i], 0);
    seq += q.payload;
  }
}
static void refresh(int i) { set_sums(seg[i], (uint32_t)seg_lens[i], 0); }

/* A joined write of segments [at, at + n): the first's headers with the whole's lengths and
 * the last's flags, every payload in order, a GSO virtio header, the partial checksum. */
static int check_joined(const uint8_t *m, uint32_t mlen, int at, int n) {
  const uint8_t *first = seg[at], *ip = m + VH;
  uint32_t iphl = iphl_of(first), hl = hl_of(first), total = 0;
  int tcp = proto_of(first) == IPPROTO_TCP;
  for (int k = 0; k < n; k++) total += (uint32_t)seg_lens[at + k] - hl;
  struct virtio_net_hdr h;
  memcpy(&h, m, VH);
  uint8_t type = tcp ? (is_v4(first) ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6) : VIRTIO_NET_HDR_GSO_UDP_L4;
  EXPECT(h.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM && h.gso_type == type && h.hdr_len == hl &&
             h.gso_size == seg_lens[at] - (int32_t)hl && h.csum_start == iphl && h.csum_offset == sum_field(first),
         "virtio header flags %u type %u hdr_len %u gso_size %u csum %u+%u", h.flags, h.gso_type, h.hdr_len,
         h.gso_size, h.csum_start, h.csum_offset);
  EXPECT(mlen == VH + hl + total, "joined length %u, want %u", mlen - VH, hl + total);
  uint8_t head[120];
  memcpy(head, first, hl);
  if (is_v4(head)) wr16(head + 2, hl + total);
  else wr16(head + 4, hl - 40 + total);
  if (tcp) head[iphl + 13] = seg[at + n - 1][iphl + 13];
  else wr16(head + iphl + 4, 8 + total);
  for (uint32_t i = 0; i < hl; i++) {
    if ((is_v4(head) && (i == 10 || i == 11)) || i == iphl + sum_field(head) || i == iphl + sum_field(head) + 1) continue;
    EXPECT(ip[i] == head[i], "joined header byte %u is %02x, want %02x", i, ip[i], head[i]);
  }
  EXPECT(ip4_ok(ip), "joined IPv4 header checksum does not verify");
  uint32_t at_byte = hl;
  for (int k = 0; k < n; k++) {
    uint32_t pl = (uint32_t)seg_lens[at + k] - hl;
    EXPECT(memcmp(ip + at_byte, seg[at + k] + hl, pl) == 0, "payload of segment %d differs", at + k);
    at_byte += pl;
  }
  uint32_t f = iphl + sum_field(ip);
  EXPECT(rd16(ip + f) == pseudo(ip, hl + total - iphl), "partial checksum %04x, want the pseudo-header sum %04x",
         rd16(ip + f), pseudo(ip, hl + total - iphl));
  /* Completed as the kernel does (sum from csum_start), it must verify. */
  static uint8_t done[70000];
  memcpy(done, ip, hl + total);
  wr16(done + f, (uint16_t)~fold(ref_sum(0, done + iphl, hl + total - iphl)));
  EXPECT(l4_ok(done, hl + total), "completed checksum does not verify");
  return 1;
}

/* Writes seg[0..n) with write_joined and checks the writes: parts[j] segments each, a 1
 * being the packet unchanged behind an empty virtio header. */
static int join(int n, int bits, const int *parts, int nparts) {
  int32_t status[MAX_SEGS], writes = -1;
  drain(join_r);
  batch_t b = {&seg[0][0], sizeof seg, seg_offs, seg_lens, (uint32_t)n};
  int32_t r = write_joined(join_w, &b, status, bits, &writes);
  EXPECT(r == n, "%d of %d written (status[0] %d)", r, n, status[0]);
  for (int i = 0; i < n; i++) EXPECT(status[i] == 0, "status[%d] %d", i, status[i]);
  EXPECT(writes == nparts, "%d writes, want %d", writes, nparts);
  int at = 0;
  for (int j = 0; j < nparts; j++) {
    ssize_t got = recv(join_r, msg, sizeof msg, MSG_DONTWAIT);
    EXPECT(got > 0, "write %d missing", j);
    if (parts[j] == 1) {
      static const uint8_t none[sizeof(struct virtio_net_hdr)] = {0};
      EXPECT(memcmp(msg, none, VH) == 0, "write %d (segment %d alone): virtio header not empty", j, at);
      EXPECT((uint32_t)got == VH + (uint32_t)seg_lens[at] && memcmp(msg + VH, seg[at], (size_t)seg_lens[at]) == 0,
             "write %d (segment %d alone): packet changed", j, at);
    } else {
      EXPECT(msg[1] != VIRTIO_NET_HDR_GSO_NONE, "write %d: segment %d alone, want a run of %d", j, at, parts[j]);
      if (!check_joined(msg, (uint32_t)got, at, parts[j])) return 0;
    }
    at += parts[j];
  }
  EXPECT(recv(join_r, msg, sizeof msg, MSG_DONTWAIT) < 0, "more writes than counted");
  return 1;
}
#define PARTS(...) (const int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int))

/* A 4-segment flow of base, changed from its third segment on: the first two join, then
 * the last two. */
#define CHANGED_FROM_2(base, label, change)                                 \
  do {                                                                      \
    flow(base, 4, 1000, NULL);                                              \
    for (int i = 2; i < 4; i++) {                                           \
      change;                                                               \
      refresh(i);                                                           \
    }                                                                       \
    report("join refused: " label, join(4, JOIN_TCP | JOIN_UDP, PARTS(2, 2))); \
  } while (0)

/* ---- split, then join: the super-packet comes back byte for byte ---- */

static int round_trip(pkt_t p, uint32_t gso_size, int gso) {
  if (!split_one(p, gso_size, gso)) return 0;
  uint32_t n = got_count;
  EXPECT(n > 1, "only %u segment", n);
  int32_t status[256], writes = 0;
  drain(join_r);
  batch_t b = {got_slab, sizeof got_slab, got_offs, got_lens, n};
  int32_t r = write_joined(join_w, &b, status, JOIN_TCP | JOIN_UDP, &writes);
  EXPECT(r == (int32_t)n && writes == 1, "%d of %u written in %d writes", r, n, writes);
  ssize_t got = recv(join_r, msg, sizeof msg, MSG_DONTWAIT);
  EXPECT(got == (ssize_t)in[0].len, "joined %zd bytes, the super-packet had %u", got, in[0].len);
  for (uint32_t i = 0; i < in[0].len; i++)
    EXPECT(msg[i] == in[0].super[i], "byte %u (virtio header %u) is %02x, want %02x", i, VH, msg[i], in[0].super[i]);
  return 1;
}

int main(void) {
  open_sockets();
  pkt_t tcp4 = {.payload = 10000, .flags = ACK | PSH | FIN | CWR, .df = 1, .id = 0xfffd, .seq = 0xffffe000};
  pkt_t tcp6 = {.v6 = 1, .payload = 9000, .flags = ACK | PSH, .ts = 1, .seq = 1};
  pkt_t udp4 = {.udp = 1, .payload = 5000, .id = 7};
  pkt_t udp6 = {.v6 = 1, .udp = 1, .payload = 4000};
  pkt_t opt4 = {.payload = 3000, .flags = ACK, .ipopt = 1, .id = 1, .seq = 9};
  pkt_t many = {.payload = 20000, .flags = ACK, .df = 1, .seq = 3};
  pkt_t full = {.payload = 65535 - 40, .flags = ACK | PSH, .seq = 12345, .id = 40};
  pkt_t ack = {.payload = 0, .flags = ACK, .seq = 1};
  for (int gso = 0; gso < 2; gso++) {
    char name[160];
#define CASE(kind, label, expr)                                                       \
    snprintf(name, sizeof name, "%s%s: %s", kind, gso ? " (UDP GSO)" : "", label); \
    report(name, expr)
#define SPLIT(label, expr) CASE("split", label, expr)
#define ROUND_TRIP(label, expr) CASE("split -> join", label, expr)
    SPLIT("TCP/IPv4: sequence +gso, FIN/PSH on the last, CWR on the first, IP ID +k across 0xffff", split_one(tcp4, 1380, gso));
    SPLIT("TCP/IPv6 with timestamps: options on every segment, payload length per segment", split_one(tcp6, 1368, gso));
    SPLIT("UDP/IPv4 (USO): UDP length and checksum per datagram, IP ID +k", split_one(udp4, 1200, gso));
    SPLIT("UDP/IPv6, payload a multiple of gso_size", split_one(udp6, 1000, gso));
    SPLIT("TCP/IPv4 with IPv4 options", split_one(opt4, 1000, gso));
    SPLIT("100 segments, more than one GSO send", split_one(many, 200, gso));
    SPLIT("a 64 KiB super-packet", split_one(full, 1448, gso));
    SPLIT("a whole packet (pure ACK) has its partial checksum completed", split_one(ack, 1400, gso));
    SPLIT("a batch: both families, a pure ACK, a UDP train, super-packets, both receivers", split_batch(gso));
    SPLIT("a UDP segment whose checksum is zero goes out as 0xffff", split_udp_zero_sum(0, gso));
    SPLIT("a whole UDP packet whose checksum is zero goes out as 0xffff", split_udp_zero_sum(1, gso));
    ROUND_TRIP("TCP/IPv4 (DF, ACK|PSH) comes back byte for byte", round_trip((pkt_t){.payload = 9000, .flags = ACK | PSH, .df = 1, .id = 5, .seq = 7}, 1380, gso));
    ROUND_TRIP("TCP/IPv4 without DF, IP ID across 0xffff", round_trip((pkt_t){.payload = 6000, .flags = ACK, .id = 0xfffe, .seq = 0xfffffff0}, 1000, gso));
    ROUND_TRIP("TCP/IPv6 with timestamps", round_trip(tcp6, 1368, gso));
    ROUND_TRIP("UDP/IPv4", round_trip(udp4, 1200, gso));
    ROUND_TRIP("UDP/IPv6", round_trip(udp6, 1000, gso));
    ROUND_TRIP("a 64 KiB TCP/IPv4 super-packet", round_trip(full, 1448, gso));
  }
  /* ECN in gso_type is a flag, not another type. */
  {
    in[0].len = build_super(&tcp4, 1380, in[0].super);
    in[0].super[1] |= VIRTIO_NET_HDR_GSO_ECN;
    in[0].gso_size = 1380;
    in[0].to6 = 0;
    report("split: gso_type with the ECN bit is split like any TCP super-packet", split(in, 1, 1, 0));
  }
  report("split: malformed super-packets refused alone (-EBADMSG), the rest sent", split_malformed());
  report("split: an IPv6 destination on an IPv4 socket fails that packet alone", split_wrong_family());

  pkt_t t4 = {.flags = ACK, .df = 1, .id = 100, .seq = 1000};
  pkt_t t6 = {.v6 = 1, .flags = ACK, .seq = 1000};
  pkt_t tts = {.flags = ACK, .df = 1, .ts = 1, .seq = 1000};
  pkt_t u4 = {.udp = 1, .df = 1};
  pkt_t u6 = {.v6 = 1, .udp = 1};
  const int both = JOIN_TCP | JOIN_UDP;
  flow(&t4, 4, 1000, NULL);
  report("join: 4 TCP/IPv4 segments of a flow, one write", join(4, both, PARTS(4)));
  flow(&t6, 4, 1000, NULL);
  report("join: 4 TCP/IPv6 segments of a flow, one write", join(4, both, PARTS(4)));
  flow(&tts, 4, 1000, NULL);
  report("join: 4 TCP segments with the same timestamps, one write", join(4, both, PARTS(4)));
  CHANGED_FROM_2(&t4, "a sequence gap", wr32(l4_of(seg[i]) + 4, rd32(l4_of(seg[i]) + 4) + 1));
  CHANGED_FROM_2(&t4, "a repeated sequence number (retransmission)", wr32(l4_of(seg[i]) + 4, rd32(l4_of(seg[i]) + 4) - 1000));
  CHANGED_FROM_2(&t4, "the ack changed", wr32(l4_of(seg[i]) + 8, rd32(l4_of(seg[i]) + 8) + 1000));
  CHANGED_FROM_2(&t4, "the window changed", wr16(l4_of(seg[i]) + 14, 513));
  CHANGED_FROM_2(&tts, "the options changed (a new timestamp)", wr32(l4_of(seg[i]) + 24, 0x11223345));
  {
    flow(&tts, 4, 1000, NULL);
    pkt_t q = t4;
    q.payload = 1000, q.seq = rd32(l4_of(seg[2]) + 4), q.id = 102, q.seed = 2;
    seg_lens[2] = (int32_t)build_ip(&q, seg[2], 0);
    report("join refused: options gone (another header length)", join(4, both, PARTS(2, 1, 1)));
  }
  static const struct { uint8_t flags; const char *name; } bad_flags[] = {
      {ACK | SYN, "SYN"}, {ACK | FIN, "FIN"}, {ACK | RST, "RST"}, {ACK | URG, "URG"},
      {ACK | ECE, "ECE"}, {ACK | CWR, "CWR"}, {PSH, "PSH without ACK"}, {0, "no flags"}};
  for (size_t k = 0; k < sizeof bad_flags / sizeof bad_flags[0]; k++) {
    char name[100];
    flow(&t4, 4, 1000, NULL);
    l4_of(seg[2])[13] = bad_flags[k].flags, refresh(2);
    snprintf(name, sizeof name, "join refused: %s in the middle", bad_flags[k].name);
    report(name, join(4, both, PARTS(2, 1, 1)));
  }
  flow(&t4, 4, 1000, NULL);
  l4_of(seg[3])[13] = ACK | FIN, refresh(3);
  report("join refused: FIN on the last stays alone", join(4, both, PARTS(3, 1)));
  flow(&t4, 4, 1000, NULL);
  l4_of(seg[1])[13] = ACK | PSH, refresh(1);
  report("join: PSH ends a run", join(4, both, PARTS(2, 2)));
  flow(&t4, 4, 1000, NULL);
  l4_of(seg[3])[13] = ACK | PSH, refresh(3);
  report("join: PSH on the last is kept on the joined packet", join(4, both, PARTS(4)));
  flow(&t4, 4, 0, (const uint32_t[]){1000, 500, 1000, 1000});
  report("join refused: after a short segment", join(4, both, PARTS(2, 2)));
  flow(&t4, 4, 0, (const uint32_t[]){1000, 1200, 1000, 1000});
  report("join refused: a segment longer than the first", join(4, both, PARTS(1, 2, 1)));
  flow(&t4, 4, 0, (const uint32_t[]){1000, 1000, 1000, 10});
  report("join: a short last segment", join(4, both, PARTS(4)));
  flow(&t4, 4, 0, (const uint32_t[]){0, 0, 0, 0});
  report("join refused: no payload (pure ACKs)", join(4, both, PARTS(1, 1, 1, 1)));

  pkt_t nodf = t4;
  nodf.df = 0;
  flow(&nodf, 4, 1000, NULL);
  report("join: without DF, IP IDs running on by one", join(4, both, PARTS(4)));
  nodf.id = 0xfffe;
  flow(&nodf, 4, 1000, NULL);
  report("join: without DF, IP IDs running on across 0xffff", join(4, both, PARTS(4)));
  nodf.id = 100;
  CHANGED_FROM_2(&nodf, "without DF, an IP ID that does not run on", wr16(seg[i] + 4, 500 + (uint32_t)i));
  flow(&t4, 4, 1000, NULL);
  for (int i = 0; i < 4; i++) wr16(seg[i] + 4, (uint32_t)(7919 * i * i)), refresh(i);
  report("join: with DF, any IP IDs", join(4, both, PARTS(4)));
  CHANGED_FROM_2(&t4, "DF cleared", seg[i][6] = 0);
  flow(&nodf, 4, 1000, NULL);
  seg[2][6] = 0x20, refresh(2);
  report("join refused: a fragment (MF)", join(4, both, PARTS(2, 1, 1)));
  flow(&nodf, 4, 1000, NULL);
  seg[2][7] = 0x10, refresh(2);
  report("join refused: a fragment (offset)", join(4, both, PARTS(2, 1, 1)));
  pkt_t opts = t4;
  opts.ipopt = 1;
  flow(&opts, 4, 1000, NULL);
  report("join refused: IPv4 options", join(4, both, PARTS(1, 1, 1, 1)));
  CHANGED_FROM_2(&t4, "the TOS changed (ECN CE)", seg[i][1] = 0x03);
  CHANGED_FROM_2(&t4, "the TTL changed", seg[i][8] = 63);
  CHANGED_FROM_2(&t4, "another source address", seg[i][15] = 3);
  CHANGED_FROM_2(&t4, "another destination address", seg[i][19] = 3);
  CHANGED_FROM_2(&t4, "another destination port", wr16(l4_of(seg[i]) + 2, 5202));
  flow(&t4, 4, 1000, NULL);
  for (int i = 1; i < 4; i += 2) wr16(l4_of(seg[i]), 40001), refresh(i);
  report("join refused: two flows interleaved", join(4, both, PARTS(1, 1, 1, 1)));
  CHANGED_FROM_2(&t6, "IPv6 flow label changed", seg[i][3] ^= 1);
  CHANGED_FROM_2(&t6, "IPv6 traffic class changed", seg[i][1] |= 0x30);
  CHANGED_FROM_2(&t6, "IPv6 hop limit changed", seg[i][7] = 63);
  flow(&t6, 4, 1000, NULL);
  for (int i = 0; i < 4; i++) seg[i][6] = 60; /* destination options first: not TCP/UDP as next header */
  report("join refused: IPv6 with an extension header", join(4, both, PARTS(1, 1, 1, 1)));

  flow(&t4, 70, 500, NULL);
  report("join: at most 64 segments a write", join(70, both, PARTS(64, 6)));
  flow(&t4, 50, 1400, NULL);
  report("join: at most 65535 bytes a write", join(50, both, PARTS(46, 4)));
  {
    uint32_t sizes[47];
    for (int i = 0; i < 46; i++) sizes[i] = 1400;
    sizes[46] = 1095;
    flow(&t4, 47, 0, sizes);
    report("join: exactly 65535 bytes in one write", join(47, both, PARTS(47)));
    sizes[46] = 1096;
    flow(&t4, 47, 0, sizes);
    report("join refused: one byte over 65535", join(47, both, PARTS(46, 1)));
  }
  flow(&t4, 4, 1000, NULL);
  report("join: TCP not joined with JOIN_UDP only", join(4, JOIN_UDP, PARTS(1, 1, 1, 1)));
  flow(&t4, 4, 1000, NULL);
  report("join: nothing joined with no join bits", join(4, 0, PARTS(1, 1, 1, 1)));

  flow(&u4, 4, 1000, NULL);
  report("join: 4 UDP/IPv4 datagrams of a flow, one write", join(4, both, PARTS(4)));
  flow(&u6, 4, 1000, NULL);
  report("join: 4 UDP/IPv6 datagrams of a flow, one write", join(4, both, PARTS(4)));
  flow(&u4, 4, 1000, NULL);
  report("join: UDP not joined with JOIN_TCP only", join(4, JOIN_TCP, PARTS(1, 1, 1, 1)));
  flow(&u4, 4, 0, (const uint32_t[]){1000, 1000, 1000, 300});
  report("join: UDP, a short last datagram", join(4, both, PARTS(4)));
  flow(&u4, 4, 0, (const uint32_t[]){1000, 1200, 1000, 1000});
  report("join refused: UDP datagram longer than the first", join(4, both, PARTS(1, 2, 1)));
  flow(&u4, 4, 1000, NULL);
  wr16(l4_of(seg[2]) + 4, 1009), refresh(2);
  report("join refused: UDP length field not the packet's", join(4, both, PARTS(2, 1, 1)));
  CHANGED_FROM_2(&u4, "UDP, another source port", wr16(l4_of(seg[i]), 40001));
  {
    flow(&u4, 2, 1000, NULL);
    pkt_t q = t4;
    q.payload = 1000, q.id = 102;
    seg_offs[2] = 2 * SEG_SLOT;
    seg_lens[2] = (int32_t)build_ip(&q, seg[2], 0);
    report("join refused: TCP after UDP of the same addresses", join(3, both, PARTS(2, 1)));
  }
  {
    flow(&t4, 3, 1000, NULL);
    int32_t status[3], writes = 0;
    batch_t b = {&seg[0][0], sizeof seg, seg_offs, seg_lens, 3};
    int32_t r = write_joined(-1, &b, status, both, &writes);
    int ok = r == 0 && writes == 1 && status[0] == -EBADF && status[1] == -EBADF && status[2] == -EBADF;
    snprintf(why, sizeof why, "returned %d, %d writes, status %d %d %d", r, writes, status[0], status[1], status[2]);
    report("join: a failed write fails each of its segments (-errno)", ok);
  }
  return finish();
}
