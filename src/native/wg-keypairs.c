/* Installing and retiring keypairs (see wg-keypairs.h). Plain C: the addon's bindings
 * (wg-bindings.c) and bench/ceiling/fwd-wg.c both call it. */
#include <errno.h>
#include <openssl/crypto.h>
#include "wg-crypto.h"
#include "wg-keypairs.h"

keypair_t wg_keypairs[WG_KEYPAIR_SLOTS];

static EVP_CIPHER_CTX *keyed(const uint8_t *key, int enc) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx && EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key, NULL, enc) == 1) return ctx;
  EVP_CIPHER_CTX_free(ctx);
  return NULL;
}

/* Frees the contexts (OpenSSL cleanses the key schedule it frees) and wipes the rest. */
static void clear(keypair_t *kp) {
  EVP_CIPHER_CTX_free(kp->send);
  EVP_CIPHER_CTX_free(kp->recv);
  OPENSSL_cleanse(kp, sizeof *kp);
}

int wg_keypair_install(int32_t slot, uint32_t local, uint32_t remote, const uint8_t *send_key, const uint8_t *recv_key) {
  EVP_CIPHER_CTX *send = keyed(send_key, 1), *recv = keyed(recv_key, 0);
  if (!send || !recv) {
    EVP_CIPHER_CTX_free(send);
    EVP_CIPHER_CTX_free(recv);
    return -ENOMEM;
  }
  keypair_t *kp = &wg_keypairs[slot];
  clear(kp);
  kp->send = send;
  kp->recv = recv;
  kp->local_index = local;
  kp->remote_index = remote;
  return 0;
}

void wg_keypair_forget(int32_t slot) {
  clear(&wg_keypairs[slot]);
}
