// Wires one TUN device and one UDP socket to the two paths, over two pools, on Node's
// event loop. Readiness comes from the addon's uv_poll watches; each wakeup drains a fd
// in batches (device-path.ts, network-path.ts).
import { lookup } from "node:dns/promises";
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import { addon, JOIN_TCP, JOIN_UDP, READABLE, TUN_OFFLOAD_BITS, UDP_GRO, UDP_GSO, WRITABLE } from "../native/addon.ts";
import { PAUSE_POOL_EMPTY, PAUSE_SOCKET_FULL, Watch } from "./watch.ts";
import { closeTun, openTun } from "../native/tun.ts";
import type { TunDevice } from "../native/tun.ts";
import { clearPeerFilter, closeUdp, openUdp, ReceiveDrops, setPeerFilter } from "../native/udp.ts";
import type { UdpSocket } from "../native/udp.ts";
import { encodeEndpoint, formatEndpoint, formatPrefix, parseIp } from "../net/address.ts";
import { BufferPool } from "../pool/buffer-pool.ts";
import { bufferSizeFor, HEADROOM, SUPER_BUFFER_SIZE } from "./constants.ts";
import { DevicePath } from "./device-path.ts";
import type { DeviceOffloads } from "./device-path.ts";
import { DROP_LABELS } from "./drops.ts";
import { NetworkPath } from "./network-path.ts";
import type { NetworkOffloads } from "./network-path.ts";
import { Peer, PeerTable } from "./peers.ts";

export interface ForwarderOptions {
  config: Config;
  log: Logger;
  /** Told each time a pool creates buffers (feeds the allocated-buffers counter). */
  onAllocate?: (pool: BufferPool, delta: number) => void;
  /** Something broke that the forwarder cannot recover from (the device vanished...). */
  onFatal: (err: Error) => void;
  /** Pool misuse checks (tests). */
  checkedPools?: boolean;
  /** A TUN queue and a socket opened already (a worker thread's, opened by the main thread),
   * and the fd the network path writes the device through (a detached queue: see tun.ts);
   * the forwarder owns them from then on and closes them on stop. Opens its own if absent. */
  fds?: { tun: TunDevice; tunWriteFd: number; sock: UdpSocket };
}

const RESOLVE_RETRY_MS = 5000;
/** The socket's kernel drop count is 32 bits: read it at least this often so a wrap is never
 * missed between scrapes (2^32 drops take over 7 minutes even at 10 million a second). */
const DROPS_READ_MS = 60_000;

/** The start-up log line's fields: each offload on, or off and why. */
function offloadSummary(want: Config["offloads"], tun: TunDevice, dev: DeviceOffloads, net: NetworkOffloads): Record<string, string> {
  const state = (asked: boolean, on: boolean) => (on ? "on" : asked ? "off (kernel refused)" : "off (config)");
  const tunBits = Object.entries(TUN_OFFLOAD_BITS).filter(([, bit]) => tun.offload & bit).map(([name]) => name);
  return {
    udpGso: state(want.udpGso, dev.gso),
    udpGro: state(want.udpGro, net.gro),
    tun: tun.vnet ? `on (${tunBits.join(" ") || "virtio header only"})` : state(want.tun, false),
    coalesce: net.join ? `on (${net.join & JOIN_UDP ? "tcp udp" : "tcp"})` : state(want.coalesce && want.tun, false),
  };
}

/** JSON.stringify helper: byte arrays (addresses) compare by content. */
const prefixReplacer = (_k: string, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v);

export class Forwarder {
  readonly devicePool: BufferPool;
  readonly networkPool: BufferPool;
  peers: PeerTable;
  private config: Config;
  readonly tun: TunDevice;
  /** Where the network path writes the device, when not tun.fd (workers: a detached queue). */
  private readonly tunWriteFd: number = -1;
  readonly sock: UdpSocket;
  readonly device: DevicePath;
  readonly network: NetworkPath;
  /** Offloads in use; the device path turns GSO off if the kernel refuses it mid-run. */
  readonly deviceOffloads: DeviceOffloads;
  readonly networkOffloads: NetworkOffloads;

