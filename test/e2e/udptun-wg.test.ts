// End to end, udptun-wg as wg-quick and users run it: the launcher bin/udptun-wg (the
// compiled entry if `npm run build` made one, else the source), in namespaces. Detaching, the foreground, bad
// arguments, a name already taken, SIGTERM, `ip link del`, devices moved into other
// namespaces and configured with `wg`, metrics only when asked, LOG_LEVEL=silent.
// wg-quick and the wg-driven interop suite live in wg-tools-*.test.ts.
// Needs root, iproute2, wireguard-tools (wg), ping, ss, curl.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import type { Test } from "tap";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { must, run, start } from "./lib/proc.ts";
import type { Daemon } from "./lib/proc.ts";
import { waitUntil } from "./lib/prometheus.ts";
import { fetchIn, parseMetrics, ROOT } from "./lib/udptun.ts";

const BIN = path.join(ROOT, "bin/udptun-wg");
const USAGE = "Usage: udptun-wg [-f/--foreground] INTERFACE-NAME";
/** Interface and socket names: ucm (this suite's prefix), a tag per run, a number. */
const TAG = randomBytes(2).toString("hex");
let names = 0;
const ifname = (): string => `ucm${TAG}${names++}`;
const sockPath = (name: string): string => `/var/run/wireguard/${name}.sock`;

const lab = new Lab();
let hostA: Host;
const foreground: Daemon[] = [];
const detachedPids: number[] = [];

t.before(async () => {
  await lab.up();
  hostA = await lab.addHost("a", 1);
});

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);
const until = (cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => waitUntil(async () => cond(), ms);

// What a test left running gets SIGTERM (so it removes its socket file), then SIGKILL.
t.afterEach(async () => {
  const pids = [...foreground.splice(0).map((d) => d.child.pid!), ...detachedPids.splice(0)].filter(alive);
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try { process.kill(pid, sig); } catch { /* gone already */ }
  };
  for (const pid of pids) signal(pid, "SIGTERM");
  await until(() => !pids.some(alive), 3000).catch(() => {});
  for (const pid of pids) signal(pid, "SIGKILL");
});

t.teardown(async () => {
  await lab.destroy();
  // Only a SIGKILLed daemon leaves its socket file: none of this run's may stay.
  for (let i = 0; i < names; i++) rmSync(sockPath(`ucm${TAG}${i}`), { force: true });
});

const linkExists = async (ns: string, name: string): Promise<boolean> => (await run("ip", ["-n", ns, "link", "show", "dev", name])).code === 0;

/** udptun-wg run to completion (the detaching parent, or a refusal) in a namespace. */
function wgRun(ns: string, args: string[], env: Record<string, string> = {}): ReturnType<typeof run> {
  const [cmd, a] = lab.exec(ns, "env", [...Object.entries(env).map(([k, v]) => `${k}=${v}`), BIN, ...args]);
  return run(cmd, a, { timeoutMs: 30_000 });
}

/** udptun-wg left running in the foreground. */
function wgStart(ns: string, args: string[], env: Record<string, string> = {}): Daemon {
  const [cmd, a] = lab.exec(ns, "env", [...Object.entries(env).map(([k, v]) => `${k}=${v}`), BIN, ...args]);
  const d = start(cmd, a);
  foreground.push(d);
  return d;
}

/** The udptun-wg processes for `name` in a namespace, found by their command lines. */
async function daemonPids(ns: string, name: string): Promise<number[]> {
  const pids = (await must("ip", ["netns", "pids", ns])).split("\n").filter(Boolean).map(Number);
  return pids.filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      return argv.some((x) => /wg-cli\/main\.[jt]s$/.test(x)) && argv.includes(name);
    } catch {
      return false;
    }
  });
}

/** The one daemon serving `name` (it is killed after the test). */
async function daemonPid(ns: string, name: string): Promise<number> {
  const mine = await daemonPids(ns, name);
  if (mine.length !== 1) throw new Error(`expected one daemon for ${name} in ${ns}, found ${mine.length}`);
  detachedPids.push(mine[0]);
  return mine[0];
}

/** Field 6 of /proc/PID/stat: the session id. */
const sessionOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[3]);

const jsonLines = (out: string): Record<string, unknown>[] =>
  out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

/** The "stopped" line's pools: every buffer must be back. */
function assertBuffersBack(tt: Test, out: string): void {
  const stopped = jsonLines(out).find((l) => l.msg === "stopped") as { final?: { pools: Record<string, { inUse: number }> } } | undefined;
  tt.ok(stopped?.final, "a \"stopped\" line with the final counters", { output: out });
  tt.equal(stopped?.final?.pools.device.inUse, 0, "device pool: every buffer back");
  tt.equal(stopped?.final?.pools.network.inUse, 0, "network pool: every buffer back");
}

