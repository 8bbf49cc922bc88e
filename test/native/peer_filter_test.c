/* Runs the peer filter's program (src/native/filter_program.h) on real UDP sockets: IPv4,
 * IPv6-only and dual-stack receivers on loopback, probed from sockets bound to chosen
 * addresses and ports. The program runs in a network namespace of its own (so it may give
 * lo the IPv6 addresses it needs, and the fixed ports are free): peers must be admitted,
 * strangers and near misses (right address and wrong port, an IPv6 address off by one
 * 32-bit word, an IPv4 address equal to an IPv6 endpoint's low word) refused. In wireguard
 * mode peers are admitted with any payload, strangers only with an exact handshake message
 * (near misses in size, type and reserved bytes refused). A probe's verdict is its arrival,
 * or the socket's drop count (SO_MEMINFO) going up by one. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../../src/native/filter_program.h"
#include "check.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void add_attr(uint8_t *msg, unsigned short type, const void *data, size_t len) {
  struct nlmsghdr *n = (struct nlmsghdr *)msg;
  struct rtattr *rta = (struct rtattr *)(msg + NLMSG_ALIGN(n->nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* Gives lo an IPv6 address, usable at once (no duplicate address detection). */
static void add_ipv6(const char *text) {
  _Alignas(struct nlmsghdr) uint8_t msg[256] = {0};
  struct nlmsghdr *n = (struct nlmsghdr *)msg;
  struct ifaddrmsg *a = NLMSG_DATA(n);
  n->nlmsg_len = NLMSG_LENGTH(sizeof *a);
  n->nlmsg_type = RTM_NEWADDR;
  n->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
  a->ifa_family = AF_INET6;
  a->ifa_prefixlen = 128;
  a->ifa_index = if_nametoindex("lo");
  struct in6_addr addr;
  uint32_t flags = IFA_F_NODAD;
  if (inet_pton(AF_INET6, text, &addr) != 1) die(text);
  add_attr(msg, IFA_LOCAL, &addr, sizeof addr);
  add_attr(msg, IFA_FLAGS, &flags, sizeof flags);
  int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  _Alignas(struct nlmsghdr) uint8_t buf[512];
  if (fd < 0 || send(fd, msg, n->nlmsg_len, 0) < 0 || recv(fd, buf, sizeof buf, 0) < 0) die("netlink");
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  struct nlmsgerr *e = NLMSG_DATA(h);
  if (h->nlmsg_type == NLMSG_ERROR && e->error) {
    errno = -e->error;
    die(text);
  }
  close(fd);
}

/* A namespace of our own with lo up (127.0.0.0/8 and ::1 come with it). */
static void enter_netns(void) {
  if (unshare(CLONE_NEWNET) < 0) die("unshare(CLONE_NEWNET), which needs CAP_SYS_ADMIN");
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS lo");
  close(fd);
}

/* The IPv6 peer, one near miss per 32-bit word (the program compares word by word), and two
 * addresses whose low word reads as an IPv4 address. */
#define P6 "fd00:1111:2222:3333:4444:5555:6666:7777"
#define W0 "fd01:1111:2222:3333:4444:5555:6666:7777"
#define W1 "fd00:1111:2223:3333:4444:5555:6666:7777"
#define W2 "fd00:1111:2222:3333:4444:5556:6666:7777"
#define W3 "fd00:1111:2222:3333:4444:5555:6666:7778"
#define Q6 "fd00::2"
#define M6 "fd00::7f00:2" /* low word 127.0.0.2 */
#define F6 "fd00::7f00:5" /* low word 127.0.0.5 */

static socklen_t sockaddr_of(const char *addr, uint16_t port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strchr(addr, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) die(addr);
    return sizeof *s6;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1) die(addr);
  return sizeof *s4;
}

static void endpoint(uint8_t *ep, const char *addr, uint16_t port) {
  struct sockaddr_storage ss;
  memset(ep, 0, ENDPOINT_BYTES);
  ep[2] = (uint8_t)(port >> 8);
  ep[3] = (uint8_t)port;
  if (sockaddr_of(addr, port, &ss) == sizeof(struct sockaddr_in6)) {
    ep[0] = 6;
    memcpy(ep + 4, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
  } else {
    ep[0] = 4;
    memcpy(ep + 4, &((struct sockaddr_in *)&ss)->sin_addr, 4);
  }
}

typedef struct {
  int fd;
  int v4, v6; /* families it receives */
  uint16_t port;
  uint32_t drops;
  const char *name;
} rx_t;

static uint32_t drops_of(int fd) {
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t sl = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &sl) < 0) die("SO_MEMINFO");
  return mem[SK_MEMINFO_DROPS];
}

