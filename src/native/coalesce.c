/* Network path with offloads: inner packets are written to a TUN device opened with
 * IFF_VNET_HDR. Consecutive TCP segments of one flow are joined into one super-packet
 * and written once with a GSO virtio header; the kernel treats it like a TSO packet from
 * a NIC. This is where most of the offload gain is: one TUN write per run of up to 64
 * segments instead of one per packet. Payloads are written from the slab where they
 * lie (writev); only the joined headers are built in a scratch area.
 *
 * A TCP run only takes segments that the receiving TCP would have accepted one by one as
 * the same thing: same flow, contiguous sequence numbers, identical ack, window and
 * options, only ACK (PSH may end a run), all full-sized but the last. A UDP run (with USO)
 * takes datagrams of one flow and one size (the last may be shorter); the kernel hands
 * them to the socket one by one again. The joined packet
 * is written with a partial checksum (NEEDS_CSUM): its integrity rests on the outer UDP
 * checksum, which the kernel verified on receipt. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <sys/uio.h>
#include "core.h"
#include "csum.h"
#include "linux-compat.h"

#define JOIN_MAX_SEGS 64
#define JOIN_MAX_LEN 65535 /* IPv4 total length, IPv6 payload length */
#define TCP_ACK 0x10
#define TCP_PSH 0x08

typedef struct {
  const uint8_t *ip;
  uint32_t len, iphl, hl, payload, seq;
  uint8_t proto;
} segment_t;

/* Fills s if the packet may start or join a run: IPv4 without options or fragments, or
 * IPv6 with TCP or UDP as the next header;
 * TCP with ACK (and maybe PSH) only, UDP with a length that matches; some payload. */
static int joinable(const uint8_t *ip, uint32_t len, int kinds, segment_t *s) {
  uint32_t iphl;
  uint8_t proto;
  if ((ip[0] >> 4) == 4) {
    if (len < 28 || ip[0] != 0x45 || (get16(ip + 6) & 0xbfff) != 0) return 0;
    iphl = 20;
    proto = ip[9];
  } else {
    if (len < 48) return 0;
    iphl = 40;
    proto = ip[6];
  }
  const uint8_t *l4 = ip + iphl;
  if (proto == IPPROTO_TCP && (kinds & JOIN_TCP)) {
    if (len < iphl + 20) return 0;
    uint32_t tcphl = (uint32_t)(l4[12] >> 4) * 4;
    if (tcphl < 20 || iphl + tcphl >= len || (l4[13] & (uint8_t)~TCP_PSH) != TCP_ACK) return 0;
    s->hl = iphl + tcphl;
    s->seq = get32(l4 + 4);
  } else if (proto == IPPROTO_UDP && (kinds & JOIN_UDP)) {
    if (get16(l4 + 4) != len - iphl || len <= iphl + 8) return 0;
    s->hl = iphl + 8;
    s->seq = 0;
  } else {
    return 0;
  }
  s->ip = ip;
  s->len = len;
  s->iphl = iphl;
  s->proto = proto;
  s->payload = len - s->hl;
  return 1;
}

/* Whether next continues the run that starts with first and ends with last. */
static int continues(const segment_t *first, const segment_t *last, const segment_t *next, uint32_t total) {
  const uint8_t *a = first->ip, *b = next->ip;
  if (next->proto != first->proto || next->hl != first->hl || next->iphl != first->iphl) return 0;
  if (next->payload > first->payload || last->payload != first->payload) return 0;
  if (first->hl + total + next->payload > JOIN_MAX_LEN) return 0;
  if ((a[0] >> 4) == 4) {
    /* TOS; flags; TTL, protocol; addresses */
    if (a[1] != b[1] || a[6] != b[6] || a[8] != b[8] || a[9] != b[9] || memcmp(a + 12, b + 12, 8) != 0) return 0;
    /* Without DF the IP ID must run on by one: the kernel numbers the segments it cuts
     * from the joined packet that way, so each is rebuilt exactly. */
    if (!(a[6] & 0x40) && get16(next->ip + 4) != (uint16_t)(get16(last->ip + 4) + 1)) return 0;
  } else {
    /* version, traffic class, flow label; next header, hop limit; addresses */
    if (memcmp(a, b, 4) != 0 || a[6] != b[6] || a[7] != b[7] || memcmp(a + 8, b + 8, 32) != 0) return 0;
  }
  const uint8_t *ta = a + first->iphl, *tb = b + next->iphl;
  if (first->proto == IPPROTO_UDP) return memcmp(ta, tb, 4) == 0; /* ports */
  if (last->ip[last->iphl + 13] & TCP_PSH) return 0;
  if (next->seq != last->seq + last->payload) return 0;
  /* ports; ack; data offset, window; options (timestamps change and end a run) */
  return memcmp(ta, tb, 4) == 0 && memcmp(ta + 8, tb + 8, 5) == 0 && memcmp(ta + 14, tb + 14, 2) == 0 &&
         memcmp(ta + 20, tb + 20, first->hl - first->iphl - 20) == 0;
}

