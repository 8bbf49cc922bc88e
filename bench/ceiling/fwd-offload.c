/*
 * bench/ceiling/fwd-offload.c -- "the ceiling without JS, offloads on": udptun's plain
 * transport (its 4-byte header in front of every inner packet) through the offload loop
 * the encrypted ceiling shares (offload-loop.h: TUN TSO/USO + split + UDP GSO; UDP GRO +
 * join, with the addon's own segment.c and coalesce.c).
 *
 * Build: cc -O2 -Wall -I src/native -o fwd-offload bench/ceiling/fwd-offload.c \
 *           src/native/segment.c src/native/coalesce.c src/native/endpoint.c
 * Usage: fwd-offload -i DEV -l LISTEN_ADDR:PORT -p PEER_ADDR:PORT   (IPv6 as [addr]:port)
 * On SIGTERM/SIGINT it prints counters to stderr and exits 0.
 */
#define _GNU_SOURCE
#include "core.h"
#define PROG "fwd-offload"
#include "offload-loop.h"

/* udptun's wire header (src/tunnel/header.ts): version 1 | type 1 (data), 3 bytes zero. */
#define HDR_LEN 4
static const uint8_t HDR[HDR_LEN] = {0x11, 0x00, 0x00, 0x00};

static int strip_header(uint8_t *p, uint32_t len, uint32_t *off, uint32_t *plen) {
  if (len <= HDR_LEN || memcmp(p, HDR, HDR_LEN) != 0) return 0;
  *off = HDR_LEN;
  *plen = len - HDR_LEN;
  return 1;
}

int main(int argc, char **argv) {
  const char *dev = NULL, *listen_s = NULL, *peer_s = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "i:l:p:")) != -1) {
    switch (opt) {
    case 'i': dev = optarg; break;
    case 'l': listen_s = optarg; break;
    case 'p': peer_s = optarg; break;
    default: goto usage;
    }
  }
  struct sockaddr_storage laddr, paddr;
  socklen_t llen;
  if (!dev || !parse_ends(listen_s, peer_s, &laddr, &llen, &paddr)) {
  usage:
    fprintf(stderr, "usage: fwd-offload -i DEV -l LISTEN_ADDR:PORT -p PEER_ADDR:PORT (one family; IPv6 as [addr]:port)\n");
    return 2;
  }
  const wire_t plain = {.hdr = HDR, .hl = HDR_LEN, .seal = NULL, .unwrap = strip_header};
  run_offload_loop(dev, &laddr, llen, &paddr, &plain);
  return 0;
}
