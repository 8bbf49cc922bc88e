// Property-based fuzzing of the device path (TUN -> UDP), issue 4: batches of generated
// packets through the real DevicePath over a fake addon whose udpSend takes short counts
// (EAGAIN) and fails datagrams alone (-errno); every batch is held against an independent
// oracle (test/unit/lib/oracle.ts). Default: 1,000,000 packets from a fixed seed;
// FUZZ_SEED / FUZZ_INPUTS override, FUZZ_REPLAY=seed:path replays a counterexample.
import fc from "fast-check";
import t from "tap";
import { addCounts, countsOf, fuzz, fuzzSettings, runDevice, showCounts } from "./lib/harness.ts";
import type { DevOptions } from "./lib/harness.ts";
import { ipv4, ipv6 } from "./lib/handmade.ts";
import { EAFNOSUPPORT, zeroCounts } from "./lib/oracle.ts";
import type { Reason } from "./lib/oracle.ts";
import { buildPacket, DEV_FAULTS, packetDescArb } from "./lib/packets.ts";
import { endpoint, FIXTURES, MTU } from "./lib/world.ts";

const DEVICE_REASONS: readonly Reason[] = ["malformed_ip", "no_route", "no_endpoint", "send_error", "shutdown"];

const runArb = fc.record({
  fixture: fc.nat({ max: FIXTURES.length - 1 }),
  capacity: fc.constantFrom(160, 160, 160, 128, 65, 64, 63, 17, 5),
  v6socket: fc.oneof({ weight: 8, arbitrary: fc.constant(true) }, { weight: 2, arbitrary: fc.constant(false) }),
  packets: fc.oneof(
    { weight: 94, arbitrary: fc.array(packetDescArb, { minLength: 1, maxLength: 64, size: "max" }) },
    { weight: 5, arbitrary: fc.array(packetDescArb, { minLength: 65, maxLength: 200, size: "max" }) },
    { weight: 1, arbitrary: fc.array(packetDescArb, { minLength: 513, maxLength: 600, size: "max" }) },
  ),
  readCaps: fc.oneof({ weight: 7, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: fc.array(fc.nat({ max: 70 }), { maxLength: 4 }) }),
  // How many datagrams each udpSend call gets through before EAGAIN (then unlimited).
  sendBudgets: fc.oneof(
    { weight: 5, arbitrary: fc.constant([]) },
    {
      weight: 5,
      arbitrary: fc.array(fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 8 }) }, { weight: 1, arbitrary: fc.nat({ max: 70 }) }), { minLength: 1, maxLength: 5 }),
    },
  ),
  sendFailures: fc.oneof(
    { weight: 7, arbitrary: fc.constant([]) },
    // ENETUNREACH, EHOSTUNREACH, EPERM, EMSGSIZE, ECONNREFUSED, EINVAL
    { weight: 3, arbitrary: fc.array(fc.tuple(fc.nat({ max: 80 }), fc.constantFrom(101, 113, 1, 90, 111, 22)), { maxLength: 4 }) },
  ),
  spurious: fc.array(fc.boolean(), { maxLength: 6 }),
  stopAt: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat({ max: 6 }) }),
});

