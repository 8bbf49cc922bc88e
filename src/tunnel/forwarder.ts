// One forwarder: a TUN device and a UDP socket joined by a transport, on Node's event loop.
// It composes parts that each hold one concern, in the order they are needed:
//   endpoints.ts   the peers' endpoints (names resolved, retried) and the socket's peer filter
//   fds.ts         the socket, then the device (or both handed over by the main thread)
//   offloads.ts    what the config asks and the kernel takes
//   pools.ts       the two pools, sized for what the offloads let each path read
//   plain.ts       a transport: the two paths and its keepalives (transport.ts: the contract)
//   wireguard.ts   the other: the paths sealing and opening, and the WireGuard protocol
//   wiring.ts      the readiness watches that drive the paths, and back-pressure
//   reload.ts      what a new config's peers change (SIGHUP)
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import type { TunDevice } from "../native/tun.ts";
import { addon, FILTER_PLAIN, FILTER_WIREGUARD, UDP_GRO, UDP_GSO } from "../native/addon.ts";
import { closeUdp, openUdp, ReceiveDrops } from "../native/udp.ts";
import type { UdpSocket } from "../native/udp.ts";
import { formatEndpoint } from "../net/address.ts";
import type { BufferPool } from "../pool/buffer-pool.ts";
import type { DeviceOffloads } from "./device-path.ts";
import { Endpoints } from "./endpoints.ts";
import { closeFds, openFds } from "./fds.ts";
import type { ForwarderFds } from "./fds.ts";
import type { NetworkOffloads } from "./network-path.ts";
import { negotiateOffloads, offloadSummary } from "./offloads.ts";
import { Peer, PeerTable } from "./peers.ts";
import { PlainTransport } from "./plain.ts";
import { WireGuardTransport } from "./wireguard.ts";
import { createPools } from "./pools.ts";
import type { Pools } from "./pools.ts";
import { planReload } from "./reload.ts";
import type { ReloadResult } from "./reload.ts";
import type { DeviceStage, NetworkStage, PeerSettings, Transport } from "./transport.ts";
import type { Watch } from "./watch.ts";
import { Wiring } from "./wiring.ts";

export interface ForwarderOptions {
  config: Config;
  log: Logger;
  /** Something broke that the forwarder cannot recover from (the device vanished...). */
  onFatal: (err: Error) => void;
  /** Pool misuse checks (tests). */
  checkedPools?: boolean;
  /** A TUN queue and a socket opened already (a worker thread's, opened by the main thread),
   * and the fd the network path writes the device through (a detached queue: see tun.ts);
   * the forwarder owns them from then on and closes them on stop. Opens its own if absent. */
  fds?: ForwarderFds;
  /** Send the peers' persistent keepalives (default true; with workers, worker 0 alone does). */
  keepalives?: boolean;
}

/** The socket's kernel drop count is 32 bits: read it at least this often so a wrap is never
 * missed between scrapes (2^32 drops take over 7 minutes even at 10 million a second). */
const DROPS_READ_MS = 60_000;

export class Forwarder {
  readonly fds: ForwarderFds;
  private readonly pools: Pools;
  private readonly endpoints: Endpoints;
  private readonly transport: Transport;
  /** The transport when it is WireGuard (its protocol state, for metrics). */
  readonly wg: WireGuardTransport | null = null;
  private readonly wiring: Wiring;
  /** Offloads in use; the device path turns GSO off if the kernel refuses it mid-run. */
  readonly deviceOffloads: DeviceOffloads;
  readonly networkOffloads: NetworkOffloads;
  private table: PeerTable;
  private config: Config;
  private readonly drops: ReceiveDrops;
  private readonly dropsTimer: NodeJS.Timeout;
  private stopped = false;

  constructor(opts: ForwarderOptions) {
    const { config, log } = opts;
    this.config = config;
    this.table = new PeerTable(config.peers.map((p) => new Peer(p.name, p.allowedIps)));
    // IP literals take effect now, so the socket's filter admits them from its first moments;
    // names are looked up once the forwarder is complete (their answers touch the socket).
    const wireguard = config.transport === "wireguard";
    this.endpoints = new Endpoints(this.table, config.peers.map((p) => p.endpoint), {
      log, peerFilter: config.socket.peerFilter, filterMode: wireguard ? FILTER_WIREGUARD : FILTER_PLAIN,
      onEndpoint: (peer) => this.wg?.endpointKnown(peer),
    });
    this.fds = openFds(config, opts.fds, (sock) => this.endpoints.attach(sock));
    this.drops = new ReceiveDrops(this.fds.sock);
    this.dropsTimer = setInterval(() => this.drops.read(), DROPS_READ_MS).unref();

    const offloads = negotiateOffloads(config.offloads, this.fds.sock, this.fds.tun);
    this.deviceOffloads = offloads.device;
    this.networkOffloads = offloads.network;
    log.info(offloadSummary(config.offloads, this.fds.tun, offloads), "offloads");
    this.pools = createPools(config, offloads, { checked: opts.checkedPools });

    this.wiring = new Wiring(this.fds, this.pools, log, opts.onFatal);
    const parts = { fds: this.fds, pools: this.pools, offloads, peers: this.table, log };
    if (config.transport === "wireguard") {
      this.wg = new WireGuardTransport(parts, this.wiring.hooks, config, { moved: (peer, ep) => this.endpoints.moved(peer, ep) });
      this.transport = this.wg;
    } else {
      log.warn("transport plain: datagrams are neither authenticated nor encrypted; anyone who can forge a peer's address writes into the device");
      this.transport = new PlainTransport(parts, this.wiring.hooks, { keepalives: opts.keepalives ?? true });
    }
    this.transport.setPeers(this.table, config.peers);
    this.endpoints.start();
    this.wiring.start(this.transport);
  }

