// Property-based fuzzing of the WireGuard network path (issue 11, item 9): batches of
// generated datagrams (data messages from known peers, GRO trains, keepalives, handshake
// messages of every type at right and wrong sizes, bad MAC1s, unknown indices, cut and
// flipped ciphertext and tags, replayed, late, far-ahead and limit counters, padding, inner
// packets from outside the peer's allowed IPs) through the real NetworkPath with the addon's
// own wgOpen and a real WgDevice for handshakes, held against an independent oracle
// (test/unit/lib/wg-oracle.ts). Default: 1,000,000 datagrams from a fixed seed; FUZZ_SEED /
// FUZZ_INPUTS override, FUZZ_REPLAY=seed:path replays a counterexample.
import fc from "fast-check";
import t from "tap";
import { addCounts, countsOf, fuzz, fuzzSettings, showCounts } from "./lib/harness.ts";
import { zeroCounts } from "./lib/oracle.ts";
import type { Reason } from "./lib/oracle.ts";
import type { WireDatagram } from "./lib/packets.ts";
import { ipv4, ipv6 } from "./lib/handmade.ts";
import { mac } from "../../src/wireguard/crypto.ts";
import { COUNTER_MODES, sealFor, WG_KINDS, WgBuilder, wgDatagramDescArb } from "./lib/wg-packets.ts";
import { runWireGuard } from "./lib/wg-harness.ts";
import { REJECT_AFTER_MESSAGES } from "./lib/wg-oracle.ts";
import { acceptedOn, buildWgWorld } from "./lib/wg-world-path.ts";
import type { WgKeypair, WgWorld } from "./lib/wg-world-path.ts";
import { endpoint, FIXTURES } from "./lib/world.ts";

const WG_REASONS: readonly Reason[] = [
  "oversize", "bad_header", "malformed_ip", "bad_checksum", "source_not_allowed", "tun_write_error", "unknown_index",
  "replayed", "decryption_failed", "expired_keypair", "bad_size", "bad_mac",
];

const runArb = fc.record({
  fixture: fc.nat({ max: FIXTURES.length - 1 }),
  world: fc.integer(),
  gro: fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, { weight: 3, arbitrary: fc.constant(true) }),
  // Pools below a batch (64) make every read a short one (GRO pools are small anyway).
  capacity: fc.constantFrom(160, 160, 128, 65, 64, 63, 17, 5),
  datagrams: fc.oneof(
    { weight: 95, arbitrary: fc.array(wgDatagramDescArb, { minLength: 1, maxLength: 64, size: "max" }) },
    { weight: 5, arbitrary: fc.array(wgDatagramDescArb, { minLength: 65, maxLength: 300, size: "max" }) },
  ),
  readCaps: fc.oneof({ weight: 7, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: fc.array(fc.nat({ max: 70 }), { maxLength: 4 }) }),
  tunFailures: fc.oneof(
    { weight: 8, arbitrary: fc.constant([]) },
    // EIO, EINVAL, EMSGSIZE, ENOBUFS, EFAULT, EAGAIN
    { weight: 2, arbitrary: fc.array(fc.tuple(fc.nat({ max: 80 }), fc.constantFrom(5, 22, 90, 105, 14, 11)), { maxLength: 4 }) },
  ),
});

