// A SIGHUP reload of a WireGuard config keeps a peer whose name and public key stay: its
// allowed IPs, keepalive and endpoint change in place, its session goes on (no handshake on
// either side) and its counters are not reset. A wireguard-go peer on the other side.
// Needs root, iproute2, curl, wireguard-go + wireguard-tools.
import t from "tap";
import { readFileSync, writeFileSync } from "node:fs";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { waitUntil } from "./lib/prometheus.ts";
import { run } from "./lib/proc.ts";
import { scrape, startInstance, stopInstance, sum, wireguardAddresses, wireguardConfig, wireguardEnd, wireguardPeer } from "./lib/udptun.ts";
import type { Instance, WireGuardEnd } from "./lib/udptun.ts";
import { BOOKWORM, requireBins } from "./lib/wireguard-bins.ts";
import { killWireguardGo, startWireguardGo } from "./lib/wireguard-go.ts";
import type { WireguardGo } from "./lib/wireguard-go.ts";

const lab = new Lab();
const suffix = lab.tag.slice(2, 8);
let hostA: Host, hostB: Host;
let endA: WireGuardEnd;
let a: Instance | undefined;
let b: WireguardGo;

const reaches = async (from: Host, to: string): Promise<boolean> =>
  (await run(...lab.exec(from, "ping", ["-c", "3", "-i", "0.2", "-w", "8", to]))).code === 0;

t.before(async () => {
  requireBins(BOOKWORM);
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  endA = wireguardEnd("a", hostA, 1, 52201);
  b = await startWireguardGo(lab, hostB, "b", {
    bins: BOOKWORM, device: `ulv${suffix}r`, address: wireguardAddresses(2), listenPort: 52202, peers: [wireguardPeer(endA)],
  });
  a = await startInstance(lab, hostA, "a", wireguardConfig(endA, [{ ...b.asPeer(), name: "b" }], {
    device: { name: `ulv${suffix}a`, address: wireguardAddresses(1), mtu: 1420 },
    metrics: { listen: `${hostA.ip4}:52291` },
  }));
});

t.teardown(async () => {
  if (a) await stopInstance(a);
  await killWireguardGo(b);
  await lab.destroy();
});

t.test("new allowed IPs and keepalive on reload: same session, same counters", async (t) => {
  const inst = a!;
  t.ok(await reaches(hostA, "10.78.0.2"), "A reaches B");
  const before = await scrape(lab, inst);
  const completed = sum(before, "udptun_wireguard_handshakes_total", { peer: "b", event: "completed" });
  const initiated = sum(before, "udptun_wireguard_handshakes_total", { peer: "b", event: "initiated" });
  const packets = sum(before, "udptun_packets_total", { peer: "b" });
  const theirs = (await b.show()).peers[0].latestHandshake;
  t.ok(completed >= 1 && theirs > 0, "a session to keep");

  const cfg = JSON.parse(readFileSync(inst.config, "utf8")) as { peers: { allowedIps: string[]; persistentKeepalive?: number }[] };
  cfg.peers[0].allowedIps = [...cfg.peers[0].allowedIps, "10.78.0.20/32"];
  cfg.peers[0].persistentKeepalive = 5;
  writeFileSync(inst.config, JSON.stringify(cfg));
  inst.daemon.child.kill("SIGHUP");
  await waitUntil(async () => inst.daemon.output().includes('"msg":"peers reloaded"'), 5000);
  const line = inst.daemon.output().split("\n").find((l) => l.includes('"msg":"peers reloaded"'))!;
  t.same(JSON.parse(line).changed, ["b"], "b reported changed");

  t.ok(await reaches(hostA, "10.78.0.2"), "A still reaches B");
  t.ok(await reaches(hostB, "10.78.0.1"), "B still reaches A");
  const after = await scrape(lab, inst);
  t.equal(sum(after, "udptun_wireguard_handshakes_total", { peer: "b", event: "completed" }), completed, "no handshake completed on A");
  t.equal(sum(after, "udptun_wireguard_handshakes_total", { peer: "b", event: "initiated" }), initiated, "none initiated");
  t.equal((await b.show()).peers[0].latestHandshake, theirs, "none on B either");
  t.ok(sum(after, "udptun_packets_total", { peer: "b" }) > packets, "the peer's counters went on from where they were");
});
