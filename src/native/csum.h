/* Internet checksum (RFC 1071) helpers for the offload paths. Sums are kept in memory byte
 * order: a one's complement sum is byte-order independent, so a folded sum stored back with
 * memcpy is the right big-endian field, and no per-word byte swap is needed. */
#ifndef UDPTUN_CSUM_H
#define UDPTUN_CSUM_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "csum.h assumes a little-endian host (the odd trailing byte is the low byte)"
#endif

/* Adds n bytes at p to a running sum. 32-bit words go into four 64-bit accumulators,
 * which cannot overflow below 2^32 words, so the loop needs no carry handling and the
 * compiler can unroll or vectorise it; the carries are folded back in csum_fold. */
static inline uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#ifdef __SSE2__
  /* The payload loop of every split segment: 64 bytes per step, each 32-bit word widened
   * to 64 bits (x86-64 always has SSE2). */
  if (n >= 64) {
    const __m128i zero = _mm_setzero_si128();
    __m128i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    for (; n >= 64; p += 64, n -= 64) {
      __m128i v0 = _mm_loadu_si128((const __m128i *)p), v1 = _mm_loadu_si128((const __m128i *)(p + 16));
      __m128i v2 = _mm_loadu_si128((const __m128i *)(p + 32)), v3 = _mm_loadu_si128((const __m128i *)(p + 48));
      a0 = _mm_add_epi64(a0, _mm_add_epi64(_mm_unpacklo_epi32(v0, zero), _mm_unpackhi_epi32(v0, zero)));
      a1 = _mm_add_epi64(a1, _mm_add_epi64(_mm_unpacklo_epi32(v1, zero), _mm_unpackhi_epi32(v1, zero)));
      a2 = _mm_add_epi64(a2, _mm_add_epi64(_mm_unpacklo_epi32(v2, zero), _mm_unpackhi_epi32(v2, zero)));
      a3 = _mm_add_epi64(a3, _mm_add_epi64(_mm_unpacklo_epi32(v3, zero), _mm_unpackhi_epi32(v3, zero)));
    }
    uint64_t lanes[8];
    _mm_storeu_si128((__m128i *)lanes, a0);
    _mm_storeu_si128((__m128i *)(lanes + 2), a1);
    _mm_storeu_si128((__m128i *)(lanes + 4), a2);
    _mm_storeu_si128((__m128i *)(lanes + 6), a3);
    s0 = lanes[0] + lanes[1];
    s1 = lanes[2] + lanes[3];
    s2 = lanes[4] + lanes[5];
    s3 = lanes[6] + lanes[7];
  }
#endif
  for (; n >= 16; p += 16, n -= 16) {
    uint32_t w[4];
    memcpy(w, p, 16);
    s0 += w[0];
    s1 += w[1];
    s2 += w[2];
    s3 += w[3];
  }
  for (; n >= 4; p += 4, n -= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    s0 += w;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    s1 += w;
    p += 2;
    n -= 2;
  }
  if (n) s2 += *p; /* the odd byte, padded with a zero byte after it */
  /* Fold each to 33 bits before adding, so the total cannot wrap 64 bits. */
  uint64_t t = (s0 & 0xffffffffu) + (s0 >> 32) + (s1 & 0xffffffffu) + (s1 >> 32) +
               (s2 & 0xffffffffu) + (s2 >> 32) + (s3 & 0xffffffffu) + (s3 >> 32);
  sum += t;
  if (sum < t) sum++;
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