t.test("property: every WireGuard datagram is delivered byte-exact or dropped for the oracle's reason", (t) => {
  const settings = fuzzSettings(0x77a9e7);
  const total = zeroCounts();
  let delivered = 0;
  let keepalives = 0;
  let messages = 0;
  let trains = 0;
  const kinds = new Map<string, number>();
  const report = fuzz(t, "fuzz-wireguard-path", settings, runArb, (run) => {
    const world = buildWgWorld(FIXTURES[run.fixture], run.world);
    const builder = new WgBuilder(world, run.gro);
    const datagrams = run.datagrams.map((d) => builder.build(d));
    const capacity = run.gro ? Math.min(run.capacity, 24) : run.capacity;
    const res = runWireGuard(world, datagrams, { capacity, gro: run.gro, readCaps: run.readCaps, tunFailures: new Map(run.tunFailures) });
    addCounts(total, countsOf(res.path.drops));
    delivered += res.path.packets;
    keepalives += res.peers.reduce((a, p) => a + p.rxKeepalives, 0);
    messages += res.expected.messages;
    trains += datagrams.filter((d) => d.seg !== undefined && d.length > d.seg).length;
    for (const d of run.datagrams) {
      const k = `${WG_KINDS[d.kind]}/${COUNTER_MODES[d.counter]}`;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    return datagrams.length;
  });
  t.comment(`fuzz-wireguard-path: ${report.inputs} datagrams (${messages} messages, ${trains} GRO trains) in ${report.runs} runs (${report.chunks} chunks), ${report.seconds.toFixed(1)} s`);
  t.comment(`fuzz-wireguard-path: delivered=${delivered} keepalives=${keepalives} ${showCounts(total, WG_REASONS)}`);
  t.comment(`fuzz-wireguard-path: generated ${[...kinds].sort().map(([k, v]) => `${k}=${v}`).join(" ")}`);
  t.ok(report.inputs >= settings.inputs || settings.replay !== null, `at least ${settings.inputs} datagrams`);
  if (report.inputs >= 20_000) {
    // The generator really reaches every outcome (a silent generator bug would pass vacuously).
    for (const r of WG_REASONS) t.ok(total[r] > 0, `some datagrams dropped as ${r}`);
    t.ok(delivered > report.inputs / 10, "a good share delivered");
    t.ok(keepalives > 0, "keepalives seen");
    t.ok(trains > 0, "GRO trains seen");
  }
  t.end();
});

// ---------------------------------------------------------------- hand-written cases

const nested = FIXTURES.find((f) => f.label === "nested")!;
const peerIndex = (name: string): number => nested.peers.findIndex((p) => p.name === name);
const FROM = endpoint("192.0.2.1:51820");
const ROAMED = endpoint("[2001:db8::77]:4000");

/** A world with known keypairs: alpha, beta, delta (no endpoint: it can still send) and an
 * expired one of gamma's. */
function handWorld(): WgWorld {
  const keypair = (slot: number, name: string, expired = false): WgKeypair =>
    ({ slot, index: (0x7a000000 | slot) >>> 0, key: Buffer.alloc(32, slot), peer: peerIndex(name), expired });
  const w = buildWgWorld(nested, 1);
  return { ...w, keypairs: [keypair(11, "alpha"), keypair(12, "beta"), keypair(13, "delta"), keypair(14, "gamma", true)], unknown: [0x7a000000 | 15], sealed: new Map() };
}

const padded = (p: Uint8Array, to = Math.ceil(p.length / 16) * 16): Buffer => Buffer.concat([p, Buffer.alloc(to - p.length)]);
const dgram = (bytes: Uint8Array, seg?: number, source = FROM): WireDatagram => ({ bytes, length: bytes.length, source, ...(seg ? { seg } : {}) });

/** Runs datagrams through the path (every check against the oracle applies) and returns what happened. */
function wg(world: WgWorld, datagrams: WireDatagram[], o: { gro?: boolean; tunFailures?: [number, number][] } = {}) {
  const res = runWireGuard(world, datagrams, { capacity: 17, gro: o.gro ?? false, tunFailures: new Map(o.tunFailures ?? []) });
  const drops = Object.fromEntries(Object.entries(countsOf(res.path.drops)).filter(([, v]) => v > 0));
  return { drops, delivered: res.io.tunOut, peers: res.peers, calls: res.opener.calls, res };
}

t.test("regression: sealed packets are delivered byte-exact with the padding trimmed; keepalives counted", (t) => {
  const w = handWorld();
  const [alpha, beta, delta] = w.keypairs;
  const a = ipv4("10.1.0.5", "10.9.0.1", 13);
  const b = ipv6("fd00:2::5", "fd00:9::1", 3);
  const d = ipv4("10.4.0.9", "10.9.0.1", 100);
  const r = wg(w, [
    dgram(sealFor(w, alpha, 0n, padded(a))),
    dgram(sealFor(w, beta, 0n, padded(b)), undefined, ROAMED), // from anywhere: the keypair names the peer
    dgram(sealFor(w, delta, 7n, Buffer.concat([d, Buffer.from([1, 2, 3])]))), // odd padding, not zeros
    dgram(sealFor(w, alpha, 1n, new Uint8Array(0))),
  ]);
  t.same(r.drops, {});
  t.same(r.delivered.map((p) => p.toString("hex")), [a, b, d].map((p) => p.toString("hex")));
  t.same(r.peers.map((p) => [p.rxPackets, p.rxKeepalives]), [[1, 1], [1, 0], [0, 0], [1, 0], [0, 0]]);
  t.same(r.calls.map((c) => [c.slot, c.keepalive]), [[11, false], [12, false], [13, false], [11, true]]);
  t.ok(Buffer.from(r.calls[1].source).equals(ROAMED), "received() hears the datagram's own source");
  t.end();
});

t.test("regression: the replay window: replays, late counters inside and behind it, far ahead, and the message limit", (t) => {
  const w = handWorld();
  const alpha = w.keypairs[0];
  const p = padded(ipv4("10.1.0.5", "10.9.0.1"));
  const first = sealFor(w, alpha, 10_000n, p);
  const r = wg(w, [
    dgram(first),
    dgram(first), // replayed
    dgram(sealFor(w, alpha, 10_000n - 8128n, p)), // at the window's far edge: still fine
    dgram(sealFor(w, alpha, 10_000n - 8129n, p)), // behind it
    dgram(sealFor(w, alpha, 9_999n, p)), // late but unseen
    dgram(sealFor(w, alpha, REJECT_AFTER_MESSAGES - 1n, p)), // the last counter there is
    dgram(sealFor(w, alpha, 10_001n, p)), // now far behind the newest
    dgram(sealFor(w, alpha, REJECT_AFTER_MESSAGES, p)),
    dgram(sealFor(w, alpha, (1n << 64n) - 1n, p)),
  ]);
  t.same(r.drops, { replayed: 3, expired_keypair: 2 });
  t.equal(r.delivered.length, 4);
  t.equal(acceptedOn(alpha.slot), 4);
  t.end();
});

t.test("regression: handshake messages of every type, right and wrong sizes, bad and good MAC1s", (t) => {
  const w = handWorld();
  const msg = (type: number, size: number, fill = 0x33): Buffer => {
    const m = Buffer.alloc(size, fill);
    if (size > 0) m[0] = type;
    if (size >= 4) m.fill(0, 1, 4);
    return m;
  };
  const withMac1 = (m: Buffer): Buffer => {
    m.set(mac(w.handshake.mac1Key, m.subarray(0, m.length - 32)), m.length - 32);
    return m;
  };
  const reserved = msg(1, 148);
  reserved[2] = 1;
  const r = wg(w, [
    dgram(msg(1, 147)), dgram(msg(2, 93)), dgram(msg(3, 63)), dgram(reserved), dgram(Buffer.alloc(0)), dgram(msg(5, 148)),
    dgram(msg(0, 64)), // bad_size x7
    dgram(msg(1, 148)), dgram(msg(2, 92)), // bad_mac x2
    dgram(msg(3, 64)), dgram(withMac1(msg(2, 92))), // unknown_index x2: no handshake of ours is in flight
    dgram(withMac1(msg(1, 148))), // decryption_failed: the static key does not open
    dgram(msg(4, 31)), dgram(Buffer.from([4, 0, 1, 0, ...Buffer.alloc(40)])), // bad_header x2
  ]);
  t.same(r.drops, { bad_size: 7, bad_mac: 2, unknown_index: 2, decryption_failed: 1, bad_header: 2 });
  t.equal(r.delivered.length, 0);
  t.same(r.res.firstDrops.map(([, d]) => d), Array(5).fill("192.0.2.1:51820"), "each first drop names the source");
  t.end();
});

t.test("regression: unknown and retired indices, flipped bytes, cut and wrong-key messages", (t) => {
  const w = handWorld();
  const alpha = w.keypairs[0];
  const p = padded(ipv4("10.1.0.5", "10.9.0.1"));
  const flip = (m: Buffer, at: number): Buffer => {
    const c = Buffer.from(m);
    c[at < 0 ? c.length + at : at] ^= 0x40;
    return c;
  };
  const good = sealFor(w, alpha, 3n, p);
  const unknown = Buffer.from(good);
  unknown.writeUInt32LE(w.unknown[0], 4);
  const retired = Buffer.from(good);
  retired.writeUInt32LE(0x5eed0fff, 4); // installed and cleared before the run
  const r = wg(w, [
    dgram(unknown), dgram(retired),
    dgram(flip(good, -1)), dgram(flip(good, 20)), dgram(flip(good, 8)), // tag, ciphertext, counter
    dgram(good.subarray(0, good.length - 1)), dgram(Buffer.concat([good, Buffer.from([0])])),
    dgram(sealFor(w, alpha, 4n, p, Buffer.alloc(32, 99))),
    dgram(good.subarray(0, 31)), // below header and tag
    dgram(good), // the genuine one still opens after all that
  ]);
  t.same(r.drops, { unknown_index: 2, decryption_failed: 6, bad_header: 1 });
  t.equal(r.delivered.length, 1);
  t.end();
});

t.test("regression: a GRO train is opened message by message; received() hears each run once", (t) => {
  const w = handWorld();
  const [alpha, beta] = w.keypairs;
  const p = padded(ipv4("10.1.0.5", "10.9.0.1", 60));
  const parts = [0n, 1n, 2n].map((c) => sealFor(w, alpha, c, p));
  parts[1] = Buffer.from(parts[1]);
  parts[1][40] ^= 1; // one bad message in the middle
  const keepalive = sealFor(w, alpha, 3n, new Uint8Array(0)); // shorter, last
  const train = Buffer.concat([...parts, keepalive]);
  const kaTrain = Buffer.concat([0n, 1n].map((c) => sealFor(w, beta, c, new Uint8Array(0))));
  const r = wg(w, [dgram(train, parts[0].length), dgram(kaTrain, 32)], { gro: true });
  t.same(r.drops, { decryption_failed: 1 });
  t.equal(r.delivered.length, 2);
  t.same(r.peers.map((x) => [x.rxPackets, x.rxKeepalives]), [[2, 1], [0, 2], [0, 0], [0, 0], [0, 0]]);
  t.same(r.calls.map((c) => [c.slot, c.keepalive]), [[11, false], [12, true]]);
  t.end();
});

t.test("regression: expired keypair, source outside the allowed IPs, inner faults, TUN write failure", (t) => {
  const w = handWorld();
  const [alpha, , , gamma] = w.keypairs;
  const bad = ipv4("10.1.0.5", "10.9.0.1");
  bad[11] ^= 1;
  const long = ipv4("10.1.0.5", "10.9.0.1", 24);
  const short = Buffer.from(long.subarray(0, 40)); // the header says 44 bytes
  const r = wg(w, [
    dgram(sealFor(w, gamma, 0n, padded(ipv4("10.3.0.1", "10.9.0.1")))), // expired_keypair
    dgram(sealFor(w, alpha, 0n, padded(ipv4("10.2.0.1", "10.9.0.1")))), // beta's address: source_not_allowed
    dgram(sealFor(w, alpha, 1n, padded(bad))), // bad_checksum
    dgram(sealFor(w, alpha, 2n, short)), // malformed_ip
    dgram(sealFor(w, alpha, 3n, padded(ipv4("10.1.0.6", "10.9.0.1")))), // the TUN write fails
    dgram(sealFor(w, alpha, 4n, padded(ipv4("10.1.0.7", "10.9.0.1")))),
  ], { tunFailures: [[0, 5]] });
  t.same(r.drops, { expired_keypair: 1, source_not_allowed: 1, bad_checksum: 1, malformed_ip: 1, tun_write_error: 1 });
  t.equal(r.delivered.length, 1);
  t.equal(r.res.path.lastWriteErrno, 5);
  t.end();
});
