// Why a packet was dropped: one counter per reason and path, exported as
// udptun_drops_total{path, reason}. Codes index a Float64Array on the hot path.
export const Drop = {
  /** Network path: the datagram's source is not a configured peer endpoint. */
  UnknownPeer: 0,
  /** Network path: shorter than our header. */
  Truncated: 1,
  /** Larger than the device MTU allows (plus our header, on the network path). */
  Oversize: 2,
  /** Network path: header version is not ours. */
  BadVersion: 3,
  /** Network path: a message type we do not handle. */
  BadType: 4,
  /** Network path: reserved header bytes not zero, or a keepalive with a payload. */
  BadHeader: 5,
  /** IP version, header length or total length do not hold together. */
  MalformedIp: 6,
  /** Network path: the inner IPv4 header checksum is wrong. */
  BadChecksum: 7,
  /** Network path: the inner source address is outside the sending peer's allowed IPs. */
  SourceNotAllowed: 8,
  /** Network path: the kernel refused the TUN write. */
  TunWriteError: 9,
  /** Device path: no peer's allowed IPs cover the destination. */
  NoRoute: 10,
  /** Device path: the peer's endpoint name has not resolved (yet). */
  NoEndpoint: 11,
  /** Device path: the kernel refused the UDP send (unreachable network, and so on). */
  SendError: 12,
  /** Device path: still queued for sending when udptun stopped. */
  Shutdown: 13,
} as const;

export type DropReason = (typeof Drop)[keyof typeof Drop];

/** Metric label for each code, in code order. */
export const DROP_LABELS = [
  "unknown_peer", "truncated", "oversize", "bad_version", "bad_type", "bad_header", "malformed_ip",
  "bad_checksum", "source_not_allowed", "tun_write_error", "no_route", "no_endpoint", "send_error", "shutdown",
] as const;

/** The reasons each path can produce: only these are exported, so no series is always zero. */
export const DEVICE_PATH_DROPS: readonly number[] = [
  Drop.MalformedIp, Drop.NoRoute, Drop.NoEndpoint, Drop.SendError, Drop.Shutdown,
];
export const NETWORK_PATH_DROPS: readonly number[] = [
  Drop.UnknownPeer, Drop.Truncated, Drop.Oversize, Drop.BadVersion, Drop.BadType, Drop.BadHeader,
  Drop.MalformedIp, Drop.BadChecksum, Drop.SourceNotAllowed, Drop.TunWriteError,
];

export function newDropCounters(): Float64Array {
  return new Float64Array(DROP_LABELS.length);
}
