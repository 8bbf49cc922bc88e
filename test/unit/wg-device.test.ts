// WgDevice's handshake path between two devices wired through recording effects: the full
// exchange, and every refusal (size, MAC1, cookies under load, rate limit, replay, flood,
// unknown index, unknown peer) with what is (not) sent and what is counted.
import t from "tap";
import { WgDevice } from "../../src/wireguard/device.ts";
import { WG_DROP_LABELS, WgDrop } from "../../src/wireguard/drops.ts";
import { CookieGenerator } from "../../src/wireguard/cookie.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/x25519.ts";
import { Side, World, seededRandom } from "./lib/wg-world.ts";
import { peerState } from "../../src/wireguard/peer.ts";
import { TimerName } from "../../src/wireguard/timers.ts";
import { KEEPALIVE_TIMEOUT, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX } from "../../src/wireguard/constants.ts";

/** The last message A sent (a copy). */
function lastSent(side: Side): Uint8Array {
  const sends = side.of("send");
  return sends[sends.length - 1].msg;
}

t.test("full exchange: initiation, response, keypairs installed, keepalive confirms, both send", (t) => {
  const w = new World();
  const pa = w.peerOf(w.a);
  const pb = w.peerOf(w.b);
  t.equal(w.a.device.sendingSlot(pa, w.now), -1, "no keypair yet: -1 and a handshake asked for");
  t.equal(w.a.of("send").length, 1);
  t.equal(w.a.of("send")[0].msg.length, 148);
  t.same(w.a.of("send")[0].to, w.b.endpoint);
  t.equal(w.a.device.sendingSlot(pa, w.now + 100), -1);
  t.equal(w.a.of("send").length, 1, "a second ask within REKEY_TIMEOUT sends nothing");
  t.equal(pa.counters.handshakesInitiated, 1);

  w.deliver();
  t.equal(w.b.native.size, 1, "responder installed its keypair");
  t.equal(w.a.native.size, 1, "initiator installed its keypair");
  t.equal(w.a.of("ready").length, 1, "initiator: keypair ready");
  t.equal(w.a.of("keepalive").length, 1, "initiator confirms with a keepalive (nothing was flushed)");
  t.equal(w.b.of("ready").length, 1, "responder: ready once the keepalive arrived on its keypair");
  t.equal(pa.counters.handshakesCompleted, 1);
  t.equal(pb.counters.handshakesCompleted, 1);
  t.equal(pa.counters.lastHandshakeTime, w.wallEpochMs + w.now);
  t.same(w.dataLog.map((d) => d.accepted), [true]);

  const [slotA] = w.a.native.keys();
  const [slotB] = w.b.native.keys();
  t.equal(w.a.device.sendingSlot(pa, w.now), slotA);
  t.equal(w.b.device.sendingSlot(pb, w.now), slotB);
  t.equal(w.a.native.get(slotA)!.remoteIndex, w.b.native.get(slotB)!.localIndex, "indexes cross");
  t.same(w.a.native.get(slotA)!.sendKey, w.b.native.get(slotB)!.recvKey, "keys cross");
  t.ok(w.sendData(w.a, 3) && w.sendData(w.b, 2));
  t.ok(w.dataLog.every((d) => d.accepted));
  t.equal(w.b.device.peerOfSlot(slotB), pb);
  t.equal(w.b.device.peerOfSlot((slotB + 1) % 4096), null);
  t.equal(w.a.device.drops[WgDrop.None], 1, "A processed one handshake message (the response)");
  t.notMatch(JSON.stringify(w.a.device), Buffer.from(w.a.privateKey).toString("hex"), "no key in toJSON");
  t.end();
});

t.test("keypairReady returning true: the flushed data confirms, no extra keepalive", (t) => {
  const w = new World();
  w.a.readyReturns = true;
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.deliver();
  t.equal(w.a.of("ready").length, 1);
  t.equal(w.a.of("keepalive").length, 0);
  t.end();
});

t.test("bad size and bad MAC1: silence, counted", (t) => {
  const w = new World();
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  const init = lastSent(w.a);
  t.equal(w.b.device.handshakeMessage(init.subarray(0, 147), w.a.endpoint, w.now), WgDrop.BadSize);
  t.equal(w.b.device.handshakeMessage(new Uint8Array(32).fill(4), w.a.endpoint, w.now), WgDrop.BadSize, "a data message is not a handshake");
  const bad = Uint8Array.from(init);
  bad[116] ^= 1; // first byte of mac1
  t.equal(w.b.device.handshakeMessage(bad, w.a.endpoint, w.now), WgDrop.BadMac1);
  const body = Uint8Array.from(init);
  body[20] ^= 1; // inside the ephemeral key: MAC1 no longer covers it
  t.equal(w.b.device.handshakeMessage(body, w.a.endpoint, w.now), WgDrop.BadMac1);
  t.equal(w.b.of("send").length, 0, "nothing sent back");
  t.equal(w.b.device.drops[WgDrop.BadMac1], 2);
  t.equal(w.b.device.drops[WgDrop.BadSize], 2);
  t.equal(WG_DROP_LABELS[WgDrop.BadMac1], "bad_mac1");
  t.end();
});

