/* Sealing WireGuard data messages: in place in pooled buffers (wgSeal), or from the
 * pieces of a split super-packet into a per-thread send buffer (the seal step of
 * udpSendSegments; segment.c calls it). Plain C (wg-bindings.c is its JS face). Either
 * way one EVP context per keypair, only the IV reset per message, one update per message
 * (seal_message), and no allocation. */
#include <errno.h>
#include <openssl/core_names.h>
#include "wg-crypto.h"
#include "wg-keypairs.h"

/* Seals the message at out whose plaintext (len bytes) already lies at out + 16: header,
 * zero padding up to `padded` bytes, ChaCha20-Poly1305 in place, tag. Returns 0 if
 * OpenSSL failed (it does not on a keyed context).
 *
 * The whole padded plaintext goes through ONE EVP_CipherUpdate, because of how OpenSSL's
 * provider splits an update: whole 64-byte blocks through ChaCha20_ctr32's wide (AVX2)
 * path, then any remainder through a separate one-block call on the narrow SSSE3 path,
 * which costs about as much as a few wide blocks. Each extra piece (a split segment's
 * header, the padding) could add such a call; one update leaves the one remainder every
 * message has unless its length is a multiple of 64. */
static int seal_message(keypair_t *kp, uint64_t counter, uint8_t *out, uint32_t len, uint32_t padded) {
  uint8_t nonce[12] = {0};
  uint8_t *ct = out + WG_HEADER_LEN;
  int n = 0, m = 0;
  /* The tag straight from the provider's parameters: EVP_CIPHER_CTX_ctrl would build the
   * same request after dispatching on the control code. */
  OSSL_PARAM tag[] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, ct + padded, WG_TAG_LEN),
                      OSSL_PARAM_construct_end()};
  wg_put_le32(out, WG_TYPE_DATA);
  wg_put_le32(out + 4, kp->remote_index);
  wg_put_le64(out + 8, counter);
  wg_put_le64(nonce + 4, counter);
  memset(ct + len, 0, padded - len);
  return EVP_CipherInit_ex(kp->send, NULL, NULL, NULL, nonce, 1) == 1 &&
         (padded == 0 || EVP_CipherUpdate(kp->send, ct, &n, ct, (int)padded) == 1) &&
         EVP_CipherFinal_ex(kp->send, ct + n, &m) == 1 && (uint32_t)(n + m) == padded &&
         EVP_CIPHER_CTX_get_params(kp->send, tag) == 1;
}

/* The keypair in slot (checked by the caller), or NULL if the slot is empty. */
static keypair_t *sending(int32_t slot) {
  keypair_t *kp = &wg_keypairs[slot];
  return kp->send ? kp : NULL;
}

/* See wg-crypto.h. */
int32_t wg_seal_one(int32_t slot, uint8_t *p, uint32_t len, uint32_t mtu) {
  keypair_t *kp = sending(slot);
  uint64_t counter;
  if (!kp) return WG_NO_KEYPAIR;
  if (!wg_take_counters(&kp->next_send, 1, &counter)) return WG_COUNTER_EXHAUSTED;
  uint32_t padded = wg_padded_len(len, mtu);
  if (!seal_message(kp, counter, p - WG_HEADER_LEN, len, padded)) return -EIO;
  return (int32_t)(WG_HEADER_LEN + padded + WG_TAG_LEN);
}

/* The seal step of udpSendSegments. Counters are taken per packet before anything is
 * sent; those of messages a full socket left unsent are skipped (a gap the peer's window
 * tolerates), and a packet resumed after one takes new ones. */
#define SEAL_BUFFER_BYTES (512 * 1024) /* many GSO sends' worth (each <= 64 KiB) */

typedef struct {
  seal_step_t step;
  const int32_t *slots;
  uint32_t mtu;
  uint64_t next[MAX_BATCH]; /* packet i's next counter */
} sealer_t;

static __thread sealer_t sealer;
static __thread uint8_t sealed[SEAL_BUFFER_BYTES];

static int32_t sealer_reserve(seal_step_t *s, uint32_t pkt, uint32_t n) {
  sealer_t *z = (sealer_t *)s;
  keypair_t *kp = sending(z->slots[pkt]);
  if (!kp) return WG_NO_KEYPAIR;
  return wg_take_counters(&kp->next_send, n, &z->next[pkt]) ? 0 : WG_COUNTER_EXHAUSTED;
}

static uint32_t sealer_wire(const seal_step_t *s, uint32_t plain) {
  return wg_message_len(plain, ((const sealer_t *)s)->mtu);
}

static void sealer_seal(seal_step_t *s, uint32_t pkt, struct iovec *v) {
  sealer_t *z = (sealer_t *)s;
  uint32_t plain = (uint32_t)(v[0].iov_len + v[1].iov_len), padded = wg_padded_len(plain, z->mtu);
  uint8_t *out = sealed + s->used;
  uint32_t len = WG_HEADER_LEN + padded + WG_TAG_LEN;
  /* The header block and the payload slice are copied next to each other so the segment
   * is enciphered in one update (seal_message says why): a copy of ~1.4 KB within the
   * cache costs a fraction of the narrow-path call a separate header piece adds. */
  memcpy(out + WG_HEADER_LEN, v[0].iov_base, v[0].iov_len);
  memcpy(out + WG_HEADER_LEN + v[0].iov_len, v[1].iov_base, v[1].iov_len);
  /* A failure would leave plaintext in the buffer: zeroed, the peer fails to
   * authenticate it and nothing readable goes out. */
  if (!seal_message(sending(z->slots[pkt]), z->next[pkt]++, out, plain, padded)) memset(out, 0, len);
  v[0] = (struct iovec){out, len};
  v[1] = (struct iovec){NULL, 0};
  s->used += len;
}

seal_step_t *wg_segment_sealer(const int32_t *slots, uint32_t mtu) {
  sealer = (sealer_t){
      .step = {.reserve = sealer_reserve, .wire = sealer_wire, .seal = sealer_seal, .cap = SEAL_BUFFER_BYTES},
      .slots = slots,
      .mtu = mtu,
  };
  return &sealer.step;
}
