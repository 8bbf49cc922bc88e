// End to end: persistent keepalives between two udptun processes in namespaces, with no
// traffic in the tunnel. A end keeps a 1 s keepalive to B, B none to A: B counts A's
// keepalives, A counts none; traffic to B holds them back; SIGHUP turns them on at B and off
// at A; with workers = 2 one worker alone sends them. Needs root, iproute2, ping, curl.
import t from "tap";
import { readFileSync, writeFileSync } from "node:fs";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { run } from "./lib/proc.ts";
import { waitUntil } from "./lib/prometheus.ts";
import { scrape, startInstance, stopInstance, sum, tunnelConfig } from "./lib/udptun.ts";
import type { Instance } from "./lib/udptun.ts";

const lab = new Lab();
let hostA: Host, hostB: Host;
let a: Instance, b: Instance;
const KEEPALIVES = "udptun_keepalives_received_total";

type Cfg = { peers: { persistentKeepalive?: number }[] };
/** Each end's config, with its one peer's persistentKeepalive (absent: off). */
function config(self: "a" | "b", keepalive: number | undefined, extra: object = {}): Cfg {
  const ends = { a: { name: "a", host: hostA, n: 1 }, b: { name: "b", host: hostB, n: 2 } };
  const cfg = tunnelConfig(ends[self], [ends[self === "a" ? "b" : "a"]], extra) as Cfg;
  if (keepalive !== undefined) cfg.peers[0].persistentKeepalive = keepalive;
  return cfg;
}

/** The keepalives an instance has received from its peer. */
const received = async (inst: Instance, peer: string) => sum(await scrape(lab, inst), KEEPALIVES, { peer });

/** Rewrites the instance's config file and reloads it; resolves with the "peers reloaded" line. */
async function reload(inst: Instance, edit: (cfg: Cfg) => void): Promise<{ changed: string[]; kept: string[] }> {
  const cfg = JSON.parse(readFileSync(inst.config, "utf8")) as Cfg;
  edit(cfg);
  writeFileSync(inst.config, JSON.stringify(cfg));
  const seen = inst.daemon.output().split("\n").filter((l) => l.includes('"msg":"peers reloaded"')).length;
  inst.daemon.child.kill("SIGHUP");
  await waitUntil(async () => inst.daemon.output().split("\n").filter((l) => l.includes('"msg":"peers reloaded"')).length > seen, 5000);
  return JSON.parse(inst.daemon.output().split("\n").filter((l) => l.includes('"msg":"peers reloaded"'))[seen]) as { changed: string[]; kept: string[] };
}

t.before(async () => {
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  a = await startInstance(lab, hostA, "a", config("a", 1));
  b = await startInstance(lab, hostB, "b", config("b", undefined));
});

t.teardown(async () => {
  for (const inst of [a, b]) if (inst && inst.daemon.child.exitCode === null) inst.daemon.child.kill("SIGKILL");
  await lab.destroy();
});

t.test("persistentKeepalive 1 and no traffic: the other end's keepalive counter rises; with it off it stays 0", async (t) => {
  await waitUntil(async () => (await received(b, "a")) >= 3, 10_000);
  t.ok(await received(b, "a") >= 3, "B has counted A's keepalives (one at start, then one a second)");
  t.equal(await received(a, "b"), 0, "A has counted none from B (off there) over the same seconds");
  const started = a.daemon.output().split("\n").find((l) => l.includes('"msg":"udptun started"'));
  t.match(started, /"persistentKeepalive":1/, "the started line shows the setting");
});

t.test("traffic to the peer holds keepalives back (they count from the last packet sent)", async (t) => {
  const before = await received(b, "a");
  // A sends B an echo request every 200 ms for 3 s: never 1 s of quiet.
  const r = await run(...lab.exec(hostA, "ping", ["-c", "15", "-i", "0.2", "-W", "2", "10.77.0.2"]));
  t.equal(r.code, 0, "ping through the tunnel");
  const during = (await received(b, "a")) - before;
  t.ok(during <= 1, `${during} keepalive(s) during 3 s of traffic (at most one already due when it started; 3 if they ignored it)`);
  await waitUntil(async () => (await received(b, "a")) >= before + during + 2, 5000);
  t.pass("and they resume once the traffic stops");
});

t.test("SIGHUP carries the setting: on at B, off at A", async (t) => {
  const atB = await reload(b, (cfg) => { cfg.peers[0].persistentKeepalive = 1; });
  t.same(atB.changed, ["a"], "B: peer a listed as changed (its object, counters and flows kept)");
  await waitUntil(async () => (await received(a, "b")) >= 2, 5000);
  t.ok(await received(a, "b") >= 2, "A now counts B's keepalives");

  const atA = await reload(a, (cfg) => { delete cfg.peers[0].persistentKeepalive; });
  t.same(atA.changed, ["b"], "A: peer b changed");
  const from = await received(b, "a");
  // An observation window: nothing should arrive in it (three intervals' worth).
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(await received(b, "a"), from, "B counts no more keepalives from A");
  t.ok(await received(a, "b") >= 4, "while B's keep coming to A");
});

t.test("workers = 2: worker 0 alone sends the keepalives", async (t) => {
  const extra = { device: { name: "udptun2", address: ["10.76.0.1/24"], mtu: 1420 }, listen: "0.0.0.0:51822", workers: 2, metrics: { listen: `${hostA.ip4}:9466` } };
  const cfgA = config("a", 1, extra) as Cfg & { peers: { endpoint: string; allowedIps: string[] }[] };
  cfgA.peers[0].endpoint = `${hostB.ip4}:51822`;
  cfgA.peers[0].allowedIps = ["10.76.0.2/32"];
  const cfgB = config("b", undefined, { device: { name: "udptun2", address: ["10.76.0.2/24"], mtu: 1420 }, listen: "0.0.0.0:51822", metrics: { listen: `${hostB.ip4}:9466` } }) as typeof cfgA;
  cfgB.peers[0].endpoint = `${hostA.ip4}:51822`;
  cfgB.peers[0].allowedIps = ["10.76.0.1/32"];
  const a2 = await startInstance(lab, hostA, "a2", cfgA);
  const b2 = await startInstance(lab, hostB, "b2", cfgB);
  try {
    await waitUntil(async () => (await received(b2, "a")) >= 3, 10_000);
    const m = await scrape(lab, a2);
    const sent = ["0", "1"].map((worker) => sum(m, "udptun_udp_datagrams_sent_total", { worker }));
    t.ok(sent[0] >= 3, `worker 0 sent ${sent[0]} datagrams (the keepalives: the tunnel carries nothing)`);
    t.equal(sent[1], 0, "worker 1 sent none");
    t.ok(await received(b2, "a") <= sent[0], "B counted no more keepalives than worker 0 sent");
  } finally {
    for (const inst of [a2, b2]) t.equal((await stopInstance(inst)).code, 0, `${inst.host.ns} stopped cleanly`);
  }
});

t.test("SIGTERM: both ends exit 0", async (t) => {
  for (const inst of [a, b]) t.equal((await stopInstance(inst)).code, 0, `${inst.host.ns} exit 0`);
});
