import t from "tap";
import { HEADER_LEN, TYPE_DATA, TYPE_KEEPALIVE, VERSION, writeDataHeader, writeKeepalive } from "../../src/tunnel/header.ts";
import {
  IPV4_DST,
  IPV4_SRC,
  IPV6_DST,
  IPV6_SRC,
  checkPacket,
  destinationOffset,
  ipv4HeaderSum,
  sourceOffset,
} from "../../src/tunnel/ip-packet.ts";
import { DEVICE_PATH_DROPS, DROP_LABELS, Drop, NETWORK_PATH_DROPS, newDropCounters } from "../../src/tunnel/drops.ts";

const MTU = 1420;
const OK = -1;

/** RFC 1071 Internet checksum over b[0..n), computed here independently of src. */
function internetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i] << 8) | (i + 1 < b.length ? b[i + 1] : 0);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

interface V4Options {
  ihl?: number; // header length in bytes (multiple of 4)
  payload?: number; // payload bytes
  totalLength?: number; // override the total length field
  src?: number[];
  dst?: number[];
}

/** A real IPv4 packet (UDP protocol, DF set, TTL 64) with a correct header checksum. */
function ipv4(o: V4Options = {}): Uint8Array {
  const ihl = o.ihl ?? 20;
  const len = ihl + (o.payload ?? 8);
  const p = new Uint8Array(len);
  p[0] = 0x40 | (ihl >> 2);
  p[1] = 0;
  const total = o.totalLength ?? len;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[4] = 0x1c;
  p[5] = 0x46; // identification
  p[6] = 0x40; // DF
  p[8] = 64; // TTL
  p[9] = 17; // UDP
  p.set(o.src ?? [10, 77, 0, 1], 12);
  p.set(o.dst ?? [10, 77, 0, 2], 16);
  for (let i = 20; i < ihl; i++) p[i] = 1; // NOP options
  for (let i = ihl; i < len; i++) p[i] = (i * 31) & 0xff;
  const sum = internetChecksum(p.subarray(0, ihl));
  p[10] = sum >> 8;
  p[11] = sum & 0xff;
  return p;
}

interface V6Options {
  payload?: number;
  payloadLength?: number; // override the payload length field
  src?: number[];
  dst?: number[];
}

function ipv6(o: V6Options = {}): Uint8Array {
  const payload = o.payload ?? 16;
  const p = new Uint8Array(40 + payload);
  p[0] = 0x60;
  const pl = o.payloadLength ?? payload;
  p[4] = pl >> 8;
  p[5] = pl & 0xff;
  p[6] = 58; // ICMPv6
  p[7] = 64;
  p.set(o.src ?? [0xfd, 0x77, ...new Array<number>(13).fill(0), 1], 8);
  p.set(o.dst ?? [0xfd, 0x77, ...new Array<number>(13).fill(0), 2], 24);
  for (let i = 40; i < p.length; i++) p[i] = i & 0xff;
  return p;
}

const check = (p: Uint8Array, mtu = MTU): number => checkPacket(p, 0, p.length, mtu);

