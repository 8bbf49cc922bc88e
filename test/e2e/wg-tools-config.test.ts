// An implementation configured only through `wg set`, `wg setconf` and `wg syncconf` (issue
// #12, tests): it faces trixie's wireguard-go and, separately, another instance of itself;
// `wg show dump` and `wg showconf` give back exactly what was set; ping and a short iperf3
// both ways, IPv4 and IPv6 inside, over IPv4 and IPv6 outside; handshake time and transfer
// counters move with the traffic. Runs against the reference (bookworm's wireguard-go) and
// udptun-wg (SUBJECTS in lib/wg-tools.ts).
import t from "tap";
import type { Test } from "tap";
import type { Host } from "./lib/netns.ts";
import { Fixture, SUBJECTS, addressUp, checkDump, iperfThrough, keyPair, parseShowconf, ping, renderConf } from "./lib/wg-tools.ts";
import type { Conf, KeyPair, Kind } from "./lib/wg-tools.ts";
import type { WgState } from "./lib/wireguard-go.ts";

const f = new Fixture(t, ["a", "b"]);
const PORT_A = 54010;
const PORT_B = 54011;
const FWMARK = 0x5e7;
const KEEPALIVE = 25;
const IPERF_PORT = 54201;

/** Both ends' files: S (on a, 10.79.0.1) and P (on b, 10.79.0.2), each the other's only peer. */
function confs(ka: KeyPair, kb: KeyPair, psk: string, v6Outer: boolean): [Conf, Conf] {
  const [a, b] = f.hosts;
  const ep = (h: Host, port: number) => (v6Outer ? `[${h.ip6}]:${port}` : `${h.ip4}:${port}`);
  return [
    { privateKey: ka.privateKey, listenPort: PORT_A, fwmark: FWMARK, peers: [{ publicKey: kb.publicKey, presharedKey: psk, allowedIps: ["10.79.0.2/32", "fd79::2/128"], endpoint: ep(b, PORT_B), persistentKeepalive: KEEPALIVE }] },
    { privateKey: kb.privateKey, listenPort: PORT_B, peers: [{ publicKey: ka.publicKey, presharedKey: psk, allowedIps: ["10.79.0.1/32", "fd79::1/128"], endpoint: ep(a, PORT_A) }] },
  ];
}

/** Field by field: `wg showconf` against the configuration that was set. */
function checkShowconf(t: Test, text: string, want: Conf): void {
  const { iface, peers } = parseShowconf(text);
  t.same(iface, { ListenPort: String(want.listenPort), ...(want.fwmark ? { FwMark: `0x${want.fwmark.toString(16)}` } : {}), PrivateKey: want.privateKey }, "showconf: [Interface]");
  t.same(peers.map((p) => ({ ...p, AllowedIPs: p.AllowedIPs?.split(/,\s*/).sort().join(",") })), want.peers.map((p) => ({
    PublicKey: p.publicKey,
    ...(p.presharedKey ? { PresharedKey: p.presharedKey } : {}),
    AllowedIPs: [...p.allowedIps].sort().join(","),
    ...(p.endpoint ? { Endpoint: p.endpoint } : {}),
    ...(p.persistentKeepalive ? { PersistentKeepalive: String(p.persistentKeepalive) } : {}),
  })), "showconf: [Peer] sections");
}

