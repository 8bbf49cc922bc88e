// The real `wg` (wireguard-tools) against the UAPI server and the in-memory model: `wg` finds
// the device by its socket, /var/run/wireguard/NAME.sock, so each test uses a unique name.
import t from "tap";
import type { Test } from "tap";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { ModelDevice } from "../../src/uapi/model.ts";
import type { ConfigChange, PeerConfig, PeerStats } from "../../src/uapi/state.ts";
import { UapiServer } from "../../src/uapi/server.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/x25519.ts";

const run = promisify(execFile);
const b64 = (k: Uint8Array): string => Buffer.from(k).toString("base64");

async function wg(...args: string[]): Promise<string> {
  const { stdout } = await run("wg", args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

interface Keys {
  priv: string;
  pub: string;
}

function keys(): Keys {
  const priv = generatePrivateKey();
  return { priv: b64(priv), pub: b64(publicKeyOf(priv)) };
}

const dir = mkdtempSync(`${tmpdir()}/uapi-wg-`);
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = `${dir}/${name}`;
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

async function start(t: Test, stats?: (peer: PeerConfig) => PeerStats): Promise<{ name: string; dev: ModelDevice; log: ConfigChange[] }> {
  const name = `wg${randomBytes(5).toString("hex")}`;
  const log: ConfigChange[] = [];
  const dev = new ModelDevice({ stats, onChange: (c) => log.push(c) });
  const server = await UapiServer.listen({ name, device: dev });
  t.teardown(() => server.close());
  return { name, dev, log };
}

interface PeerSpec {
  key: Keys;
  psk?: string;
  allowed: string[];
  endpoint?: string;
  keepalive?: number;
}

/** A configuration in exactly the form `wg showconf` prints. */
function conf(iface: { priv: string; port?: number; fwmark?: number }, peers: PeerSpec[]): string {
  let out = "[Interface]\n";
  if (iface.port) out += `ListenPort = ${iface.port}\n`;
  if (iface.fwmark) out += `FwMark = 0x${iface.fwmark.toString(16)}\n`;
  out += `PrivateKey = ${iface.priv}\n`;
  for (const p of peers) {
    out += `\n[Peer]\nPublicKey = ${p.key.pub}\n`;
    if (p.psk) out += `PresharedKey = ${p.psk}\n`;
    if (p.allowed.length) out += `AllowedIPs = ${p.allowed.join(", ")}\n`;
    if (p.endpoint) out += `Endpoint = ${p.endpoint}\n`;
    if (p.keepalive) out += `PersistentKeepalive = ${p.keepalive}\n`;
  }
  return out;
}

t.test("wg set, then wg show dump: every field, and stats that match the provider", async (t) => {
  const a = keys();
  const b = keys();
  const me = keys();
  const psk = b64(randomBytes(32));
  const stats = new Map<string, PeerStats>([[b.pub, { lastHandshake: { sec: 1764000000, nsec: 5 }, txBytes: 12345, rxBytes: 678 }]]);
  const { name } = await start(t, (p) => stats.get(b64(p.publicKey)) ?? { lastHandshake: null, txBytes: 0, rxBytes: 0 });
  await wg(
    "set", name, "private-key", file("me.key", `${me.priv}\n`), "listen-port", "51820", "fwmark", "0x2a",
    "peer", a.pub, "preshared-key", file("psk", `${psk}\n`), "endpoint", "192.0.2.1:51820", "persistent-keepalive", "25", "allowed-ips", "10.0.0.0/24,fd00::/64",
    "peer", b.pub, "endpoint", "[2001:db8::1]:7", "allowed-ips", "10.1.2.3/32",
  );
  const dump = (await wg("show", name, "dump")).trimEnd().split("\n");
  t.equal(dump[0], `${me.priv}\t${me.pub}\t51820\t0x2a`, "the interface line");
  t.same(dump.slice(1).sort(), [
    `${a.pub}\t${psk}\t192.0.2.1:51820\t10.0.0.0/24,fd00::/64\t0\t0\t0\t25`,
    `${b.pub}\t(none)\t[2001:db8::1]:7\t10.1.2.3/32\t1764000000\t678\t12345\toff`,
  ].sort(), "each peer line; rx and tx where wg expects them");
  t.equal((await wg("show", name, "latest-handshakes")).trim().split("\n").sort().join("\n"), [`${a.pub}\t0`, `${b.pub}\t1764000000`].sort().join("\n"));

  await wg("set", name, "listen-port", "51821", "peer", a.pub, "remove", "peer", b.pub, "allowed-ips", "10.9.0.0/16", "persistent-keepalive", "0");
  const after = (await wg("show", name, "dump")).trimEnd().split("\n");
  t.same(after, [`${me.priv}\t${me.pub}\t51821\t0x2a`, `${b.pub}\t(none)\t[2001:db8::1]:7\t10.9.0.0/16\t1764000000\t678\t12345\toff`], "remove, replaced allowed IPs, new port");
});

t.test("wg setconf and wg showconf round-trip exactly; wg syncconf touches only what differs", async (t) => {
  const { name, dev, log } = await start(t);
  const me = keys();
  const [p1, p2, p3, p4] = [keys(), keys(), keys(), keys()];
  const first = conf({ priv: me.priv, port: 51820, fwmark: 7 }, [
    { key: p1, psk: b64(randomBytes(32)), allowed: ["10.1.0.0/16", "fd00:1::/64"], endpoint: "192.0.2.1:51820", keepalive: 25 },
    { key: p2, allowed: ["10.2.0.0/16"], endpoint: "[2001:db8::2]:51820" },
    { key: p3, allowed: [] },
  ]);
  await wg("setconf", name, file("first.conf", first));
  t.equal(await wg("showconf", name), first, "setconf then showconf");
  const p1Before = dev.state.peers.get(Buffer.from(p1.pub, "base64").toString("hex"));

  const second = conf({ priv: me.priv, port: 51820, fwmark: 7 }, [
    { key: p1, psk: /PresharedKey = (.*)/.exec(first)![1], allowed: ["10.1.0.0/16", "fd00:1::/64"], endpoint: "192.0.2.1:51820", keepalive: 25 },
    { key: p2, allowed: ["10.2.0.0/16", "10.20.0.0/16"], endpoint: "[2001:db8::2]:51820" },
    { key: p4, allowed: ["10.4.0.0/16"] },
  ]);
  log.length = 0;
  await wg("syncconf", name, file("second.conf", second));
  t.equal(await wg("showconf", name), second, "syncconf then showconf");
  const change = log.at(-1)!;
  t.same(change.removed.map((p) => b64(p.publicKey)), [p3.pub], "the peer left out is removed");
  t.same(change.added.map((p) => b64(p.publicKey)), [p4.pub]);
  t.same(change.updated.map((u) => b64(u.after.publicKey)), [p2.pub]);
  t.equal(dev.state.peers.get(Buffer.from(p1.pub, "base64").toString("hex")), p1Before, "the unchanged peer is the same object: its sessions are not disturbed");
  t.notOk(change.privateKey || change.listenPort || change.fwmark, "nor is the device");

  log.length = 0;
  await wg("setconf", name, file("second.conf", second));
  t.equal(log.at(-1)!.removed.length, 3, "setconf replaces every peer (replace_peers), as wireguard-go does");
  t.equal(await wg("showconf", name), second);
});

/** A server in a process of its own, as a daemon runs it, and out of reach of the test
 * runner's coverage instrumentation (which would slow it several-fold). On a line "cpu" it
 * prints its main thread's CPU time in microseconds and the number of allowed IPs it holds. */
async function startDaemon(t: Test): Promise<{ name: string; cpu: () => Promise<{ us: number; allowed: number }> }> {
  const name = `wg${randomBytes(5).toString("hex")}`;
  const src = new URL("../../src/uapi/", import.meta.url).pathname;
  const script = `
    import { createInterface } from "node:readline";
    import { ModelDevice } from "${src}model.ts";
    import { UapiServer } from "${src}server.ts";
    const dev = new ModelDevice();
    const server = await UapiServer.listen({ name: "${name}", device: dev });
    createInterface({ input: process.stdin }).on("line", () => {
      const u = process.threadCpuUsage();
      console.log(JSON.stringify({ us: u.user + u.system, allowed: dev.state.owners.size }));
    }).on("close", () => server.close());
    console.log("ready");`;
  // Through env(1): tap's hook puts its coverage import back into NODE_OPTIONS of any child
  // it sees spawned, so the variable is dropped past its reach.
  const node = ["-u", "NODE_OPTIONS", "-u", "NODE_V8_COVERAGE", process.execPath, "--input-type=module", "-e", script];
  const child = spawn("env", node, { stdio: ["pipe", "pipe", "inherit"] });
  t.teardown(async () => {
    child.stdin.end();
    await once(child, "exit");
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  t.equal((await lines.next()).value, "ready");
  return {
    name,
    cpu: async () => {
      child.stdin.write("cpu\n");
      return JSON.parse((await lines.next()).value as string) as { us: number; allowed: number };
    },
  };
}

t.test("40 peers with 2,500 allowed IPs each: setconf and a complete wg show within a second", async (t) => {
  const { name, cpu } = await startDaemon(t);
  const me = keys();
  const peers: PeerSpec[] = [];
  for (let p = 0; p < 40; p++) {
    const allowed: string[] = [];
    for (let i = 0; i < 2000; i++) allowed.push(`10.${p}.${i >> 3}.${(i & 7) * 32}/27`);
    for (let i = 0; i < 500; i++) allowed.push(`fd00:${(p + 1).toString(16)}:${(i + 1).toString(16)}::/48`);
    peers.push({ key: keys(), allowed, endpoint: `192.0.2.${p + 1}:51820`, keepalive: 25 });
  }
  const text = conf({ priv: me.priv, port: 51820 }, peers);
  const path = file("big.conf", text);
  // The machine is shared, so the bound is on the CPU time of the server's thread; the wall
  // time, which also counts wg and the neighbours, is reported beside it.
  const started = performance.now();
  const before = await cpu();
  await wg("setconf", name, path);
  const dump = await wg("show", name, "dump");
  const after = await cpu();
  const cpuMs = (after.us - before.us) / 1000;
  const wallMs = performance.now() - started;
  t.ok(cpuMs < 1000, `setconf + show dump: ${Math.round(cpuMs)} ms of the server thread's CPU (${Math.round(wallMs)} ms wall)`);
  t.equal(after.allowed, 100_000, "the server holds every allowed IP");
  const lines = dump.trimEnd().split("\n");
  t.equal(lines.length, 41);
  const byKey = new Map(lines.slice(1).map((l) => [l.split("\t")[0], l.split("\t")[3]]));
  let complete = 0;
  for (const p of peers) if (byKey.get(p.key.pub) === p.allowed.join(",")) complete++;
  t.equal(complete, 40, "every peer's allowed IPs complete and in order");
  t.equal(await wg("showconf", name), text, "showconf round-trips the whole configuration");
});
