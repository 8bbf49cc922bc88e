// The wireguard.com/netns layout: three daemons started in one namespace (their UDP sockets
// stay there, talking over its loopback), their devices moved into three others, configured
// with `wg` from the daemons' namespace. Traffic flows; a listen-port change roams (the other
// side is not touched; how long it takes is reported); allowed IPs decide which inner sources
// are accepted; the more specific of two overlapping peers wins; a removed peer gets no more
// traffic (issue #12, tests). Runs against the reference (bookworm's wireguard-go) and udptun-wg.
import t from "tap";
import type { Test } from "tap";
import { must } from "./lib/proc.ts";
import { Fixture, SUBJECTS, addressUp, keyPair, ping, pingUntil, renderConf } from "./lib/wg-tools.ts";
import type { Implementation, KeyPair, Kind } from "./lib/wg-tools.ts";

const f = new Fixture(t, ["d", "x", "y", "z"]);
const PORT = { a: 54040, b: 54041, c: 54042 };
const ROAMED = 54050;

async function layout(t: Test, kind: Kind): Promise<void> {
  // A (10.83.0.1 and .11, in x) has B (.2, in y) as its peer; B and C (.3, in z) have A.
  const { lab, scratch, hosts: [d, x, y, z] } = f;
  const [A, B, C] = [await f.start(kind, d), await f.start(kind, d), await f.start(kind, d)];
  const [ka, kb, kc]: KeyPair[] = [keyPair(), keyPair(), keyPair()];
  const local = (port: number) => `127.0.0.1:${port}`;
  await B.wg(["setconf", B.device, scratch.file(`${B.device}.conf`, renderConf({ privateKey: kb.privateKey, listenPort: PORT.b, peers: [{ publicKey: ka.publicKey, allowedIps: ["10.83.0.1/32", "fd83::1/128"], endpoint: local(PORT.a) }] }))]);
  await C.wg(["setconf", C.device, scratch.file(`${C.device}.conf`, renderConf({ privateKey: kc.privateKey, listenPort: PORT.c, peers: [{ publicKey: ka.publicKey, allowedIps: ["10.83.0.1/32"], endpoint: local(PORT.a) }] }))]);
  await A.wg(["setconf", A.device, scratch.file(`${A.device}.conf`, renderConf({ privateKey: ka.privateKey, listenPort: PORT.a, peers: [{ publicKey: kb.publicKey, allowedIps: ["10.83.0.2/32", "fd83::2/128"], endpoint: local(PORT.b) }] }))]);
  for (const [i, ns, addrs] of [[A, x, ["10.83.0.1/24", "10.83.0.11/24", "fd83::1/64"]], [B, y, ["10.83.0.2/24", "fd83::2/64"]], [C, z, ["10.83.0.3/24"]]] as const) {
    await must("ip", ["-n", d.ns, "link", "set", i.device, "netns", ns.ns]);
    await addressUp(lab, ns.ns, i.device, [...addrs]);
  }
  const rx = async (i: Implementation, key: string) => (await i.dump()).peers.find((p) => p.publicKey === key)?.rxBytes ?? -1;

  t.ok(await ping(lab, x.ns, "10.83.0.2"), "A -> B, IPv4 inside, devices in namespaces of their own");
  t.ok(await ping(lab, x.ns, "fd83::2"), "A -> B, IPv6 inside");
  t.ok(await ping(lab, y.ns, "10.83.0.1"), "B -> A");

  // A moves to another port; B's configuration is left alone and learns it from A's packets.
  await A.wg(["set", A.device, "listen-port", String(ROAMED)]);
  t.equal((await A.dump()).listenPort, ROAMED, "A listens on its new port");
  const roamMs = await pingUntil(lab, x.ns, "10.83.0.2", 10_000);
  t.pass(`traffic A -> B resumed ${roamMs} ms after A's listen-port change`);
  t.equal((await B.dump()).peers[0].endpoint, local(ROAMED), "B roamed to A's new port by itself");
  t.ok(await ping(lab, y.ns, "10.83.0.1"), "B -> A after the roam");

  // An inner source outside A's allowed IPs at B: delivered to B, dropped there.
  const before = await rx(B, ka.publicKey);
  t.notOk(await ping(lab, x.ns, "10.83.0.2", { source: "10.83.0.11", waitS: 1 }), "from 10.83.0.11 (not in A's allowed IPs at B): no reply");
  t.ok(await rx(B, ka.publicKey) > before, "B received those packets (it is B's allowed IPs that dropped them)");
  t.ok(await ping(lab, x.ns, "10.83.0.2", { source: "10.83.0.1" }), "from 10.83.0.1 (allowed): replies");

  // Overlapping allowed IPs at A: the /24 to B, the /32 to C; only C has 10.83.0.3.
  await A.wg(["set", A.device, "peer", kb.publicKey, "allowed-ips", "10.83.0.0/24,fd83::2/128", "peer", kc.publicKey, "allowed-ips", "10.83.0.3/32", "endpoint", local(PORT.c)]);
  t.ok(await ping(lab, x.ns, "10.83.0.3"), "10.83.0.3 (B's /24, C's /32) reaches C: the more specific peer wins");
  t.ok(await ping(lab, x.ns, "10.83.0.2"), "10.83.0.2 still reaches B through its /24");

  // C removed: 10.83.0.3 now falls to B's /24, where nothing answers, and C hears nothing more.
  await A.wg(["set", A.device, "peer", kc.publicKey, "remove"]);
  t.same((await A.dump()).peers.map((p) => p.publicKey), [kb.publicKey], "A's only peer is B again");
  const cBefore = await rx(C, ka.publicKey);
  t.notOk(await ping(lab, x.ns, "10.83.0.3", { waitS: 1 }), "after removing C: no reply from 10.83.0.3");
  t.equal(await rx(C, ka.publicKey), cBefore, "C received nothing more from A");

  for (const i of [A, B, C]) {
    const r = await i.stop();
    t.notOk(r.killed, `${i.device} exits on SIGTERM though its device is elsewhere`);
    t.notOk(r.socketLeft, `${i.device} removes its socket`);
  }
}

for (const kind of SUBJECTS) t.test(`${kind}: devices moved out of the daemons' namespace`, (t) => layout(t, kind));
