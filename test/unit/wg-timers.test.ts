// Every timer of the whitepaper on a fake clock, through two devices: retransmission with
// jitter, giving up, passive keepalive, new handshake when unanswered, rekey after time
// (initiator only) and after messages, reject after time, zeroing, persistent keepalive.
import t from "tap";
import {
  KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, ZERO_KEY_MATERIAL_TIME,
} from "../../src/wireguard/constants.ts";
import { PeerTimers, TimerName } from "../../src/wireguard/timers.ts";
import { World, established } from "./lib/wg-world.ts";

const STEP = 10;

t.test("retransmission every REKEY_TIMEOUT + 0-333 ms jitter; gives up after 20 initiations", (t) => {
  const w = new World();
  w.lossy = true;
  const pa = w.peerOf(w.a);
  const start = w.now;
  w.a.device.sendingSlot(pa, w.now);
  const times: number[] = [w.now];
  let gaveUpAt = -1;
  let seen = w.a.events.length;
  w.run(150_000, STEP, () => {
    for (const e of w.a.events.slice(seen)) {
      if (e.kind === "send") times.push(w.now);
      if (e.kind === "gaveUp") gaveUpAt = w.now;
    }
    seen = w.a.events.length;
  });
  const gaps = times.slice(1).map((x, i) => x - times[i]);
  t.equal(times.length, 20, "the first initiation and 19 retries");
  t.ok(gaps.every((g) => g >= REKEY_TIMEOUT && g < REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + STEP), `gaps within 5000-5334 ms: ${gaps.join(",")}`);
  t.ok(new Set(gaps).size > 3, "jitter varies");
  t.ok(gaveUpAt - start >= 90_000 && gaveUpAt - start <= 20 * (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX), `gave up at ${gaveUpAt - start} ms`);
  t.equal(w.a.of("gaveUp").length, 1);
  t.equal(pa.counters.handshakesFailed, 1);
  t.equal(pa.counters.handshakesInitiated, 20);
  t.equal(w.a.device.slotsInUse, 1, "the last handshake's slot waits for the zeroing timer");
  w.run(ZERO_KEY_MATERIAL_TIME, 1000);
  t.equal(w.a.device.slotsInUse, 0, "then it is freed");
  t.equal(w.a.of("send").length, 20, "and nothing more was sent");
  t.end();
});

t.test("an answered handshake stops retransmission", (t) => {
  const w = established();
  w.run(60_000, 100);
  t.equal(w.peerOf(w.a).counters.handshakesInitiated, 1);
  t.end();
});

t.test("passive keepalive: data heard and nothing sent for 10 s", (t) => {
  const w = established();
  const before = w.a.of("keepalive").length;
  const t0 = w.now;
  w.sendData(w.b);
  let at = -1;
  w.run(20_000, STEP, () => {
    if (at < 0 && w.a.of("keepalive").length > before) at = w.now;
  });
  t.equal(at - t0, KEEPALIVE_TIMEOUT, "A answered B's data with a keepalive after 10 s");
  t.equal(w.a.of("keepalive").length, before + 1, "once");
  t.equal(w.b.of("keepalive").length, 0, "B heard only a keepalive: it owes none");

  // A sends data itself within the 10 s: no keepalive needed.
  w.sendData(w.b);
  w.run(5_000, STEP);
  w.sendData(w.a);
  w.run(10_000, STEP);
  t.equal(w.a.of("keepalive").length, before + 1, "A's own data answered, so no keepalive");
  t.end();
});

t.test("data sent and nothing heard for KEEPALIVE + REKEY_TIMEOUT (+ jitter): new handshake", (t) => {
  const w = established();
  const pa = w.peerOf(w.a);
  w.lossyFrom = w.b;
  const t0 = w.now;
  w.sendData(w.a);
  let at = -1;
  w.run(20_000, STEP, () => {
    if (at < 0 && pa.counters.handshakesInitiated > 1) at = w.now;
  });
  t.ok(at - t0 >= KEEPALIVE_TIMEOUT + REKEY_TIMEOUT && at - t0 < KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + STEP, `after ${at - t0} ms`);

  // With answers flowing, no such handshake.
  const w2 = established();
  w2.sendData(w2.a);
  w2.run(30_000, STEP);
  t.equal(w2.peerOf(w2.a).counters.handshakesInitiated, 1, "B's keepalive answered: no new handshake");
  t.end();
});

t.test("rekey after time: the initiator at 120 s, never the responder", (t) => {
  const w = established();
  const created = w.now;
  let at = -1;
  w.run(170_000, 1000, () => {
    w.sendData(w.a);
    w.sendData(w.b);
    if (at < 0 && w.peerOf(w.a).counters.handshakesInitiated > 1) at = w.now;
  });
  t.ok(at - created > REKEY_AFTER_TIME && at - created <= REKEY_AFTER_TIME + 1000, `A rekeyed after ${at - created} ms`);
  t.equal(w.peerOf(w.b).counters.handshakesInitiated, 0, "B (responder) never initiated");
  t.equal(w.peerOf(w.a).counters.handshakesInitiated, 2, "once: the new keypair is fresh");
  t.ok(w.dataLog.every((d) => d.accepted), "no data lost across the rekey");
  t.end();
});

