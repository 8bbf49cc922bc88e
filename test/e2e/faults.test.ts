// End to end, under faults: a peer killed and restarted, the TUN device deleted underneath,
// the metrics port already taken, SIGTERM under full load, SIGHUP reloads (good and bad)
// while a flow runs. Its own Lab (four hosts), so it runs beside the other e2e files.
// Needs root, iproute2, iperf3, ping, ss, curl, GNU time (/usr/bin/time).
import { readFileSync, writeFileSync } from "node:fs";
import t from "tap";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { must, run, start } from "./lib/proc.ts";
import type { Daemon } from "./lib/proc.ts";
import { waitUntil } from "./lib/prometheus.ts";
import { snmp } from "./lib/snmp.ts";
import { CLI, fetchIn, NODE, scrape, startInstance, stopInstance, sum, tunnelConfig, writeConfig } from "./lib/udptun.ts";
import type { Instance } from "./lib/udptun.ts";

const lab = new Lab();
let hostA: Host, hostB: Host, hostC: Host, hostD: Host;
const end = (name: string, host: Host, n: number) => ({ name, host, n });
let A: ReturnType<typeof end>, B: ReturnType<typeof end>, C: ReturnType<typeof end>, D: ReturnType<typeof end>;

t.before(async () => {
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  hostC = await lab.addHost("c", 3);
  hostD = await lab.addHost("d", 4);
  [A, B, C, D] = [end("a", hostA, 1), end("b", hostB, 2), end("c", hostC, 3), end("d", hostD, 4)];
});

// Whatever a test started and did not stop itself is killed after it, so the next test
// finds no udptun0 and no port taken.
const procs: Daemon[] = [];
/** Grandchildren (udptun under GNU time): killed while their parent still runs. */
const inner: { pid: number; parent: Daemon }[] = [];
const track = <T extends Daemon | Instance>(p: T): T => {
  procs.push("daemon" in p ? p.daemon : p);
  return p;
};
const launch = async (self: ReturnType<typeof end>, cfg: object): Promise<Instance> =>
  track(await startInstance(lab, self.host, self.name, cfg));

t.afterEach(async () => {
  for (const { pid, parent } of inner.splice(0)) {
    if (parent.child.exitCode !== null) continue;
    try { process.kill(pid, "SIGKILL"); } catch { /* exiting already */ }
  }
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
});

t.teardown(() => lab.destroy());

/** JSON log lines of a udptun process. */
const logLines = (out: string): Record<string, unknown>[] =>
  out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
const errorLines = (out: string) => logLines(out).filter((l) => Number(l.level) >= 50);

/** Resolves with the first line of d's output that pred accepts, already seen or still to come. */
function waitForLine(d: Daemon, pred: (line: string) => boolean, timeoutMs: number): Promise<string> {
  const seen = d.output().split("\n").find(pred);
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    let partial = "";
    const onData = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      const hit = lines.find(pred);
      if (hit !== undefined) finish(() => resolve(hit));
    };
    const finish = (f: () => void): void => {
      clearTimeout(timer);
      d.child.stdout!.off("data", onData);
      f();
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`no matching line within ${timeoutMs} ms in:\n${d.output()}`))), timeoutMs);
    d.child.stdout!.on("data", onData);
    void d.exited.then((code) => finish(() => reject(new Error(`exited (${code}) before a matching line:\n${d.output()}`))));
  });
}

/** One kernel counter of a host's namespace ("Udp.NoPorts"). */
const counter = async (host: Host, key: string): Promise<number> => (await snmp(lab, host))[key];

