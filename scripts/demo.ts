// The main job, end to end on one machine: two udptun ends in network namespaces joined by
// WireGuard (keys made here, in a 0600 file each, in a temp dir), iperf3 through the tunnel
// both ways, Prometheus scraping both, and the figures printed from /metrics and from
// Prometheus's API, the handshakes among them. Everything it creates is removed when it ends.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodeKey } from "../src/wireguard/keys.ts";
import { generatePrivateKey, publicKeyOf } from "../src/wireguard/x25519.ts";
import { Lab } from "../test/e2e/lib/netns.ts";
import { iperf } from "../test/e2e/lib/iperf.ts";
import { query, startPrometheus, waitUntil } from "../test/e2e/lib/prometheus.ts";
import { scrape, startInstance, stopInstance, sum, tunnelConfig } from "../test/e2e/lib/udptun.ts";
import type { Instance, Sample } from "../test/e2e/lib/udptun.ts";
import type { Host } from "../test/e2e/lib/netns.ts";

const SECONDS = Number(process.env.DEMO_SECONDS ?? 5);
const say = (s: string) => console.log(s);

/** " (reason n, ...)" for the drop reasons that counted anything, else "". */
function dropReasons(m: Sample[]): string {
  const n = m.filter((s) => s.name === "udptun_drops_total" && s.value > 0).map((s) => `${s.labels.path} ${s.labels.reason} ${s.value}`);
  return n.length ? ` (${n.join(", ")})` : "";
}

interface End { name: string; host: Host; n: number }

/**
 * Each end's WireGuard config: the plain demo config with transport "wireguard", a private
 * key made now in a 0600 file under `dir` (never in the config itself), and the other end by
 * its public key.
 */
function wireguardConfigs(dir: string, ends: [End, End]): [object, object] {
  const publicKeys = ends.map((end) => {
    const priv = generatePrivateKey();
    const file = path.join(dir, `${end.name}.key`);
    writeFileSync(file, `${encodeKey(priv)}\n`, { mode: 0o600 });
    const pub = encodeKey(publicKeyOf(priv));
    priv.fill(0);
    return pub;
  });
  const configFor = (i: 0 | 1) => {
    const self = ends[i];
    const cfg = tunnelConfig(self, [ends[1 - i]]) as { peers: object[] };
    return {
      ...cfg,
      transport: "wireguard",
      privateKeyFile: path.join(dir, `${self.name}.key`),
      peers: cfg.peers.map((p) => ({ ...p, publicKey: publicKeys[1 - i] })),
    };
  };
  return [configFor(0), configFor(1)];
}

