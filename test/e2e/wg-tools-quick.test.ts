// `wg-quick up FILE` with WG_QUICK_USERSPACE_IMPLEMENTATION set to the implementation under
// test (no kernel WireGuard here, so wg-quick takes the userspace path), with bookworm's
// wireguard-tools and with trixie's: ping and iperf3 through it to trixie's wireguard-go,
// `wg show` right, then `wg-quick down FILE` leaves no device, no socket file and no process
// (issue #12, item 3). Runs against the reference (bookworm's wireguard-go) and udptun-wg.
import { existsSync } from "node:fs";
import t from "tap";
import type { Test } from "tap";
import { must, run } from "./lib/proc.ts";
import { BOOKWORM_TOOLS, Fixture, SUBJECTS, TRIXIE_TOOLS, addressUp, checkDump, daemonOf, deviceName, iperfThrough, isAlive, keyPair, killImplementation, missing, ping, pollUntil, renderConf, wgQuick } from "./lib/wg-tools.ts";
import type { Conf, Implementation, Kind, Tools } from "./lib/wg-tools.ts";
import { parseDump, socketPath } from "./lib/wireguard-go.ts";

const f = new Fixture(t, ["a", "b"]);
/** Daemons wg-quick started, killed in teardown if `down` did not end them. */
const quickPids: number[] = [];
t.teardown(() => { for (const pid of quickPids) if (isAlive(pid)) process.kill(pid, "SIGKILL"); });
const PORT_Q = 54020;
const PORT_P = 54021;
const IPERF_PORT = 54202;

async function upAndDown(t: Test, kind: Kind, tools: Tools): Promise<void> {
  const gone = missing(kind, tools);
  if (gone) throw new Error(gone);
  const peer = await f.start("wireguard-go-2023", f.hosts[1]);
  try {
    await quickSession(t, kind, tools, peer);
  } finally {
    await killImplementation(peer); // its port and addresses are the next session's
  }
}

