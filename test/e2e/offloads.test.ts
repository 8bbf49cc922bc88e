// End to end with offloads on (the default): TUN super-packets split into wire datagrams
// and sent with UDP GSO, received with UDP GRO and joined back into super-packet writes.
// Correctness first: large TCP transfers and segmented UDP must arrive byte for byte, IPv4
// and IPv6 inner, with no checksum errors in either kernel; and a peer with offloads off
// must read the same wire format. Then the metrics must show the offloads at work.
import t from "tap";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { snmp } from "./lib/snmp.ts";
import { tcpStream, udpSegmented } from "./lib/transfer.ts";
import { must } from "./lib/proc.ts";
import { scrape, startInstance, stopInstance, sum, tunnelConfig } from "./lib/udptun.ts";
import type { Instance } from "./lib/udptun.ts";

const lab = new Lab();
let hostA: Host, hostB: Host;
let a: Instance, b: Instance;
const ends = () => [{ name: "a", host: hostA, n: 1 }, { name: "b", host: hostB, n: 2 }];

const MB = 1 << 20;
const ALL_ON = { offloads: { coalesceUdp: true } };
const STREAM_BYTES = 200 * MB;

t.before(async () => {
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  const [ea, eb] = ends();
  // Every offload, UDP joining too (off by default), so each native path is exercised.
  a = await startInstance(lab, hostA, "a", tunnelConfig(ea, [eb], ALL_ON));
  b = await startInstance(lab, hostB, "b", tunnelConfig(eb, [ea], ALL_ON));
});

t.teardown(async () => {
  for (const inst of [a, b]) if (inst && inst.daemon.child.exitCode === null) inst.daemon.child.kill("SIGKILL");
  await lab.destroy();
});

