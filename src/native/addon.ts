// The typed face of the C addon (src/native/*.c). Every call takes a whole batch: the
// pool's slab plus Int32Arrays of offsets and lengths, so JS crosses into C once per batch.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

/**
 * Values TypeScript shares with C, defined once in C (core.h, addon.h, linux headers) and
 * exported by the addon (udptun.c); read them from here, never repeat them.
 */
export interface SharedValues {
  /** Most packets one batch call takes; the TS batch (BATCH) may not exceed it. */
  readonly MAX_BATCH: number;
  /** Most packets one TUN write batch takes (tunWrite, tunWriteOffload). */
  readonly MAX_WRITE_BATCH: number;
  /** Most datagrams the kernel joins into one GRO receive (its UDP_GRO_CNT_MAX). */
  readonly GRO_MAX_SEGS: number;
  /** Longest header udpSendSegments puts in front of each segment. */
  readonly HEADER_ROOM_MAX: number;
  /** Bytes of the endpoint form; src/net/address.ts writes and reads it, and its own
   * ENDPOINT_BYTES is checked against this one (test/unit/shared-values.test.ts). */
  readonly ENDPOINT_BYTES: number;
  /** The virtio-net header in front of every packet on a TUN fd opened with TUN_OPEN_VNET. */
  readonly VNET_HDR_LEN: number;
  /** pollStart/pollSet events, and those the callback reports. */
  readonly READABLE: number;
  readonly WRITABLE: number;
  /** tunOpen flag: the fd is one queue of a multi-queue device (IFF_MULTI_QUEUE). */
  readonly TUN_OPEN_MULTI_QUEUE: number;
  /** tunOpen flag: virtio-net header and TUNSETOFFLOAD (src/native/tun.c). */
  readonly TUN_OPEN_VNET: number;
  /** tunOpen flag, with TUN_OPEN_MULTI_QUEUE: a detached queue, for writing only (addon.h says why). */
  readonly TUN_OPEN_DETACHED: number;
  /** TUN_F_* bits of linux/if_tun.h, as tunOpen reports them. */
  readonly TUN_F_CSUM: number;
  readonly TUN_F_TSO4: number;
  readonly TUN_F_TSO6: number;
  readonly TUN_F_USO4: number;
  readonly TUN_F_USO6: number;
  /** udpOffload bits. */
  readonly UDP_GSO: number;
  readonly UDP_GRO: number;
  /** tunWriteOffload join bits: runs of TCP segments, runs of UDP datagrams (USO). */
  readonly JOIN_TCP: number;
  readonly JOIN_UDP: number;
  /** Positions in udpSendSegments' state array (SEND_STATE_LEN entries): segments of the
   * first unfinished packet already sent (pass back unchanged), errno if the kernel refused
   * UDP GSO, sends made (a GSO send counts once). */
  readonly SEND_STATE_RESUME: number;
  readonly SEND_STATE_GSO_ERRNO: number;
  readonly SEND_STATE_SENDS: number;
  readonly SEND_STATE_LEN: number;
  /** Positions in tunWriteOffload's stats array (WRITE_STATS_LEN entries): writes made. */
  readonly WRITE_STATS_WRITES: number;
  readonly WRITE_STATS_LEN: number;
  /** Keypair table size; a local receiver index encodes its slot in its low bits:
   * `(localIndex & (WG_KEYPAIR_SLOTS - 1)) === slot`. */
  readonly WG_KEYPAIR_SLOTS: number;
  /** Data message header (type 4, receiver index, counter) and AEAD tag lengths. */
  readonly WG_HEADER_LEN: number;
  readonly WG_TAG_LEN: number;
  /** Negative verdicts of wgOpen and statuses of wgSeal / sealed udpSendSegments (never a -errno). */
  readonly WG_NOT_DATA: number;
  readonly WG_MALFORMED: number;
  readonly WG_UNKNOWN_INDEX: number;
  readonly WG_REPLAYED: number;
  readonly WG_DECRYPT_FAILED: number;
  readonly WG_EXPIRED: number;
  readonly WG_NO_KEYPAIR: number;
  readonly WG_COUNTER_EXHAUSTED: number;
  /** udpFilter modes (src/native/filter_program.h): admit the endpoints only; or the endpoints,
   * plus exact WireGuard handshake messages (initiation, response, cookie reply) from anyone. */
  readonly FILTER_PLAIN: number;
  readonly FILTER_WIREGUARD: number;
}

