// Packet generators for the fuzz suites. fast-check picks a small description of each input
// (family, addresses, sizes, which fault to inject, a seed for the cosmetic fields); the
// builders here turn it into bytes. Bulk payload bytes are cut from one fixed block of noise,
// so a 1,400-byte packet costs one memcpy rather than 1,400 random draws.
import fc from "fast-check";
import { MTU, WIRE_HEADER } from "./world.ts";
import type { Fixture, TestPrefix } from "./world.ts";

// ---------------------------------------------------------------- randomness

/** splitmix32: a tiny seeded generator for the fields fast-check need not shrink. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed | 0;
  }
  next(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** 0 <= x < n */
  below(n: number): number {
    return this.next() % n;
  }
  byte(): number {
    return this.next() & 0xff;
  }
}

/** 256 KiB of fixed noise (its own seed: a counterexample replays from fast-check's seed alone). */
const NOISE_LEN = 1 << 18;
export const NOISE: Buffer = (() => {
  const b = Buffer.alloc(NOISE_LEN);
  const r = new Rng(0x6e6f6973);
  for (let i = 0; i < NOISE_LEN; i += 4) b.writeUInt32LE(r.next(), i);
  return b;
})();

export function noise(off: number, len: number): Buffer {
  const start = off % (NOISE_LEN - len + 1);
  return NOISE.subarray(start, start + len);
}

// ---------------------------------------------------------------- addresses

export interface AddrSpec {
  /** Index into the fixture's candidate prefixes (of the packet's family), modulo their count. */
  pick: number;
  seed: number;
  /** 0: anywhere inside; 1: just outside (last prefix bit flipped); 2: first address; 3: last address. */
  edge: number;
}

const addrSpecArb: fc.Arbitrary<AddrSpec> = fc.record({
  pick: fc.nat({ max: 63 }),
  seed: fc.integer(),
  edge: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) }),
});

/** Writes an address drawn from `candidates` per `spec` into out[off..]. */
function writeAddr(out: Uint8Array, off: number, family: 4 | 6, spec: AddrSpec, candidates: readonly TestPrefix[]): void {
  const n = family === 4 ? 4 : 16;
  const r = new Rng(spec.seed);
  for (let i = 0; i < n; i++) out[off + i] = r.byte();
  if (candidates.length === 0) return;
  const p = candidates[spec.pick % candidates.length];
  for (let bit = 0; bit < n * 8; bit++) {
    const mask = 0x80 >> (bit & 7);
    const i = off + (bit >> 3);
    let one: boolean;
    if (bit < p.length) one = (p.bytes[bit >> 3] & mask) !== 0;
    else if (spec.edge === 2) one = false;
    else if (spec.edge === 3) one = true;
    else continue;
    out[i] = one ? out[i] | mask : out[i] & ~mask;
  }
  if (spec.edge === 1 && p.length > 0) out[off + ((p.length - 1) >> 3)] ^= 0x80 >> ((p.length - 1) & 7);
}

// ---------------------------------------------------------------- IP packets

export interface IpDesc {
  v6: boolean;
  src: AddrSpec;
  dst: AddrSpec;
  /** Draw the source from the sending peer's own allowed IPs (network path), else from anywhere. */
  ownSource: boolean;
  /** Wanted total length; clamped to [header, room]. */
  size: number;
  /** IPv4: 32-bit words of options (0..10). IPv6: extension headers (0..4). */
  opts: number;
  /** IPv4: 0 whole, 1 first fragment (MF), 2 middle, 3 last, 4 DF. IPv6: 1-3 add a fragment header. */
  frag: number;
  proto: number;
  /** Seeds the cosmetic fields: TOS/traffic class, id, flow label, TTL, option bytes. */
  seed: number;
  noiseOff: number;
}

export const ipDescArb: fc.Arbitrary<IpDesc> = fc.record({
  v6: fc.boolean(),
  src: addrSpecArb,
  dst: addrSpecArb,
  ownSource: fc.oneof({ weight: 8, arbitrary: fc.constant(true) }, { weight: 2, arbitrary: fc.constant(false) }),
  size: fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 160 }) },
    { weight: 4, arbitrary: fc.integer({ min: 0, max: MTU }) },
    { weight: 1, arbitrary: fc.constant(MTU) },
  ),
  opts: fc.oneof({ weight: 7, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 10 }) }),
  frag: fc.oneof({ weight: 7, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: 1, max: 4 }) }),
  proto: fc.constantFrom(6, 17, 1, 58, 47, 50, 132, 255, 0, 59),
  seed: fc.integer(),
  noiseOff: fc.nat(),
});

