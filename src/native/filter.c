/* The peer filter: a classic BPF program on the UDP socket that admits datagrams whose source
 * ip:port is a configured peer endpoint and, for the WireGuard transport, handshake messages
 * from anyone. Other datagrams are dropped by the kernel before they take room in the
 * socket's receive buffer, so a flood cannot crowd the peers out.
 * This file attaches it; the program is built in filter_program.h (plain C, so a test can
 * run it on real sockets). */
#define _GNU_SOURCE
#include <linux/sock_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include "addon.h"
#include "filter_program.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

/* udpFilter(fd, v6socket, endpoints, count, mode) -> instructions attached.
 * Attaches (SO_ATTACH_FILTER replaces any previous filter in one step) a program admitting
 * datagrams from the count 20-byte endpoints and, in mode FILTER_WIREGUARD, handshake messages
 * from any source (filter_program.h); FILTER_PLAIN with no endpoints admits nothing.
 * endpoints === null detaches the filter instead (returns 0; mode may be left out). Throws
 * E2BIG, before touching the socket, if the program would exceed BPF_MAXINSNS; EAFNOSUPPORT
 * for an IPv6 endpoint on an IPv4 socket; EINVAL for a mode that is neither. */
napi_value udp_filter(napi_env env, napi_callback_info info) {
  size_t argc = 5, len;
  napi_value argv[5];
  napi_valuetype type;
  int32_t fd, v6, count, mode;
  uint8_t *eps;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || !arg_int32(env, argv[0], &fd) || !arg_int32(env, argv[1], &v6))
    return throw_errno(env, EINVAL, "udpFilter(fd, v6socket, endpoints, count, mode)");
  CHECK(napi_typeof(env, argv[2], &type));
  if (type == napi_null) {
    int unused = 0; /* SOL_SOCKET options take at least an int, even this one */
    if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused) < 0 && errno != ENOENT)
      return throw_errno(env, errno, "udpFilter: SO_DETACH_FILTER");
    return make_int32(env, 0);
  }
  if (!arg_bytes(env, argv[2], &eps, &len) || !arg_int32(env, argv[3], &count) || count < 0 ||
      (size_t)count * ENDPOINT_BYTES > len)
    return throw_errno(env, EINVAL, "udpFilter: endpoints must hold count 20-byte endpoints");
  mode = -1;
  int given = argc >= 5 && arg_int32(env, argv[4], &mode);
  if (mode != FILTER_PLAIN && mode != FILTER_WIREGUARD) {
    char msg[160], what[16];
    if (given) snprintf(what, sizeof what, "%d", mode);
    else snprintf(what, sizeof what, "%s", argc >= 5 ? "not an int32" : "missing");
    snprintf(msg, sizeof msg, "udpFilter: mode (%s) must be FILTER_PLAIN (%d) or FILTER_WIREGUARD (%d)", what,
             FILTER_PLAIN, FILTER_WIREGUARD);
    napi_throw_range_error(env, "EINVAL", msg);
    return NULL;
  }

  size_t n4 = 0, n6 = 0;
  for (int32_t e = 0; e < count; e++) {
    const uint8_t *ep = eps + (size_t)e * ENDPOINT_BYTES;
    if (ep[0] == 4) n4++;
    else if (ep[0] == 6 && v6) n6++;
    else if (ep[0] == 6) return throw_errno(env, EAFNOSUPPORT, "udpFilter: IPv6 endpoint on an IPv4 socket");
    else return throw_errno(env, EINVAL, "udpFilter: endpoint family is neither 4 nor 6");
  }
  size_t n = filter_program_length(n4, n6, (enum filter_mode)mode);
  if (n > BPF_MAXINSNS) {
    char msg[200];
    snprintf(msg, sizeof msg,
             "udpFilter: %zu IPv4 and %zu IPv6 endpoints need %zu BPF instructions (%s), more than BPF_MAXINSNS (%d)",
             n4, n6, n, mode == FILTER_WIREGUARD ? "wireguard" : "plain", BPF_MAXINSNS);
    napi_throw_range_error(env, "E2BIG", msg);
    return NULL;
  }
  struct sock_filter *prog = calloc(n, sizeof *prog);
  if (!prog) return throw_errno(env, ENOMEM, "udpFilter");
  /* a sizing bug must not attach garbage */
  if (filter_program_build(prog, eps, (size_t)count, n4, n6, (enum filter_mode)mode) != n) {
    free(prog);
    napi_throw_error(env, "EINTERNAL", "udpFilter: program length mismatch");
    return NULL;
  }
  struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};
  int r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog);
  int err = errno;
  free(prog);
  if (r < 0) return throw_errno(env, err, "udpFilter: SO_ATTACH_FILTER");
  return make_int32(env, (int32_t)n);
}

/* udpDrops(fd) -> datagrams the kernel dropped for this socket (SK_MEMINFO_DROPS: refused by the
 * filter, or no room in the receive buffer). A 32-bit count that wraps; the caller extends it. */
napi_value udp_drops(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t fd;
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t sl = sizeof mem;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_int32(env, argv[0], &fd)) return throw_errno(env, EINVAL, "udpDrops(fd)");
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &sl) < 0) return throw_errno(env, errno, "udpDrops: SO_MEMINFO");
  if (sl <= SK_MEMINFO_DROPS * sizeof mem[0]) return throw_errno(env, EINVAL, "udpDrops: SO_MEMINFO too short");
  CHECK(napi_create_uint32(env, mem[SK_MEMINFO_DROPS], &out));
  return out;
}

/* udpMark(fd[, mark]) -> the socket's SO_MARK as read back (after setting it to mark, a
 * uint32, 0 for none, if given). The routing rules wg-quick installs for full-tunnel configs
 * match this mark to keep the tunnel's own datagrams out of the tunnel. */
napi_value udp_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t fd;
  uint32_t mark = 0, got = 0;
  socklen_t sl = sizeof got;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_int32(env, argv[0], &fd) || (argc >= 2 && napi_get_value_uint32(env, argv[1], &mark) != napi_ok))
    return throw_errno(env, EINVAL, "udpMark(fd, mark)");
  if (argc >= 2 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) return throw_errno(env, errno, "udpMark: SO_MARK");
  if (getsockopt(fd, SOL_SOCKET, SO_MARK, &got, &sl) < 0) return throw_errno(env, errno, "udpMark: SO_MARK (read)");
  CHECK(napi_create_uint32(env, got, &out));
  return out;
}
