/* What the addon's plain-C parts share: no N-API here, so the same code also builds into
 * bench/ceiling/fwd.c (the forwarder with no JS in the loop). */
#ifndef UDPTUN_CORE_H
#define UDPTUN_CORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

/* Endpoint encoding shared with src/native/endpoint.ts:
 * [0] family (4 or 6), [1] 0, [2..3] port (big endian), [4..19] address (IPv4 in 4..7). */
#define ENDPOINT_BYTES 20

/* Longest tunnel header the addon writes in front of an inner packet. */
#define HEADER_ROOM_MAX 32

/* A batch never exceeds this many packets; JS sizes its batch arrays to it. */
#define MAX_BATCH 256

/* A TUN write batch may hold every segment of a batch of GRO datagrams (64 x 64). */
#define MAX_WRITE_BATCH 4096

/* One batch over a pooled slab: packet i lives at slab[offs[i] .. offs[i] + lens[i]). */
typedef struct {
  uint8_t *slab;
  size_t slab_len;
  int32_t *offs;
  int32_t *lens;
  uint32_t count;
} batch_t;

struct sockaddr_storage;
/* Endpoint bytes -> sockaddr for a socket of the given family (IPv4 goes v4-mapped on a
 * dual-stack IPv6 socket). Returns the sockaddr length, or 0 if it cannot be expressed. */
/* The IPv4-mapped IPv6 prefix ::ffff:0:0/96. */
extern const uint8_t V4_MAPPED[12];
unsigned endpoint_to_sockaddr(const uint8_t *ep, int v6sock, struct sockaddr_storage *ss);

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
 * them, each segment behind hdr[0..hl), to dst[i] (ENDPOINT_BYTES each); with seal (or
 * NULL), each datagram sealed first. Returns the packets processed; status, bytes and
 * state as udpSendSegments documents (offload.c). */
uint32_t send_segments(int fd, int v6sock, const batch_t *b, const uint8_t *dst, int32_t *status, int32_t *bytes,
                       int32_t *state, const uint8_t *hdr, uint32_t hl, int gso, seal_step_t *seal);

/* coalesce.c: write the batch's IP packets to a TUN fd with a virtio-net header, joining
 * runs of one flow (join bits: JOIN_TCP, JOIN_UDP). status[i] = 0 or -errno; *writes =
 * write calls made. Returns the packets written. */
#define JOIN_TCP 1
#define JOIN_UDP 2
int32_t write_joined(int fd, const batch_t *b, int32_t *status, int join, int32_t *writes);

#endif
