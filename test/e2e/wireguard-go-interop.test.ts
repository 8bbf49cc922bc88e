// The WireGuard anchors talk to each other: Debian bookworm's wireguard-go (0.0.20220316) in
// one namespace, Debian trixie's (0.0.20231211, offloads) in another, set up by the harness
// udptun will later face them with. Ping and iperf3 TCP both ways, the handshake and the
// transfer counters as `wg show` reports them, and a teardown that leaves nothing behind.
// Needs root, iproute2, iperf3, wireguard-go + wireguard-tools, and the trixie binaries
// (scripts/fetch-wireguard-trixie.sh).
import t from "tap";
import { existsSync } from "node:fs";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { iperf } from "./lib/iperf.ts";
import { run } from "./lib/proc.ts";
import { BOOKWORM, TRIXIE, missingBins } from "./lib/wireguard-bins.ts";
import { killWireguardGo, socketPath, startWireguardGo } from "./lib/wireguard-go.ts";
import type { WireguardGo, WgState } from "./lib/wireguard-go.ts";

const lab = new Lab();
let hostA: Host, hostB: Host;
let old: WireguardGo, recent: WireguardGo;
const KEEPALIVE = 25;

t.before(async () => {
  for (const bins of [BOOKWORM, TRIXIE]) {
    const missing = missingBins(bins);
    if (missing) throw new Error(missing);
  }
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  old = await startWireguardGo(lab, hostA, "a", { bins: BOOKWORM, address: ["10.66.0.1/24", "fd66::1/64"] });
  recent = await startWireguardGo(lab, hostB, "b", { bins: TRIXIE, address: ["10.66.0.2/24", "fd66::2/64"], listenPort: 51821 });
  // B first: a persistent keepalive makes A start a handshake as soon as it is set, and one
  // that reaches B before B knows A is dropped and retried only after 5 s
  await recent.setPeers([{ ...old.asPeer(), endpoint: undefined }]);
  await old.setPeers([recent.asPeer({ persistentKeepalive: KEEPALIVE })]);
});

t.teardown(async () => {
  for (const wg of [old, recent]) await killWireguardGo(wg);
  await lab.destroy();
});

const ping = (from: Host, to: string) =>
  run(...lab.exec(from, "ping", [...(to.includes(":") ? ["-6"] : []), "-c", "3", "-i", "0.2", "-w", "10", to]));

t.test("both releases run, each as configured", async (t) => {
  const versions = await Promise.all([old, recent].map((wg) => run(wg.bins.wireguardGo, ["--version"])));
  t.match(versions[0].stdout, /wireguard-go v0\.0\.20220316/, "bookworm's wireguard-go");
  // trixie's 0.0.20231211 snapshot reports the last tagged version
  t.match(versions[1].stdout, /wireguard-go v0\.0\.20230223/, "trixie's wireguard-go");
  const [a, b] = await Promise.all([old.show(), recent.show()]);
  t.equal(a.publicKey, old.publicKey, "A's public key");
  t.equal(a.listenPort, 51820, "A's listen port");
  t.equal(b.listenPort, 51821, "B's listen port");
  t.same(a.peers.map((p) => [p.publicKey, p.endpoint, p.allowedIps.sort(), p.persistentKeepalive]),
    [[recent.publicKey, `${hostB.ip4}:51821`, ["10.66.0.2/32", "fd66::2/128"], KEEPALIVE]], "A's peer is B");
  t.same(b.peers.map((p) => [p.publicKey, p.allowedIps.sort(), p.persistentKeepalive]),
    [[old.publicKey, ["10.66.0.1/32", "fd66::1/128"], 0]], "B's peer is A");
});

t.test("ping crosses both ways, IPv4 and IPv6 inside", async (t) => {
  for (const [from, to] of [[hostA, "10.66.0.2"], [hostB, "10.66.0.1"], [hostA, "fd66::2"], [hostB, "fd66::1"]] as const) {
    const r = await ping(from, to);
    t.equal(r.code, 0, `ping ${from.ns} -> ${to}`);
    t.match(r.stdout, /3 received/, `${to}: 3 of 3 answered`);
  }
});

const peerOf = (s: WgState) => s.peers[0];

t.test("wg show: a recent handshake on both ends; transfer counters move with iperf3 TCP both ways", async (t) => {
  const [a0, b0] = await Promise.all([old.show(), recent.show()]);
  const now = Date.now() / 1000;
  for (const [name, s] of [["A", a0], ["B", b0]] as const) {
    t.ok(peerOf(s).latestHandshake > now - 60 && peerOf(s).latestHandshake <= now + 1, `${name}: latest handshake ${peerOf(s).latestHandshake} within the last minute`);
  }
  // B learned A's endpoint from the handshake (it was configured without one)
  t.equal(peerOf(b0).endpoint, `${hostA.ip4}:51820`, "B's peer endpoint learned from A");

  const up = await iperf(lab, hostA, hostB, ["-c", "10.66.0.2"], 2);
  const down = await iperf(lab, hostA, hostB, ["-c", "10.66.0.2", "-R"], 2);
  // wireguard-go does 0.3-2 Gbit/s here: the floor catches a broken path, not a slow machine
  t.ok(up.bps > 10e6, `A->B ${(up.bps / 1e6).toFixed(0)} Mbit/s`);
  t.ok(down.bps > 10e6, `B->A ${(down.bps / 1e6).toFixed(0)} Mbit/s`);

  const [a1, b1] = await Promise.all([old.show(), recent.show()]);
  // two seconds at the floor rate each way is 2.5 MB: the counters include the ciphertext
  const moved = 2 * 10e6 / 8;
  t.ok(peerOf(a1).txBytes - peerOf(a0).txBytes > moved, `A sent ${peerOf(a1).txBytes - peerOf(a0).txBytes} bytes`);
  t.ok(peerOf(a1).rxBytes - peerOf(a0).rxBytes > moved, `A received ${peerOf(a1).rxBytes - peerOf(a0).rxBytes} bytes`);
  t.ok(peerOf(b1).rxBytes - peerOf(b0).rxBytes > moved, `B received ${peerOf(b1).rxBytes - peerOf(b0).rxBytes} bytes`);
  t.ok(peerOf(b1).txBytes - peerOf(b0).txBytes > moved, `B sent ${peerOf(b1).txBytes - peerOf(b0).txBytes} bytes`);
});

t.test("stopping leaves no process, device or UAPI socket", async (t) => {
  for (const wg of [old, recent]) {
    const r = await wg.stop();
    t.equal(r.killed, false, `${wg.bins.release}: stopped by SIGTERM`);
    t.equal(r.code, 0, `${wg.bins.release}: exit code 0`);
    t.equal(r.socketLeft, false, `${wg.bins.release}: ${socketPath(wg.device)} removed`);
    t.notOk(existsSync(socketPath(wg.device)), `${socketPath(wg.device)} gone`);
    t.equal(r.deviceLeft, false, `${wg.bins.release}: ${wg.device} gone from ${wg.host.ns}`);
    const pids = (await run("ip", ["netns", "pids", wg.host.ns])).stdout.trim();
    t.equal(pids, "", `no process left in ${wg.host.ns}`);
  }
});
