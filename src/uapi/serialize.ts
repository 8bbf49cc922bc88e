// The get reply, produced in chunks so that a device with 100k+ allowed IPs is streamed with
// back-pressure instead of being built as one string. Order and presence of keys follow
// wireguard-go: private_key and listen_port only when set, fwmark only when nonzero; per peer
// preshared_key always (zeros for none), endpoint only when known.
import { formatEndpoint, formatPrefix } from "../net/address.ts";
import { KEY_LEN } from "../wireguard/x25519.ts";
import { formatHexKey } from "./protocol.ts";
import type { Prefix } from "../net/address.ts";
import type { DeviceState, PeerState } from "./target.ts";

/** Chunks are cut at about this many bytes. */
export const CHUNK_BYTES = 16 * 1024;
/** Room left after the cut for one allowed_ip line (an IPv6 one is under 60 bytes). */
const MAX_LINE = 64;

const ZERO_KEY = new Uint8Array(KEY_LEN);

const HEX = Buffer.from("0123456789abcdef", "latin1");

/** An IPv6 prefix as netip prints it (RFC 5952: lowercase, no leading zeros in a group, the
 * longest run of two or more zero groups as "::"), written byte by byte at `off`; returns the
 * new offset. v4-mapped ones, rare, are formatPrefix's. */
function writeIpv6Prefix(buf: Buffer, off: number, p: Prefix): number {
  const b = p.bytes;
  if (b[10] === 0xff && b[11] === 0xff && b.subarray(0, 10).every((x) => x === 0)) return off + buf.write(formatPrefix(p), off, "latin1");
  let best = -1;
  let bestLen = 1;
  for (let i = 0, run = 0; i < 8; i++) {
    run = b[i * 2] === 0 && b[i * 2 + 1] === 0 ? run + 1 : 0;
    if (run > bestLen) [best, bestLen] = [i - run + 1, run];
  }
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      if (i === 0) buf[off++] = 58; // ":"
      buf[off++] = 58;
      i += bestLen - 1;
      continue;
    }
    const g = (b[i * 2] << 8) | b[i * 2 + 1];
    for (let shift = g >= 0x1000 ? 12 : g >= 0x100 ? 8 : g >= 0x10 ? 4 : 0; shift >= 0; shift -= 4) buf[off++] = HEX[(g >> shift) & 15];
    if (i < 7) buf[off++] = 58;
  }
  buf[off++] = 47; // "/"
  return writeByte(buf, off, p.length);
}

function peerHead(peer: PeerState): string {
  return (
    `public_key=${formatHexKey(peer.publicKey)}\n` +
    `preshared_key=${formatHexKey(peer.presharedKey ?? ZERO_KEY)}\n` +
    "protocol_version=1\n" +
    (peer.endpoint ? `endpoint=${formatEndpoint(peer.endpoint)}\n` : "") +
    `last_handshake_time_sec=${peer.lastHandshake?.sec ?? 0}\n` +
    `last_handshake_time_nsec=${peer.lastHandshake?.nsec ?? 0}\n` +
    `tx_bytes=${peer.txBytes}\n` +
    `rx_bytes=${peer.rxBytes}\n` +
    `persistent_keepalive_interval=${peer.persistentKeepalive}\n`
  );
}

function deviceHead(state: DeviceState): string {
  return (
    (state.privateKey ? `private_key=${formatHexKey(state.privateKey)}\n` : "") +
    (state.listenPort !== 0 ? `listen_port=${state.listenPort}\n` : "") +
    (state.fwmark !== 0 ? `fwmark=${state.fwmark}\n` : "")
  );
}

const ALLOWED_IP = Buffer.from("allowed_ip=", "latin1");

/** Decimal digits of 0-255 at `off`; returns the new offset (also a prefix length: 0-128). */
function writeByte(buf: Buffer, off: number, n: number): number {
  if (n >= 100) buf[off++] = 48 + Math.floor(n / 100);
  if (n >= 10) buf[off++] = 48 + (Math.floor(n / 10) % 10);
  buf[off++] = 48 + (n % 10);
  return off;
}

/** The reply's body without its closing `errno=0\n\n`, as bytes in chunks of about
 * `chunkBytes` (a line never straddles two chunks). Each chunk is a fresh buffer: the socket
 * may hold it until it is sent. Allowed IPs, most of a large reply, are written byte by byte
 * rather than through strings. */
export function* serializeGet(state: DeviceState, chunkBytes = CHUNK_BYTES): Generator<Buffer> {
  let buf = Buffer.allocUnsafe(chunkBytes + MAX_LINE);
  let off = 0;
  const text = (s: string): void => {
    if (off + s.length > buf.length) {
      // Only a peer's head (under 400 bytes) comes whole; it fits after a flush.
      buf = Buffer.concat([buf.subarray(0, off), Buffer.allocUnsafe(s.length + chunkBytes)]);
    }
    off += buf.write(s, off, "latin1");
  };
  text(deviceHead(state));
  for (const peer of state.peers) {
    text(peerHead(peer));
    for (const p of peer.allowedIps) {
      if (p.family === 4) {
        const b = p.bytes;
        ALLOWED_IP.copy(buf, off);
        off = writeByte(buf, off + ALLOWED_IP.length, b[0]);
        buf[off++] = 46; // "."
        off = writeByte(buf, off, b[1]);
        buf[off++] = 46;
        off = writeByte(buf, off, b[2]);
        buf[off++] = 46;
        off = writeByte(buf, off, b[3]);
        buf[off++] = 47; // "/"
        off = writeByte(buf, off, p.length);
        buf[off++] = 10;
      } else {
        ALLOWED_IP.copy(buf, off);
        off = writeIpv6Prefix(buf, off + ALLOWED_IP.length, p);
        buf[off++] = 10;
      }
      if (off >= chunkBytes) {
        yield buf.subarray(0, off);
        buf = Buffer.allocUnsafe(chunkBytes + MAX_LINE);
        off = 0;
      }
    }
    if (off >= chunkBytes) {
      yield buf.subarray(0, off);
      buf = Buffer.allocUnsafe(chunkBytes + MAX_LINE);
      off = 0;
    }
  }
  if (off > 0) yield buf.subarray(0, off);
}

/** The whole body as text, for a state small enough to hold in memory (tests, logs). */
export function serializeGetText(state: DeviceState): string {
  return Buffer.concat([...serializeGet(state)]).toString("latin1");
}