  get tun(): TunDevice {
    return this.fds.tun;
  }

  get sock(): UdpSocket {
    return this.fds.sock;
  }

  /** Replaced whole by a reload or a configuration change. */
  get peers(): PeerTable {
    return this.table;
  }

  get devicePool(): BufferPool {
    return this.pools.device;
  }

  get networkPool(): BufferPool {
    return this.pools.network;
  }

  get devicePath(): DeviceStage {
    return this.transport.devicePath;
  }

  get networkPath(): NetworkStage {
    return this.transport.networkPath;
  }

  /** The TUN fd's watch (reads pause when the socket is full or the device pool is empty). */
  get tunWatch(): Watch {
    return this.wiring.tunWatch;
  }

  /** The socket's watch (reads pause when the network pool is empty; writability on demand). */
  get sockWatch(): Watch {
    return this.wiring.sockWatch;
  }

  get localEndpoint(): string {
    return formatEndpoint(this.fds.sock.endpoint);
  }

  /** Datagrams the kernel dropped before udptun read them: strangers refused by the peer
   * filter, and datagrams that found the receive buffer full. */
  get receiveDrops(): number {
    return this.stopped ? this.drops.total : this.drops.read();
  }

  /**
   * Applies a new config's peers (SIGHUP). Peers keep their objects, counters, resolved
   * endpoints and sessions for as long as their name and public key stay, whatever else
   * changes; new ones are built; removed ones stop being routed. Other sections need a
   * restart and are reported.
   */
  reload(next: Config): ReloadResult {
    const plan = planReload(this.config, this.table.peers, next);
    for (const { peer, allowedIps } of plan.routes) peer.allowedIps = allowedIps;
    this.table = new PeerTable(plan.peers);
    this.transport.setPeers(this.table, next.peers);
    this.endpoints.replace(this.table, plan.fresh);
    this.config = plan.config;
    return plan.result;
  }

  /** The config in force (the running values of sections a reload could not change). */
  get runningConfig(): Config {
    return this.config;
  }

  /** The socket's SO_MARK, as the kernel reports it (0: none). */
  get fwmark(): number {
    return addon.udpMark(this.fds.sock.fd);
  }

  /** Marks the socket's datagrams (0: none); throws if the kernel refuses. */
  setFwmark(mark: number): void {
    addon.udpMark(this.fds.sock.fd, mark);
  }

  /**
   * A socket bound to `port` (0: any free one) on the listen address, ready to take the
   * current one's place (adopt()): the same buffers, UDP offloads, peer filter, and `fwmark`.
   * Throws (code EADDRINUSE: the port is taken) leaving everything as it was.
   */
  openSocket(port: number, fwmark: number): UdpSocket {
    const { ip } = this.config.listen;
    const sock = openUdp(ip, port, this.config.socket.receiveBuffer, this.config.socket.sendBuffer);
    try {
      const want = (this.deviceOffloads.gso ? UDP_GSO : 0) | (this.networkOffloads.gro ? UDP_GRO : 0);
      const got = addon.udpOffload(sock.fd, want);
      if (got !== want) throw Object.assign(new Error(`the new socket refused UDP offloads the running one has (asked ${want}, got ${got})`), { code: "EOFFLOAD" });
      if (fwmark !== 0) addon.udpMark(sock.fd, fwmark);
      this.endpoints.prepare(sock);
      return sock;
    } catch (err) {
      closeUdp(sock);
      throw err;
    }
  }

  /** Moves to a socket from openSocket(): between two batches the paths, the watch, the peer
   * filter and the drop count take it, and the old one is closed (what it still held is lost,
   * as a datagram on the wire can be). */
  adopt(sock: UdpSocket): void {
    const old = this.fds.sock;
    this.endpoints.moveTo(sock);
    this.drops.moveTo(sock);
    this.fds.sock = sock;
    this.transport.setSocket(sock);
    this.wiring.sockWatch.moveTo(sock.fd);
    closeUdp(old);
  }

  /** The configuration API's peers: the table in force (the peers' allowedIps already set),
   * table.peers[i] with settings[i], and the endpoints the change sets. The protocol keeps
   * each public key's session; the filter follows the endpoints. */
  setPeers(table: PeerTable, settings: readonly PeerSettings[], endpoints: readonly { peer: Peer; endpoint: Uint8Array }[]): void {
    this.table = table;
    this.transport.setPeers(table, settings);
    for (const { peer, endpoint } of endpoints) {
      table.setEndpoint(peer, endpoint);
      this.wg?.endpointKnown(peer);
    }
    this.endpoints.replace(table, []);
  }

  /** Stops reading, drops what is still queued, returns every buffer and closes the fds. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.endpoints.stop();
    this.transport.stop();
    clearInterval(this.dropsTimer);
    this.drops.read(); // the last count, before the fd goes
    this.wiring.stop();
    this.transport.devicePath.discard();
    closeFds(this.fds);
  }
}