/** CPU seconds (user + system, all threads) a live process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ ticks (100 on Linux)
}

const links = async (host: Host) => must(...lab.exec(host, "ip", ["-o", "link"]));
const ping = (from: Host, to: string, count = 3) =>
  run(...lab.exec(from, "ping", ["-n", "-c", String(count), "-i", "0.2", "-W", "1", to]), { timeoutMs: 15_000 });
const tx = (m: Awaited<ReturnType<typeof scrape>>, peer: string) => sum(m, "udptun_packets_total", { path: "device_to_network", peer });
const rx = (m: Awaited<ReturnType<typeof scrape>>, peer: string) => sum(m, "udptun_packets_total", { path: "network_to_device", peer });
const drops = (m: Awaited<ReturnType<typeof scrape>>, reason: string) => sum(m, "udptun_drops_total", { reason });

/**
 * An iperf3 run between two hosts, not awaited: a one-off server, a text-mode client with
 * --forceflush, so each 1-second interval is a line as it happens (-f m: Mbit/s).
 */
async function startFlow(client: Host, server: Host, args: string[], seconds: number) {
  const srv = track(start(...lab.exec(server, "iperf3", ["-s", "-1", "--forceflush"])));
  await srv.waitFor(/Server listening/);
  const cli = track(start(...lab.exec(client, "iperf3", ["--forceflush", "-i", "1", "-f", "m", "-t", String(seconds), ...args])));
  const sumLines = args.includes("-P");
  const rate = (line: string): number | null => {
    if (sumLines !== line.startsWith("[SUM]") || /sender|receiver/.test(line)) return null;
    const m = /\s(\d+\.\d+)-(\d+\.\d+)\s+sec\s.*?\s(\d+(?:\.\d+)?) Mbits\/sec/.exec(line);
    if (!m || Number(m[2]) - Number(m[1]) < 0.5) return null; // a stub interval at the very end
    return Number(m[3]) * 1e6;
  };
  return {
    client: cli,
    server: srv,
    /** The first 1-second interval line: traffic is flowing. */
    flowing: () => waitForLine(cli, (l) => rate(l) !== null, 20_000),
    /** Bits/s of each 1-second interval, once the client has exited 0. */
    intervals: async () => {
      const code = await cli.exited;
      if (code !== 0) throw new Error(`iperf3 ${args.join(" ")} exited ${code}:\n${cli.output()}`);
      return cli.output().split("\n").map(rate).filter((r) => r !== null);
    },
  };
}

t.test("peer killed and restarted: A lives on, traffic resumes within 1 s of B's return", async (t) => {
  const cfgB = tunnelConfig(B, [A]);
  const a = await launch(A, tunnelConfig(A, [B]));
  let b = await launch(B, cfgB);
  // -D: each reply line starts with its wall-clock time, comparable with pino's "time".
  const pinger = track(start(...lab.exec(hostA, "ping", ["-D", "-n", "-i", "0.05", "10.77.0.2"])));
  await pinger.waitFor(/bytes from 10\.77\.0\.2/);

  const noPorts0 = await counter(hostB, "Udp.NoPorts");
  const unreach0 = await counter(hostA, "Icmp.InDestUnreachs");
  const tx0 = tx(await scrape(lab, a), "b");
  const killedAt = Date.now();
  b.daemon.child.kill("SIGKILL");
  await b.daemon.exited;

  // While B is gone, A keeps reading its TUN and sending (B's kernel answers port unreachable).
  await waitUntil(async () => tx(await scrape(lab, a), "b") >= tx0 + 20 && await counter(hostB, "Udp.NoPorts") >= noPorts0 + 20, 10_000);
  const down = await scrape(lab, a);
  t.ok(down.length > 0, "A's /metrics answers");
  t.equal(await fetchIn(lab, hostA, a.metricsUrl.replace(/metrics$/, "healthz")), "ok\n", "A's /healthz says ok");
  t.ok(await counter(hostA, "Icmp.InDestUnreachs") > unreach0, "A's namespace received ICMP port unreachable from B");
  t.equal(a.daemon.child.exitCode, null, "A still running while B is down");
  t.ok(tx(down, "b") >= tx0 + 20, `A kept sending to b: ${tx(down, "b") - tx0} packets since the kill`);
  t.same(errorLines(a.daemon.output()), [], "A logged no error");
  t.comment(`A's send errors while B was down: ${drops(down, "send_error")}`);

  b = await launch(B, cfgB);
  const started = JSON.parse(await b.daemon.waitFor(/"msg":"udptun started"/)) as { time: number };
  // The first reply timestamped after B's return (older lines and in-flight replies are earlier).
  const replyTime = (l: string) => Number(/^\[(\d+\.\d+)\] \d+ bytes from 10\.77\.0\.2/.exec(l)?.[1] ?? 0) * 1000;
  const first = await waitForLine(pinger, (l) => replyTime(l) > started.time, 5000);
  const recoveryMs = replyTime(first) - started.time;
  t.ok(recoveryMs < 1000, `first reply ${recoveryMs.toFixed(1)} ms after B's "udptun started" (B down ${started.time - killedAt} ms + restart)`);
  t.equal(a.daemon.child.exitCode, null, "A never stopped");
  const after = await scrape(lab, a);
  t.ok(rx(after, "b") > rx(down, "b"), "A counts packets from the new B");

  for (const inst of [a, b]) t.equal((await stopInstance(inst)).code, 0, `${inst.host.ns} stops cleanly`);
});

