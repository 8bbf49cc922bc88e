// The UDP socket every peer shares: bound once, non-blocking, with large kernel buffers.
import { addon } from "./addon.ts";
import { encodeEndpoint } from "../net/address.ts";
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
