/* Shared helpers for the udptun addon. The addon owns file descriptors, syscalls, batching
 * and WireGuard's per-packet crypto (wg-*.c: it reports a verdict per message); every
 * policy decision (routing, validation, drops) is made in JS. */
#ifndef UDPTUN_ADDON_H
#define UDPTUN_ADDON_H

#include <node_api.h>
#include "core.h"

/* Flags and array positions of the JS calls. Like the other values TypeScript shares with
 * C, udptun.c exports them and src/native/addon.ts reads them from there. */

/* pollStart/pollSet events, and the events the callback reports. */
#define POLL_READABLE 1
#define POLL_WRITABLE 2

/* tunOpen flags; a missing flags argument is 0. */
#define TUN_OPEN_MULTI_QUEUE 1 /* IFF_MULTI_QUEUE: this fd is one queue of the device */
#define TUN_OPEN_VNET 2        /* the virtio-net header, and the offloads the kernel accepts */
#define TUN_OPEN_DETACHED 4    /* with MULTI_QUEUE: detach the queue at once (IFF_DETACH_QUEUE).
  * The kernel steers no packet to it, but writes on it still reach the device, and unlike
  * writes on an attached queue they do not teach the driver's flow table to steer that
  * flow's return packets to the writer's queue. */

/* udpOffload bits: UDP GSO (UDP_SEGMENT on send), UDP GRO (coalesced receive). */
#define UDP_OFFLOAD_GSO 1
#define UDP_OFFLOAD_GRO 2

/* tunWriteOffload's stats array, by position (WRITE_STATS_LEN entries). */
enum {
  WRITE_STATS_WRITES, /* set to the write calls made (a joined run counts once) */
  WRITE_STATS_LEN
};

#define CHECK(call)                                                         \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      napi_throw_error(env, "EINTERNAL", "udptun addon: " #call " failed"); \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

napi_value throw_errno(napi_env env, int err, const char *what);
int arg_int32(napi_env env, napi_value v, int32_t *out);
/* Byte view of a Buffer/Uint8Array (or any typed array): pointer and length in bytes. */
int arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len);
/* Int32Array view: pointer and element count. */
int arg_i32s(napi_env env, napi_value v, int32_t **data, size_t *len);
napi_value make_int32(napi_env env, int32_t v);
/* Throws a RangeError coded EINVAL with a printf-style message (name the field and value). */
napi_value throw_invalid(napi_env env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An optional argument left out: undefined or null. */
int arg_absent(napi_env env, napi_value v);

/* Reads (slab, offs, lens, count) from argv[first..first+3] and bounds-checks every
 * packet against the slab (lens[i] is the capacity on reads, the length on writes).
 * count may be at most MAX_BATCH, or max with arg_batch_max. */
int arg_batch(napi_env env, napi_value *argv, batch_t *b);
int arg_batch_max(napi_env env, napi_value *argv, batch_t *b, int32_t max);

napi_value poll_start(napi_env env, napi_callback_info info);
napi_value poll_set(napi_env env, napi_callback_info info);
napi_value poll_stop(napi_env env, napi_callback_info info);
napi_value tun_open(napi_env env, napi_callback_info info);
napi_value tun_read(napi_env env, napi_callback_info info);
napi_value tun_attached(napi_env env, napi_callback_info info);
napi_value tun_write(napi_env env, napi_callback_info info);
napi_value udp_open(napi_env env, napi_callback_info info);
napi_value udp_recv(napi_env env, napi_callback_info info);
napi_value udp_send(napi_env env, napi_callback_info info);
napi_value udp_offload(napi_env env, napi_callback_info info);
napi_value udp_send_segments(napi_env env, napi_callback_info info);
napi_value tun_write_offload(napi_env env, napi_callback_info info);
napi_value udp_filter(napi_env env, napi_callback_info info);
napi_value udp_drops(napi_env env, napi_callback_info info);
napi_value udp_mark(napi_env env, napi_callback_info info);
napi_value fd_close(napi_env env, napi_callback_info info);

/* WireGuard data messages (wg-bindings.c over the plain-C core, wg-crypto.h). The arg_* helpers throw, naming what (the call) and
 * the field, and return 0 on bad input. */
int arg_slot(napi_env env, napi_value v, const char *what, int32_t *slot);
int arg_slots(napi_env env, napi_value v, uint32_t count, const char *what, int32_t **slots);
int arg_mtu(napi_env env, napi_value v, const char *what, uint32_t *mtu);
napi_value wg_keypair_set(napi_env env, napi_callback_info info);
napi_value wg_keypair_clear(napi_env env, napi_callback_info info);
napi_value wg_keypair_counters(napi_env env, napi_callback_info info);
napi_value wg_seal(napi_env env, napi_callback_info info);
napi_value wg_open(napi_env env, napi_callback_info info);

#endif
