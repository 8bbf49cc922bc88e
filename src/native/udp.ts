// The UDP socket every peer shares: bound once, non-blocking, with large kernel buffers.
import { addon, FILTER_PLAIN } from "./addon.ts";
import type { PeerFilterMode } from "./addon.ts";
import { ENDPOINT_BYTES, encodeEndpoint } from "../net/address.ts";
import type { IpAddress } from "../net/address.ts";

export interface UdpSocket {
  readonly fd: number;
  /** 1 for an IPv6 (possibly dual-stack) socket: the addon builds sockaddrs to match. */
  readonly v6: number;
  /** The bound endpoint (addon form), port filled in. */
  readonly endpoint: Uint8Array;
}

/** reusePort: SO_REUSEPORT, for one socket per worker on the same address (workers > 1). */
export function openUdp(ip: IpAddress, port: number, receiveBuffer: number, sendBuffer: number, reusePort = false): UdpSocket {
  const { fd, endpoint } = addon.udpOpen(encodeEndpoint(ip, port), receiveBuffer, sendBuffer, reusePort ? 1 : 0);
  return { fd, v6: ip.family === 6 ? 1 : 0, endpoint };
}

export function closeUdp(sock: UdpSocket): void {
  addon.close(sock.fd);
}

/**
 * Lets only datagrams from these endpoints (addon form) into the socket: the kernel drops the
 * rest before they take room in the receive buffer. With mode FILTER_WIREGUARD, any other
 * source may still send a datagram that is exactly a handshake message (148 bytes of type 1,
 * 92 of type 2, 64 of type 3), so an unknown or roaming peer can (re)connect; its data
 * messages get in once its new endpoint is in the list. Replaces the previous filter in one
 * step; an empty list admits nothing (plain) or handshakes only (wireguard). Returns the
 * program's length in instructions. Throws (code E2BIG) when the endpoints need more than
 * BPF_MAXINSNS instructions; the socket is then left as it was.
 */
export function setPeerFilter(sock: UdpSocket, endpoints: readonly Uint8Array[], mode: PeerFilterMode = FILTER_PLAIN): number {
  const packed = new Uint8Array(endpoints.length * ENDPOINT_BYTES);
  endpoints.forEach((ep, i) => packed.set(ep.subarray(0, ENDPOINT_BYTES), i * ENDPOINT_BYTES));
  return addon.udpFilter(sock.fd, sock.v6, packed, endpoints.length, mode);
}

/** Removes the peer filter: every datagram reaches udptun again (no-op without one). */
export function clearPeerFilter(sock: UdpSocket): void {
  addon.udpFilter(sock.fd, sock.v6, null, 0);
}

/**
 * The kernel's count of datagrams it dropped for the socket (refused by the peer filter, or no
 * room in the receive buffer), widened past the kernel's 32 bits: each read adds the growth
 * since the last one modulo 2^32, so reads must come more often than 2^32 drops.
 */
export class ReceiveDrops {
  total = 0;
  private last = 0;
  private fd: number;

  constructor(sock: UdpSocket) {
    this.fd = sock.fd;
  }

  /** The socket was replaced: what the old one dropped is kept, the new one's adds to it. */
  moveTo(sock: UdpSocket): void {
    this.read();
    this.fd = sock.fd;
    this.last = 0;
  }

  read(): number {
    const now = addon.udpDrops(this.fd);
    this.total += (now - this.last) >>> 0;
    this.last = now;
    return this.total;
  }
}