t.test("TUN device deleted underneath: one error naming it, exit 1, promptly, no spin", async (t) => {
  // GNU time wraps udptun to report its total CPU time on exit; /proc gives it at the deletion.
  const file = writeConfig("a-del", tunnelConfig(A, [B]));
  const d = track(start(...lab.exec(hostA, "/usr/bin/time", ["-f", "cpu user=%U system=%S", NODE, CLI, "run", "--config", file])));
  await d.waitFor(/"msg":"udptun started"/);
  const pid = Number(readFileSync(`/proc/${d.child.pid}/task/${d.child.pid}/children`, "utf8").trim());
  inner.push({ pid, parent: d });
  t.match(await links(hostA), /udptun0/, "device there");

  const cpuBefore = cpuSeconds(pid);
  const t0 = performance.now();
  await must(...lab.exec(hostA, "ip", ["link", "del", "udptun0"]));
  const code = await d.exited;
  const ms = performance.now() - t0;
  const [, user, system] = /cpu user=(\d+\.\d+) system=(\d+\.\d+)/.exec(d.output()) ?? [];
  const cpu = Number(user) + Number(system) - cpuBefore;

  t.equal(code, 1, "exit code 1");
  t.ok(ms < 2000, `exited ${ms.toFixed(0)} ms after the deletion`);
  t.ok(user !== undefined && cpu < 0.3, `CPU from deletion to exit: ${cpu.toFixed(2)} s`);
  const errs = errorLines(d.output());
  t.equal(errs.length, 1, "exactly one error line");
  const message = String((errs[0]?.err as { message?: string } | undefined)?.message);
  t.match(message, /TUN device udptun0 was deleted/, `naming the device and what happened: ${message}`);
});

t.test("metrics port already taken: clear error, exit 1, nothing created", async (t) => {
  const blocker = track(start(...lab.exec(hostA, NODE, ["-e",
    `require("node:net").createServer().listen(9464, "${hostA.ip4}", () => console.log("listening"))`])));
  await blocker.waitFor(/listening/);
  // Every link change in A's namespace, so a device created and removed again is seen too.
  const monitor = track(start(...lab.exec(hostA, "ip", ["monitor", "link"])));
  const mark = async (name: string) => {
    await must(...lab.exec(hostA, "ip", ["tuntap", "add", name, "mode", "tun"]));
    await must(...lab.exec(hostA, "ip", ["link", "del", name]));
    await monitor.waitFor(new RegExp(`Deleted .*${name}`));
  };
  await mark("mark0"); // the monitor is listening

  const r = await run(...lab.exec(hostA, NODE, [CLI, "run", "--config", writeConfig("a-port", tunnelConfig(A, [B]))]), { timeoutMs: 15_000 });
  await mark("mark1"); // every link event of the run has been printed
  t.equal(r.code, 1, "exit code 1");
  const errs = errorLines(r.stdout);
  t.equal(errs.length, 1, "one error line");
  t.match(String(errs[0]?.err), `metrics.listen ${hostA.ip4}:9464: address already in use`, "names the metrics address");
  t.notMatch(r.stdout, /udptun started/, "never started");
  t.notMatch(monitor.output(), /udptun0/, "udptun0 never appeared");
  t.notMatch(await links(hostA), /udptun0/, "no udptun0 left");
  t.notMatch(await must(...lab.exec(hostA, "ss", ["-uln"])), /:51820\b/, "UDP 51820 not bound");
  t.equal(blocker.child.exitCode, null, "the port's owner is untouched");
});