async function pair(t: Test, subject: Kind, partner: Kind): Promise<void> {
  const { lab, scratch, hosts: [a, b] } = f;
  const s = await f.start(subject, a);
  const p = await f.start(partner, b);
  const ka = keyPair();
  const kb = keyPair();
  const psk = keyPair().privateKey; // any 32 random bytes
  const [wantA, wantB] = confs(ka, kb, psk, false);
  const decoy = keyPair().publicKey;

  // P by setconf alone, first: S's keepalive starts a handshake as soon as `wg set` gives it
  // the peer, and an initiation P drops is retried only 5 s later. S: a first configuration
  // by setconf (with a peer that syncconf must remove), its real peer added by `wg set`, then
  // the final one by syncconf.
  await p.wg(["setconf", p.device, scratch.file(`${p.device}.conf`, renderConf(wantB))]);
  await s.wg(["setconf", s.device, scratch.file(`${s.device}-0.conf`, renderConf({ ...wantA, listenPort: PORT_A + 100, peers: [{ publicKey: decoy, allowedIps: ["10.99.0.0/24"] }] }))]);
  await s.wg(["set", s.device, "listen-port", String(PORT_A), "fwmark", "0x5e7", "peer", kb.publicKey, "preshared-key", scratch.file("psk", psk + "\n"),
    "allowed-ips", "10.79.0.2/32,fd79::2/128", "endpoint", `${b.ip4}:${PORT_B}`, "persistent-keepalive", String(KEEPALIVE)]);
  t.equal((await s.dump()).peers.length, 2, "after wg set: the setconf peer and the new one");
  await s.wg(["syncconf", s.device, scratch.file(`${s.device}-1.conf`, renderConf(wantA))]);
  checkDump(t, await s.dump(), wantA, ka.publicKey);
  checkShowconf(t, await s.wg(["showconf", s.device]), wantA);
  checkDump(t, await p.dump(), wantB, kb.publicKey);

  await addressUp(lab, b.ns, p.device, ["10.79.0.2/24", "fd79::2/64"]);
  await addressUp(lab, a.ns, s.device, ["10.79.0.1/24", "fd79::1/64"]);
  const t0 = Math.floor(Date.now() / 1000);

  for (const v6Outer of [false, true]) {
    const outer = v6Outer ? "IPv6 outside" : "IPv4 outside";
    if (v6Outer) {
      await s.wg(["set", s.device, "peer", kb.publicKey, "endpoint", `[${b.ip6}]:${PORT_B}`]);
      await p.wg(["set", p.device, "peer", ka.publicKey, "endpoint", `[${a.ip6}]:${PORT_A}`]);
      t.equal((await s.dump()).peers[0].endpoint, `[${b.ip6}]:${PORT_B}`, "wg set endpoint: IPv6 endpoint shown");
    }
    for (const [from, ns, to, n] of [["S", a.ns, "P", 2], ["P", b.ns, "S", 1]] as const) {
      t.ok(await ping(lab, ns, `10.79.0.${n}`), `${outer}: ping ${from} -> ${to} over IPv4 inside`);
      t.ok(await ping(lab, ns, `fd79::${n}`), `${outer}: ping ${from} -> ${to} over IPv6 inside`);
    }
    for (const inner of ["10.79.0.2", "fd79::2"]) {
      const [sBefore, pBefore] = [await s.dump(), await p.dump()];
      const r = await iperfThrough(lab, a, b, ["-c", inner, "--bidir"], 2, IPERF_PORT);
      const [sAfter, pAfter] = [await s.dump(), await p.dump()];
      const label = `${outer}, iperf3 --bidir to ${inner}`;
      t.ok(r.bytes > 0 && r.reverseBytes > 0, `${label}: both directions carried data (${r.bytes} B S->P, ${r.reverseBytes} B P->S)`);
      const sp = (st: WgState) => st.peers[0];
      t.ok(sp(sAfter).txBytes - sp(sBefore).txBytes >= r.bytes, `${label}: S's tx grew by at least the ${r.bytes} B P received (${sp(sAfter).txBytes - sp(sBefore).txBytes})`);
      t.ok(sp(sAfter).rxBytes - sp(sBefore).rxBytes >= r.reverseBytes, `${label}: S's rx grew by at least the ${r.reverseBytes} B S received (${sp(sAfter).rxBytes - sp(sBefore).rxBytes})`);
      t.ok(sp(pAfter).rxBytes - sp(pBefore).rxBytes >= r.bytes, `${label}: P's rx grew by at least ${r.bytes} B`);
      t.ok(sp(pAfter).txBytes - sp(pBefore).txBytes >= r.reverseBytes, `${label}: P's tx grew by at least ${r.reverseBytes} B`);
    }
  }
  const hs = (await s.dump()).peers[0].latestHandshake;
  t.ok(hs >= t0 - 1 && hs <= Date.now() / 1000 + 1, `S's latest handshake (${hs}) is from this test (since ${t0})`);
  // The configuration itself is untouched by the traffic (the endpoint last set is IPv6).
  const [finalA, finalB] = confs(ka, kb, psk, true);
  checkDump(t, await s.dump(), finalA, ka.publicKey);
  checkDump(t, await p.dump(), finalB, kb.publicKey);

  for (const i of [s, p]) {
    const r = await i.stop();
    t.notOk(r.killed, `${i.kind} exits on SIGTERM`);
    t.notOk(r.socketLeft, `${i.kind} removes its socket`);
  }
}

for (const subject of SUBJECTS) {
  // The reference pair is wireguard-go with itself; udptun-wg's is udptun-wg with another.
  for (const partner of ["wireguard-go-2023", subject] as Kind[]) {
    t.test(`${subject} configured by wg, facing ${partner === subject ? `another ${subject}` : partner}`, (t) => pair(t, subject, partner));
  }
}
