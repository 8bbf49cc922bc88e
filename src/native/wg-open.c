/* Opening received WireGuard data messages in place (wgOpen): per message, the checks
 * that cost nothing first (type, length, receiver index, counter limit, replay window),
 * then ChaCha20-Poly1305 with the keypair's receiving context (only the IV reset), and
 * only a message that authenticated marks its counter. */
#include "addon.h"
#include "wg-keypairs.h"

#define WG_MIN_MESSAGE (WG_HEADER_LEN + WG_TAG_LEN)

/* Opens the message at p (len bytes). Returns the keypair's slot, or a negative verdict;
 * on success the plaintext (padding included) is at p + 16, len - 32 bytes. */
static int32_t open_one(uint8_t *p, uint32_t len) {
  if (len == 0 || p[0] != WG_TYPE_DATA) return WG_NOT_DATA;
  if (len < WG_MIN_MESSAGE || p[1] || p[2] || p[3]) return WG_MALFORMED;
  keypair_t *kp = wg_keypair_for_index(wg_get_le32(p + 4));
  if (!kp) return WG_UNKNOWN_INDEX;
  uint64_t counter = wg_get_le64(p + 8);
  if (counter >= WG_REJECT_AFTER_MESSAGES) return WG_EXPIRED;
  if (!replay_check(&kp->window, counter)) return WG_REPLAYED;

  uint8_t nonce[12] = {0};
  uint8_t *ct = p + WG_HEADER_LEN;
  int ctlen = (int)(len - WG_MIN_MESSAGE), n = 0, m = 0;
  wg_put_le64(nonce + 4, counter);
  if (EVP_CipherInit_ex(kp->recv, NULL, NULL, NULL, nonce, 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(kp->recv, EVP_CTRL_AEAD_SET_TAG, WG_TAG_LEN, ct + ctlen) != 1 ||
      (ctlen && EVP_CipherUpdate(kp->recv, ct, &n, ct, ctlen) != 1) || EVP_CipherFinal_ex(kp->recv, ct + n, &m) != 1)
    return WG_DECRYPT_FAILED;
  if (!replay_mark(&kp->window, counter)) return WG_REPLAYED;
  kp->received++;
  return (int32_t)(kp - wg_keypairs);
}

/* wgOpen(slab, offs, lens, count, segs, out) -> entries. Datagram i at slab[offs[i] ..
 * +lens[i]); with segs (UDP GRO), segs[i] > 0 cuts it into messages of that size (the
 * last may be shorter). One entry of three Int32s per message, in order: offset, length,
 * verdict. verdict >= 0: the keypair's slot, and offset/length frame the plaintext in
 * place (padding not trimmed; length 0 is a keepalive). verdict < 0 (WG_NOT_DATA, ...):
 * offset/length frame the message as received. */
napi_value wg_open(napi_env env, napi_callback_info info) {
  size_t argc = 6, nsegs = 0, nout;
  napi_value argv[6];
  int32_t *segs = NULL, *out;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_invalid(env, "wgOpen(slab, offs, lens, count, segs, out): %zu arguments", argc);
  if (!arg_batch(env, argv, &b)) return NULL;
  if (!arg_absent(env, argv[4]) && (!arg_i32s(env, argv[4], &segs, &nsegs) || nsegs < b.count))
    return throw_invalid(env, "wgOpen: segs: expected null or an Int32Array of %u or more", b.count);
  if (!arg_i32s(env, argv[5], &out, &nout)) return throw_invalid(env, "wgOpen: out: expected an Int32Array");

  size_t entries = 0;
  for (uint32_t i = 0; i < b.count; i++) {
    uint32_t len = (uint32_t)b.lens[i], seg = segs && segs[i] > 0 ? (uint32_t)segs[i] : 0;
    entries += seg && len > seg ? (len + seg - 1) / seg : 1;
  }
  if (nout < entries * 3)
    return throw_invalid(env, "wgOpen: out: %zu Int32s hold %zu entries, the batch has %zu messages", nout, nout / 3, entries);

  int32_t *e = out;
  for (uint32_t i = 0; i < b.count; i++) {
    uint32_t len = (uint32_t)b.lens[i], seg = segs && segs[i] > 0 ? (uint32_t)segs[i] : len;
    uint32_t at = 0;
    do {
      uint32_t mlen = len - at < seg ? len - at : seg;
      int32_t off = b.offs[i] + (int32_t)at, verdict = open_one(b.slab + off, mlen);
      e[0] = verdict >= 0 ? off + WG_HEADER_LEN : off;
      e[1] = verdict >= 0 ? (int32_t)(mlen - WG_MIN_MESSAGE) : (int32_t)mlen;
      e[2] = verdict;
      e += 3;
      at += mlen;
    } while (at < len);
  }
  return make_int32(env, (int32_t)(e - out) / 3);
}
