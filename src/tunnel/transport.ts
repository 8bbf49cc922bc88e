// What a transport is to the forwarder. A transport owns the two paths (what a packet becomes
// between the device and the wire) and its own timers; the forwarder owns what every
// transport shares: the fds, the offloads, the pools, the peers and their endpoints, and the
// readiness watches that drive the paths (wiring.ts). The plain transport is plain.ts.
import type { Logger } from "pino";
import type { PacketIo } from "../native/addon.ts";
import type { UdpSocket } from "../native/udp.ts";
import type { DevicePathHooks } from "./device-path.ts";
import type { ForwarderFds } from "./fds.ts";
import type { NetworkPathHooks } from "./network-path.ts";
import type { Offloads } from "./offloads.ts";
import type { PeerTable } from "./peers.ts";
import type { Pools } from "./pools.ts";

/** TUN -> wire: what the watches drive, and the counters the metrics read. */
export interface DeviceStage {
  readonly packets: number;
  readonly bytes: number;
  /** Indexed by drop code (drops.ts). */
  readonly drops: Float64Array;
  /** Reads from the TUN device (a super-packet counts once). */
  readonly reads: number;
  /** Datagrams as the socket sent them (a GSO send counts once). */
  readonly sends: number;
  /** The TUN fd is readable. */
  onReadable(): void;
  /** The socket takes data again after it was full. */
  onWritable(): void;
  /** Releases whatever is still held (on stop), counted as dropped. */
  discard(): void;
}

/** Wire -> TUN. */
export interface NetworkStage {
  readonly packets: number;
  readonly bytes: number;
  readonly drops: Float64Array;
  /** Writes to the TUN device (a joined run counts once). */
  readonly writes: number;
  /** Datagrams as the socket returned them (a GRO datagram counts once). */
  readonly datagrams: number;
  /** The socket is readable. */
  onReadable(): void;
}

/** What a transport is built over. */
export interface TransportParts {
  readonly fds: ForwarderFds;
  readonly pools: Pools;
  readonly offloads: Offloads;
  readonly peers: PeerTable;
  readonly log: Logger;
  /** The addon unless given. */
  readonly io?: PacketIo;
}

/** What its paths tell the forwarder: back-pressure, first drops (wiring.ts). */
export interface TransportHooks {
  readonly device: DevicePathHooks;
  readonly network: NetworkPathHooks;
}

/** What a transport needs of a peer's configuration (a config file's peer is one; so is a
 * peer made through the configuration API). */
export interface PeerSettings {
  readonly name: string;
  /** WireGuard: 32 bytes, the peer's identity for as long as it is configured. */
  readonly publicKey: Uint8Array | null;
  readonly presharedKey: Uint8Array | null;
  /** Seconds, 0: off. */
  readonly persistentKeepalive: number;
}

export interface Transport {
  readonly devicePath: DeviceStage;
  readonly networkPath: NetworkStage;
  /** The peers in force (at start, after each reload or configuration change): table.peers[i]
   * is configs[i]. */
  setPeers(table: PeerTable, configs: readonly PeerSettings[]): void;
  /** The socket moved (another listen port): the paths and timers send and read through it. */
  setSocket(sock: UdpSocket): void;
  /** Stops its timers (the forwarder stops the watches and closes the fds). */
  stop(): void;
}
