// The validated, frozen configuration the rest of udptun receives. Field names follow the
// JSON file; see config/*.json for examples and README.md for the reference.
import type { HostPort, IpAddress, Prefix } from "../net/address.ts";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface PeerConfig {
  readonly name: string;
  /** As written; the host may be a DNS name, resolved at start. */
  readonly endpoint: HostPort;
  readonly allowedIps: readonly Prefix[];
}

export interface Config {
  readonly device: {
    readonly name: string;
    readonly addresses: readonly Prefix[];
    readonly mtu: number;
  };
  readonly listen: HostPort & { readonly ip: IpAddress };
  readonly peers: readonly PeerConfig[];
  readonly metrics: HostPort;
  readonly log: { readonly level: LogLevel };
  readonly socket: {
    readonly receiveBuffer: number;
    readonly sendBuffer: number;
    /** Admit only the peers' endpoints, in the kernel (a BPF filter on the socket). */
    readonly peerFilter: boolean;
  };
  readonly pools: { readonly deviceCapacity: number; readonly networkCapacity: number };
}

export const DEFAULTS = {
  mtu: 1420,
  listen: "0.0.0.0:51820",
  metricsListen: "127.0.0.1:9464",
  logLevel: "info" as LogLevel,
  // 4 MiB each way: a burst of a few thousand full-size datagrams; FORCE lifts rmem_max.
  receiveBuffer: 4 << 20,
  sendBuffer: 4 << 20,
  // On: a stranger's datagrams never take room in the receive buffer the peers need.
  peerFilter: true,
  // Enough for every batch in flight at once many times over; see src/tunnel/constants.ts.
  poolCapacity: 1024,
};