t.test("property: every packet is sent to its route's peer byte-exact or dropped for the oracle's reason", (t) => {
  const settings = fuzzSettings(0x4e5a4b2);
  const total = zeroCounts();
  let sent = 0;
  let heldRuns = 0;
  let maxHeld = 0;
  const faults = new Map<string, number>();
  const report = fuzz(t, "fuzz-device-path", settings, runArb, (run) => {
    const fx = FIXTURES[run.fixture];
    const packets = run.packets.map((d) => buildPacket(d, fx));
    const res = runDevice(fx, packets, {
      capacity: run.capacity, v6socket: run.v6socket, readCaps: run.readCaps, sendBudgets: run.sendBudgets,
      sendFailures: new Map(run.sendFailures), spurious: run.spurious, stopAt: run.stopAt, eagainFirst: true,
    });
    addCounts(total, countsOf(res.path.drops));
    sent += res.path.packets;
    if (res.maxHeld > 0) heldRuns++;
    maxHeld = Math.max(maxHeld, res.maxHeld);
    for (const d of run.packets) faults.set(DEV_FAULTS[d.fault], (faults.get(DEV_FAULTS[d.fault]) ?? 0) + 1);
    return packets.length;
  });
  t.comment(`fuzz-device-path: ${report.inputs} packets in ${report.runs} runs (${report.chunks} chunks), ${report.seconds.toFixed(1)} s`);
  t.comment(`fuzz-device-path: sent=${sent} ${showCounts(total, DEVICE_REASONS)}; runs that waited for writability: ${heldRuns} (most held ${maxHeld})`);
  t.comment(`fuzz-device-path: generated faults ${[...faults].map(([k, v]) => `${k}=${v}`).join(" ")}`);
  t.ok(report.inputs >= settings.inputs || settings.replay !== null, `at least ${settings.inputs} packets`);
  if (report.inputs >= 20_000) {
    for (const r of DEVICE_REASONS) t.ok(total[r] > 0, `some packets dropped as ${r}`);
    t.ok(sent > report.inputs / 10, "a good share sent");
    t.ok(heldRuns > 0, "back-pressure exercised");
  }
  t.end();
});

// ---------------------------------------------------------------- hand-written cases

const nested = FIXTURES.find((f) => f.label === "nested")!;
const names = nested.peers.map((p) => p.name);

/** Runs packets through the path (all checks against the oracle apply) and sums it up. */
function dev(packets: Uint8Array[], opts: Partial<DevOptions> = {}) {
  const res = runDevice(nested, packets, { capacity: 160, v6socket: true, ...opts });
  const c = countsOf(res.path.drops);
  const drops = Object.fromEntries(Object.entries(c).filter(([, v]) => v > 0));
  const sentTo = res.io.sent.map((s) => names[nested.peers.findIndex((p) => p.endpoint !== null && Buffer.from(p.endpoint).equals(s.dest))]);
  return { drops, sentTo, res };
}

t.test("regression: malformed_ip (too short for a destination, or not IP)", (t) => {
  const v5 = ipv4("10.9.0.1", "10.1.0.5");
  v5[0] = 0x55;
  const r = dev([
    new Uint8Array(0),
    ipv4("10.9.0.1", "10.1.0.5").subarray(0, 19),
    ipv6("fd00:9::1", "fd00:1::5").subarray(0, 39),
    v5,
    Buffer.from([0x45]),
  ]);
  t.same(r.drops, { malformed_ip: 5 });
  t.equal(r.res.io.sent.length, 0);
  t.end();
});

t.test("regression: the device path trusts the kernel past the destination (no length checks)", (t) => {
  // A TUN read never yields these, and the far end's network path drops them (malformed_ip);
  // the device path only needs the destination, so it forwards them as they are.
  const lying = ipv4("10.9.0.1", "10.1.0.5");
  lying.writeUInt16BE(999, 2);
  const headerOnly = ipv4("10.9.0.1", "10.1.0.5").subarray(0, 20);
  const r = dev([lying, headerOnly]);
  t.same(r.drops, {});
  t.same(r.sentTo, ["alpha", "alpha"]);
  t.end();
});

t.test("regression: longest prefix picks the peer; no_route and no_endpoint", (t) => {
  const r = dev([
    ipv4("10.9.0.1", "10.1.5.5"), // alpha /16
    ipv4("10.9.0.1", "10.1.130.1"), // beta /17 inside it
    ipv4("10.9.0.1", "10.1.200.7"), // gamma /32 inside that
    ipv4("10.9.0.1", "10.1.64.1"), // delta /18: no endpoint yet
    ipv4("10.9.0.1", "8.8.8.8"), // nobody's
    ipv6("fd00:9::1", "fd00:1::1"), // alpha /64
    ipv6("fd00:9::1", "fd00:1::8000:0:0:2"), // beta /65
    ipv6("fd00:9::1", "fd00:1::8000:0:0:1"), // eps /128
    ipv6("fd00:9::1", "fd00:4:0:1::1"), // delta /48: no endpoint
    ipv6("fd00:9::1", "2001:db8::1"), // nobody's
  ]);
  t.same(r.drops, { no_route: 2, no_endpoint: 2 });
  t.same(r.sentTo, ["alpha", "beta", "gamma", "alpha", "beta", "eps"]);
  t.same(r.res.firstDrops.map(([, d]) => d), ["delta", ""], "no_endpoint names the peer");
  t.ok(r.res.io.sent.every((s) => s.bytes[0] === 0x11 && s.bytes[1] === 0 && s.bytes[2] === 0 && s.bytes[3] === 0), "our header in front");
  t.end();
});