t.test("wire header bytes", (t) => {
  t.equal(HEADER_LEN, 4);
  const b = new Uint8Array(12).fill(0xaa);
  writeDataHeader(b, 3);
  t.same([...b], [0xaa, 0xaa, 0xaa, (VERSION << 4) | TYPE_DATA, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
  t.equal(b[3], 0x11, "version 1 in the high nibble, type 1 (data) in the low one");

  b.fill(0xaa);
  writeKeepalive(b, 0);
  t.same([...b.subarray(0, 5)], [(VERSION << 4) | TYPE_KEEPALIVE, 0, 0, 0, 0xaa]);
  t.equal(b[0], 0x12, "version 1, type 2 (keepalive)");
  t.not(TYPE_DATA, TYPE_KEEPALIVE);
  t.end();
});

t.test("the test's own checksum agrees with a known-good header", (t) => {
  // A captured IPv4 header (192.168.0.1 -> 192.168.0.199, UDP), checksum 0xb861.
  const hdr = Uint8Array.from(Buffer.from("450000730000400040110000c0a80001c0a800c7", "hex"));
  t.equal(internetChecksum(hdr), 0xb861);
  hdr[10] = 0xb8;
  hdr[11] = 0x61;
  t.equal(ipv4HeaderSum(hdr, 0, 20), 0xffff, "ipv4HeaderSum of a correct header is 0xffff");
  const pkt = new Uint8Array(0x73);
  pkt.set(hdr);
  t.equal(check(pkt), OK, "the captured packet passes");
  t.end();
});

t.test("checkPacket accepts sound IPv4 packets", (t) => {
  t.equal(check(ipv4()), OK, "20-byte header, small payload");
  t.equal(check(ipv4({ payload: 0 })), OK, "header only");
  t.equal(check(ipv4({ ihl: 24 })), OK, "header with options");
  t.equal(check(ipv4({ ihl: 60, payload: 100 })), OK, "largest header");
  t.equal(check(ipv4({ payload: MTU - 20 })), OK, "exactly the MTU");
  t.equal(check(ipv4({ src: [255, 255, 255, 255], dst: [0, 0, 0, 0] })), OK, "checksum carries folded");
  t.end();
});

t.test("checkPacket accepts sound IPv6 packets", (t) => {
  t.equal(check(ipv6()), OK);
  t.equal(check(ipv6({ payload: 0 })), OK, "header only");
  t.equal(check(ipv6({ payload: 1240 }), 1280), OK, "exactly the MTU");
  t.end();
});

t.test("checkPacket drop codes", (t) => {
  // Version
  for (const v of [0, 1, 5, 7, 15]) {
    const p = ipv4();
    p[0] = (v << 4) | 5;
    t.equal(check(p), Drop.MalformedIp, `IP version ${v}`);
  }
  const v6as4 = ipv4({ payload: 40 });
  v6as4[0] = 0x65;
  t.equal(check(v6as4), Drop.MalformedIp, "version 6 with an IPv4 layout");

  // Too short
  t.equal(checkPacket(new Uint8Array(0), 0, 0, MTU), Drop.MalformedIp, "empty");
  const short4 = ipv4({ payload: 0 }).subarray(0, 19);
  t.equal(check(short4), Drop.MalformedIp, "IPv4 shorter than 20 bytes");
  t.equal(checkPacket(Uint8Array.of(0x45), 0, 1, MTU), Drop.MalformedIp, "one byte");
  t.equal(check(ipv6({ payload: 0 }).subarray(0, 39)), Drop.MalformedIp, "IPv6 shorter than 40 bytes");

  // IHL
  for (const ihlWords of [0, 1, 4]) {
    const p = ipv4();
    p[0] = 0x40 | ihlWords;
    p[10] = p[11] = 0;
    const sum = internetChecksum(p.subarray(0, 20));
    p[10] = sum >> 8;
    p[11] = sum & 0xff;
    t.equal(check(p), Drop.MalformedIp, `IHL ${ihlWords} words (${ihlWords * 4} bytes) < 20`);
  }
  t.equal(check(ipv4({ ihl: 24, payload: 0, totalLength: 20 }).subarray(0, 20)), Drop.MalformedIp, "total length shorter than the header");
  const ihlPastEnd = ipv4({ payload: 0 });
  ihlPastEnd[0] = 0x46; // says 24 bytes, holds 20
  t.equal(check(ihlPastEnd), Drop.MalformedIp, "header longer than the packet");

  // Total length
  t.equal(check(ipv4({ payload: 40, totalLength: 100 })), Drop.MalformedIp, "total length > bytes held");
  t.equal(check(ipv4({ payload: 40, totalLength: 40 })), Drop.MalformedIp, "total length < bytes held (trailing bytes)");
  t.equal(check(ipv4({ payload: 40, totalLength: 0 })), Drop.MalformedIp, "total length 0");

  // Checksum
  const badSum = ipv4();
  badSum[11] ^= 0x01;
  t.equal(check(badSum), Drop.BadChecksum, "checksum field off by one bit");
  const ttl = ipv4();
  ttl[8]--;
  t.equal(check(ttl), Drop.BadChecksum, "TTL changed without updating the checksum");
  const opt = ipv4({ ihl: 24 });
  opt[22] = 0;
  t.equal(check(opt), Drop.BadChecksum, "options are covered by the checksum");
  const payloadChange = ipv4({ payload: 20 });
  payloadChange[30] ^= 0xff;
  t.equal(check(payloadChange), OK, "the payload is not covered by the header checksum");

  // Oversize
  t.equal(check(ipv4({ payload: MTU - 20 + 1 })), Drop.Oversize, "IPv4 one byte over the MTU");
  t.equal(check(ipv6({ payload: 1241 }), 1280), Drop.Oversize, "IPv6 one byte over the MTU");
  t.equal(check(ipv4({ payload: 100 }), 100), Drop.Oversize, "small MTU");
  const junkBig = new Uint8Array(MTU + 1);
  t.equal(check(junkBig), Drop.Oversize, "size is checked before anything else");

  // IPv6 payload length
  t.equal(check(ipv6({ payload: 16, payloadLength: 17 })), Drop.MalformedIp, "payload length > bytes held");
  t.equal(check(ipv6({ payload: 16, payloadLength: 15 })), Drop.MalformedIp, "payload length < bytes held");
  t.equal(check(ipv6({ payload: 16, payloadLength: 0 })), Drop.MalformedIp, "zero payload length (jumbogram)");
  t.equal(check(ipv6({ payload: 16, payloadLength: 16 + 256 })), Drop.MalformedIp, "high byte of payload length counts");
  t.end();
});

t.test("checkPacket at an offset inside a larger buffer (a pool slab)", (t) => {
  const off = 64;
  const slab = new Uint8Array(2048).fill(0xdb);
  const p4 = ipv4({ payload: 30 });
  slab.set(p4, off);
  t.equal(checkPacket(slab, off, p4.length, MTU), OK);
  t.equal(checkPacket(slab, off, p4.length + 1, MTU), Drop.MalformedIp, "length must match the packet, not the slab");
  slab[off + 10] ^= 0x80;
  t.equal(checkPacket(slab, off, p4.length, MTU), Drop.BadChecksum);
  t.equal(ipv4HeaderSum(slab, off, 20) === 0xffff, false);

  const p6 = ipv6({ payload: 24 });
  slab.fill(0xdb);
  slab.set(p6, off + 4);
  t.equal(checkPacket(slab, off + 4, p6.length, MTU), OK);
  t.equal(checkPacket(slab, off, p6.length, MTU), Drop.MalformedIp, "wrong offset: 0xdb is not an IP version");
  t.end();
});

t.test("source and destination offsets", (t) => {
  t.equal(IPV4_SRC, 12);
  t.equal(IPV4_DST, 16);
  t.equal(IPV6_SRC, 8);
  t.equal(IPV6_DST, 24);

  const off = 60;
  const slab = new Uint8Array(512).fill(0xdb);
  const src4 = [192, 0, 2, 7];
  const dst4 = [198, 51, 100, 9];
  const p4 = ipv4({ src: src4, dst: dst4 });
  slab.set(p4, off);
  const s4 = sourceOffset(slab, off);
  const d4 = destinationOffset(slab, off, p4.length);
  t.equal(s4, off + 12);
  t.equal(d4, off + 16);
  t.same([...slab.subarray(s4, s4 + 4)], src4);
  t.same([...slab.subarray(d4, d4 + 4)], dst4);

  const src6 = Array.from({ length: 16 }, (_, i) => 0x20 + i);
  const dst6 = Array.from({ length: 16 }, (_, i) => 0xa0 + i);
  const p6 = ipv6({ src: src6, dst: dst6 });
  slab.fill(0xdb);
  slab.set(p6, off);
  const s6 = sourceOffset(slab, off);
  const d6 = destinationOffset(slab, off, p6.length);
  t.equal(s6, off + 8);
  t.equal(d6, off + 24);
  t.same([...slab.subarray(s6, s6 + 16)], src6);
  t.same([...slab.subarray(d6, d6 + 16)], dst6);

  t.equal(destinationOffset(p4, 0, 19), -1, "IPv4 too short for a destination");
  t.equal(destinationOffset(p6, 0, 39), -1, "IPv6 too short for a destination");
  t.equal(destinationOffset(Uint8Array.of(0x55, ...new Array<number>(40).fill(0)), 0, 41), -1, "not IPv4 or IPv6");
  t.end();
});

t.test("drop codes index their metric labels", (t) => {
  const entries = Object.entries(Drop);
  t.equal(DROP_LABELS.length, entries.length, "one label per code");
  t.equal(new Set(entries.map(([, code]) => code)).size, entries.length, "codes are distinct");
  for (const [key, code] of entries) {
    const snake = key.replace(/[A-Z]/g, (c, i: number) => (i > 0 ? "_" : "") + c.toLowerCase());
    t.equal(DROP_LABELS[code], snake, `Drop.${key} -> ${snake}`);
  }
  const counters = newDropCounters();
  t.equal(counters.length, entries.length);
  t.ok(counters.every((x) => x === 0));
  for (const code of [...DEVICE_PATH_DROPS, ...NETWORK_PATH_DROPS]) t.ok(code >= 0 && code < counters.length, `path drop ${code} is a valid code`);
  t.ok(NETWORK_PATH_DROPS.includes(Drop.BadChecksum) && NETWORK_PATH_DROPS.includes(Drop.Oversize), "checkPacket's codes are counted on the network path");
  t.ok(DEVICE_PATH_DROPS.includes(Drop.MalformedIp), "the device path counts malformed packets");
  t.end();
});
