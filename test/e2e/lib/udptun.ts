// Starting udptun instances and reading their /metrics inside a Lab.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { encodeKey } from "../../../src/wireguard/keys.ts";
import { generatePrivateKey, publicKeyOf } from "../../../src/wireguard/x25519.ts";
import type { Host, Lab } from "./netns.ts";
import { must, start } from "./proc.ts";
import type { Daemon } from "./proc.ts";
import { hostRoutes } from "./wireguard-go.ts";
import type { WgPeer } from "./wireguard-go.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI = path.join(ROOT, "src/cli.ts");
/** The Node that runs the tests (Node 24 from node_modules), for udptun itself too. */
export const NODE = process.execPath;

export interface Instance {
  host: Host;
  config: string;
  daemon: Daemon;
  metricsUrl: string;
}

export function writeConfig(name: string, cfg: object): string {
  const dir = mkdtempSync(path.join(tmpdir(), "udptun-e2e-"));
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

/** The config of one end: device 10.77.0.<n>/24 + fd77::<n>/64, one peer per other end. */
export function tunnelConfig(self: { host: Host; n: number }, others: { name: string; host: Host; n: number }[], extra: object = {}): object {
  return {
    // The plain transport's tests; WireGuard's build on wireguardConfig.
    transport: "plain",
    device: { name: "udptun0", address: [`10.77.0.${self.n}/24`, `fd77::${self.n}/64`], mtu: 1420 },
    listen: "0.0.0.0:51820",
    peers: others.map((o) => ({
      name: o.name,
      endpoint: `${o.host.ip4}:51820`,
      allowedIps: [`10.77.0.${o.n}/32`, `fd77::${o.n}/128`],
    })),
    metrics: { listen: `${self.host.ip4}:9464` },
    log: { level: "info" },
    ...extra,
  };
}

/** The tunnel addresses of WireGuard end n (udptun or wireguard-go): 10.78.0.<n>/24 and fd78::<n>/64. */
export const wireguardAddresses = (n: number): string[] => [`10.78.0.${n}/24`, `fd78::${n}/64`];

/** A udptun WireGuard end: its keys, made at set-up, the private one in a 0600 file of its own. */
export interface WireGuardEnd {
  name: string;
  host: Host;
  n: number;
  /** UDP port it listens on. */
  port: number;
  /** Base64, as `wg` prints it. */
  publicKey: string;
  privateKeyFile: string;
}

export function wireguardEnd(name: string, host: Host, n: number, port = 51820): WireGuardEnd {
  const priv = generatePrivateKey();
  const dir = mkdtempSync(path.join(tmpdir(), "udptun-e2e-key-"));
  const privateKeyFile = path.join(dir, `${name}.key`);
  writeFileSync(privateKeyFile, encodeKey(priv) + "\n", { mode: 0o600 });
  const publicKey = encodeKey(publicKeyOf(priv));
  priv.fill(0);
  return { name, host, n, port, publicKey, privateKeyFile };
}

/** A peer of a WireGuard config: a udptun end (wireguardPeer) or a wireguard-go one (its asPeer()), named. */
export type WireGuardPeer = WgPeer & { name: string };

/** The end as a peer of another (udptun or wireguard-go): its public key, its tunnel addresses as
 * host routes and, unless `endpoint` is false, its underlay address. */
export function wireguardPeer(end: WireGuardEnd, opts: { endpoint?: boolean; persistentKeepalive?: number } = {}): WireGuardPeer {
  return {
    name: end.name,
    publicKey: end.publicKey,
    ...(opts.endpoint === false ? {} : { endpoint: `${end.host.ip4}:${end.port}` }),
    allowedIps: hostRoutes(wireguardAddresses(end.n)),
    persistentKeepalive: opts.persistentKeepalive ?? 0,
  };
}

/** The WireGuard config of one end: device udptun0 with wireguardAddresses(n), the private key
 * from its file, peers by public key (endpoint optional); `extra` replaces top-level fields. */
export function wireguardConfig(self: WireGuardEnd, peers: WireGuardPeer[], extra: object = {}): object {
  return {
    transport: "wireguard",
    privateKeyFile: self.privateKeyFile,
    device: { name: "udptun0", address: wireguardAddresses(self.n), mtu: 1420 },
    listen: `0.0.0.0:${self.port}`,
    peers: peers.map((p) => ({
      name: p.name,
      publicKey: p.publicKey,
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      allowedIps: p.allowedIps,
      ...(p.persistentKeepalive ? { persistentKeepalive: p.persistentKeepalive } : {}),
    })),
    metrics: { listen: `${self.host.ip4}:9464` },
    log: { level: "info" },
    ...extra,
  };
}

/** Starts `udptun run` in the host's namespace; nodeArgs go to Node itself (e.g. "--trace-gc-nvp"). */
export async function startInstance(lab: Lab, host: Host, name: string, cfg: object, opts: { nodeArgs?: string[] } = {}): Promise<Instance> {
  const config = writeConfig(name, cfg);
  const [cmd, args] = lab.exec(host, NODE, [...(opts.nodeArgs ?? []), CLI, "run", "--config", config]);
  const daemon = start(cmd, args);
  await daemon.waitFor(/"msg":"udptun started"/);
  const listen = (cfg as { metrics: { listen: string } }).metrics.listen;
  return { host, config, daemon, metricsUrl: `http://${listen}/metrics` };
}

/** Fetches a URL from inside a namespace (the test runner itself lives outside them). */
export async function fetchIn(lab: Lab, ns: Host | string, url: string): Promise<string> {
  const [cmd, args] = lab.exec(ns, "curl", ["-sS", "--max-time", "5", url]);
  return must(cmd, args);
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (enough of it for our own output). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith("#")) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(lab: Lab, inst: Instance): Promise<Sample[]> {
  return parseMetrics(await fetchIn(lab, inst.host, inst.metricsUrl));
}

/** Sum of a metric's samples whose labels include the given ones. */
export function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/** SIGTERM, then the exit code and how long the exit took. */
export async function stopInstance(inst: Instance): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  inst.daemon.child.kill("SIGTERM");
  const code = await inst.daemon.exited;
  return { code, ms: performance.now() - t0 };
}