t.test("detaches: the parent exits 0 once the device and the socket exist; the daemon runs in a session of its own", async (tt) => {
  const name = ifname();
  const r = await wgRun(hostA.ns, [name]);
  tt.equal(r.code, 0, `exit 0 (stderr: ${r.stderr})`);
  tt.equal(r.stdout + r.stderr, "", "nothing printed (LOG_LEVEL unset: the daemon's output goes to /dev/null)");
  // No polling: the parent's exit 0 promises both.
  tt.ok(await linkExists(hostA.ns, name), "the device exists as the parent exits");
  tt.ok(existsSync(sockPath(name)), "the socket file exists as the parent exits");
  const link = await must("ip", ["-n", hostA.ns, "-d", "link", "show", "dev", name]);
  tt.match(link, /mtu 1420 /, "MTU 1420, as wireguard-go");
  tt.match(link, /state DOWN/, "left down for wg-quick to bring up");
  tt.match(link, /vnet_hdr on/, "TUN offloads on");
  tt.notMatch(await must("ip", ["-n", hostA.ns, "addr", "show", "dev", name]), /inet/, "no addresses");
  const pid = await daemonPid(hostA.ns, name);
  tt.equal(sessionOf(pid), pid, "the daemon leads a session of its own (setsid)");
  tt.not(sessionOf(pid), sessionOf(process.pid), "not the test's session");
  tt.equal(readlinkSync(`/proc/${pid}/fd/0`), "/dev/null", "stdin from /dev/null");
  const show = await must("wg", ["show", name]);
  tt.match(show, new RegExp(`^interface: ${name}$`, "m"), "wg show answers");
  tt.equal((await must("wg", ["show", name, "private-key"])).trim(), "(none)", "no private key until one is set, as wireguard-go");
  tt.equal((await must("wg", ["show", name, "peers"])).trim(), "", "no peers");
  const port = Number((await must("wg", ["show", name, "listen-port"])).trim());
  tt.ok(port > 0 && port < 65536, `a listening port reported (${port})`);
  const udp = await must("ip", ["netns", "exec", hostA.ns, "ss", "-Hulnp"]);
  // ss shows a dual-stack [::] socket (IPV6_V6ONLY off) as "*".
  tt.match(udp, new RegExp(`\\*:${port} .*pid=${pid},`), "the daemon's dual-stack socket on that port");
});

t.test("the foreground: -f and WG_PROCESS_FOREGROUND=1 both stay, and SIGTERM stops cleanly", async (tt) => {
  for (const [label, args, env] of [
    ["-f", ["-f"], {}],
    ["--foreground", ["--foreground"], {}],
    ["WG_PROCESS_FOREGROUND=1", [], { WG_PROCESS_FOREGROUND: "1" }],
  ] as const) {
    const name = ifname();
    const d = wgStart(hostA.ns, [...args, name], { ...env, LOG_LEVEL: "info" });
    await d.waitFor(/"msg":"udptun-wg started"/);
    tt.equal(d.child.exitCode, null, `${label}: still running once started`);
    tt.ok(await linkExists(hostA.ns, name), `${label}: the device exists`);
    tt.ok(existsSync(sockPath(name)), `${label}: the socket file exists`);
    tt.equal(sessionOf(d.child.pid!), sessionOf(process.pid), `${label}: in the caller's session (not detached)`);
    d.child.kill("SIGTERM");
    tt.equal(await d.exited, 0, `${label}: SIGTERM: exit 0`);
    tt.notOk(existsSync(sockPath(name)), `${label}: the socket file removed`);
    tt.notOk(await linkExists(hostA.ns, name), `${label}: the device gone`);
    assertBuffersBack(tt, d.output());
  }
});

t.test("SIGTERM to a detached daemon: it exits, the socket file and the device go", async (tt) => {
  const name = ifname();
  tt.equal((await wgRun(hostA.ns, [name])).code, 0);
  const pid = await daemonPid(hostA.ns, name);
  process.kill(pid, "SIGTERM");
  await until(() => !alive(pid));
  tt.notOk(existsSync(sockPath(name)), "the socket file removed");
  tt.notOk(await linkExists(hostA.ns, name), "the device gone");
});