async function quickSession(t: Test, kind: Kind, tools: Tools, peer: Implementation): Promise<void> {
  const { lab, scratch, hosts: [a, b] } = f;
  const kq = keyPair();
  const kp = keyPair();
  await peer.wg(["setconf", peer.device, scratch.file(`${peer.device}.conf`, renderConf({
    privateKey: kp.privateKey, listenPort: PORT_P,
    peers: [{ publicKey: kq.publicKey, allowedIps: ["10.81.0.1/32", "fd81::1/128"], endpoint: `${a.ip4}:${PORT_Q}` }],
  }))]);
  await addressUp(lab, b.ns, peer.device, ["10.81.0.2/24", "fd81::2/64"]);

  const device = deviceName();
  const want: Conf = {
    privateKey: kq.privateKey, listenPort: PORT_Q, address: ["10.81.0.1/24", "fd81::1/64"],
    peers: [{ publicKey: kp.publicKey, allowedIps: ["10.81.0.2/32", "fd81::2/128"], endpoint: `${b.ip4}:${PORT_P}` }],
  };
  // wg-quick names the interface after the file.
  const file = scratch.file(`${device}.conf`, renderConf(want));
  const up = await wgQuick(lab, a, tools, kind, "up", file, scratch);
  t.equal(up.code, 0, `wg-quick up exits 0:\n${up.output}`);
  if (up.code !== 0) return;
  t.match(up.output, /Missing WireGuard kernel module\. Falling back to slow userspace implementation/, "wg-quick took the userspace path");
  t.ok(existsSync(socketPath(device)), "the socket exists once wg-quick up returns");
  const pid = await daemonOf(a.ns, device);
  quickPids.push(pid);

  t.ok(await ping(lab, a.ns, "10.81.0.2"), "ping through it, IPv4 inside");
  t.ok(await ping(lab, a.ns, "fd81::2"), "ping through it, IPv6 inside");
  const r = await iperfThrough(lab, a, b, ["-c", "10.81.0.2", "--bidir"], 2, IPERF_PORT);
  t.ok(r.bytes > 0 && r.reverseBytes > 0, `iperf3 --bidir through it: ${(r.bps / 1e6).toFixed(0)} Mbit/s out, ${(r.reverseBps / 1e6).toFixed(0)} Mbit/s in`);

  const wgRun = (args: string[]) => run(...lab.exec(a, tools.wg, args));
  const dump = await wgRun(["show", device, "dump"]);
  t.equal(dump.code, 0, "wg show dump");
  const state = parseDump(dump.stdout);
  checkDump(t, state, { ...want, address: undefined }, kq.publicKey);
  t.ok(state.peers[0].latestHandshake > 0 && state.peers[0].rxBytes >= r.reverseBytes && state.peers[0].txBytes >= r.bytes, "wg show dump: a handshake and the traffic counted");
  const show = await wgRun(["show", device]);
  t.match(show.stdout, new RegExp(`interface: ${device}\\n[^]*listening port: ${PORT_Q}\\n[^]*peer: ${kp.publicKey.replace(/[+/]/g, "\\$&")}\\n[^]*endpoint: ${b.ip4}:${PORT_P}\\n[^]*allowed ips: [^\\n]*10\\.81\\.0\\.2/32[^]*latest handshake: [^]*transfer: `), "wg show: the interface, its port and the peer with endpoint, allowed IPs, handshake and transfer");
  t.match((await wgRun(["show", "interfaces"])).stdout, new RegExp(`(^|\\s)${device}(\\s|$)`), "wg show interfaces lists it");
  const routes = (await run(...lab.exec(a, "ip", ["-6", "route", "show", "dev", device]))).stdout;
  t.match(routes, /fd81::\/64/, "wg-quick addressed the device (IPv6 route)");

  const down = await wgQuick(lab, a, tools, kind, "down", file, scratch);
  t.equal(down.code, 0, `wg-quick down exits 0:\n${down.output}`);
  const link = await run(...lab.exec(a, "ip", ["link", "show", "dev", device]));
  t.not(link.code, 0, "no device once wg-quick down returns");
  // The daemon sees its device deleted and exits; give it a moment to do so.
  await t.resolves(pollUntil(() => !isAlive(pid) && !existsSync(socketPath(device)), 5000, () => `pid ${pid} alive: ${isAlive(pid)}, socket left: ${existsSync(socketPath(device))}`),
    "the daemon's process and socket file are gone");
}

/** The command line wg-quick relies on, in the foreground: -f and WG_PROCESS_FOREGROUND=1 keep the process ours; SIGTERM and the device's deletion end it cleanly. */
async function foreground(t: Test, kind: Kind): Promise<void> {
  const { lab, hosts: [a] } = f;
  for (const [how, end] of [["flag", "SIGTERM"], ["env", "device deleted"]] as const) {
    const i = await f.start(kind, a, { foreground: how });
    t.equal(i.pid, i.child!.child.pid, `${how === "flag" ? "-f" : "WG_PROCESS_FOREGROUND=1"}: the process holding the socket is the one started`);
    if (end === "SIGTERM") i.child!.child.kill("SIGTERM");
    else await must(...lab.exec(a, "ip", ["link", "del", i.device]));
    const code = await Promise.race([i.child!.exited, new Promise((r) => setTimeout(() => r("still running after 5 s"), 5000))]);
    t.equal(code, 0, `${end}: exit 0\n${i.log()}`);
    t.notOk(existsSync(i.socket), `${end}: socket file removed`);
  }
}

for (const kind of SUBJECTS) {
  t.test(`${kind} in the foreground`, (t) => foreground(t, kind));
  for (const tools of [BOOKWORM_TOOLS, TRIXIE_TOOLS]) {
    t.test(`wg-quick up/down (${tools.release}'s wireguard-tools) with ${kind}`, (t) => upAndDown(t, kind, tools));
  }
}
