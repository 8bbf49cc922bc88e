/* Device path with offloads: super-packets read from a TUN device opened with
 * IFF_VNET_HDR are split into MTU-sized inner packets (headers and checksums fixed per
 * segment) and sent with UDP GSO: one sendmsg carries up to 64 datagrams of one size.
 *
 * Every wire datagram is a complete, correctly checksummed inner packet behind our
 * header, so a peer with offloads off (or another implementation) reads it as usual.
 * Segment headers are built in a scratch area; payloads are sent from the pool's slab
 * where they lie (two iovecs per segment), so the payload is copied once, by the kernel. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <sys/socket.h>
#include "core.h"
#include "csum.h"
#include "linux-compat.h"

#define SEG_MAX_MSGS 256
#define SEG_MAX_BLOCKS 1024      /* segment header blocks (and twice as many iovecs) per flush */
#define SEG_BLOCK 192            /* our header + IP header + TCP/UDP header, options included */
#define GSO_MAX_SEGS 64          /* the kernel's UDP_MAX_SEGMENTS on older kernels */
/* UDP payload per GSO send. A device's gso_max_size (64 KiB on veth) counts the link and
 * IP headers too; a send above it is segmented in software before the device, silently. */
#define GSO_MAX_BYTES 65000

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

enum { KIND_WHOLE, KIND_TCP, KIND_UDP };

/* l4: where the TCP/UDP header starts; l4_end: where it ends, so the headers every
 * segment repeats are ip[0 .. l4_end) and the payload to split follows. */
typedef struct {
  uint8_t *ip;
  uint32_t len, l4, l4_end, gso, payload, nsegs;
  int kind;
} superpacket_t;

/* A message is one split super-packet's segments (npkts 1), or a train of whole packets
 * of one size to one destination (npkts = segs), sent as one GSO send. */
typedef struct {
  uint32_t pkt, npkts, segs, bytes;
  int gso;
} msg_info_t;

static __thread struct mmsghdr msgs[SEG_MAX_MSGS];
static __thread msg_info_t infos[SEG_MAX_MSGS];
static __thread struct sockaddr_storage names[SEG_MAX_MSGS];
static __thread char cbufs[SEG_MAX_MSGS][CMSG_SPACE(sizeof(uint16_t))];
static __thread struct iovec iovs[SEG_MAX_BLOCKS * 2];
static __thread uint8_t blocks[SEG_MAX_BLOCKS][SEG_BLOCK];
static __thread superpacket_t parsed[MAX_BATCH];

/* Reads the virtio header in front of the packet and checks every length it implies.
 * A packet that needs no split gets its checksum completed here. 0, or -EBADMSG. */
static int parse(uint8_t *vh, uint32_t total, superpacket_t *p) {
  struct virtio_net_hdr h;
  if (total < sizeof h + 20) return -EBADMSG;
  memcpy(&h, vh, sizeof h);
  p->ip = vh + sizeof h;
  p->len = total - (uint32_t)sizeof h;
  int version = p->ip[0] >> 4;
  if (version != 4 && version != 6) return -EBADMSG;
  uint32_t iphl = version == 4 ? (uint32_t)(p->ip[0] & 15) * 4 : 40;
  int partial = (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) != 0;
  p->l4 = partial ? h.csum_start : iphl;
  uint8_t type = h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
  if (type == VIRTIO_NET_HDR_GSO_TCPV4 || type == VIRTIO_NET_HDR_GSO_TCPV6) {
    if (p->l4 < iphl || p->l4 + 20 > p->len) return -EBADMSG;
    p->kind = KIND_TCP;
    /* A data offset under 5 words is no TCP header: build_segment would write the sequence
     * and checksum fields past the headers it copied (past its block, with csum_start high). */
    if (p->ip[p->l4 + 12] < 0x50) return -EBADMSG;
    p->l4_end = p->l4 + (uint32_t)(p->ip[p->l4 + 12] >> 4) * 4;
  } else if (type == VIRTIO_NET_HDR_GSO_UDP_L4) {
    p->kind = KIND_UDP;
    p->l4_end = p->l4 + 8;
  } else if (type == VIRTIO_NET_HDR_GSO_NONE) {
    p->kind = KIND_WHOLE;
  } else {
    return -EBADMSG;
  }
  if (p->kind != KIND_WHOLE) {
    p->gso = h.gso_size;
    if (p->l4_end > p->len || p->l4_end + HEADER_ROOM_MAX > SEG_BLOCK || p->gso == 0 || p->l4 < iphl) return -EBADMSG;
    p->payload = p->len - p->l4_end;
    if (p->payload <= p->gso) p->kind = KIND_WHOLE; /* one segment: nothing to split */
  }
  if (p->kind == KIND_WHOLE) {
    if (partial) {
      /* The field holds the pseudo-header sum; summing from csum_start over it completes it. */
      if ((uint32_t)h.csum_start + h.csum_offset + 2 > p->len) return -EBADMSG;
      uint16_t c = (uint16_t)~csum_fold(csum_add(0, p->ip + h.csum_start, p->len - h.csum_start));
      if (h.csum_offset == 6 && c == 0) c = 0xffff; /* UDP: zero means "no checksum" */
      memcpy(p->ip + h.csum_start + h.csum_offset, &c, 2);
      /* Done: a packet sent again after a full socket must not be summed twice. */
      h.flags &= (uint8_t)~VIRTIO_NET_HDR_F_NEEDS_CSUM;
      memcpy(vh, &h, sizeof h);
    }
    p->nsegs = 1;
    return 0;
  }
  p->nsegs = (p->payload + p->gso - 1) / p->gso;
  return 0;
}

