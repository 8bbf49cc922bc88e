// End to end with workers = 2 at both ends: each end runs two worker threads over two TUN
// queues and two SO_REUSEPORT sockets. iperf3 TCP with 4 flows both ways and UDP with 8
// flows both ways through the tunnel, with the kernel's own reordering counters and
// iperf3's out-of-order count; the per-worker counters in /metrics; a SIGHUP reload that
// must reach every worker (and a third end running one worker: the wire is the same);
// SIGTERM under load; a device deleted underneath (a fatal error in every worker); an
// existing device, single-queue (refused) or multi-queue (attached, left as found).
// Needs root, iproute2, iperf3, ping, ss, curl.
import t from "tap";
import { readFileSync, writeFileSync } from "node:fs";
import { iperf, startIperf } from "./lib/iperf.ts";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { must, run } from "./lib/proc.ts";
import { diff, netstat, TCP_REORDER } from "./lib/snmp.ts";
import { CLI, fetchIn, NODE, scrape, startInstance, stopInstance, sum, tunnelConfig, writeConfig } from "./lib/udptun.ts";
import type { Instance, Sample } from "./lib/udptun.ts";

const lab = new Lab();
let hostA: Host, hostB: Host, hostC: Host;
const end = (name: string, host: Host, n: number) => ({ name, host, n });
let A: ReturnType<typeof end>, B: ReturnType<typeof end>, C: ReturnType<typeof end>;
let a: Instance, b: Instance;
const others: Instance[] = [];
const WORKERS = { workers: 2 };

t.before(async () => {
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  hostC = await lab.addHost("c", 3);
  [A, B, C] = [end("a", hostA, 1), end("b", hostB, 2), end("c", hostC, 3)];
  a = await startInstance(lab, hostA, "a", tunnelConfig(A, [B], WORKERS));
  b = await startInstance(lab, hostB, "b", tunnelConfig(B, [A], WORKERS));
});

t.teardown(async () => {
  for (const inst of [a, b, ...others]) if (inst && inst.daemon.child.exitCode === null) inst.daemon.child.kill("SIGKILL");
  await lab.destroy();
});

const logLines = (out: string): Record<string, unknown>[] =>
  out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
const errorLines = (out: string) => logLines(out).filter((l) => Number(l.level) >= 50);
const links = async (host: Host) => must(...lab.exec(host, "ip", ["-o", "link"]));
const udpSockets = async (host: Host) =>
  (await must(...lab.exec(host, "ss", ["-Huln", "sport", "= :51820"]))).split("\n").filter(Boolean).length;
/** A metric's value per worker label ("0", "1"), summed over the other labels. */
const byWorker = (m: Sample[], name: string, labels: Record<string, string> = {}) =>
  ["0", "1"].map((w) => sum(m, name, { ...labels, worker: w }));

// Far below what the tunnel does (1-2 Gbit/s here): fails on breakage, not on a busy machine.
const TCP_FLOOR = 100e6;

t.test("workers = 2: two TUN queues, two SO_REUSEPORT sockets on one address, one process", async (t) => {
  const link = await must(...lab.exec(hostA, "ip", ["-d", "link", "show", "udptun0"]));
  // Two queues the kernel steers packets to (read), two detached ones the workers write through.
  t.match(link, /multi_queue numqueues 2 numdisabled 2/, "udptun0 is multi-queue: 2 queues read, 2 detached write queues");
  t.equal(await udpSockets(hostA), 2, "two UDP sockets bound to :51820");
  const started = logLines(a.daemon.output()).find((l) => l.msg === "udptun started") as { config: { workers: number } };
  t.equal(started.config.workers, 2, "the started line says workers: 2");
  t.equal(await fetchIn(lab, hostA, a.metricsUrl.replace(/metrics$/, "healthz")), "ok\n", "/healthz ok");
  const r = await run(...lab.exec(hostA, "ping", ["-c", "3", "-i", "0.2", "-W", "2", "10.77.0.2"]));
  t.equal(r.code, 0, "ping crosses the tunnel");
});

t.test("iperf3 TCP, 4 flows, both directions: no reordering (TCP's reorder counters flat at both ends)", async (t) => {
  for (const [label, args] of [["A->B", ["-c", "10.77.0.2", "-P", "4"]], ["B->A", ["-c", "10.77.0.2", "-P", "4", "-R"]]] as const) {
    const before = [await netstat(lab, hostA), await netstat(lab, hostB)];
    const r = await iperf(lab, hostA, hostB, [...args], 5);
    const after = [await netstat(lab, hostA), await netstat(lab, hostB)];
    t.ok(r.bps > TCP_FLOOR, `${label}: ${(r.bps / 1e9).toFixed(2)} Gbit/s > ${TCP_FLOOR / 1e6} Mbit/s (${r.retransmits} retransmits)`);
    for (const [i, ns] of ["A", "B"].entries()) {
      const d = diff(after[i], before[i]);
      t.same(TCP_REORDER.map((k) => d[k]), [0, 0, 0], `${label}: namespace ${ns}: ${TCP_REORDER.map((k) => `${k.slice(7)} +${d[k]}`).join(", ")}`);
      t.comment(`${label}: namespace ${ns}: TCPOFOQueue +${d["TcpExt.TCPOFOQueue"]} (out-of-order arrivals: losses included)`);
    }
  }
});

