// What a new config's peers change (SIGHUP), decided without touching anything: unchanged
// peers keep their objects, counters and resolved endpoints, so their flows never notice;
// changed and new ones are built anew; removed ones are left out. Other sections need a
// restart: they are reported and the running values stay.
import type { Config, PeerConfig } from "../config/schema.ts";
import { formatPrefix } from "../net/address.ts";
import type { HostPort } from "../net/address.ts";
import { Peer } from "./peers.ts";

export interface ReloadResult {
  kept: string[];
  added: string[];
  /** Rebuilt, or (persistentKeepalive alone changed) kept with the new interval. */
  changed: string[];
  removed: string[];
  /** Config sections that differ but only take effect on a restart. */
  needsRestart: string[];
}

export interface ReloadPlan {
  readonly result: ReloadResult;
  /** The next config's peers, in its order: the objects kept and the ones built anew. */
  readonly peers: Peer[];
  /** The peers built anew, with the endpoint their config gives (to set or look up). */
  readonly fresh: { peer: Peer; endpoint: HostPort | null }[];
  /** The config in force afterwards: the next one, but the running values of needsRestart. */
  readonly config: Config;
}

const RESTART_SECTIONS = ["device", "listen", "metrics", "socket", "pools", "offloads", "workers", "transport", "privateKey"] as const;

/** JSON.stringify helper: byte arrays (addresses) compare by content. */
const prefixReplacer = (_k: string, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v);

/** What a peer's object is built from: a change here rebuilds it (keys compared, never kept as text). */
const identity = (p: PeerConfig) => JSON.stringify([p.endpoint?.host ?? null, p.endpoint?.port ?? null, p.allowedIps.map(formatPrefix)]);
const sameKey = (a: Uint8Array | null, b: Uint8Array | null) => a === b || (a !== null && b !== null && Buffer.compare(a, b) === 0);
const samePeer = (a: PeerConfig, b: PeerConfig) =>
  identity(a) === identity(b) && sameKey(a.publicKey, b.publicKey) && sameKey(a.presharedKey, b.presharedKey);

/** current[i] runs as peers[i]. */
export function planReload(current: Config, peers: readonly Peer[], next: Config): ReloadPlan {
  const before = new Map(current.peers.map((p, i) => [p.name, { pc: p, peer: peers[i] }]));
  const result: ReloadResult = { kept: [], added: [], changed: [], removed: [], needsRestart: [] };
  const fresh: { peer: Peer; endpoint: HostPort | null }[] = [];
  const nextPeers = next.peers.map((pc) => {
    const old = before.get(pc.name);
    if (old && samePeer(old.pc, pc)) {
      (old.pc.persistentKeepalive === pc.persistentKeepalive ? result.kept : result.changed).push(pc.name);
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
  return { result, peers: nextPeers, fresh, config };
}
