// End to end: two udptun processes joined over a bridge in network namespaces, real
// ping and iperf3 through the tunnel, a real Prometheus scraping both, a stranger
// sending junk (refused by the peer filter; and, with it off, by udptun), a peer given by
// name, promtool linting a live /metrics, and a clean SIGTERM. Needs root, iproute2, iperf3,
// prometheus (and its promtool), curl.
import t from "tap";
import { existsSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { iperf } from "./lib/iperf.ts";
import { must, run } from "./lib/proc.ts";
import { query, startPrometheus, waitUntil } from "./lib/prometheus.ts";
import type { Prometheus } from "./lib/prometheus.ts";
import { promtoolCheck } from "./lib/promtool.ts";
import { fetchIn, NODE, scrape, startInstance, stopInstance, sum, tunnelConfig } from "./lib/udptun.ts";
import type { Instance } from "./lib/udptun.ts";
import { BATCH, SUPER_BUFFER_SIZE } from "../../src/tunnel/constants.ts";
import { DEFAULTS } from "../../src/config/schema.ts";

const lab = new Lab();
let hostA: Host, hostB: Host, stranger: Host;
let a: Instance, b: Instance;
let prom: Prometheus;

t.before(async () => {
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  stranger = await lab.addHost("x", 3);
  const monitor = await lab.addressHub(254);
  const ends = [{ name: "a", host: hostA, n: 1 }, { name: "b", host: hostB, n: 2 }];
  a = await startInstance(lab, hostA, "a", tunnelConfig(ends[0], [ends[1]]));
  b = await startInstance(lab, hostB, "b", tunnelConfig(ends[1], [ends[0]]));
  prom = await startPrometheus(lab, lab.hub, `${monitor}:9090`, [`${hostA.ip4}:9464`, `${hostB.ip4}:9464`]);
});

t.teardown(async () => {
  for (const inst of [a, b]) if (inst && inst.daemon.child.exitCode === null) inst.daemon.child.kill("SIGKILL");
  prom?.daemon.child.kill("SIGKILL");
  await lab.destroy();
});

const ping = (from: Host, to: string, v6 = false) =>
  run(...lab.exec(from, "ping", [...(v6 ? ["-6"] : []), "-c", "3", "-i", "0.2", "-W", "2", to]));

t.test("the created device has the configured MTU and the default queue length", async (t) => {
  for (const host of [hostA, hostB]) {
    const link = await must(...lab.exec(host, "ip", ["-o", "link", "show", "dev", "udptun0"]));
    t.match(link, /mtu 1420 /, `${host.ns}: mtu`);
    t.match(link, new RegExp(`qlen ${DEFAULTS.txQueueLen}\\b`), `${host.ns}: qlen ${DEFAULTS.txQueueLen}, not the TUN default of 500`);
  }
});

t.test("ping crosses the tunnel both ways, IPv4 and IPv6", async (t) => {
  for (const [from, to, v6] of [[hostA, "10.77.0.2", false], [hostB, "10.77.0.1", false], [hostA, "fd77::2", true], [hostB, "fd77::1", true]] as const) {
    const r = await ping(from, to, v6);
    t.equal(r.code, 0, `ping ${from.ns} -> ${to}`);
    t.match(r.stdout, /3 received/);
  }
});

const iperfAB = (args: string[], seconds: number) => iperf(lab, hostA, hostB, args, seconds);

// Floors far below what the tunnel does (1-2 Gbit/s here), so they fail on breakage, not on a busy machine.
const TCP_FLOOR = 100e6;

t.test("iperf3 TCP through the tunnel, both directions, IPv4 and IPv6", async (t) => {
  for (const [label, args] of [
    ["A->B v4", ["-c", "10.77.0.2"]], ["B->A v4", ["-c", "10.77.0.2", "-R"]],
    ["A->B v6", ["-c", "fd77::2"]], ["B->A v6", ["-c", "fd77::2", "-R"]],
  ] as const) {
    const r = await iperfAB([...args], 3);
    t.ok(r.bps > TCP_FLOOR, `${label}: ${(r.bps / 1e9).toFixed(2)} Gbit/s > ${TCP_FLOOR / 1e6} Mbit/s`);
  }
});

t.test("iperf3 UDP through the tunnel, both directions", async (t) => {
  for (const [label, args] of [["A->B", ["-c", "10.77.0.2"]], ["B->A", ["-c", "10.77.0.2", "-R"]]] as const) {
    const r = await iperfAB(["-u", "-b", "200M", "-l", "1300", ...args], 3);
    t.ok(r.bps > 150e6, `${label}: goodput ${(r.bps / 1e6).toFixed(0)} Mbit/s of 200 offered`);
    t.ok(r.lostPercent < 5, `${label}: loss ${r.lostPercent.toFixed(2)}% < 5%`);
  }
});

t.test("30 s of TCP: pools stay bounded by one batch and every buffer comes back", async (t) => {
  const r = await iperfAB(["-c", "10.77.0.2", "-P", "2"], 30);
  t.ok(r.bps > TCP_FLOOR, `A->B: ${(r.bps / 1e9).toFixed(2)} Gbit/s over 30 s`);
  for (const inst of [a, b]) {
    const m = await scrape(lab, inst);
    // With offloads (the default) the pools are device_gso and network_gro.
    const pools = [...new Set(m.filter((s) => s.name === "udptun_buffer_allocated").map((s) => s.labels.pool))];
    t.equal(pools.length, 2, `${inst.host.ns}: two pools (${pools.join(", ")})`);
    for (const pool of pools) {
      const labels = { pool };
      const allocated = sum(m, "udptun_buffer_allocated", labels);
      t.ok(allocated > 0 && allocated <= BATCH, `${inst.host.ns} ${pool}: ${allocated} allocated, bound ${BATCH}`);
      t.equal(sum(m, "udptun_buffer_in_use", labels), 0, `${inst.host.ns} ${pool}: none in use once traffic stops`);
    }
    t.ok(sum(m, "udptun_packets_total", { path: "device_to_network" }) > 100_000, `${inst.host.ns} sent packets`);
    t.ok(sum(m, "udptun_packets_total", { path: "network_to_device" }) > 100_000, `${inst.host.ns} received packets`);
  }
});

/** Sends `count` well-formed udptun data messages carrying a ping from the stranger (no peer) to
 * A's port, one after the other; prints REPLY if anything comes back. */
async function strangerSends(port: number, count: number) {
  const sender = `
    const s = require("node:dgram").createSocket("udp4");
    const msg = Buffer.from("1100000045000054000040004001000ac0a80003" + "0a4d0001" + "00".repeat(64), "hex");
    let n = 0; s.bind(40000, () => { const go = () => { if (n++ === ${count}) return s.close(); s.send(msg, ${port}, "${hostA.ip4}", go); }; go(); });
    s.on("message", () => { console.log("REPLY"); process.exitCode = 3; });
    setTimeout(() => s.close(), 1500).unref();`;
  return run(...lab.exec(stranger, NODE, ["-e", sender]), { timeoutMs: 15_000 });
}

const NET = { path: "network_to_device" };

t.test("datagrams from a stranger are dropped in the kernel by the peer filter, counted, answered with nothing", async (t) => {
  const m0 = await scrape(lab, a);
  const count = 500;
  const r = await strangerSends(51820, count);
  t.equal(r.code, 0, "sender ran");
  t.notMatch(r.stdout, /REPLY/, "no reply to the stranger");
  await waitUntil(async () => sum(await scrape(lab, a), "udptun_socket_receive_drops_total") >= sum(m0, "udptun_socket_receive_drops_total") + count, 5000);
  const m1 = await scrape(lab, a);
  t.equal(sum(m1, "udptun_socket_receive_drops_total") - sum(m0, "udptun_socket_receive_drops_total"), count,
    "every junk datagram counted under udptun_socket_receive_drops_total");
  t.equal(sum(m1, "udptun_drops_total", NET) - sum(m0, "udptun_drops_total", NET), 0, "none reached udptun (no network-path drop at all)");
  t.equal(a.daemon.child.exitCode, null, "udptun still running");
  t.equal((await ping(hostA, "10.77.0.2")).code, 0, "and still forwarding");
  t.match(a.daemon.output(), /"msg":"peer filter admits 1 endpoint\(s\)"/, "the filter's one log line");
  t.notMatch(a.daemon.output(), /"reason":"unknown_peer"/, "no unknown-peer drop logged");
});

t.test("with socket.peerFilter off, the stranger's datagrams reach udptun: unknown_peer", async (t) => {
  // A second instance on A, on its own port and device, with the filter off.
  const cfg = tunnelConfig({ host: hostA, n: 1 }, [{ name: "b", host: hostB, n: 2 }], {
    device: { name: "udptun5", address: ["10.75.0.1/24"], mtu: 1420 },
    listen: "0.0.0.0:51825",
    metrics: { listen: `${hostA.ip4}:9469` },
    socket: { peerFilter: false },
  }) as { peers: { endpoint: string; allowedIps: string[] }[] };
  cfg.peers[0].endpoint = `${hostB.ip4}:51825`;
  cfg.peers[0].allowedIps = ["10.75.0.2/32"];
  const open = await startInstance(lab, hostA, "a-open", cfg);
  try {
    const count = 500;
    const r = await strangerSends(51825, count);
    t.notMatch(r.stdout, /REPLY/, "no reply to the stranger");
    await waitUntil(async () => sum(await scrape(lab, open), "udptun_drops_total", { reason: "unknown_peer" }) >= count, 5000);
    const m = await scrape(lab, open);
    t.equal(sum(m, "udptun_drops_total", { ...NET, reason: "unknown_peer" }), count, "every junk datagram counted under unknown_peer");
    t.equal(sum(m, "udptun_drops_total", NET), count, "and under no other reason");
    t.equal(sum(m, "udptun_socket_receive_drops_total"), 0, "nothing dropped in the kernel");
    t.match(open.daemon.output(), /"msg":"peer filter off/, "the filter being off is logged");
    t.equal(open.daemon.output().split("\n").filter((l) => l.includes('"reason":"unknown_peer"')).length, 1, "the first unknown-peer drop logged, once");
  } finally {
    t.equal((await stopInstance(open)).code, 0, "stopped cleanly");
  }
});

t.test("more peers than the filter can hold (SIGHUP): a warning, the old filter removed, strangers reach udptun", async (t) => {
  const cfg = (peers: number) => ({
    transport: "plain",
    device: { name: "udptun8", address: ["10.88.0.1/16"], mtu: 1420 },
    listen: "0.0.0.0:51828",
    // Endpoints nobody answers from; only the count matters here.
    peers: Array.from({ length: peers }, (_, i) => ({ name: `p${i}`, endpoint: `10.200.${i >> 8}.${i & 255}:51828`, allowedIps: [`10.88.${1 + (i >> 8)}.${i & 255}/32`] })),
    metrics: { listen: `${hostA.ip4}:9472` },
  });
  const many = await startInstance(lab, hostA, "a-many", cfg(1));
  try {
    t.match(many.daemon.output(), /"msg":"peer filter admits 1 endpoint\(s\)"/, "one peer at start: filtered");
    const before = await strangerSends(51828, 100);
    t.equal(before.code, 0, "sender ran");
    await waitUntil(async () => sum(await scrape(lab, many), "udptun_socket_receive_drops_total") >= 100, 5000);
    t.equal(sum(await scrape(lab, many), "udptun_drops_total", { reason: "unknown_peer" }), 0, "the stranger is refused in the kernel");

    writeFileSync(many.config, JSON.stringify(cfg(818)));
    many.daemon.child.kill("SIGHUP");
    const warn = JSON.parse(await many.daemon.waitFor(/"msg":"peer filter not attached/, 10_000)) as { level: number; code: string; err: string };
    t.equal(warn.level, 40, "logged as a warning");
    t.equal(warn.code, "E2BIG", `with the reason: ${warn.err}`);
    await many.daemon.waitFor(/"msg":"peers reloaded"/, 10_000);
    const after = await strangerSends(51828, 100);
    t.equal(after.code, 0, "sender ran");
    await waitUntil(async () => sum(await scrape(lab, many), "udptun_drops_total", { reason: "unknown_peer" }) >= 100, 5000);
    const m = await scrape(lab, many);
    t.equal(sum(m, "udptun_drops_total", { ...NET, reason: "unknown_peer" }), 100, "no filter left: the stranger's datagrams reach udptun, unknown_peer");
    t.equal(sum(m, "udptun_socket_receive_drops_total"), 100, "and no more in the kernel");
  } finally {
    t.equal((await stopInstance(many)).code, 0, "stopped cleanly");
  }
});

t.test("Prometheus scrapes both instances: pool series and packet counters", async (t) => {
  const targets = [`${hostA.ip4}:9464`, `${hostB.ip4}:9464`];
  await waitUntil(async () => (await query(lab, prom, "up == 1")).length === 2, 20_000);
  // Wait for a scrape that saw the traffic above, then check every series through the API.
  await waitUntil(async () => (await query(lab, prom, "udptun_packets_total > 1000")).length >= 4, 20_000);
  const pools = await query(lab, prom, "udptun_buffer_allocated");
  for (const instance of targets) {
    // Offloads are on by default: a pool of super-packet buffers per path.
    for (const [pool, size] of [["device_gso", SUPER_BUFFER_SIZE], ["network_gro", SUPER_BUFFER_SIZE]] as const) {
      const s = pools.find((x) => x.metric.instance === instance && x.metric.pool === pool);
      t.ok(s, `udptun_buffer_allocated{instance=${instance}, pool=${pool}} exists`);
      t.equal(s?.metric.buffer_size, String(size), "tagged with the buffer size");
      t.ok(Number(s?.value[1]) > 0, "and counts allocated buffers");
    }
    const inUse = await query(lab, prom, `udptun_buffer_in_use{instance="${instance}"}`);
    t.equal(inUse.length, 2, `${instance}: in-use series for both pools`);
    for (const path of ["device_to_network", "network_to_device"]) {
      const p = await query(lab, prom, `sum(udptun_packets_total{instance="${instance}", path="${path}"})`);
      t.ok(Number(p[0]?.value[1]) > 100_000, `${instance} ${path}: packets counted (${p[0]?.value[1]})`);
    }
  }
  // The stranger's datagrams were counted just before: wait for a scrape that saw them.
  const strangerDrops = `udptun_socket_receive_drops_total{instance="${targets[0]}"} >= 500`;
  await waitUntil(async () => (await query(lab, prom, strangerDrops)).length === 1, 10_000);
  t.pass("the stranger's drops are visible in Prometheus");
});

t.test("promtool check metrics has nothing to say about a live /metrics", async (t) => {
  for (const inst of [a, b]) {
    const text = await fetchIn(lab, inst.host, inst.metricsUrl);
    t.match(text, /^udptun_packets_total\{/m, `${inst.host.ns}: a scrape after traffic`);
    const r = await promtoolCheck(text);
    t.equal(r.findings, "", `${inst.host.ns}: no findings`);
    t.equal(r.code, 0, `${inst.host.ns}: exit code 0`);
  }
});

t.test("an IPv6 underlay: dual-stack listen, IPv6 peer endpoints", async (t) => {
  // A second tunnel between the same hosts, over fd18::/64, beside the first one.
  const cfg = (self: Host, other: Host, n: number, m: number) => ({
    transport: "plain",
    device: { name: "udptun6", address: [`10.78.0.${n}/24`], mtu: 1400 },
    listen: "[::]:51821",
    peers: [{ name: "other", endpoint: `[${other.ip6}]:51821`, allowedIps: [`10.78.0.${m}/32`] }],
    metrics: { listen: `${self.ip4}:9465` },
  });
  const a6 = await startInstance(lab, hostA, "a6", cfg(hostA, hostB, 1, 2));
  const b6 = await startInstance(lab, hostB, "b6", cfg(hostB, hostA, 2, 1));
  try {
    t.equal((await ping(hostA, "10.78.0.2")).code, 0, "ping over the IPv6 underlay");
    const m = await scrape(lab, a6);
    t.ok(sum(m, "udptun_packets_total", { path: "network_to_device", peer: "other" }) >= 3, "replies came back from the IPv6 endpoint");
    t.equal(sum(m, "udptun_drops_total", { reason: "unknown_peer" }), 0, "v6 source matched the configured endpoint exactly");
    t.equal(sum(m, "udptun_socket_receive_drops_total"), 0, "and the peer filter of the dual-stack socket let every one in");
    t.match(a6.daemon.output(), /"msg":"peer filter admits 1 endpoint\(s\)"/, "the filter admits the IPv6 endpoint");
  } finally {
    for (const inst of [a6, b6]) t.equal((await stopInstance(inst)).code, 0, `${inst.host.ns} udptun6 stopped cleanly`);
  }
});

t.test("a peer given by name: the filter admits nothing until the name resolves, then the peer", async (t) => {
  // ip netns exec bind-mounts /etc/netns/<ns>/hosts over /etc/hosts: the name exists in A's namespace only.
  const dir = `/etc/netns/${hostA.ns}`;
  const hadNetnsDir = existsSync("/etc/netns");
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/hosts`, `127.0.0.1 localhost\n${hostB.ip4} peer-b.test\n`);
  const cfg = (self: Host, n: number, m: number, endpoint: string) => ({
    transport: "plain",
    device: { name: "udptun7", address: [`10.79.0.${n}/24`], mtu: 1420 },
    listen: "0.0.0.0:51827",
    peers: [{ name: "other", endpoint, allowedIps: [`10.79.0.${m}/32`] }],
    metrics: { listen: `${self.ip4}:9471` },
  });
  const started: Instance[] = [];
  try {
    const an = await startInstance(lab, hostA, "a-named", cfg(hostA, 1, 2, "peer-b.test:51827"));
    started.push(an);
    started.push(await startInstance(lab, hostB, "b-named", cfg(hostB, 2, 1, `${hostA.ip4}:51827`)));
    await an.daemon.waitFor(/"msg":"peer filter admits 1 endpoint\(s\)"/, 10_000);
    const lines = an.daemon.output().split("\n").filter((l) => /peer filter admits|peer endpoint resolved/.test(l)).map((l) => JSON.parse(l) as { msg: string; unresolved?: string[]; endpoint?: string });
    t.same(lines.map((l) => l.msg), ["peer filter admits 0 endpoint(s)", "peer endpoint resolved", "peer filter admits 1 endpoint(s)"],
      "nothing admitted at start, the peer once its name resolved");
    t.same(lines[0].unresolved, ["other"], "the first line names the unresolved peer");
    t.equal(lines[1].endpoint, `${hostB.ip4}:51827`, "resolved through the namespace's hosts file");
    t.equal((await ping(hostA, "10.79.0.2")).code, 0, "the peer's replies get through the filter");
  } finally {
    for (const inst of started) t.equal((await stopInstance(inst)).code, 0, `${inst.host.ns} udptun7 stopped cleanly`);
    rmSync(dir, { recursive: true, force: true });
    if (!hadNetnsDir) try { rmdirSync("/etc/netns"); } catch { /* someone else's are there now */ }
  }
});

t.test("SIGTERM: exit 0 quickly, every buffer returned, device removed", async (t) => {
  for (const inst of [a, b]) {
    const { code, ms } = await stopInstance(inst);
    t.equal(code, 0, `${inst.host.ns} exit code`);
    t.ok(ms < 2000, `${inst.host.ns} stopped in ${ms.toFixed(0)} ms`);
    const final = inst.daemon.output().split("\n").find((l) => l.includes('"msg":"stopped"'));
    t.ok(final, "final counters logged");
    const pools = JSON.parse(final ?? "{}").final?.pools;
    t.equal(pools?.device.inUse, 0, "device pool: all returned");
    t.equal(pools?.network.inUse, 0, "network pool: all returned");
    const links = await must(...lab.exec(inst.host, "ip", ["-o", "link"]));
    t.notMatch(links, /udptun0/, "the device it created is gone");
  }
});

t.test("a bad config stops before touching the system", async (t) => {
  const bad = tunnelConfig({ host: hostA, n: 1 }, [{ name: "b", host: hostB, n: 2 }]) as { device: { mtu: number } };
  bad.device.mtu = 99999;
  const { writeConfig, CLI } = await import("./lib/udptun.ts");
  const file = writeConfig("bad", bad);
  const r = await run(...lab.exec(hostA, NODE, [CLI, "run", "--config", file]), { timeoutMs: 15_000 });
  t.equal(r.code, 2, "exit code 2");
  t.match(r.stderr, /device\.mtu: .*99999/, "names the field and the value");
  t.notMatch(await must(...lab.exec(hostA, "ip", ["-o", "link"])), /udptun0/, "no device created");
});
