// Where the peers are: IP literals take effect at once, names resolve in the background
// (retried while they fail, for as long as the peer is configured), and the socket's peer
// filter is kept to the endpoints known so far. With WireGuard a peer may have none configured
// and is then known once it authenticates; its endpoint also follows it when it roams
// (moved()), and the filter still lets anyone's handshake messages in.
import { lookup as dnsLookup } from "node:dns/promises";
import type { Logger } from "pino";
import { FILTER_PLAIN } from "../native/addon.ts";
import type { PeerFilterMode } from "../native/addon.ts";
import { clearPeerFilter, setPeerFilter } from "../native/udp.ts";
import type { UdpSocket } from "../native/udp.ts";
import { encodeEndpoint, formatEndpoint, parseIp } from "../net/address.ts";
import type { HostPort } from "../net/address.ts";
import type { Peer, PeerTable } from "./peers.ts";

/** Resolves a name to one address (text); family 4, or 0 for either (a dual-stack socket). */
export type Lookup = (host: string, family: 0 | 4) => Promise<string>;

export interface EndpointsOptions {
  log: Logger;
  /** config.socket.peerFilter: keep the kernel's filter on the socket, or leave it off. */
  peerFilter: boolean;
  /** The system resolver unless given. */
  lookup?: Lookup;
  /** Wait before looking a name up again after a failure. */
  retryMs?: number;
  /** The filter's shape (FILTER_PLAIN unless given). */
  filterMode?: PeerFilterMode;
  /** A peer's endpoint was set from its configured name or address. */
  onEndpoint?: (peer: Peer) => void;
}

const RESOLVE_RETRY_MS = 5000;

const systemLookup: Lookup = async (host, family) => (await dnsLookup(host, { family })).address;

export class Endpoints {
  private peers: PeerTable;
  /** The peers configured now: a lookup answering for any other is ignored. */
  private live: Set<Peer>;
  private sock: UdpSocket | null = null;
  /** Names to look up once start() is called. */
  private names: { peer: Peer; endpoint: HostPort }[] = [];
  private readonly retries = new Map<Peer, NodeJS.Timeout>();
  /** The endpoints the peer filter was last built for (sorted text), to rebuild only on change. */
  private filtered: string | null = null;
  private stopped = false;
  private readonly log: Logger;
  private readonly filter: boolean;
  private readonly lookup: Lookup;
  private readonly retryMs: number;
  private readonly mode: PeerFilterMode;
  private readonly onEndpoint: (peer: Peer) => void;

  /** peers[i] is configured with endpoints[i] (null: none, WireGuard). IP literals are set now; names wait for start(). */
  constructor(peers: PeerTable, endpoints: readonly (HostPort | null)[], opts: EndpointsOptions) {
    this.peers = peers;
    this.live = new Set(peers.peers);
    this.log = opts.log;
    this.filter = opts.peerFilter;
    this.lookup = opts.lookup ?? systemLookup;
    this.retryMs = opts.retryMs ?? RESOLVE_RETRY_MS;
    this.mode = opts.filterMode ?? FILTER_PLAIN;
    this.onEndpoint = opts.onEndpoint ?? (() => {});
    peers.peers.forEach((peer, i) => {
      const endpoint = endpoints[i];
      if (endpoint !== null && !this.setLiteral(peer, endpoint)) this.names.push({ peer, endpoint });
    });
  }

  /** The socket is open: its filter admits the endpoints known so far (or is left off, as config asks). */
  attach(sock: UdpSocket): void {
    this.sock = sock;
    if (this.filter) this.updateFilter();
    else this.log.info("peer filter off (socket.peerFilter is false): strangers reach udptun and are dropped there (unknown_peer)");
  }

  /** A socket about to replace the current one (another listen port) gets the same filter
   * before it takes any traffic; moveTo() then switches to it. */
  prepare(sock: UdpSocket): void {
    if (this.filter && this.sock) this.install(sock, this.known(), false);
  }

  /** The socket prepare() was given is the one in use now. */
  moveTo(sock: UdpSocket): void {
    this.sock = sock;
  }

  /** Starts looking up the names (their answers touch the socket and the peers' table). */
  start(): void {
    const names = this.names;
    this.names = [];
    for (const n of names) this.resolve(n.peer, n.endpoint);
  }

