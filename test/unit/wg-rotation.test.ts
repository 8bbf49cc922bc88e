// Keypair rotation as wireguard-go does it, through several rekeys in both roles, checked
// against the fake native tables: which slots hold keys after each message, every installed
// keypair removed exactly once, no live slot or index shared, old keypairs still open.
import t from "tap";
import { REKEY_TIMEOUT, WG_KEYPAIR_SLOTS } from "../../src/wireguard/constants.ts";
import { WgDrop } from "../../src/wireguard/drops.ts";
import { IndexTable } from "../../src/wireguard/index-table.ts";
import type { Side } from "./lib/wg-world.ts";
import { World, established, seededRandom } from "./lib/wg-world.ts";

/** Each slot installed once more than removed iff it is live; indexes of live slots unique. */
function balanced(side: Side): boolean {
  const live = new Map<number, number>();
  for (const s of side.installs) live.set(s, (live.get(s) ?? 0) + 1);
  for (const s of side.removals) live.set(s, (live.get(s) ?? 0) - 1);
  for (const [slot, n] of live) if (n !== (side.native.has(slot) ? 1 : 0)) return false;
  const indexes = new Set([...side.native.values()].map((k) => k.localIndex));
  return indexes.size === side.native.size && side.device.slotsInUse >= side.native.size;
}

/** Makes `side` initiate now (past REKEY_AFTER_MESSAGES), after waiting out REKEY_TIMEOUT. */
function rekeyFrom(w: World, side: Side): void {
  w.now += REKEY_TIMEOUT + 1;
  side.device.dataSent(w.peerOf(side), w.now, 2 ** 60 + 2 ** 10);
}

/** The slots holding keys, as a set, for comparisons. */
const slots = (side: Side): number[] => [...side.native.keys()].sort((x, y) => x - y);

t.test("several rekeys, alternating roles: current/previous/next as wireguard-go", (t) => {
  const w = established();
  t.ok(w.sendData(w.a) && w.sendData(w.b));

  for (let round = 0; round < 6; round++) {
    const init = round % 2 === 0 ? w.a : w.b;
    const resp = w.other(init);
    const label = `round ${round} (${init.name} initiates)`;
    const initBefore = slots(init);
    const respBefore = slots(resp);
    const initCurrent = init.device.sendingSlot(w.peerOf(init), w.now);
    const respCurrent = resp.device.sendingSlot(w.peerOf(resp), w.now);

    rekeyFrom(w, init);
    const initiation = init.of("send").at(-1)!.msg;
    t.equal(initiation[0], 1, `${label}: initiation sent`);
    t.equal(resp.device.handshakeMessage(initiation, init.endpoint, w.now), WgDrop.None);
    const next = resp.of("install").at(-1)!.slot;
    t.same(slots(resp), [respCurrent, next].sort((x, y) => x - y), `${label}: responder holds current + next (previous retired)`);
    t.equal(resp.device.sendingSlot(w.peerOf(resp), w.now), respCurrent, `${label}: responder still sends with current`);
    t.ok(respBefore.includes(respCurrent));

    const response = resp.of("send").at(-1)!.msg;
    init.readyReturns = true; // hold the keepalive back to look at the in-between state
    t.equal(init.device.handshakeMessage(response, resp.endpoint, w.now), WgDrop.None);
    init.readyReturns = false;
    const fresh = init.of("install").at(-1)!.slot;
    t.same(slots(init), [initCurrent, fresh].sort((x, y) => x - y), `${label}: initiator holds previous (old current) + current`);
    t.equal(init.device.sendingSlot(w.peerOf(init), w.now), fresh, `${label}: initiator sends with the new keypair at once`);
    t.ok(initBefore.includes(initCurrent));

    // A late message on the responder's old current still opens, and does not promote.
    t.ok(w.sendData(resp), `${label}: responder data on its old keypair`);
    t.equal(resp.device.sendingSlot(w.peerOf(resp), w.now), respCurrent);
    // The initiator's first data on the new keypair promotes `next`.
    t.ok(w.sendData(init));
    t.equal(resp.device.sendingSlot(w.peerOf(resp), w.now), next, `${label}: next promoted on first data`);
    t.same(slots(resp), [respCurrent, next].sort((x, y) => x - y), `${label}: responder holds previous + current`);
    t.ok(w.sendData(resp) && w.sendData(init));
    t.ok(w.dataLog.every((d) => d.accepted), `${label}: all data accepted`);
    t.ok(balanced(w.a) && balanced(w.b), `${label}: each keypair removed once, no live slot shared`);
    w.deliver();
  }
  t.equal(w.a.device.slotsInUse, 2);
  t.equal(w.b.device.slotsInUse, 2);

  t.ok(w.a.device.removePeer(w.b.publicKey));
  t.ok(w.b.device.removePeer(w.a.publicKey));
  t.notOk(w.a.device.removePeer(w.b.publicKey), "already gone");
  t.equal(w.a.native.size + w.b.native.size, 0, "removing the peer removed its keypairs");
  t.equal(w.a.device.slotsInUse + w.b.device.slotsInUse, 0);
  t.same([...w.a.removals].sort(), [...w.a.installs].sort(), "A: every keypair removed exactly once");
  t.same([...w.b.removals].sort(), [...w.b.installs].sort(), "B: likewise");
  t.ok([...w.a.installs, ...w.b.installs].every((s) => s >= 0 && s < WG_KEYPAIR_SLOTS));
  t.end();
});