export interface Addon extends SharedValues {
  pollStart(fd: number, events: number, cb: (status: number, events: number) => void): object;
  pollSet(handle: object, events: number): void;
  pollStop(handle: object): void;
  /** flags: TUN_OPEN_VNET, TUN_OPEN_MULTI_QUEUE, TUN_OPEN_DETACHED; 0 or missing for a plain
   * single-queue device. vnet: the fd carries a virtio-net header; offload: TUN_F_* bits accepted. */
  tunOpen(name: string, flags?: number): { fd: number; name: string; vnet: boolean; offload: number };
  tunAttached(fd: number): boolean;
  /** Stops at EAGAIN, after count packets, or once maxBytes have been read. */
  tunRead(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, maxBytes?: number): number;
  tunWrite(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, status: Int32Array): number;
  /** reusePort nonzero: SO_REUSEPORT before bind (one socket per worker on one address). */
  udpOpen(endpoint: Uint8Array, rcvbuf: number, sndbuf: number, reusePort?: number): { fd: number; endpoint: Uint8Array };
  /** With segs (UDP GRO on): segs[i] is the segment size of datagram i, 0 if it is one. */
  udpRecv(
    fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, sources: Uint8Array, segs?: Int32Array,
  ): number;
  /** Asks for UDP_GSO / UDP_GRO bits; returns the ones the kernel accepted. */
  udpOffload(fd: number, wanted: number): number;
  /** Splits virtio-header super-packets and sends them (see offload.c, segment.c). With slots (header
   * then empty), every datagram is a WireGuard data message sealed with slots[i]'s keypair and
   * padded within mtu; seal failures are negative statuses (WG_NO_KEYPAIR, WG_COUNTER_EXHAUSTED). */
  udpSendSegments(
    fd: number, v6: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number,
    destinations: Uint8Array, status: Int32Array, bytes: Int32Array, state: Int32Array, header: Uint8Array, gso: number,
    slots?: Int32Array | null, mtu?: number,
  ): number;
  /** Writes behind a virtio-net header, joining runs of the kinds in join (JOIN_TCP, JOIN_UDP; see coalesce.c);
   * stats[WRITE_STATS_WRITES] is set to the writes made. */
  tunWriteOffload(
    fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, status: Int32Array, join: number,
    stats: Int32Array,
  ): number;
  udpSend(
    fd: number, v6: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number,
    destinations: Uint8Array, status: Int32Array,
  ): number;
  /** Attaches the peer filter (count 20-byte endpoints, in mode FILTER_PLAIN or FILTER_WIREGUARD)
   * or, with null, detaches it (mode not needed); returns the program's length in instructions.
   * Throws E2BIG past BPF_MAXINSNS, EINVAL (RangeError) for another mode. */
  udpFilter(fd: number, v6: number, endpoints: Uint8Array | null, count: number, mode?: PeerFilterMode): number;
  /** Datagrams the kernel dropped for the socket (SO_MEMINFO): 32 bits, wraps. */
  udpDrops(fd: number): number;
  /** The socket's SO_MARK as read back, after setting it to mark (uint32, 0: none) if given. */
  udpMark(fd: number, mark?: number): number;
  close(fd: number): void;

  // WireGuard data messages (src/native/wg-*.c): per-packet crypto on a process-global
  // keypair table, one call per batch. Single-threaded: WireGuard runs with workers = 1.

