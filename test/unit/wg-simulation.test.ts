// Two devices exchanging data over simulated minutes: sessions renew every REKEY_AFTER_TIME
// with no data refused, an outage ends in giving up and a later recovery, and the endpoint
// follows a peer that moves, but only on authenticated messages.
import t from "tap";
import { REKEY_AFTER_TIME } from "../../src/wireguard/constants.ts";
import { WgDrop } from "../../src/wireguard/drops.ts";
import { formatEndpoint } from "../../src/net/address.ts";
import { World, established } from "./lib/wg-world.ts";

t.test("ten minutes of traffic both ways: rekeys by the initiator only, nothing refused", (t) => {
  const w = new World();
  const pa = w.peerOf(w.a);
  const pb = w.peerOf(w.b);
  let refusedSends = 0;
  let maxLive = 0;
  const handshakeTimes: number[] = [];
  let tick = 0;
  w.sendData(w.a); // the first packet asks for the session
  w.deliver();
  w.run(600_000, 250, () => {
    if (++tick % 4 === 0) {
      if (!w.sendData(w.a, 5)) refusedSends++;
      if (!w.sendData(w.b, 3)) refusedSends++;
    }
    maxLive = Math.max(maxLive, w.a.native.size, w.b.native.size);
    if (handshakeTimes.at(-1) !== pa.counters.lastHandshakeTime) handshakeTimes.push(pa.counters.lastHandshakeTime);
  });
  t.equal(refusedSends, 0, "a sending keypair was always there");
  t.ok(w.dataLog.length > 4000);
  t.ok(w.dataLog.every((d) => d.accepted), "every data message accepted");
  t.equal(pa.counters.handshakesInitiated, 5, "A: the first handshake and one per 120 s (600 s)");
  t.equal(pb.counters.handshakesInitiated, 0, "B (responder) never had to");
  t.equal(pb.counters.handshakesCompleted, 5);
  t.ok(maxLive <= 3, `at most previous + current + next live (${maxLive})`);
  const gaps = handshakeTimes.slice(2).map((x, i) => x - handshakeTimes[i + 1]);
  t.ok(gaps.every((g) => g > REKEY_AFTER_TIME && g <= REKEY_AFTER_TIME + 1000), `rekeys ${gaps.join(",")} ms apart`);
  t.equal(w.a.of("gaveUp").length + w.b.of("gaveUp").length, 0);
  t.end();
});

t.test("an outage with traffic: A keeps asking (each packet restarts the attempts), recovers at once", (t) => {
  const w = established();
  const pa = w.peerOf(w.a);
  w.run(10_000);
  w.lossy = true;
  let sent = 0;
  w.run(300_000, 250, () => {
    if (w.now % 1000 === 0 && w.sendData(w.a)) sent++;
  });
  t.ok(sent > 150 && sent < 180, `A sent on its keypair until REJECT_AFTER_TIME (${sent} s), then staged`);
  t.equal(w.a.of("gaveUp").length, 0, "packets kept coming: no giving up (as wireguard-go)");
  t.ok(pa.counters.handshakesInitiated > 20);
  w.lossy = false;
  w.run(6_000, 250, () => void w.sendData(w.a));
  t.ok(w.sendData(w.a) && w.sendData(w.b), "session back within one retransmission");
  t.end();
});

t.test("an outage without traffic: A gives up and staged packets are dropped; the next packet starts over", (t) => {
  const w = new World();
  const pa = w.peerOf(w.a);
  w.lossy = true;
  t.notOk(w.sendData(w.a));
  w.run(120_000);
  t.equal(w.a.of("gaveUp").length, 1);
  t.equal(pa.counters.handshakesFailed, 1);
  w.lossy = false;
  t.notOk(w.sendData(w.a), "no keypair: a handshake is asked for at once");
  w.deliver();
  t.ok(w.sendData(w.a) && w.sendData(w.b), "session back");
  t.end();
});

t.test("roaming: the endpoint follows authenticated messages only", (t) => {
  const w = established();
  const pa = w.peerOf(w.a);
  const home = formatEndpoint(w.b.endpoint);
  t.equal(formatEndpoint(pa.endpoint!), home);

  // A cookie reply or junk from elsewhere does not move it.
  const elsewhere = Uint8Array.from(w.b.endpoint);
  elsewhere[7] = 99;
  const junk = new Uint8Array(64);
  junk[0] = 3;
  t.equal(w.a.device.handshakeMessage(junk, elsewhere, w.now), WgDrop.UnknownIndex);
  t.equal(w.a.device.dataReceived(4095, elsewhere, w.now, false), false, "data on an empty slot: refused");
  t.equal(formatEndpoint(pa.endpoint!), home);

  // B moves (new address and port): its next data message moves A's endpoint.
  w.b.endpoint[7] = 42;
  w.b.endpoint[3] ^= 1;
  t.ok(w.sendData(w.b));
  t.equal(formatEndpoint(pa.endpoint!), formatEndpoint(w.b.endpoint), "moved to the new source");
  t.not(formatEndpoint(pa.endpoint!), home);
  t.ok(w.sendData(w.a));
  t.ok(w.dataLog.every((d) => d.accepted));
  t.end();
});
