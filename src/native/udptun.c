/* Module entry (the calls and the values shared with TypeScript) and the argument helpers
 * every file shares. */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include "addon.h"
#include "linux-compat.h"
#include "wg-protocol.h"
#include "filter_program.h"

napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = "EUNKNOWN";
  switch (err) {
    case EACCES: code = "EACCES"; break;
    case EPERM: code = "EPERM"; break;
    case EBUSY: code = "EBUSY"; break;
    case EINVAL: code = "EINVAL"; break;
    case ENOENT: code = "ENOENT"; break;
    case ENODEV: code = "ENODEV"; break;
    case EADDRINUSE: code = "EADDRINUSE"; break;
    case EADDRNOTAVAIL: code = "EADDRNOTAVAIL"; break;
    case EAFNOSUPPORT: code = "EAFNOSUPPORT"; break;
    case EBADF: code = "EBADF"; break;
    case EBADFD: code = "EBADFD"; break;
    case EIO: code = "EIO"; break;
    case ENOBUFS: code = "ENOBUFS"; break;
    case ENOMEM: code = "ENOMEM"; break;
    case EFAULT: code = "EFAULT"; break;
    default: break;
  }
  napi_throw_error(env, code, msg);
  return NULL;
}

napi_value throw_invalid(napi_env env, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_range_error(env, "EINVAL", msg);
  return NULL;
}

int arg_absent(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_undefined || t == napi_null);
}

int arg_int32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

int arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  size_t length, offset;
  void *ptr;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &offset) != napi_ok)
    return 0;
  size_t elem = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: elem = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
    default: break;
  }
  *data = ptr;
  *len = length * elem;
  return 1;
}

int arg_i32s(napi_env env, napi_value v, int32_t **data, size_t *len) {
  napi_typedarray_type type;
  size_t length, offset;
  void *ptr;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &offset) != napi_ok ||
      type != napi_int32_array)
    return 0;
  *data = ptr;
  *len = length;
  return 1;
}

napi_value make_int32(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

int arg_batch(napi_env env, napi_value *argv, batch_t *b) {
  return arg_batch_max(env, argv, b, MAX_BATCH);
}

int arg_batch_max(napi_env env, napi_value *argv, batch_t *b, int32_t max) {
  size_t noffs, nlens;
  int32_t count;
  if (!arg_bytes(env, argv[0], &b->slab, &b->slab_len) || !arg_i32s(env, argv[1], &b->offs, &noffs) ||
      !arg_i32s(env, argv[2], &b->lens, &nlens) || !arg_int32(env, argv[3], &count)) {
    napi_throw_type_error(env, "EINVAL", "batch: expected (slab, Int32Array offs, Int32Array lens, count)");
    return 0;
  }
  if (count < 0 || count > max || (size_t)count > noffs || (size_t)count > nlens) {
    napi_throw_range_error(env, "EINVAL", "batch: count out of range");
    return 0;
  }
  for (int32_t i = 0; i < count; i++) {
    if (b->offs[i] < 0 || b->lens[i] < 0 || (size_t)b->offs[i] + (size_t)b->lens[i] > b->slab_len) {
      napi_throw_range_error(env, "EINVAL", "batch: packet outside the slab");
      return 0;
    }
  }
  b->count = (uint32_t)count;
  return 1;
}

napi_value fd_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !arg_int32(env, argv[0], &fd)) return throw_errno(env, EINVAL, "close");
  if (close(fd) < 0) return throw_errno(env, errno, "close");
  return NULL;
}

/* The values TypeScript shares with C, exported so they are defined once: src/native/addon.ts
 * types and re-exports them. The JS name, then the C definition it comes from. */