/** RFC 1071 checksum over b[off, off+len) as written (the checksum field included). */
function headerChecksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Recomputes an IPv4 header checksum in place (ihl words from the packet itself, capped to len). */
export function fixIpv4Checksum(b: Uint8Array, off: number, len: number): void {
  const ihl = Math.min((b[off] & 0x0f) * 4, len & ~1);
  if (ihl < 12) return;
  b[off + 10] = 0;
  b[off + 11] = 0;
  const c = headerChecksum(b, off, ihl);
  b[off + 10] = c >> 8;
  b[off + 11] = c & 0xff;
}

/** A realistic option word (NOP, EOL, router alert, the start of a record route...). */
const OPTION_WORDS = [
  [1, 1, 1, 1],
  [148, 4, 0, 0],
  [1, 1, 1, 0],
  [7, 7, 4, 10],
  [68, 8, 5, 0],
  [0, 0, 0, 0],
  [130, 11, 0, 0],
];

/** IPv6 extension headers: hop-by-hop (first only), routing, fragment, destination options. */
const EXT_TYPES = [0, 43, 44, 60];

/**
 * Builds a well-formed IPv4 or IPv6 packet (lengths and checksum consistent) of
 * min(max(desc.size, header), room) bytes, or exactly `exact` bytes when given (which may be
 * over the MTU: the oversize cases need sound packets that are only too big).
 */
export function buildIp(desc: IpDesc, fx: Fixture, srcCandidates: readonly TestPrefix[], room: number, exact?: number): Buffer {
  const r = new Rng(desc.seed);
  if (!desc.v6) {
    const ihl = 5 + desc.opts;
    const hlen = ihl * 4;
    const total = exact ?? Math.min(Math.max(desc.size, hlen), room);
    const b = Buffer.allocUnsafe(total);
    noise(desc.noiseOff, total - hlen).copy(b, hlen);
    b[0] = 0x40 | ihl;
    b[1] = r.byte();
    b.writeUInt16BE(total, 2);
    b.writeUInt16BE(r.next() & 0xffff, 4);
    const off8 = (r.next() & 0x1fff) | 1;
    const flagsFrag = [0, 0x2000, 0x2000 | off8, off8, 0x4000][desc.frag % 5];
    b.writeUInt16BE(flagsFrag, 6);
    b[8] = r.byte();
    b[9] = desc.proto;
    writeAddr(b, 12, 4, desc.src, srcCandidates);
    writeAddr(b, 16, 4, desc.dst, fx.candidates4);
    for (let w = 0; w < desc.opts; w++) b.set(OPTION_WORDS[r.below(OPTION_WORDS.length)], 20 + 4 * w);
    fixIpv4Checksum(b, 0, total);
    return b;
  }
  // IPv6 with 0-4 extension headers, each 8 bytes (fragment) or 8*(n+1) bytes.
  const exts: number[] = [];
  for (let i = 0; i < desc.opts % 5; i++) exts.push(i === 0 ? EXT_TYPES[r.below(4)] : EXT_TYPES[1 + r.below(3)]);
  if (desc.frag % 4 !== 0 && !exts.includes(44)) exts.push(44);
  const extLens = exts.map((t) => (t === 44 ? 8 : 8 * (1 + r.below(3))));
  const hlen = 40 + extLens.reduce((a, x) => a + x, 0);
  const total = exact ?? Math.min(Math.max(desc.size, hlen), room);
  const b = Buffer.allocUnsafe(Math.max(total, hlen));
  noise(desc.noiseOff, b.length - 40).copy(b, 40);
  const tc = r.byte();
  const flow = r.next() & 0xfffff;
  b.writeUInt32BE(((6 << 28) | (tc << 20) | flow) >>> 0, 0);
  b.writeUInt16BE(total - 40, 4);
  b[6] = exts.length > 0 ? exts[0] : desc.proto;
  b[7] = r.byte();
  writeAddr(b, 8, 6, desc.src, srcCandidates);
  writeAddr(b, 24, 6, desc.dst, fx.candidates6);
  let at = 40;
  exts.forEach((t, i) => {
    b[at] = i + 1 < exts.length ? exts[i + 1] : desc.proto;
    if (t === 44) {
      b[at + 1] = 0;
      b.writeUInt16BE(((r.next() & 0x1fff) << 3) | (desc.frag === 1 || desc.frag === 2 ? 1 : 0), at + 2);
    } else {
      b[at + 1] = extLens[i] / 8 - 1;
      b[at + 2] = 1; // PadN over the rest
      b[at + 3] = extLens[i] - 4;
      b.fill(0, at + 4, at + extLens[i]);
    }
    at += extLens[i];
  });
  // An IPv6 header plus extensions longer than the room cannot be sound: cut it (the
  // payload length then lies, and the oracle says so).
  return total < b.length ? b.subarray(0, total) : b;
}

