// Property-based fuzzing of the network path (UDP -> TUN), issue 4: batches of generated
// datagrams, good and bad, from peers and strangers, through the real NetworkPath over a
// fake addon; every batch is held against an independent oracle (test/unit/lib/oracle.ts).
// Default: 1,000,000 datagrams from a fixed seed; FUZZ_SEED / FUZZ_INPUTS override,
// FUZZ_REPLAY=seed:path replays a counterexample.
import fc from "fast-check";
import t from "tap";
import { addCounts, countsOf, fuzz, fuzzSettings, runNetwork, showCounts } from "./lib/harness.ts";
import { zeroCounts } from "./lib/oracle.ts";
import type { Reason } from "./lib/oracle.ts";
import { buildDatagram, datagramDescArb, NET_FAULTS } from "./lib/packets.ts";
import type { WireDatagram } from "./lib/packets.ts";
import { endpoint, FIXTURES, MTU } from "./lib/world.ts";
import { ipv4, ipv6, setChecksum } from "./lib/handmade.ts";

const NETWORK_REASONS: readonly Reason[] = [
  "unknown_peer", "truncated", "oversize", "bad_version", "bad_type", "bad_header", "malformed_ip",
  "bad_checksum", "source_not_allowed", "tun_write_error",
];

const runArb = fc.record({
  fixture: fc.nat({ max: FIXTURES.length - 1 }),
  // Pools below a batch (64) make every read a short one; the default config has 1024.
  capacity: fc.constantFrom(160, 160, 160, 128, 65, 64, 63, 17, 5),
  datagrams: fc.oneof(
    { weight: 94, arbitrary: fc.array(datagramDescArb, { minLength: 1, maxLength: 64, size: "max" }) },
    { weight: 5, arbitrary: fc.array(datagramDescArb, { minLength: 65, maxLength: 200, size: "max" }) },
    // More than ROUNDS_PER_WAKEUP full batches: one wakeup must stop after 8.
    { weight: 1, arbitrary: fc.array(datagramDescArb, { minLength: 513, maxLength: 600, size: "max" }) },
  ),
  readCaps: fc.oneof({ weight: 7, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: fc.array(fc.nat({ max: 70 }), { maxLength: 4 }) }),
  tunFailures: fc.oneof(
    { weight: 8, arbitrary: fc.constant([]) },
    // EIO, EINVAL, EMSGSIZE, ENOBUFS, EFAULT, EAGAIN
    { weight: 2, arbitrary: fc.array(fc.tuple(fc.nat({ max: 80 }), fc.constantFrom(5, 22, 90, 105, 14, 11)), { maxLength: 4 }) },
  ),
});

t.test("property: every datagram is delivered byte-exact or dropped for the oracle's reason", (t) => {
  const settings = fuzzSettings(0x4e5a4b1);
  const total = zeroCounts();
  let delivered = 0;
  let keepalives = 0;
  const faults = new Map<string, number>();
  const report = fuzz(t, "fuzz-network-path", settings, runArb, (run) => {
    const fx = FIXTURES[run.fixture];
    const datagrams = run.datagrams.map((d) => buildDatagram(d, fx));
    const res = runNetwork(fx, datagrams, { capacity: run.capacity, readCaps: run.readCaps, tunFailures: new Map(run.tunFailures) });
    addCounts(total, countsOf(res.path.drops));
    delivered += res.path.packets;
    keepalives += res.peers.reduce((a, p) => a + p.rxKeepalives, 0);
    for (const d of run.datagrams) faults.set(NET_FAULTS[d.fault], (faults.get(NET_FAULTS[d.fault]) ?? 0) + 1);
    return datagrams.length;
  });
  t.comment(`fuzz-network-path: ${report.inputs} datagrams in ${report.runs} runs (${report.chunks} chunks), ${report.seconds.toFixed(1)} s`);
  t.comment(`fuzz-network-path: delivered=${delivered} keepalives=${keepalives} ${showCounts(total, NETWORK_REASONS)}`);
  t.comment(`fuzz-network-path: generated faults ${[...faults].map(([k, v]) => `${k}=${v}`).join(" ")}`);
  t.ok(report.inputs >= settings.inputs || settings.replay !== null, `at least ${settings.inputs} datagrams`);
  if (report.inputs >= 20_000) {
    // The generator really reaches every outcome (a silent generator bug would pass vacuously).
    for (const r of NETWORK_REASONS) t.ok(total[r] > 0, `some datagrams dropped as ${r}`);
    t.ok(delivered > report.inputs / 10, "a good share delivered");
    t.ok(keepalives > 0, "keepalives seen");
  }
  t.end();
});

