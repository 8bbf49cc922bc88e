// Batch sizes and buffer layout, in one place. Values the kernel or the addon fixes come
// from the addon (src/native/addon.ts); these are udptun's own choices.
import { GRO_MAX_SEGS, VNET_HDR_LEN } from "../native/addon.ts";
import { HEADER_LEN } from "./header.ts";

/** Packets per native call (one TUN read loop, one sendmmsg, one recvmmsg, one TUN write loop);
 * at most the addon's MAX_BATCH. */
export const BATCH = 64;

/** Most inner packets one batch of received datagrams can yield (each GRO datagram holds up
 * to GRO_MAX_SEGS): the length of the TUN write batch, at most the addon's MAX_WRITE_BATCH. */
export const WRITE_BATCH = BATCH * GRO_MAX_SEGS;

/** Bytes one batch of reads may bring in when each read may be a 64 KiB super-packet (TUN
 * with offloads) or GRO datagram: the batch then stays in the CPU cache between the
 * kernel's copy into it and the copy out (64 x 64 KiB would not); small packets still
 * come 64 at a time. */
export const SUPER_BATCH_BYTES = 512 * 1024;

/** The fewest buffers a read is offered (a read then offers twice what the last one took).
 * Small: with offloads a wakeup mostly finds one super-packet or GRO datagram, and every
 * buffer offered and not filled is a pull and a release for nothing. */
export const MIN_FILL = 2;

/** Batches drained per readiness wakeup before yielding to the event loop (fairness between
 * the two paths; the watch is level-triggered, so anything left wakes us again). */
export const ROUNDS_PER_WAKEUP = 8;

/** Room in front of every packet, so encapsulation never moves it: our 4-byte header sits
 * there (written by the device path without TUN offloads, received there by the network
 * path), a 16-byte transport header later. The virtio-net header takes none of it: a TUN
 * read puts it at the headroom, ahead of the packet, and the addon writes its own in front
 * of each TUN write. */
export const HEADROOM = 64;

/** Room behind every packet: WireGuard's zero padding (up to 15 bytes) and its 16-byte tag. */
export const TAILROOM = 32;

/** Buffer size for a given device MTU, rounded to a cache line. */
export function bufferSizeFor(mtu: number): number {
  return Math.ceil((HEADROOM + mtu + TAILROOM) / 64) * 64;
}

/** Largest IP packet (a TSO/USO super-packet the kernel hands over, a joined write). */
export const MAX_IP_PACKET = 65535;

/** Buffers of the offload pools: a whole super-packet behind its virtio header, or a whole
 * GRO datagram (at most 65535 bytes of UDP payload). */
export const SUPER_BUFFER_SIZE = bufferSizeFor(VNET_HDR_LEN + MAX_IP_PACKET);

/** Where a datagram is received so that its inner packet lands exactly at HEADROOM. */
export const DATAGRAM_START = HEADROOM - HEADER_LEN;