  /** The TUN fd's watch (reads pause when the socket is full or the device pool is empty)
   * and the socket's (reads pause when the network pool is empty; writability on demand). */
  readonly tunWatch: Watch;
  readonly sockWatch: Watch;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly drops: ReceiveDrops;
  private readonly dropsTimer: NodeJS.Timeout;
  /** The endpoints the peer filter was last built for (sorted text), to rebuild only on change. */
  private filtered: string | null = null;
  private stopped = false;
  private readonly log: Logger;
  private readonly onFatal: (err: Error) => void;

  /** Opens the socket, then the device (so a taken port leaves no device behind), and starts. */
  constructor(opts: ForwarderOptions) {
    const { config, log } = opts;
    this.config = config;
    this.log = log;
    this.onFatal = opts.onFatal;
    this.peers = new PeerTable(config.peers.map((p) => new Peer(p.name, p.allowedIps)));
    // IP literals take effect now, so the socket's filter admits them from its first moments;
    // names are looked up once the forwarder is complete (their answers touch the socket).
    const names = config.peers.flatMap((pc, i) =>
      !pc.endpoint || this.setLiteralEndpoint(this.peers.peers[i], pc.endpoint.host, pc.endpoint.port) ? [] : [{ peer: this.peers.peers[i], ...pc.endpoint }]);

    const want = config.offloads;
    let tun: TunDevice;
    if (opts.fds) {
      // A worker: the main thread opened this socket (one per worker); each filters its own.
      ({ tun, sock: this.sock } = opts.fds);
      this.tunWriteFd = opts.fds.tunWriteFd;
      this.startPeerFilter();
    } else {
      const { ip, port } = config.listen;
      this.sock = openUdp(ip, port, config.socket.receiveBuffer, config.socket.sendBuffer);
      try {
        this.startPeerFilter();
        tun = openTun(config.device, want.tun);
      } catch (err) {
        closeUdp(this.sock);
        throw err;
      }
    }
    this.tun = tun;
    this.drops = new ReceiveDrops(this.sock);
    this.dropsTimer = setInterval(() => this.drops.read(), DROPS_READ_MS).unref();
    // Each offload is on where config asks and the kernel accepts; the rest fall back.
    const udp = addon.udpOffload(this.sock.fd, (want.udpGso ? UDP_GSO : 0) | (want.udpGro ? UDP_GRO : 0));
    this.deviceOffloads = { tun: tun.vnet, gso: (udp & UDP_GSO) !== 0 };
    const uso = (tun.offload & (TUN_OFFLOAD_BITS.uso4 | TUN_OFFLOAD_BITS.uso6)) !== 0;
    this.networkOffloads = {
      gro: (udp & UDP_GRO) !== 0,
      tun: tun.vnet,
      join: tun.vnet && want.coalesce ? JOIN_TCP | (uso && want.coalesceUdp ? JOIN_UDP : 0) : 0,
    };
    log.info(offloadSummary(want, tun, this.deviceOffloads, this.networkOffloads), "offloads");

    // Pools sized for what each path reads: an MTU-sized packet, or with offloads a whole
    // super-packet (TUN) or GRO datagram (UDP); those pools carry their own names.
    const pool = (name: string, size: number, capacity: number): BufferPool => {
      const p: BufferPool = new BufferPool({
        name, bufferSize: size, capacity, headroom: HEADROOM, checked: opts.checkedPools,
        onAllocate: (d) => opts.onAllocate?.(p, d),
      });
      return p;
    };
    const mtuSize = bufferSizeFor(config.device.mtu);
    this.devicePool = tun.vnet
      ? pool("device_gso", SUPER_BUFFER_SIZE, config.pools.deviceCapacity)
      : pool("device", mtuSize, config.pools.deviceCapacity);
    this.networkPool = this.networkOffloads.gro
      ? pool("network_gro", SUPER_BUFFER_SIZE, config.pools.networkCapacity)
      : pool("network", mtuSize, config.pools.networkCapacity);

    // Device-path drops are routine (multicast with no route); network-path ones mean a
    // misconfigured or hostile sender, worth a warning.
    const firstDrop = (path: string, level: "info" | "warn") => (reason: number, detail: string) =>
      log[level]({ path, reason: DROP_LABELS[reason], detail }, "first drop for this reason; further ones are only counted");
    this.device = new DevicePath(this.tun, this.sock, this.devicePool, this.peers, {
      socketFull: (full) => {
        if (full) this.tunWatch.pause(PAUSE_SOCKET_FULL);
        else this.tunWatch.resume(PAUSE_SOCKET_FULL);
        this.sockWatch.wantWritable(full);
      },
      poolEmpty: () => this.pauseUntilAvailable(this.tunWatch, this.devicePool),
      firstDrop: firstDrop("device_to_network", "info"),
      gsoRefused: (errno) => log.warn({ errno }, "the kernel refused UDP GSO on a send; sending datagrams one by one from now on"),
    }, addon, this.deviceOffloads);
    const writeTun = this.tunWriteFd < 0 ? this.tun : { ...this.tun, fd: this.tunWriteFd };
    this.network = new NetworkPath(this.sock, writeTun, this.networkPool, this.peers, {
      poolEmpty: () => this.pauseUntilAvailable(this.sockWatch, this.networkPool),
      firstDrop: firstDrop("network_to_device", "warn"),
    }, addon, this.networkOffloads);

    for (const n of names) this.resolve(n.peer, n.host, n.port);
    this.tunWatch = new Watch(this.tun.fd, (status) => this.onTunEvents(status));
    this.sockWatch = new Watch(this.sock.fd, (status, events) => this.onSocketEvents(status, events));
  }