static rx_t open_rx(const char *name, const char *addr, uint16_t port, int v6only) {
  rx_t r = {.name = name, .port = port};
  struct sockaddr_storage ss;
  socklen_t sl = sockaddr_of(addr, port, &ss);
  r.fd = socket(ss.ss_family, SOCK_DGRAM, 0);
  if (ss.ss_family == AF_INET6 && setsockopt(r.fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
    die("IPV6_V6ONLY");
  if (bind(r.fd, (struct sockaddr *)&ss, sl) < 0) die(name);
  r.v4 = ss.ss_family == AF_INET || !v6only;
  r.v6 = ss.ss_family == AF_INET6;
  return r;
}

/* Builds the program for count endpoints as udpFilter does and attaches it. Returns its
 * length, or 0 with why set. */
static size_t attach(rx_t *r, const uint8_t *eps, size_t count, enum filter_mode mode) {
  size_t n4 = 0, n6 = 0;
  for (size_t e = 0; e < count; e++) *(eps[e * ENDPOINT_BYTES] == 4 ? &n4 : &n6) += 1;
  size_t n = filter_program_length(n4, n6, mode);
  struct sock_filter *prog = calloc(n, sizeof *prog);
  size_t built = filter_program_build(prog, eps, count, n4, n6, mode);
  struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};
  int rc = built == n ? setsockopt(r->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) : 0;
  int err = errno;
  free(prog);
  if (built != n || rc < 0) { /* no earlier program may judge the probes that follow */
    int unused = 0;
    setsockopt(r->fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused);
  }
  if (built != n) {
    snprintf(why, sizeof why, "built %zu instructions, length said %zu", built, n);
    return 0;
  }
  if (rc < 0) {
    snprintf(why, sizeof why, "SO_ATTACH_FILTER of %zu instructions: %s", n, strerror(err));
    return 0;
  }
  r->drops = drops_of(r->fd);
  return n;
}

static uint32_t tag;

/* A datagram's payload: its size and first four bytes (the rest zero but a tag, so an arrival
 * is known to be this probe's). The plain probes send 100 bytes of zero type. With segment
 * set, one UDP GSO send of size bytes cut into datagrams of segment bytes, each starting
 * with head: to a socket with UDP_GRO it arrives as one skb, as a GRO-merged train would. */
typedef struct {
  size_t size;
  uint8_t head[4];
  const char *label;
  int segment;
} payload_t;
static const payload_t PLAIN = {100, {0}, NULL, 0};

/* Sends one datagram from addr:port to the receiver; returns 1 if it arrived (whole, from
 * that source), 0 if the kernel dropped it, with why set to anything else. */
static int probe(rx_t *r, const char *addr, uint16_t port, const payload_t *pl) {
  struct sockaddr_storage src, dst;
  socklen_t sl = sockaddr_of(addr, port, &src);
  int v6 = src.ss_family == AF_INET6;
  socklen_t dl = sockaddr_of(v6 ? "::1" : "127.0.0.1", r->port, &dst);
  int fd = socket(src.ss_family, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&src, sl) < 0) {
    snprintf(why, sizeof why, "bind %s:%u: %s", addr, port, strerror(errno));
    return -1;
  }
  uint8_t out[2048] = {0}, in[2048];
  const size_t len = pl->size;
  tag++;
  memcpy(out, pl->head, len < 4 ? len : 4);
  if (len >= 8) memcpy(out + 4, &tag, sizeof tag);
  for (size_t at = (size_t)pl->segment; pl->segment && at + 4 <= len; at += (size_t)pl->segment) memcpy(out + at, pl->head, 4);
  if (pl->segment && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &pl->segment, sizeof pl->segment) < 0) {
    snprintf(why, sizeof why, "UDP_SEGMENT: %s", strerror(errno));
    close(fd);
    return -1;
  }
  ssize_t sent = sendto(fd, out, len, 0, (struct sockaddr *)&dst, dl);
  close(fd);
  if (sent != (ssize_t)len) {
    snprintf(why, sizeof why, "send from %s:%u: %s", addr, port, strerror(errno));
    return -1;
  }
  /* Loopback delivers in the sending call unless softirq work was deferred: then wait for the
   * datagram (poll) or for the drop count to move. */
  for (int round = 0; round < 250; round++) {
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(r->fd, in, sizeof in, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
    if (n >= 0) {
      uint16_t from_port = ntohs(from.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&from)->sin6_port
                                                             : ((struct sockaddr_in *)&from)->sin_port);
      if (n != (ssize_t)len || memcmp(in, out, len) != 0 || from_port != port) {
        snprintf(why, sizeof why, "received %zd bytes from port %u, not this probe's %zu from %u", n, from_port,
                 len, port);
        return -1;
      }
      return 1;
    }
    uint32_t d = drops_of(r->fd);
    if (d != r->drops) {
      uint32_t more = d - r->drops;
      r->drops = d;
      if (more == 1) return 0;
      snprintf(why, sizeof why, "%u drops for one datagram", more);
      return -1;
    }
    struct pollfd pf = {r->fd, POLLIN, 0};
    poll(&pf, 1, 20);
  }
  snprintf(why, sizeof why, "no datagram and no drop after 5 s");
  return -1;
}

