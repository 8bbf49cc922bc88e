/* The peer filter's program (classic BPF), in two shapes (enum filter_mode):
 *   FILTER_PLAIN: admits only datagrams whose source ip:port is one of the given endpoints
 *     (core.h's 20-byte form); everything else is dropped.
 *   FILTER_WIREGUARD: the same endpoints admit everything; any other source gets in only with
 *     a datagram that is exactly a handshake message (UDP payload 148 bytes starting 01 00 00 00,
 *     92 with 02 00 00 00, or 64 with 03 00 00 00), so a peer with no configured endpoint, or
 *     one whose address changed, can still reach us, while data messages (type 4) from unknown
 *     sources and junk of any other shape never reach the receive buffer.
 * Plain C, no N-API: filter.c attaches it (udpFilter), test/native/peer_filter_test.c runs it
 * on real sockets.
 *
 * What a UDP socket filter sees (probed on 6.18 for IPv4, IPv6 and dual-stack sockets):
 *   - skb->data is the UDP header, so `ldh [0]` is the source port whatever came before it
 *     (IPv6 extension headers included), the payload starts at offset 8, and the skb length
 *     (`ld len`) is the UDP length, 8 + payload: the kernel has trimmed the skb to it, and a
 *     payload of 148 bytes is admitted where 140, 147, 149 and 156 are not;
 *   - SKF_NET_OFF loads reach the IP header, independent of the link layer;
 *   - the packet as it arrived: a dual-stack AF_INET6 socket sees IPv4 traffic with an IPv4
 *     header and SKF_AD_PROTOCOL 0x0800 (there is no v4-mapped form on the wire), so every
 *     program dispatches on the protocol, whatever the socket's family;
 *   - with UDP_GRO on the socket, a GRO-merged train of datagrams is judged once, as one skb
 *     of the summed length (probed with a UDP GSO send, which arrives as such an skb): from
 *     a known endpoint that changes nothing; a stranger's merged handshake messages no longer
 *     have a handshake size and are dropped (a peer sends one handshake message, then waits
 *     for an answer or REKEY_TIMEOUT, so a real one arrives alone).
 *
 * Program: A = protocol; IPv4 -> X = port, A = source address, one 5-instruction block per
 * IPv4 endpoint; IPv6 -> address in M[0..3], X = port, one 11-instruction block per IPv6
 * endpoint. Every block returns accept itself, so no conditional jump is longer than a block
 * (jt/jf are 8 bits). What falls through a family's blocks is a stranger: dropped (plain), or
 * sent by a long jump to the handshake check at the end (wireguard). Limits (BPF_MAXINSNS):
 * 817 IPv4 or 370 IPv6 endpoints plain, 814 IPv4 or 369 IPv6 wireguard.
 *
 * Cost, measured over loopback (2 vCPU, 6.18): about 90 ns per datagram with one endpoint, as
 * much as a filter that accepts everything: the kernel's fixed cost of running a filter, not
 * this program's; 100 endpoints with the peer last add about 50 ns more. */
#ifndef UDPTUN_FILTER_PROGRAM_H
#define UDPTUN_FILTER_PROGRAM_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>
#include "core.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86dd
#define ACCEPT 0xffffffffu /* keep the whole datagram (the return value is a trim length) */
#define DROP 0u
#define UDP_HEADER 8

/* udpFilter's mode argument; udptun.c exports both to TypeScript. */
enum filter_mode { FILTER_PLAIN = 0, FILTER_WIREGUARD = 1 };

/* WireGuard's handshake messages: UDP payload length and first 32-bit word (a little-endian
 * u32 type, so three zero bytes follow the type). */
static const struct {
  uint32_t length, word;
} HANDSHAKES[] = {
  {148, 0x01000000u}, /* initiation */
  {92, 0x02000000u},  /* response */
  {64, 0x03000000u},  /* cookie reply */
};
#define HANDSHAKE_COUNT (sizeof HANDSHAKES / sizeof HANDSHAKES[0])
/* ld len; per message: jeq length, ld [8], jeq word; then drop, accept. */
#define HANDSHAKE_INSNS (1 + 3 * HANDSHAKE_COUNT + 2)

#define HEAD_INSNS 5 /* protocol dispatch */
#define V4_INSNS 5   /* port to X, source address to M[0] and A; the stranger's exit after the blocks */
#define V4_BLOCK 5
#define V6_INSNS 12  /* source address to M[0..3], port to X, low word to A; the stranger's exit */
#define V6_BLOCK 11
/* A family without endpoints is one instruction: the stranger's exit. */
#define V4_LEN(n) ((n) ? V4_INSNS + (n) * V4_BLOCK : 1)
#define V6_LEN(n) ((n) ? V6_INSNS + (n) * V6_BLOCK : 1)

static inline uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline struct sock_filter stmt(uint16_t code, uint32_t k) {
  return (struct sock_filter)BPF_STMT(code, k);
}

static inline struct sock_filter jeq(uint32_t k, uint8_t jt, uint8_t jf) {
  return (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf);
}

/* Instructions needed for n4 IPv4 and n6 IPv6 endpoints. With none at all: one (drop all),
 * or only the handshake check (wireguard). */
static inline size_t filter_program_length(size_t n4, size_t n6, enum filter_mode mode) {
  size_t check = mode == FILTER_WIREGUARD ? HANDSHAKE_INSNS : 0;
  if (n4 + n6 == 0) return check ? check : 1;
  return HEAD_INSNS + V4_LEN(n4) + V6_LEN(n6) + check;
}

/* Accepts a datagram that is exactly one handshake message, drops anything else (p[0] is
 * where it starts). The length is tested before the load of the first word, so a short
 * datagram is never read past its end. */