// ---------------------------------------------------------------- network path inputs

export interface SourceSpec {
  /** 0: a peer (by index); 1: a stranger's IPv4 address; 2: a stranger's IPv6 address;
   * 3: a peer's address with another port; 4: a peer's port with a neighbouring address. */
  kind: number;
  peer: number;
  seed: number;
}

export interface InnerDesc {
  ip: IpDesc;
  fault: number;
  faultArg: number;
}

export interface DatagramDesc extends InnerDesc {
  from: SourceSpec;
}

/** What the network path can be fed; every fault is a distinct way to be wrong (or, for a
 * few, a legitimate oddity that must still be delivered). The oracle judges the bytes, not
 * these names: they only steer generation. */
export const NET_FAULTS = [
  "none",
  "bad-version", // header version nibble not 1
  "bad-type", // type not data/keepalive
  "reserved", // reserved header bytes not zero
  "keepalive", // a clean 4-byte keepalive
  "keepalive-payload", // keepalive with bytes behind it
  "short", // 0-3 bytes: shorter than our header
  "oversize-room", // fits the buffer but longer than MTU + header
  "oversize-trunc", // longer than the room: the kernel truncates, udpRecv says -1
  "v4-total-lies", // IPv4 total length not the datagram's (checksum fixed)
  "v4-ihl-lies", // IHL under 5 or past the total (checksum fixed)
  "v4-bad-checksum",
  "inner-cut", // inner packet cut short
  "v6-payload-lies", // IPv6 payload length not the datagram's
  "inner-version", // inner version nibble not 4 or 6
  "empty-data", // data header with nothing behind it
  "checksum-negzero", // IPv4 checksum written as 0xffff where 0x0000 is due: still valid
  "garbage", // random bytes behind a data header
  "inner-padded", // trailing bytes behind the inner packet's own length
  "raw-garbage", // random bytes, no header at all
] as const;

export const FAULT_NONE = 0;

export const sourceArb: fc.Arbitrary<SourceSpec> = fc.record({
  kind: fc.oneof({ weight: 85, arbitrary: fc.constant(0) }, { weight: 15, arbitrary: fc.integer({ min: 1, max: 4 }) }),
  peer: fc.nat({ max: 15 }),
  seed: fc.integer(),
});

const faultArb = (count: number): fc.Arbitrary<number> =>
  fc.oneof({ weight: 45, arbitrary: fc.constant(FAULT_NONE) }, { weight: 55, arbitrary: fc.integer({ min: 1, max: count - 1 }) });

export const innerDescArb: fc.Arbitrary<InnerDesc> = fc.record({
  ip: ipDescArb,
  fault: faultArb(NET_FAULTS.length),
  faultArg: fc.nat(),
});

export const datagramDescArb: fc.Arbitrary<DatagramDesc> = fc.record({
  from: sourceArb,
  ip: ipDescArb,
  fault: faultArb(NET_FAULTS.length),
  faultArg: fc.nat(),
});