static void expect_payload(rx_t *r, const char *addr, uint16_t port, const payload_t *pl, int admit, const char *label) {
  char name[400], sent[80] = "";
  if (pl->label) snprintf(sent, sizeof sent, ", %s", pl->label);
  snprintf(name, sizeof name, "%s: %s%s%s:%u (%s%s) %s", r->name, strchr(addr, ':') ? "[" : "", addr,
           strchr(addr, ':') ? "]" : "", port, label, sent, admit ? "admitted" : "refused");
  int v = probe(r, addr, port, pl);
  if (v >= 0 && v != admit) snprintf(why, sizeof why, "%s", v ? "admitted" : "dropped");
  report(name, v == admit);
}

static void expect(rx_t *r, const char *addr, uint16_t port, int admit, const char *label) {
  expect_payload(r, addr, port, &PLAIN, admit, label);
}

static void expect_attached_mode(rx_t *r, const uint8_t *eps, size_t count, enum filter_mode mode, size_t want,
                                 const char *label) {
  char name[300];
  snprintf(name, sizeof name, "%s: %s%s: a program of %zu instructions attaches", r->name, label,
           mode == FILTER_WIREGUARD ? " (wireguard)" : "", want);
  size_t n = attach(r, eps, count, mode);
  if (n && n != want) snprintf(why, sizeof why, "%zu instructions", n);
  report(name, n == want);
}

static void expect_attached(rx_t *r, const uint8_t *eps, size_t count, size_t want, const char *label) {
  expect_attached_mode(r, eps, count, FILTER_PLAIN, want, label);
}

/* The length the layout in filter_program.h gives: a 5-instruction head; per family with
 * endpoints, its loads (4 IPv4, 11 IPv6), a block per endpoint (5, 11) and a drop; a family
 * without endpoints, one drop; nothing at all, one drop. */
#define LENGTH(n4, n6) \
  ((n4) + (n6) == 0 ? 1 : 5 + ((n4) ? 4 + 5 * (n4) + 1 : 1) + ((n6) ? 11 + 11 * (n6) + 1 : 1))
/* Wireguard: the same, each family's drop a jump, then the handshake check (a length load;
 * per message a length test, a word load, a word test; drop; accept). Alone without endpoints. */
#define CHECK_LEN (1 + 3 * 3 + 2)
#define WG_LENGTH(n4, n6) ((n4) + (n6) == 0 ? CHECK_LEN : LENGTH(n4, n6) + CHECK_LEN)

#define MANY 817
static uint8_t eps[MANY * ENDPOINT_BYTES];

/* count - 1 strangers' endpoints (10.x.y.z:1 or fd00:9::x:1), then the peer's. */
static void crowd(size_t count, int v6, const char *peer, uint16_t port) {
  for (size_t e = 0; e + 1 < count; e++) {
    char a[64];
    if (v6) snprintf(a, sizeof a, "fd00:9::%zx", e);
    else snprintf(a, sizeof a, "10.%zu.%zu.%zu", e >> 16, (e >> 8) & 255, e & 255);
    endpoint(eps + e * ENDPOINT_BYTES, a, 1);
  }
  endpoint(eps + (count - 1) * ENDPOINT_BYTES, peer, port);
}

