/* What the addon's plain-C parts share: no N-API here, so segment.c, coalesce.c and
 * endpoint.c also build into bench/ceiling/fwd-offload.c (the offload loop with no JS). */
#ifndef UDPTUN_CORE_H
#define UDPTUN_CORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

/* Endpoint encoding, also written and read by src/net/address.ts:
 * [0] family (4 or 6), [1] 0, [2..3] port (big endian), [4..19] address (IPv4 in 4..7). */
#define ENDPOINT_BYTES 20

/* Longest tunnel header the addon writes in front of an inner packet. */
#define HEADER_ROOM_MAX 32

/* Most packets one batch call takes (it sizes the per-thread message arrays). JS's batch
 * (BATCH, src/tunnel/constants.ts) is its own choice and may not exceed this; the unit
 * test test/unit/shared-values.test.ts checks. */
#define MAX_BATCH 256

/* Most datagrams the kernel joins into one GRO receive (its UDP_GRO_CNT_MAX). */
#define GRO_MAX_SEGS 64

/* A TUN write batch may hold every segment of a read batch of up to 64 GRO datagrams
 * (JS's BATCH; its WRITE_BATCH is checked against this like BATCH against MAX_BATCH). */
#define MAX_WRITE_BATCH (64 * GRO_MAX_SEGS)

/* One batch over a pooled slab: packet i lives at slab[offs[i] .. offs[i] + lens[i]). */
typedef struct {
  uint8_t *slab;
  size_t slab_len;
  int32_t *offs;
  int32_t *lens;
  uint32_t count;
} batch_t;

/* The IPv4-mapped IPv6 prefix ::ffff:0:0/96. */
extern const uint8_t V4_MAPPED[12];

struct sockaddr_storage;
/* Endpoint bytes -> sockaddr for a socket of the given family (IPv4 goes v4-mapped on a
 * dual-stack IPv6 socket). Returns the sockaddr length, or 0 if it cannot be expressed. */
unsigned endpoint_to_sockaddr(const uint8_t *ep, int v6sock, struct sockaddr_storage *ss);

/* send_segments' state array, by position (SEND_STATE_LEN entries). */
enum {
  SEND_STATE_RESUME,    /* segments of the first unfinished packet sent so far: pass back unchanged */
  SEND_STATE_GSO_ERRNO, /* set to an errno if the kernel refused UDP GSO, else 0 */
  SEND_STATE_SENDS,     /* set to the sends made (a GSO send of many datagrams counts once) */
  SEND_STATE_LEN
};

/* An optional step of send_segments between building a datagram and sending it
 * (WireGuard sealing, wg-seal.c). reserve() readies packet pkt's n datagrams: 0, or a
 * negative status that fails the packet before any of it is sent. wire() is the length on
 * the wire of a datagram of `plain` bytes. seal() turns the datagram whose bytes are v[0]
 * then v[1] into its wire form in the step's buffer (v[0] then points there, v[1] is
 * empty); send_segments keeps `used` plus a message's wire bytes within `cap`, and sets
 * `used` to 0 once the messages are sent. */
typedef struct seal_step {
  int32_t (*reserve)(struct seal_step *s, uint32_t pkt, uint32_t n);
  uint32_t (*wire)(const struct seal_step *s, uint32_t plain);
  void (*seal)(struct seal_step *s, uint32_t pkt, struct iovec *v);
  uint32_t used, cap;
} seal_step_t;

/* segment.c: split the batch's super-packets (each behind a virtio-net header) and send
 * them, each segment behind hdr[0..hdrlen), to dst[i] (ENDPOINT_BYTES each); with seal (or
 * NULL), each datagram sealed first. Returns the packets processed; status, bytes and
 * state as udpSendSegments documents (offload.c). */
uint32_t send_segments(int fd, int v6sock, const batch_t *b, const uint8_t *dst, int32_t *status, int32_t *bytes,
                       int32_t *state, const uint8_t *hdr, uint32_t hdrlen, int gso, seal_step_t *seal);

/* coalesce.c: write the batch's IP packets to a TUN fd with a virtio-net header, joining
 * runs of one flow (join bits: JOIN_TCP, JOIN_UDP). status[i] = 0 or -errno; *writes =
 * write calls made. Returns the packets written. */
#define JOIN_TCP 1
#define JOIN_UDP 2
int32_t write_joined(int fd, const batch_t *b, int32_t *status, int join, int32_t *writes);

#endif
