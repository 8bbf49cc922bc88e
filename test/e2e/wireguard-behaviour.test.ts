// udptun's WireGuard transport where a peer misbehaves or moves, against wireguard-go in
// namespaces: a peer with the wrong key gets no reply at all; a peer that changes its port
// is followed once it authenticates from there; a captured data message sent again is dropped
// and counted, never written to the device; SIGTERM under load still exits 0 with every
// buffer back. U is udptun; G is trixie's wireguard-go (its peer); X is bookworm's, with keys
// that do not match; W is udptun with its peer filter off, G's peer too. Datagrams are seen on U's interface with tcpdump. Needs root, iproute2,
// iperf3, tcpdump, python3, and both wireguard-go releases (scripts/fetch-wireguard-trixie.sh).
import t from "tap";
import type { Test } from "tap";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { resend, startCapture } from "./lib/capture.ts";
import type { Datagram } from "./lib/capture.ts";
import { startIperf } from "./lib/iperf.ts";
import { run } from "./lib/proc.ts";
import { waitUntil } from "./lib/prometheus.ts";
import { scrape, startInstance, stopInstance, sum, wireguardAddresses, wireguardConfig, wireguardEnd, wireguardPeer } from "./lib/udptun.ts";
import type { Instance, WireGuardEnd } from "./lib/udptun.ts";
import { BOOKWORM, TRIXIE, missingBins } from "./lib/wireguard-bins.ts";
import { killWireguardGo, startWireguardGo, wg } from "./lib/wireguard-go.ts";
import type { WgPeer, WireguardGo } from "./lib/wireguard-go.ts";
import { encodeKey } from "../../src/wireguard/keys.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/x25519.ts";

const lab = new Lab();
let hu: Host, hg: Host, hx: Host, hw: Host;
let uEnd: WireGuardEnd, wEnd: WireGuardEnd;
let u: Instance, w: Instance;
let g: WireguardGo, x: WireguardGo;

/** Somebody's public key: nobody here holds its private key. */
const strangerKey = (): string => encodeKey(publicKeyOf(generatePrivateKey()));

t.before(async () => {
  for (const bins of [BOOKWORM, TRIXIE]) {
    const missing = missingBins(bins);
    if (missing) throw new Error(missing);
  }
  await lab.up();
  [hu, hg, hx, hw] = await Promise.all([lab.addHost("u", 1), lab.addHost("g", 3), lab.addHost("x", 5), lab.addHost("w", 6)]);
  uEnd = wireguardEnd("u", hu, 1);
  wEnd = wireguardEnd("w", hw, 6);
  g = await startWireguardGo(lab, hg, "g", { bins: TRIXIE, address: wireguardAddresses(3) });
  x = await startWireguardGo(lab, hx, "x", { bins: BOOKWORM, address: wireguardAddresses(5) });
  // U's peer "x" is X's address with a key X does not hold.
  u = await startInstance(lab, hu, "u", wireguardConfig(uEnd, [{ name: "g", ...g.asPeer() }, { name: "x", ...x.asPeer(), publicKey: strangerKey() }]));
  w = await startInstance(lab, hw, "w", wireguardConfig(wEnd, [{ name: "g", ...g.asPeer() }], { socket: { peerFilter: false } }));
  await g.setPeers([wireguardPeer(uEnd), wireguardPeer(wEnd)]);
});

t.teardown(async () => {
  for (const inst of [u, w]) if (inst && inst.daemon.child.exitCode === null) inst.daemon.child.kill("SIGKILL");
  for (const wgo of [g, x]) await killWireguardGo(wgo);
  await lab.destroy();
});

const ping = (from: Host, to: string, args: string[] = ["-c", "3", "-i", "0.2", "-w", "10"]) => run(...lab.exec(from, "ping", [...args, to]));
const NET = { path: "network_to_device" };
const isInitiation = (d: Datagram) => d.payload.length === 148 && d.payload[0] === 1;

/**
 * X pings U once with the peer config given, and U must stay silent: not one datagram to X,
 * nothing sent at all, and each initiation X sent counted once under `reason`.
 */