t.test("SIGTERM under full load: exit 0 within 2 s, every buffer back, device gone", async (t) => {
  const a = await launch(A, tunnelConfig(A, [B]));
  const b = await launch(B, tunnelConfig(B, [A]));
  const flow = await startFlow(hostA, hostB, ["-c", "10.77.0.2", "-P", "4"], 60);
  const line = await flow.flowing();
  t.comment(`load: ${line.trim()}`);

  const results = await Promise.all([a, b].map(stopInstance));
  for (const [i, inst] of [a, b].entries()) {
    const { code, ms } = results[i];
    t.equal(code, 0, `${inst.host.ns} exit code 0`);
    t.ok(ms < 2000, `${inst.host.ns} stopped in ${ms.toFixed(0)} ms`);
    const final = logLines(inst.daemon.output()).find((l) => l.msg === "stopped") as
      { final?: { pools?: Record<string, { inUse: number }>; deviceToNetwork?: { packets: number; drops: object } }; deviceRemoved?: boolean } | undefined;
    t.ok(final, "final counters logged");
    t.equal(final?.final?.pools?.device.inUse, 0, "device pool: inUse 0");
    t.equal(final?.final?.pools?.network.inUse, 0, "network pool: inUse 0");
    t.equal(final?.deviceRemoved, true, "it had created the device");
    t.notMatch(await links(inst.host), /udptun0/, "the device is gone");
    t.comment(`${inst.host.ns}: ${final?.final?.deviceToNetwork?.packets} packets sent, device-path drops ${JSON.stringify(final?.final?.deviceToNetwork?.drops)}`);
  }
});

