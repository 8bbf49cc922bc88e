// IP literals, CIDR prefixes and host:port endpoints, parsed without allocation on the
// data path: everything here runs at configuration time and yields plain bytes.
import { isIPv4, isIPv6 } from "node:net";

export type Family = 4 | 6;

export interface IpAddress {
  family: Family;
  bytes: Uint8Array; // 4 or 16 bytes, network order
}

export interface Prefix extends IpAddress {
  length: number; // prefix length in bits
}

/** The 20-byte endpoint form shared with the native addon (layout in src/native/core.h). */
export const ENDPOINT_BYTES = 20;

export function parseIp(text: string): IpAddress | null {
  if (isIPv4(text)) {
    return { family: 4, bytes: Uint8Array.from(text.split(".").map(Number)) };
  }
  // Zone ids (fe80::1%eth0) would be lost in 16 bytes: refuse them rather than drop the scope.
  if (!isIPv6(text) || text.includes("%")) return null;
  let head = text;
  let v4tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    // Embedded IPv4 tail (::ffff:1.2.3.4): turn it into two 16-bit groups.
    v4tail = text.slice(lastColon + 1).split(".").map(Number);
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const [left, right] = head.includes("::") ? head.split("::") : [head, undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const l = groups(left);
  const r = groups(right);
  const all = right === undefined ? l : [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  if (v4tail.length === 4) bytes.set(v4tail, 12);
  return { family: 6, bytes };
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  if (ip.bytes.subarray(0, 10).every((b) => b === 0) && ip.bytes[10] === 0xff && ip.bytes[11] === 0xff) {
    return `::ffff:${Array.from(ip.bytes.subarray(12)).join(".")}`; // IPv4-mapped, RFC 5952 section 5
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i] << 8) | ip.bytes[i + 1]).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 asks.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/** "10.0.0.0/8", "fd00::/64", or a bare address (a host prefix). Null if malformed. */
export function parsePrefix(text: string): Prefix | null {
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return null;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, length: max };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return null;
  const length = Number(lenText);
  if (length > max) return null;
  return { ...ip, length };
}

/** The prefix with its host bits cleared (10.1.2.3/8 -> 10.0.0.0/8). */
export function networkOf(p: Prefix): Prefix {
  const bytes = new Uint8Array(p.bytes);
  for (let bit = p.length; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family: p.family, bytes, length: p.length };
}

export function formatPrefix(p: Prefix): string {
  return `${formatIp(p)}/${p.length}`;
}

export interface HostPort {
  host: string; // IP literal or DNS name, without brackets
  port: number;
}

/** "1.2.3.4:51820", "[fd00::1]:51820", "peer-b:51820". Null if malformed. */
export function parseHostPort(text: string): HostPort | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (port > 65535) return null;
  if (m[1] !== undefined && !isIPv6(host)) return null;
  if (m[2] !== undefined && !isIPv4(host) && !isHostName(host)) return null;
  return { host, port };
}

/** A DNS name: dot-separated labels of letters, digits and inner hyphens, not all-numeric
 * (so an IPv4 typo such as 198.18.0.256 is refused rather than looked up). */
function isHostName(host: string): boolean {
  if (host.length > 253 || /^[\d.]+$/.test(host)) return false;
  return host.split(".").every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

export function encodeEndpoint(ip: IpAddress, port: number): Uint8Array {
  // An IPv4-mapped IPv6 address is an IPv4 peer: the addon reports such sources as family 4.
  if (ip.family === 6 && ip.bytes.subarray(0, 10).every((b) => b === 0) && ip.bytes[10] === 0xff && ip.bytes[11] === 0xff) {
    ip = { family: 4, bytes: ip.bytes.slice(12) };
  }
  const ep = new Uint8Array(ENDPOINT_BYTES);
  ep[0] = ip.family;
  ep[2] = port >> 8;
  ep[3] = port & 0xff;
  ep.set(ip.bytes, 4);
  return ep;
}

export function decodeEndpoint(ep: Uint8Array, off = 0): { ip: IpAddress; port: number } {
  const family = ep[off] === 6 ? 6 : 4;
  const bytes = ep.slice(off + 4, off + 4 + (family === 4 ? 4 : 16));
  return { ip: { family, bytes }, port: (ep[off + 2] << 8) | ep[off + 3] };
}

export function formatEndpoint(ep: Uint8Array, off = 0): string {
  const { ip, port } = decodeEndpoint(ep, off);
  return ip.family === 4 ? `${formatIp(ip)}:${port}` : `[${formatIp(ip)}]:${port}`;
}
