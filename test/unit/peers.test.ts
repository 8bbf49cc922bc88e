import t from "tap";
import { Peer, PeerTable } from "../../src/tunnel/peers.ts";
import { ENDPOINT_BYTES, encodeEndpoint, parseIp, parsePrefix } from "../../src/net/address.ts";
import type { IpAddress, Prefix } from "../../src/net/address.ts";

function prefix(s: string): Prefix {
  const p = parsePrefix(s);
  if (!p) throw new Error(`bad test prefix ${s}`);
  return p;
}

function ip(s: string): IpAddress {
  const r = parseIp(s);
  if (!r) throw new Error(`bad test address ${s}`);
  return r;
}

/** "1.2.3.4:5" or "[::1]:5" as the 20-byte endpoint form. */
function ep(s: string): Uint8Array {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  if (!m) throw new Error(`bad test endpoint ${s}`);
  return encodeEndpoint(ip(m[1]), Number(m[2]));
}

function peer(name: string, allowed: string[], endpoint?: string): Peer {
  const p = new Peer(name, allowed.map(prefix));
  if (endpoint !== undefined) p.endpoint = ep(endpoint);
  return p;
}

function routeTo(table: PeerTable, addr: string): string | null {
  const a = ip(addr);
  return table.route(a.bytes, 0, a.family)?.name ?? null;
}

function from(table: PeerTable, endpoint: string): string | null {
  return table.fromEndpoint(ep(endpoint), 0)?.name ?? null;
}

t.test("Peer starts with no endpoint and zero counters", (t) => {
  const p = new Peer("x", [prefix("10.0.0.1/32")]);
  t.equal(p.endpoint, null);
  t.same([p.txPackets, p.txBytes, p.rxPackets, p.rxBytes, p.rxKeepalives], [0, 0, 0, 0, 0]);
  t.end();
});

t.test("route() by inner destination, longest prefix across peers", (t) => {
  const a = peer("a", ["10.77.0.2/32", "fd77::2/128"], "192.0.2.1:51820");
  const b = peer("b", ["10.77.0.0/24", "fd77::/64"], "192.0.2.2:51820");
  const c = peer("c", ["0.0.0.0/0"]);
  const table = new PeerTable([a, b, c]);
  t.equal(routeTo(table, "10.77.0.2"), "a");
  t.equal(routeTo(table, "10.77.0.3"), "b");
  t.equal(routeTo(table, "10.77.1.1"), "c", "the default route catches the rest of IPv4");
  t.equal(routeTo(table, "fd77::2"), "a");
  t.equal(routeTo(table, "fd77::3"), "b");
  t.equal(routeTo(table, "fd78::1"), null, "no IPv6 default");
  t.equal(table.route(ip("10.77.0.2").bytes, 0, 4), a, "returns the Peer object itself");
  t.equal(table.peers.length, 3);

  // Destination read straight out of a packet in a slab.
  const slab = new Uint8Array(200).fill(0xff);
  slab.set([10, 77, 0, 2], 64 + 16);
  t.equal(table.route(slab, 64 + 16, 4), a);
  t.end();
});

t.test("fromEndpoint(): exact match on address and port, IPv4", (t) => {
  const a = peer("a", ["10.77.0.2/32"], "192.0.2.1:51820");
  const b = peer("b", ["10.77.0.3/32"], "192.0.2.1:51821"); // same address, next port
  const c = peer("c", ["10.77.0.4/32"], "192.0.2.3:51820");
  const table = new PeerTable([a, b, c]);
  t.equal(from(table, "192.0.2.1:51820"), "a");
  t.equal(from(table, "192.0.2.1:51821"), "b", "same address, other port is the other peer");
  t.equal(from(table, "192.0.2.3:51820"), "c");
  t.equal(from(table, "192.0.2.1:51822"), null, "right address, wrong port");
  t.equal(from(table, "192.0.2.3:51821"), null, "known address and known port, but not together");
  t.equal(from(table, "192.0.2.2:51820"), null, "right port, wrong address");
  t.equal(from(table, "192.0.2.1:0"), null);
  t.equal(table.fromEndpoint(ep("192.0.2.1:51820"), 0), a, "returns the Peer object itself");
  t.end();
});

t.test("fromEndpoint(): IPv6 endpoints, and no confusion between families", (t) => {
  const a = peer("a", ["fd77::2/128"], "[2001:db8::2]:51820");
  const b = peer("b", ["10.77.0.3/32"], "32.1.13.184:51820"); // 0x20 0x01 0x0d 0xb8: 2001:db8 as IPv4
  const table = new PeerTable([a, b]);
  t.equal(from(table, "[2001:db8::2]:51820"), "a");
  t.equal(from(table, "[2001:db8::2]:51821"), null, "wrong port");
  t.equal(from(table, "[2001:db8::3]:51820"), null, "last byte differs");
  t.equal(from(table, "[2001:db9::2]:51820"), null, "a middle byte differs");
  t.equal(from(table, "32.1.13.184:51820"), "b");
  t.equal(from(table, "[2001:db8::]:51820"), null);
  t.end();
});

