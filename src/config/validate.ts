// Turns untrusted JSON into a Config, or throws a ConfigError that names the field and
// the value (never a key's). Nothing here touches the system; it only reads key files.
import { networkOf, parseHostPort, parseIp, parsePrefix, formatPrefix } from "../net/address.ts";
import type { HostPort, IpAddress, Prefix } from "../net/address.ts";
import { encodeKey } from "../wireguard/keys.ts";
import { publicKeyOf, sharedSecret } from "../wireguard/x25519.ts";
import { ConfigError, show } from "./error.ts";
import { keyField, refuseKeys } from "./keys.ts";
import type { KeyContext } from "./keys.ts";
import { DEFAULTS, INTERFACE_NAME, LOG_LEVELS, MAX_PERSISTENT_KEEPALIVE, MAX_WORKERS, TRANSPORTS } from "./schema.ts";
import type { Config, LogLevel, PeerConfig, Transport } from "./schema.ts";

export { ConfigError };

export interface ValidateOptions {
  /** Where relative key file paths start: the config file's directory (default: the working directory). */
  readonly baseDir?: string;
  /** Warnings found before validation (a wg-quick file's ignored keys); returned in config.warnings. */
  readonly warnings?: readonly string[];
}

type Obj = Record<string, unknown>;

function object(v: unknown, field: string, keys: string[]): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(field, `expected an object, got ${show(v)}`);
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw new ConfigError(field ? `${field}.${k}` : k, `unknown field (expected one of: ${keys.join(", ")})`);
  }
  return v as Obj;
}

function string(v: unknown, field: string): string {
  if (typeof v !== "string" || v.length === 0) throw new ConfigError(field, `expected a non-empty string, got ${show(v)}`);
  return v;
}

function integer(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(field, `expected an integer from ${min} to ${max}, got ${show(v)}`);
  }
  return v;
}

function boolean(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw new ConfigError(field, `expected true or false, got ${show(v)}`);
  return v;
}

function stringList(v: unknown, field: string): string[] {
  if (typeof v === "string") return [v];
  if (!Array.isArray(v) || v.length === 0) throw new ConfigError(field, `expected a string or a non-empty list of strings, got ${show(v)}`);
  return v.map((x, i) => string(x, `${field}[${i}]`));
}

/** `anyPort`: port 0 (the kernel picks one) is allowed. */
export function hostPort(v: unknown, field: string, anyPort = false): HostPort {
  const s = string(v, field);
  const hp = parseHostPort(s);
  if (!hp) throw new ConfigError(field, `${show(s)} is not host:port (e.g. 192.0.2.1:51820, [2001:db8::1]:51820, peer-b:51820)`);
  if (hp.port === 0 && !anyPort) throw new ConfigError(field, `${show(s)}: port 0 is not allowed`);
  return hp;
}

function ipLiteral(hp: HostPort, raw: unknown, field: string): IpAddress {
  const ip = parseIp(hp.host);
  if (!ip) throw new ConfigError(field, `${show(raw)}: the host must be an IP address here, not a name`);
  return ip;
}

function prefix(v: unknown, field: string): Prefix {
  const s = string(v, field);
  const p = parsePrefix(s);
  if (!p) throw new ConfigError(field, `${show(s)} is not an IP prefix (a.b.c.d/len or x:x::x/len)`);
  return p;
}

function deviceName(v: unknown, field: string): string {
  const s = string(v, field);
  if (!INTERFACE_NAME.test(s) || s === "." || s === "..") {
    throw new ConfigError(field, `${show(s)} is not a valid interface name (1-15 of A-Z a-z 0-9 _ = + . -)`);
  }
  return s;
}

