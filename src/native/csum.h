/* Internet checksum (RFC 1071) helpers for the offload paths. Sums are kept in memory byte
 * order: a one's complement sum is byte-order independent, so a folded sum stored back with
 * memcpy is the right big-endian field, and no per-word byte swap is needed. */
#ifndef UDPTUN_CSUM_H
#define UDPTUN_CSUM_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "csum.h assumes a little-endian host (the odd trailing byte is the low byte)"
#endif

/* Adds n bytes at p to a running sum (64-bit words, end-around carry). */
static inline uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    sum += w;
    if (sum < w) sum++;
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    sum += w;
    if (sum < w) sum++;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    if (sum < w) sum++;
    p += 2;
    n -= 2;
  }
  if (n) {
    sum += *p; /* the odd byte, padded with a zero byte after it */
    if (sum < *p) sum++;
  }
  return sum;
}

static inline uint16_t csum_fold(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/* Pseudo-header sum for a transport segment of l4len bytes in the IP packet at ip. */
static inline uint64_t csum_pseudo(const uint8_t *ip, uint8_t proto, uint32_t l4len) {
  uint64_t sum = (ip[0] >> 4) == 4 ? csum_add(0, ip + 12, 8) : csum_add(0, ip + 8, 32);
  sum += htons(proto);
  sum += htons((uint16_t)l4len);
  return sum;
}

/* Rewrites the IPv4 header checksum. */
static inline void ipv4_fix_csum(uint8_t *ip, size_t ihl) {
  ip[10] = ip[11] = 0;
  uint16_t c = (uint16_t)~csum_fold(csum_add(0, ip, ihl));
  memcpy(ip + 10, &c, 2);
}

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#endif