/* max4 IPv4 or max6 IPv6 endpoints fit BPF_MAXINSNS in this mode, one more does not. */
static void expect_limits(enum filter_mode mode, size_t max4, size_t max6) {
  char name[200];
  snprintf(name, sizeof name, "program length%s: %zu IPv4 or %zu IPv6 endpoints fit BPF_MAXINSNS, one more does not",
           mode == FILTER_WIREGUARD ? " (wireguard)" : "", max4, max6);
  size_t l4 = filter_program_length(max4, 0, mode), over4 = filter_program_length(max4 + 1, 0, mode);
  size_t l6 = filter_program_length(0, max6, mode), over6 = filter_program_length(0, max6 + 1, mode);
  snprintf(why, sizeof why, "lengths %zu %zu %zu %zu (BPF_MAXINSNS %d)", l4, over4, l6, over6, BPF_MAXINSNS);
  report(name, l4 <= BPF_MAXINSNS && over4 > BPF_MAXINSNS && l6 <= BPF_MAXINSNS && over6 > BPF_MAXINSNS);
}

/* WireGuard messages and near misses of them (a stranger may send only the first three). */
static const payload_t INITIATION = {148, {1, 0, 0, 0}, "a 148-byte initiation"};
static const payload_t RESPONSE = {92, {2, 0, 0, 0}, "a 92-byte response"};
static const payload_t COOKIE = {64, {3, 0, 0, 0}, "a 64-byte cookie reply"};
static const payload_t KEEPALIVE = {32, {4, 0, 0, 0}, "a 32-byte keepalive (data)"};
static const payload_t DATA = {1452, {4, 0, 0, 0}, "a 1452-byte data message"};
static const payload_t NEAR_MISSES[] = {
  {147, {1, 0, 0, 0}, "an initiation one byte short"},
  {149, {1, 0, 0, 0}, "an initiation one byte long"},
  {156, {1, 0, 0, 0}, "an initiation 8 bytes long (the UDP length, header included)"},
  {140, {1, 0, 0, 0}, "an initiation 8 bytes short"},
  {91, {2, 0, 0, 0}, "a response one byte short"},
  {93, {2, 0, 0, 0}, "a response one byte long"},
  {63, {3, 0, 0, 0}, "a cookie reply one byte short"},
  {65, {3, 0, 0, 0}, "a cookie reply one byte long"},
  {148, {2, 0, 0, 0}, "initiation size, response type"},
  {92, {1, 0, 0, 0}, "response size, initiation type"},
  {64, {1, 0, 0, 0}, "cookie reply size, initiation type"},
  {148, {4, 0, 0, 0}, "a data message of an initiation's size"},
  {148, {0, 0, 0, 1}, "initiation size, the type big-endian"},
  {148, {1, 1, 0, 0}, "an initiation with reserved byte 1 set"},
  {92, {2, 0, 0, 0x80}, "a response with reserved byte 3 set"},
  {64, {3, 0, 1, 0}, "a cookie reply with reserved byte 2 set"},
  {32, {4, 0, 0, 0}, "a 32-byte keepalive (data)"},
  {1452, {4, 0, 0, 0}, "a 1452-byte data message"},
  {100, {0}, "100 bytes of junk"},
  {4, {1, 0, 0, 0}, "a bare initiation type"},
  {0, {0}, "an empty datagram"},
};
#define NEAR_MISS_COUNT (sizeof NEAR_MISSES / sizeof NEAR_MISSES[0])

/* A source outside the endpoints: the three handshake messages admitted, every near miss refused. */
static void expect_stranger(rx_t *r, const char *addr, uint16_t port, const char *label) {
  expect_payload(r, addr, port, &INITIATION, 1, label);
  expect_payload(r, addr, port, &RESPONSE, 1, label);
  expect_payload(r, addr, port, &COOKIE, 1, label);
  for (size_t i = 0; i < NEAR_MISS_COUNT; i++) expect_payload(r, addr, port, &NEAR_MISSES[i], 0, label);
}