/* Writes our header and segment k's IP and transport headers into block; returns the
 * block's length and points *data and *dlen at the segment's payload in the slab. */
static uint32_t build_segment(const superpacket_t *p, uint32_t k, const uint8_t *hdr, uint32_t hdrlen,
                              uint8_t *block, const uint8_t **data, uint32_t *dlen) {
  uint32_t off = k * p->gso;
  uint32_t seglen = p->payload - off < p->gso ? p->payload - off : p->gso;
  uint8_t *ip = block + hdrlen;
  memcpy(block, hdr, hdrlen);
  memcpy(ip, p->ip, p->l4_end);
  if ((ip[0] >> 4) == 4) {
    put16(ip + 2, (uint16_t)(p->l4_end + seglen));
    put16(ip + 4, (uint16_t)(get16(ip + 4) + k)); /* IP ID +k, as the kernel's TSO does */
    ipv4_fix_csum(ip, (size_t)(ip[0] & 15) * 4);
  } else {
    put16(ip + 4, (uint16_t)(p->l4_end - 40 + seglen));
  }
  uint8_t *l4 = ip + p->l4;
  const uint8_t *payload = p->ip + p->l4_end + off;
  uint32_t l4len = p->l4_end - p->l4 + seglen;
  uint64_t sum;
  if (p->kind == KIND_TCP) {
    put32(l4 + 4, get32(l4 + 4) + off);
    if (k + 1 != p->nsegs) l4[13] &= (uint8_t)~(TCP_FIN | TCP_PSH); /* FIN and PSH end the data */
    if (k != 0) l4[13] &= (uint8_t)~TCP_CWR;                       /* CWR goes out once */
    l4[16] = l4[17] = 0;
    sum = csum_pseudo(ip, IPPROTO_TCP, l4len);
    sum = csum_add(sum, l4, p->l4_end - p->l4);
    uint16_t c = (uint16_t)~csum_fold(csum_add(sum, payload, seglen));
    memcpy(l4 + 16, &c, 2);
  } else {
    put16(l4 + 4, (uint16_t)l4len);
    l4[6] = l4[7] = 0;
    sum = csum_pseudo(ip, IPPROTO_UDP, l4len);
    sum = csum_add(sum, l4, 8);
    uint16_t c = (uint16_t)~csum_fold(csum_add(sum, payload, seglen));
    if (c == 0) c = 0xffff; /* zero means "no checksum" in UDP */
    memcpy(l4 + 6, &c, 2);
  }
  *data = payload;
  *dlen = seglen;
  return hdrlen + p->l4_end;
}

typedef struct {
  int fd;
  uint32_t nmsgs, nblocks, sent; /* messages built, header blocks used, messages sent */
  int32_t *status, *bytes;
  int stalled, gso_errno;
  uint32_t sends; /* messages the kernel took (a GSO send is one) */
  seal_step_t *seal;
} sender_t;