t.test("iperf3 UDP, 8 flows, both directions: 0 datagrams out of order", async (t) => {
  // The iperf3 client is the receiver (-R), the only side whose JSON carries the count.
  for (const [label, client, server, dst] of [["A->B", hostB, hostA, "10.77.0.1"], ["B->A", hostA, hostB, "10.77.0.2"]] as const) {
    const r = await iperf(lab, client, server, ["-c", dst, "-R", "-u", "-b", "40M", "-l", "1300", "-P", "8"], 4);
    t.equal(r.outOfOrder, 0, `${label}: 0 out of order (${(r.bps / 1e6).toFixed(0)} Mbit/s received, ${r.lostPercent.toFixed(2)}% lost)`);
    t.ok(r.bps > 100e6, `${label}: ${(r.bps / 1e6).toFixed(0)} Mbit/s of 320 offered`);
  }
});

t.test("/metrics: data-path series per worker; TUN reads spread over both, each peer's datagrams on one", async (t) => {
  for (const [inst, peer] of [[a, "b"], [b, "a"]] as const) {
    const m = await scrape(lab, inst);
    const ns = inst.host.ns;
    // Many flows (TCP 4+4, UDP 8+8, iperf3's control connections) hashed over two queues.
    const tx = byWorker(m, "udptun_packets_total", { path: "device_to_network", peer });
    t.ok(tx.every((n) => n > 1000), `${ns}: device_to_network packets by worker ${tx.join(" / ")}: both carried traffic`);
    // One peer = one 4-tuple = one socket of the group: all of its datagrams on one worker.
    const rx = byWorker(m, "udptun_packets_total", { path: "network_to_device", peer });
    t.equal(rx.filter((n) => n > 0).length, 1, `${ns}: network_to_device packets by worker ${rx.join(" / ")}: one worker`);
    for (const pool of ["device_gso", "network_gro"]) { // offloads are on by default
      const inUse = byWorker(m, "udptun_buffer_in_use", { pool });
      t.equal(m.filter((s) => s.name === "udptun_buffer_capacity" && s.labels.pool === pool).length, 2, `${ns}: ${pool} pool: one per worker`);
      t.ok(inUse.every((n) => n <= 64), `${ns}: ${pool} pool in use by worker ${inUse.join(" / ")}`);
    }
    const dataPath = m.filter((s) => s.name.startsWith("udptun_") && !s.name.startsWith("udptun_process_"));
    const unlabelled = dataPath.filter((s) => s.labels.worker !== "0" && s.labels.worker !== "1");
    t.same(unlabelled.map((s) => s.name), [], `${ns}: all ${dataPath.length} data-path samples carry worker="0" or "1"`);
    const proc = m.filter((s) => s.name.startsWith("udptun_process_"));
    t.ok(proc.length >= 5 && proc.every((s) => s.labels.worker === undefined), `${ns}: ${proc.length} process samples, process-wide (no worker label)`);
  }
});

t.test("SIGHUP reaches every worker: a peer added in both, reachable; the third end runs one worker", async (t) => {
  const c = await startInstance(lab, hostC, "c", tunnelConfig(C, [A]));
  others.push(c);
  const next = JSON.parse(readFileSync(a.config, "utf8")) as { peers: object[] };
  next.peers.push({ name: "c", endpoint: `${hostC.ip4}:51820`, allowedIps: ["10.77.0.3/32", "fd77::3/128"] });
  writeFileSync(a.config, JSON.stringify(next, null, 2));
  a.daemon.child.kill("SIGHUP");
  const line = JSON.parse(await a.daemon.waitFor(/"msg":"peers reloaded"/, 5000)) as { added: string[]; kept: string[]; workers: number[] };
  t.same(line.added, ["c"], "c added");
  t.same(line.kept, ["b"], "b kept");
  t.same(line.workers, [0, 1], "applied by worker 0 and worker 1");
  const m = await scrape(lab, a);
  const cSeries = m.filter((s) => s.name === "udptun_packets_total" && s.labels.peer === "c").map((s) => s.labels.worker);
  t.same([...new Set(cSeries)].sort(), ["0", "1"], "both workers' peer tables have c (its series exist per worker)");
  for (const [from, to] of [[hostA, "10.77.0.3"], [hostC, "10.77.0.1"]] as const) {
    const r = await run(...lab.exec(from, "ping", ["-c", "3", "-i", "0.2", "-W", "2", to]));
    t.equal(r.code, 0, `ping ${from.ns} -> ${to} (workers = 2 <-> workers = 1)`);
  }
  t.same(errorLines(a.daemon.output()), [], "no error logged");
  t.equal((await stopInstance(c)).code, 0, "c stops cleanly");
});

