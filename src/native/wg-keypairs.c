/* Installing, retiring and reading keypairs (see wg-keypairs.h): wgKeypairSet,
 * wgKeypairClear, wgKeypairCounters. */
#include <openssl/crypto.h>
#include "addon.h"
#include "wg-keypairs.h"

keypair_t wg_keypairs[WG_KEYPAIR_SLOTS];

int arg_slot(napi_env env, napi_value v, const char *what, int32_t *slot) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    throw_invalid(env, "%s: not a number", what);
    return 0;
  }
  if (!(d >= 0 && d < WG_KEYPAIR_SLOTS) || d != (int32_t)d) {
    throw_invalid(env, "%s: %g is not a keypair slot (0..%d)", what, d, WG_KEYPAIR_SLOTS - 1);
    return 0;
  }
  *slot = (int32_t)d;
  return 1;
}

static int arg_index(napi_env env, napi_value v, const char *what, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    throw_invalid(env, "wgKeypairSet: %s: not a number", what);
    return 0;
  }
  if (!(d >= 0 && d <= UINT32_MAX) || d != (double)(uint32_t)d) {
    throw_invalid(env, "wgKeypairSet: %s: %g is not an integer in 0..%u", what, d, UINT32_MAX);
    return 0;
  }
  *out = (uint32_t)d;
  return 1;
}

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

/* wgKeypairSet(slot, localIndex, remoteIndex, sendKey, recvKey): installs a keypair in
 * slot (replacing what it held): send counter 0, empty replay window. The keys are read
 * straight from the caller's arrays into the contexts; no copy stays here. */
napi_value wg_keypair_set(napi_env env, napi_callback_info info) {
  size_t argc = 5, nsend, nrecv;
  napi_value argv[5];
  int32_t slot;
  uint32_t local, remote;
  uint8_t *send_key, *recv_key;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_invalid(env, "wgKeypairSet(slot, localIndex, remoteIndex, sendKey, recvKey): %zu arguments", argc);
  if (!arg_slot(env, argv[0], "wgKeypairSet: slot", &slot) || !arg_index(env, argv[1], "localIndex", &local) ||
      !arg_index(env, argv[2], "remoteIndex", &remote))
    return NULL;
  if ((local & (WG_KEYPAIR_SLOTS - 1)) != (uint32_t)slot)
    return throw_invalid(env, "wgKeypairSet: localIndex: %u does not encode slot %d in its low 12 bits", local, slot);
  if (!arg_bytes(env, argv[3], &send_key, &nsend) || nsend != 32)
    return throw_invalid(env, "wgKeypairSet: sendKey: expected a Uint8Array of 32 bytes");
  if (!arg_bytes(env, argv[4], &recv_key, &nrecv) || nrecv != 32)
    return throw_invalid(env, "wgKeypairSet: recvKey: expected a Uint8Array of 32 bytes");

  EVP_CIPHER_CTX *send = keyed(send_key, 1), *recv = keyed(recv_key, 0);
  if (!send || !recv) {
    EVP_CIPHER_CTX_free(send);
    EVP_CIPHER_CTX_free(recv);
    return throw_errno(env, ENOMEM, "wgKeypairSet: ChaCha20-Poly1305 context");
  }
  keypair_t *kp = &wg_keypairs[slot];
  clear(kp);
  kp->send = send;
  kp->recv = recv;
  kp->local_index = local;
  kp->remote_index = remote;
  return NULL;
}

/* wgKeypairClear(slot): forgets the keypair; its index is unknown from now on. */
napi_value wg_keypair_clear(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t slot;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_invalid(env, "wgKeypairClear(slot): no slot");
  if (!arg_slot(env, argv[0], "wgKeypairClear: slot", &slot)) return NULL;
  clear(&wg_keypairs[slot]);
  return NULL;
}

/* wgKeypairCounters(slot, out): out[0] = messages sent (the next send counter), out[1] =
 * messages received and accepted; both 0 for an empty slot. */
napi_value wg_keypair_counters(napi_env env, napi_callback_info info) {
  size_t argc = 2, length, offset;
  napi_value argv[2], ab;
  napi_typedarray_type type;
  double *out;
  int32_t slot;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_invalid(env, "wgKeypairCounters(slot, out): %zu arguments", argc);
  if (!arg_slot(env, argv[0], "wgKeypairCounters: slot", &slot)) return NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, (void **)&out, &ab, &offset) != napi_ok ||
      type != napi_float64_array || length < 2)
    return throw_invalid(env, "wgKeypairCounters: out: expected a Float64Array of 2 or more");
  const keypair_t *kp = &wg_keypairs[slot];
  out[0] = (double)atomic_load_explicit(&kp->next_send, memory_order_relaxed);
  out[1] = (double)kp->received;
  return NULL;
}
