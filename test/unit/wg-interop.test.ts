// Our protocol code against the real thing: wireguard-go (the Debian package) in a network
// namespace we create, its UDP port reached through a small relay process inside the same
// namespace (loopback only). Both directions: we initiate and ping through it; it initiates
// (its kernel pings us) and we answer. Data messages are sealed and opened with node:crypto
// through the test's fake native table, as the C side will.
import t from "tap";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { WgDevice } from "../../src/wireguard/device.ts";
import { WgDrop } from "../../src/wireguard/drops.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/x25519.ts";
import { must, run, start } from "../e2e/lib/proc.ts";
import { Side, endpoint } from "./lib/wg-world.ts";

const WG_PORT = 51820;
const RELAY_PORT = 40000;
const OUR_IP = [10, 77, 0, 1];
const THEIR_IP = [10, 77, 0, 2];

const tools = ["/usr/bin/wireguard-go", "/usr/bin/wg"].every(existsSync);
const root = process.getuid?.() === 0;

/** Relays datagrams between wireguard-go's port and this test, as hex lines. */
const RELAY = `
const dgram = require("node:dgram");
const s = dgram.createSocket("udp4");
s.on("message", (m) => process.stdout.write(m.toString("hex") + "\\n"));
s.bind(${RELAY_PORT}, "127.0.0.1", () => process.stdout.write("ready\\n"));
require("node:readline").createInterface({ input: process.stdin }).on("line", (l) => s.send(Buffer.from(l, "hex"), ${WG_PORT}, "127.0.0.1"));
process.stdin.on("end", () => process.exit(0));
`;

