// The main job, end to end on one machine: two udptun ends in network namespaces, iperf3
// through the tunnel both ways, Prometheus scraping both, and the figures printed from
// /metrics and from Prometheus's API. Everything it creates is removed when it ends.
import { Lab } from "../test/e2e/lib/netns.ts";
import { iperf } from "../test/e2e/lib/iperf.ts";
import { query, startPrometheus, waitUntil } from "../test/e2e/lib/prometheus.ts";
import { scrape, startInstance, stopInstance, sum, tunnelConfig } from "../test/e2e/lib/udptun.ts";
import type { Instance } from "../test/e2e/lib/udptun.ts";

const SECONDS = Number(process.env.DEMO_SECONDS ?? 5);
const say = (s: string) => console.log(s);

async function main(): Promise<void> {
  const lab = new Lab();
  const cleanup = () => lab.destroy();
  process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
  try {
    await lab.up();
    const hostA = await lab.addHost("a", 1);
    const hostB = await lab.addHost("b", 2);
    const monitor = await lab.addressHub(254);
    say(`namespaces: ${hostA.ns} (198.18.0.1, tunnel 10.77.0.1) <-> ${hostB.ns} (198.18.0.2, tunnel 10.77.0.2), Prometheus in ${lab.hub}`);
    const ends = [{ name: "a", host: hostA, n: 1 }, { name: "b", host: hostB, n: 2 }];
    const a = await startInstance(lab, hostA, "a", tunnelConfig(ends[0], [ends[1]]));
    const b = await startInstance(lab, hostB, "b", tunnelConfig(ends[1], [ends[0]]));
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
      say(`  ${"".padEnd(14)} packets out ${sum(m, "udptun_packets_total", { path: "device_to_network" })}, in ${sum(m, "udptun_packets_total", { path: "network_to_device" })}, drops ${sum(m, "udptun_drops_total")}`);
    }

    say("\nPrometheus (scraping every second):");
    await waitUntil(async () => (await query(lab, prom, "udptun_packets_total > 0")).length >= 4, 20_000);
    for (const s of await query(lab, prom, "up{job=\"udptun\"}")) say(`  up{instance="${s.metric.instance}"} = ${s.value[1]}`);
    for (const s of await query(lab, prom, "sum by (instance, path) (udptun_packets_total)")) {
      say(`  packets{instance="${s.metric.instance}", path="${s.metric.path}"} = ${s.value[1]}`);
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
