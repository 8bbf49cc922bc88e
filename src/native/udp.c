/* UDP sockets (IPv4, IPv6, dual stack) with recvmmsg into pooled buffers and sendmmsg
 * from them. Endpoints cross to JS in the 20-byte form described in core.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "addon.h"
#include "linux-compat.h"

static void from_sockaddr(const struct sockaddr_storage *ss, uint8_t *ep) {
  memset(ep, 0, ENDPOINT_BYTES);
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    ep[0] = 4;
    memcpy(ep + 2, &s4->sin_port, 2);
    memcpy(ep + 4, &s4->sin_addr, 4);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    memcpy(ep + 2, &s6->sin6_port, 2);
    if (memcmp(s6->sin6_addr.s6_addr, V4_MAPPED, 12) == 0) {
      ep[0] = 4;
      memcpy(ep + 4, s6->sin6_addr.s6_addr + 12, 4);
    } else {
      ep[0] = 6;
      memcpy(ep + 4, s6->sin6_addr.s6_addr, 16);
    }
  }
}

static int set_buffer(int fd, int force_opt, int opt, int32_t bytes) {
  /* FORCE ignores net.core.[rw]mem_max, which cannot be raised inside a namespace. */
  if (bytes <= 0) return 0;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return 0;
  return setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

/* udpOpen(endpoint, rcvbuf, sndbuf, reusePort) -> { fd, endpoint } (the bound endpoint, port
 * filled in). reusePort nonzero: SO_REUSEPORT before bind, so several sockets share the
 * address and the kernel spreads datagrams over them by 4-tuple hash; missing means 0. */
napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 4, eplen;
  napi_value argv[4], out, v;
  uint8_t *ep;
  int32_t rcvbuf, sndbuf, reuse_port = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !arg_bytes(env, argv[0], &ep, &eplen) || eplen < ENDPOINT_BYTES ||
      !arg_int32(env, argv[1], &rcvbuf) || !arg_int32(env, argv[2], &sndbuf) ||
      (argc >= 4 && !arg_int32(env, argv[3], &reuse_port)))
    return throw_errno(env, EINVAL, "udpOpen(endpoint, rcvbuf, sndbuf, reusePort)");

  int v6 = ep[0] == 6;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int zero = 0;
  static const uint8_t any6[16] = {0};
  /* Binding the IPv6 wildcard serves IPv4 peers too (they appear v4-mapped). */
  if (v6 && memcmp(ep + 4, any6, 16) == 0) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf);

  int one = 1;
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "SO_REUSEPORT");
  }

  struct sockaddr_storage ss;
  socklen_t sl = endpoint_to_sockaddr(ep, v6, &ss);
  if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);

  void *data;
  napi_value ab;
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, fd, &v));
  CHECK(napi_set_named_property(env, out, "fd", v));
  CHECK(napi_create_arraybuffer(env, ENDPOINT_BYTES, &data, &ab));
  from_sockaddr(&ss, data);
  CHECK(napi_create_typedarray(env, napi_uint8_array, ENDPOINT_BYTES, ab, 0, &v));
  CHECK(napi_set_named_property(env, out, "endpoint", v));
  return out;
}

/* udpOffload(fd, wanted) -> active. Bits (addon.h): UDP_OFFLOAD_GSO (UDP_SEGMENT on send),
 * UDP_OFFLOAD_GRO (coalesced receive, segment size in a cmsg). GSO is probed by setting a zero default
 * segment size; GRO is switched off when not wanted. */
napi_value udp_offload(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, wanted, active = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !arg_int32(env, argv[0], &fd) || !arg_int32(env, argv[1], &wanted))
    return throw_errno(env, EINVAL, "udpOffload(fd, wanted)");
  int zero = 0, one = 1;
  if ((wanted & UDP_OFFLOAD_GSO) && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0)
    active |= UDP_OFFLOAD_GSO;
  if ((wanted & UDP_OFFLOAD_GRO) && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) active |= UDP_OFFLOAD_GRO;
  if (!(active & UDP_OFFLOAD_GRO)) setsockopt(fd, SOL_UDP, UDP_GRO, &zero, sizeof zero);
  return make_int32(env, active);
}

static __thread struct mmsghdr msgs[MAX_BATCH];
static __thread char gro_cbufs[MAX_BATCH][CMSG_SPACE(sizeof(int))];
static __thread struct iovec iovs[MAX_BATCH];
static __thread struct sockaddr_storage names[MAX_BATCH];