t.test("wrong peer key: nothing sent", (t) => {
  const w = new World();
  // C knows B's public key (so MAC1 passes) but B does not know C.
  const cKey = generatePrivateKey();
  const c = new Side("C", "198.18.0.3", 51822);
  c.device = new WgDevice({
    privateKey: cKey, effects: c.effects(), random: seededRandom(9),
    peers: [{ name: "B", publicKey: w.b.publicKey, endpoint: w.b.endpoint }],
  });
  c.device.sendingSlot(c.device.peers[0], w.now);
  t.equal(w.b.device.handshakeMessage(lastSent(c), c.endpoint, w.now), WgDrop.UnknownPeer);
  // D is configured with a wrong key for B: its MAC1 is keyed for someone else.
  const d = new Side("D", "198.18.0.4", 51823);
  d.device = new WgDevice({
    privateKey: generatePrivateKey(), effects: d.effects(), random: seededRandom(10),
    peers: [{ name: "B", publicKey: publicKeyOf(generatePrivateKey()), endpoint: w.b.endpoint }],
  });
  d.device.sendingSlot(d.device.peers[0], w.now);
  t.equal(w.b.device.handshakeMessage(lastSent(d), d.endpoint, w.now), WgDrop.BadMac1);
  t.equal(w.b.of("send").length, 0);
  t.equal(w.b.native.size, 0);
  t.equal(w.b.device.slotsInUse, 0);
  t.end();
});

t.test("replayed initiation: refused, nothing sent, endpoint unchanged", (t) => {
  const w = new World();
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  const init = lastSent(w.a);
  w.deliver();
  const sends = w.b.of("send").length;
  w.now += 60_000;
  const elsewhere = Uint8Array.from(w.a.endpoint);
  elsewhere[3] ^= 1; // another port
  t.equal(w.b.device.handshakeMessage(init, elsewhere, w.now), WgDrop.ReplayedTimestamp);
  t.equal(w.b.of("send").length, sends);
  t.same(w.peerOf(w.b).endpoint, w.a.endpoint, "a replay does not move the endpoint");
  t.end();
});

t.test("flood: a second fresh initiation within 20 ms is refused", (t) => {
  const w = new World();
  // A2 has A's key and a later wall clock: its initiation is fresh but arrives 10 ms later.
  const a2 = new Side("A2", "198.18.0.9", 51829);
  a2.device = new WgDevice({
    privateKey: w.a.privateKey, effects: a2.effects(), random: seededRandom(5),
    wallClock: () => BigInt(w.wallEpochMs + w.now + 1000) * 1_000_000n,
    peers: [{ name: "B", publicKey: w.b.publicKey, endpoint: w.b.endpoint }],
  });
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  a2.device.sendingSlot(a2.device.peers[0], w.now);
  t.equal(w.b.device.handshakeMessage(lastSent(w.a), w.a.endpoint, w.now), WgDrop.None);
  t.equal(w.b.device.handshakeMessage(lastSent(a2), a2.endpoint, w.now + 10), WgDrop.Flood);
  t.equal(w.b.device.handshakeMessage(lastSent(a2), a2.endpoint, w.now + 21), WgDrop.None, "after 20 ms it is taken");
  t.end();
});

t.test("response to an unknown index: refused", (t) => {
  const w = new World();
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.b.device.handshakeMessage(lastSent(w.a), w.a.endpoint, w.now);
  const response = lastSent(w.b);
  // Another receiver index, re-MACed as B would, so only the index is wrong.
  const forged = Uint8Array.from(response);
  forged[11] ^= 0x80;
  new CookieGenerator(w.a.publicKey).addMacs(forged, w.now);
  t.equal(w.a.device.handshakeMessage(forged, w.b.endpoint, w.now), WgDrop.UnknownIndex);
  t.equal(w.a.device.handshakeMessage(response, w.b.endpoint, w.now), WgDrop.None);
  t.equal(w.a.device.handshakeMessage(response, w.b.endpoint, w.now), WgDrop.UnknownIndex, "the same response twice: its handshake is a keypair now");
  t.equal(w.a.native.size, 1);
  t.end();
});

