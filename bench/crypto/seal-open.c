/* bench/crypto/seal-open.c -- CPU time per WireGuard data message of the addon's own
 * per-packet code (src/native/wg-seal.c, wg-open.c, wg-keypairs.c, wg-replay.c, compiled
 * with the addon's flags) against Node's own OpenSSL: a separate N-API module, so the
 * OpenSSL symbols resolve to the very library udptun runs with (the system's may be
 * another version), and the production addon carries no benchmark code.
 * seal-open.ts drives it and prints the table; build.sh builds it (bench/README.md).
 *
 * measure(kind, plain, header, messages) -> CPU nanoseconds (this thread) per message,
 * one run. kind:
 *   "seal"        wg_seal_one in place: a whole IP packet of `plain` bytes
 *   "segments"    the seal step of udpSendSegments: datagrams of `plain` bytes, each a
 *                 `header`-byte header block (IP + TCP headers built per segment) and a
 *                 payload slice taken in turn from a 64 KiB super-packet
 *   "open"        wg_open_one in place, each message first copied from one of OPEN_RING
 *                 sealed originals (opening destroys it); the window is reset after
 *                 each round of the ring
 *   "copy"        that copy alone, for seal-open.ts to subtract from "open"
 *   "evp-message" the floor for one message on one context: IV, one EVP_CipherUpdate of
 *                 the whole padded plaintext in place, EVP_CipherFinal_ex, the tag
 *   "evp-update"  EVP_CipherUpdate of `plain` bytes alone, repeated: the raw cipher and
 *                 MAC throughput OpenSSL reaches at that size (what `openssl speed` shows)
 */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <openssl/evp.h>
#include "wg-crypto.h"
#include "wg-keypairs.h"

#define MTU 1420
#define MAX_PLAIN 1500
#define MESSAGE_ROOM (WG_HEADER_LEN + MAX_PLAIN + WG_PADDING + WG_TAG_LEN)
#define SUPER_BYTES 65536
#define OPEN_RING 64
#define SEAL_SLOT 1 /* seals with key a; OPEN_SLOT receives with key a */
#define OPEN_SLOT 2

static uint8_t key_a[32], key_b[32];
static uint8_t message[MESSAGE_ROOM], work[MESSAGE_ROOM];
static uint8_t originals[OPEN_RING][MESSAGE_ROOM];
static uint8_t super_packet[SUPER_BYTES], header_block[192];
static int32_t slots[1] = {SEAL_SLOT};

static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum { SEAL, SEGMENTS, OPEN, COPY, EVP_MESSAGE, EVP_UPDATE, KINDS };
static const char *const kinds[KINDS] = {"seal", "segments", "open", "copy", "evp-message", "evp-update"};

static void fill(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((seed += 0x9e3779b9u) >> 24);
}

/* Fresh keypairs each run: counters from 0, empty windows. */
static int install(void) {
  return wg_keypair_install(SEAL_SLOT, SEAL_SLOT, OPEN_SLOT, key_a, key_b) == 0 &&
         wg_keypair_install(OPEN_SLOT, OPEN_SLOT, SEAL_SLOT, key_b, key_a) == 0;
}

static int run_seal(uint32_t plain, uint32_t messages) {
  fill(message + WG_HEADER_LEN, plain, 1);
  for (uint32_t i = 0; i < messages; i++)
    if (wg_seal_one(SEAL_SLOT, message + WG_HEADER_LEN, plain, MTU) < 0) return 0;
  return 1;
}

static int run_segments(uint32_t plain, uint32_t header, uint32_t messages) {
  uint32_t payload = plain - header, per_super = SUPER_BYTES / payload, k = per_super;
  seal_step_t *s = wg_segment_sealer(slots, MTU);
  fill(header_block, header, 2);
  for (uint32_t i = 0; i < messages; i++, k++) {
    if (k == per_super) {
      if (s->reserve(s, 0, per_super) != 0) return 0;
      k = 0;
    }
    if (s->used + s->wire(s, plain) > s->cap) s->used = 0; /* as after a send */
    struct iovec v[2] = {{header_block, header}, {super_packet + k * payload, payload}};
    s->seal(s, 0, v);
  }
  return 1;
}

