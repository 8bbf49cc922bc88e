/*
 * bench/ceiling/fwd-wg.c -- "the encrypted ceiling": udptun's WireGuard data path with no
 * JS. The offload loop of offload-loop.h (the same kernel calls as fwd-offload.c) with
 * every datagram a WireGuard data message, sealed by send_segments' seal step and opened
 * in place by udptun's own code (src/native/wg-seal.c, wg-open.c, wg-keypairs.c,
 * wg-replay.c, linked as they are, with the system's OpenSSL 3; test/native/
 * wg_seal_open_test.c checks them against that OpenSSL).
 *
 * No handshake: each end takes the keypair one would have installed, as udptun's data
 * path uses it once a handshake is done. The two ends swap the keys and the indexes.
 *   --keys SENDHEX:RECVHEX   ChaCha20-Poly1305 keys, 64 hex digits each
 *   --index LOCAL:REMOTE     receiver indexes (u32): LOCAL names this end's keypair in
 *                            the peer's messages, REMOTE the peer's in ours
 *   -m MTU                   the device MTU, which caps the padding (udptun's device.mtu)
 * A received message that is not type 4, names another index, is replayed or does not
 * authenticate is dropped (counted as bad); the inner packet's padding is cut by its IP
 * length, as udptun's network path does.
 *
 * Build: cc -O2 -Wall -I src/native -o fwd-wg bench/ceiling/fwd-wg.c src/native/segment.c \
 *           src/native/coalesce.c src/native/endpoint.c src/native/wg-keypairs.c \
 *           src/native/wg-seal.c src/native/wg-open.c src/native/wg-replay.c -lcrypto
 * Usage: fwd-wg -i DEV -l LISTEN_ADDR:PORT -p PEER_ADDR:PORT --keys SEND:RECV --index LOCAL:REMOTE [-m MTU]
 * On SIGTERM/SIGINT it prints counters to stderr and exits 0.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include "core.h"
#include "wg-crypto.h"
#define PROG "fwd-wg"
#include "offload-loop.h"

static int32_t slot[BATCH]; /* every packet goes to the one peer: its keypair's slot */
static uint32_t mtu = 1420;

static seal_step_t *seal(void) {
  return wg_segment_sealer(slot, mtu);
}

/* IP packet length from its header: 0 if p does not start an IPv4 or IPv6 header. */
static uint32_t ip_len(const uint8_t *p, uint32_t avail) {
  if (avail >= 20 && p[0] >> 4 == 4) return (uint32_t)p[2] << 8 | p[3];
  if (avail >= 40 && p[0] >> 4 == 6) return 40 + ((uint32_t)p[4] << 8 | p[5]);
  return 0;
}

static int open_message(uint8_t *p, uint32_t len, uint32_t *off, uint32_t *plen) {
  if (wg_open_one(p, len) < 0) return 0;
  uint32_t padded = len - WG_MIN_MESSAGE, inner = ip_len(p + WG_HEADER_LEN, padded);
  if (inner == 0 || inner > padded) return 0; /* a keepalive, or not an IP packet */
  *off = WG_HEADER_LEN;
  *plen = inner;
  return 1;
}

/* "HEX:HEX" -> two 32-byte keys; 0 if malformed. */
static int parse_keys(const char *s, uint8_t *send, uint8_t *recv) {
  if (strlen(s) != 129 || s[64] != ':') return 0;
  for (int i = 0; i < 64; i++) {
    unsigned a, b;
    if (sscanf(s + 2 * i + (i >= 32), "%1x%1x", &a, &b) != 2) return 0;
    (i < 32 ? send : recv)[i % 32] = (uint8_t)(a << 4 | b);
  }
  return 1;
}

/* "LOCAL:REMOTE" -> two u32; 0 if malformed. */
static int parse_indexes(const char *s, uint32_t *local, uint32_t *remote) {
  char *end;
  unsigned long a = strtoul(s, &end, 0), b;
  if (end == s || *end != ':' || a > UINT32_MAX) return 0;
  const char *t = end + 1;
  b = strtoul(t, &end, 0);
  if (end == t || *end || b > UINT32_MAX) return 0;
  *local = (uint32_t)a;
  *remote = (uint32_t)b;
  return 1;
}

int main(int argc, char **argv) {
  static const struct option longs[] = {{"keys", required_argument, NULL, 'k'}, {"index", required_argument, NULL, 'x'}, {0}};
  const char *dev = NULL, *listen_s = NULL, *peer_s = NULL, *keys_s = NULL, *index_s = NULL;
  uint8_t send_key[32], recv_key[32];
  uint32_t local, remote;
  int opt;
  while ((opt = getopt_long(argc, argv, "i:l:p:m:", longs, NULL)) != -1) {
    switch (opt) {
    case 'i': dev = optarg; break;
    case 'l': listen_s = optarg; break;
    case 'p': peer_s = optarg; break;
    case 'm': mtu = (uint32_t)atoi(optarg); break;
    case 'k': keys_s = optarg; break;
    case 'x': index_s = optarg; break;
    default: goto usage;
    }
  }
  struct sockaddr_storage laddr, paddr;
  socklen_t llen;
  if (!dev || !parse_ends(listen_s, peer_s, &laddr, &llen, &paddr) || !keys_s || !index_s) {
  usage:
    fprintf(stderr, "usage: fwd-wg -i DEV -l LISTEN_ADDR:PORT -p PEER_ADDR:PORT --keys SENDHEX:RECVHEX --index LOCAL:REMOTE [-m MTU]\n");
    return 2;
  }
  if (!parse_keys(keys_s, send_key, recv_key)) {
    fprintf(stderr, "fwd-wg: --keys: expected SENDHEX:RECVHEX, 64 hex digits each\n");
    return 2;
  }
  if (!parse_indexes(index_s, &local, &remote)) {
    fprintf(stderr, "fwd-wg: --index: \"%s\" is not LOCAL:REMOTE (two integers in 0..4294967295)\n", index_s);
    return 2;
  }
  if (mtu < 576 || mtu > 9000) {
    fprintf(stderr, "fwd-wg: -m: %u is not an MTU in 576..9000\n", mtu);
    return 2;
  }
  int32_t s = (int32_t)(local & (WG_KEYPAIR_SLOTS - 1));
  if (wg_keypair_install(s, local, remote, send_key, recv_key) < 0) die("ChaCha20-Poly1305 context");
  for (int i = 0; i < BATCH; i++) slot[i] = s;
  static const uint8_t none[1];
  const wire_t wireguard = {.hdr = none, .hl = 0, .seal = seal, .unwrap = open_message};
  run_offload_loop(dev, &laddr, llen, &paddr, &wireguard);
  wg_keypair_forget(s);
  return 0;
}