  /**
   * Applies a new config's peers (SIGHUP). Unchanged peers keep their objects, counters
   * and resolved endpoints, so their flows never notice; changed and new ones are rebuilt;
   * removed ones stop being routed. Other sections need a restart and are reported.
   */
  reload(next: Config): { kept: string[]; added: string[]; changed: string[]; removed: string[]; needsRestart: string[] } {
    const key = (p: Config["peers"][number]) =>
      JSON.stringify([p.endpoint?.host, p.endpoint?.port, p.allowedIps.map(formatPrefix)]);
    const before = new Map(this.config.peers.map((p, i) => [p.name, { spec: key(p), peer: this.peers.peers[i] }]));
    const kept: string[] = [], added: string[] = [], changed: string[] = [];
    const fresh: { peer: Peer; host: string; port: number }[] = [];
    const peers = next.peers.map((pc) => {
      const old = before.get(pc.name);
      if (old && old.spec === key(pc)) {
        kept.push(pc.name);
        return old.peer;
      }
      (old ? changed : added).push(pc.name);
      const peer = new Peer(pc.name, pc.allowedIps);
      if (pc.endpoint) fresh.push({ peer, host: pc.endpoint.host, port: pc.endpoint.port });
      return peer;
    });
    const removed = [...before.keys()].filter((n) => !next.peers.some((p) => p.name === n));
    const table = new PeerTable(peers);
    this.peers = this.device.peers = this.network.peers = table;
    for (const f of fresh) this.resolve(f.peer, f.host, f.port);
    this.updatePeerFilter(); // removed peers out, new literal endpoints in
    const needsRestart = (["device", "listen", "metrics", "socket", "pools", "offloads", "workers"] as const)
      .filter((k) => JSON.stringify(this.config[k], prefixReplacer) !== JSON.stringify(next[k], prefixReplacer));
    this.config = { ...next, ...Object.fromEntries(needsRestart.map((k) => [k, this.config[k]])) } as Config;
    return { kept, added, changed, removed, needsRestart };
  }

  get localEndpoint(): string {
    return formatEndpoint(this.sock.endpoint);
  }

  /** Datagrams the kernel dropped before udptun read them: strangers refused by the peer
   * filter, and datagrams that found the receive buffer full. */
  get receiveDrops(): number {
    return this.stopped ? this.drops.total : this.drops.read();
  }