static const struct {
  const char *name;
  int32_t value;
} SHARED[] = {
  {"MAX_BATCH", MAX_BATCH},
  {"MAX_WRITE_BATCH", MAX_WRITE_BATCH},
  {"GRO_MAX_SEGS", GRO_MAX_SEGS},
  {"HEADER_ROOM_MAX", HEADER_ROOM_MAX},
  {"ENDPOINT_BYTES", ENDPOINT_BYTES},
  {"VNET_HDR_LEN", (int32_t)sizeof(struct virtio_net_hdr)},
  {"READABLE", POLL_READABLE},
  {"WRITABLE", POLL_WRITABLE},
  {"TUN_OPEN_MULTI_QUEUE", TUN_OPEN_MULTI_QUEUE},
  {"TUN_OPEN_VNET", TUN_OPEN_VNET},
  {"TUN_OPEN_DETACHED", TUN_OPEN_DETACHED},
  {"TUN_F_CSUM", TUN_F_CSUM},
  {"TUN_F_TSO4", TUN_F_TSO4},
  {"TUN_F_TSO6", TUN_F_TSO6},
  {"TUN_F_USO4", TUN_F_USO4},
  {"TUN_F_USO6", TUN_F_USO6},
  {"UDP_GSO", UDP_OFFLOAD_GSO},
  {"UDP_GRO", UDP_OFFLOAD_GRO},
  {"JOIN_TCP", JOIN_TCP},
  {"JOIN_UDP", JOIN_UDP},
  {"SEND_STATE_RESUME", SEND_STATE_RESUME},
  {"SEND_STATE_GSO_ERRNO", SEND_STATE_GSO_ERRNO},
  {"SEND_STATE_SENDS", SEND_STATE_SENDS},
  {"SEND_STATE_LEN", SEND_STATE_LEN},
  {"WRITE_STATS_WRITES", WRITE_STATS_WRITES},
  {"WRITE_STATS_LEN", WRITE_STATS_LEN},
  {"WG_KEYPAIR_SLOTS", WG_KEYPAIR_SLOTS},
  {"WG_HEADER_LEN", WG_HEADER_LEN},
  {"WG_TAG_LEN", WG_TAG_LEN},
  {"WG_NOT_DATA", WG_NOT_DATA},
  {"WG_MALFORMED", WG_MALFORMED},
  {"WG_UNKNOWN_INDEX", WG_UNKNOWN_INDEX},
  {"WG_REPLAYED", WG_REPLAYED},
  {"WG_DECRYPT_FAILED", WG_DECRYPT_FAILED},
  {"WG_EXPIRED", WG_EXPIRED},
  {"WG_NO_KEYPAIR", WG_NO_KEYPAIR},
  {"WG_COUNTER_EXHAUSTED", WG_COUNTER_EXHAUSTED},
  {"FILTER_PLAIN", FILTER_PLAIN},
  {"FILTER_WIREGUARD", FILTER_WIREGUARD},
};

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"pollStart", NULL, poll_start, NULL, NULL, NULL, napi_default, NULL},
    {"pollSet", NULL, poll_set, NULL, NULL, NULL, napi_default, NULL},
    {"pollStop", NULL, poll_stop, NULL, NULL, NULL, napi_default, NULL},
    {"tunOpen", NULL, tun_open, NULL, NULL, NULL, napi_default, NULL},
    {"tunRead", NULL, tun_read, NULL, NULL, NULL, napi_default, NULL},
    {"tunAttached", NULL, tun_attached, NULL, NULL, NULL, napi_default, NULL},
    {"tunWrite", NULL, tun_write, NULL, NULL, NULL, napi_default, NULL},
    {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_default, NULL},
    {"udpRecv", NULL, udp_recv, NULL, NULL, NULL, napi_default, NULL},
    {"udpSend", NULL, udp_send, NULL, NULL, NULL, napi_default, NULL},
    {"udpOffload", NULL, udp_offload, NULL, NULL, NULL, napi_default, NULL},
    {"udpSendSegments", NULL, udp_send_segments, NULL, NULL, NULL, napi_default, NULL},
    {"tunWriteOffload", NULL, tun_write_offload, NULL, NULL, NULL, napi_default, NULL},
    {"udpFilter", NULL, udp_filter, NULL, NULL, NULL, napi_default, NULL},
    {"udpDrops", NULL, udp_drops, NULL, NULL, NULL, napi_default, NULL},
    {"udpMark", NULL, udp_mark, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, fd_close, NULL, NULL, NULL, napi_default, NULL},
    {"wgKeypairSet", NULL, wg_keypair_set, NULL, NULL, NULL, napi_default, NULL},
    {"wgKeypairClear", NULL, wg_keypair_clear, NULL, NULL, NULL, napi_default, NULL},
    {"wgKeypairCounters", NULL, wg_keypair_counters, NULL, NULL, NULL, napi_default, NULL},
    {"wgSeal", NULL, wg_seal, NULL, NULL, NULL, napi_default, NULL},
    {"wgOpen", NULL, wg_open, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  for (size_t i = 0; i < sizeof SHARED / sizeof SHARED[0]; i++) {
    /* enumerable, not writable: JS reads them, nothing can change them */
    napi_property_descriptor d = {SHARED[i].name, NULL, NULL, NULL, NULL, make_int32(env, SHARED[i].value),
                                  napi_enumerable, NULL};
    napi_define_properties(env, exports, 1, &d);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
