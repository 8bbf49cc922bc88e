// Inner IP packet checks and address offsets. Every function reads straight from the
// pool slab at an offset, allocates nothing, and returns a drop code or -1 for "fine".
import { Drop } from "./drops.ts";

export const IPV4_SRC = 12;
export const IPV4_DST = 16;
export const IPV6_SRC = 8;
export const IPV6_DST = 24;

/** Checks version, header length and total length against the bytes we hold. -1 if sound. */
export function checkPacket(b: Uint8Array, off: number, len: number, mtu: number): number {
  if (len > mtu) return Drop.Oversize;
  if (len < 1) return Drop.MalformedIp;
  const version = b[off] >> 4;
  if (version === 4) {
    if (len < 20) return Drop.MalformedIp;
    const ihl = (b[off] & 0x0f) << 2;
    const total = (b[off + 2] << 8) | b[off + 3];
    if (ihl < 20 || total < ihl || total !== len) return Drop.MalformedIp;
    if (ipv4HeaderSum(b, off, ihl) !== 0xffff) return Drop.BadChecksum;
    return -1;
  }
  if (version === 6) {
    if (len < 40) return Drop.MalformedIp;
    // A zero payload length means a jumbogram, which cannot fit an MTU we allow.
    if (((b[off + 4] << 8) | b[off + 5]) + 40 !== len) return Drop.MalformedIp;
    return -1;
  }
  return Drop.MalformedIp;
}

/** One's complement sum of an IPv4 header; 0xffff when the checksum field is right.
 * The 20 bytes every header has are summed in straight-line code (it runs once per
 * received packet; the loop was the receiver's largest JS cost), options in a loop. */
export function ipv4HeaderSum(b: Uint8Array, off: number, ihl: number): number {
  let sum =
    ((b[off] << 8) | b[off + 1]) + ((b[off + 2] << 8) | b[off + 3]) + ((b[off + 4] << 8) | b[off + 5]) +
    ((b[off + 6] << 8) | b[off + 7]) + ((b[off + 8] << 8) | b[off + 9]) + ((b[off + 10] << 8) | b[off + 11]) +
    ((b[off + 12] << 8) | b[off + 13]) + ((b[off + 14] << 8) | b[off + 15]) + ((b[off + 16] << 8) | b[off + 17]) +
    ((b[off + 18] << 8) | b[off + 19]);
  for (let i = 20; i < ihl; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

/** The length an IP packet's header declares, if len bytes hold it, else -1. WireGuard pads
 * the plaintext to a multiple of 16: what lies past this length is padding. */
export function declaredLength(b: Uint8Array, off: number, len: number): number {
  let total: number;
  const version = len > 0 ? b[off] >> 4 : 0;
  if (version === 4 && len >= 20) total = (b[off + 2] << 8) | b[off + 3];
  else if (version === 6 && len >= 40) total = ((b[off + 4] << 8) | b[off + 5]) + 40;
  else return -1;
  return total <= len ? total : -1;
}

/** Offset of the destination address, or -1 if the packet is too short to have one. */
export function destinationOffset(b: Uint8Array, off: number, len: number): number {
  const version = b[off] >> 4;
  if (version === 4 && len >= 20) return off + IPV4_DST;
  if (version === 6 && len >= 40) return off + IPV6_DST;
  return -1;
}

/** Offset of the source address of a packet that passed checkPacket. */
export function sourceOffset(b: Uint8Array, off: number): number {
  return b[off] >> 4 === 4 ? off + IPV4_SRC : off + IPV6_SRC;
}