  /** Stops reading, drops what is still queued, returns every buffer and closes the fds. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    clearInterval(this.dropsTimer);
    this.drops.read(); // the last count, before the fd goes
    this.tunWatch.stop();
    this.sockWatch.stop();
    this.device.discard();
    closeTun(this.tun);
    if (this.tunWriteFd >= 0) addon.close(this.tunWriteFd);
    closeUdp(this.sock);
  }

  // Readiness callbacks. No closure per wakeup: the try/catch is written out in each.
  private onTunEvents(status: number): void {
    if (this.stopped) return;
    try {
      if (status < 0) {
        throw new Error(addon.tunAttached(this.tun.fd)
          ? `TUN device ${this.tun.name}: poll error`
          : `TUN device ${this.tun.name} was deleted underneath udptun; exiting (a supervisor restart recreates it)`);
      }
      this.device.onReadable();
    } catch (err) {
      this.onFatal(err as Error);
    }
  }

  private onSocketEvents(status: number, events: number): void {
    if (this.stopped) return;
    try {
      if (status < 0) throw new Error("UDP socket: poll error");
      if (events & WRITABLE) this.device.onWritable();
      if (events & READABLE) this.network.onReadable();
    } catch (err) {
      this.onFatal(err as Error);
    }
  }

  /** A reader found its pool empty: stop watching its fd until a buffer comes back, rather
   * than being woken again and again by a fd that stays readable. */
  private pauseUntilAvailable(watch: Watch, pool: BufferPool): void {
    watch.pause(PAUSE_POOL_EMPTY);
    pool.whenAvailable(() => watch.resume(PAUSE_POOL_EMPTY));
  }

  /** The filter as config asks, on a socket just opened. */
  private startPeerFilter(): void {
    if (this.config.socket.peerFilter) this.updatePeerFilter();
    else this.log.info("peer filter off (socket.peerFilter is false): strangers reach udptun and are dropped there (unknown_peer)");
  }

  /** Sets the peer's endpoint if host is an IP literal; false if it is a name. */
  private setLiteralEndpoint(peer: Peer, host: string, port: number): boolean {
    const literal = parseIp(host);
    if (literal) this.peers.setEndpoint(peer, encodeEndpoint(literal, port));
    return literal !== null;
  }

  /**
   * Rebuilds the socket's peer filter if the set of known endpoints changed. A peer whose name
   * has not resolved yet is not admitted (udptun learns no endpoint from incoming traffic, so
   * nothing from it could be accepted anyway); no known endpoint at all admits nothing.
   * If the kernel refuses the program (too many peers for BPF_MAXINSNS, memory), the filter
   * is removed rather than left stale: every datagram reaches udptun, which still drops
   * strangers as unknown_peer, only no longer in the kernel.
   */
  private updatePeerFilter(): void {
    if (!this.config.socket.peerFilter) return;
    const known = new Map<string, Uint8Array>();
    for (const p of this.peers.peers) if (p.endpoint) known.set(formatEndpoint(p.endpoint), p.endpoint);
    const key = [...known.keys()].sort().join(" ");
    if (key === this.filtered) return;
    this.filtered = key;
    const unresolved = this.peers.peers.filter((p) => !p.endpoint).map((p) => p.name);
    try {
      const instructions = setPeerFilter(this.sock, [...known.values()]);
      this.log.info({ endpoints: known.size, unresolved, instructions }, `peer filter admits ${known.size} endpoint(s)`);
    } catch (err) {
      clearPeerFilter(this.sock);
      const e = err as Error & { code?: string };
      this.log.warn({ endpoints: known.size, code: e.code, err: e.message },
        "peer filter not attached; strangers now reach udptun and are dropped there (unknown_peer)");
    }
  }

  /** IP literals take effect at once; names resolve in the background, retried until they do. */
  private resolve(peer: Peer, host: string, port: number): void {
    if (this.setLiteralEndpoint(peer, host, port)) return;
    const family = this.sock.v6 ? 0 : 4;
    lookup(host, { family }).then(
      (res) => {
        const ip = parseIp(res.address);
        if (this.stopped || !ip) return;
        this.peers.setEndpoint(peer, encodeEndpoint(ip, port));
        this.log.info({ peer: peer.name, host, endpoint: formatEndpoint(peer.endpoint!) }, "peer endpoint resolved");
        this.updatePeerFilter();
      },
      (err: Error) => {
        if (this.stopped) return;
        this.log.warn({ peer: peer.name, host, err: err.message }, `peer endpoint did not resolve; retrying in ${RESOLVE_RETRY_MS / 1000}s`);
        const t = setTimeout(() => {
          this.timers.delete(t);
          this.resolve(peer, host, port);
        }, RESOLVE_RETRY_MS);
        t.unref();
        this.timers.add(t);
      },
    );
  }
}