  /** A reload's peers: fresh ones (new, or given another endpoint) get their endpoints;
   * lookups for peers gone, or for an endpoint replaced, are dropped. */
  replace(peers: PeerTable, fresh: readonly { peer: Peer; endpoint: HostPort | null }[]): void {
    this.peers = peers;
    this.live = new Set(peers.peers);
    const renewed = new Set(fresh.map((f) => f.peer));
    for (const [peer, timer] of this.retries) {
      if (this.live.has(peer) && !renewed.has(peer)) continue;
      clearTimeout(timer);
      this.retries.delete(peer);
    }
    for (const f of fresh) if (f.endpoint !== null) this.resolve(f.peer, f.endpoint);
    this.updateFilter(); // removed peers out, new literal endpoints in
  }

  /** A WireGuard peer authenticated from a new address: it goes there now, and the filter lets it in. */
  moved(peer: Peer, endpoint: Uint8Array): void {
    if (!this.configured(peer)) return;
    this.peers.setEndpoint(peer, endpoint);
    this.updateFilter();
  }

  /** Names waiting to be looked up again. */
  get retrying(): number {
    return this.retries.size;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
  }

  /** Sets the peer's endpoint if its host is an IP literal; false if it is a name. */
  private setLiteral(peer: Peer, endpoint: HostPort): boolean {
    const literal = parseIp(endpoint.host);
    if (!literal) return false;
    this.peers.setEndpoint(peer, encodeEndpoint(literal, endpoint.port));
    this.onEndpoint(peer);
    return true;
  }

  private configured(peer: Peer): boolean {
    return !this.stopped && this.live.has(peer);
  }

  private resolve(peer: Peer, endpoint: HostPort): void {
    if (this.setLiteral(peer, endpoint)) return;
    const { host, port } = endpoint;
    this.lookup(host, this.sock!.v6 ? 0 : 4).then(
      (address) => {
        const ip = parseIp(address);
        if (!this.configured(peer) || !ip) return;
        this.peers.setEndpoint(peer, encodeEndpoint(ip, port));
        this.onEndpoint(peer);
        this.log.info({ peer: peer.name, host, endpoint: formatEndpoint(peer.endpoint!) }, "peer endpoint resolved");
        this.updateFilter();
      },
      (err: Error) => {
        // A peer removed or rebuilt by a reload since: its name is no longer ours to chase.
        if (!this.configured(peer)) return;
        this.log.warn({ peer: peer.name, host, err: err.message }, `peer endpoint did not resolve; retrying in ${this.retryMs / 1000}s`);
        const t = setTimeout(() => {
          this.retries.delete(peer);
          if (this.configured(peer)) this.resolve(peer, endpoint);
        }, this.retryMs);
        t.unref();
        this.retries.set(peer, t);
      },
    );
  }

  /**
   * Rebuilds the socket's peer filter if the set of known endpoints changed. A peer whose name
   * has not resolved yet is not admitted (udptun learns no endpoint from incoming traffic, so
   * nothing from it could be accepted anyway); no known endpoint at all admits nothing.
   * If the kernel refuses the program (too many peers for BPF_MAXINSNS, memory), the filter
   * is removed rather than left stale: every datagram reaches udptun, which still drops
   * strangers as unknown_peer, only no longer in the kernel.
   */
  private updateFilter(): void {
    if (!this.filter || !this.sock) return;
    const known = this.known();
    const key = [...known.keys()].sort().join(" ");
    if (key === this.filtered) return;
    this.filtered = key;
    this.install(this.sock, known, true);
  }

  /** The endpoints known now, by their text. */
  private known(): Map<string, Uint8Array> {
    const known = new Map<string, Uint8Array>();
    for (const p of this.peers.peers) if (p.endpoint) known.set(formatEndpoint(p.endpoint), p.endpoint);
    return known;
  }

  private install(sock: UdpSocket, known: Map<string, Uint8Array>, log: boolean): void {
    try {
      const instructions = setPeerFilter(sock, [...known.values()], this.mode);
      const unresolved = this.peers.peers.filter((p) => !p.endpoint).map((p) => p.name);
      if (log) this.log.info({ endpoints: known.size, unresolved, instructions }, `peer filter admits ${known.size} endpoint(s)`);
    } catch (err) {
      clearPeerFilter(sock);
      const e = err as Error & { code?: string };
      this.log.warn({ endpoints: known.size, code: e.code, err: e.message },
        "peer filter not attached; strangers now reach udptun and are dropped there (unknown_peer)");
    }
  }
}
