import t from "tap";
import {
  ENDPOINT_BYTES,
  decodeEndpoint,
  encodeEndpoint,
  formatEndpoint,
  formatIp,
  formatPrefix,
  networkOf,
  parseHostPort,
  parseIp,
  parsePrefix,
} from "../../src/net/address.ts";
import type { IpAddress } from "../../src/net/address.ts";

/** Parses or fails the test run: for inputs the test itself knows to be valid. */
function ip(text: string): IpAddress {
  const r = parseIp(text);
  if (!r) throw new Error(`test input ${text} did not parse`);
  return r;
}

/** 16 bytes from eight 16-bit groups, written out by hand in the test. */
function v6(...groups: number[]): number[] {
  if (groups.length !== 8) throw new Error("eight groups");
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * Reference RFC 5952 text form, written independently of src: lowercase hex without
 * leading zeros; the first of the longest runs (of two or more) of zero groups becomes "::".
 */
function rfc5952(bytes: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 8; i++) g.push(((bytes[2 * i] << 8) | bytes[2 * i + 1]).toString(16));
  for (let len = 8; len >= 2; len--) {
    for (let i = 0; i + len <= 8; i++) {
      if (g.slice(i, i + len).every((x) => x === "0")) return `${g.slice(0, i).join(":")}::${g.slice(i + len).join(":")}`;
    }
  }
  return g.join(":");
}

t.test("parseIp: IPv4", (t) => {
  t.same(parseIp("192.0.2.1"), { family: 4, bytes: Uint8Array.of(192, 0, 2, 1) });
  t.same(parseIp("0.0.0.0"), { family: 4, bytes: Uint8Array.of(0, 0, 0, 0) });
  t.same(parseIp("255.255.255.255"), { family: 4, bytes: Uint8Array.of(255, 255, 255, 255) });
  t.equal(ip("10.1.2.3").bytes.length, 4);
  t.end();
});

t.test("parseIp: IPv6", (t) => {
  const cases: [string, number[]][] = [
    ["::", v6(0, 0, 0, 0, 0, 0, 0, 0)],
    ["::1", v6(0, 0, 0, 0, 0, 0, 0, 1)],
    ["1::", v6(1, 0, 0, 0, 0, 0, 0, 0)],
    ["fe80::1:2", v6(0xfe80, 0, 0, 0, 0, 0, 1, 2)],
    ["2001:db8::8:800:200c:417a", v6(0x2001, 0xdb8, 0, 0, 8, 0x800, 0x200c, 0x417a)],
    ["2001:db8:0:0:1:0:0:1", v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)],
    ["1:2:3:4:5:6:7:8", v6(1, 2, 3, 4, 5, 6, 7, 8)],
    ["1:2:3:4:5:6:7::", v6(1, 2, 3, 4, 5, 6, 7, 0)],
    ["::2:3:4:5:6:7:8", v6(0, 2, 3, 4, 5, 6, 7, 8)],
    ["FE80::ABCD", v6(0xfe80, 0, 0, 0, 0, 0, 0, 0xabcd)],
    ["0001:0db8::0ff", v6(1, 0xdb8, 0, 0, 0, 0, 0, 0xff)],
    ["::ffff:1.2.3.4", v6(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304)],
    ["::ffff:192.0.2.128", v6(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0280)],
    ["64:ff9b::203.0.113.5", v6(0x64, 0xff9b, 0, 0, 0, 0, 0xcb00, 0x7105)],
    ["1:2:3:4:5:6:10.20.30.40", v6(1, 2, 3, 4, 5, 6, 0x0a14, 0x1e28)],
  ];
  for (const [text, bytes] of cases) {
    const r = parseIp(text);
    t.equal(r?.family, 6, `${text} is IPv6`);
    t.same(r ? [...r.bytes] : null, bytes, text);
  }
  t.end();
});

t.test("parseIp: invalid inputs give null", (t) => {
  const bad = [
    "", " ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-1", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4/24", "a.b.c.d",
    ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::1", "gggg::1", "::ffff:1.2.3.256",
    "::ffff:1.2.3", "[::1]", "example.com", "localhost", "0x7f.0.0.1",
  ];
  for (const s of bad) t.equal(parseIp(s), null, JSON.stringify(s));
  t.end();
});