/* A datagram's length on the wire: sealed, if there is a seal step. */
static uint32_t wire_len(const sender_t *s, uint32_t plain) {
  return s->seal ? s->seal->wire(s->seal, plain) : plain;
}

/* Sends every built message. Stops at EAGAIN (stalled); a message that fails alone fails
 * its packets (status -errno), and the other messages of a failed split packet are skipped. */
static void flush(sender_t *s) {
  while (s->sent < s->nmsgs) {
    int r = sendmmsg(s->fd, msgs + s->sent, s->nmsgs - s->sent, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->stalled = 1;
        return;
      }
      int err = errno;
      msg_info_t *m = &infos[s->sent];
      if (m->gso && (err == EIO || err == EINVAL)) s->gso_errno = err;
      for (uint32_t k = 0; k < m->npkts; k++) s->status[m->pkt + k] = -err;
      uint32_t pkt = m->pkt;
      while (s->sent < s->nmsgs && infos[s->sent].pkt == pkt) s->sent++;
      continue;
    }
    s->sends += (uint32_t)r;
    for (int k = 0; k < r; k++, s->sent++) {
      msg_info_t *m = &infos[s->sent];
      if (m->npkts > 1) { /* a train: one datagram per packet */
        for (uint32_t j = 0; j < m->npkts; j++) {
          s->status[m->pkt + j] = 1;
          s->bytes[m->pkt + j] = (int32_t)parsed[m->pkt + j].len;
        }
        continue;
      }
      if (s->status[m->pkt] < 0) continue;
      s->status[m->pkt] += (int32_t)m->segs;
      s->bytes[m->pkt] += (int32_t)m->bytes;
    }
  }
  s->nmsgs = s->nblocks = s->sent = 0;
  if (s->seal) s->seal->used = 0;
}

/* Starts message s->nmsgs to name; returns its header for the caller to fill. */
static struct msghdr *begin_msg(sender_t *s, const struct sockaddr_storage *name, socklen_t namelen) {
  struct msghdr *mh = &msgs[s->nmsgs].msg_hdr;
  memset(mh, 0, sizeof *mh);
  memcpy(&names[s->nmsgs], name, namelen);
  mh->msg_name = &names[s->nmsgs];
  mh->msg_namelen = namelen;
  mh->msg_iov = &iovs[s->nblocks * 2];
  return mh;
}

/* Closes the message: with more than one datagram, a UDP_SEGMENT cmsg of their size. */
static void end_msg(sender_t *s, struct msghdr *mh, uint32_t datagrams, uint32_t size) {
  mh->msg_iovlen = datagrams * 2;
  if (datagrams > 1) {
    mh->msg_control = cbufs[s->nmsgs];
    mh->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t sz = (uint16_t)size;
    memcpy(CMSG_DATA(cm), &sz, sizeof sz);
  }
  s->nblocks += datagrams;
  s->nmsgs++;
}

/* Room for one more message of up to `blocks` datagrams of `wire` bytes in all, flushing
 * first if need be. */
static int room(sender_t *s, uint32_t blocks, uint32_t wire) {
  if (s->nmsgs == SEG_MAX_MSGS || s->nblocks + blocks > SEG_MAX_BLOCKS || (s->seal && s->seal->used + wire > s->seal->cap))
    flush(s);
  return !s->stalled;
}

