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
import { COUNTER_MODES, WG_KINDS, WgBuilder, wgDatagramDescArb } from "./lib/wg-packets.ts";
import { runWireGuard } from "./lib/wg-harness.ts";
import { buildWgWorld } from "./lib/wg-world-path.ts";
import { FIXTURES } from "./lib/world.ts";

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