export interface WireDatagram {
  /** The bytes; for a datagram longer than any room only the first `bytes.length` are kept. */
  bytes: Uint8Array;
  /** Its real length on the wire (what recvmmsg would have had to fit). */
  length: number;
  /** The 20-byte source endpoint udpRecv reports. */
  source: Uint8Array;
  /** UDP GRO: the size of each datagram merged into this one (the last may be shorter). */
  seg?: number;
}

/** Peers that have an endpoint (only they can be impersonated or send). */
function resolvedPeers(fx: Fixture): number[] {
  const out: number[] = [];
  fx.peers.forEach((p, i) => {
    if (p.endpoint !== null) out.push(i);
  });
  return out;
}

export function buildSource(spec: SourceSpec, fx: Fixture): { source: Uint8Array; peer: number } {
  const senders = resolvedPeers(fx);
  const peer = senders[spec.peer % senders.length];
  const ep = new Uint8Array(fx.peers[peer].endpoint!);
  const r = new Rng(spec.seed);
  switch (spec.kind) {
    case 1:
    case 2: {
      ep.fill(0);
      const v6 = spec.kind === 2;
      ep[0] = v6 ? 6 : 4;
      ep[2] = r.byte();
      ep[3] = r.byte();
      for (let i = 0; i < (v6 ? 16 : 4); i++) ep[4 + i] = r.byte();
      // The addon reports v4-mapped sources as IPv4, never as ::ffff:a.b.c.d.
      if (v6 && ep.subarray(4, 14).every((x) => x === 0)) ep[4] = 0x20;
      break;
    }
    case 3: {
      const port = ((ep[2] << 8) | ep[3]) ^ (1 + r.below(0xffff));
      ep[2] = port >> 8;
      ep[3] = port & 0xff;
      break;
    }
    case 4: {
      const n = ep[0] === 4 ? 4 : 16;
      const bit = r.below(n * 8);
      ep[4 + (bit >> 3)] ^= 0x80 >> (bit & 7);
      if (ep[0] === 6 && ep.subarray(4, 14).every((x) => x === 0) && ep[14] === 0xff && ep[15] === 0xff) ep[4] ^= 0x20;
      break;
    }
  }
  return { source: ep, peer };
}

const HEADER_DATA = [0x11, 0, 0, 0];

/** Turns a description into a datagram as the kernel would hand it over. */
export function buildDatagram(d: DatagramDesc, fx: Fixture): WireDatagram {
  const { source, peer } = buildSource(d.from, fx);
  return buildDatagramFrom(d, fx, source, peer);
}

