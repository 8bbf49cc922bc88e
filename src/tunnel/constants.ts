// Batch sizes and buffer layout, in one place.
import { HEADER_LEN } from "./header.ts";

/** Packets per native call (one TUN read loop, one sendmmsg, one recvmmsg, one TUN write loop). */
export const BATCH = 64;

/** Bytes one batch of reads may bring in when each read may be a 64 KiB super-packet (TUN
 * with offloads) or GRO datagram: the batch then stays in the CPU cache between the
 * kernel's copy into it and the copy out (64 x 64 KiB would not); small packets still
 * come 64 at a time. */
export const SUPER_BATCH_BYTES = 512 * 1024;

/** The fewest buffers a read is offered (a read then offers twice what the last one took).
 * 2, not 4: with offloads a wakeup mostly finds one super-packet or GRO datagram, and every
 * buffer offered and not filled is a pull and a release for nothing (`make profile`, 20 s:
 * pool work fell from 0.88% to 0.65% of both ends' samples, 1.1% to 0.86% at the receiver). */
export const MIN_FILL = 2;

/** Batches drained per readiness wakeup before yielding to the event loop (fairness between
 * the two paths; the watch is level-triggered, so anything left wakes us again). */
export const ROUNDS_PER_WAKEUP = 8;

/** Room in front of every packet: our 4-byte header now; a 16-byte transport header and a
 * 10-byte virtio-net header later, so encapsulation never moves the packet. */
export const HEADROOM = 64;

/** Room behind every packet: WireGuard's zero padding (up to 15 bytes) and its 16-byte tag. */
export const TAILROOM = 32;

/** Buffer size for a given device MTU, rounded to a cache line. */
export function bufferSizeFor(mtu: number): number {
  return Math.ceil((HEADROOM + mtu + TAILROOM) / 64) * 64;
}

/** The virtio-net header in front of every packet on a TUN device opened with offloads. */
export const VNET_HDR_LEN = 10;

/** Largest IP packet (a TSO/USO super-packet the kernel hands over, a joined write). */
export const MAX_IP_PACKET = 65535;

/** Buffers of the offload pools: a whole super-packet behind its virtio header, or a whole
 * GRO datagram (at most 65535 bytes of UDP payload). */
export const SUPER_BUFFER_SIZE = bufferSizeFor(VNET_HDR_LEN + MAX_IP_PACKET);

/** Most segments one GRO datagram holds (the kernel's UDP_GRO_CNT_MAX); more are dropped. */
export const MAX_SEGMENTS_PER_DATAGRAM = 64;

/** Where a datagram is received so that its inner packet lands exactly at HEADROOM. */
export const DATAGRAM_START = HEADROOM - HEADER_LEN;
