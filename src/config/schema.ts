// The validated, frozen configuration the rest of udptun receives. Field names follow the
// JSON file (a wg-quick file is translated into the same shape); see config/ for examples
// and README.md for the reference.
import type { HostPort, IpAddress, Prefix } from "../net/address.ts";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const TRANSPORTS = ["plain", "wireguard"] as const;
export type Transport = (typeof TRANSPORTS)[number];

interface PeerBase {
  readonly name: string;
  readonly allowedIps: readonly Prefix[];
  /** Seconds without anything sent to the peer before a keepalive goes (WireGuard's
   * PersistentKeepalive: keeps a NAT mapping open); 0 = off. */
  readonly persistentKeepalive: number;
}

export interface PlainPeerConfig extends PeerBase {
  /** As written; the host may be a DNS name, resolved at start. */
  readonly endpoint: HostPort;
  readonly publicKey: null;
  readonly presharedKey: null;
}

export interface WireGuardPeerConfig extends PeerBase {
  /** As PlainPeerConfig's; null: the peer is reached once it has contacted us. */
  readonly endpoint: HostPort | null;
  /** 32 bytes, unique among the peers and not our own. */
  readonly publicKey: Uint8Array;
  /** 32 bytes, or null (the protocol then mixes in 32 zero bytes). */
  readonly presharedKey: Uint8Array | null;
}

export type PeerConfig = PlainPeerConfig | WireGuardPeerConfig;

interface ConfigBase {
  readonly device: {
    readonly name: string;
    readonly addresses: readonly Prefix[];
    readonly mtu: number;
    /** The created device's txqueuelen: packets the kernel holds for our reads while the
     * forwarder is not running (the TUN default, 500, overflows under bursts; see bench/). */
    readonly txQueueLen: number;
  };
  readonly listen: HostPort & { readonly ip: IpAddress };
  readonly metrics: HostPort;
  readonly log: { readonly level: LogLevel };
  readonly socket: {
    readonly receiveBuffer: number;
    readonly sendBuffer: number;
    /** Admit only the peers' endpoints, in the kernel (a BPF filter on the socket). */
    readonly peerFilter: boolean;
  };
  readonly pools: { readonly deviceCapacity: number; readonly networkCapacity: number };
  /** Each is used only where the kernel accepts it (the log line at start says what is on). */
  readonly offloads: {
    /** UDP GSO (UDP_SEGMENT): one send carries up to 64 datagrams (45 full-size ones fit 64 KiB). */
    readonly udpGso: boolean;
    /** UDP GRO: one receive returns up to 64 of the peer's datagrams. */
    readonly udpGro: boolean;
    /** TUN virtio-net header with checksum, TSO and USO offload: super-packets both ways. */
    readonly tun: boolean;
    /** Join received TCP segments of a flow into one TUN write (needs `tun`). */
    readonly coalesce: boolean;
    /** Join received UDP datagrams of a flow into one USO write too (needs `coalesce`). Off by
     * default: the receiving socket then gets each run at once, and an application that reads
     * slowly (iperf3 at 2 Gbit/s) loses more to its receive buffer; measured in bench/. */
    readonly coalesceUdp: boolean;
  };
  /** Forwarding threads: 1 runs on the main thread as ever; N > 1 runs N worker threads,
   * each with its own TUN queue, SO_REUSEPORT socket and pools. */
  readonly workers: number;
  /** Problems that do not stop udptun (a key file others can read, a wg-quick key udptun does
   * not apply): logged at start and printed by `check`. Never holds a key. */
  readonly warnings: readonly string[];
}

export interface PlainConfig extends ConfigBase {
  readonly transport: "plain";
  readonly privateKey: null;
  readonly publicKey: null;
  readonly peers: readonly PlainPeerConfig[];
}

export interface WireGuardConfig extends ConfigBase {
  readonly transport: "wireguard";
  /** 32 bytes (never in logs, `check` output or metrics: summaries show publicKey only).
   * null only in a config built in code (the configuration API's daemon starts with no key,
   * as wireguard-go does: handshakes are refused silently until one is set); a file's
   * config always has one. */
  readonly privateKey: Uint8Array | null;
  /** Derived from privateKey (null with it). */
  readonly publicKey: Uint8Array | null;
  readonly peers: readonly WireGuardPeerConfig[];
}

/** Narrow on `transport`: a plain config never has keys; a WireGuard one has them, except as
 * built in code for the configuration API (see WireGuardConfig.privateKey). */
export type Config = PlainConfig | WireGuardConfig;

export const DEFAULTS = {
  // "plain" until the data path speaks WireGuard; then this one line becomes "wireguard".
  transport: "wireguard" as Transport,
  mtu: 1420,
  txQueueLen: 4000,
  listen: "0.0.0.0:51820",
  metricsListen: "127.0.0.1:9464",
  logLevel: "info" as LogLevel,
  // 4 MiB each way: a burst of a few thousand full-size datagrams; FORCE lifts rmem_max.
  receiveBuffer: 4 << 20,
  sendBuffer: 4 << 20,
  // On: a stranger's datagrams never take room in the receive buffer the peers need.
  peerFilter: true,
  // At most one batch (64) per path is ever out at once; see src/tunnel/constants.ts. The
  // slab is reserved at start, but only buffers in use are touched (64 KiB each with offloads).
  poolCapacity: 256,
  workers: 1,
};

/** Interface names as wg-quick takes them (also from a config file's name): Linux allows more,
 * but these survive shells and tools. */
export const INTERFACE_NAME = /^[A-Za-z0-9_=+.-]{1,15}$/;

/** Largest persistentKeepalive, in seconds: WireGuard's limit (a 16-bit field). */
export const MAX_PERSISTENT_KEEPALIVE = 65535;

/** Most worker threads: a TUN device takes up to 256 queues, but past the core count they only add contention. */
export const MAX_WORKERS = 16;
