// A rekey seen live, with wireguard-go (trixie's, with offloads) as the peer: a steady ping
// crosses REKEY_AFTER_TIME (120 s), udptun (the initiator) starts a second handshake on its own,
// wireguard-go confirms it, and the flow does not notice. Takes about 135 s.
import t from "tap";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { REKEY_AFTER_TIME } from "../../src/wireguard/constants.ts";
import { encodeKey } from "../../src/wireguard/keys.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/x25519.ts";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { run } from "./lib/proc.ts";
import { scrape, startInstance, stopInstance, sum } from "./lib/udptun.ts";
import type { Instance } from "./lib/udptun.ts";
import { requireBins, TRIXIE } from "./lib/wireguard-bins.ts";
import { startWireguardGo } from "./lib/wireguard-go.ts";
import type { WireguardGo } from "./lib/wireguard-go.ts";

const lab = new Lab();
let hostA: Host, hostB: Host;
let udptun: Instance;
let peer: WireguardGo;

t.before(async () => {
  requireBins(TRIXIE);
  await lab.up();
  hostA = await lab.addHost("a", 1);
  hostB = await lab.addHost("b", 2);
  const key = generatePrivateKey();
  const dir = mkdtempSync(path.join(tmpdir(), "udptun-rekey-"));
  const keyFile = path.join(dir, "a.key");
  writeFileSync(keyFile, `${encodeKey(key)}\n`);
  chmodSync(keyFile, 0o600);
  peer = await startWireguardGo(lab, hostB, "b", {
    bins: TRIXIE, address: ["10.66.0.2/24"],
    peers: [{ publicKey: encodeKey(publicKeyOf(key)), endpoint: `${hostA.ip4}:51820`, allowedIps: ["10.66.0.1/32"] }],
  });
  udptun = await startInstance(lab, hostA, "a", {
    transport: "wireguard",
    privateKeyFile: keyFile,
    device: { name: "udptun0", address: ["10.66.0.1/24"], mtu: 1420 },
    listen: "0.0.0.0:51820",
    peers: [{ name: "b", publicKey: peer.publicKey, endpoint: `${hostB.ip4}:${peer.listenPort}`, allowedIps: ["10.66.0.2/32"] }],
    metrics: { listen: `${hostA.ip4}:9464` },
  });
});

t.teardown(async () => {
  if (udptun && udptun.daemon.child.exitCode === null) udptun.daemon.child.kill("SIGKILL");
  await peer?.stop().catch(() => undefined);
  await lab.destroy();
});

t.test("traffic across REKEY_AFTER_TIME: a second handshake, started by udptun, and no gap", async (t) => {
  const seconds = REKEY_AFTER_TIME / 1000 + 12;
  const count = seconds * 4;
  const ping = await run(...lab.exec(hostA, "ping", ["-c", String(count), "-i", "0.25", "-W", "1", "10.66.0.2"]), { timeoutMs: (seconds + 20) * 1000 });
  const received = Number(/(\d+) received/.exec(ping.stdout)?.[1] ?? 0);
  // The first reply waits for the first handshake; the rekey itself must cost nothing.
  t.ok(received >= count - 2, `${received} of ${count} pings answered across the rekey`);
  const m = await scrape(lab, udptun);
  const initiated = sum(m, "udptun_wireguard_handshakes_total", { peer: "b", event: "initiated" });
  const completed = sum(m, "udptun_wireguard_handshakes_total", { peer: "b", event: "completed" });
  t.ok(initiated >= 2, `udptun initiated ${initiated} handshakes (the first, then the rekey at ${REKEY_AFTER_TIME / 1000} s)`);
  t.ok(completed >= 2, `${completed} handshakes completed`);
  t.equal(sum(m, "udptun_drops_total", { path: "network_to_device", reason: "decryption_failed" }), 0, "nothing failed to open");
  const state = await peer.show();
  const age = Date.now() / 1000 - state.peers[0].latestHandshake;
  t.ok(age < seconds - REKEY_AFTER_TIME / 1000 + 5, `wireguard-go's latest handshake is the rekey (${age.toFixed(0)} s ago)`);
  const latest = sum(m, "udptun_wireguard_latest_handshake_timestamp_seconds", { peer: "b" });
  t.ok(Math.abs(latest - state.peers[0].latestHandshake) <= 2, "udptun's latest handshake time agrees with wg show");
  const { code } = await stopInstance(udptun);
  t.equal(code, 0, "SIGTERM: exit 0");
});
