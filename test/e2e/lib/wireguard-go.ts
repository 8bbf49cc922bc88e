// A real WireGuard peer for end-to-end tests: wireguard-go (either release, see
// wireguard-bins.ts) in the foreground inside a Lab host's namespace, configured with `wg`
// (keys from `wg genkey`), its device addressed and up, and stopped cleanly. The peer list
// takes any WireGuard implementation's public key, endpoint and allowed IPs, so udptun can
// stand on the other side.
//
// The UAPI socket /var/run/wireguard/DEVICE.sock lives on the host's file system whatever
// the network namespace, so every instance gets a device name unique to its Lab.
import { existsSync, mkdirSync, mkdtempSync, rmSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import type { Host, Lab } from "./netns.ts";
import { must, run, start } from "./proc.ts";
import type { Daemon } from "./proc.ts";
import type { WireguardBins } from "./wireguard-bins.ts";

export const UAPI_DIR = "/var/run/wireguard";

export type WgLogLevel = "verbose" | "error" | "silent";

/** One peer as `wg set` takes it. Keys are base64 (44 characters), as `wg` prints them. */
export interface WgPeer {
  publicKey: string;
  /** `ip:port` or `[ipv6]:port`; absent: the peer is only reachable after it has written first. */
  endpoint?: string;
  allowedIps: string[];
  /** Seconds; absent or 0: off. */
  persistentKeepalive?: number;
}

export interface WireguardGoOptions {
  bins: WireguardBins;
  /** Device name (<= 15 characters); default wg<lab tag><host name>, unique per Lab. */
  device?: string;
  listenPort?: number;
  /** CIDRs given to the device, e.g. ["10.66.0.1/24", "fd66::1/64"]. */
  address: string[];
  mtu?: number;
  /** wireguard-go's LOG_LEVEL; default error. */
  logLevel?: WgLogLevel;
  peers?: WgPeer[];
}

export interface WgPeerState extends Required<Omit<WgPeer, "endpoint">> {
  endpoint: string | null;
  /** Base64, or null when the peer has none. */
  presharedKey: string | null;
  /** Seconds since the epoch of the latest handshake; 0 = none yet. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

export interface WgState {
  /** Base64, or null when none is set. */
  privateKey: string | null;
  publicKey: string;
  listenPort: number;
  /** As wg prints it: "off" or hex ("0x5e7"). */
  fwmark: string;
  peers: WgPeerState[];
}

export interface StopResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True if it had to be killed (SIGTERM ignored for the timeout). */
  killed: boolean;
  socketLeft: boolean;
  deviceLeft: boolean;
}

export interface WireguardGo {
  host: Host;
  bins: WireguardBins;
  device: string;
  listenPort: number;
  publicKey: string;
  address: string[];
  daemon: Daemon;
  child: ChildProcess;
  /** This end as a peer of another: public key, endpoint on the Lab's underlay, its addresses as host routes. */
  asPeer(opts?: { persistentKeepalive?: number; ipv6Endpoint?: boolean }): WgPeer;
  /** Adds or updates peers (`wg set ... peer ...`). */
  setPeers(peers: WgPeer[]): Promise<void>;
  /** `wg show DEVICE dump`, parsed. */
  show(): Promise<WgState>;
  /** SIGTERM, wait for exit (SIGKILL after timeoutMs), then report what is left behind. */
  stop(timeoutMs?: number): Promise<StopResult>;
}

/** The addresses of device CIDRs as host routes: a peer's allowed IPs. */
export const hostRoutes = (cidrs: readonly string[]): string[] => cidrs.map((c) => `${c.split("/")[0]}/${c.includes(":") ? 128 : 32}`);

export const socketPath = (device: string): string => `${UAPI_DIR}/${device}.sock`;

/** Runs `wg` of the given release inside the host's namespace. */
export function wg(lab: Lab, host: Host, bins: WireguardBins, args: string[], input?: string): Promise<string> {
  return input === undefined ? must(...lab.exec(host, bins.wg, args)) : mustInput(...lab.exec(host, bins.wg, args), input);
}

