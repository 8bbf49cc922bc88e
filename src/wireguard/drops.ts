// Why WgDevice.handshakeMessage refused a message: one code per reason, counted by the device
// (WgDevice.drops, indexed by code) and exported by the integrator under WG_DROP_LABELS.
export const WgDrop = {
  /** Processed: not a drop. */
  None: 0,
  /** Not a handshake type, nonzero reserved bytes, or the wrong length for its type. */
  BadSize: 1,
  /** MAC1 does not verify against our public key: answered with silence. */
  BadMac1: 2,
  /** Under load without a valid MAC2: a cookie reply was sent instead of processing. */
  CookieSent: 3,
  /** Under load, valid MAC2, but its source IP is over its handshake rate. */
  RateLimited: 4,
  /** A response or cookie reply naming an index we have no live handshake or keypair for. */
  UnknownIndex: 5,
  /** An initiation whose static key opened but belongs to no configured peer. */
  UnknownPeer: 6,
  /** An AEAD did not open, or a Diffie-Hellman result was zero. */
  DecryptionFailed: 7,
  /** An initiation whose timestamp is not after the last one from that peer. */
  ReplayedTimestamp: 8,
  /** An initiation within HANDSHAKE_INITIATION_RATE of the last one consumed from that peer. */
  Flood: 9,
  /** Every slot of the keypair table is taken. */
  NoSlot: 10,
  /** A cookie reply that does not open under our last MAC1 to that peer. */
  BadCookie: 11,
} as const;

export type WgDropReason = (typeof WgDrop)[keyof typeof WgDrop];

/** Metric label for each code, in code order. */
export const WG_DROP_LABELS = [
  "none", "bad_size", "bad_mac1", "cookie_sent", "rate_limited", "unknown_index", "unknown_peer",
  "decryption_failed", "replayed_timestamp", "flood", "no_slot", "bad_cookie",
] as const;