/* The originals: OPEN_RING messages sealed in a row (counters 0..OPEN_RING-1). */
static uint32_t seal_originals(uint32_t plain) {
  int32_t len = 0;
  for (int r = 0; r < OPEN_RING; r++) {
    fill(originals[r] + WG_HEADER_LEN, plain, (uint32_t)r);
    len = wg_seal_one(SEAL_SLOT, originals[r] + WG_HEADER_LEN, plain, MTU);
    if (len < 0) return 0;
  }
  return (uint32_t)len;
}

/* open: copy an original into work, open it; after a round of the ring the window is
 * reset so its counters are fresh again. copy: the same without opening. */
static int run_open(uint32_t len, uint32_t messages, int open) {
  for (uint32_t i = 0; i < messages; i++) {
    memcpy(work, originals[i % OPEN_RING], len);
    __asm__ volatile("" : : "r"(work) : "memory");
    if (open && wg_open_one(work, len) != OPEN_SLOT) return 0;
    if (i % OPEN_RING == OPEN_RING - 1) replay_reset(&wg_keypairs[OPEN_SLOT].window);
  }
  return 1;
}

/* On the same bytes as run_seal's ciphertext (message + 16), so alignment is alike. */
static int run_evp(uint32_t plain, uint32_t messages, int whole) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  uint8_t nonce[12] = {0}, *ct = message + WG_HEADER_LEN;
  uint32_t padded = wg_padded_len(plain, MTU);
  int n, ok = ctx && EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key_a, nonce, 1) == 1;
  fill(ct, padded, 3);
  for (uint32_t i = 0; ok && i < messages; i++) {
    if (!whole) {
      ok = EVP_CipherUpdate(ctx, ct, &n, ct, (int)plain) == 1;
      continue;
    }
    wg_put_le64(nonce + 4, i);
    ok = EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, 1) == 1 && EVP_CipherUpdate(ctx, ct, &n, ct, (int)padded) == 1 &&
         EVP_CipherFinal_ex(ctx, ct + n, &n) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, WG_TAG_LEN, ct + padded) == 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

static napi_value measure(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  char kind[16];
  uint32_t plain, header, messages;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_string_utf8(env, argv[0], kind, sizeof kind, NULL) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &plain) != napi_ok || napi_get_value_uint32(env, argv[2], &header) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &messages) != napi_ok) {
    napi_throw_type_error(env, NULL, "measure(kind, plain, header, messages): expected a string and three numbers");
    return NULL;
  }
  char err[128] = "";
  int k = 0;
  while (k < KINDS && strcmp(kind, kinds[k])) k++;
  uint32_t max_header = plain - 1 < sizeof header_block ? plain - 1 : (uint32_t)sizeof header_block;
  if (k == KINDS)
    snprintf(err, sizeof err, "measure: kind: \"%s\" is not seal, segments, open, copy, evp-message or evp-update", kind);
  else if (plain == 0 || plain > MAX_PLAIN) snprintf(err, sizeof err, "measure: plain: %u is not in 1..%d", plain, MAX_PLAIN);
  else if (k == SEGMENTS && (header == 0 || header > max_header))
    snprintf(err, sizeof err, "measure: header: %u is not in 1..%u", header, max_header);
  else if (!install()) snprintf(err, sizeof err, "measure: installing the keypairs failed");
  if (*err) {
    napi_throw_range_error(env, NULL, err);
    return NULL;
  }
  uint32_t len = 0;
  if (k == OPEN || k == COPY) len = seal_originals(plain);
  uint64_t t0 = cpu_ns();
  int ok = k == SEAL       ? run_seal(plain, messages)
           : k == SEGMENTS ? run_segments(plain, header, messages)
           : k <= COPY     ? len && run_open(len, messages, k == OPEN)
                           : run_evp(plain, messages, k == EVP_MESSAGE);
  uint64_t t1 = cpu_ns();
  if (!ok) {
    napi_throw_error(env, NULL, "measure: a seal or open failed");
    return NULL;
  }
  napi_create_double(env, (double)(t1 - t0) / messages, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  fill(key_a, 32, 11);
  fill(key_b, 32, 12);
  fill(super_packet, sizeof super_packet, 4);
  napi_create_function(env, "measure", NAPI_AUTO_LENGTH, measure, NULL, &fn);
  napi_set_named_property(env, exports, "measure", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