t.test("under load: cookie reply, initiator stores the cookie, retries with MAC2, accepted", (t) => {
  const w = new World({ loadThreshold: { b: 0 } });
  const pa = w.peerOf(w.a);
  w.a.device.sendingSlot(pa, w.now);
  w.deliver();
  t.equal(w.b.device.drops[WgDrop.CookieSent], 1, "B answered with a cookie reply");
  t.equal(w.b.of("send")[0].msg.length, 64);
  t.same(w.b.of("send")[0].to, w.a.endpoint, "to the message's source");
  t.equal(w.b.native.size, 0, "and did nothing else");
  t.equal(pa.counters.cookiesReceived, 1, "A took the cookie");
  t.equal(w.a.device.drops[WgDrop.None], 1);

  w.run(5_400, 50);
  t.equal(pa.counters.handshakesInitiated, 2, "A retransmitted");
  t.equal(w.b.device.drops[WgDrop.None], 1, "the retry, with MAC2, was processed");
  t.equal(pa.counters.handshakesCompleted, 1);
  t.ok(w.sendData(w.a) && w.sendData(w.b));

  // A stale cookie reply (not an answer to A's last MAC1) does not open.
  const reply = w.b.of("send")[0].msg;
  t.equal(w.a.device.handshakeMessage(reply, w.b.endpoint, w.now), WgDrop.UnknownIndex, "its index is gone");
  t.end();
});

t.test("under load with valid MAC2: rate limited per source IP after a burst of 5", (t) => {
  const w = new World({ loadThreshold: { b: 0 } });
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.deliver(); // cookie reply consumed by A
  w.run(5_400, 50);
  const withMac2 = w.a.of("send").map((e) => e.msg).filter((m) => m[0] === 1)[1];
  t.notOk(withMac2.subarray(132).every((b) => b === 0), "the retry carries MAC2");
  const results = Array.from({ length: 7 }, () => w.b.device.handshakeMessage(withMac2, w.a.endpoint, w.now));
  t.same(results.slice(0, 4), [WgDrop.ReplayedTimestamp, WgDrop.ReplayedTimestamp, WgDrop.ReplayedTimestamp, WgDrop.ReplayedTimestamp], "the retry took 1 of the burst of 5; 4 more are processed (and refused as replays)");
  t.same(results.slice(4), [WgDrop.RateLimited, WgDrop.RateLimited, WgDrop.RateLimited]);
  t.end();
});

t.test("load is sticky for a second after the threshold is passed", (t) => {
  const w = new World({ loadThreshold: { b: 2 } });
  const junk = new Uint8Array(148);
  junk[0] = 1;
  for (let i = 0; i < 3; i++) w.b.device.handshakeMessage(junk, w.a.endpoint, w.now); // bad MAC1, but counted as load
  w.now += 900;
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  t.equal(w.b.device.handshakeMessage(lastSent(w.a), w.a.endpoint, w.now), WgDrop.CookieSent, "still under load 900 ms later");
  w.now += 1_000;
  t.equal(w.b.device.handshakeMessage(lastSent(w.a), w.a.endpoint, w.now), WgDrop.None, "a second after the last overload: processed");
  t.end();
});

t.test("configuration errors name the field and the value", (t) => {
  const w = new World();
  t.throws(() => w.a.device.addPeer({ name: "x", publicKey: new Uint8Array(31) }), /peer x: publicKey: 31 bytes, expected 32 bytes/);
  t.throws(() => w.a.device.addPeer({ name: "y", publicKey: w.b.publicKey }), /already another peer's/);
  t.throws(() => w.a.device.addPeer({ name: "z", publicKey: w.a.publicKey }), /this device's own/);
  t.throws(() => w.a.device.addPeer({ name: "k", publicKey: publicKeyOf(generatePrivateKey()), persistentKeepalive: -1 }), /persistentKeepalive -1/);
  t.throws(() => new WgDevice({ privateKey: new Uint8Array(8), peers: [], effects: w.a.effects() }), /privateKey: 8 bytes/);
  t.end();
});

t.test("timer jitter under a TCP-like flow: drawn per send, random fetched in blocks, still spread", (t) => {
  // Each answer disarms A's new-handshake timer and A's next send re-arms it with jitter:
  // a random call per draw was an allocation per send batch on the data path.
  const w = new World();
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.deliver();
  const before = w.a.randomDraws.length;
  const timers = peerState(w.peerOf(w.a)).timers;
  const waits = new Set<number>();
  const rounds = 1000;
  for (let i = 0; i < rounds; i++) {
    if (!w.sendData(w.a)) t.fail("A has no session");
    const wait = timers.deadlines[TimerName.NewHandshake] - w.now;
    if (!(wait >= KEEPALIVE_TIMEOUT + REKEY_TIMEOUT && wait < KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX)) t.fail(`wait ${wait} out of range`);
    waits.add(wait);
    w.sendData(w.b);
    if (timers.pending(TimerName.NewHandshake)) t.fail("B's answer did not disarm A's new-handshake timer");
  }
  const calls = w.a.randomDraws.length - before;
  t.ok(calls >= 1 && calls <= Math.ceil(rounds / 256) + 1, `${rounds} jitter draws took ${calls} random calls`);
  t.ok(waits.size > 200, `${waits.size} distinct waits of ${REKEY_TIMEOUT_JITTER_MAX} possible`);
  t.end();
});