/* A known endpoint: anything admitted, data, keepalive, junk, handshakes and the empty datagram. */
static void expect_peer(rx_t *r, const char *addr, uint16_t port, const char *label) {
  expect_payload(r, addr, port, &DATA, 1, label);
  expect_payload(r, addr, port, &KEEPALIVE, 1, label);
  expect_payload(r, addr, port, &INITIATION, 1, label);
  for (size_t i = 0; i < NEAR_MISS_COUNT; i++) expect_payload(r, addr, port, &NEAR_MISSES[i], 1, label);
}

static void wireguard_mode(rx_t *r4, rx_t *r6, rx_t *rd) {
  endpoint(eps, "127.0.0.2", 40001);
  endpoint(eps + 20, "127.0.0.3", 40002);
  expect_attached_mode(r4, eps, 2, FILTER_WIREGUARD, WG_LENGTH(2, 0), "2 IPv4 endpoints");
  expect_peer(r4, "127.0.0.2", 40001, "a peer");
  expect_payload(r4, "127.0.0.3", 40002, &DATA, 1, "another peer");
  expect_stranger(r4, "127.0.0.4", 40001, "a stranger with a peer's port");
  expect_stranger(r4, "127.0.0.2", 40003, "a peer's address, another port (a roamed peer)");

  endpoint(eps, W0, 40003);
  endpoint(eps + 20, P6, 40001);
  expect_attached_mode(r6, eps, 2, FILTER_WIREGUARD, WG_LENGTH(0, 2), "2 IPv6 endpoints");
  expect_peer(r6, P6, 40001, "a peer");
  expect_payload(r6, W0, 40003, &KEEPALIVE, 1, "a peer");
  expect_stranger(r6, W1, 40001, "a peer's address but word 1");
  expect_stranger(r6, P6, 40002, "a peer's address, another port");

  endpoint(eps, "127.0.0.2", 40001);
  endpoint(eps + 20, P6, 40001);
  expect_attached_mode(rd, eps, 2, FILTER_WIREGUARD, WG_LENGTH(1, 1), "IPv4 and IPv6 endpoints");
  expect_peer(rd, "127.0.0.2", 40001, "an IPv4 peer");
  expect_peer(rd, P6, 40001, "an IPv6 peer");
  expect_stranger(rd, "127.0.0.5", 40001, "an IPv4 stranger");
  expect_stranger(rd, M6, 40001, "an IPv6 stranger, its low word an IPv4 peer's address");

  expect_attached_mode(rd, eps, 1, FILTER_WIREGUARD, WG_LENGTH(1, 0), "IPv4 endpoints only");
  expect_payload(rd, "127.0.0.2", 40001, &DATA, 1, "an IPv4 peer");
  expect_payload(rd, P6, 40001, &INITIATION, 1, "IPv6, no IPv6 endpoints");
  expect_payload(rd, P6, 40001, &DATA, 0, "IPv6, no IPv6 endpoints");
  expect_attached_mode(rd, eps + 20, 1, FILTER_WIREGUARD, WG_LENGTH(0, 1), "IPv6 endpoints only");
  expect_payload(rd, P6, 40001, &DATA, 1, "an IPv6 peer");
  expect_payload(rd, "127.0.0.2", 40001, &RESPONSE, 1, "IPv4, no IPv4 endpoints");
  expect_payload(rd, "127.0.0.2", 40001, &KEEPALIVE, 0, "IPv4, no IPv4 endpoints");

  /* No endpoint configured at all: a WireGuard peer may still introduce itself. */
  expect_attached_mode(rd, eps, 0, FILTER_WIREGUARD, WG_LENGTH(0, 0), "no endpoints");
  expect_stranger(rd, "127.0.0.2", 40001, "IPv4, no peers known");
  expect_stranger(rd, P6, 40001, "IPv6, no peers known");

  /* The plain program is unchanged: a stranger's handshake is refused there. */
  expect_attached(rd, eps, 2, LENGTH(1, 1), "IPv4 and IPv6 endpoints");
  expect_payload(rd, "127.0.0.5", 40001, &INITIATION, 0, "an IPv4 stranger");
  expect_payload(rd, M6, 40001, &RESPONSE, 0, "an IPv6 stranger");
  expect_payload(rd, "127.0.0.2", 40001, &DATA, 1, "an IPv4 peer");

  /* The limits the header states: 814 IPv4 or 369 IPv6 endpoints; the jump from the IPv4
   * section to the handshake check crosses them all. */
  expect_limits(FILTER_WIREGUARD, 814, 369);
  crowd(814, 0, "127.0.0.2", 40001);
  expect_attached_mode(rd, eps, 814, FILTER_WIREGUARD, WG_LENGTH(814, 0), "814 IPv4 endpoints");
  expect_payload(rd, "127.0.0.2", 40001, &DATA, 1, "the last of 814 peers");
  expect_payload(rd, "127.0.0.2", 40003, &INITIATION, 1, "a stranger past 814 IPv4 blocks");
  expect_payload(rd, "127.0.0.2", 40003, &KEEPALIVE, 0, "a stranger past 814 IPv4 blocks");
  expect_payload(rd, P6, 40001, &COOKIE, 1, "IPv6, no IPv6 endpoints");
  crowd(369, 1, P6, 40001);
  expect_attached_mode(r6, eps, 369, FILTER_WIREGUARD, WG_LENGTH(0, 369), "369 IPv6 endpoints");
  expect_payload(r6, P6, 40001, &DATA, 1, "the last of 369 peers");
  expect_payload(r6, W2, 40001, &RESPONSE, 1, "a stranger past 369 IPv6 blocks");
  expect_payload(r6, W2, 40001, &DATA, 0, "a stranger past 369 IPv6 blocks");
}