static __thread struct iovec iovs[JOIN_MAX_SEGS + 1];
static __thread uint8_t head[sizeof(struct virtio_net_hdr) + 120];

static ssize_t write_all(int fd, struct iovec *v, int n) {
  ssize_t r;
  do r = writev(fd, v, n);
  while (r < 0 && errno == EINTR);
  return r;
}

/* Writes segs[0..n) as one super-packet: the first's headers with the lengths, flags and
 * checksums of the whole, then every payload. The kernel splits it again (TSO/USO) where
 * it must; a local TCP socket takes it whole. */
static ssize_t write_run(int fd, const segment_t *segs, uint32_t n, uint32_t total) {
  const segment_t *f = &segs[0];
  struct virtio_net_hdr vh = {0};
  uint8_t *ip = head + sizeof vh;
  memcpy(ip, f->ip, f->hl);
  uint8_t *l4 = ip + f->iphl;
  uint32_t l4len = f->hl - f->iphl + total;
  int v4 = (ip[0] >> 4) == 4;
  if (v4) {
    put16(ip + 2, (uint16_t)(f->hl + total));
    ipv4_fix_csum(ip, 20);
  } else {
    put16(ip + 4, (uint16_t)l4len);
  }
  /* Partial checksum: the folded, non-complemented pseudo-header sum of the whole. */
  uint16_t c = csum_fold(csum_pseudo(ip, f->proto, l4len));
  if (f->proto == IPPROTO_TCP) {
    l4[13] = segs[n - 1].ip[f->iphl + 13]; /* PSH, if the last had it */
    memcpy(l4 + 16, &c, 2);
    vh.gso_type = v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
    vh.csum_offset = 16;
  } else {
    put16(l4 + 4, (uint16_t)l4len);
    memcpy(l4 + 6, &c, 2);
    vh.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
    vh.csum_offset = 6;
  }
  vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  vh.hdr_len = (uint16_t)f->hl;
  vh.gso_size = (uint16_t)f->payload;
  vh.csum_start = (uint16_t)f->iphl;
  memcpy(head, &vh, sizeof vh);
  iovs[0] = (struct iovec){head, sizeof vh + f->hl};
  for (uint32_t k = 0; k < n; k++) iovs[k + 1] = (struct iovec){(void *)(segs[k].ip + f->hl), segs[k].payload};
  return write_all(fd, iovs, (int)n + 1);
}

static __thread segment_t run[JOIN_MAX_SEGS];

/* See core.h; the argument contract is tunWriteOffload's (offload.c). */
int32_t write_joined(int fd, const batch_t *b, int32_t *status, int join, int32_t *writes_out) {
  static const struct virtio_net_hdr none = {0};
  int32_t ok = 0, writes = 0;
  uint32_t i = 0;
  while (i < b->count) {
    uint8_t *ip = b->slab + b->offs[i];
    uint32_t n = 1, total = 0;
    if (join && joinable(ip, (uint32_t)b->lens[i], join, &run[0])) {
      total = run[0].payload;
      while (i + n < b->count && n < JOIN_MAX_SEGS &&
             joinable(b->slab + b->offs[i + n], (uint32_t)b->lens[i + n], join, &run[n]) &&
             continues(&run[0], &run[n - 1], &run[n], total)) {
        total += run[n].payload;
        n++;
      }
    }
    ssize_t r;
    if (n > 1) {
      r = write_run(fd, run, n, total);
    } else {
      struct iovec v[2] = {{(void *)&none, sizeof none}, {ip, (size_t)b->lens[i]}};
      r = write_all(fd, v, 2);
    }
    writes++;
    for (uint32_t k = 0; k < n; k++) status[i + k] = r < 0 ? -errno : 0;
    if (r >= 0) ok += (int32_t)n;
    i += n;
  }
  *writes_out = writes;
  return ok;
}
