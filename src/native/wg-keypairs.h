/* The keypair table: process-global C memory the per-packet code reaches with no N-API
 * call. The TypeScript side installs and retires entries (wgKeypairSet/Clear) and refuses
 * workers > 1 with WireGuard, so only the send counter is atomic. */
#ifndef UDPTUN_WG_KEYPAIRS_H
#define UDPTUN_WG_KEYPAIRS_H

#include <openssl/evp.h>
#include "wg-protocol.h"
#include "wg-replay.h"

typedef struct {
  /* ChaCha20-Poly1305 keyed once at install; a message resets only the IV. NULL: empty. */
  EVP_CIPHER_CTX *send, *recv;
  uint32_t local_index, remote_index;
  _Atomic uint64_t next_send; /* the next send counter: messages sent (see wg_take_counters) */
  uint64_t received;          /* messages that authenticated and passed the window */
  replay_t window;
} keypair_t;

extern keypair_t wg_keypairs[WG_KEYPAIR_SLOTS];

/* The keypair a received message names, or NULL: its slot is the index's low bits, and
 * the whole index must match (a retired keypair's index must not reach its successor). */
static inline keypair_t *wg_keypair_for_index(uint32_t index) {
  keypair_t *kp = &wg_keypairs[index & (WG_KEYPAIR_SLOTS - 1)];
  return kp->recv && kp->local_index == index ? kp : NULL;
}

#endif