/** buildDatagram from a source already chosen; `peer` is whose allowed IPs an own source comes from. */
export function buildDatagramFrom(d: InnerDesc, fx: Fixture, source: Uint8Array, peer: number): WireDatagram {
  const family = d.ip.v6 ? 6 : 4;
  const own = fx.peers[peer].allowed.filter((a) => a.family === family);
  const all = d.ip.v6 ? fx.candidates6 : fx.candidates4;
  const srcCandidates = d.ip.ownSource && own.length > 0 ? own : all;
  const r = new Rng(d.faultArg);
  const fault = NET_FAULTS[d.fault];
  const withHeader = (inner: Uint8Array, h: readonly number[] = HEADER_DATA): Buffer => {
    const b = Buffer.allocUnsafe(WIRE_HEADER + inner.length);
    b.set(h, 0);
    b.set(inner, WIRE_HEADER);
    return b;
  };
  const whole = (bytes: Uint8Array): WireDatagram => ({ bytes, length: bytes.length, source });
  const inner = (room = MTU, exact?: number): Buffer => buildIp(d.ip, fx, srcCandidates, room, exact);

  switch (fault) {
    case "none":
      return whole(withHeader(inner()));
    case "bad-version": {
      const v = [0, 2, 3, 4, 6, 15][r.below(6)];
      return whole(withHeader(inner(), [(v << 4) | [1, 2, 3][r.below(3)], 0, 0, 0]));
    }
    case "bad-type": {
      const type = [0, 3, 4, 5, 7, 15][r.below(6)];
      return whole(withHeader(inner(), [0x10 | type, 0, 0, 0]));
    }
    case "reserved": {
      const h = [r.below(2) === 0 ? 0x11 : 0x12, 0, 0, 0];
      h[1 + r.below(3)] = 1 + r.below(255);
      if (r.below(3) === 0) h[1 + r.below(3)] = r.byte();
      return whole(r.below(4) === 0 ? Buffer.from(h) : withHeader(inner(), h));
    }
    case "keepalive":
      return whole(Buffer.from([0x12, 0, 0, 0]));
    case "keepalive-payload": {
      const b = inner();
      return whole(withHeader(b.length > 0 ? b : Buffer.from([0]), [0x12, 0, 0, 0]));
    }
    case "short": {
      const len = r.below(4);
      const b = Buffer.from(HEADER_DATA.slice(0, len));
      if (r.below(2) === 0) for (let i = 0; i < len; i++) b[i] = r.byte();
      return whole(b);
    }
    case "oversize-room": {
      // Sound inner packet, MTU+1 .. room bytes (room = buffer - 60 = 1476 at MTU 1420).
      const innerLen = MTU + 1 + r.below(1476 - WIRE_HEADER - MTU);
      return whole(withHeader(inner(innerLen, innerLen)));
    }
    case "oversize-trunc": {
      // Longer than the room, up to the largest UDP payload: only what fits is kept.
      const length = 1477 + r.below((source[0] === 6 ? 65527 : 65507) - 1477 + 1);
      const keep = Math.min(length, 1600);
      const b = withHeader(inner(keep - WIRE_HEADER, keep - WIRE_HEADER));
      if (!d.ip.v6) b.writeUInt16BE(Math.min(length - WIRE_HEADER, 0xffff), WIRE_HEADER + 2);
      return { bytes: b, length, source };
    }
    case "v4-total-lies": {
      const b = withHeader(inner());
      if (b.length < WIRE_HEADER + 20) return whole(b);
      const real = b.length - WIRE_HEADER;
      const lie = [real + 1, real - 1, 0, 0xffff, r.below(0x10000), real + 4 * (1 + r.below(8))][r.below(6)];
      b.writeUInt16BE(lie === real ? real ^ 0x100 : lie & 0xffff, WIRE_HEADER + 2);
      if (!d.ip.v6) fixIpv4Checksum(b, WIRE_HEADER, real);
      return whole(b);
    }
    case "v4-ihl-lies": {
      const b = withHeader(inner());
      if (d.ip.v6 || b.length < WIRE_HEADER + 20) return whole(b);
      const real = b.length - WIRE_HEADER;
      const ihl = r.below(2) === 0 ? r.below(5) : Math.min(15, Math.floor(real / 4) + 1 + r.below(3));
      b[WIRE_HEADER] = 0x40 | ihl;
      if (ihl >= 5) fixIpv4Checksum(b, WIRE_HEADER, real);
      return whole(b);
    }
    case "v4-bad-checksum": {
      const b = withHeader(inner());
      if (d.ip.v6) return whole(b);
      const ihl = (b[WIRE_HEADER] & 0x0f) * 4;
      // Flip bits in one header byte other than the length fields (which would say malformed first).
      const choices = [...Array(ihl).keys()].filter((i) => i !== 0 && i !== 2 && i !== 3);
      const at = choices[r.below(choices.length)];
      b[WIRE_HEADER + at] ^= 1 + r.below(255);
      return whole(b);
    }
    case "inner-cut": {
      const b = inner();
      return whole(withHeader(b.subarray(0, r.below(Math.max(1, b.length)))));
    }
    case "v6-payload-lies": {
      const b = withHeader(inner());
      if (!d.ip.v6 || b.length < WIRE_HEADER + 40) return whole(b);
      const real = b.length - WIRE_HEADER - 40;
      const lie = [real + 1, real - 1, 0, 0xffff, r.below(0x10000)][r.below(5)];
      b.writeUInt16BE(lie === real || lie < 0 ? (real ^ 0x100) & 0xffff : lie & 0xffff, WIRE_HEADER + 4);
      return whole(b);
    }
    case "inner-version": {
      const b = withHeader(inner());
      if (b.length > WIRE_HEADER) b[WIRE_HEADER] = ([0, 1, 2, 3, 5, 7, 8, 15][r.below(8)] << 4) | (b[WIRE_HEADER] & 0x0f);
      return whole(b);
    }
    case "empty-data":
      return whole(Buffer.from(HEADER_DATA));
    case "checksum-negzero": {
      const b = withHeader(inner());
      if (d.ip.v6) return whole(b);
      // Choose the identification so the header sums to zero without its checksum, then
      // write 0xffff (the other one's-complement zero) where 0x0000 is due.
      const ihl = (b[WIRE_HEADER] & 0x0f) * 4;
      b.writeUInt16BE(0, WIRE_HEADER + 4);
      b.writeUInt16BE(0, WIRE_HEADER + 10);
      let sum = 0;
      for (let i = 0; i < ihl; i += 2) sum += b.readUInt16BE(WIRE_HEADER + i);
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      b.writeUInt16BE(~sum & 0xffff, WIRE_HEADER + 4); // now the header sums to 0xffff
      b.writeUInt16BE(0xffff, WIRE_HEADER + 10);
      return whole(b);
    }
    case "garbage": {
      const len = r.below(r.below(4) === 0 ? MTU + 1 : 80);
      const b = Buffer.allocUnsafe(WIRE_HEADER + len);
      b.set(HEADER_DATA, 0);
      noise(d.ip.noiseOff, len).copy(b, WIRE_HEADER);
      return whole(b);
    }
    case "inner-padded": {
      const b = inner(MTU - 8);
      const pad = 1 + r.below(8);
      const out = Buffer.alloc(WIRE_HEADER + b.length + pad, r.byte());
      out.set(HEADER_DATA, 0);
      out.set(b, WIRE_HEADER);
      return whole(out);
    }
    case "raw-garbage": {
      const len = r.below(120);
      return whole(Buffer.from(noise(d.ip.noiseOff, len)));
    }
  }
}