t.test("initiator with an unconfirmed next keypair: it becomes previous, current retires", (t) => {
  const w = established();
  /** Hands the last message `from` sent to the other side (outside World.deliver). */
  const pass = (from: Side): number => w.other(from).device.handshakeMessage(from.of("send").at(-1)!.msg, from.endpoint, w.now);
  // B initiates; A responds (A: next); B's confirming data never comes.
  const aCurrent = w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  rekeyFrom(w, w.b);
  t.equal(pass(w.b), WgDrop.None);
  const aNext = w.a.of("install").at(-1)!.slot;
  t.not(aCurrent, aNext);
  w.b.readyReturns = true;
  t.equal(pass(w.a), WgDrop.None);
  // Now A initiates before any data arrived on its next keypair.
  rekeyFrom(w, w.a);
  t.equal(pass(w.a), WgDrop.None);
  w.a.readyReturns = true;
  t.equal(pass(w.b), WgDrop.None);
  const aNew = w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  t.same(slots(w.a), [aNext, aNew].sort((x, y) => x - y), "A: previous = the old next, current = new");
  t.ok(w.a.removals.includes(aCurrent), "the old current was retired");
  t.ok(balanced(w.a) && balanced(w.b));
  t.end();
});

t.test("simultaneous initiations converge after a retransmission", (t) => {
  const w = new World();
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.b.device.sendingSlot(w.peerOf(w.b), w.now);
  w.deliver();
  t.equal(w.a.device.drops[WgDrop.UnknownIndex] + w.b.device.drops[WgDrop.UnknownIndex], 2, "each response named a superseded handshake");
  // Each side retransmits after REKEY_TIMEOUT + its own jitter; the first to fire wins
  // (1 ms steps, so the two draws are told apart).
  w.run(2 * REKEY_TIMEOUT, 1);
  t.ok(w.sendData(w.a) && w.sendData(w.b), "both have a session");
  t.ok(w.dataLog.every((d) => d.accepted));
  t.ok(balanced(w.a) && balanced(w.b));
  t.end();
});

t.test("setPrivateKey drops every session; the old peer no longer knows us", (t) => {
  const w = established();
  const installed = w.a.installs.length;
  w.a.device.setPrivateKey(new Uint8Array(32).fill(0x42));
  t.equal(w.a.native.size, 0, "all keypairs removed");
  t.equal(w.a.removals.length, installed);
  t.equal(w.a.device.slotsInUse, 0);
  t.equal(w.a.device.sendingSlot(w.peerOf(w.a), w.now), -1);
  t.equal(w.a.of("send").at(-1)!.msg[0], 1, "a new initiation goes out at once");
  t.equal(w.b.device.handshakeMessage(w.a.of("send").at(-1)!.msg, w.a.endpoint, w.now), WgDrop.UnknownPeer);
  t.end();
});

t.test("the slot table: indexes carry their slot, freed slots go last, a full table refuses", (t) => {
  const table = new IndexTable<string>(seededRandom(4));
  const first = Array.from({ length: WG_KEYPAIR_SLOTS }, () => table.allocate("p")!);
  t.same(first.map((e) => e.slot), Array.from({ length: WG_KEYPAIR_SLOTS }, (_, i) => i), "every slot once");
  t.ok(first.every((e) => (e.index & 0xfff) === e.slot && e.index >>> 0 === e.index), "index = random 20 bits << 12 | slot");
  t.ok(new Set(first.map((e) => e.index >>> 12)).size > 4000, "the high bits vary");
  t.equal(table.allocate("p"), null, "full");
  t.equal(table.lookup(first[7].index)?.peer, "p");
  t.equal(table.lookup((first[7].index ^ 0x1000) >>> 0), null, "same slot, other index: no match");
  table.free(7);
  table.free(9);
  t.throws(() => table.free(7), /slot 7 freed twice/);
  t.equal(table.lookup(first[7].index), null);
  t.equal(table.allocate("q")!.slot, 7, "freed slots come back in the order they were freed");
  t.equal(table.allocate("q")!.slot, 9);
  t.equal(table.used, WG_KEYPAIR_SLOTS);
  t.end();
});

t.test("each handshake in flight has its own slot; removing the peer frees it", (t) => {
  const w = new World();
  const peers = Array.from({ length: 5 }, (_, i) => {
    const key = new Uint8Array(32).fill(i + 1);
    key[0] = 9;
    return w.a.device.addPeer({ name: `p${i}`, publicKey: key, endpoint: w.b.endpoint });
  });
  for (const p of peers) w.a.device.sendingSlot(p, w.now);
  const indexes = w.a.of("send").map((e) => Buffer.from(e.msg).readUInt32LE(4));
  t.equal(new Set(indexes.map((i) => i & 0xfff)).size, 5, "each handshake its own slot");
  t.equal(w.a.device.slotsInUse, 5);
  t.ok(w.a.device.removePeer(peers[0].publicKey));
  t.equal(w.a.device.slotsInUse, 4, "a removed peer's handshake slot is freed");
  t.end();
});
