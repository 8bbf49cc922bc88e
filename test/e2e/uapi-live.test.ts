// The configuration API on a running udptun (src/uapi/live.ts), driven by the real `wg`
// against wireguard-go peers: udptun starts as wireguard-go does (no key, no peers) and is
// configured only through /var/run/wireguard/NAME.sock. Allowed IPs route and filter (the most
// specific wins), changes keep sessions, the socket moves to another port (or refuses a taken
// one, changing nothing), the private key changes, the transfer `wg show` reports is the
// scrape's, and 40 peers of 2,500 allowed IPs each apply and read back whole (timed in wg-tools-scale).
// Needs root, iproute2, curl, python3, iperf3, wireguard-go + wireguard-tools.
import t from "tap";
import { rmSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { UapiClient } from "../../src/uapi/client.ts";
import { startIperf } from "./lib/iperf.ts";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { waitUntil } from "./lib/prometheus.ts";
import { run, start } from "./lib/proc.ts";
import type { Daemon } from "./lib/proc.ts";
import { fetchIn, NODE, parseMetrics, ROOT, sum } from "./lib/udptun.ts";
import type { Sample } from "./lib/udptun.ts";
import { BOOKWORM, requireBins } from "./lib/wireguard-bins.ts";
import { killWireguardGo, parseDump, socketPath, startWireguardGo, wg as wgIn } from "./lib/wireguard-go.ts";
import type { WgState, WireguardGo } from "./lib/wireguard-go.ts";

const lab = new Lab();
const suffix = lab.tag.slice(2, 8);
const DEVICE = `ulv${suffix}a`;
const PORT = 52101;
const MOVED_PORT = 52111;
const TAKEN_PORT = 52120;
const METRICS_PORT = 52190;
let hostA: Host, hostB: Host, hostC: Host;
let live: Daemon;
let b: WireguardGo, c: WireguardGo;
let holder: Daemon | undefined;
const dir = mkdtempSync(path.join(tmpdir(), "udptun-uapi-live-"));

const wg = (args: string[], input?: string): Promise<string> => wgIn(lab, hostA, BOOKWORM, args, input);
/** `wg show dump`, parsed, with the fwmark ("off" or hex) from the interface line. */
const show = async (): Promise<WgState & { fwmark: string }> => {
  const dump = await wg(["show", DEVICE, "dump"]);
  return { ...parseDump(dump), fwmark: dump.split("\n")[0].split("\t")[3] };
};
const peerOf = (s: WgState, key: string) => s.peers.find((p) => p.publicKey === key);
const ping = async (from: Host, to: string, source?: string): Promise<boolean> =>
  (await run(...lab.exec(from, "ping", ["-c", "1", "-W", "1", ...(source ? ["-I", source] : []), to]))).code === 0;
/** Pings until one answers, for up to `ms`. */
async function reaches(from: Host, to: string, ms = 8000, source?: string): Promise<boolean> {
  const end = Date.now() + ms;
  do if (await ping(from, to, source)) return true; while (Date.now() < end);
  return false;
}
const scrape = async (): Promise<Sample[]> => parseMetrics(await fetchIn(lab, hostA, `http://${hostA.ip4}:${METRICS_PORT}/metrics`));
const handshakes = async (peer: string) => {
  const s = await scrape();
  return {
    initiated: sum(s, "udptun_wireguard_handshakes_total", { peer, event: "initiated" }),
    completed: sum(s, "udptun_wireguard_handshakes_total", { peer, event: "completed" }),
  };
};
const keyFile = (name: string, key: string): string => {
  const file = path.join(dir, name);
  writeFileSync(file, key + "\n", { mode: 0o600 });
  return file;
};

t.before(async () => {
  requireBins(BOOKWORM);
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  hostC = await lab.addHost("c", 3);
  const [cmd, args] = lab.exec(hostA, NODE, [path.join(ROOT, "test/e2e/lib/live-daemon.ts"), DEVICE, "10.79.0.1/24", "[::]:0", `${hostA.ip4}:${METRICS_PORT}`]);
  live = start(cmd, args);
  await live.waitFor(/"msg":"live device ready"/);
  b = await startWireguardGo(lab, hostB, "b", { bins: BOOKWORM, device: `ulv${suffix}b`, address: ["10.79.0.2/24"], listenPort: 52102 });
  c = await startWireguardGo(lab, hostC, "c", { bins: BOOKWORM, device: `ulv${suffix}c`, address: ["10.79.0.3/24", "10.79.0.9/24"], listenPort: 52103 });
});

t.teardown(async () => {
  holder?.child.kill("SIGKILL");
  if (live.child.exitCode === null) {
    live.child.kill("SIGTERM");
    await live.exited;
  }
  rmSync(socketPath(DEVICE), { force: true });
  for (const w of [b, c]) await killWireguardGo(w);
  await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
});

let keyA = "";
let pubA = "";

t.test("starts as wireguard-go does: no key, no peers, a kernel-chosen port", async (t) => {
  const s = await show();
  t.equal(s.publicKey, "(none)", "no key");
  t.same(s.peers, [], "no peers");
  t.ok(s.listenPort > 0, `bound to port ${s.listenPort}`);
});

t.test("configured only through the API (wg setconf), it carries a ping both ways", async (t) => {
  keyA = (await wg(["genkey"])).trim();
  pubA = (await wg(["pubkey"], keyA + "\n")).trim();
  await b.setPeers([{ publicKey: pubA, endpoint: `${hostA.ip4}:${PORT}`, allowedIps: ["10.79.0.1/32"] }]);
  const conf = path.join(dir, "a.conf");
  writeFileSync(conf, `[Interface]\nPrivateKey = ${keyA}\nListenPort = ${PORT}\n\n[Peer]\nPublicKey = ${b.publicKey}\nEndpoint = ${hostB.ip4}:52102\nAllowedIPs = 10.79.0.2/32\n`);
  await wg(["setconf", DEVICE, conf]);
  const s = await show();
  t.equal(s.publicKey, pubA, "the public key of the key set");
  t.equal(s.listenPort, PORT, "the port set");
  t.ok(await reaches(hostA, "10.79.0.2"), "A reaches B");
  t.ok(await reaches(hostB, "10.79.0.1"), "B reaches A");
  const p = peerOf(await show(), b.publicKey)!;
  t.ok(p.latestHandshake > 0, "a handshake is reported");
  t.equal(p.endpoint, `${hostB.ip4}:52102`, "B's endpoint");
  t.same(p.allowedIps, ["10.79.0.2/32"], "B's allowed IPs");
});

t.test("allowed IPs route and filter; the most specific prefix wins, and one moves between peers", async (t) => {
  await c.setPeers([{ publicKey: pubA, endpoint: `${hostA.ip4}:${PORT}`, allowedIps: ["10.79.0.1/32"] }]);
  await wg(["set", DEVICE, "peer", c.publicKey, "endpoint", `${hostC.ip4}:52103`, "allowed-ips", "10.79.0.0/24"]);
  t.ok(await reaches(hostA, "10.79.0.3"), "10.79.0.3 goes to C (its /24)");
  t.ok(await reaches(hostA, "10.79.0.2"), "10.79.0.2 still goes to B (its /32 is more specific)");
  t.ok(await reaches(hostC, "10.79.0.1", 8000, "10.79.0.9"), "C's packets from 10.79.0.9 get in (inside its /24)");
  const dropsBefore = sum(await scrape(), "udptun_drops_total", { reason: "source_not_allowed" });
  // 10.79.0.9/32 now B's: C may no longer send from it, and replies to it go to B.
  await wg(["set", DEVICE, "peer", b.publicKey, "allowed-ips", "10.79.0.2/32,10.79.0.9/32"]);
  t.notOk(await ping(hostC, "10.79.0.1", "10.79.0.9"), "C's packets from 10.79.0.9 are refused");
  t.ok(sum(await scrape(), "udptun_drops_total", { reason: "source_not_allowed" }) > dropsBefore, "counted as source_not_allowed");
  t.ok(await reaches(hostC, "10.79.0.1", 8000, "10.79.0.3"), "C still gets in from 10.79.0.3");
  const s = await show();
  t.same(peerOf(s, b.publicKey)!.allowedIps.sort(), ["10.79.0.2/32", "10.79.0.9/32"], "get: B holds the /32");
  t.same(peerOf(s, c.publicKey)!.allowedIps, ["10.79.0.0/24"], "get: C keeps its /24");
});

t.test("changing a peer's allowed IPs and keepalive keeps its session", async (t) => {
  const before = await handshakes(b.publicKey);
  const bBefore = peerOf(await b.show(), pubA)!.latestHandshake;
  await wg(["set", DEVICE, "peer", b.publicKey, "allowed-ips", "10.79.0.2/32,10.79.0.10/32", "persistent-keepalive", "7"]);
  t.ok(await reaches(hostA, "10.79.0.2"), "A reaches B");
  t.ok(await reaches(hostB, "10.79.0.1"), "B reaches A");
  t.same(await handshakes(b.publicKey), before, "no handshake started or completed on A");
  t.equal(peerOf(await b.show(), pubA)!.latestHandshake, bBefore, "none on B either");
  const p = peerOf(await show(), b.publicKey)!;
  t.equal(p.persistentKeepalive, 7, "get: the new keepalive");
  t.same(p.allowedIps.sort(), ["10.79.0.10/32", "10.79.0.2/32"], "get: the new allowed IPs");
  await wg(["set", DEVICE, "peer", b.publicKey, "persistent-keepalive", "0"]);
});

t.test("the transfer `wg show` reports is the scrape's, and wireguard-go's count of the other way", async (t) => {
  t.ok(await reaches(hostA, "10.79.0.2"), "traffic");
  // TCP that A sends as super-packets, sealed segment by segment; a small window keeps each
  // burst within what wireguard-go's receive buffer holds, so nothing is lost on the way.
  const tcp = await (await startIperf(lab, hostA, hostB, ["-c", "10.79.0.2", "-b", "10M", "-w", "32K"], 1, 52150)).result;
  t.equal(tcp.retransmits, 0, "a TCP transfer, nothing lost");
  // Quiet (no keepalive, no ping): read until two scrapes around a dump agree.
  let agreed = false;
  for (let i = 0; i < 20 && !agreed; i++) {
    const m1 = await scrape();
    const p = peerOf(await show(), b.publicKey)!;
    const theirs = peerOf(await b.show(), pubA)!;
    const m2 = await scrape();
    const rx = sum(m1, "udptun_wireguard_transfer_bytes_total", { peer: b.publicKey, direction: "rx" });
    const tx = sum(m1, "udptun_wireguard_transfer_bytes_total", { peer: b.publicKey, direction: "tx" });
    const stable = rx === sum(m2, "udptun_wireguard_transfer_bytes_total", { peer: b.publicKey, direction: "rx" }) &&
      tx === sum(m2, "udptun_wireguard_transfer_bytes_total", { peer: b.publicKey, direction: "tx" });
    if (!stable) continue;
    agreed = true;
    t.equal(p.rxBytes, rx, `rx: ${rx} bytes both`);
    t.equal(p.txBytes, tx, `tx: ${tx} bytes both`);
    t.ok(rx > 0 && tx > 0, "both counted");
    t.equal(theirs.rxBytes, tx, "wireguard-go received what udptun sent");
    t.equal(theirs.txBytes, rx, "udptun received what wireguard-go sent");
  }
  t.ok(agreed, "a quiet moment was found");
});

t.test("wg syncconf removes a peer: its traffic stops, the others' goes on", async (t) => {
  const conf = path.join(dir, "sync.conf");
  writeFileSync(conf, `[Interface]\nPrivateKey = ${keyA}\nListenPort = ${PORT}\n\n[Peer]\nPublicKey = ${b.publicKey}\nEndpoint = ${hostB.ip4}:52102\nAllowedIPs = 10.79.0.2/32\n`);
  const before = await handshakes(b.publicKey);
  await wg(["syncconf", DEVICE, conf]);
  t.same((await show()).peers.map((p) => p.publicKey), [b.publicKey], "only B is left");
  t.notOk(await ping(hostA, "10.79.0.3"), "C is no longer reached");
  t.notOk(await ping(hostC, "10.79.0.1"), "nor heard");
  t.ok(await reaches(hostA, "10.79.0.2"), "B still is");
  t.same(await handshakes(b.publicKey), before, "B's session went on");
});

t.test("a new listen port: traffic goes on (the peer roams); a taken one answers -98 and changes nothing", async (t) => {
  await wg(["set", DEVICE, "listen-port", String(MOVED_PORT)]);
  t.equal((await show()).listenPort, MOVED_PORT, "get: the new port");
  t.ok(await reaches(hostB, "10.79.0.1", 3000), "B reaches A on the new port");
  t.equal(peerOf(await b.show(), pubA)!.endpoint, `${hostA.ip4}:${MOVED_PORT}`, "B follows A to it");
  // C is no peer now: the new socket's kernel filter drops what it sends (not a handshake).
  const drops = sum(await scrape(), "udptun_socket_receive_drops_total", {});
  await run(...lab.exec(hostC, "python3", ["-c",
    `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor _ in range(5): s.sendto(b"x"*100,("${hostA.ip4}",${MOVED_PORT}))`]));
  await waitUntil(async () => sum(await scrape(), "udptun_socket_receive_drops_total", {}) >= drops + 5, 3000);
  t.pass("the new socket has the peer filter: a stranger's datagrams are dropped in the kernel");

  const [cmd, args] = lab.exec(hostA, "python3", ["-c",
    `import socket,time\ns=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\ns.bind(("::",${TAKEN_PORT}))\nprint("bound",flush=True)\ntime.sleep(120)`]);
  holder = start(cmd, args);
  await holder.waitFor(/bound/);
  const client = await UapiClient.connect(socketPath(DEVICE));
  const reply = await client.set([`listen_port=${TAKEN_PORT}`, `fwmark=7`]);
  client.close();
  t.equal(reply.errno, -98, "EADDRINUSE, as wireguard-go answers");
  const s = await show();
  t.equal(s.listenPort, MOVED_PORT, "still on the port it had");
  t.equal(s.fwmark, "off", "the fwmark in the same request was not applied");
  t.ok(await reaches(hostA, "10.79.0.2"), "and traffic goes on");
  holder.child.kill("SIGKILL");
});

t.test("fwmark is set on the socket and read back", async (t) => {
  await wg(["set", DEVICE, "fwmark", "0x51"]);
  t.equal((await show()).fwmark, "0x51", "get: the mark");
  t.ok(await reaches(hostA, "10.79.0.2"), "traffic goes on");
  await wg(["set", DEVICE, "fwmark", "0"]);
  t.equal((await show()).fwmark, "off", "0 clears it");
});

t.test("a new private key: the peer that knows it gets traffic again", async (t) => {
  const key = (await wg(["genkey"])).trim();
  const pub = (await wg(["pubkey"], key + "\n")).trim();
  await wgIn(lab, hostB, BOOKWORM, ["set", b.device, "peer", pubA, "remove", "peer", pub, "allowed-ips", "10.79.0.1/32", "endpoint", `${hostA.ip4}:${MOVED_PORT}`]);
  await wg(["set", DEVICE, "private-key", keyFile("a2.key", key)]);
  t.equal((await show()).publicKey, pub, "get: the new public key");
  t.ok(await reaches(hostA, "10.79.0.2"), "A reaches B under the new key");
  t.ok(await reaches(hostB, "10.79.0.1"), "B reaches A");
  t.ok(peerOf(await b.show(), pub)!.latestHandshake > 0, "B has a session with the new key");
});

t.test("40 peers x 2,500 allowed IPs added to a running device and read back (timed in wg-tools-scale.test.ts)", async (t) => {
  const lines: string[] = [];
  for (let p = 0; p < 40; p++) {
    const pub = (await wg(["pubkey"], (await wg(["genkey"])).trim() + "\n")).trim();
    const ips: string[] = [];
    for (let i = 0; i < 2500; i++) ips.push(`10.${100 + p}.${i >> 8}.${i & 255}/32`);
    lines.push(`[Peer]\nPublicKey = ${pub}\nAllowedIPs = ${ips.join(", ")}\n`);
  }
  const conf = path.join(dir, "big.conf");
  writeFileSync(conf, `[Interface]\nListenPort = ${MOVED_PORT}\n\n${lines.join("\n")}`);
  await wg(["addconf", DEVICE, conf]);
  const s = await show();
  t.equal(s.peers.length, 41, "B and the 40");
  t.equal(s.peers.reduce((n, p) => n + p.allowedIps.length, 0), 40 * 2500 + 1, "every allowed IP read back");
  t.ok(await reaches(hostA, "10.79.0.2"), "B's traffic goes on");
});
