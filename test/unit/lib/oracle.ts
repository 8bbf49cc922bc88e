// The fuzz suites' oracle: its own reading of each input, written from the wire format and
// the drop reasons' documentation (README "How a packet moves", src/tunnel/drops.ts), not by
// calling into src. Routing is a linear longest-prefix scan (src uses a trie); the IPv4
// checksum is computed and compared (src sums and checks for 0xffff); endpoints compare as
// bytes (src hashes first).
import { MTU, WIRE_HEADER } from "./world.ts";
import type { Fixture, TestPrefix } from "./world.ts";
import type { WireDatagram } from "./packets.ts";

/** The metric labels of udptun_drops_total{reason}: the contract the counters are read by. */
export const REASONS = [
  "unknown_peer", "truncated", "oversize", "bad_version", "bad_type", "bad_header", "malformed_ip",
  "bad_checksum", "source_not_allowed", "tun_write_error", "no_route", "no_endpoint", "send_error", "shutdown",
  "no_session", "unknown_index", "replayed", "decryption_failed", "expired_keypair", "bad_size", "bad_mac",
  "under_load", "rate_limited", "replayed_handshake", "handshake_overflow",
] as const;
export type Reason = (typeof REASONS)[number];

export type Counts = Record<Reason, number>;

export function zeroCounts(): Counts {
  return Object.fromEntries(REASONS.map((r) => [r, 0])) as Counts;
}

export const EAFNOSUPPORT = 97;

// ---------------------------------------------------------------- shared pieces

function covers(p: TestPrefix, b: Uint8Array, off: number): boolean {
  const full = p.length >> 3;
  for (let i = 0; i < full; i++) if (b[off + i] !== p.bytes[i]) return false;
  const rest = p.length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (b[off + full] & mask) === (p.bytes[full] & mask);
}

/** Index of the peer whose allowed IPs hold the address at b[off..] most specifically, or -1. */
export function longestMatch(fx: Fixture, family: 4 | 6, b: Uint8Array, off: number): number {
  let best = -1;
  let bestLen = -1;
  fx.peers.forEach((peer, i) => {
    for (const p of peer.allowed) {
      if (p.family === family && p.length > bestLen && covers(p, b, off)) {
        best = i;
        bestLen = p.length;
      }
    }
  });
  return best;
}

/** The peer whose endpoint is exactly these 20 bytes, or -1. */
export function peerAt(fx: Fixture, source: Uint8Array): number {
  return fx.peers.findIndex((p) => p.endpoint !== null && p.endpoint.every((x, i) => x === source[i]));
}

/** "192.0.2.1:51820" / "[2001:db8::2]:51820", normalised by the WHATWG URL parser. */
export function showEndpoint(ep: Uint8Array): string {
  const port = (ep[2] << 8) | ep[3];
  if (ep[0] === 4) return `${ep[4]}.${ep[5]}.${ep[6]}.${ep[7]}:${port}`;
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(((ep[4 + 2 * i] << 8) | ep[5 + 2 * i]).toString(16));
  return `${new URL(`http://[${groups.join(":")}]/`).hostname}:${port}`;
}

/** Is the IPv4 header checksum right? Computed over the header with the field taken as zero;
 * 0xffff stands for a computed 0x0000 too (both are zero in one's complement, RFC 1624). */
function ipv4ChecksumOk(b: Uint8Array, off: number, hlen: number): boolean {
  let sum = 0;
  for (let i = 0; i < hlen; i += 2) {
    if (i === 10) continue;
    sum += b[off + i] * 256 + b[off + i + 1];
  }
  sum = (sum % 0xffff) || (sum === 0 ? 0 : 0xffff); // end-around carry, all at once
  const due = 0xffff - sum;
  const field = b[off + 10] * 256 + b[off + 11];
  return field === due || (due === 0 && field === 0xffff);
}

// ---------------------------------------------------------------- network path

export type NetOutcome =
  | { kind: "drop"; reason: Reason }
  | { kind: "keepalive"; peer: number }
  | { kind: "deliver"; peer: number; inner: Uint8Array };

