/* The JS face of WireGuard's per-packet code (wg-keypairs.c, wg-seal.c, wg-open.c):
 * argument checks that name the call and the field, then the plain-C core.
 * wgKeypairSet, wgKeypairClear, wgKeypairCounters, wgSeal, wgOpen. */
#include "addon.h"
#include "wg-crypto.h"
#include "wg-keypairs.h"

int arg_slot(napi_env env, napi_value v, const char *what, int32_t *slot) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    throw_invalid(env, "%s: not a number", what);
    return 0;
  }
  if (!(d >= 0 && d < WG_KEYPAIR_SLOTS) || d != (int32_t)d) {
    throw_invalid(env, "%s: %g is not a keypair slot (0..%d)", what, d, WG_KEYPAIR_SLOTS - 1);
    return 0;
  }
  *slot = (int32_t)d;
  return 1;
}

static int arg_index(napi_env env, napi_value v, const char *what, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    throw_invalid(env, "wgKeypairSet: %s: not a number", what);
    return 0;
  }
  if (!(d >= 0 && d <= UINT32_MAX) || d != (double)(uint32_t)d) {
    throw_invalid(env, "wgKeypairSet: %s: %g is not an integer in 0..%u", what, d, UINT32_MAX);
    return 0;
  }
  *out = (uint32_t)d;
  return 1;
}

/* wgKeypairSet(slot, localIndex, remoteIndex, sendKey, recvKey): installs a keypair in
 * slot (replacing what it held): send counter 0, empty replay window. The keys are read
 * straight from the caller's arrays into the contexts; no copy stays here. */
napi_value wg_keypair_set(napi_env env, napi_callback_info info) {
  size_t argc = 5, nsend, nrecv;
  napi_value argv[5];
  int32_t slot;
  uint32_t local, remote;
  uint8_t *send_key, *recv_key;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_invalid(env, "wgKeypairSet(slot, localIndex, remoteIndex, sendKey, recvKey): %zu arguments", argc);
  if (!arg_slot(env, argv[0], "wgKeypairSet: slot", &slot) || !arg_index(env, argv[1], "localIndex", &local) ||
      !arg_index(env, argv[2], "remoteIndex", &remote))
    return NULL;
  if ((local & (WG_KEYPAIR_SLOTS - 1)) != (uint32_t)slot)
    return throw_invalid(env, "wgKeypairSet: localIndex: %u does not encode slot %d in its low 12 bits", local, slot);
  if (!arg_bytes(env, argv[3], &send_key, &nsend) || nsend != 32)
    return throw_invalid(env, "wgKeypairSet: sendKey: expected a Uint8Array of 32 bytes");
  if (!arg_bytes(env, argv[4], &recv_key, &nrecv) || nrecv != 32)
    return throw_invalid(env, "wgKeypairSet: recvKey: expected a Uint8Array of 32 bytes");

  if (wg_keypair_install(slot, local, remote, send_key, recv_key) < 0)
    return throw_errno(env, ENOMEM, "wgKeypairSet: ChaCha20-Poly1305 context");
  return NULL;
}

/* wgKeypairClear(slot): forgets the keypair; its index is unknown from now on. */
napi_value wg_keypair_clear(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t slot;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return throw_invalid(env, "wgKeypairClear(slot): no slot");
  if (!arg_slot(env, argv[0], "wgKeypairClear: slot", &slot)) return NULL;
  wg_keypair_forget(slot);
  return NULL;
}

/* wgKeypairCounters(slot, out): out[0] = messages sent (the next send counter), out[1] =
 * messages received and accepted; both 0 for an empty slot. */
napi_value wg_keypair_counters(napi_env env, napi_callback_info info) {
  size_t argc = 2, length, offset;
  napi_value argv[2], ab;
  napi_typedarray_type type;
  double *out;
  int32_t slot;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_invalid(env, "wgKeypairCounters(slot, out): %zu arguments", argc);
  if (!arg_slot(env, argv[0], "wgKeypairCounters: slot", &slot)) return NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, (void **)&out, &ab, &offset) != napi_ok ||
      type != napi_float64_array || length < 2)
    return throw_invalid(env, "wgKeypairCounters: out: expected a Float64Array of 2 or more");
  const keypair_t *kp = &wg_keypairs[slot];
  out[0] = (double)atomic_load_explicit(&kp->next_send, memory_order_relaxed);
  out[1] = (double)kp->received;
  return NULL;
}

int arg_slots(napi_env env, napi_value v, uint32_t count, const char *what, int32_t **slots) {
  size_t n;
  if (!arg_i32s(env, v, slots, &n) || n < count) {
    throw_invalid(env, "%s: slots: expected an Int32Array of %u or more", what, count);
    return 0;
  }
  for (uint32_t i = 0; i < count; i++) {
    if ((*slots)[i] < 0 || (*slots)[i] >= WG_KEYPAIR_SLOTS) {
      throw_invalid(env, "%s: slots[%u]: %d is not a keypair slot (0..%d)", what, i, (*slots)[i], WG_KEYPAIR_SLOTS - 1);
      return 0;
    }
  }
  return 1;
}