function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i] << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4 ICMP echo (type 8 request, 0 reply), zero-padded to a multiple of 16 as WireGuard sends. */
function icmpEcho(type: number, src: number[], dst: number[], id: number, seq: number): Uint8Array {
  const icmp = Buffer.alloc(8 + 16);
  icmp[0] = type;
  icmp.writeUInt16BE(id, 4);
  icmp.writeUInt16BE(seq, 6);
  icmp.fill(0x61, 8);
  icmp.writeUInt16BE(checksum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + icmp.length, 2);
  ip[8] = 64;
  ip[9] = 1;
  ip.set(src, 12);
  ip.set(dst, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const packet = Buffer.concat([ip, icmp]);
  return Buffer.concat([packet, Buffer.alloc((16 - (packet.length % 16)) % 16)]);
}

t.test("interop with wireguard-go", { skip: !tools || !root ? "needs root and wireguard-go + wg" : false }, async (t) => {
  const tag = randomBytes(3).toString("hex");
  const ns = `wgi-${tag}`;
  const ifname = `wgi${tag}`;
  const dir = mkdtempSync(join(tmpdir(), "wg-interop-"));
  const theirKey = generatePrivateKey();
  const keyFile = join(dir, "key");
  writeFileSync(keyFile, Buffer.from(theirKey).toString("base64") + "\n", { mode: 0o600 });
  await must("ip", ["netns", "add", ns]);
  t.teardown(async () => {
    await run("ip", ["netns", "del", ns]);
    rmSync(dir, { recursive: true, force: true });
  });
  await must("ip", ["-n", ns, "link", "set", "lo", "up"]);

  const wggo = start("ip", ["netns", "exec", ns, "wireguard-go", "-f", ifname]);
  t.teardown(() => void wggo.child.kill("SIGTERM"));
  for (let i = 0; i < 100 && (await run("ip", ["-n", ns, "link", "show", ifname])).code !== 0; i++) await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 100 && !existsSync(`/var/run/wireguard/${ifname}.sock`); i++) await new Promise((r) => setTimeout(r, 50));

  const relay = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", RELAY], { stdio: ["pipe", "pipe", "inherit"] });
  t.teardown(() => void relay.stdin!.end());
  const lines = createInterface({ input: relay.stdout! });
  const inbox: Uint8Array[] = [];
  let wake: (() => void) | null = null;
  let ready!: () => void;
  const relayReady = new Promise<void>((r) => (ready = r));
  lines.on("line", (l) => {
    if (l === "ready") return ready();
    inbox.push(Uint8Array.from(Buffer.from(l, "hex")));
    wake?.();
  });
  await relayReady;

  const theirEndpoint = endpoint("127.0.0.1", WG_PORT);
  const configure = async (ours: Side): Promise<void> => {
    await must("ip", ["netns", "exec", ns, "wg", "set", ifname, "private-key", keyFile, "listen-port", String(WG_PORT),
      "peer", Buffer.from(ours.publicKey).toString("base64"), "allowed-ips", `${OUR_IP.join(".")}/32`, "endpoint", `127.0.0.1:${RELAY_PORT}`]);
  };

  /** One end of ours: a WgDevice whose effects go through the relay. */
  const makeUs = (): { side: Side; device: WgDevice } => {
    const side = new Side("us", "127.0.0.1", RELAY_PORT);
    const fx = side.effects();
    const device = new WgDevice({
      privateKey: side.privateKey,
      peers: [{ name: "wireguard-go", publicKey: publicKeyOf(theirKey), endpoint: theirEndpoint }],
      effects: {
        ...fx,
        send: (to, msg, peer) => {
          fx.send(to, msg, peer);
          relay.stdin!.write(Buffer.from(msg).toString("hex") + "\n");
        },
        sendKeepalive: (peer, slot) => {
          fx.sendKeepalive(peer, slot);
          relay.stdin!.write(Buffer.from(side.seal(slot, new Uint8Array(0))).toString("hex") + "\n");
        },
      },
    });
    side.device = device;
    return { side, device };
  };

  /** Handles what arrived until `done` says so (or 5 s pass); returns the data plaintexts. */
  const pump = async (us: { side: Side; device: WgDevice }, done: (data: Uint8Array[]) => boolean): Promise<Uint8Array[]> => {
    const data: Uint8Array[] = [];
    const deadline = Date.now() + 5000;
    while (!done(data) && Date.now() < deadline) {
      if (inbox.length === 0) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
        wake = null;
        continue;
      }
      const msg = inbox.shift()!;
      const now = performance.now();
      if (msg[0] === 4) {
        const opened = us.side.open(msg);
        if (opened && us.device.dataReceived(opened.slot, theirEndpoint, now, opened.plaintext.length === 0) && opened.plaintext.length > 0) data.push(opened.plaintext);
      } else {
        t.equal(us.device.handshakeMessage(msg, theirEndpoint, now), WgDrop.None, `handshake message type ${msg[0]} accepted`);
      }
    }
    return data;
  };

  await t.test("we initiate; a ping through wireguard-go is answered", async (t) => {
    const us = makeUs();
    await configure(us.side);
    await must("ip", ["-n", ns, "addr", "add", `${THEIR_IP.join(".")}/24`, "dev", ifname]);
    await must("ip", ["-n", ns, "link", "set", ifname, "up"]);
    const peer = us.device.peers[0];
    t.equal(us.device.sendingSlot(peer, performance.now()), -1);
    await pump(us, () => us.side.native.size > 0);
    const slot = us.device.sendingSlot(peer, performance.now());
    t.ok(slot >= 0, "wireguard-go's response gave us a keypair");
    const echo = icmpEcho(8, OUR_IP, THEIR_IP, 0x77, 1);
    relay.stdin!.write(Buffer.from(us.side.seal(slot, echo)).toString("hex") + "\n");
    us.device.dataSent(peer, performance.now(), 1);
    const replies = await pump(us, (d) => d.length > 0);
    t.equal(replies.length, 1, "a data message came back and opened");
    const reply = Buffer.from(replies[0] ?? []);
    t.equal(reply[9], 1, "ICMP");
    t.same([...reply.subarray(12, 16)], THEIR_IP, "from their address");
    t.equal(reply[20], 0, "an echo reply");
    t.equal(reply.readUInt16BE(24), 0x77, "to our id");
    const shown = await must("ip", ["netns", "exec", ns, "wg", "show", ifname, "latest-handshakes"]);
    t.match(shown, new RegExp(`${Buffer.from(us.side.publicKey).toString("base64").replace(/[+/]/g, "\\$&")}\\t[1-9]`), "wg shows a handshake with us");
  });

  await t.test("wireguard-go initiates; we respond, and its ping is answered", async (t) => {
    const us = makeUs();
    const old = (await must("ip", ["netns", "exec", ns, "wg", "show", ifname, "peers"])).trim();
    await must("ip", ["netns", "exec", ns, "wg", "set", ifname, "peer", old, "remove"]);
    await configure(us.side);
    const ping = run("ip", ["netns", "exec", ns, "ping", "-c", "1", "-W", "4", OUR_IP.join(".")], { timeoutMs: 10_000 });
    const requests = await pump(us, (d) => d.length > 0);
    t.equal(requests.length, 1, "its first data message opened on our responder keypair");
    const req = Buffer.from(requests[0] ?? []);
    t.equal(req[20], 8, "an echo request");
    t.ok(us.device.sendingSlot(us.device.peers[0], performance.now()) >= 0, "the data promoted our next keypair");
    const slot = us.device.sendingSlot(us.device.peers[0], performance.now());
    const reply = icmpEcho(0, OUR_IP, THEIR_IP, req.readUInt16BE(24), req.readUInt16BE(26));
    relay.stdin!.write(Buffer.from(us.side.seal(slot, reply)).toString("hex") + "\n");
    const r = await ping;
    t.equal(r.code, 0, `ping through wireguard-go succeeded: ${r.stdout.trim().split("\n").at(-2) ?? ""}`);
  });
});
