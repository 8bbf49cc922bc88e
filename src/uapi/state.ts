// The configuration the model holds: immutable states, peers shared between successive
// states when a request does not touch them, and what a request changed.
import type { Prefix } from "../net/address.ts";

/** wireguard-go's MaxPeers. */
export const MAX_PEERS = 1 << 16;

export interface PeerConfig {
  readonly publicKey: Uint8Array;
  readonly presharedKey: Uint8Array | null;
  readonly endpoint: Uint8Array | null;
  readonly persistentKeepalive: number;
  /** In the order wireguard-go reports them (insertion; re-adding moves one to the end),
   * keyed by prefixKey(). */
  readonly allowedIps: ReadonlyMap<PrefixKey, Prefix>;
  /** Changes when the peer is removed and created again (its sessions start over). */
  readonly generation: number;
}

export interface ModelState {
  readonly privateKey: Uint8Array | null;
  readonly publicKey: Uint8Array | null;
  readonly listenPort: number;
  readonly fwmark: number;
  /** By hex public key, in creation order. */
  readonly peers: ReadonlyMap<string, PeerConfig>;
  /** Which peer (hex public key) owns each allowed IP: one owner per prefix, as in the trie. */
  readonly owners: ReadonlyMap<PrefixKey, string>;
}

/** What a request changed; peers it did not touch appear nowhere. A peer removed and created
 * again in one request (replace_peers) is both removed and added. */
export interface ConfigChange {
  privateKey: boolean;
  listenPort: boolean;
  fwmark: boolean;
  removed: PeerConfig[];
  added: PeerConfig[];
  updated: { before: PeerConfig; after: PeerConfig }[];
}

export interface PeerStats {
  lastHandshake: { sec: number; nsec: number } | null;
  txBytes: number;
  rxBytes: number;
}

export const EMPTY_STATE: ModelState = {
  privateKey: null,
  publicKey: null,
  listenPort: 0,
  fwmark: 0,
  peers: new Map(),
  owners: new Map(),
};

/** A prefix (already masked) as a map key, cheap to make and to hash since a configuration can
 * hold 100k. An IPv4 host route (the most numerous): its address as a signed 32-bit integer,
 * which V8 keeps unboxed. Any other IPv4 prefix: the network bits with a marker bit just after
 * them (which encodes the length), above 2^32 so it never meets a host route. IPv6: the length
 * and the eight 16-bit groups as a 9-character string. */
export function prefixKey(p: Prefix): PrefixKey {
  const b = p.bytes;
  if (p.family === 4) {
    const addr = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    return p.length === 32 ? addr : ((addr | (1 << (31 - p.length))) >>> 0) + 2 ** 32;
  }
  return String.fromCharCode(
    p.length,
    (b[0] << 8) | b[1], (b[2] << 8) | b[3], (b[4] << 8) | b[5], (b[6] << 8) | b[7],
    (b[8] << 8) | b[9], (b[10] << 8) | b[11], (b[12] << 8) | b[13], (b[14] << 8) | b[15],
  );
}

export type PrefixKey = number | string;