/** What the network path must do with one datagram. */
export function judgeDatagram(fx: Fixture, d: WireDatagram): NetOutcome {
  const drop = (reason: Reason): NetOutcome => ({ kind: "drop", reason });
  // 1. Only a configured peer's exact ip:port is read at all.
  const peer = peerAt(fx, d.source);
  if (peer < 0) return drop("unknown_peer");
  // 2. A full-MTU inner packet plus our header is the most we take (the room is larger; a
  //    datagram larger than the room arrives truncated and is no better).
  if (d.length > MTU + WIRE_HEADER) return drop("oversize");
  const b = d.bytes;
  const len = d.length;
  if (len < WIRE_HEADER) return drop("truncated");
  // 3. Our header: version 1, reserved zero, type data (1) or keepalive (2, nothing behind).
  if (b[0] >> 4 !== 1) return drop("bad_version");
  if (b[1] !== 0 || b[2] !== 0 || b[3] !== 0) return drop("bad_header");
  const type = b[0] & 0x0f;
  if (type === 2) return len === WIRE_HEADER ? { kind: "keepalive", peer } : drop("bad_header");
  if (type !== 1) return drop("bad_type");
  return judgeInner(fx, peer, b.subarray(WIRE_HEADER, len));
}

/** An inner packet that came from `peer` (steps 4 and 5 above; WireGuard's opened packets too). */
export function judgeInner(fx: Fixture, peer: number, inner: Uint8Array): NetOutcome {
  const drop = (reason: Reason): NetOutcome => ({ kind: "drop", reason });
  // 4. The inner packet: at most the MTU; version, header length, total length, IPv4 checksum.
  const n = inner.length;
  if (n > MTU) return drop("oversize");
  if (n === 0) return drop("malformed_ip");
  const version = inner[0] >> 4;
  let family: 4 | 6;
  let srcOff: number;
  if (version === 4) {
    if (n < 20) return drop("malformed_ip");
    const hlen = (inner[0] & 0x0f) * 4;
    const total = inner[2] * 256 + inner[3];
    if (hlen < 20 || hlen > total || total !== n) return drop("malformed_ip");
    if (!ipv4ChecksumOk(inner, 0, hlen)) return drop("bad_checksum");
    family = 4;
    srcOff = 12;
  } else if (version === 6) {
    if (n < 40) return drop("malformed_ip");
    if (40 + inner[4] * 256 + inner[5] !== n) return drop("malformed_ip");
    family = 6;
    srcOff = 8;
  } else {
    return drop("malformed_ip");
  }
  // 5. The inner source must route back to the sender (cryptokey-routing style).
  if (longestMatch(fx, family, inner, srcOff) !== peer) return drop("source_not_allowed");
  return { kind: "deliver", peer, inner };
}

export interface PeerRx {
  packets: number;
  bytes: number;
  keepalives: number;
}

export interface NetExpectation {
  outcomes: NetOutcome[];
  drops: Counts;
  /** Inner packets in the order they reach the TUN device (failed writes left out). */
  delivered: Uint8Array[];
  rx: PeerRx[];
  packets: number;
  bytes: number;
  lastWriteErrno: number;
  /** Detail of the first drop for each reason: the source endpoint, or the peer for a write error. */
  firstDrop: Map<Reason, string>;
}

/**
 * The network path's whole run: every datagram judged in order; the k-th packet handed to the
 * TUN device fails with errno tunFailures.get(k), if any.
 */
export function expectNetwork(fx: Fixture, datagrams: readonly WireDatagram[], tunFailures: ReadonlyMap<number, number>): NetExpectation {
  const e = emptyNetExpectation(fx);
  let written = 0;
  for (const d of datagrams) {
    const o = judgeDatagram(fx, d);
    e.outcomes.push(o);
    if (o.kind === "drop") countDrop(e, o.reason, showEndpoint(d.source));
    else if (o.kind === "keepalive") e.rx[o.peer].keepalives++;
    else expectWrite(e, fx, o.peer, o.inner, tunFailures.get(written++) ?? 0);
  }
  return e;
}

export function emptyNetExpectation(fx: Fixture): NetExpectation {
  return {
    outcomes: [],
    drops: zeroCounts(),
    delivered: [],
    rx: fx.peers.map(() => ({ packets: 0, bytes: 0, keepalives: 0 })),
    packets: 0,
    bytes: 0,
    lastWriteErrno: 0,
    firstDrop: new Map(),
  };
}