t.test("formatIp: IPv4 dotted quad", (t) => {
  t.equal(formatIp({ family: 4, bytes: Uint8Array.of(10, 0, 0, 1) }), "10.0.0.1");
  t.equal(formatIp({ family: 4, bytes: Uint8Array.of(255, 0, 128, 7) }), "255.0.128.7");
  t.end();
});

t.test("formatIp: RFC 5952 compression", (t) => {
  const f = (...groups: number[]): string => formatIp({ family: 6, bytes: Uint8Array.from(v6(...groups)) });
  t.equal(f(0, 0, 0, 0, 0, 0, 0, 0), "::");
  t.equal(f(0, 0, 0, 0, 0, 0, 0, 1), "::1");
  t.equal(f(1, 0, 0, 0, 0, 0, 0, 0), "1::");
  t.equal(f(0xfe80, 0, 0, 0, 0, 0, 1, 2), "fe80::1:2");
  t.equal(f(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), "2001:db8:0:1:1:1:1:1", "a single zero group is not compressed");
  t.equal(f(0x2001, 0, 0, 1, 0, 0, 0, 1), "2001:0:0:1::1", "the longest run is compressed, not the first");
  t.equal(f(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), "2001:db8::1:0:0:1", "of equal runs, the first is compressed");
  t.equal(f(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0x00ab), "2001:db8::ab", "lowercase, no leading zeros");
  t.equal(f(1, 2, 3, 4, 5, 6, 7, 8), "1:2:3:4:5:6:7:8");
  t.equal(f(0, 1, 0, 1, 0, 1, 0, 1), "0:1:0:1:0:1:0:1");
  t.end();
});

t.test("formatIp round-trips through parseIp and matches a reference RFC 5952 form", (t) => {
  const canonical = ["::", "::1", "1::", "fe80::1:2", "2001:db8::1", "2001:db8:0:1:1:1:1:1", "2001:0:0:1::1", "fd77::2", "10.77.0.1", "0.0.0.0"];
  for (const s of canonical) t.equal(formatIp(ip(s)), s, `canonical ${s} survives a round trip`);
  t.equal(formatIp(ip("2001:0DB8:0000:0000:0000:0000:0000:0001")), "2001:db8::1", "non-canonical text is canonicalised");

  // Random addresses with many zero groups (each group zero half the time), so runs of every
  // length and position turn up.
  const rand = rng(5952);
  let mismatches = 0;
  for (let n = 0; n < 2000; n++) {
    const bytes = new Uint8Array(16);
    for (let g = 0; g < 8; g++) {
      if (rand() < 0.5) continue;
      const v = rand() < 0.3 ? Math.floor(rand() * 16) : Math.floor(rand() * 0x10000);
      bytes[2 * g] = v >> 8;
      bytes[2 * g + 1] = v & 0xff;
    }
    const text = formatIp({ family: 6, bytes });
    const back = parseIp(text);
    if (text !== rfc5952(bytes) || !back || back.family !== 6 || !back.bytes.every((b, i) => b === bytes[i])) {
      if (mismatches++ < 5) t.fail(`${[...bytes].join(",")} -> ${text} (want ${rfc5952(bytes)}) -> ${back && formatIp(back)}`);
    }
  }
  t.equal(mismatches, 0, "2000 random IPv6 addresses");
  t.end();
});

