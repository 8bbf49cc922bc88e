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

/** Keys whose values are secrets: a refusal names the key and the value's length, never the value. */
const SECRET_KEYS = new Set(["private_key", "preshared_key"]);

function invalid(key: string, value: string, why: string): UapiError {
  const shown = SECRET_KEYS.has(key) ? `(${value.length} characters, not shown)` : JSON.stringify(value);
  return new UapiError(ERRNO_INVALID, `${key}=${shown}: ${why}`);
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

/** Prefix bytes are views into shared slabs: a view takes about half the heap of an array with
 * a buffer of its own, and the 100k prefixes of a large request all outlive the parse. A
 * structured clone of many prefixes copies each slab they share once. Slots are never reused,
 * so each starts zeroed (one a failed read took is simply skipped). */
const SLAB_BYTES = 4096;
let slab = new ArrayBuffer(0);
let slabUsed = 0;

function prefixBytes(n: 4 | 16): Uint8Array {
  if (slabUsed + n > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const bytes = new Uint8Array(slab, slabUsed, n);
  slabUsed += n;
  return bytes;
}

/** An IPv4 prefix, masked, read without the general parser's allocations (a configuration
 * can carry 100k of them): four decimal octets without leading zeros (as netip), "/", a length
 * of at most 32. Null if `text` from `i` on is not exactly that. */
function parseIpv4Prefix(text: string, i: number): Prefix | null {
  let addr = 0;
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
      const masked = n === 0 ? 0 : addr & (-1 << (32 - n));
      const bytes = prefixBytes(4);
      bytes[0] = masked >>> 24;
      bytes[1] = masked >>> 16;
      bytes[2] = masked >>> 8;
      bytes[3] = masked;
      return { family: 4, bytes, length: n };
    }
  }
  return null;
}

/** A prefix length at `from`, to the end of `text`: decimal without leading zeros (as
 * netip.ParsePrefix), at most `max`; -1 if not that. */
function parseLength(text: string, from: number, max: number): number {
  const digits = text.length - from;
  if (digits < 1 || digits > 3 || (digits > 1 && text.charCodeAt(from) === 48)) return -1;
  let n = 0;
  for (let i = from; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n <= max ? n : -1;
}

/** An IPv6 prefix in the usual form (hex groups, at most one "::", no embedded IPv4, a length
 * of at most 128) from `i` on, masked; null for anything else, which the general parser then
 * judges. The groups go straight into the bytes; a "::" moves those after it into place. */
function parseIpv6Prefix(text: string, i: number): Prefix | null {
  const slash = text.indexOf("/", i);
  if (slash < i + 2) return null;
  const length = parseLength(text, slash + 1, 128);
  if (length < 0) return null;
  const bytes = prefixBytes(16);
  let groups = 0;
  let gap = -1;
  if (text.charCodeAt(i) === 58 && text.charCodeAt(i + 1) === 58) {
    gap = 0;
    i += 2;
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
    if (i === start || groups === 8) return null;
    bytes[groups * 2] = n >> 8;
    bytes[groups * 2 + 1] = n & 0xff;
    groups++;
    if (i === slash) break;
    if (text.charCodeAt(i) !== 58) return null; // ":"
    i++;
    if (text.charCodeAt(i) === 58) {
      if (gap >= 0) return null;
      gap = groups;
      i++;
    } else if (i === slash) {
      return null; // a trailing single ":"
    }
  }
  if (gap < 0 ? groups !== 8 : groups > 7) return null;
  if (gap >= 0) {
    // The groups after "::" belong at the end.
    const tail = (groups - gap) * 2;
    bytes.copyWithin(16 - tail, gap * 2, groups * 2);
    bytes.fill(0, gap * 2, 16 - tail);
  }
  for (let bit = length; bit < 128; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family: 6, bytes, length };
}

/** "10.0.0.0/8" or "fd00::/64" (a length is required, without leading zeros, as in
 * netip.ParsePrefix), masked to its network as wireguard-go's trie stores it. The value is
 * `line` from `from` on: the common forms are read in place, with no substring per line. */
function allowedIpOperation(key: string, line: string, from: number): PeerOperation {
  const remove = line.charCodeAt(from) === 45; // "-"
  const at = remove ? from + 1 : from;
  let prefix = parseIpv4Prefix(line, at);
  if (!prefix && line.includes(":", at)) {
    prefix = parseIpv6Prefix(line, at);
    if (!prefix) {
      // Embedded IPv4 (::ffff:10.0.0.0/104) and the rest: the general parser.
      const text = line.slice(at);
      const slash = text.indexOf("/");
      const p = slash > 0 && parseLength(text, slash + 1, 128) >= 0 ? parsePrefix(text) : null;
      if (p?.family === 6) prefix = networkOf(p);
    }
  }
  if (!prefix) throw invalid(key, line.slice(from), "not a prefix (address/length, with - in front to remove it)");
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
      return allowedIpOperation(key, value, 0);
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
      this.#peer.operations.push(allowedIpOperation("allowed_ip", text, 11));
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