export function validateConfig(raw: unknown, opts: ValidateOptions = {}): Config {
  const top = object(raw, "", ["transport", "privateKey", "privateKeyFile", "device", "listen", "peers", "metrics", "log", "socket", "pools", "offloads", "workers"]);
  const warnings = [...(opts.warnings ?? [])];
  const keys: KeyContext = { baseDir: opts.baseDir ?? process.cwd(), warnings };

  const transport = (top.transport ?? DEFAULTS.transport) as Transport;
  if (!TRANSPORTS.includes(transport)) throw new ConfigError("transport", `${show(top.transport)} is not one of ${TRANSPORTS.join(", ")}`);
  const wg = transport === "wireguard";
  if (!wg) refuseKeys(top, "", ["privateKey", "privateKeyFile"]);
  const privateKey = wg ? keyField(top, "privateKey", "", keys, { required: true, fromFile: true })! : null;
  const publicKey = privateKey && publicKeyOf(privateKey);

  const dev = object(top.device, "device", ["name", "address", "mtu", "txQueueLen"]);
  const addresses = stringList(dev.address, "device.address").map((a, i) => {
    const p = prefix(a, `device.address[${i}]`);
    if (!a.includes("/")) throw new ConfigError(`device.address[${i}]`, `${show(a)} needs a prefix length (e.g. 10.77.0.1/24)`);
    return p;
  });
  const mtu = dev.mtu === undefined ? DEFAULTS.mtu : integer(dev.mtu, "device.mtu", 576, 9000);
  if (mtu < 1280 && addresses.some((a) => a.family === 6)) {
    throw new ConfigError("device.mtu", `${mtu} is below 1280, the IPv6 minimum, and device.address has an IPv6 address`);
  }
  const txQueueLen = dev.txQueueLen === undefined ? DEFAULTS.txQueueLen : integer(dev.txQueueLen, "device.txQueueLen", 1, 1_000_000);
  const device = { name: deviceName(dev.name, "device.name"), addresses, mtu, txQueueLen };

  const listenRaw = top.listen ?? DEFAULTS.listen;
  // WireGuard peers find a random port by roaming (wg-quick without ListenPort); plain peers cannot.
  const listenHp = hostPort(listenRaw, "listen", wg);
  const listen = { ...listenHp, ip: ipLiteral(listenHp, listenRaw, "listen") };
  const dualStack = listen.ip.family === 6 && listen.ip.bytes.every((b) => b === 0);

  if (!Array.isArray(top.peers) || top.peers.length === 0) {
    throw new ConfigError("peers", `expected a non-empty list of peers, got ${show(top.peers)}`);
  }
  const names = new Set<string>();
  const routed = new Map<string, string>();
  const keyOwners = new Map<string, string>();
  const peers: PeerConfig[] = top.peers.map((p, i) => {
    const f = `peers[${i}]`;
    const o = object(p, f, ["name", "endpoint", "allowedIps", "persistentKeepalive", "publicKey", "presharedKey", "presharedKeyFile"]);
    const name = string(o.name, `${f}.name`);
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) throw new ConfigError(`${f}.name`, `${show(name)} must be 1-64 of A-Z a-z 0-9 _ . : -`);
    if (names.has(name)) throw new ConfigError(`${f}.name`, `${show(name)} is used by an earlier peer`);
    names.add(name);
    const endpoint = o.endpoint === undefined && wg ? null : hostPort(o.endpoint, `${f}.endpoint`);
    const epIp = endpoint && parseIp(endpoint.host);
    if (epIp && epIp.family !== listen.ip.family && !dualStack) {
      throw new ConfigError(`${f}.endpoint`, `${show(o.endpoint)} is IPv${epIp.family} but listen ${show(listenRaw)} is IPv${listen.ip.family} (listen on [::] for both)`);
    }
    const allowedIps = stringList(o.allowedIps, `${f}.allowedIps`).map((s, j) => {
      const net = networkOf(prefix(s, `${f}.allowedIps[${j}]`));
      const key = formatPrefix(net);
      const owner = routed.get(key);
      if (owner !== undefined) throw new ConfigError(`${f}.allowedIps[${j}]`, `${show(s)} is already routed to peer ${show(owner)}`);
      routed.set(key, name);
      return net;
    });
    const persistentKeepalive = o.persistentKeepalive === undefined ? 0 : integer(o.persistentKeepalive, `${f}.persistentKeepalive`, 0, MAX_PERSISTENT_KEEPALIVE);
    if (!wg) {
      refuseKeys(o, f, ["publicKey", "presharedKey", "presharedKeyFile"]);
      return { name, endpoint: endpoint!, allowedIps, persistentKeepalive, publicKey: null, presharedKey: null };
    }
    const peerKey = keyField(o, "publicKey", f, keys, { required: true, fromFile: false })!;
    const b64 = encodeKey(peerKey);
    if (b64 === encodeKey(publicKey!)) throw new ConfigError(`${f}.publicKey`, "is our own public key (the one privateKey gives): a peer is another end");
    const owner = keyOwners.get(b64);
    if (owner !== undefined) throw new ConfigError(`${f}.publicKey`, `is peer ${show(owner)}'s public key too: each peer has its own`);
    keyOwners.set(b64, name);
    if (!sharedSecret(privateKey!, peerKey)) throw new ConfigError(`${f}.publicKey`, "is a low-order point: no handshake with it can succeed");
    const presharedKey = keyField(o, "presharedKey", f, keys, { required: false, fromFile: true });
    return { name, endpoint, allowedIps, persistentKeepalive, publicKey: peerKey, presharedKey };
  });

  const met = top.metrics === undefined ? {} : object(top.metrics, "metrics", ["listen"]);
  const metrics = hostPort(met.listen ?? DEFAULTS.metricsListen, "metrics.listen");

  const logo = top.log === undefined ? {} : object(top.log, "log", ["level"]);
  const level = (logo.level ?? DEFAULTS.logLevel) as LogLevel;
  if (!LOG_LEVELS.includes(level)) throw new ConfigError("log.level", `${show(logo.level)} is not one of ${LOG_LEVELS.join(", ")}`);

  const so = top.socket === undefined ? {} : object(top.socket, "socket", ["receiveBuffer", "sendBuffer", "peerFilter"]);
  const socket = {
    receiveBuffer: so.receiveBuffer === undefined ? DEFAULTS.receiveBuffer : integer(so.receiveBuffer, "socket.receiveBuffer", 4096, 1 << 30),
    sendBuffer: so.sendBuffer === undefined ? DEFAULTS.sendBuffer : integer(so.sendBuffer, "socket.sendBuffer", 4096, 1 << 30),
    peerFilter: so.peerFilter === undefined ? DEFAULTS.peerFilter : boolean(so.peerFilter, "socket.peerFilter"),
  };

  const po = top.pools === undefined ? {} : object(top.pools, "pools", ["deviceCapacity", "networkCapacity"]);
  const pools = {
    deviceCapacity: po.deviceCapacity === undefined ? DEFAULTS.poolCapacity : integer(po.deviceCapacity, "pools.deviceCapacity", 128, 1 << 16),
    networkCapacity: po.networkCapacity === undefined ? DEFAULTS.poolCapacity : integer(po.networkCapacity, "pools.networkCapacity", 128, 1 << 16),
  };

  const of = top.offloads === undefined ? {} : object(top.offloads, "offloads", ["udpGso", "udpGro", "tun", "coalesce", "coalesceUdp"]);
  const offloads = {
    udpGso: of.udpGso === undefined || boolean(of.udpGso, "offloads.udpGso"),
    udpGro: of.udpGro === undefined || boolean(of.udpGro, "offloads.udpGro"),
    tun: of.tun === undefined || boolean(of.tun, "offloads.tun"),
    coalesce: of.coalesce === undefined || boolean(of.coalesce, "offloads.coalesce"),
    coalesceUdp: of.coalesceUdp !== undefined && boolean(of.coalesceUdp, "offloads.coalesceUdp"),
  };

  const workers = top.workers === undefined ? DEFAULTS.workers : integer(top.workers, "workers", 1, MAX_WORKERS);
  // One keypair table and one replay window per session, read by a single thread: several
  // workers would each need the sessions (and their counters) shared safely.
  if (workers > 1 && transport === "wireguard") throw new ConfigError("workers", `${workers}: the wireguard transport runs on one thread (workers: 1); several workers need "transport": "plain"`);

  return deepFreeze({ transport, privateKey, publicKey, device, listen, peers, metrics, log: { level }, socket, pools, offloads, workers, warnings } as Config);
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v) && !ArrayBuffer.isView(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