async function noReply(t: Test, peer: WgPeer, reason: string): Promise<void> {
  const m0 = await scrape(lab, u);
  const cap = await startCapture(lab, hu, "eth0", `udp and host ${hx.ip4}`);
  await x.setPeers([peer]);
  const r = await ping(hx, "10.78.0.1", ["-c", "1", "-W", "1"]);
  t.not(r.code, 0, "X's ping gets no answer");
  const drops = async () => sum(await scrape(lab, u), "udptun_drops_total", { ...NET, reason }) - sum(m0, "udptun_drops_total", { ...NET, reason });
  await waitUntil(async () => (await drops()) >= 1, 5000);
  // X's retries (every 5 s) end with the peer: the capture then holds all it sent.
  await wg(lab, hx, BOOKWORM, ["set", x.device, "peer", peer.publicKey, "remove"]);
  const seen = await cap.stop();
  const initiations = seen.filter((d) => d.src === hx.ip4 && isInitiation(d)).length;
  t.ok(initiations >= 1, `X sent ${initiations} initiation(s)`);
  t.equal(seen.filter((d) => d.src === hx.ip4).length, initiations, "and nothing else");
  t.equal(seen.filter((d) => d.src === hu.ip4).length, 0, "U sent X nothing");
  const m1 = await scrape(lab, u);
  t.equal(await drops(), initiations, `each counted under udptun_drops_total{reason="${reason}"}`);
  t.equal(sum(m1, "udptun_drops_total", NET) - sum(m0, "udptun_drops_total", NET), initiations, "and under no other reason");
  t.equal(sum(m1, "udptun_udp_datagrams_sent_total") - sum(m0, "udptun_udp_datagrams_sent_total"), 0, "U sent no datagram at all");
  t.equal(sum(m1, "udptun_wireguard_handshakes_total", { peer: "x", event: "completed" }), 0, "no handshake with U's peer x");
}

t.test("a peer whose key udptun does not know gets no reply at all (unknown_peer)", async (t) => {
  // X knows U's key; U's peer at X's address has another key than X's.
  await noReply(t, wireguardPeer(uEnd), "unknown_peer");
});

t.test("a peer with the wrong key for udptun gets no reply at all (bad_mac)", async (t) => {
  // X's MAC1 is keyed with a key U does not hold.
  await noReply(t, { ...wireguardPeer(uEnd), publicKey: strangerKey() }, "bad_mac");
});

t.test("G's sessions work before the tests that use them", async (t) => {
  for (const [name, addr] of [["U", "10.78.0.1"], ["W", "10.78.0.6"]]) {
    const r = await ping(hg, addr);
    t.equal(r.code, 0, `G pings ${name}`);
    t.match(r.stdout, /3 received/, "3 of 3 answered");
  }
});

const filterLines = () => u.daemon.output().split("\n").filter((l) => l.includes('"msg":"peer filter admits')).length;

