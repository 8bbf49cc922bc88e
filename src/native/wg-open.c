/* Opening received WireGuard data messages in place (the core of wgOpen, wg-bindings.c;
 * plain C): per message, the checks that cost nothing first (type, length, receiver index,
 * counter limit, replay window), then ChaCha20-Poly1305 with the keypair's receiving
 * context (nonce and expected tag set, one update, final), and only a message that
 * authenticated marks its counter. */
#include <openssl/core_names.h>
#include "wg-crypto.h"
#include "wg-keypairs.h"

/* See wg-crypto.h. */
int32_t wg_open_one(uint8_t *p, uint32_t len) {
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
  /* Nonce and expected tag in one provider call, in place of EVP_CipherInit_ex's generic
   * init path and a SET_TAG ctrl: it shows on short messages. OpenSSL's ChaCha20-Poly1305
   * takes a whole 12-byte "TLS fixed IV" as the nonce (the TLS record sequence is only
   * mixed in once a TLS AAD is set, which never happens here), and its next update starts
   * a new message from it: Poly1305 key from block 0, text from block 1, as after
   * EVP_CipherInit_ex. Should a build ever ignore it, the nonce would be stale and every
   * message would fail to authenticate: the opener fails closed (the unit tests, the
   * native test on the system's OpenSSL and the interop with wireguard-go would see it).
   * Sealing keeps EVP_CipherInit_ex: there this route saves nothing measurable, and a
   * stale nonce would not fail closed. */
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, nonce, sizeof nonce),
                         OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, ct + ctlen, WG_TAG_LEN),
                         OSSL_PARAM_construct_end()};
  wg_put_le64(nonce + 4, counter);
  if (EVP_CIPHER_CTX_set_params(kp->recv, params) != 1 ||
      (ctlen && EVP_CipherUpdate(kp->recv, ct, &n, ct, ctlen) != 1) || EVP_CipherFinal_ex(kp->recv, ct + n, &m) != 1)
    return WG_DECRYPT_FAILED;
  if (!replay_mark(&kp->window, counter)) return WG_REPLAYED;
  kp->received++;
  return (int32_t)(kp - wg_keypairs);
}