t.test("regression: send_error, alone in its batch", (t) => {
  const r = dev([ipv4("10.9.0.1", "10.1.5.5"), ipv4("10.9.0.1", "10.1.5.6"), ipv4("10.9.0.1", "10.1.5.7")], {
    sendFailures: new Map([[1, 113]]),
  });
  t.same(r.drops, { send_error: 1 });
  t.equal(r.res.path.lastSendErrno, 113);
  t.equal(r.res.io.sent.length, 2);
  t.end();
});

t.test("regression: send_error for an IPv6 peer on an IPv4 socket (EAFNOSUPPORT)", (t) => {
  const r = dev([ipv4("10.9.0.1", "10.2.0.1"), ipv4("10.9.0.1", "10.1.5.5")], { v6socket: false });
  t.same(r.drops, { send_error: 1 });
  t.equal(r.res.path.lastSendErrno, EAFNOSUPPORT);
  t.same(r.sentTo, ["alpha"]);
  t.end();
});

t.test("regression: EAGAIN holds the rest, pauses reads, and sends it on writability", (t) => {
  const packets = Array.from({ length: 10 }, (_, i) => ipv4("10.9.0.1", `10.1.0.${i + 1}`, i * 10));
  // Budgets: 3 go, then 2, then 1, then the rest; a spurious wakeup each step.
  const r = dev(packets, { sendBudgets: [3, 2, 1], spurious: [true] });
  t.same(r.drops, {});
  t.equal(r.res.io.calls.udpSend, 4);
  t.equal(r.res.maxHeld, 7, "seven buffers held while the socket was full");
  t.equal(r.res.io.sent.length, 10);
  t.same(r.res.io.sent.map((s) => Buffer.from(s.bytes).subarray(4).toString("hex")), packets.map((p) => p.toString("hex")), "in order, byte-exact");
  t.equal(r.res.pool.inUse, 0);
  t.end();
});

t.test("regression: EAGAIN before the first datagram holds the whole batch", (t) => {
  const packets = [ipv4("10.9.0.1", "10.1.5.5"), ipv4("10.9.0.1", "10.1.5.5", 10)];
  const r = dev(packets, { sendBudgets: [0], eagainFirst: true });
  t.same(r.drops, {});
  t.equal(r.res.maxHeld, 2, "both held while the socket was full");
  t.same(r.res.io.sent.map((s) => Buffer.from(s.bytes).subarray(4).toString("hex")), packets.map((p) => p.toString("hex")), "then sent, in order");
  t.equal(r.res.pool.inUse, 0);
  t.end();
});

t.test("regression: shutdown drops what is still held", (t) => {
  const packets = Array.from({ length: 5 }, (_, i) => ipv6("fd00:9::1", `fd00:2::${i + 1}`));
  const r = dev(packets, { sendBudgets: [2], stopAt: 0 });
  t.ok(r.res.discarded);
  t.same(r.drops, { shutdown: 3 });
  t.same(r.sentTo, ["beta", "beta"]);
  t.same(r.res.firstDrops.map(([, d]) => d), ["beta"]);
  t.equal(r.res.pool.inUse, 0, "discard returns every buffer");
  t.end();
});

t.test("regression: a full-MTU packet goes out with the header in the headroom", (t) => {
  const big = ipv4("10.9.0.1", "10.1.5.5", MTU - 20);
  const r = dev([big]);
  t.same(r.drops, {});
  t.equal(r.res.io.sent[0].bytes.length, MTU + 4);
  t.same(Buffer.from(r.res.io.sent[0].dest), Buffer.from(endpoint("192.0.2.1:51820")));
  t.end();
});
