// The set request of the cross-platform configuration protocol (wireguard.com/xplatform),
// parsed line by line into a validated SetRequest before anything is applied. Keys, values
// and errno choices follow wireguard-go's device/uapi.go; where this is stricter (lowercase
// hex only, no IPv6 zones) it says so.
import { isIPv6 } from "node:net";
import { encodeEndpoint, networkOf, parseIp, parsePrefix } from "../net/address.ts";
import type { Prefix } from "../net/address.ts";
import { KEY_LEN } from "../wireguard/x25519.ts";
import { ERRNO_INVALID, ERRNO_PROTOCOL, UapiError } from "./errors.ts";
import type { DeviceOperation, PeerOperation, PeerSection, SetRequest } from "./target.ts";

const HEX_KEY = new RegExp(`^[0-9a-f]{${KEY_LEN * 2}}$`);

function invalid(key: string, value: string, why: string): UapiError {
  return new UapiError(ERRNO_INVALID, `${key}=${JSON.stringify(value)}: ${why}`);
}

/** 64 lowercase hex characters (the protocol's form; `wg` prints base64 only to people). */
export function parseHexKey(key: string, value: string): Uint8Array {
  if (!HEX_KEY.test(value)) throw invalid(key, value, "not a key (64 lowercase hex characters)");
  return new Uint8Array(Buffer.from(value, "hex"));
}

export function formatHexKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");
}

function isZero(key: Uint8Array): boolean {
  let acc = 0;
  for (const b of key) acc |= b;
  return acc === 0;
}

/** A key that may be all zeros, which means "none" (private_key, preshared_key). */
function parseMaybeZeroKey(key: string, value: string): Uint8Array | null {
  const bytes = parseHexKey(key, value);
  return isZero(bytes) ? null : bytes;
}

/** Decimal, leading zeros allowed, at most `max` (Go's strconv.ParseUint). */
function parseUint(key: string, value: string, max: number): number {
  const n = /^\d{1,20}$/.test(value) ? Number(value) : NaN;
  if (!(n <= max)) throw invalid(key, value, `not a whole number from 0 to ${max}`);
  return n;
}

function parseTrue(key: string, value: string): void {
  if (value !== "true") throw invalid(key, value, 'the only value is "true"');
}

/** "1.2.3.4:51820" or "[fd00::1]:51820", as netip.ParseAddrPort takes them (no host names:
 * `wg` resolves those itself), except IPv6 zones, which the 20-byte form cannot hold. */
export function parseEndpoint(key: string, value: string): Uint8Array {
  const m = /^(?:\[([^\]]*)\]|([^[\]:]*)):(\d{1,5})$/.exec(value);
  const host = m ? (m[1] ?? m[2]) : "";
  const ip = m && (m[1] === undefined || isIPv6(host)) ? parseIp(host) : null;
  const port = m ? Number(m[3]) : NaN;
  if (!ip || !(port <= 65535)) throw invalid(key, value, "not an endpoint (ip:port or [ipv6]:port)");
  return encodeEndpoint(ip, port);
}

/** An IPv4 prefix, masked, read without the general parser's allocations (a configuration
 * can carry 100k of them): four decimal octets without leading zeros (as netip), "/", a length
 * of at most 32. Null if `text` is not exactly that. */
function parseIpv4Prefix(text: string): Prefix | null {
  let addr = 0;
  let i = 0;
  for (let part = 0; part < 5; part++) {
    const start = i;
    let n = 0;
    for (; i < text.length && i - start < 3; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
    }
    const digits = i - start;
    if (digits === 0 || (digits > 1 && text.charCodeAt(start) === 48)) return null;
    if (part < 4) {
      if (n > 255 || text.charCodeAt(i) !== (part < 3 ? 46 : 47)) return null; // "." then "/"
      addr = addr * 256 + n;
      i++;
    } else {
      if (n > 32 || i !== text.length) return null;
      const masked = n === 0 ? 0 : (addr & (-1 << (32 - n))) >>> 0;
      const bytes = new Uint8Array([masked >>> 24, (masked >>> 16) & 255, (masked >>> 8) & 255, masked & 255]);
      return { family: 4, bytes, length: n };
    }
  }
  return null;
}

/** An IPv6 prefix in the usual form (hex groups, at most one "::", no embedded IPv4, a length
 * of at most 128), masked; null for anything else, which the general parser then judges. */
