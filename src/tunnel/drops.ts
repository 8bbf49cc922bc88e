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
  // WireGuard only.
  /** Device path: the peer had no session: its staging queue was full, the handshake gave
   * up, or its keypair ran out between routing and sealing. */
  NoSession: 14,
  /** Network path: a data message for a receiver index we do not hold (never ours, or retired). */
  UnknownIndex: 15,
  /** Network path: a data message whose counter the replay window has seen (or left behind). */
  Replayed: 16,
  /** Network path: a data message, or a handshake message's encrypted field, did not authenticate. */
  DecryptionFailed: 17,
  /** Network path: a data message on a keypair past REJECT_AFTER_TIME or REJECT_AFTER_MESSAGES. */
  ExpiredKeypair: 18,
  /** Network path: a handshake message of the wrong length for its type. */
  BadSize: 19,
  /** Network path: a handshake message whose MAC1 (or a cookie reply that) does not verify: silence. */
  BadMac: 20,
  /** Network path: under load, a handshake message without a valid MAC2 (answered with a cookie
   * reply), or no room in the keypair table. */
  UnderLoad: 21,
  /** Network path: under load, over its source IP's handshake rate. */
  RateLimited: 22,
  /** Network path: an initiation replayed (timestamp not newer) or too soon after the last. */
  ReplayedHandshake: 23,
  /** Network path: a handshake message dropped unread, past the handshakes handled per second. */
  HandshakeOverflow: 24,
} as const;

export type DropReason = (typeof Drop)[keyof typeof Drop];

/** Metric label for each code, in code order. */
export const DROP_LABELS = [
  "unknown_peer", "truncated", "oversize", "bad_version", "bad_type", "bad_header", "malformed_ip",
  "bad_checksum", "source_not_allowed", "tun_write_error", "no_route", "no_endpoint", "send_error", "shutdown",
  "no_session", "unknown_index", "replayed", "decryption_failed", "expired_keypair", "bad_size", "bad_mac",
  "under_load", "rate_limited", "replayed_handshake", "handshake_overflow",
] as const;

/** The reasons each path can produce: only these are exported, so no series is always zero. */
export const DEVICE_PATH_DROPS: readonly number[] = [
  Drop.MalformedIp, Drop.NoRoute, Drop.NoEndpoint, Drop.SendError, Drop.Shutdown, Drop.NoSession,
];
export const NETWORK_PATH_DROPS: readonly number[] = [
  Drop.UnknownPeer, Drop.Truncated, Drop.Oversize, Drop.BadVersion, Drop.BadType, Drop.BadHeader,
  Drop.MalformedIp, Drop.BadChecksum, Drop.SourceNotAllowed, Drop.TunWriteError,
  Drop.UnknownIndex, Drop.Replayed, Drop.DecryptionFailed, Drop.ExpiredKeypair, Drop.BadSize, Drop.BadMac,
  Drop.UnderLoad, Drop.RateLimited, Drop.ReplayedHandshake, Drop.HandshakeOverflow,
];

export function newDropCounters(): Float64Array {
  return new Float64Array(DROP_LABELS.length);
}
