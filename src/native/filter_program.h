/* The peer filter's program (classic BPF): admits only datagrams whose source ip:port is one
 * of the given endpoints (core.h's 20-byte form). Plain C, no N-API: filter.c attaches it
 * (udpFilter), test/native/peer_filter_test.c runs it on real sockets.
 *
 * What a UDP socket filter sees (probed on 6.18 for IPv4, IPv6 and dual-stack sockets):
 *   - skb->data is the UDP header, so `ldh [0]` is the source port whatever came before it
 *     (IPv6 extension headers included);
 *   - SKF_NET_OFF loads reach the IP header, independent of the link layer;
 *   - the packet as it arrived: a dual-stack AF_INET6 socket sees IPv4 traffic with an IPv4
 *     header and SKF_AD_PROTOCOL 0x0800 (there is no v4-mapped form on the wire), so every
 *     program dispatches on the protocol, whatever the socket's family.
 *
 * Program: A = protocol; IPv4 -> X = port, A = source address, one 5-instruction block per
 * IPv4 endpoint; IPv6 -> address in M[0..3], X = port, one 11-instruction block per IPv6
 * endpoint. Every block returns accept itself, so no conditional jump is longer than a block
 * (jt/jf are 8 bits). Limits: 817 IPv4 or 370 IPv6 endpoints (BPF_MAXINSNS).
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

#define HEAD_INSNS 5 /* protocol dispatch */
#define V4_INSNS 5   /* port to X, source address to M[0] and A; drop after the blocks */
#define V4_BLOCK 5
#define V6_INSNS 12  /* source address to M[0..3], port to X, low word to A; drop after */
#define V6_BLOCK 11
/* A family without endpoints is one instruction: drop. */
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

/* Instructions needed for n4 IPv4 and n6 IPv6 endpoints (1 if there are none: drop all). */
static inline size_t filter_program_length(size_t n4, size_t n6) {
  if (n4 + n6 == 0) return 1;
  return HEAD_INSNS + V4_LEN(n4) + V6_LEN(n6);
}

/* Writes the program into p (filter_program_length(n4, n6) entries); returns how many it wrote. */
static inline size_t filter_program_build(struct sock_filter *p, const uint8_t *eps, size_t count, size_t n4, size_t n6) {
  if (n4 + n6 == 0) {
    p[0] = stmt(BPF_RET | BPF_K, DROP);
    return 1;
  }
  const size_t v6_start = HEAD_INSNS + V4_LEN(n4);
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
  p[i++] = stmt(BPF_RET | BPF_K, DROP);

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
  p[i++] = stmt(BPF_RET | BPF_K, DROP);
  return i;
}

#endif