function parseIpv6Prefix(text: string): Prefix | null {
  const slash = text.indexOf("/");
  if (slash < 2) return null;
  const lenText = text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(lenText)) return null;
  const length = Number(lenText);
  if (length > 128) return null;
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  if (text.startsWith("::")) {
    gap = 0;
    i = 2;
  }
  while (i < slash) {
    let n = 0;
    const start = i;
    for (; i < slash && i - start < 4; i++) {
      const c = text.charCodeAt(i) | 0x20; // lowercase letters
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
      if (d < 0) break;
      n = n * 16 + d;
    }
    if (i === start) return null;
    groups.push(n);
    if (i === slash) break;
    if (text.charCodeAt(i) !== 58) return null; // ":"
    i++;
    if (text.charCodeAt(i) === 58) {
      if (gap >= 0) return null;
      gap = groups.length;
      i++;
    } else if (i === slash) {
      return null; // a trailing single ":"
    }
  }
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return null;
  const bytes = new Uint8Array(16);
  const tail = gap < 0 ? 0 : groups.length - gap;
  groups.forEach((g, k) => {
    const at = k < groups.length - tail ? k : 8 - (groups.length - k);
    bytes[at * 2] = g >> 8;
    bytes[at * 2 + 1] = g & 0xff;
  });
  for (let bit = length; bit < 128; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family: 6, bytes, length };
}

/** "10.0.0.0/8" or "fd00::/64" (a length is required, without leading zeros, as in
 * netip.ParsePrefix), masked to its network as wireguard-go's trie stores it. */
function allowedIpOperation(key: string, value: string): PeerOperation {
  const remove = value.charCodeAt(0) === 45; // "-"
  const text = remove ? value.slice(1) : value;
  let prefix = parseIpv4Prefix(text);
  if (!prefix && text.includes(":")) {
    prefix = parseIpv6Prefix(text);
    if (!prefix) {
      // Embedded IPv4 (::ffff:10.0.0.0/104) and the rest: the general parser.
      const slash = text.indexOf("/");
      const p = slash > 0 && /^(0|[1-9]\d{0,2})$/.test(text.slice(slash + 1)) ? parsePrefix(text) : null;
      if (p?.family === 6) prefix = networkOf(p);
    }
  }
  if (!prefix) throw invalid(key, value, "not a prefix (address/length, with - in front to remove it)");
  return { op: "allowed_ip", prefix, remove };
}

function deviceOperation(key: string, value: string): DeviceOperation {
  switch (key) {
    case "private_key":
      return { op: "private_key", key: parseMaybeZeroKey(key, value) };
    case "listen_port":
      return { op: "listen_port", port: parseUint(key, value, 0xffff) };
    case "fwmark":
      return { op: "fwmark", mark: parseUint(key, value, 0xffffffff) };
    case "replace_peers":
      parseTrue(key, value);
      return { op: "replace_peers" };
    default:
      throw invalid(key, value, "not a device key (device keys come before the first public_key)");
  }
}

function peerOperation(key: string, value: string): PeerOperation {
  switch (key) {
    case "remove":
    case "update_only":
    case "replace_allowed_ips":
      parseTrue(key, value);
      return { op: key };
    case "preshared_key":
      return { op: "preshared_key", key: parseMaybeZeroKey(key, value) };
    case "endpoint":
      return { op: "endpoint", endpoint: parseEndpoint(key, value) };
    case "persistent_keepalive_interval":
      return { op: "persistent_keepalive_interval", seconds: parseUint(key, value, 0xffff) };
    case "allowed_ip":
      return allowedIpOperation(key, value);
    case "protocol_version":
      if (value !== "1") throw invalid(key, value, "the only protocol version is 1");
      return { op: "protocol_version", version: 1 };
    default:
      throw invalid(key, value, "not a peer key");
  }
}

/** Takes the lines of one set request (after `set=1`, before the blank line) one at a time;
 * the first bad line throws a UapiError and the request must then be dropped whole. */
export class SetParser {
  readonly #request: SetRequest = { device: [], peers: [] };
  #peer: PeerSection | null = null;

  line(text: string): void {
    // Most lines of a large request are allowed IPs: no key to slice and compare.
    if (this.#peer && text.startsWith("allowed_ip=")) {
      this.#peer.operations.push(allowedIpOperation("allowed_ip", text.slice(11)));
      return;
    }
    const eq = text.indexOf("=");
    if (eq < 0) throw new UapiError(ERRNO_PROTOCOL, `line ${JSON.stringify(text)}: no "="`);
    const key = text.slice(0, eq);
    const value = text.slice(eq + 1);
    if (key === "public_key") {
      this.#peer = { publicKey: parseHexKey(key, value), operations: [] };
      this.#request.peers.push(this.#peer);
    } else if (this.#peer) {
      this.#peer.operations.push(peerOperation(key, value));
    } else {
      this.#request.device.push(deviceOperation(key, value));
    }
  }

  finish(): SetRequest {
    return this.#request;
  }
}

/** A request held in memory: its lines up to the first blank one (without `set=1`). */
export function parseSet(text: string): SetRequest {
  const parser = new SetParser();
  for (const line of text.split("\n")) {
    if (line === "") break;
    parser.line(line);
  }
  return parser.finish();
}