static inline size_t handshake_check(struct sock_filter *p) {
  const size_t drop = HANDSHAKE_INSNS - 2, accept = HANDSHAKE_INSNS - 1;
  size_t i = 0;
  p[i++] = stmt(BPF_LD | BPF_W | BPF_LEN, 0);
  for (size_t m = 0; m < HANDSHAKE_COUNT; m++) {
    /* Another length: the next message's test; after the last one, drop. */
    p[i++] = jeq(UDP_HEADER + HANDSHAKES[m].length, 0, 2);
    p[i++] = stmt(BPF_LD | BPF_W | BPF_ABS, UDP_HEADER);
    p[i] = jeq(HANDSHAKES[m].word, (uint8_t)(accept - i - 1), (uint8_t)(drop - i - 1));
    i++;
  }
  p[i++] = stmt(BPF_RET | BPF_K, DROP);
  p[i++] = stmt(BPF_RET | BPF_K, ACCEPT);
  return i;
}

/* What ends a family's blocks (instruction at): a source that matched none of them. */
static inline struct sock_filter stranger_exit(enum filter_mode mode, size_t at, size_t check_start) {
  if (mode != FILTER_WIREGUARD) return stmt(BPF_RET | BPF_K, DROP);
  return stmt(BPF_JMP | BPF_JA, (uint32_t)(check_start - at - 1)); /* k counts from the next instruction */
}

/* Writes the program into p (filter_program_length(n4, n6, mode) entries); returns how many it
 * wrote. */
static inline size_t filter_program_build(struct sock_filter *p, const uint8_t *eps, size_t count, size_t n4, size_t n6,
                                          enum filter_mode mode) {
  if (n4 + n6 == 0) {
    if (mode == FILTER_WIREGUARD) return handshake_check(p);
    p[0] = stmt(BPF_RET | BPF_K, DROP);
    return 1;
  }
  const size_t v6_start = HEAD_INSNS + V4_LEN(n4);
  const size_t check_start = v6_start + V6_LEN(n6);
  p[0] = stmt(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL));
  p[1] = jeq(ETH_P_IPV6_, 0, 1);
  p[2] = stmt(BPF_JMP | BPF_JA, (uint32_t)(v6_start - 3)); /* may be too far for jt: a long jump */
  p[3] = jeq(ETH_P_IP_, 1, 0);
  p[4] = stmt(BPF_RET | BPF_K, DROP); /* neither IPv4 nor IPv6 */
  size_t i = HEAD_INSNS;

  /* IPv4: source address (network offset 12) kept in M[0], in A between blocks. */
  if (n4 == 0) goto v4_done;
  p[i++] = stmt(BPF_LD | BPF_H | BPF_ABS, 0); /* UDP source port */
  p[i++] = stmt(BPF_MISC | BPF_TAX, 0);       /* X = port */
  p[i++] = stmt(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 12));
  p[i++] = stmt(BPF_ST, 0);
  for (size_t e = 0; e < count; e++) {
    const uint8_t *ep = eps + e * ENDPOINT_BYTES;
    if (ep[0] != 4) continue;
    p[i++] = jeq(be32(ep + 4), 0, 4); /* not this address: the next block, A unchanged */
    p[i++] = stmt(BPF_MISC | BPF_TXA, 0);
    p[i++] = jeq((uint32_t)(ep[2] << 8 | ep[3]), 0, 1);
    p[i++] = stmt(BPF_RET | BPF_K, ACCEPT);
    p[i++] = stmt(BPF_LD | BPF_MEM, 0); /* same address, other port: A back for the next block */
  }
v4_done:
  p[i] = stranger_exit(mode, i, check_start);
  i++;

  /* IPv6: source address (network offset 8..23) in M[0..3], its low word in A between blocks:
   * strangers mostly differ there, so a non-matching block costs one comparison. Packet loads
   * happen once here; scratch loads are what the kernel's converted program keeps small (per
   * block packet loads hit the socket memory limit, optmem_max, before BPF_MAXINSNS). */
  if (n6 == 0) goto v6_done;
  for (uint32_t w = 0; w < 4; w++) {
    p[i++] = stmt(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 8 + 4 * (int)w));
    p[i++] = stmt(BPF_ST, w);
  }
  p[i++] = stmt(BPF_LD | BPF_H | BPF_ABS, 0);
  p[i++] = stmt(BPF_MISC | BPF_TAX, 0);
  p[i++] = stmt(BPF_LD | BPF_MEM, 3);
  for (size_t e = 0; e < count; e++) {
    const uint8_t *ep = eps + e * ENDPOINT_BYTES;
    if (ep[0] != 6) continue;
    p[i++] = jeq(be32(ep + 16), 0, 10); /* low word differs: the next block, A unchanged */
    p[i++] = stmt(BPF_LD | BPF_MEM, 2);
    p[i++] = jeq(be32(ep + 12), 0, 7); /* otherwise a mismatch goes to the reload of M[3] */
    p[i++] = stmt(BPF_LD | BPF_MEM, 1);
    p[i++] = jeq(be32(ep + 8), 0, 5);
    p[i++] = stmt(BPF_LD | BPF_MEM, 0);
    p[i++] = jeq(be32(ep + 4), 0, 3);
    p[i++] = stmt(BPF_MISC | BPF_TXA, 0);
    p[i++] = jeq((uint32_t)(ep[2] << 8 | ep[3]), 0, 1);
    p[i++] = stmt(BPF_RET | BPF_K, ACCEPT);
    p[i++] = stmt(BPF_LD | BPF_MEM, 3);
  }
v6_done:
  p[i] = stranger_exit(mode, i, check_start);
  i++;
  if (mode == FILTER_WIREGUARD) i += handshake_check(p + i);
  return i;
}

#endif