t.test("every offload is on, and the start-up log says so", async (t) => {
  for (const inst of [a, b]) {
    const line = inst.daemon.output().split("\n").find((l) => l.includes('"msg":"offloads"'));
    t.ok(line, `${inst.host.ns}: offloads log line`);
    const o = JSON.parse(line!) as Record<string, string>;
    t.equal(o.udpGso, "on");
    t.equal(o.udpGro, "on");
    t.match(o.tun, /^on \(csum tso4 tso6/);
    t.equal(o.coalesce, "on (tcp udp)");
    const m = await scrape(lab, inst);
    for (const name of ["udp_gso", "udp_gro", "tun", "coalesce"]) t.equal(sum(m, "udptun_offload_active", { offload: name }), 1, `${name} active`);
  }
});

/** Kernel checksum error counters of both namespaces, summed. */
async function csumErrors(): Promise<number> {
  let n = 0;
  for (const h of [hostA, hostB]) {
    const c = await snmp(lab, h);
    n += (c["Tcp.InCsumErrors"] ?? 0) + (c["Udp.InCsumErrors"] ?? 0) + (c["Udp6.InCsumErrors"] ?? 0);
  }
  return n;
}

t.test("TCP: 200 MiB each way arrives byte for byte, IPv4 and IPv6", async (t) => {
  const errorsBefore = await csumErrors();
  const before = await scrape(lab, b);
  let port = 7000;
  for (const [label, from, to, addr] of [
    ["A->B v4", hostA, hostB, "10.77.0.2"], ["B->A v4", hostB, hostA, "10.77.0.1"],
    ["A->B v6", hostA, hostB, "fd77::2"], ["B->A v6", hostB, hostA, "fd77::1"],
  ] as const) {
    const r = await tcpStream(lab, from, to, addr, port++, STREAM_BYTES);
    t.equal(r.receivedBytes, STREAM_BYTES, `${label}: every byte arrived`);
    t.equal(r.receivedSha, r.sentSha, `${label}: sha256 matches`);
  }
  t.equal(await csumErrors(), errorsBefore, "no checksum errors in either kernel");
  // The offloads did the carrying: B read super-packets and wrote joined runs.
  const after = await scrape(lab, b);
  const d = (name: string, labels = {}) => sum(after, name, labels) - sum(before, name, labels);
  const sentPackets = d("udptun_packets_total", { path: "device_to_network" });
  const recvPackets = d("udptun_packets_total", { path: "network_to_device" });
  const reads = d("udptun_tun_reads_total");
  const writes = d("udptun_tun_writes_total");
  const datagrams = d("udptun_udp_datagrams_received_total");
  t.ok(sentPackets / reads > 4, `B: ${(sentPackets / reads).toFixed(1)} packets per TUN read (TSO super-packets split)`);
  t.ok(recvPackets / writes > 4, `B: ${(recvPackets / writes).toFixed(1)} packets per TUN write (segments joined)`);
  t.ok(recvPackets / datagrams > 4, `B: ${(recvPackets / datagrams).toFixed(1)} packets per received datagram (UDP GRO)`);
});

t.test("UDP sent with UDP_SEGMENT (USO super-packets) arrives intact, IPv4 and IPv6", async (t) => {
  const errorsBefore = await csumErrors();
  const before = await scrape(lab, a);
  const bBefore = await scrape(lab, b);
  const count = 40_000;
  for (const [label, addr, port] of [["v4", "10.77.0.2", 7100], ["v6", "fd77::2", 7101]] as const) {
    const r = await udpSegmented(lab, hostA, hostB, addr, port, count, 1200, 16);
    t.equal(r.corrupt, 0, `${label}: no datagram altered`);
    t.equal(r.duplicates, 0, `${label}: none duplicated`);
    t.ok(r.intact >= count * 0.99, `${label}: ${r.intact} of ${count} arrived intact (>= 99%)`);
  }
  t.equal(await csumErrors(), errorsBefore, "no checksum errors in either kernel");
  const after = await scrape(lab, a);
  const packets = sum(after, "udptun_packets_total", { path: "device_to_network" }) - sum(before, "udptun_packets_total", { path: "device_to_network" });
  const reads = sum(after, "udptun_tun_reads_total") - sum(before, "udptun_tun_reads_total");
  t.ok(packets / reads > 4, `A: ${(packets / reads).toFixed(1)} packets per TUN read (USO super-packets split)`);
  const bAfter = await scrape(lab, b);
  const bd = (name: string, labels = {}) => sum(bAfter, name, labels) - sum(bBefore, name, labels);
  const joined = bd("udptun_packets_total", { path: "network_to_device" }) / bd("udptun_tun_writes_total");
  t.ok(joined > 4, `B: ${joined.toFixed(1)} datagrams per TUN write (UDP runs joined, USO)`);
});

t.test("a full socket: GSO sends cut short by EAGAIN resume mid super-packet, byte for byte", async (t) => {
  // A veth frees a datagram's memory at once, so the socket never fills on its own. A slow
  // queue on A's underlay holds the datagrams (their memory still charged to the socket),
  // and a 16 KiB send buffer then holds about a quarter of one super-packet's datagrams:
  // most sends stop part way, and the rest goes out once the socket drains.
  const [ea, eb] = ends();
  t.equal((await stopInstance(a)).code, 0, "A stopped");
  a = await startInstance(lab, hostA, "a-small", tunnelConfig(ea, [eb], { ...ALL_ON, socket: { sendBuffer: 16384 } }));
  await must(...lab.exec(hostA, "tc", ["qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "300mbit", "burst", "64kb", "latency", "200ms"]));
  try {
    const before = await scrape(lab, a);
    const r = await tcpStream(lab, hostA, hostB, "10.77.0.2", 7300, 30 * MB);
    t.equal(r.receivedSha, r.sentSha, `sha256 matches over ${r.receivedBytes} bytes`);
    const after = await scrape(lab, a);
    const d = (name: string, labels = {}) => sum(after, name, labels) - sum(before, name, labels);
    t.ok(d("udptun_socket_full_total") > 50, `the socket was full ${d("udptun_socket_full_total")} times (reads paused, the held batch resumed)`);
    t.equal(d("udptun_drops_total", { path: "device_to_network" }), 0, "nothing dropped on the way out");
  } finally {
    await must(...lab.exec(hostA, "tc", ["qdisc", "del", "dev", "eth0", "root"]));
  }
});

t.test("a peer with every offload off reads the same wire format", async (t) => {
  const [ea, eb] = ends();
  const stopped = await stopInstance(b);
  t.equal(stopped.code, 0, "B stopped");
  b = await startInstance(lab, hostB, "b-plain", tunnelConfig(eb, [ea], {
    offloads: { udpGso: false, udpGro: false, tun: false, coalesce: false },
  }));
  const m = await scrape(lab, b);
  for (const name of ["udp_gso", "udp_gro", "tun", "coalesce"]) t.equal(sum(m, "udptun_offload_active", { offload: name }), 0, `B: ${name} off`);
  t.ok(sum(m, "udptun_buffer_capacity", { pool: "device" }) > 0, "B uses the MTU-sized device pool");
  let port = 7200;
  for (const [label, from, to, addr] of [
    ["A(offloads)->B(plain) v4", hostA, hostB, "10.77.0.2"], ["B(plain)->A(offloads) v6", hostB, hostA, "fd77::1"],
  ] as const) {
    const r = await tcpStream(lab, from, to, addr, port++, 100 * MB);
    t.equal(r.receivedSha, r.sentSha, `${label}: sha256 matches over ${r.receivedBytes} bytes`);
  }
});

t.test("SIGTERM with offload pools: every buffer returned", async (t) => {
  for (const inst of [a, b]) {
    const m = await scrape(lab, inst);
    const pools = [...new Set(m.filter((s) => s.name === "udptun_buffer_in_use").map((s) => s.labels.pool))];
    for (const p of pools) t.equal(sum(m, "udptun_buffer_in_use", { pool: p }), 0, `${inst.host.ns} ${p}: none in use`);
    t.equal((await stopInstance(inst)).code, 0, `${inst.host.ns} exits 0`);
  }
  t.match(a.daemon.output(), /"device":\{"name":"device_gso"/, "A's exit summary names its offload pools");
});