/* With UDP_GRO on the socket (as udptun sets it) the filter judges a merged train once, by its
 * summed length: two initiations in one skb are no handshake message. From a peer it arrives
 * whole; from a stranger it is dropped, once. */
static void gro_train(void) {
  rx_t rg = open_rx("dual-stack socket with UDP_GRO", "::", 7003, 0);
  int on = 1;
  if (setsockopt(rg.fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0) die("UDP_GRO");
  static const payload_t TWO = {296, {1, 0, 0, 0}, "two 148-byte initiations in one GSO send", 148};
  endpoint(eps, "127.0.0.2", 40001);
  endpoint(eps + 20, P6, 40001);
  expect_attached_mode(&rg, eps, 2, FILTER_WIREGUARD, WG_LENGTH(1, 1), "IPv4 and IPv6 endpoints");
  expect_payload(&rg, "127.0.0.2", 40001, &TWO, 1, "an IPv4 peer");
  expect_payload(&rg, P6, 40001, &TWO, 1, "an IPv6 peer");
  expect_payload(&rg, "127.0.0.5", 40001, &TWO, 0, "an IPv4 stranger");
  expect_payload(&rg, M6, 40001, &TWO, 0, "an IPv6 stranger");
  expect_payload(&rg, "127.0.0.5", 40001, &INITIATION, 1, "an IPv4 stranger");
}

int main(void) {
  enter_netns();
  const char *v6s[] = {P6, W0, W1, W2, W3, Q6, M6, F6};
  for (size_t i = 0; i < sizeof v6s / sizeof v6s[0]; i++) add_ipv6(v6s[i]);

  rx_t r4 = open_rx("IPv4 socket", "127.0.0.1", 7000, 0);
  rx_t r6 = open_rx("IPv6-only socket", "::1", 7001, 1);
  rx_t rd = open_rx("dual-stack socket", "::", 7002, 0);

  /* Three IPv4 endpoints, two sharing an address. */
  endpoint(eps, "127.0.0.2", 40001);
  endpoint(eps + 20, "127.0.0.3", 40002);
  endpoint(eps + 40, "127.0.0.2", 40004);
  expect_attached(&r4, eps, 3, LENGTH(3, 0), "3 IPv4 endpoints");
  expect(&r4, "127.0.0.2", 40001, 1, "a peer");
  expect(&r4, "127.0.0.3", 40002, 1, "another peer");
  expect(&r4, "127.0.0.2", 40004, 1, "a peer's second port, past a block of its address");
  expect(&r4, "127.0.0.2", 40003, 0, "a peer's address, another port");
  expect(&r4, "127.0.0.4", 40001, 0, "a peer's port, another address");
  expect(&r4, "127.0.0.3", 40001, 0, "one peer's address with another's port");
  expect(&r4, "127.0.0.1", 40002, 0, "a stranger");

  /* IPv6 endpoints sharing words with the peer, so a mismatch in every word is taken on the
   * way to a later block. */
  endpoint(eps, W0, 40003);
  endpoint(eps + 20, W2, 40001);
  endpoint(eps + 40, P6, 40001);
  endpoint(eps + 60, Q6, 40002);
  expect_attached(&r6, eps, 4, LENGTH(0, 4), "4 IPv6 endpoints");
  expect(&r6, P6, 40001, 1, "a peer, past blocks that differ in word 0 and word 2");
  expect(&r6, W0, 40003, 1, "a peer");
  expect(&r6, W2, 40001, 1, "a peer");
  expect(&r6, Q6, 40002, 1, "a peer");
  expect(&r6, P6, 40002, 0, "a peer's address, another port");
  expect(&r6, P6, 40003, 0, "a peer's address with another peer's port");
  expect(&r6, W0, 40001, 0, "a peer's address with another peer's port");
  expect(&r6, W1, 40001, 0, "a peer's address but word 1");
  expect(&r6, W3, 40001, 0, "a peer's address but word 3");
  expect(&r6, "::1", 40001, 0, "a stranger");

  endpoint(eps, "127.0.0.2", 40001);
  endpoint(eps + 20, P6, 40001);
  endpoint(eps + 40, F6, 40005);
  expect_attached(&rd, eps, 3, LENGTH(1, 2), "IPv4 and IPv6 endpoints");
  expect(&rd, "127.0.0.2", 40001, 1, "an IPv4 peer");
  expect(&rd, P6, 40001, 1, "an IPv6 peer");
  expect(&rd, F6, 40005, 1, "an IPv6 peer");
  expect(&rd, "127.0.0.2", 40003, 0, "a peer's address, another port");
  expect(&rd, "127.0.0.5", 40005, 0, "IPv4, the address of an IPv6 peer's low word");
  expect(&rd, M6, 40001, 0, "IPv6, its low word an IPv4 peer's address");
  expect(&rd, W0, 40001, 0, "a peer's address but word 0");

  expect_attached(&rd, eps, 1, LENGTH(1, 0), "IPv4 endpoints only");
  expect(&rd, "127.0.0.2", 40001, 1, "an IPv4 peer");
  expect(&rd, P6, 40001, 0, "IPv6, no IPv6 endpoints");
  expect_attached(&rd, eps + 20, 2, LENGTH(0, 2), "IPv6 endpoints only");
  expect(&rd, P6, 40001, 1, "an IPv6 peer");
  expect(&rd, "127.0.0.2", 40001, 0, "IPv4, no IPv4 endpoints");
  expect_attached(&rd, eps, 0, LENGTH(0, 0), "no endpoints");
  expect(&rd, "127.0.0.2", 40001, 0, "no peers at all");
  expect(&rd, P6, 40001, 0, "no peers at all");

  /* The IPv6 section lies further than an 8-bit jump can reach. */
  crowd(300, 0, "127.0.0.2", 40001);
  endpoint(eps + 300 * ENDPOINT_BYTES, P6, 40001);
  expect_attached(&rd, eps, 301, LENGTH(300, 1), "300 IPv4 endpoints and an IPv6 one");
  expect(&rd, "127.0.0.2", 40001, 1, "the last of 300 IPv4 peers");
  expect(&rd, P6, 40001, 1, "an IPv6 peer past 300 IPv4 blocks");
  expect(&rd, "127.0.0.2", 40003, 0, "a peer's address, another port");
  expect(&rd, W3, 40001, 0, "a peer's address but word 3");

  /* The limits the header states: 817 IPv4 or 370 IPv6 endpoints. */
  expect_limits(FILTER_PLAIN, 817, 370);
  crowd(MANY, 0, "127.0.0.2", 40001);
  expect_attached(&r4, eps, MANY, LENGTH(MANY, 0), "817 IPv4 endpoints");
  expect(&r4, "127.0.0.2", 40001, 1, "the last of 817 peers");
  expect(&r4, "127.0.0.2", 40003, 0, "a peer's address, another port");
  crowd(370, 1, P6, 40001);
  expect_attached(&r6, eps, 370, LENGTH(0, 370), "370 IPv6 endpoints");
  expect(&r6, P6, 40001, 1, "the last of 370 peers");
  expect(&r6, W2, 40001, 0, "a peer's address but word 2");

  wireguard_mode(&r4, &r6, &rd);
  gro_train();
  return finish();
}