t.test("parsePrefix", (t) => {
  t.same(parsePrefix("10.0.0.0/8"), { family: 4, bytes: Uint8Array.of(10, 0, 0, 0), length: 8 });
  t.same(parsePrefix("fd00::/64"), { family: 6, bytes: Uint8Array.from(v6(0xfd00, 0, 0, 0, 0, 0, 0, 0)), length: 64 });
  t.same(parsePrefix("10.1.2.3"), { family: 4, bytes: Uint8Array.of(10, 1, 2, 3), length: 32 }, "bare IPv4 is a /32");
  t.same(parsePrefix("fd00::1"), { family: 6, bytes: Uint8Array.from(v6(0xfd00, 0, 0, 0, 0, 0, 0, 1)), length: 128 }, "bare IPv6 is a /128");
  t.equal(parsePrefix("10.1.2.3/24")?.bytes[3], 3, "host bits are kept by parsePrefix");
  t.equal(parsePrefix("0.0.0.0/0")?.length, 0);
  t.equal(parsePrefix("::/0")?.length, 0);
  t.equal(parsePrefix("10.0.0.1/32")?.length, 32);
  t.equal(parsePrefix("::1/128")?.length, 128);
  t.equal(parsePrefix("::ffff:1.2.3.4/96")?.length, 96);

  const bad = [
    "10.0.0.0/33", "10.0.0.0/128", "::/129", "fd00::/200", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/a", "10.0.0.0/8/8",
    "10.0.0.0/ 8", "10.0.0.0/8 ", "10.0.0.0/1000", "10.0.0.0/8.0", "/8", "", "10.0.0/8", "host/8", "fd00::/+64",
  ];
  for (const s of bad) t.equal(parsePrefix(s), null, JSON.stringify(s));
  t.end();
});