t.test("fromEndpoint() reads at an offset in a batch of endpoints", (t) => {
  const a = peer("a", ["10.77.0.2/32"], "198.18.0.2:51820");
  const b = peer("b", ["fd77::2/128"], "[fd00::2]:51820");
  const table = new PeerTable([a, b]);
  const batch = new Uint8Array(ENDPOINT_BYTES * 4);
  batch.set(ep("198.18.0.9:51820"), 0);
  batch.set(ep("[fd00::2]:51820"), ENDPOINT_BYTES);
  batch.set(ep("198.18.0.2:51820"), 2 * ENDPOINT_BYTES);
  batch.set(ep("198.18.0.2:1"), 3 * ENDPOINT_BYTES);
  t.equal(table.fromEndpoint(batch, 0), null);
  t.equal(table.fromEndpoint(batch, ENDPOINT_BYTES), b);
  t.equal(table.fromEndpoint(batch, 2 * ENDPOINT_BYTES), a);
  t.equal(table.fromEndpoint(batch, 3 * ENDPOINT_BYTES), null);
  t.end();
});

t.test("fromEndpoint() remembers its last answer, and forgets it when an endpoint moves", (t) => {
  const a = peer("a", ["10.77.0.2/32"], "192.0.2.1:51820");
  const b = peer("b", ["10.77.0.3/32"], "192.0.2.2:51820");
  const table = new PeerTable([a, b]);
  // Runs of one peer, alternation, and strangers between them: the remembered peer must
  // never answer for another endpoint.
  const seq = ["192.0.2.1:51820", "192.0.2.1:51820", "192.0.2.2:51820", "192.0.2.9:51820", "192.0.2.1:51820", "192.0.2.1:51821", "192.0.2.2:51820"];
  t.same(seq.map((e) => from(table, e)), ["a", "a", "b", null, "a", null, "b"]);
  // a moves (a name re-resolved): its old endpoint is a stranger's now, even straight after a hit.
  t.equal(from(table, "192.0.2.1:51820"), "a");
  table.setEndpoint(a, ep("192.0.2.7:51820"));
  t.equal(from(table, "192.0.2.1:51820"), null, "the old endpoint no longer matches");
  t.equal(from(table, "192.0.2.7:51820"), "a", "the new one does");
  t.end();
});

t.test("peers without an endpoint are not matched", (t) => {
  const noEp = peer("unresolved", ["10.77.0.5/32"]);
  const table = new PeerTable([noEp]);
  t.equal(table.fromEndpoint(new Uint8Array(ENDPOINT_BYTES), 0), null, "an all-zero endpoint");
  t.equal(from(table, "0.0.0.0:0"), null);
  t.equal(from(table, "[::]:0"), null);
  t.equal(routeTo(table, "10.77.0.5"), "unresolved", "it is still routable (the device path counts no_endpoint)");
  t.end();
});

t.test("setEndpoint updates the index", (t) => {
  const a = peer("a", ["10.77.0.2/32"]);
  const b = peer("b", ["10.77.0.3/32"], "192.0.2.2:51820");
  const table = new PeerTable([a, b]);
  t.equal(from(table, "192.0.2.1:51820"), null, "before resolution");

  table.setEndpoint(a, ep("192.0.2.1:51820"));
  t.same([...(a.endpoint ?? [])], [...ep("192.0.2.1:51820")], "the peer holds the new endpoint");
  t.equal(from(table, "192.0.2.1:51820"), "a", "after resolution");
  t.equal(from(table, "192.0.2.2:51820"), "b", "other peers stay indexed");

  table.setEndpoint(a, ep("[2001:db8::1]:4500"));
  t.equal(from(table, "192.0.2.1:51820"), null, "the old endpoint no longer matches");
  t.equal(from(table, "[2001:db8::1]:4500"), "a", "the new one does");

  // Endpoints swap between peers (re-resolution after a renumbering).
  table.setEndpoint(b, ep("[2001:db8::1]:4500"));
  table.setEndpoint(a, ep("192.0.2.2:51820"));
  t.equal(from(table, "[2001:db8::1]:4500"), "b");
  t.equal(from(table, "192.0.2.2:51820"), "a");
  t.end();
});

t.test("endpoints set before the table is built are indexed", (t) => {
  const peers = Array.from({ length: 50 }, (_, i) => peer(`p${i}`, [`10.0.${i}.0/24`], `192.0.2.${i + 1}:${40000 + i}`));
  const table = new PeerTable(peers);
  let wrong = 0;
  for (let i = 0; i < 50; i++) {
    if (from(table, `192.0.2.${i + 1}:${40000 + i}`) !== `p${i}`) wrong++;
    if (from(table, `192.0.2.${i + 1}:${40001 + i}`) !== null) wrong++; // own address, a neighbour's port
    if (routeTo(table, `10.0.${i}.77`) !== `p${i}`) wrong++;
  }
  t.equal(wrong, 0, "50 peers, each found by its endpoint and its allowed IPs only");
  t.end();
});

/** 32-bit FNV-1a over a 20-byte endpoint: the hash peers.ts documents for its index. */
function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < ENDPOINT_BYTES; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

t.test("endpoints whose index hashes collide are told apart by their bytes", (t) => {
  // Found by a birthday search over random 2001:db8::/32 addresses (port 51820).
  const x = "[2001:db8:1dc4:c301:ea0c:f48f:89fc:77f9]:51820";
  const y = "[2001:db8:ff6e:e828:b884:bea2:a149:92a6]:51820";
  t.equal(fnv1a(ep(x)), fnv1a(ep(y)), "precondition: the two endpoints collide under FNV-1a");
  t.not(x, y);

  const only = new PeerTable([peer("x", ["fd77::10/128"], x)]);
  t.equal(from(only, x), "x");
  t.equal(from(only, y), null, "same hash, different address: no match");

  const both = new PeerTable([peer("x", ["fd77::10/128"], x), peer("y", ["fd77::11/128"], y)]);
  t.equal(from(both, x), "x");
  t.equal(from(both, y), "y");
  t.end();
});
