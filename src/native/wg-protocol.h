/* WireGuard data messages: the values the per-packet code (wg-seal.c, wg-open.c) and the
 * TypeScript side share, the padding rule and the send counter's limit. Plain C (no
 * OpenSSL, no N-API), so test/native/wg_replay_test.c builds it alone. */
#ifndef UDPTUN_WG_PROTOCOL_H
#define UDPTUN_WG_PROTOCOL_H

#include <stdatomic.h>
#include <stdint.h>

/* Keypair table size. A local receiver index encodes its slot in its low 12 bits. */
#define WG_KEYPAIR_SLOTS 4096
/* u32 type (4), u32 receiver index, u64 counter: all little-endian. */
#define WG_HEADER_LEN 16
#define WG_TAG_LEN 16
/* The shortest data message: a keepalive (header and tag, no payload). */
#define WG_MIN_MESSAGE (WG_HEADER_LEN + WG_TAG_LEN)
#define WG_TYPE_DATA 4
#define WG_PADDING 16
/* A counter at or past this is never sent nor accepted (2^64 - 2^13 - 1). */
#define WG_REJECT_AFTER_MESSAGES (UINT64_MAX - (UINT64_C(1) << 13))

/* Verdicts and statuses. Below -4095 (the kernel's MAX_ERRNO), so a status array that
 * also carries -errno values (udpSendSegments) never confuses the two. */
#define WG_NOT_DATA (-5001)          /* not a type-4 message: for the handshake code */
#define WG_MALFORMED (-5002)         /* type 4, but shorter than 32 bytes or reserved bytes set */
#define WG_UNKNOWN_INDEX (-5003)     /* no keypair has that receiver index */
#define WG_REPLAYED (-5004)          /* counter already seen, or behind the window */
#define WG_DECRYPT_FAILED (-5005)    /* did not authenticate */
#define WG_EXPIRED (-5006)           /* counter at or past WG_REJECT_AFTER_MESSAGES */
#define WG_NO_KEYPAIR (-5007)        /* sending with an empty slot */
#define WG_COUNTER_EXHAUSTED (-5008) /* the keypair has no counters left */

/* Plaintext length after zero padding, wireguard-go's rule: up to a multiple of 16 but
 * not past the MTU; past the MTU only the last MTU-sized unit is padded. mtu 0: no cap. */
static inline uint32_t wg_padded_len(uint32_t len, uint32_t mtu) {
  uint32_t last = mtu && len > mtu ? len % mtu : len;
  uint32_t padded = (last + WG_PADDING - 1) & ~(uint32_t)(WG_PADDING - 1);
  if (mtu && padded > mtu) padded = mtu;
  return len - last + padded;
}

/* The whole data message for a plaintext of len bytes. */
static inline uint32_t wg_message_len(uint32_t len, uint32_t mtu) {
  return WG_HEADER_LEN + wg_padded_len(len, mtu) + WG_TAG_LEN;
}

/* Takes n consecutive send counters, the first into *first; 0 if the last of them would
 * reach WG_REJECT_AFTER_MESSAGES (then none is taken). Atomic although one thread sends
 * (the TypeScript side refuses workers > 1 with WireGuard): it costs what a plain add
 * costs uncontended. A compare-and-swap, not a fetch-add: a fetch-add that overshoots
 * the limit could wrap the counter around to nonces already used. */
static inline int wg_take_counters(_Atomic uint64_t *next, uint64_t n, uint64_t *first) {
  uint64_t c = atomic_load_explicit(next, memory_order_relaxed);
  do {
    if (c >= WG_REJECT_AFTER_MESSAGES || n > WG_REJECT_AFTER_MESSAGES - c) return 0;
  } while (!atomic_compare_exchange_weak_explicit(next, &c, c + n, memory_order_relaxed, memory_order_relaxed));
  *first = c;
  return 1;
}

static inline void wg_put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void wg_put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t wg_get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t wg_get_le64(const uint8_t *p) {
  return (uint64_t)wg_get_le32(p) | (uint64_t)wg_get_le32(p + 4) << 32;
}

#endif