// ---------------------------------------------------------------- hand-written cases

const nested = FIXTURES.find((f) => f.label === "nested")!;
const ALPHA = endpoint("192.0.2.1:51820");
const BETA = endpoint("[2001:db8::2]:51820");
const GAMMA = endpoint("192.0.2.1:51821");

const data = (inner: Uint8Array, header = [0x11, 0, 0, 0]): Buffer => Buffer.concat([Buffer.from(header), inner]);
const from = (source: Uint8Array, bytes: Uint8Array, length = bytes.length): WireDatagram => ({ bytes, length, source });

/** Runs datagrams through the path (all checks against the oracle apply) and returns the counters. */
function net(datagrams: WireDatagram[], tunFailures: [number, number][] = []) {
  const res = runNetwork(nested, datagrams, { capacity: 160, tunFailures: new Map(tunFailures) });
  const c = countsOf(res.path.drops);
  const drops = Object.fromEntries(Object.entries(c).filter(([, v]) => v > 0));
  return { drops, delivered: res.io.tunOut, peers: res.peers, res };
}

t.test("regression: unknown_peer", (t) => {
  const good = data(ipv4("10.1.0.5", "10.9.0.1"));
  const r = net([
    from(endpoint("203.0.113.7:51820"), good), // a stranger
    from(endpoint("192.0.2.1:51822"), good), // alpha's address, another port
    from(endpoint("[2001:db8::3]:51820"), good), // an IPv6 stranger next to beta
    from(endpoint("203.0.113.7:51820"), Buffer.alloc(0)), // strangers are not parsed at all
    from(endpoint("203.0.113.7:51820"), Buffer.alloc(2000), 65507), // not even their length
  ]);
  t.same(r.drops, { unknown_peer: 5 });
  t.equal(r.delivered.length, 0);
  t.same(r.res.firstDrops.map(([, d]) => d), ["203.0.113.7:51820"], "first drop names the stranger");
  t.end();
});

t.test("regression: truncated", (t) => {
  const r = net([from(ALPHA, Buffer.alloc(0)), from(ALPHA, Buffer.from([0x11])), from(ALPHA, Buffer.from([0x11, 0, 0]))]);
  t.same(r.drops, { truncated: 3 });
  t.end();
});

t.test("regression: oversize at and past the MTU, and past the room", (t) => {
  const atMtu = data(ipv4("10.1.0.5", "10.9.0.1", MTU - 20));
  const overMtu = data(ipv4("10.1.0.5", "10.9.0.1", MTU - 19));
  const huge = Buffer.concat([overMtu, Buffer.alloc(200)]);
  const r = net([from(ALPHA, atMtu), from(ALPHA, overMtu), from(ALPHA, huge, 65507), from(ALPHA, huge, 1477)]);
  t.same(r.drops, { oversize: 3 });
  t.equal(r.delivered.length, 1, "exactly MTU + header is still delivered");
  t.ok(r.delivered[0].equals(atMtu.subarray(4)));
  t.end();
});