/* Points message i at packet i of the batch, with names[i] for its address. */
static void fill_msgs(const batch_t *b) {
  for (uint32_t i = 0; i < b->count; i++) {
    iovs[i].iov_base = b->slab + b->offs[i];
    iovs[i].iov_len = (size_t)b->lens[i];
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &names[i];
    msgs[i].msg_hdr.msg_namelen = sizeof names[i];
  }
}

/* udpRecv(fd, slab, offs, lens, count, sources[, segs]) -> n. lens[i]: room on entry,
 * datagram length on return, or -1 if the datagram did not fit (it is truncated: drop
 * it). With segs (a socket with UDP GRO on), segs[i] is the size of the datagrams the
 * kernel joined into datagram i (all but the last that size), or 0 if it is one. */
napi_value udp_recv(napi_env env, napi_callback_info info) {
  size_t argc = 7, nsrc, nsegs = 0;
  napi_value argv[7];
  int32_t fd, *segs = NULL;
  uint8_t *src;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6 || !arg_int32(env, argv[0], &fd)) return throw_errno(env, EINVAL, "udpRecv");
  if (!arg_batch(env, argv + 1, &b)) return NULL;
  if (!arg_bytes(env, argv[5], &src, &nsrc) || nsrc < (size_t)b.count * ENDPOINT_BYTES)
    return throw_errno(env, EINVAL, "udpRecv sources");
  if (argc > 6 && (!arg_i32s(env, argv[6], &segs, &nsegs) || nsegs < b.count))
    return throw_errno(env, EINVAL, "udpRecv segs");
  if (b.count == 0) return make_int32(env, 0);
  fill_msgs(&b);
  if (segs) {
    for (uint32_t i = 0; i < b.count; i++) {
      msgs[i].msg_hdr.msg_control = gro_cbufs[i];
      msgs[i].msg_hdr.msg_controllen = sizeof gro_cbufs[i];
    }
  }
  int r;
  do r = recvmmsg(fd, msgs, b.count, MSG_DONTWAIT, NULL);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_int32(env, 0);
    return throw_errno(env, errno, "recvmmsg");
  }
  for (int i = 0; i < r; i++) {
    b.lens[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int32_t)msgs[i].msg_len;
    from_sockaddr(&names[i], src + (size_t)i * ENDPOINT_BYTES);
    if (!segs) continue;
    segs[i] = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
      if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
        int size;
        memcpy(&size, CMSG_DATA(cm), sizeof size);
        segs[i] = size;
      }
    }
  }
  return make_int32(env, r);
}

/* udpSend(fd, v6socket, slab, offs, lens, count, destinations, status) -> processed.
 * Datagrams [0, processed) were each sent (status 0) or failed alone (status -errno, e.g.
 * an unreachable network); processed < count only when the socket buffer is full
 * (EAGAIN): the caller keeps the rest and waits for writability. */
napi_value udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 8, ndst, nstatus;
  napi_value argv[8];
  int32_t fd, v6, *status;
  uint8_t *dst;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8 || !arg_int32(env, argv[0], &fd) || !arg_int32(env, argv[1], &v6))
    return throw_errno(env, EINVAL, "udpSend");
  if (!arg_batch(env, argv + 2, &b)) return NULL;
  if (!arg_bytes(env, argv[6], &dst, &ndst) || ndst < (size_t)b.count * ENDPOINT_BYTES ||
      !arg_i32s(env, argv[7], &status, &nstatus) || nstatus < b.count)
    return throw_errno(env, EINVAL, "udpSend destinations/status");

  uint32_t built = b.count, done = 0;
  fill_msgs(&b);
  for (uint32_t i = 0; i < built; i++)
    msgs[i].msg_hdr.msg_namelen = endpoint_to_sockaddr(dst + (size_t)i * ENDPOINT_BYTES, v6, &names[i]);
  while (done < built) {
    if (msgs[done].msg_hdr.msg_namelen == 0) { /* family the socket cannot reach */
      status[done++] = -EAFNOSUPPORT;
      continue;
    }
    uint32_t run = done;
    while (run < built && msgs[run].msg_hdr.msg_namelen != 0) run++;
    int r = sendmmsg(fd, msgs + done, run - done, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      status[done++] = -errno; /* this datagram alone failed: skip it, send the rest */
      continue;
    }
    for (int k = 0; k < r; k++) status[done++] = 0;
  }
  return make_int32(env, (int32_t)done);
}