/** Counts a drop; the first of each reason keeps its detail. */
export function countDrop(e: NetExpectation, reason: Reason, detail: string): void {
  if (e.drops[reason]++ === 0) e.firstDrop.set(reason, detail);
}

/** A packet from `peer` handed to the TUN device, whose write fails with errno (0: it does not). */
export function expectWrite(e: NetExpectation, fx: Fixture, peer: number, inner: Uint8Array, errno: number): void {
  if (errno !== 0) {
    e.lastWriteErrno = errno;
    countDrop(e, "tun_write_error", fx.peers[peer].name);
    return;
  }
  e.delivered.push(inner);
  e.rx[peer].packets++;
  e.rx[peer].bytes += inner.length;
  e.packets++;
  e.bytes += inner.length;
}

// ---------------------------------------------------------------- device path

export type DevOutcome = { kind: "drop"; reason: Reason; peer: number } | { kind: "route"; peer: number };

/** What the device path must do with one packet read from the TUN device: find the
 * destination (the kernel's packets are trusted for everything else), route it, and have
 * an endpoint to send to. */
export function judgePacket(fx: Fixture, p: Uint8Array): DevOutcome {
  const version = p.length > 0 ? p[0] >> 4 : -1;
  let family: 4 | 6;
  let dst: number;
  if (version === 4 && p.length >= 20) {
    family = 4;
    dst = 16;
  } else if (version === 6 && p.length >= 40) {
    family = 6;
    dst = 24;
  } else {
    return { kind: "drop", reason: "malformed_ip", peer: -1 };
  }
  const peer = longestMatch(fx, family, p, dst);
  if (peer < 0) return { kind: "drop", reason: "no_route", peer };
  if (fx.peers[peer].endpoint === null) return { kind: "drop", reason: "no_endpoint", peer };
  return { kind: "route", peer };
}

export interface SentDatagram {
  bytes: Uint8Array;
  dest: Uint8Array;
}

export interface PeerTx {
  packets: number;
  bytes: number;
}

export interface DevExpectation {
  drops: Counts;
  sent: SentDatagram[];
  tx: PeerTx[];
  packets: number;
  bytes: number;
  lastSendErrno: number;
  firstDrop: Map<Reason, string>;
}

/**
 * The device path's whole run over the packets it read, in order. Of the routable ones,
 * the first `processed` went through udpSend (null: all of them); the rest were still held
 * when the path was discarded (shutdown). A datagram to an IPv6 endpoint on an IPv4 socket
 * fails alone (EAFNOSUPPORT); the k-th datagram that reaches the kernel fails with
 * sendFailures.get(k), if any.
 */
export function expectDevice(
  fx: Fixture, packets: readonly Uint8Array[], v6socket: boolean, sendFailures: ReadonlyMap<number, number>, processed: number | null,
): DevExpectation {
  const e: DevExpectation = {
    drops: zeroCounts(),
    sent: [],
    tx: fx.peers.map(() => ({ packets: 0, bytes: 0 })),
    packets: 0,
    bytes: 0,
    lastSendErrno: 0,
    firstDrop: new Map(),
  };
  const count = (reason: Reason, detail: string): void => {
    if (e.drops[reason]++ === 0) e.firstDrop.set(reason, detail);
  };
  let routed = 0;
  let kernel = 0;
  for (const p of packets) {
    const o = judgePacket(fx, p);
    if (o.kind === "drop") {
      count(o.reason, o.reason === "no_endpoint" ? fx.peers[o.peer].name : "");
      continue;
    }
    const peer = fx.peers[o.peer];
    if (processed !== null && routed++ >= processed) {
      count("shutdown", peer.name);
      continue;
    }
    const ep = peer.endpoint!;
    const errno = !v6socket && ep[0] !== 4 ? EAFNOSUPPORT : (sendFailures.get(kernel++) ?? 0);
    if (errno !== 0) {
      e.lastSendErrno = errno;
      count("send_error", peer.name);
      continue;
    }
    const bytes = new Uint8Array(WIRE_HEADER + p.length);
    bytes.set([0x11, 0, 0, 0], 0);
    bytes.set(p, WIRE_HEADER);
    e.sent.push({ bytes, dest: ep });
    e.tx[o.peer].packets++;
    e.tx[o.peer].bytes += p.length;
    e.packets++;
    e.bytes += p.length;
  }
  return e;
}