t.test("SIGHUP reload under a flow: b kept and undisturbed, c changed, d added; a bad file changes nothing", async (t) => {
  const cfgA = tunnelConfig(A, [B, C]) as { peers: object[] };
  const a = await launch(A, cfgA);
  await launch(B, tunnelConfig(B, [A]));
  // C answers on its old address and on the one A's new config will route to it.
  await launch(C, tunnelConfig(C, [A], { device: { name: "udptun0", address: ["10.77.0.3/24", "10.77.0.33/32"], mtu: 1420 } }));
  await launch(D, tunnelConfig(D, [A]));

  t.equal((await ping(hostA, "10.77.0.3")).code, 0, "before: c reachable at 10.77.0.3");
  t.not((await ping(hostA, "10.77.0.33", 1)).code, 0, "before: 10.77.0.33 not routed");
  t.not((await ping(hostA, "10.77.0.4", 1)).code, 0, "before: d unknown");

  const seconds = 8;
  const flowStart = performance.now();
  const flow = await startFlow(hostA, hostB, ["-c", "10.77.0.2"], seconds);
  await flow.flowing();
  const txB0 = tx(await scrape(lab, a), "b");

  const next = structuredClone(cfgA) as { peers: { name: string; endpoint: string; allowedIps: string[] }[] };
  next.peers[1].allowedIps = ["10.77.0.33/32"];
  next.peers.push({ name: "d", endpoint: `${hostD.ip4}:51820`, allowedIps: ["10.77.0.4/32", "fd77::4/128"] });
  writeFileSync(a.config, JSON.stringify(next, null, 2));
  a.daemon.child.kill("SIGHUP");
  const reloaded = JSON.parse(await a.daemon.waitFor(/"msg":"peers reloaded"/, 5000)) as Record<string, string[]>;
  const hupAt = (performance.now() - flowStart) / 1000;
  t.same(reloaded.kept, ["b"], "b kept");
  t.same(reloaded.changed, ["c"], "c changed");
  t.same(reloaded.added, ["d"], "d added");
  t.same(reloaded.removed, [], "none removed");
  t.same(reloaded.needsRestart, [], "nothing needs a restart");
  // Logged before "peers reloaded"; d's replies below can only arrive through the new filter.
  t.match(a.daemon.output(), /"endpoints":3,.*"msg":"peer filter admits 3 endpoint\(s\)"/, "the peer filter was rebuilt with d's endpoint");

  t.equal((await ping(hostA, "10.77.0.33")).code, 0, "after: c reachable at its new address");
  t.equal((await ping(hostA, "10.77.0.4")).code, 0, "after: d reachable");
  const noRoute0 = drops(await scrape(lab, a), "no_route");
  t.not((await ping(hostA, "10.77.0.3", 1)).code, 0, "after: c's old address no longer routed");
  const m = await scrape(lab, a);
  t.ok(drops(m, "no_route") > noRoute0, "and counted as no_route");
  t.ok(tx(m, "d") >= 3 && rx(m, "d") >= 3, `packets counted for d (${tx(m, "d")} out, ${rx(m, "d")} in)`);
  t.ok(tx(m, "b") > txB0, `b's counters carried on (${txB0} -> ${tx(m, "b")})`);

  // An invalid file: logged, and the running (reloaded) config stays.
  const bad = structuredClone(next);
  bad.peers.push({ name: "e", endpoint: `${hostD.ip4}:51821`, allowedIps: ["10.77.0.2/32"] });
  writeFileSync(a.config, JSON.stringify(bad, null, 2));
  a.daemon.child.kill("SIGHUP");
  const failed = JSON.parse(await a.daemon.waitFor(/"msg":"reload failed/, 5000)) as { err: string; level: number; msg: string };
  t.equal(failed.level, 50, "logged as an error");
  t.match(failed.err, /10\.77\.0\.2\/32/, `says why: ${failed.err}`);
  writeFileSync(a.config, JSON.stringify(next).slice(0, 40)); // cut short: not JSON at all
  a.daemon.child.kill("SIGHUP");
  const cut = JSON.parse(await a.daemon.waitFor(/not valid JSON.*"msg":"reload failed/, 5000)) as { err: string };
  t.pass(`a truncated file too: ${cut.err}`);
  const badAt = (performance.now() - flowStart) / 1000;

  const rates = await flow.intervals();
  t.comment(`SIGHUP at ${hupAt.toFixed(1)} s and the bad ones by ${badAt.toFixed(1)} s into the flow; intervals (Mbit/s): ${rates.map((r) => (r / 1e6).toFixed(0)).join(" ")}`);
  t.ok(badAt < seconds - 1, "all three reloads happened while the flow ran");
  t.equal(rates.length, seconds, `${seconds} intervals`);
  t.ok(rates.every((r) => r > 50e6), "every interval above 50 Mbit/s (none at 0)");

  t.equal(a.daemon.child.exitCode, null, "A still running after the bad file");
  t.equal((await ping(hostA, "10.77.0.2")).code, 0, "and forwarding to b");
  t.equal((await ping(hostA, "10.77.0.33")).code, 0, "and still on the reloaded peers (c at its new address)");
  t.same(errorLines(a.daemon.output()).map((l) => l.msg), [failed.msg, failed.msg], "no other error");
});
