// Peers: who we send to (by inner destination) and whom we accept datagrams from (by
// exact endpoint). Per-peer counters are plain numbers the meter reads on collection.
import { ENDPOINT_BYTES } from "../net/address.ts";
import type { Prefix } from "../net/address.ts";
import { PrefixTable } from "./routing.ts";

export class Peer {
  readonly name: string;
  /** Where it routes; replaced (never edited in place) by a configuration change, and only
   * takes effect in the next PeerTable built. */
  allowedIps: readonly Prefix[];
  /** 20-byte endpoint (addon form), or null while its name has not resolved. */
  endpoint: Uint8Array | null = null;
  txPackets = 0;
  txBytes = 0;
  rxPackets = 0;
  rxBytes = 0;
  rxKeepalives = 0;
  /** WireGuard: bytes of UDP payload sent to the peer and received from it authenticated,
   * every message counted (data, keepalives, handshake messages; not cookie replies): what
   * wireguard-go reports as tx_bytes and rx_bytes, and `wg show` as its transfer. */
  wireTxBytes = 0;
  wireRxBytes = 0;

  constructor(name: string, allowedIps: readonly Prefix[]) {
    this.name = name;
    this.allowedIps = allowedIps;
  }
}

/** A 30-bit FNV-1a hash of a 20-byte endpoint; collisions are settled by comparing bytes.
 * 30 bits keep it a V8 small integer: a larger number would be boxed, one heap allocation per
 * received datagram (the soak test caught it). */
function endpointHash(b: Uint8Array, off: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < ENDPOINT_BYTES; i++) h = Math.imul(h ^ b[off + i], 0x01000193);
  return h & 0x3fffffff;
}

function sameEndpoint(a: Uint8Array, b: Uint8Array, off: number): boolean {
  for (let i = 0; i < ENDPOINT_BYTES; i++) if (a[i] !== b[off + i]) return false;
  return true;
}

export class PeerTable {
  readonly peers: readonly Peer[];
  private readonly routes = new PrefixTable<Peer>();
  private byEndpoint = new Map<number, Peer[]>();
  /** The last peer fromEndpoint found: a batch is mostly one peer's datagrams, and comparing
   * 20 bytes costs less than hashing them (the receiver's JS spent 2% of its samples there). */
  private lastFound: Peer | null = null;

  constructor(peers: readonly Peer[]) {
    this.peers = peers;
    for (const p of peers) for (const prefix of p.allowedIps) this.routes.insert(prefix, p);
    this.reindex();
  }

  /** The peer whose allowed IPs hold the address at b[off..] (longest prefix), or null. */
  route(b: Uint8Array, off: number, family: 4 | 6): Peer | null {
    return this.routes.lookup(b, off, family);
  }

  /** The peer with exactly this endpoint (address and port), or null. */
  fromEndpoint(b: Uint8Array, off: number): Peer | null {
    const last = this.lastFound;
    if (last !== null && sameEndpoint(last.endpoint!, b, off)) return last;
    const candidates = this.byEndpoint.get(endpointHash(b, off));
    if (candidates === undefined) return null;
    for (let i = 0; i < candidates.length; i++) {
      const ep = candidates[i].endpoint;
      if (ep !== null && sameEndpoint(ep, b, off)) return (this.lastFound = candidates[i]);
    }
    return null;
  }

  /** Sets a peer's endpoint (after name resolution) and rebuilds the endpoint index. */
  setEndpoint(peer: Peer, endpoint: Uint8Array): void {
    peer.endpoint = endpoint;
    this.reindex();
  }

  private reindex(): void {
    const index = new Map<number, Peer[]>();
    for (const p of this.peers) {
      if (!p.endpoint) continue;
      const h = endpointHash(p.endpoint, 0);
      const list = index.get(h);
      if (list) list.push(p);
      else index.set(h, [p]);
    }
    this.byEndpoint = index;
    this.lastFound = null;
  }
}