int arg_mtu(napi_env env, napi_value v, const char *what, uint32_t *mtu) {
  int32_t m;
  if (!arg_int32(env, v, &m) || m < 0 || m > 65535) {
    throw_invalid(env, "%s: mtu: expected an integer in 0..65535 (0: no cap on padding)", what);
    return 0;
  }
  *mtu = (uint32_t)m;
  return 1;
}

/* wgSeal(slab, offs, lens, count, slots, mtu, status): packet i's plaintext (an IP packet,
 * or nothing for a keepalive) at slab[offs[i] .. +lens[i]) becomes, in place, a data
 * message for slots[i]'s keypair: header into the 16 bytes before it, padding and tag
 * after it (up to 31 bytes); offs[i]/lens[i] then frame the message. status[i] = 0, or
 * WG_NO_KEYPAIR / WG_COUNTER_EXHAUSTED (the packet untouched). */
napi_value wg_seal(napi_env env, napi_callback_info info) {
  size_t argc = 7, nstatus;
  napi_value argv[7];
  int32_t *slots, *status;
  uint32_t mtu;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) return throw_invalid(env, "wgSeal(slab, offs, lens, count, slots, mtu, status): %zu arguments", argc);
  if (!arg_batch(env, argv, &b) || !arg_slots(env, argv[4], b.count, "wgSeal", &slots) ||
      !arg_mtu(env, argv[5], "wgSeal", &mtu))
    return NULL;
  if (!arg_i32s(env, argv[6], &status, &nstatus) || nstatus < b.count)
    return throw_invalid(env, "wgSeal: status: expected an Int32Array of %u or more", b.count);
  for (uint32_t i = 0; i < b.count; i++) {
    size_t end = (size_t)b.offs[i] + wg_padded_len((uint32_t)b.lens[i], mtu) + WG_TAG_LEN;
    if (b.offs[i] < WG_HEADER_LEN || end > b.slab_len)
      return throw_invalid(env, "wgSeal: packet %u (offset %d, length %d): needs %d bytes before it and %zu after it in the slab",
                           i, b.offs[i], b.lens[i], WG_HEADER_LEN, end - (size_t)b.offs[i] - (size_t)b.lens[i]);
  }

  for (uint32_t i = 0; i < b.count; i++) {
    int32_t r = wg_seal_one(slots[i], b.slab + b.offs[i], (uint32_t)b.lens[i], mtu);
    if (r == -EIO) return throw_errno(env, EIO, "wgSeal: ChaCha20-Poly1305");
    if (r < 0) {
      status[i] = r; /* the packet untouched */
      continue;
    }
    b.offs[i] -= WG_HEADER_LEN;
    b.lens[i] = r;
    status[i] = 0;
  }
  return NULL;
}

/* wgOpen(slab, offs, lens, count, segs, out) -> entries. Datagram i at slab[offs[i] ..
 * +lens[i]); with segs (UDP GRO), segs[i] > 0 cuts it into messages of that size (the
 * last may be shorter). One entry of three Int32s per message, in order: offset, length,
 * verdict. verdict >= 0: the keypair's slot, and offset/length frame the plaintext in
 * place (padding not trimmed; length 0 is a keepalive). verdict < 0 (WG_NOT_DATA, ...):
 * offset/length frame the message as received. */
napi_value wg_open(napi_env env, napi_callback_info info) {
  size_t argc = 6, nsegs = 0, nout;
  napi_value argv[6];
  int32_t *segs = NULL, *out;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return throw_invalid(env, "wgOpen(slab, offs, lens, count, segs, out): %zu arguments", argc);
  if (!arg_batch(env, argv, &b)) return NULL;
  if (!arg_absent(env, argv[4]) && (!arg_i32s(env, argv[4], &segs, &nsegs) || nsegs < b.count))
    return throw_invalid(env, "wgOpen: segs: expected null or an Int32Array of %u or more", b.count);
  if (!arg_i32s(env, argv[5], &out, &nout)) return throw_invalid(env, "wgOpen: out: expected an Int32Array");

  size_t entries = 0;
  for (uint32_t i = 0; i < b.count; i++) {
    uint32_t len = (uint32_t)b.lens[i], seg = segs && segs[i] > 0 ? (uint32_t)segs[i] : 0;
    entries += seg && len > seg ? (len + seg - 1) / seg : 1;
  }
  if (nout < entries * 3)
    return throw_invalid(env, "wgOpen: out: %zu Int32s hold %zu entries, the batch has %zu messages", nout, nout / 3, entries);

  int32_t *e = out;
  for (uint32_t i = 0; i < b.count; i++) {
    uint32_t len = (uint32_t)b.lens[i], seg = segs && segs[i] > 0 ? (uint32_t)segs[i] : len;
    uint32_t at = 0;
    do {
      uint32_t mlen = len - at < seg ? len - at : seg;
      int32_t off = b.offs[i] + (int32_t)at, verdict = wg_open_one(b.slab + off, mlen);
      e[0] = verdict >= 0 ? off + WG_HEADER_LEN : off;
      e[1] = verdict >= 0 ? (int32_t)(mlen - WG_MIN_MESSAGE) : (int32_t)mlen;
      e[2] = verdict;
      e += 3;
      at += mlen;
    } while (at < len);
  }
  return make_int32(env, (int32_t)(e - out) / 3);
}