t.test("networkOf clears host bits", (t) => {
  const net = (s: string): string => {
    const p = parsePrefix(s);
    if (!p) throw new Error(s);
    return formatPrefix(networkOf(p));
  };
  t.equal(net("10.1.2.3/8"), "10.0.0.0/8");
  t.equal(net("10.1.255.3/20"), "10.1.240.0/20");
  t.equal(net("192.168.1.255/25"), "192.168.1.128/25");
  t.equal(net("10.1.2.3/32"), "10.1.2.3/32");
  t.equal(net("10.1.2.3/0"), "0.0.0.0/0");
  t.equal(net("fd77::1:2/64"), "fd77::/64");
  t.equal(net("2001:db8:ffff:ffff::1/36"), "2001:db8:f000::/36");
  t.equal(net("fd77::ffff/127"), "fd77::fffe/127");
  t.equal(net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/0"), "::/0");

  const p = parsePrefix("10.1.2.3/8");
  if (!p) throw new Error("parse");
  networkOf(p);
  t.same([...p.bytes], [10, 1, 2, 3], "the argument is not modified");

  // Cross-check IPv4 against 32-bit mask arithmetic.
  const rand = rng(8);
  let wrong = 0;
  for (let n = 0; n < 500; n++) {
    const addr = Math.floor(rand() * 2 ** 32);
    const len = Math.floor(rand() * 33);
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const want = (addr & mask) >>> 0;
    const bytes = Uint8Array.of(addr >>> 24, (addr >>> 16) & 0xff, (addr >>> 8) & 0xff, addr & 0xff);
    const got = networkOf({ family: 4, bytes, length: len });
    const gotNum = ((got.bytes[0] << 24) | (got.bytes[1] << 16) | (got.bytes[2] << 8) | got.bytes[3]) >>> 0;
    if (gotNum !== want || got.length !== len) wrong++;
  }
  t.equal(wrong, 0, "500 random IPv4 prefixes agree with mask arithmetic");
  t.end();
});

t.test("parseHostPort", (t) => {
  t.same(parseHostPort("192.0.2.1:51820"), { host: "192.0.2.1", port: 51820 });
  t.same(parseHostPort("[2001:db8::1]:51820"), { host: "2001:db8::1", port: 51820 }, "brackets are stripped");
  t.same(parseHostPort("[::]:1"), { host: "::", port: 1 });
  t.same(parseHostPort("[::ffff:1.2.3.4]:443"), { host: "::ffff:1.2.3.4", port: 443 });
  t.same(parseHostPort("peer-b:51820"), { host: "peer-b", port: 51820 }, "DNS name");
  t.same(parseHostPort("peer-b.example.com:9"), { host: "peer-b.example.com", port: 9 });
  t.same(parseHostPort("localhost:65535"), { host: "localhost", port: 65535 });

  const bad = [
    "192.0.2.1:65536", "192.0.2.1:99999", "192.0.2.1:123456", "192.0.2.1", "192.0.2.1:", ":51820", "192.0.2.1:-1",
    "192.0.2.1:abc", "192.0.2.1:51820:1", "2001:db8::1:51820", "::1:51820", "[2001:db8::1]", "[2001:db8::1]:",
    "[192.0.2.1]:51820", "[peer-b]:51820", "[2001:db8::1]51820", "-peer:51820", "peer b:51820", "peer_b:51820",
    "", "[]:80",
  ];
  for (const s of bad) t.equal(parseHostPort(s), null, JSON.stringify(s));
  t.end();
});

t.test("encodeEndpoint / decodeEndpoint / formatEndpoint", (t) => {
  t.equal(ENDPOINT_BYTES, 20);

  const ep4 = encodeEndpoint(ip("192.0.2.1"), 51820);
  t.equal(ep4.length, ENDPOINT_BYTES);
  t.equal(ep4[0], 4, "family byte");
  t.equal(ep4[1], 0);
  t.equal((ep4[2] << 8) | ep4[3], 51820, "port in network byte order");
  t.equal(ep4[2], 0xca, "port high byte first");
  t.same([...ep4.subarray(4, 8)], [192, 0, 2, 1]);
  t.ok(ep4.subarray(8).every((b) => b === 0), "unused address bytes are zero");
  t.same(decodeEndpoint(ep4), { ip: { family: 4, bytes: Uint8Array.of(192, 0, 2, 1) }, port: 51820 });
  t.equal(formatEndpoint(ep4), "192.0.2.1:51820");

  const ep6 = encodeEndpoint(ip("2001:db8::1"), 443);
  t.equal(ep6[0], 6);
  t.same([...ep6.subarray(4, 20)], v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
  t.equal(formatEndpoint(ep6), "[2001:db8::1]:443");
  const d6 = decodeEndpoint(ep6);
  t.equal(d6.ip.family, 6);
  t.equal(d6.port, 443);
  t.equal(formatIp(d6.ip), "2001:db8::1");

  // Endpoints in a batch array, at an offset; neighbours must not leak in.
  const batch = new Uint8Array(ENDPOINT_BYTES * 3).fill(0xee);
  batch.set(encodeEndpoint(ip("198.18.0.2"), 1), ENDPOINT_BYTES);
  batch.set(encodeEndpoint(ip("fd77::2"), 65535), 2 * ENDPOINT_BYTES);
  t.equal(formatEndpoint(batch, ENDPOINT_BYTES), "198.18.0.2:1");
  t.equal(formatEndpoint(batch, 2 * ENDPOINT_BYTES), "[fd77::2]:65535");
  const d = decodeEndpoint(batch, ENDPOINT_BYTES);
  t.same([...d.ip.bytes], [198, 18, 0, 2]);
  batch.fill(0, ENDPOINT_BYTES);
  t.same([...d.ip.bytes], [198, 18, 0, 2], "decoded bytes are a copy, not a view of the batch");

  // Round trip over the text form for several endpoints.
  for (const s of ["10.0.0.1:1", "255.255.255.255:65535", "[::]:51820", "[fe80::1:2]:8080"]) {
    const hp = parseHostPort(s);
    if (!hp) {
      t.fail(`parseHostPort(${s})`);
      continue;
    }
    t.equal(formatEndpoint(encodeEndpoint(ip(hp.host), hp.port)), s, `round trip ${s}`);
  }
  t.end();
});

t.test("zone ids, IPv4 typos and bad labels are refused; mapped addresses print dotted", async (t) => {
  t.equal(parseIp("fe80::1%eth0"), null, "a zone id cannot be kept in 16 bytes");
  t.equal(parseHostPort("198.18.0.256:51820"), null, "an IPv4 typo is not a DNS name");
  t.equal(parseHostPort("a..b:1"), null);
  t.equal(parseHostPort("x-:1"), null);
  t.same(parseHostPort("peer-b.example:51820"), { host: "peer-b.example", port: 51820 });
  t.equal(formatIp(parseIp("::ffff:1.2.3.4")!), "::ffff:1.2.3.4");
});

t.test("an IPv4-mapped endpoint is encoded as the IPv4 endpoint the addon reports", async (t) => {
  const mapped = encodeEndpoint(parseIp("::ffff:198.18.0.2")!, 51820);
  t.same(Buffer.from(mapped), Buffer.from(encodeEndpoint(parseIp("198.18.0.2")!, 51820)));
  t.equal(formatEndpoint(mapped), "198.18.0.2:51820");
});
