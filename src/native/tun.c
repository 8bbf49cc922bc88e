/* Linux TUN device: open or attach by name, read packets into pooled buffers until
 * EAGAIN, write a batch back. One packet per read()/write(): the TUN fd has no batch call. */
#include <fcntl.h>
#include <stdint.h>
#include <linux/if.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "addon.h"
#include "linux-compat.h"

/* What we ask of TUNSETOFFLOAD, best first: USO needs Linux 6.2. */
static const unsigned OFFLOAD_TRIES[] = {
  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6,
  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
  TUN_F_CSUM,
};

/* tunOpen(name, flags) -> { fd, name, vnet, offload } (flags: TUN_OPEN_* in addon.h;
 * offload: the TUN_F_* bits set). With TUN_OPEN_MULTI_QUEUE each call on the same name
 * attaches one more queue; the kernel spreads the device's packets over them by flow. */
napi_value tun_open(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2], out, v;
  char name[IFNAMSIZ];
  int32_t flags = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok ||
      (argc > 1 && !arg_int32(env, argv[1], &flags)))
    return throw_errno(env, EINVAL, "tunOpen(name, flags)");

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | ((flags & TUN_OPEN_VNET) ? IFF_VNET_HDR : 0);
  if (flags & TUN_OPEN_MULTI_QUEUE) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  memcpy(ifr.ifr_name, name, len < IFNAMSIZ ? len : IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "TUNSETIFF");
  }
  /* Offload settings survive on a persistent device: set them every time (0 without the
   * virtio header), or the kernel hands us partial checksums that nothing completes. */
  unsigned offload = 0;
  int vnet = (flags & TUN_OPEN_VNET) != 0;
  if (vnet) {
    int hdrsz = (int)sizeof(struct virtio_net_hdr);
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
      int err = errno;
      close(fd);
      return throw_errno(env, err, "TUNSETVNETHDRSZ");
    }
    for (size_t t = 0; t < sizeof OFFLOAD_TRIES / sizeof OFFLOAD_TRIES[0] && !offload; t++)
      if (ioctl(fd, TUNSETOFFLOAD, OFFLOAD_TRIES[t]) == 0) offload = OFFLOAD_TRIES[t];
  }
  if (!offload && ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "TUNSETOFFLOAD");
  }
  if (flags & TUN_OPEN_DETACHED) {
    struct ifreq q;
    memset(&q, 0, sizeof q);
    q.ifr_flags = IFF_DETACH_QUEUE;
    if (ioctl(fd, TUNSETQUEUE, &q) < 0) {
      int err = errno;
      close(fd);
      return throw_errno(env, err, "TUNSETQUEUE IFF_DETACH_QUEUE");
    }
  }
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, fd, &v));
  CHECK(napi_set_named_property(env, out, "fd", v));
  CHECK(napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, out, "name", v));
  CHECK(napi_get_boolean(env, vnet, &v));
  CHECK(napi_set_named_property(env, out, "vnet", v));
  CHECK(napi_create_int32(env, (int32_t)offload, &v));
  CHECK(napi_set_named_property(env, out, "offload", v));
  return out;
}

/* tunAttached(fd) -> false once the device behind the fd is gone (TUNGETIFF fails with
 * EBADFD). Asked on a poll error: the kernel signals the fd before sysfs forgets the name. */
napi_value tun_attached(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  int32_t fd;
  struct ifreq ifr;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_int32(env, argv[0], &fd)) return throw_errno(env, EINVAL, "tunAttached(fd)");
  memset(&ifr, 0, sizeof ifr);
  int gone = ioctl(fd, TUNGETIFF, &ifr) < 0 && errno == EBADFD;
  CHECK(napi_get_boolean(env, !gone, &out));
  return out;
}

/* tunRead(fd, slab, offs, lens, count[, maxBytes]) -> n. lens[i] holds the room at offs[i]
 * on entry and the packet length on return. Stops at EAGAIN, or once maxBytes have been
 * read (super-packets: a batch that fits the CPU cache); an error after some packets is
 * left for the next call to report. */
napi_value tun_read(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  int32_t fd, max_bytes = INT32_MAX;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5 || !arg_int32(env, argv[0], &fd) || (argc > 5 && !arg_int32(env, argv[5], &max_bytes)))
    return throw_errno(env, EINVAL, "tunRead");
  if (!arg_batch(env, argv + 1, &b)) return NULL;
  uint32_t n = 0;
  int64_t total = 0;
  while (n < b.count && total < max_bytes) {
    ssize_t r = read(fd, b.slab + b.offs[n], (size_t)b.lens[n]);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || n > 0) break;
      return throw_errno(env, errno, "read tun");
    }
    b.lens[n++] = (int32_t)r;
    total += r;
  }
  return make_int32(env, (int32_t)n);
}

/* tunWrite(fd, slab, offs, lens, count, status) -> packets written. status[i] is 0 or -errno. */
napi_value tun_write(napi_env env, napi_callback_info info) {
  size_t argc = 6, nstatus;
  napi_value argv[6];
  int32_t fd, *status;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6 || !arg_int32(env, argv[0], &fd)) return throw_errno(env, EINVAL, "tunWrite");
  if (!arg_batch_max(env, argv + 1, &b, MAX_WRITE_BATCH)) return NULL;
  if (!arg_i32s(env, argv[5], &status, &nstatus) || nstatus < b.count)
    return throw_errno(env, EINVAL, "tunWrite status");
  int32_t ok = 0;
  for (uint32_t i = 0; i < b.count; i++) {
    ssize_t r;
    do r = write(fd, b.slab + b.offs[i], (size_t)b.lens[i]);
    while (r < 0 && errno == EINTR);
    status[i] = r < 0 ? -errno : 0;
    if (r >= 0) ok++;
  }
  return make_int32(env, ok);
}
