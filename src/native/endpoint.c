/* Endpoint bytes (core.h) -> sockaddr. Plain C: the addon's send paths use it, and so does
 * bench/ceiling/fwd-offload.c through segment.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "core.h"

const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

socklen_t endpoint_to_sockaddr(const uint8_t *ep, int v6sock, struct sockaddr_storage *ss) {
  uint16_t port = (uint16_t)(ep[2] << 8 | ep[3]);
  memset(ss, 0, sizeof(struct sockaddr_in6));
  if (v6sock) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    if (ep[0] == 4) {
      memcpy(s6->sin6_addr.s6_addr, V4_MAPPED, 12);
      memcpy(s6->sin6_addr.s6_addr + 12, ep + 4, 4);
    } else if (ep[0] == 6) {
      memcpy(s6->sin6_addr.s6_addr, ep + 4, 16);
    } else {
      return 0;
    }
    return sizeof(struct sockaddr_in6);
  }
  if (ep[0] != 4) return 0;
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  memcpy(&s4->sin_addr, ep + 4, 4);
  return sizeof(struct sockaddr_in);
}