t.test("bad arguments: wireguard-go's usage on stdout, exit 0; --version", async (tt) => {
  for (const args of [[], ["-f"], ["--foreground"], ["a", "b"], ["-f", "a", "b"], ["a", "-f"]]) {
    const r = await wgRun(hostA.ns, args);
    tt.equal(r.code, 0, `${JSON.stringify(args)}: exit 0, as wireguard-go`);
    tt.equal(r.stdout.trim(), USAGE, `${JSON.stringify(args)}: the usage`);
  }
  const v = await wgRun(hostA.ns, ["--version"]);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
  tt.equal(v.code, 0);
  tt.match(v.stdout, new RegExp(`^udptun-wg v${pkg.version.replace(/\./g, "\\.")}\n`), "--version: the package's version");
  const bad = await wgRun(hostA.ns, ["ucm/no"]);
  tt.equal(bad.code, 1, "an impossible interface name: exit 1");
  tt.match(bad.stderr, /interface name "ucm\/no" is not valid/, "naming the value");
  const metrics = await wgRun(hostA.ns, [ifname()], { UDPTUN_METRICS: "nowhere" });
  tt.equal(metrics.code, 1, "a malformed UDPTUN_METRICS: exit 1");
  tt.match(metrics.stderr, /UDPTUN_METRICS="nowhere" is not HOST:PORT/, "naming the variable and the value");
});

t.test("a name already taken: error, exit 1, nothing left behind", async (tt) => {
  // By another udptun-wg (its TUN device is busy).
  const name = ifname();
  tt.equal((await wgRun(hostA.ns, [name])).code, 0);
  const first = await daemonPid(hostA.ns, name);
  const again = await wgRun(hostA.ns, [name]);
  tt.equal(again.code, 1, "the second daemon fails: exit 1");
  tt.match(again.stderr, new RegExp(`cannot create TUN device ${name}: .*busy`), "stderr says why, naming the device");
  tt.ok(alive(first), "the first daemon runs on");
  tt.match(await must("wg", ["show", name]), new RegExp(`interface: ${name}`), "and still answers on its socket");
  // The second daemon told its parent why before exiting: wait for it to be gone, then exactly one is left.
  await until(async () => (await daemonPids(hostA.ns, name)).length === 1, 3000);
  await daemonPid(hostA.ns, name);
  // By a device of another kind (no dummy module here: a bridge).
  const dummy = ifname();
  await must("ip", ["-n", hostA.ns, "link", "add", dummy, "type", "bridge"]);
  const onDummy = await wgRun(hostA.ns, [dummy]);
  tt.equal(onDummy.code, 1, "a bridge of that name: exit 1");
  tt.match(onDummy.stderr, new RegExp(`cannot create TUN device ${dummy}`), "stderr says why");
  tt.notOk(existsSync(sockPath(dummy)), "no socket file left");
  tt.ok(await linkExists(hostA.ns, dummy), "the bridge untouched");
  await until(async () => (await daemonPids(hostA.ns, dummy)).length === 0, 3000).catch(() => {});
  tt.same(await daemonPids(hostA.ns, dummy), [], "no daemon left for that name (once the refused one has exited)");
});

t.test("ip link del: the daemon exits 0 within a second, the socket file removed, every buffer back", async (tt) => {
  const name = ifname();
  const d = wgStart(hostA.ns, ["-f", name], { LOG_LEVEL: "info" });
  await d.waitFor(/"msg":"udptun-wg started"/);
  const t0 = Date.now();
  await must("ip", ["-n", hostA.ns, "link", "del", "dev", name]);
  tt.equal(await d.exited, 0, "exit 0");
  tt.ok(Date.now() - t0 < 1000, `within a second (${Date.now() - t0} ms)`);
  tt.notOk(existsSync(sockPath(name)), "the socket file removed");
  tt.match(d.output(), /"reason":"device deleted"/, "the log says why");
  assertBuffersBack(tt, d.output());
});

t.test("metrics only when asked: UDPTUN_METRICS serves udptun's metrics, none without it", async (tt) => {
  const name = ifname();
  tt.equal((await wgRun(hostA.ns, [name], { UDPTUN_METRICS: "127.0.0.1:53100" })).code, 0);
  const pid = await daemonPid(hostA.ns, name);
  const samples = parseMetrics(await fetchIn(lab, hostA, "http://127.0.0.1:53100/metrics"));
  tt.ok(samples.some((s) => s.name.startsWith("udptun_buffer_capacity")), "udptun's pool metrics served");
  // The daemon fails after the parent has detached it: the parent still reports it.
  const taken = ifname();
  const clash = await wgRun(hostA.ns, [taken], { UDPTUN_METRICS: "127.0.0.1:53100" });
  tt.equal(clash.code, 1, "the metrics port taken: exit 1");
  tt.match(clash.stderr, /127\.0\.0\.1:53100: address already in use/, "stderr: the daemon's reason");
  tt.notOk(await linkExists(hostA.ns, taken), "no device left");
  tt.notOk(existsSync(sockPath(taken)), "no socket file left");
  const plain = ifname();
  tt.equal((await wgRun(hostA.ns, [plain])).code, 0);
  const other = await daemonPid(hostA.ns, plain);
  const tcp = await must("ip", ["netns", "exec", hostA.ns, "ss", "-Hltnp"]);
  tt.match(tcp, new RegExp(`pid=${pid},`), "the first daemon listens on TCP (its metrics)");
  tt.notMatch(tcp, new RegExp(`pid=${other},`), "without UDPTUN_METRICS: no TCP listener at all");
});

