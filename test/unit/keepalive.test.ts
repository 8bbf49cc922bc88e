// The keepalive schedule against a fake clock: WireGuard's PersistentKeepalive semantics
// (nothing sent for N seconds, data or keepalive, then one keepalive; one at once when the
// setting turns on), checked one tick at a time as the transport polls it.
import t from "tap";
import { KeepaliveSchedule } from "../../src/tunnel/keepalive.ts";

interface FakePeer { name: string; txPackets: number }
const peer = (name: string): FakePeer => ({ name, txPackets: 0 });

/** Polls like the transport: every tickMs from `from` to `to` (ms), sending whatever is due;
 * returns when each keepalive left, by peer name. */
function run(s: KeepaliveSchedule<FakePeer>, from: number, to: number, traffic: (now: number) => void = () => {}): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (let now = from; now <= to; now += s.tickMs) {
    traffic(now);
    for (const p of s.due(now)) {
      (out[p.name] ??= []).push(now);
      s.sent(p, now);
    }
  }
  return out;
}

t.test("the tick: a quarter of the shortest interval, at most 1 s; none with keepalives off", (t) => {
  const s = new KeepaliveSchedule<FakePeer>();
  t.equal(s.tickMs, 0, "nothing set: no tick");
  s.set([{ peer: peer("a"), seconds: 0 }]);
  t.equal(s.tickMs, 0, "0 is off");
  s.set([{ peer: peer("a"), seconds: 1 }, { peer: peer("b"), seconds: 25 }]);
  t.equal(s.tickMs, 250, "1 s interval: 250 ms");
  s.set([{ peer: peer("b"), seconds: 25 }]);
  t.equal(s.tickMs, 1000, "25 s: capped at 1 s");
  t.end();
});

t.test("an idle peer: one keepalive at once, then one per interval", (t) => {
  const s = new KeepaliveSchedule<FakePeer>();
  s.set([{ peer: peer("a"), seconds: 2 }]);
  t.same(run(s, 0, 7000), { a: [0, 2000, 4000, 6000] });
  t.end();
});

t.test("data sent within the interval holds keepalives back; they resume an interval after the last", (t) => {
  const s = new KeepaliveSchedule<FakePeer>();
  const a = peer("a");
  s.set([{ peer: a, seconds: 2 }]);
  s.due(0); // let the first one go
  s.sent(a, 0);
  // A packet every 500 ms until 5 s, then silence.
  const sent = run(s, 500, 10_000, (now) => { if (now <= 5000 && now % 500 === 0) a.txPackets++; });
  t.same(sent, { a: [7000, 9000] }, "none while data flows; the first 2 s after the last packet (seen at 5 s)");
  t.end();
});

t.test("never early: a packet just after a poll delays the keepalive by at most one tick", (t) => {
  const s = new KeepaliveSchedule<FakePeer>();
  const a = peer("a");
  s.set([{ peer: a, seconds: 1 }]);
  s.due(0);
  s.sent(a, 0);
  // Sent at 260 ms, seen by the 500 ms poll (250 ms ticks): quiet since 260 really, since 500 as far as the schedule knows.
  const sent = run(s, 250, 1600, (now) => { if (now === 500) a.txPackets++; });
  t.same(sent, { a: [1500] }, "1.24 s after the packet: at least the interval, under interval + tick");
  t.end();
});

t.test("each peer on its own interval; off peers never", (t) => {
  const s = new KeepaliveSchedule<FakePeer>();
  s.set([{ peer: peer("one"), seconds: 1 }, { peer: peer("three"), seconds: 3 }, { peer: peer("off"), seconds: 0 }]);
  t.same(run(s, 0, 6000), { one: [0, 1000, 2000, 3000, 4000, 5000, 6000], three: [0, 3000, 6000] });
  t.end();
});

t.test("a keepalive the socket did not take is due again at the next poll", (t) => {
  const s = new KeepaliveSchedule<FakePeer>();
  const a = peer("a");
  s.set([{ peer: a, seconds: 1 }]);
  t.same(s.due(0), [a]);
  // not sent: still due
  t.same(s.due(250), [a], "due again");
  s.sent(a, 250);
  t.same(s.due(500), [], "sent: quiet for the interval");
  t.same(s.due(1250), [a]);
  t.end();
});

t.test("reload: kept peers keep their quiet time, a new interval applies, turning on is due at once, gone is gone", (t) => {
  const s = new KeepaliveSchedule<FakePeer>();
  const a = peer("a"), b = peer("b"), c = peer("c");
  s.set([{ peer: a, seconds: 4 }, { peer: b, seconds: 0 }, { peer: c, seconds: 1 }]);
  for (const p of s.due(0)) s.sent(p, 0);
  // At 1.5 s: a from 4 s to 2 s, b turned on, c removed.
  s.set([{ peer: a, seconds: 2 }, { peer: b, seconds: 1 }]);
  t.equal(s.tickMs, 250);
  t.same(run(s, 1500, 4100), { b: [1500, 2500, 3500], a: [2000, 4000] },
    "a: 2 s after its last one (at 0), b: at once then every 1 s; c: none");
  s.set([]);
  t.equal(s.tickMs, 0, "all off: no tick");
  t.same(s.due(100_000), [], "nothing due");
  t.end();
});