t.test("regression: bad_version, bad_type, bad_header", (t) => {
  const inner = ipv4("10.1.0.5", "10.9.0.1");
  const r = net([
    from(ALPHA, data(inner, [0x21, 0, 0, 0])), // version 2
    from(ALPHA, data(inner, [0x01, 0, 0, 0])), // version 0
    from(ALPHA, Buffer.from([0x22, 0, 0, 0])), // a version-2 keepalive
    from(ALPHA, data(inner, [0x13, 0, 0, 0])), // type 3 (reserved for a handshake)
    from(ALPHA, data(inner, [0x10, 0, 0, 0])), // type 0
    from(ALPHA, data(inner, [0x11, 0, 1, 0])), // reserved byte set
    from(ALPHA, data(inner, [0x13, 0x80, 0, 0])), // reserved set beats an unknown type
    from(ALPHA, Buffer.from([0x12, 0, 0, 1])), // keepalive with a reserved byte set
    from(ALPHA, Buffer.from([0x12, 0, 0, 0, 0x45])), // keepalive with a payload
    from(ALPHA, Buffer.from([0x12, 0, 0, 0])), // a clean keepalive
  ]);
  t.same(r.drops, { bad_version: 3, bad_type: 2, bad_header: 4 });
  t.equal(r.peers[0].rxKeepalives, 1, "the clean keepalive is counted for alpha");
  t.equal(r.delivered.length, 0);
  t.end();
});

t.test("regression: malformed_ip", (t) => {
  const lyingTotal = ipv4("10.1.0.5", "10.9.0.1", 8);
  lyingTotal.writeUInt16BE(29, 2); // one more than it has
  setChecksum(lyingTotal);
  const shortTotal = ipv4("10.1.0.5", "10.9.0.1", 8);
  shortTotal.writeUInt16BE(27, 2); // one byte of padding behind the packet
  setChecksum(shortTotal);
  const ihl4 = ipv4("10.1.0.5", "10.9.0.1", 8);
  ihl4[0] = 0x44;
  setChecksum(ihl4);
  const ihlPastTotal = ipv4("10.1.0.5", "10.9.0.1", 0); // 20 bytes, IHL 6 says 24
  ihlPastTotal[0] = 0x46;
  const v6Lies = ipv6("fd00:1::5", "fd00:9::1", 8);
  v6Lies.writeUInt16BE(9, 4);
  const v6Short = ipv6("fd00:1::5", "fd00:9::1", 0).subarray(0, 39);
  const v5 = ipv4("10.1.0.5", "10.9.0.1");
  v5[0] = 0x55;
  const r = net([
    from(ALPHA, data(Buffer.alloc(0))), // a data header with nothing behind it
    from(ALPHA, data(lyingTotal)),
    from(ALPHA, data(shortTotal)),
    from(ALPHA, data(ihl4)),
    from(ALPHA, data(ihlPastTotal)),
    from(ALPHA, data(ipv4("10.1.0.5", "10.9.0.1").subarray(0, 19))),
    from(ALPHA, data(v6Lies)),
    from(ALPHA, data(v6Short)),
    from(ALPHA, data(v5)),
  ]);
  t.same(r.drops, { malformed_ip: 9 });
  t.end();
});

t.test("regression: bad_checksum, and 0xffff standing for a zero checksum", (t) => {
  const bad = ipv4("10.1.0.5", "10.9.0.1");
  bad[11] ^= 1;
  const options = ipv4("10.1.0.5", "10.9.0.1", 8, { options: [148, 4, 0, 0, 1, 1, 1, 0] });
  options[21] ^= 0x10; // an option byte changed after the checksum was computed
  // A header whose words sum to zero (one's complement) without the checksum: 0x0000 and
  // 0xffff are both right; RFC 1624 receivers accept either.
  const negZero = ipv4("10.1.0.5", "10.9.0.1");
  negZero.writeUInt16BE(0, 4);
  negZero.writeUInt16BE(0, 10);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += negZero.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  negZero.writeUInt16BE(~sum & 0xffff, 4);
  negZero.writeUInt16BE(0xffff, 10);
  const r = net([from(ALPHA, data(bad)), from(ALPHA, data(options)), from(ALPHA, data(negZero))]);
  t.same(r.drops, { bad_checksum: 2 });
  t.equal(r.delivered.length, 1);
  t.end();
});

