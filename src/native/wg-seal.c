/* Sealing WireGuard data messages: in place in pooled buffers (wgSeal), or from the
 * pieces of a split super-packet straight into a per-thread send buffer (the seal step of
 * udpSendSegments; segment.c calls it). Plain C (wg-bindings.c is its JS face). Either way one EVP context per keypair, only the
 * IV reset per message, and no allocation. */
#include <errno.h>
#include "wg-crypto.h"
#include "wg-keypairs.h"

/* A sealed message's wire form: header, ChaCha20-Poly1305 of the pieces and of the zero
 * padding up to `padded` bytes, tag. The single piece may already lie at out + 16 (in
 * place). Returns 0 if OpenSSL failed (it does not on a keyed context). */
static int seal_into(keypair_t *kp, uint64_t counter, const struct iovec *pieces, int npieces, uint32_t padded,
                     uint8_t *out) {
  static const uint8_t zeros[WG_PADDING];
  uint8_t nonce[12] = {0};
  uint8_t *ct = out + WG_HEADER_LEN;
  int n, done = 0, ok;
  wg_put_le32(out, WG_TYPE_DATA);
  wg_put_le32(out + 4, kp->remote_index);
  wg_put_le64(out + 8, counter);
  wg_put_le64(nonce + 4, counter);
  ok = EVP_CipherInit_ex(kp->send, NULL, NULL, NULL, nonce, 1) == 1;
  for (int k = 0; ok && k < npieces; k++, done += n) {
    n = 0;
    if (pieces[k].iov_len) ok = EVP_CipherUpdate(kp->send, ct + done, &n, pieces[k].iov_base, (int)pieces[k].iov_len) == 1;
  }
  if (ok && (uint32_t)done < padded) {
    ok = EVP_CipherUpdate(kp->send, ct + done, &n, zeros, (int)(padded - (uint32_t)done)) == 1;
    done += n;
  }
  n = 0;
  ok = ok && EVP_CipherFinal_ex(kp->send, ct + done, &n) == 1 && (uint32_t)(done + n) == padded;
  return ok && EVP_CIPHER_CTX_ctrl(kp->send, EVP_CTRL_AEAD_GET_TAG, WG_TAG_LEN, ct + padded) == 1;
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
  struct iovec piece = {p, len};
  if (!seal_into(kp, counter, &piece, 1, padded, p - WG_HEADER_LEN)) return -EIO;
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
  /* Only the cipher writes here, so a failure could send noise, never plaintext; zeroed
   * all the same, the peer then fails to authenticate it. */
  if (!seal_into(sending(z->slots[pkt]), z->next[pkt]++, v, 2, padded, out)) memset(out, 0, len);
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