t.test("LOG_LEVEL=silent prints nothing; LOG_LEVEL=verbose logs JSON lines", async (tt) => {
  const name = ifname();
  const d = wgStart(hostA.ns, ["-f", name], { LOG_LEVEL: "silent" });
  await until(() => existsSync(sockPath(name)));
  await must("wg", ["show", name]);
  d.child.kill("SIGTERM");
  tt.equal(await d.exited, 0);
  tt.equal(d.output(), "", "silent: not a byte");
  const v = ifname();
  const dv = wgStart(hostA.ns, ["-f", v], { LOG_LEVEL: "verbose" });
  await dv.waitFor(/"msg":"udptun-wg started"/);
  tt.ok(jsonLines(dv.output()).some((l) => l.level === 20 || l.level === 30), "verbose: pino JSON lines (debug and up)");
  dv.child.kill("SIGTERM");
  tt.equal(await dv.exited, 0);
});

t.test("devices moved into other namespaces keep working: configured with wg, ping both ways", async (tt) => {
  // The layout of wireguard.com/netns: both daemons and their sockets stay in hostA's
  // namespace (they reach each other on its loopback); their devices move to x and y.
  const x = await lab.addHost("x", 11);
  const y = await lab.addHost("y", 12);
  const [a, b] = [ifname(), ifname()];
  tt.equal((await wgRun(hostA.ns, [a])).code, 0);
  tt.equal((await wgRun(hostA.ns, [b])).code, 0);
  const [pidA, pidB] = [await daemonPid(hostA.ns, a), await daemonPid(hostA.ns, b)];
  await must("ip", ["-n", hostA.ns, "link", "set", a, "netns", x.ns]);
  await must("ip", ["-n", hostA.ns, "link", "set", b, "netns", y.ns]);

  const dir = mkdtempSync(path.join(tmpdir(), "ucm-keys-"));
  const key = async (n: string): Promise<{ file: string; pub: string }> => {
    const priv = (await must("wg", ["genkey"])).trim();
    const file = path.join(dir, n);
    writeFileSync(file, priv + "\n", { mode: 0o600 });
    return { file, pub: (await run("wg", ["pubkey"], { input: priv + "\n" })).stdout.trim() };
  };
  const [ka, kb] = [await key("a"), await key("b")];
  await must("wg", ["set", a, "private-key", ka.file, "listen-port", "53001", "peer", kb.pub, "allowed-ips", "10.79.0.2/32,fd79::2/128", "endpoint", "127.0.0.1:53002"]);
  await must("wg", ["set", b, "private-key", kb.file, "listen-port", "53002", "peer", ka.pub, "allowed-ips", "10.79.0.1/32,fd79::1/128", "endpoint", "127.0.0.1:53001"]);
  for (const [ns, dev, n] of [[x.ns, a, 1], [y.ns, b, 2]] as const) {
    await must("ip", ["-n", ns, "addr", "add", `10.79.0.${n}/24`, "dev", dev]);
    await must("ip", ["-n", ns, "-6", "addr", "add", `fd79::${n}/64`, "dev", dev, "nodad"]);
    await must("ip", ["-n", ns, "link", "set", dev, "up"]);
  }
  const ping = (ns: string, args: string[]) => run("ip", ["netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", ...args]);
  const pings = [await ping(x.ns, ["10.79.0.2"]), await ping(y.ns, ["10.79.0.1"]), await ping(x.ns, ["-6", "fd79::2"]), await ping(y.ns, ["-6", "fd79::1"])];
  pings.forEach((p, i) => tt.equal(p.code, 0, `ping ${["x->y", "y->x", "x->y v6", "y->x v6"][i]}: ${p.stdout.split("\n").slice(-3).join(" ")}`));
  tt.ok(alive(pidA) && alive(pidB), "both daemons run on: a move is not a deletion");
  tt.match(await must("wg", ["show", a, "latest-handshakes"]), new RegExp(`^${kb.pub.replace(/[+/]/g, "\\$&")}\t[1-9]`, "m"), "wg show: a handshake with b");

  // Deleted where it now lives, the device still stops its daemon.
  await must("ip", ["-n", x.ns, "link", "del", "dev", a]);
  await until(() => !alive(pidA), 2000);
  tt.notOk(existsSync(sockPath(a)), "a's socket file removed once its moved device is deleted");
  tt.ok(alive(pidB), "b runs on");
});