t.test("rekey after messages: either side, past 2^60 messages", (t) => {
  const w = established();
  const pb = w.peerOf(w.b);
  w.b.device.dataSent(pb, w.now, 2 ** 60);
  t.equal(pb.counters.handshakesInitiated, 0, "exactly 2^60: not yet");
  w.now += REKEY_TIMEOUT; // B sent its response just now: initiations wait that long
  w.b.device.dataSent(pb, w.now, 1);
  t.equal(pb.counters.handshakesInitiated, 1, "past 2^60: the responder initiates");
  t.end();
});

t.test("reject after time: no sending at 180 s, received data refused past 180 s", (t) => {
  const w = established();
  const created = w.now;
  const pb = w.peerOf(w.b);
  const [slotA] = w.a.native.keys();
  w.now = created + REJECT_AFTER_TIME - 1;
  const slotB = w.b.device.sendingSlot(pb, w.now);
  t.ok(slotB >= 0, "179.999 s: still usable");
  w.now = created + REJECT_AFTER_TIME;
  t.equal(w.b.device.sendingSlot(pb, w.now), -1, "180 s: not usable for sending");
  t.equal(pb.counters.handshakesInitiated, 1, "and a handshake was asked for");
  t.ok(w.a.device.dataReceived(slotA, w.b.endpoint, w.now, false), "receiving at exactly 180 s still passes");
  t.notOk(w.a.device.dataReceived(slotA, w.b.endpoint, w.now + 1, false), "past 180 s: refused");
  t.end();
});

t.test("reject after messages: the current keypair stops at REJECT_AFTER_MESSAGES", (t) => {
  const w = established();
  const pb = w.peerOf(w.b);
  const slot = w.b.device.sendingSlot(pb, w.now);
  w.lossy = true; // keep the rekey handshake from completing
  w.b.device.dataSent(pb, w.now, 2 ** 64 - 2 ** 13 - 1 - 2048); // the nearest double below the limit
  t.equal(w.b.device.sendingSlot(pb, w.now), slot, "below the limit: usable");
  w.b.device.dataSent(pb, w.now, 4096);
  t.equal(w.b.device.sendingSlot(pb, w.now), -1, "at the limit: not");
  t.end();
});

t.test("all keys zeroed after 3 x REJECT_AFTER_TIME without a new session", (t) => {
  const w = established();
  const t0 = w.now;
  w.lossy = true;
  let at = -1;
  w.run(ZERO_KEY_MATERIAL_TIME + 1000, 100, () => {
    if (at < 0 && w.a.native.size === 0) at = w.now;
  });
  t.equal(at - t0, ZERO_KEY_MATERIAL_TIME, "A's keys removed at 540 s");
  t.equal(w.b.native.size, 0, "and B's");
  t.equal(w.a.device.slotsInUse + w.b.device.slotsInUse, 0, "every slot free");
  t.same(w.a.removals.sort(), w.a.installs.sort(), "each installed keypair removed once");
  t.end();
});

t.test("persistent keepalive every N seconds while idle, either side", (t) => {
  const w = established({ persistentKeepalive: { b: 25 } });
  const times: number[] = [];
  let seen = w.b.events.length;
  w.run(100_000, STEP, () => {
    for (const e of w.b.events.slice(seen)) if (e.kind === "keepalive") times.push(w.now);
    seen = w.b.events.length;
  });
  const gaps = times.slice(1).map((x, i) => x - times[i]);
  t.ok(times.length >= 3, `keepalives at ${times.join(",")}`);
  t.ok(gaps.every((g) => g === 25_000), "every 25 s");
  t.ok(w.dataLog.filter((d) => d.from === "B").every((d) => d.accepted));
  t.equal(w.a.of("keepalive").length, 1, "A (no persistent keepalive) sent only the handshake's");
  t.end();
});

t.test("a peer with a persistent keepalive gets a session at the first tick", (t) => {
  const w = new World({ persistentKeepalive: { a: 5 } });
  t.equal(w.a.device.nextDeadline(), -Infinity, "due at once");
  w.run(STEP, STEP);
  t.equal(w.peerOf(w.a).counters.handshakesInitiated, 1, "the keepalive found no keypair and asked for one");
  t.equal(w.a.native.size, 1);
  const before = w.a.of("keepalive").length;
  w.run(20_000, STEP);
  t.equal(w.a.of("keepalive").length, before + 4, "then one every 5 s");
  const timers = new PeerTimers(0, () => 0);
  timers.anyAuthenticatedPacketTraversal(0);
  t.equal(timers.deadlines[TimerName.PersistentKeepalive], Infinity, "interval 0: never armed");
  t.end();
});

t.test("nextDeadline is the earliest armed timer", (t) => {
  const w = established();
  t.equal(w.a.device.nextDeadline(), w.now + ZERO_KEY_MATERIAL_TIME, "idle after the handshake: only the zeroing timer");
  w.sendData(w.a);
  const next = w.a.device.nextDeadline() - w.now;
  t.ok(next >= KEEPALIVE_TIMEOUT + REKEY_TIMEOUT && next < KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX, `data sent: the new-handshake timer, in ${next} ms`);
  t.end();
});