async function mustInput(cmd: string, args: string[], input: string): Promise<string> {
  const r = await run(cmd, args, { input });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

export async function startWireguardGo(lab: Lab, host: Host, name: string, opts: WireguardGoOptions): Promise<WireguardGo> {
  const { bins } = opts;
  const device = opts.device ?? `wg${lab.tag.slice(2)}${name}`.slice(0, 15);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(device)) throw new Error(`wireguard-go: device: ${JSON.stringify(device)} is not a valid interface name`);
  const listenPort = opts.listenPort ?? 51820;
  if (!Number.isInteger(listenPort) || listenPort < 1 || listenPort > 65535) throw new Error(`wireguard-go: listenPort: ${listenPort} is not a port`);
  if (existsSync(socketPath(device))) throw new Error(`wireguard-go: ${socketPath(device)} already exists (another instance, or a leftover)`);

  const privateKey = (await wg(lab, host, bins, ["genkey"])).trim();
  const publicKey = (await wg(lab, host, bins, ["pubkey"], privateKey + "\n")).trim();

  mkdirSync(UAPI_DIR, { recursive: true });
  const [cmd, args] = lab.exec(host, "env", [`LOG_LEVEL=${opts.logLevel ?? "error"}`, bins.wireguardGo, "-f", device]);
  const daemon = start(cmd, args);
  try {
    await waitForSocket(device, daemon, 10_000);
    // The socket file exists from bind(); wg may connect just before listen(): retry briefly.
    await retry(() => withKeyFile(privateKey, (file) => wg(lab, host, bins, ["set", device, "private-key", file, "listen-port", String(listenPort)])), 20);
    for (const cidr of opts.address) {
      await must(...lab.exec(host, "ip", [...(cidr.includes(":") ? ["-6"] : []), "addr", "add", cidr, "dev", device, ...(cidr.includes(":") ? ["nodad"] : [])]));
    }
    await must(...lab.exec(host, "ip", ["link", "set", device, "mtu", String(opts.mtu ?? 1420), "up"]));
  } catch (e) {
    daemon.child.kill("SIGKILL");
    await daemon.exited;
    rmSync(socketPath(device), { force: true }); // a killed wireguard-go leaves it behind
    throw new Error(`wireguard-go ${bins.release} (${device} in ${host.ns}): ${(e as Error).message}`);
  }

  const inst: WireguardGo = {
    host, bins, device, listenPort, publicKey, address: [...opts.address], daemon, child: daemon.child,
    asPeer: (o = {}) => ({
      publicKey,
      endpoint: o.ipv6Endpoint ? `[${host.ip6}]:${listenPort}` : `${host.ip4}:${listenPort}`,
      allowedIps: hostRoutes(opts.address),
      persistentKeepalive: o.persistentKeepalive ?? 0,
    }),
    setPeers: (peers) => setPeers(lab, inst, peers),
    show: async () => parseDump(await wg(lab, host, bins, ["show", device, "dump"])),
    stop: (timeoutMs = 5000) => stop(lab, inst, timeoutMs),
  };
  if (opts.peers?.length) await inst.setPeers(opts.peers);
  return inst;
}

async function setPeers(lab: Lab, inst: WireguardGo, peers: WgPeer[]): Promise<void> {
  const args = ["set", inst.device];
  for (const p of peers) {
    if (!/^[A-Za-z0-9+/]{43}=$/.test(p.publicKey)) throw new Error(`wireguard-go: peer publicKey: ${JSON.stringify(p.publicKey)} is not a base64 WireGuard key`);
    args.push("peer", p.publicKey, "allowed-ips", p.allowedIps.join(","));
    if (p.endpoint) args.push("endpoint", p.endpoint);
    if (p.persistentKeepalive) args.push("persistent-keepalive", String(p.persistentKeepalive));
  }
  await wg(lab, inst.host, inst.bins, args);
}

/** For teardowns: SIGKILL if it still runs, then its UAPI socket removed (a killed wireguard-go leaves it behind). */
export async function killWireguardGo(inst: WireguardGo | undefined): Promise<void> {
  if (!inst || inst.child.exitCode !== null || inst.child.signalCode !== null) return;
  inst.child.kill("SIGKILL");
  await inst.daemon.exited;
  rmSync(socketPath(inst.device), { force: true });
}

/** `wg show DEV dump`: the interface line, then one tab-separated line per peer. */
export function parseDump(dump: string): WgState {
  const [iface, ...peerLines] = dump.trim().split("\n");
  const f = iface.split("\t");
  const key = (k: string): string | null => (k === "(none)" ? null : k);
  return {
    privateKey: key(f[0]),
    publicKey: f[1],
    listenPort: Number(f[2]),
    fwmark: f[3],
    peers: peerLines.map((line) => {
      const p = line.split("\t");
      return {
        publicKey: p[0],
        presharedKey: key(p[1]),
        endpoint: p[2] === "(none)" ? null : p[2],
        allowedIps: p[3] === "(none)" ? [] : p[3].split(","),
        latestHandshake: Number(p[4]),
        rxBytes: Number(p[5]),
        txBytes: Number(p[6]),
        persistentKeepalive: p[7] === "off" ? 0 : Number(p[7]),
      };
    }),
  };
}

async function stop(lab: Lab, inst: WireguardGo, timeoutMs: number): Promise<StopResult> {
  const { child } = inst.daemon;
  let killed = false;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    const timer = setTimeout(() => { killed = true; child.kill("SIGKILL"); }, timeoutMs);
    await inst.daemon.exited;
    clearTimeout(timer);
  }
  const link = await run(...lab.exec(inst.host, "ip", ["link", "show", "dev", inst.device]));
  return { code: child.exitCode, signal: child.signalCode, killed, socketLeft: existsSync(socketPath(inst.device)), deviceLeft: link.code === 0 };
}

/** Resolves once the device's UAPI socket exists (fs.watch on the folder: no polling). */
function waitForSocket(device: string, daemon: Daemon, timeoutMs: number): Promise<void> {
  const file = socketPath(device);
  return new Promise((resolve, reject) => {
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve();
    };
    const watcher = watch(UAPI_DIR, (_event, name) => { if (name === `${device}.sock` && existsSync(file)) finish(); });
    const timer = setTimeout(() => finish(new Error(`${file} did not appear within ${timeoutMs} ms:\n${daemon.output()}`)), timeoutMs);
    void daemon.exited.then((code) => finish(new Error(`exited (${code}) before ${file} appeared:\n${daemon.output()}`)));
    if (existsSync(file)) finish();
  });
}

/** `wg set ... private-key` reads a file; spawn's stdin is a socket, which /dev/stdin cannot open. */
async function withKeyFile<T>(key: string, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), "wg-key-"));
  try {
    const file = path.join(dir, "private");
    writeFileSync(file, key + "\n", { mode: 0o600 });
    return await fn(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function retry<T>(fn: () => Promise<T>, attempts: number): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
