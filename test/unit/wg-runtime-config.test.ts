// WgDevice configured at run time, as the configuration API does it: a device with no private
// key (wireguard-go's start state) refuses handshakes silently and sends none; a key set later
// lets them through; a preshared key change applies to the next handshake only; a keepalive
// turned on goes at once; initiateHandshake ignores REKEY_TIMEOUT; handshake bytes are reported.
import t from "tap";
import { WgDrop } from "../../src/wireguard/drops.ts";
import { World } from "./lib/wg-world.ts";

/** A world whose B starts with no private key. */
function keylessB(): World {
  const w = new World();
  w.b.device.setPrivateKey(null);
  return w;
}

t.test("no private key: initiations refused silently, none sent, until a key is set", (t) => {
  const w = keylessB();
  t.equal(w.b.device.publicKey, null, "no public key");
  const pb = w.peerOf(w.b);
  t.equal(w.b.device.sendingSlot(pb, w.now), -1, "no session");
  t.equal(w.b.of("send").length, 0, "and no initiation sent");
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.deliver();
  t.equal(w.b.device.drops[WgDrop.BadMac1], 1, "A's initiation is not for a keyless device");
  t.equal(w.b.of("send").length, 0, "nothing answered");

  w.b.device.setPrivateKey(w.b.privateKey);
  t.same(w.b.device.publicKey, w.b.publicKey, "the key's public key");
  w.now += 5001;
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.deliver();
  t.equal(w.a.native.size, 1, "the handshake completes with the key set");
  t.equal(w.peerOf(w.b).counters.handshakesCompleted, 1);
  t.end();
});

t.test("handshake messages sent name their peer; received ones report their size", (t) => {
  const w = new World();
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.deliver();
  t.same(w.a.of("send").map((e) => [e.peer, e.msg.length]), [[w.peerOf(w.a), 148]], "A's initiation, for B");
  t.same(w.b.of("send").map((e) => [e.peer, e.msg.length]), [[w.peerOf(w.b), 92]], "B's response, for A");
  t.same(w.b.of("handshakeReceived").map((e) => [e.peer, e.bytes]), [[w.peerOf(w.b), 148]], "B heard A's initiation");
  t.same(w.a.of("handshakeReceived").map((e) => [e.peer, e.bytes]), [[w.peerOf(w.a), 92]], "A heard B's response");
  t.end();
});

t.test("a new preshared key: the session goes on; the next handshake needs both ends to agree", (t) => {
  const w = new World();
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.deliver();
  const before = w.peerOf(w.a).counters.handshakesCompleted;
  const psk = new Uint8Array(32).fill(9);
  w.a.device.setPresharedKey(w.peerOf(w.a), psk);
  t.ok(w.sendData(w.a, 2), "the session in use goes on");
  t.equal(w.peerOf(w.a).counters.handshakesCompleted, before, "no new handshake");
  w.now += 6000;
  w.a.device.initiateHandshake(w.peerOf(w.a), w.now);
  w.deliver();
  t.equal(w.peerOf(w.b).counters.handshakesCompleted, before, "B (old psk) cannot complete it");
  w.b.device.setPresharedKey(w.peerOf(w.b), psk);
  w.now += 6000;
  w.a.device.initiateHandshake(w.peerOf(w.a), w.now);
  w.deliver();
  t.equal(w.peerOf(w.a).counters.handshakesCompleted, before + 1, "with both agreeing it does");
  t.throws(() => w.a.device.setPresharedKey(w.peerOf(w.a), new Uint8Array(31)), /presharedKey: 31 bytes/);
  t.end();
});

t.test("initiateHandshake sends at once, whatever REKEY_TIMEOUT says", (t) => {
  const w = new World();
  const pa = w.peerOf(w.a);
  w.a.device.sendingSlot(pa, w.now);
  t.equal(w.a.of("send").length, 1);
  w.a.device.sendingSlot(pa, w.now + 10);
  t.equal(w.a.of("send").length, 1, "an ordinary ask waits for REKEY_TIMEOUT");
  w.a.device.initiateHandshake(pa, w.now + 20);
  t.equal(w.a.of("send").length, 2, "initiateHandshake does not");
  t.equal(w.a.of("send")[1].msg.length, 148, "an initiation");
  t.end();
});

t.test("a persistent keepalive turned on goes at once; changed or off, it does not", (t) => {
  const w = new World();
  const pa = w.peerOf(w.a);
  w.a.device.sendingSlot(pa, w.now);
  w.deliver();
  const keepalives = () => w.a.of("keepalive").length;
  const k0 = keepalives();
  w.a.device.setPersistentKeepalive(pa, 25, w.now);
  t.equal(keepalives(), k0 + 1, "turned on: one at once");
  w.a.device.setPersistentKeepalive(pa, 10, w.now);
  t.equal(keepalives(), k0 + 1, "a new interval: none extra");
  w.a.device.setPersistentKeepalive(pa, 0, w.now);
  t.equal(keepalives(), k0 + 1, "off: none");
  t.throws(() => w.a.device.setPersistentKeepalive(pa, 65536, w.now), /persistentKeepalive 65536/);
  t.end();
});

t.test("hasSession: false until a handshake completes, true after (the rebind re-initiates only such peers)", (t) => {
  const w = new World();
  const pa = w.peerOf(w.a);
  t.equal(w.a.device.hasSession(pa), false, "a new peer has no session");
  w.a.device.sendingSlot(pa, w.now);
  t.equal(w.a.device.hasSession(pa), false, "an initiation in flight is not a session");
  w.deliver();
  t.equal(w.a.device.hasSession(pa), true, "the initiator has one once the response arrived");
  t.end();
});