  /** Installs a keypair in slot (replacing what it held): send counter 0, empty replay window.
   * Throws EINVAL on a bad slot, a localIndex that does not encode it, keys not 32 bytes. */
  wgKeypairSet(slot: number, localIndex: number, remoteIndex: number, sendKey: Uint8Array, recvKey: Uint8Array): void;
  /** Forgets the keypair (contexts freed, key material cleansed): its index is unknown from now on. */
  wgKeypairClear(slot: number): void;
  /** out[0] = messages sent (the next send counter; counters a full socket left unsent in a sealed
   * udpSendSegments count too), out[1] = messages received and accepted. 0, 0 for an empty slot. */
  wgKeypairCounters(slot: number, out: Float64Array): void;
  /** Seals packet i (plaintext at slab[offs[i] .. +lens[i]), length 0 a keepalive; 16 bytes of
   * headroom before it and 31 of tailroom after it) in place with slots[i]'s keypair: header before,
   * zero padding to 16 (not past mtu; 0: no cap), tag after; offs[i]/lens[i] then frame the message.
   * status[i] = 0, or WG_NO_KEYPAIR / WG_COUNTER_EXHAUSTED (the packet untouched). */
  wgSeal(
    slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, slots: Int32Array, mtu: number, status: Int32Array,
  ): void;
  /** Opens the datagrams at slab[offs[i] .. +lens[i]) in place; with segs (UDP GRO), segs[i] > 0
   * cuts datagram i into messages of that size. Writes one entry of 3 Int32s per message, in order:
   * [offset, length, verdict]. verdict >= 0: the keypair's slot, the message authenticated and its
   * counter is marked; offset/length frame the plaintext (padding not trimmed; 0 is a keepalive).
   * verdict < 0: WG_NOT_DATA (handshake types go to TypeScript), WG_MALFORMED, WG_UNKNOWN_INDEX,
   * WG_REPLAYED, WG_DECRYPT_FAILED, WG_EXPIRED; offset/length frame the message as received.
   * Returns the entries written; throws if out cannot hold them (count * 64 entries always can). */
  wgOpen(slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, segs: Int32Array | null, out: Int32Array): number;
}

/** FILTER_PLAIN or FILTER_WIREGUARD. */
export type PeerFilterMode = number;

/** The packet I/O calls the two paths make: the addon in production, a fake in fuzz tests. */
export type PacketIo = Pick<Addon, "tunRead" | "tunWrite" | "udpRecv" | "udpSend" | "udpSendSegments" | "tunWriteOffload">;

function load(): Addon {
  // The addon is built by `npm ci` (node-gyp) into src/native/build; from dist/ walk back to it.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = here.includes(`${path.sep}dist${path.sep}`) ? here.replace(/[/\\]dist[/\\].*$/, "") : path.resolve(here, "../..");
  const require = createRequire(import.meta.url);
  return require(path.join(root, "src/native/build/Release/udptun.node")) as Addon;
}

export const addon: Addon = load();

// By name, for the modules that use them.
export const {
  MAX_BATCH, MAX_WRITE_BATCH, GRO_MAX_SEGS, HEADER_ROOM_MAX, VNET_HDR_LEN,
  READABLE, WRITABLE, TUN_OPEN_MULTI_QUEUE, TUN_OPEN_VNET, TUN_OPEN_DETACHED, UDP_GSO, UDP_GRO, JOIN_TCP, JOIN_UDP,
  SEND_STATE_RESUME, SEND_STATE_GSO_ERRNO, SEND_STATE_SENDS, SEND_STATE_LEN, WRITE_STATS_WRITES, WRITE_STATS_LEN,
  WG_KEYPAIR_SLOTS, WG_HEADER_LEN, WG_TAG_LEN, WG_NOT_DATA, WG_MALFORMED, WG_UNKNOWN_INDEX, WG_REPLAYED,
  WG_DECRYPT_FAILED, WG_EXPIRED, WG_NO_KEYPAIR, WG_COUNTER_EXHAUSTED, FILTER_PLAIN, FILTER_WIREGUARD,
} = addon;

/** The TUN_F_* offloads tunOpen reports, by the names the log uses. */
export const TUN_OFFLOAD_BITS = {
  csum: addon.TUN_F_CSUM, tso4: addon.TUN_F_TSO4, tso6: addon.TUN_F_TSO6, uso4: addon.TUN_F_USO4, uso6: addon.TUN_F_USO6,
} as const;
