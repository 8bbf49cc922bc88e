// A forwarder's counters at one moment, as plain data: what a scrape observes, what a worker
// thread posts to the main thread, and what the "stopped" log line sums up (summary.ts).
// readForwarder is the one place that reads the forwarder's fields for them.
import type { Forwarder } from "../tunnel/forwarder.ts";

/** The offloads udptun.offload.active reports, by label. */
export const OFFLOADS = ["udp_gso", "udp_gro", "tun", "coalesce"] as const;

export interface PoolCounters {
  name: string;
  bufferSize: number;
  allocated: number;
  inUse: number;
  capacity: number;
  exhausted: number;
}

export interface PathCounters {
  packets: number;
  bytes: number;
  /** Indexed by drop code (src/tunnel/drops.ts). */
  drops: number[];
}

export interface PeerCounters {
  name: string;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  rxKeepalives: number;
  /** WireGuard peers only: the protocol's own counters. */
  wireguard?: WireGuardPeerCounters;
}

export interface WireGuardPeerCounters {
  /** Unix seconds of the latest completed handshake; 0 = none yet. */
  latestHandshake: number;
  handshakesInitiated: number;
  handshakesCompleted: number;
  handshakesFailed: number;
  cookiesSent: number;
  cookiesReceived: number;
  /** UDP payload bytes sent to and received (authenticated) from the peer: `wg show`'s transfer. */
  transferTx: number;
  transferRx: number;
}

export interface ForwarderSnapshot {
  /** The `worker` label ("0".."N-1"); absent with a single forwarder on the main thread. */
  worker?: string;
  pools: { device: PoolCounters; network: PoolCounters };
  device: PathCounters;
  network: PathCounters;
  peers: PeerCounters[];
  socketFull: number;
  /** The socket's kernel drops: strangers refused by the peer filter, receive buffer overflows. */
  receiveDrops: number;
  pausedDeviceSeconds: number;
  pausedNetworkSeconds: number;
  tunReads: number;
  tunWrites: number;
  datagramsReceived: number;
  datagramsSent: number;
  /** Offloads in use, by label. */
  offloads: Record<(typeof OFFLOADS)[number], boolean>;
  /** A worker thread's own V8 heap in use and GC count, added to the main thread's. */
  heapUsed?: number;
  gcRuns?: number;
}

type Pool = Forwarder["devicePool"];
const poolCounters = (p: Pool): PoolCounters => ({
  name: p.name, bufferSize: p.bufferSize, allocated: p.allocated, inUse: p.inUse, capacity: p.capacity, exhausted: p.exhausted,
});

/** Reads a forwarder's counters (on a scrape or at stop: never on the data path). */
export function readForwarder(fwd: Forwarder, worker?: string): ForwarderSnapshot {
  const { devicePath: device, networkPath: network } = fwd;
  return {
    worker,
    pools: { device: poolCounters(fwd.devicePool), network: poolCounters(fwd.networkPool) },
    device: { packets: device.packets, bytes: device.bytes, drops: Array.from(device.drops) },
    network: { packets: network.packets, bytes: network.bytes, drops: Array.from(network.drops) },
    peers: fwd.peers.peers.map((p) => {
      const wg = fwd.wg?.countersOf(p);
      return {
        name: p.name, txPackets: p.txPackets, txBytes: p.txBytes, rxPackets: p.rxPackets, rxBytes: p.rxBytes, rxKeepalives: p.rxKeepalives,
        ...(wg ? { wireguard: { ...wg, latestHandshake: wg.lastHandshakeTime / 1000, transferTx: p.wireTxBytes, transferRx: p.wireRxBytes } } : {}),
      };
    }),
    socketFull: fwd.tunWatch.pauses.socketFull,
    receiveDrops: fwd.receiveDrops,
    pausedDeviceSeconds: fwd.tunWatch.pausedSeconds,
    pausedNetworkSeconds: fwd.sockWatch.pausedSeconds,
    tunReads: device.reads,
    tunWrites: network.writes,
    datagramsReceived: network.datagrams,
    datagramsSent: device.sends,
    offloads: {
      udp_gso: fwd.deviceOffloads.gso,
      udp_gro: fwd.networkOffloads.gro,
      tun: fwd.deviceOffloads.tun,
      coalesce: fwd.networkOffloads.join !== 0,
    },
  };
}
