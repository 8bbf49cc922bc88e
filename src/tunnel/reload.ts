// What a new config's peers change (SIGHUP), decided without touching anything. A peer is
// kept (its object, counters, resolved endpoint and, with WireGuard, its session) for as long
// as its name and public key stay: a change of allowed IPs, endpoint, preshared key or
// keepalive is applied to it in place; new ones are built; removed ones are left out. Other
// sections need a restart: they are reported and the running values stay.
import type { Config, PeerConfig } from "../config/schema.ts";
import { formatPrefix } from "../net/address.ts";
import type { HostPort, Prefix } from "../net/address.ts";
import { Peer } from "./peers.ts";

export interface ReloadResult {
  kept: string[];
  added: string[];
  /** Kept, with new settings. */
  changed: string[];
  removed: string[];
  /** Config sections that differ but only take effect on a restart. */
  needsRestart: string[];
}

export interface ReloadPlan {
  readonly result: ReloadResult;
  /** The next config's peers, in its order: the objects kept and the ones built anew. */
  readonly peers: Peer[];
  /** Allowed IPs to give kept peers before the next routing table is built. */
  readonly routes: { peer: Peer; allowedIps: readonly Prefix[] }[];
  /** The peers built anew, and kept ones whose configured endpoint changed, with the
   * endpoint their config gives (to set or look up). */
  readonly fresh: { peer: Peer; endpoint: HostPort | null }[];
  /** The config in force afterwards: the next one, but the running values of needsRestart. */
  readonly config: Config;
}

const RESTART_SECTIONS = ["device", "listen", "metrics", "socket", "pools", "offloads", "workers", "transport", "privateKey"] as const;

/** JSON.stringify helper: byte arrays (addresses) compare by content. */
const prefixReplacer = (_k: string, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v);

const endpointOf = (p: PeerConfig) => JSON.stringify([p.endpoint?.host ?? null, p.endpoint?.port ?? null]);
const routesOf = (p: PeerConfig) => p.allowedIps.map(formatPrefix).join(" ");
const sameKey = (a: Uint8Array | null, b: Uint8Array | null) => a === b || (a !== null && b !== null && Buffer.compare(a, b) === 0);
const samePeer = (a: PeerConfig, b: PeerConfig) =>
  endpointOf(a) === endpointOf(b) && routesOf(a) === routesOf(b) && sameKey(a.presharedKey, b.presharedKey) &&
  a.persistentKeepalive === b.persistentKeepalive;

/** current[i] runs as peers[i]. */
export function planReload(current: Config, peers: readonly Peer[], next: Config): ReloadPlan {
  const before = new Map(current.peers.map((p, i) => [p.name, { pc: p, peer: peers[i] }]));
  const result: ReloadResult = { kept: [], added: [], changed: [], removed: [], needsRestart: [] };
  const fresh: { peer: Peer; endpoint: HostPort | null }[] = [];
  const routes: { peer: Peer; allowedIps: readonly Prefix[] }[] = [];
  const nextPeers = next.peers.map((pc) => {
    const old = before.get(pc.name);
    // A name whose public key changed is another peer: built anew.
    if (old && sameKey(old.pc.publicKey, pc.publicKey)) {
      (samePeer(old.pc, pc) ? result.kept : result.changed).push(pc.name);
      if (routesOf(old.pc) !== routesOf(pc)) routes.push({ peer: old.peer, allowedIps: pc.allowedIps });
      if (endpointOf(old.pc) !== endpointOf(pc) && pc.endpoint !== null) fresh.push({ peer: old.peer, endpoint: pc.endpoint });
      return old.peer;
    }
    (old ? result.changed : result.added).push(pc.name);
    const peer = new Peer(pc.name, pc.allowedIps);
    fresh.push({ peer, endpoint: pc.endpoint });
    return peer;
  });
  result.removed = [...before.keys()].filter((n) => !next.peers.some((p) => p.name === n));
  const needsRestart = RESTART_SECTIONS
    .filter((k) => JSON.stringify(current[k], prefixReplacer) !== JSON.stringify(next[k], prefixReplacer));
  result.needsRestart = needsRestart;
  const config = { ...next, ...Object.fromEntries(needsRestart.map((k) => [k, current[k]])) } as Config;
  return { result, peers: nextPeers, routes, fresh, config };
}
