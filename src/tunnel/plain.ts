// The plain transport: our 4-byte header in front of each inner packet (device-path.ts,
// network-path.ts), no encryption, and persistent keepalives (a bare type-2 header) on the
// schedule keepalive.ts decides.
import { addon } from "../native/addon.ts";
import type { PacketIo } from "../native/addon.ts";
import type { UdpSocket } from "../native/udp.ts";
import { ENDPOINT_BYTES } from "../net/address.ts";
import { BATCH } from "./constants.ts";
import { DevicePath } from "./device-path.ts";
import { writableDevice } from "./fds.ts";
import { HEADER_LEN, writeKeepalive } from "./header.ts";
import { KeepaliveSchedule } from "./keepalive.ts";
import { NetworkPath } from "./network-path.ts";
import type { Peer, PeerTable } from "./peers.ts";
import type { PeerSettings, Transport, TransportHooks, TransportParts } from "./transport.ts";

export interface PlainOptions {
  /** This forwarder sends the peers' keepalives (with workers, only worker 0 does). */
  keepalives: boolean;
}

export class PlainTransport implements Transport {
  readonly devicePath: DevicePath;
  readonly networkPath: NetworkPath;
  private readonly keepalives: boolean;
  private readonly schedule = new KeepaliveSchedule<Peer>();
  private timer: NodeJS.Timeout | null = null;
  private tickMs = 0;
  private sock: UdpSocket;
  private readonly io: PacketIo;
  // A keepalive send batch: every entry is the same 4 bytes, to a peer's endpoint each.
  private readonly message = new Uint8Array(HEADER_LEN);
  private readonly offs = new Int32Array(BATCH);
  private readonly lens = new Int32Array(BATCH).fill(HEADER_LEN);
  private readonly dests = new Uint8Array(BATCH * ENDPOINT_BYTES);
  private readonly status = new Int32Array(BATCH);
  private readonly batch: Peer[] = [];

  constructor(parts: TransportParts, hooks: TransportHooks, opts: PlainOptions) {
    const { fds, pools, offloads, peers } = parts;
    this.io = parts.io ?? addon;
    this.sock = fds.sock;
    this.keepalives = opts.keepalives;
    this.devicePath = new DevicePath(fds.tun, fds.sock, pools.device, peers, hooks.device, this.io, offloads.device);
    this.networkPath = new NetworkPath(fds.sock, writableDevice(fds), pools.network, peers, hooks.network, this.io, offloads.network);
    writeKeepalive(this.message, 0);
  }

  setSocket(sock: UdpSocket): void {
    this.sock = this.devicePath.sock = this.networkPath.sock = sock;
  }

  setPeers(table: PeerTable, configs: readonly PeerSettings[]): void {
    this.devicePath.peers = this.networkPath.peers = table;
    if (!this.keepalives) return;
    this.schedule.set(table.peers.map((peer, i) => ({ peer, seconds: configs[i].persistentKeepalive })));
    const tick = this.schedule.tickMs;
    if (tick === this.tickMs) return;
    if (this.timer) clearInterval(this.timer);
    this.tickMs = tick;
    this.timer = tick > 0 ? setInterval(() => this.sendKeepalives(performance.now()), tick).unref() : null;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Sends the keepalives due at now; one the socket cannot take now goes at the next tick. */
  private sendKeepalives(now: number): void {
    const batch = this.batch;
    for (const peer of this.schedule.due(now)) {
      if (peer.endpoint === null) continue; // its name has not resolved: due once it does
      this.dests.set(peer.endpoint, batch.length * ENDPOINT_BYTES);
      batch.push(peer);
      if (batch.length === BATCH && !this.flush(now)) break;
    }
    if (batch.length > 0) this.flush(now);
    batch.length = 0;
  }

  /** Sends the batch; false if the socket was full. */
  private flush(now: number): boolean {
    const batch = this.batch;
    const count = batch.length;
    const done = this.io.udpSend(this.sock.fd, this.sock.v6, this.message, this.offs, this.lens, count, this.dests, this.status);
    for (let i = 0; i < done; i++) {
      // A send that failed alone (no route to the peer) waits a whole interval too, as a lost one would.
      this.schedule.sent(batch[i], now);
      if (this.status[i] === 0) this.devicePath.sends++;
    }
    batch.length = 0;
    return done === count;
  }
}