t.test("roaming: G moves to another port, traffic resumes and udptun sends there", async (t) => {
  const NEW_PORT = 51830;
  const m0 = await scrape(lab, u);
  const w0 = await scrape(lab, w);
  const lines0 = filterLines();
  const cap = await startCapture(lab, hu, "eth0", `udp and host ${hg.ip4}`);
  await wg(lab, hg, TRIXIE, ["set", g.device, "listen-port", String(NEW_PORT)]);
  // Without the filter, G's first data message from the new port authenticates and moves it.
  t.equal((await ping(hg, "10.78.0.6", ["-c", "1", "-W", "5"])).code, 0, "W (no peer filter) answers G's first ping from the new port");
  const w1 = await scrape(lab, w);
  for (const event of ["initiated", "completed"]) {
    const n = (m: typeof w0) => sum(m, "udptun_wireguard_handshakes_total", { peer: "g", event });
    t.equal(n(w1), n(w0), `W: no handshake ${event}: the data message alone moved G`);
  }
  // U's peer filter admits data only from endpoints it knows: G's data from the new port is
  // refused in the kernel until G, hearing nothing back, handshakes from there (wireguard-go
  // does after KEEPALIVE + REKEY_TIMEOUT, 15 s); the initiation gets in and U follows G.
  const r = await ping(hg, "10.78.0.1", ["-c", "1", "-i", "0.5", "-w", "40"]);
  t.equal(r.code, 0, "G's ping from the new port is answered");
  t.equal((await ping(hu, "10.78.0.3")).code, 0, "and U's ping to G");
  const seen = await cap.stop();
  const fromNew = seen.filter((d) => d.src === hg.ip4 && d.sport === NEW_PORT);
  t.ok(fromNew.some(isInitiation), "G handshook from the new port");
  const fromU = seen.filter((d) => d.src === hu.ip4);
  const firstToNew = fromU.findIndex((d) => d.dport === NEW_PORT);
  t.ok(firstToNew >= 0, `U sent to G's new port (${fromU.length - firstToNew} datagrams)`);
  t.equal(fromU.slice(firstToNew).filter((d) => d.dport !== NEW_PORT).length, 0, "and, once moved, nowhere else");
  t.equal(filterLines(), lines0 + 1, "the peer filter was rebuilt for the new endpoint");
  const m1 = await scrape(lab, u);
  t.ok(sum(m1, "udptun_socket_receive_drops_total") > sum(m0, "udptun_socket_receive_drops_total"), "G's data before its handshake was refused by the filter");
  t.equal((await g.show()).listenPort, NEW_PORT, "G listens on the new port");
});

t.test("a captured data message sent again is dropped as replayed, and nothing reaches the device", async (t) => {
  const cap = await startCapture(lab, hu, "eth0", `udp and src host ${hg.ip4} and dst port ${uEnd.port}`);
  t.equal((await ping(hg, "10.78.0.1", ["-c", "1", "-W", "5"])).code, 0, "G pings U");
  const data = (await cap.stop()).find((d) => d.payload[0] === 4 && d.payload.length > 32);
  if (!data) return t.fail("no data message captured");
  const m0 = await scrape(lab, u);
  const REPLAYS = 5;
  await resend(lab, hg, data, REPLAYS);
  const replayed = async () => sum(await scrape(lab, u), "udptun_drops_total", { ...NET, reason: "replayed" }) - sum(m0, "udptun_drops_total", { ...NET, reason: "replayed" });
  await waitUntil(async () => (await replayed()) >= REPLAYS, 5000);
  const m1 = await scrape(lab, u);
  t.equal(await replayed(), REPLAYS, `${REPLAYS} replays, ${REPLAYS} drops under replayed`);
  t.equal(sum(m1, "udptun_tun_writes_total") - sum(m0, "udptun_tun_writes_total"), 0, "nothing written to the device");
  t.equal(sum(m1, "udptun_packets_total", { ...NET, peer: "g" }) - sum(m0, "udptun_packets_total", { ...NET, peer: "g" }), 0, "no packet counted as received from G");
});

t.test("SIGTERM under load: exit 0, every buffer back", async (t) => {
  const load = await startIperf(lab, hu, hg, ["-c", "10.78.0.3", "--bidir"], 10);
  load.result.catch(() => {}); // cut short by the stop; the Lab's teardown ends it
  await load.server.waitFor(/\s\d+\.\d+-\d+\.\d+\s+sec\s+\S+\s+[KMG]Bytes/);
  const m = await scrape(lab, u);
  t.ok(sum(m, "udptun_packets_total", { path: "device_to_network", peer: "g" }) > 1000, "traffic flows through U");
  const { code, ms } = await stopInstance(u);
  t.equal(code, 0, `exit code 0 (in ${ms.toFixed(0)} ms)`);
  const final = JSON.parse(u.daemon.output().split("\n").find((l) => l.includes('"msg":"stopped"')) ?? "{}").final;
  t.ok(final, "the stopped line carries the final counters");
  t.equal(final?.pools.device.inUse, 0, `${final?.pools.device.name}: every buffer back`);
  t.equal(final?.pools.network.inUse, 0, `${final?.pools.network.name}: every buffer back`);
});