async function main(): Promise<void> {
  const lab = new Lab();
  const keys = mkdtempSync(path.join(tmpdir(), "udptun-demo-keys-"));
  chmodSync(keys, 0o700);
  const cleanup = async () => {
    await lab.destroy();
    rmSync(keys, { recursive: true, force: true });
  };
  process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
  try {
    await lab.up();
    const hostA = await lab.addHost("a", 1);
    const hostB = await lab.addHost("b", 2);
    const monitor = await lab.addressHub(254);
    say(`namespaces: ${hostA.ns} (198.18.0.1, tunnel 10.77.0.1) <-> ${hostB.ns} (198.18.0.2, tunnel 10.77.0.2), WireGuard over UDP 51820, Prometheus in ${lab.hub}`);
    const [cfgA, cfgB] = wireguardConfigs(keys, [{ name: "a", host: hostA, n: 1 }, { name: "b", host: hostB, n: 2 }]);
    say(`WireGuard: a key pair made for each end (private keys in 0600 files under ${keys})`);
    const a = await startInstance(lab, hostA, "a", cfgA);
    const b = await startInstance(lab, hostB, "b", cfgB);
    const prom = await startPrometheus(lab, lab.hub, `${monitor}:9090`, [`${hostA.ip4}:9464`, `${hostB.ip4}:9464`]);

    say(`\niperf3 through the tunnel (${SECONDS} s each, MTU 1420):`);
    for (const [label, args] of [
      ["TCP  A->B IPv4", ["-c", "10.77.0.2"]], ["TCP  B->A IPv4", ["-c", "10.77.0.2", "-R"]],
      ["TCP  A->B IPv6", ["-c", "fd77::2"]], ["UDP  A->B 500M", ["-c", "10.77.0.2", "-u", "-b", "500M", "-l", "1300"]],
    ] as const) {
      const r = await iperf(lab, hostA, hostB, [...args], SECONDS);
      const extra = args.includes("-u") ? `loss ${r.lostPercent.toFixed(2)}%` : `${r.retransmits} retransmits`;
      say(`  ${label}: ${(r.bps / 1e9).toFixed(2)} Gbit/s, ${extra}`);
    }

    say("\npools and counters, from each instance's /metrics:");
    const row = (inst: Instance, m: Awaited<ReturnType<typeof scrape>>, pool: string) => {
      const l = { pool };
      return `  ${inst.host.ns.padEnd(14)} ${pool.padEnd(12)} allocated ${String(sum(m, "udptun_buffer_allocated", l)).padStart(4)}  in use ${sum(m, "udptun_buffer_in_use", l)}  capacity ${sum(m, "udptun_buffer_capacity", l)}`;
    };
    for (const inst of [a, b]) {
      const m = await scrape(lab, inst);
      const pools = [...new Set(m.filter((s) => s.name === "udptun_buffer_allocated").map((s) => s.labels.pool))];
      for (const pool of pools) say(row(inst, m, pool));
      say(`  ${"".padEnd(14)} packets out ${sum(m, "udptun_packets_total", { path: "device_to_network" })}, in ${sum(m, "udptun_packets_total", { path: "network_to_device" })}, drops ${sum(m, "udptun_drops_total")}${dropReasons(m)}`);
      const hs = (event: string) => sum(m, "udptun_wireguard_handshakes_total", { event });
      const latest = sum(m, "udptun_wireguard_latest_handshake_timestamp_seconds");
      say(`  ${"".padEnd(14)} WireGuard handshakes initiated ${hs("initiated")}, completed ${hs("completed")}, failed ${hs("failed")}; latest ${latest > 0 ? `${(Date.now() / 1000 - latest).toFixed(0)} s ago` : "none"}; cookies sent ${sum(m, "udptun_wireguard_cookies_total", { direction: "sent" })}, received ${sum(m, "udptun_wireguard_cookies_total", { direction: "received" })}`);
    }

    say("\nPrometheus (scraping every second):");
    await waitUntil(async () => (await query(lab, prom, "udptun_packets_total > 0")).length >= 4, 20_000);
    for (const s of await query(lab, prom, "up{job=\"udptun\"}")) say(`  up{instance="${s.metric.instance}"} = ${s.value[1]}`);
    for (const s of await query(lab, prom, "sum by (instance, path) (udptun_packets_total)")) {
      say(`  packets{instance="${s.metric.instance}", path="${s.metric.path}"} = ${s.value[1]}`);
    }
    for (const s of await query(lab, prom, "sum by (instance, event) (udptun_wireguard_handshakes_total)")) {
      say(`  handshakes{instance="${s.metric.instance}", event="${s.metric.event}"} = ${s.value[1]}`);
    }
    for (const s of await query(lab, prom, "time() - udptun_wireguard_latest_handshake_timestamp_seconds")) {
      say(`  latest handshake{instance="${s.metric.instance}", peer="${s.metric.peer}"}: ${Number(s.value[1]).toFixed(0)} s ago`);
    }
    for (const s of await query(lab, prom, "udptun_buffer_allocated")) {
      say(`  udptun_buffer_allocated{instance="${s.metric.instance}", pool="${s.metric.pool}"} = ${s.value[1]}`);
    }

    for (const inst of [a, b]) {
      const { code, ms } = await stopInstance(inst);
      say(`\n${inst.host.ns}: SIGTERM -> exit ${code} in ${ms.toFixed(0)} ms`);
    }
    prom.daemon.child.kill("SIGTERM");
  } finally {
    await cleanup();
  }
  say("\ndemo done: namespaces removed");
}

await main();
