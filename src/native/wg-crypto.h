/* WireGuard's per-packet code with no N-API: installing keypairs (wg-keypairs.c), sealing
 * (wg-seal.c) and opening (wg-open.c) data messages. wg-bindings.c puts a JS face on it;
 * bench/ceiling/fwd-wg.c links the same files with the system's OpenSSL. */
#ifndef UDPTUN_WG_CRYPTO_H
#define UDPTUN_WG_CRYPTO_H

#include <stdint.h>
#include "core.h"
#include "wg-protocol.h"

/* Installs a keypair in slot (replacing what it held): send counter 0, empty replay
 * window; the 32-byte keys go straight into the cipher contexts. local must encode slot
 * in its low 12 bits (the caller checks). 0, or -ENOMEM. */
int wg_keypair_install(int32_t slot, uint32_t local, uint32_t remote, const uint8_t *send_key, const uint8_t *recv_key);
/* Forgets slot's keypair; its index is unknown from now on. */
void wg_keypair_forget(int32_t slot);

/* Seals in place the plaintext of len bytes at p with slot's keypair: header into the 16
 * bytes before p, padding (within mtu; 0: no cap) and tag after it. Returns the message's
 * length (it starts at p - 16), or WG_NO_KEYPAIR / WG_COUNTER_EXHAUSTED (p untouched), or
 * -EIO if OpenSSL failed. */
int32_t wg_seal_one(int32_t slot, uint8_t *p, uint32_t len, uint32_t mtu);

/* The calling thread's seal step for send_segments: packet i with slots[i]'s keypair. */
seal_step_t *wg_segment_sealer(const int32_t *slots, uint32_t mtu);

/* Opens the message at p (len bytes) in place. Returns the keypair's slot, or a negative
 * verdict (WG_NOT_DATA, ...); on success the plaintext, padding included, is at p + 16,
 * len - 32 bytes. */
int32_t wg_open_one(uint8_t *p, uint32_t len);

#endif
