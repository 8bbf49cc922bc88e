/* JS bindings of the offload paths: argument checks, then the plain-C cores in
 * segment.c (split and send) and coalesce.c (join and write). */
#include "addon.h"
#include "wg-crypto.h"

/* udpSendSegments(fd, v6socket, slab, offs, lens, count, destinations, status, bytes,
 *                 state, header, gso[, slots, mtu]) -> processed
 * Packet i is a virtio-net header and an IP packet at slab[offs[i] .. +lens[i]). On
 * return, for i < processed: status[i] = inner packets sent (> 0) or -errno (-EBADMSG:
 * malformed super-packet), bytes[i] = inner bytes sent. processed < count only when the
 * socket is full: packet `processed` then had state[SEND_STATE_RESUME] segments sent in
 * all (this call's are in status/bytes); pass state back unchanged to resume.
 * state[SEND_STATE_GSO_ERRNO] is set to an errno if the kernel refused UDP GSO (the caller
 * turns it off); state[SEND_STATE_SENDS] to the sends made (a GSO send of many datagrams
 * counts once, as the kernel's Udp.OutDatagrams does). state has SEND_STATE_LEN entries.
 * With gso, a super-packet's segments go out in sends of up to 64, and consecutive whole
 * packets of one size to one destination (a UDP flow, pure ACKs) share a send too.
 * With slots (and an empty header), every datagram is a WireGuard data message sealed
 * with slots[i]'s keypair, padded within mtu (wg-seal.c); a packet whose keypair is
 * missing or out of counters gets status WG_NO_KEYPAIR / WG_COUNTER_EXHAUSTED. */

napi_value udp_send_segments(napi_env env, napi_callback_info info) {
  size_t argc = 14, ndst, nstatus, nbytes, nstate, nhdr;
  napi_value argv[14];
  int32_t fd, v6, gso, *status, *bytes, *state;
  uint8_t *dst, *hdr;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 12 || !arg_int32(env, argv[0], &fd) || !arg_int32(env, argv[1], &v6) || !arg_int32(env, argv[11], &gso))
    return throw_errno(env, EINVAL, "udpSendSegments");
  if (!arg_batch(env, argv + 2, &b)) return NULL;
  if (!arg_bytes(env, argv[6], &dst, &ndst) || ndst < (size_t)b.count * ENDPOINT_BYTES ||
      !arg_i32s(env, argv[7], &status, &nstatus) || nstatus < b.count ||
      !arg_i32s(env, argv[8], &bytes, &nbytes) || nbytes < b.count ||
      !arg_i32s(env, argv[9], &state, &nstate) || nstate < SEND_STATE_LEN ||
      !arg_bytes(env, argv[10], &hdr, &nhdr) || nhdr > HEADER_ROOM_MAX)
    return throw_errno(env, EINVAL, "udpSendSegments arrays");
  seal_step_t *seal = NULL;
  if (argc > 12 && !arg_absent(env, argv[12])) {
    int32_t *slots;
    uint32_t mtu;
    if (argc < 14) return throw_invalid(env, "udpSendSegments: mtu: missing after slots");
    if (!arg_slots(env, argv[12], b.count, "udpSendSegments", &slots) || !arg_mtu(env, argv[13], "udpSendSegments", &mtu))
      return NULL;
    if (nhdr) return throw_invalid(env, "udpSendSegments: header: %zu bytes, but sealed datagrams carry none", nhdr);
    seal = wg_segment_sealer(slots, mtu);
  }

  int32_t n = (int32_t)send_segments(fd, v6, &b, dst, status, bytes, state, hdr, (uint32_t)nhdr, gso, seal);
  return make_int32(env, n);
}

/* tunWriteOffload(fd, slab, offs, lens, count, status, join, stats) -> packets written.
 * For a TUN device with a virtio-net header: each packet goes out behind a header, joined
 * with its neighbours when they qualify and join allows (JOIN_TCP, JOIN_UDP). status[i]
 * is 0 or -errno; stats (WRITE_STATS_LEN entries) as addon.h names them. */
napi_value tun_write_offload(napi_env env, napi_callback_info info) {
  size_t argc = 8, nstatus, nstats;
  napi_value argv[8];
  int32_t fd, join, *status, *stats;
  batch_t b;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8 || !arg_int32(env, argv[0], &fd) || !arg_int32(env, argv[6], &join))
    return throw_errno(env, EINVAL, "tunWriteOffload");
  if (!arg_batch_max(env, argv + 1, &b, MAX_WRITE_BATCH)) return NULL;
  if (!arg_i32s(env, argv[5], &status, &nstatus) || nstatus < b.count ||
      !arg_i32s(env, argv[7], &stats, &nstats) || nstats < WRITE_STATS_LEN)
    return throw_errno(env, EINVAL, "tunWriteOffload status/stats");
  int32_t writes = 0;
  int32_t ok = write_joined(fd, &b, status, join, &writes);
  stats[WRITE_STATS_WRITES] = writes;
  return make_int32(env, ok);
}