// ---------------------------------------------------------------- device path inputs

export interface PacketDesc {
  ip: IpDesc;
  fault: number;
  faultArg: number;
}

/** What the TUN device can hand the device path. The kernel never reads more than the MTU
 * (read() gets a room of exactly the MTU), so nothing here is longer. */
export const DEV_FAULTS = [
  "none",
  "v4-total-lies",
  "v4-ihl-lies",
  "v4-bad-checksum",
  "short", // cut below the fixed header (20 / 40 bytes)
  "empty", // zero bytes
  "bad-version",
  "v6-payload-lies",
  "garbage",
  "padded",
] as const;

export const packetDescArb: fc.Arbitrary<PacketDesc> = fc.record({
  ip: ipDescArb,
  fault: faultArb(DEV_FAULTS.length),
  faultArg: fc.nat(),
});

export function buildPacket(d: PacketDesc, fx: Fixture): Buffer {
  const r = new Rng(d.faultArg);
  const srcs = d.ip.v6 ? fx.candidates6 : fx.candidates4;
  const b = buildIp(d.ip, fx, srcs, MTU);
  switch (DEV_FAULTS[d.fault]) {
    case "none":
      return b;
    case "v4-total-lies":
      if (!d.ip.v6) b.writeUInt16BE((b.length + 1 + r.below(0xffff)) & 0xffff, 2);
      return b;
    case "v4-ihl-lies":
      if (!d.ip.v6) b[0] = 0x40 | r.below(16);
      return b;
    case "v4-bad-checksum":
      if (!d.ip.v6) b[10] ^= 1 + r.below(255);
      return b;
    case "short":
      return b.subarray(0, r.below(d.ip.v6 ? 40 : 20));
    case "empty":
      return b.subarray(0, 0);
    case "bad-version":
      b[0] = ([0, 1, 2, 3, 5, 7, 15][r.below(7)] << 4) | (b[0] & 0x0f);
      return b;
    case "v6-payload-lies":
      if (d.ip.v6) b.writeUInt16BE((b.length - 40 + 1 + r.below(0xffff)) & 0xffff, 4);
      return b;
    case "garbage":
      return Buffer.from(noise(d.ip.noiseOff, r.below(r.below(4) === 0 ? MTU + 1 : 64)));
    case "padded": {
      const out = Buffer.alloc(Math.min(MTU, b.length + 1 + r.below(16)), r.byte());
      out.set(b.subarray(0, out.length), 0);
      return out;
    }
  }
  return b;
}