t.test("regression: source_not_allowed, longest prefix deciding", (t) => {
  const r = net([
    from(ALPHA, data(ipv4("10.2.0.1", "10.9.0.1"))), // beta's /16
    from(ALPHA, data(ipv4("10.1.128.5", "10.9.0.1"))), // beta's /17 inside alpha's /16
    from(ALPHA, data(ipv4("10.1.200.7", "10.9.0.1"))), // gamma's /32 inside that
    from(ALPHA, data(ipv4("8.8.8.8", "10.9.0.1"))), // nobody's
    from(ALPHA, data(ipv6("fd00:1::8000:0:0:5", "fd00:9::1"))), // beta's /65 inside alpha's /64
    from(GAMMA, data(ipv4("10.1.0.5", "10.9.0.1"))), // gamma shares alpha's address, not its IPs
    // and the ones that are fine:
    from(ALPHA, data(ipv4("10.1.63.255", "10.9.0.1"))), // (10.1.64.0/18 is delta's)
    from(BETA, data(ipv4("10.1.128.5", "10.9.0.1"))),
    from(GAMMA, data(ipv4("10.1.200.7", "10.9.0.1"))),
    from(endpoint("[2001:db8::2]:51821"), data(ipv6("fd00:1::8000:0:0:1", "fd00:9::1"))),
  ]);
  t.same(r.drops, { source_not_allowed: 6 });
  t.equal(r.delivered.length, 4);
  t.end();
});

t.test("regression: tun_write_error counts the failed write and delivers the rest", (t) => {
  const a = data(ipv4("10.1.0.5", "10.9.0.1"));
  const b = data(ipv4("10.1.0.6", "10.9.0.1"));
  const c = data(ipv4("10.1.0.7", "10.9.0.1"));
  const r = net([from(ALPHA, a), from(ALPHA, b), from(ALPHA, c)], [[1, 5]]);
  t.same(r.drops, { tun_write_error: 1 });
  t.equal(r.res.path.lastWriteErrno, 5);
  t.same(r.delivered.map((p) => p.toString("hex")), [a, c].map((p) => p.subarray(4).toString("hex")));
  t.same(r.res.firstDrops.map(([, d]) => d), ["alpha"]);
  t.end();
});

t.test("regression: odd but sound packets are delivered byte-exact", (t) => {
  const hopByHop = [43, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop, PadN, then a routing header
  const routing = [44, 0, 0, 0, 0, 0, 0, 0]; // routing type 0, segments left 0, then fragment
  const fragment = [17, 0, 0, 1, 0, 0, 0, 42]; // fragment: offset 0, more fragments
  const inputs = [
    ipv4("10.1.0.5", "10.9.0.1", 0), // header only
    ipv4("10.1.0.5", "10.9.0.1", 100, { options: [148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0] }), // router alert + record route
    ipv4("10.1.0.5", "10.9.0.1", 64, { frag: 0x2000 }), // first fragment
    ipv4("10.1.0.5", "10.9.0.1", 64, { frag: 0x00b9 }), // last fragment
    ipv6("fd00:1::5", "fd00:9::1", 0, [], 59), // no next header, zero payload length
    ipv6("fd00:1::5", "fd00:9::1", 32, [...hopByHop, ...routing, ...fragment]),
  ];
  const r = net(inputs.map((p) => from(ALPHA, data(p))));
  t.same(r.drops, {});
  t.same(r.delivered.map((p) => p.toString("hex")), inputs.map((p) => p.toString("hex")));
  t.equal(r.peers[0].rxPackets, inputs.length);
  t.equal(r.peers[0].rxBytes, inputs.reduce((a, p) => a + p.length, 0));
  t.end();
});