/* See core.h; the argument contract is udpSendSegments' (offload.c). */
uint32_t send_segments(int fd, int v6sock, const batch_t *b, const uint8_t *dst, int32_t *status, int32_t *bytes,
                       int32_t *state, const uint8_t *hdr, uint32_t hdrlen, int gso, seal_step_t *seal) {
  sender_t s = {.fd = fd, .status = status, .bytes = bytes, .seal = seal};
  uint32_t skip = state[SEND_STATE_RESUME] > 0 ? (uint32_t)state[SEND_STATE_RESUME] : 0;
  for (uint32_t i = 0; i < b->count; i++) {
    bytes[i] = 0;
    status[i] = parse(b->slab + b->offs[i], (uint32_t)b->lens[i], &parsed[i]);
    if (seal && status[i] == 0) status[i] = seal->reserve(seal, i, parsed[i].nsegs);
  }
  for (uint32_t i = 0; i < b->count && !s.stalled;) {
    superpacket_t *p = &parsed[i];
    struct sockaddr_storage name;
    const uint8_t *ep = dst + (size_t)i * ENDPOINT_BYTES;
    socklen_t namelen = status[i] ? 0 : endpoint_to_sockaddr(ep, v6sock, &name);
    if (namelen == 0) {
      if (!status[i]) status[i] = -EAFNOSUPPORT;
      i++;
      skip = 0;
      continue;
    }
    if (p->kind == KIND_WHOLE) {
      /* A train: following whole packets to the same place, of the first's size (the
       * last may be shorter), while one send can take them. */
      uint32_t size = wire_len(&s, hdrlen + p->len), n = 1, total = size;
      if (gso) {
        while (i + n < b->count && n < GSO_MAX_SEGS && status[i + n] == 0 && parsed[i + n].kind == KIND_WHOLE &&
               wire_len(&s, hdrlen + parsed[i + n - 1].len) == size && wire_len(&s, hdrlen + parsed[i + n].len) <= size &&
               total + wire_len(&s, hdrlen + parsed[i + n].len) <= GSO_MAX_BYTES &&
               memcmp(ep, dst + (size_t)(i + n) * ENDPOINT_BYTES, ENDPOINT_BYTES) == 0) {
          total += wire_len(&s, hdrlen + parsed[i + n].len);
          n++;
        }
      }
      if (!room(&s, n, total)) break;
      struct msghdr *mh = begin_msg(&s, &name, namelen);
      for (uint32_t j = 0; j < n; j++) {
        struct iovec *v = &iovs[(s.nblocks + j) * 2];
        memcpy(blocks[s.nblocks + j], hdr, hdrlen);
        v[0] = (struct iovec){blocks[s.nblocks + j], hdrlen};
        v[1] = (struct iovec){parsed[i + j].ip, parsed[i + j].len};
        if (seal) seal->seal(seal, i + j, v);
      }
      infos[s.nmsgs] = (msg_info_t){.pkt = i, .npkts = n, .segs = n, .bytes = p->len, .gso = n > 1};
      end_msg(&s, mh, n, size);
      i += n;
      skip = 0;
      continue;
    }
    /* A super-packet: its segments, up to a send's worth per message. */
    uint32_t wire = wire_len(&s, hdrlen + p->l4_end + p->gso), per_msg = 1;
    if (gso) {
      per_msg = GSO_MAX_BYTES / wire;
      if (per_msg > GSO_MAX_SEGS) per_msg = GSO_MAX_SEGS;
      if (per_msg == 0) per_msg = 1;
    }
    for (uint32_t k = skip; k < p->nsegs;) {
      uint32_t take = p->nsegs - k < per_msg ? p->nsegs - k : per_msg;
      if (!room(&s, take, take * wire)) break;
      struct msghdr *mh = begin_msg(&s, &name, namelen);
      msg_info_t *mi = &infos[s.nmsgs];
      *mi = (msg_info_t){.pkt = i, .npkts = 1, .segs = take, .bytes = 0, .gso = take > 1};
      for (uint32_t j = 0; j < take; j++) {
        struct iovec *v = &iovs[(s.nblocks + j) * 2];
        const uint8_t *data;
        uint32_t dlen;
        uint32_t blen = build_segment(p, k + j, hdr, hdrlen, blocks[s.nblocks + j], &data, &dlen);
        v[0] = (struct iovec){blocks[s.nblocks + j], blen};
        v[1] = (struct iovec){(void *)data, dlen};
        if (seal) seal->seal(seal, i, v);
        mi->bytes += blen - hdrlen + dlen;
      }
      end_msg(&s, mh, take, wire);
      k += take;
    }
    i++;
    skip = 0;
  }
  if (!s.stalled) flush(&s);
  state[SEND_STATE_GSO_ERRNO] = s.gso_errno;
  state[SEND_STATE_SENDS] = (int32_t)s.sends;
  if (!s.stalled) {
    state[SEND_STATE_RESUME] = 0;
    return b->count;
  }
  /* The first message not sent belongs to the first unfinished packet. */
  uint32_t first = infos[s.sent].pkt;
  uint32_t before = first == 0 && state[SEND_STATE_RESUME] > 0 ? (uint32_t)state[SEND_STATE_RESUME] : 0;
  state[SEND_STATE_RESUME] = (int32_t)(before + (status[first] > 0 ? (uint32_t)status[first] : 0));
  return first;
}
