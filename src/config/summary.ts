// What `check` prints and the "udptun started" log line carries: the config as an operator reads
// it. Public keys only: private and preshared keys never leave the Config object.
import { formatPrefix } from "../net/address.ts";
import type { HostPort } from "../net/address.ts";
import { encodeKey } from "../wireguard/keys.ts";
import type { Config } from "./schema.ts";

const hostPort = (hp: HostPort): string => (hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`);

export function configSummary(c: Config): object {
  return {
    transport: c.transport,
    ...(c.publicKey && { publicKey: encodeKey(c.publicKey) }),
    device: { name: c.device.name, mtu: c.device.mtu, address: c.device.addresses.map(formatPrefix) },
    listen: hostPort(c.listen),
    metrics: hostPort(c.metrics),
    peers: c.peers.map((p) => ({
      name: p.name,
      ...(p.publicKey && { publicKey: encodeKey(p.publicKey), presharedKey: p.presharedKey !== null }),
      // null: a WireGuard peer we learn the address of when it first contacts us.
      endpoint: p.endpoint && hostPort(p.endpoint),
      allowedIps: p.allowedIps.map(formatPrefix),
      ...(p.persistentKeepalive && { persistentKeepalive: p.persistentKeepalive }),
    })),
    pools: c.pools,
    workers: c.workers,
  };
}