t.test("SIGTERM under load: exit 0 within 2 s, every worker's buffers back, fds closed, device gone", async (t) => {
  const flow = await startIperf(lab, hostA, hostB, ["-c", "10.77.0.2", "-P", "4"], 60);
  while (flow.intervals() < 4) await new Promise((r) => setTimeout(r, 200)); // a second of 4 flows
  const results = await Promise.all([a, b].map(stopInstance));
  for (const [i, inst] of [a, b].entries()) {
    const { code, ms } = results[i];
    const ns = inst.host.ns;
    t.equal(code, 0, `${ns}: exit code 0`);
    t.ok(ms < 2000, `${ns}: stopped in ${ms.toFixed(0)} ms`);
    const stopped = logLines(inst.daemon.output()).find((l) => l.msg === "stopped") as {
      final: { pools: Record<string, { inUse: number; allocated: number }>; deviceToNetwork: { packets: number } };
      workers: { pools: Record<string, { inUse: number }>; deviceToNetwork: { packets: number } }[];
      deviceRemoved: boolean;
    } | undefined;
    t.ok(stopped, `${ns}: final counters logged`);
    t.equal(stopped?.workers.length, 2, `${ns}: both workers reported`);
    for (const [w, s] of (stopped?.workers ?? []).entries()) {
      t.same([s.pools.device.inUse, s.pools.network.inUse], [0, 0], `${ns}: worker ${w}: device and network pools in use 0 (${s.deviceToNetwork.packets} packets sent)`);
    }
    t.same([stopped?.final.pools.device.inUse, stopped?.final.pools.network.inUse], [0, 0], `${ns}: in use 0 overall`);
    t.equal(stopped?.deviceRemoved, true, `${ns}: it had created the device`);
    t.notMatch(await links(inst.host), /udptun0/, `${ns}: the device is gone`);
    t.equal(await udpSockets(inst.host), 0, `${ns}: no socket left on :51820`);
  }
  flow.server.child.kill("SIGKILL"); // the flow dies with the tunnel; the client exits on its own
  void flow.result.catch(() => {});
});

t.test("a worker's fatal error (device deleted) takes the process down: one error line, exit 1", async (t) => {
  const d = await startInstance(lab, hostA, "a-del", tunnelConfig(A, [B], WORKERS));
  others.push(d);
  const t0 = performance.now();
  await must(...lab.exec(hostA, "ip", ["link", "del", "udptun0"]));
  const code = await d.daemon.exited;
  const ms = performance.now() - t0;
  t.equal(code, 1, "exit code 1");
  t.ok(ms < 2000, `exited ${ms.toFixed(0)} ms after the deletion`);
  const errs = errorLines(d.daemon.output());
  t.equal(errs.length, 1, "exactly one error line (every worker saw it; the first one is told)");
  const e = errs[0] as { msg?: string; worker?: number; err?: { message?: string } };
  t.match(e.msg, /^worker [01] failed; stopping every worker$/, `says which worker: ${e.msg}`);
  t.match(String(e.err?.message), /TUN device udptun0 was deleted/, `and what happened: ${e.err?.message}`);
  t.notMatch(await links(hostA), /udptun0/, "no device left");
  t.equal(await udpSockets(hostA), 0, "no socket left");
});

t.test("an existing device: single-queue is refused with the fix named; multi-queue is attached and left as found", async (t) => {
  await must(...lab.exec(hostA, "ip", ["tuntap", "add", "udptun0", "mode", "tun"]));
  const r = await run(...lab.exec(hostA, NODE, [CLI, "run", "--config", writeConfig("a-sq", tunnelConfig(A, [B], WORKERS))]), { timeoutMs: 15_000 });
  t.equal(r.code, 1, "exit code 1");
  const errs = errorLines(r.stdout);
  t.equal(errs.length, 1, "one error line");
  t.match(String(errs[0]?.err), /udptun0 exists without multi-queue support.*ip tuntap add dev udptun0 mode tun multi_queue/, `names the fix: ${String(errs[0]?.err)}`);
  t.equal(await udpSockets(hostA), 0, "no socket left bound");
  await must(...lab.exec(hostA, "ip", ["link", "del", "udptun0"]));

  await must(...lab.exec(hostA, "ip", ["tuntap", "add", "udptun0", "mode", "tun", "multi_queue"]));
  await must(...lab.exec(hostA, "ip", ["addr", "add", "10.77.0.1/24", "dev", "udptun0"]));
  const inst = await startInstance(lab, hostA, "a-mq", tunnelConfig(A, [B], WORKERS));
  others.push(inst);
  t.match(await must(...lab.exec(hostA, "ip", ["-d", "link", "show", "udptun0"])), /numqueues 2 numdisabled 2/, "attached: 2 + 2 queues");
  const stopped = await stopInstance(inst);
  t.equal(stopped.code, 0, "stops cleanly");
  const link = await must(...lab.exec(hostA, "ip", ["-d", "link", "show", "udptun0"]));
  t.match(link, /numqueues 0 numdisabled 0/, "left as found: still there, no queue attached");
  t.match(logLines(inst.daemon.output()).find((l) => l.msg === "stopped"), { deviceRemoved: false }, "deviceRemoved: false");
  await must(...lab.exec(hostA, "ip", ["link", "del", "udptun0"]));
});
