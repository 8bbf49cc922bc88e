/* WireGuard sealing and opening (src/native/wg-seal.c, wg-open.c) against the system's
 * OpenSSL 3, the one bench/ceiling/fwd-wg.c links (the addon's tests cover Node's own).
 * The reference seals each message the documented way, on a fresh context: key and
 * nonce through EVP_EncryptInit_ex, one update, final, GET_TAG. Checked: wg_seal_one and
 * the segment seal step (random lengths 0..1500, random header/payload splits, a dirty
 * seal buffer) give the reference's bytes exactly; wg_open_one opens them, refuses a
 * tampered one, and opens the next message after a refusal (the receiving context starts
 * each message afresh from the nonce it is given). */
#include <openssl/evp.h>
#include <stdlib.h>
#include "../../src/native/wg-crypto.h"
#include "check.h"

#define MTU 1420
#define SEND 1 /* seals with key_a */
#define RECV 2 /* opens with key_a */
#define ROOM (WG_HEADER_LEN + 1500 + WG_PADDING + WG_TAG_LEN)

static uint8_t key_a[32], key_b[32];

static void random_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rand();
}

/* The reference message for plaintext (len bytes) with counter; returns its length. */
static uint32_t reference(const uint8_t *plain, uint32_t len, uint64_t counter, uint8_t *out) {
  uint32_t padded = wg_padded_len(len, MTU);
  uint8_t nonce[12] = {0}, text[1500 + WG_PADDING] = {0};
  int n = 0, m = 0;
  memcpy(text, plain, len);
  wg_put_le32(out, WG_TYPE_DATA);
  wg_put_le32(out + 4, RECV);
  wg_put_le64(out + 8, counter);
  wg_put_le64(nonce + 4, counter);
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx || EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, key_a, nonce) != 1 ||
      EVP_EncryptUpdate(ctx, out + WG_HEADER_LEN, &n, text, (int)padded) != 1 ||
      EVP_EncryptFinal_ex(ctx, out + WG_HEADER_LEN + n, &m) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, WG_TAG_LEN, out + WG_HEADER_LEN + padded) != 1)
    padded = 0;
  EVP_CIPHER_CTX_free(ctx);
  return WG_HEADER_LEN + padded + WG_TAG_LEN;
}

static int install(void) {
  EXPECT(wg_keypair_install(SEND, SEND, RECV, key_a, key_b) == 0 && wg_keypair_install(RECV, RECV, SEND, key_b, key_a) == 0,
         "installing the keypairs failed");
  return 1;
}

/* Opens msg (a copy) and checks the plaintext and the zero padding. */
static int opens(const uint8_t *msg, uint32_t mlen, const uint8_t *plain, uint32_t len) {
  uint8_t copy[ROOM];
  memcpy(copy, msg, mlen);
  int32_t verdict = wg_open_one(copy, mlen);
  EXPECT(verdict == RECV, "length %u: wg_open_one gave %d, not slot %d", len, verdict, RECV);
  EXPECT(memcmp(copy + WG_HEADER_LEN, plain, len) == 0, "length %u: opened plaintext differs", len);
  for (uint32_t i = WG_HEADER_LEN + len; i < mlen - WG_TAG_LEN; i++)
    EXPECT(copy[i] == 0, "length %u: padding byte %u is %u", len, i - WG_HEADER_LEN, copy[i]);
  return 1;
}

static int seal_in_place(void) {
  if (!install()) return 0;
  for (uint64_t counter = 0; counter < 2000; counter++) {
    uint32_t len = counter < 2 ? (uint32_t)counter * 1500 : (uint32_t)rand() % 1501;
    uint8_t plain[1500], buf[ROOM], want[ROOM];
    random_bytes(plain, len);
    memset(buf, 0xa5, sizeof buf); /* whatever lay after the packet must not be sent */
    memcpy(buf + WG_HEADER_LEN, plain, len);
    int32_t got = wg_seal_one(SEND, buf + WG_HEADER_LEN, len, MTU);
    uint32_t wlen = reference(plain, len, counter, want);
    EXPECT(got == (int32_t)wlen, "length %u: wg_seal_one returned %d, the reference is %u bytes", len, got, wlen);
    EXPECT(memcmp(buf, want, wlen) == 0, "length %u (counter %llu): not the reference's bytes", len, (unsigned long long)counter);
    if (!opens(buf, wlen, plain, len)) return 0;
  }
  return 1;
}

static int seal_segments(void) {
  if (!install()) return 0;
  int32_t slots[1] = {SEND};
  seal_step_t *s = wg_segment_sealer(slots, MTU);
  EXPECT(s->reserve(s, 0, 2000) == 0, "reserve refused 2000 counters");
  for (uint64_t counter = 0; counter < 2000; counter++) {
    uint32_t len = 1 + (uint32_t)rand() % 1500, head = (uint32_t)rand() % (len + 1);
    uint8_t plain[1500], want[ROOM];
    random_bytes(plain, len);
    if (s->used + s->wire(s, len) > s->cap) s->used = 0; /* as after a send: old bytes stay */
    struct iovec v[2] = {{plain, head}, {plain + head, len - head}};
    s->seal(s, 0, v);
    uint32_t wlen = reference(plain, len, counter, want);
    EXPECT(v[0].iov_len == wlen && v[1].iov_len == 0, "length %u split at %u: %zu + %zu bytes, the reference is %u", len, head,
           v[0].iov_len, v[1].iov_len, wlen);
    EXPECT(memcmp(v[0].iov_base, want, wlen) == 0, "length %u split at %u: not the reference's bytes", len, head);
    if (!opens(v[0].iov_base, wlen, plain, len)) return 0;
  }
  return 1;
}

static int open_after_refusal(void) {
  if (!install()) return 0;
  uint8_t plain[300], msg[ROOM];
  for (uint64_t counter = 0; counter < 50; counter++) {
    uint32_t len = (uint32_t)rand() % 300;
    random_bytes(plain, len);
    uint32_t mlen = reference(plain, len, counter, msg);
    uint8_t bad[ROOM];
    memcpy(bad, msg, mlen);
    bad[mlen - 1 - (uint32_t)rand() % (mlen - WG_HEADER_LEN)] ^= 0x40; /* ciphertext or tag */
    int32_t verdict = wg_open_one(bad, mlen);
    EXPECT(verdict == WG_DECRYPT_FAILED, "counter %llu: a tampered message gave %d", (unsigned long long)counter, verdict);
    if (!opens(msg, mlen, plain, len)) return 0;
  }
  return 1;
}

int main(void) {
  srand(13);
  random_bytes(key_a, 32);
  random_bytes(key_b, 32);
  report("seal in place: the reference's bytes for lengths 0..1500, over a dirty buffer; opened back", seal_in_place());
  report("seal step: the reference's bytes for random header/payload splits, dirty seal buffer; opened back", seal_segments());
  report("open: a tampered message is refused, the same counter then opens", open_after_refusal());
  return finish();
}
