// Every WireGuard protocol constant in one place (the whitepaper's section 6 and wireguard-go's
// constants.go). Times are milliseconds, as `now` is everywhere in src/wireguard/.

export const CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
export const IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";
export const LABEL_MAC1 = "mac1----";
export const LABEL_COOKIE = "cookie--";

export const KEY_LEN = 32;
export const HASH_LEN = 32;
export const MAC_LEN = 16;
export const TAG_LEN = 16;
export const TIMESTAMP_LEN = 12;
export const XNONCE_LEN = 24;
export const COOKIE_LEN = 16;
/** The preshared key when none is configured. */
export const NO_PRESHARED_KEY = new Uint8Array(KEY_LEN);

export const MSG_INITIATION = 1;
export const MSG_RESPONSE = 2;
export const MSG_COOKIE_REPLY = 3;
export const MSG_DATA = 4;

/** type 4 + sender 4 + ephemeral + encrypted static + encrypted timestamp + mac1 + mac2 = 148 */
export const INITIATION_SIZE = 4 + 4 + KEY_LEN + (KEY_LEN + TAG_LEN) + (TIMESTAMP_LEN + TAG_LEN) + MAC_LEN + MAC_LEN;
/** type + sender + receiver + ephemeral + encrypted nothing + mac1 + mac2 = 92 */
export const RESPONSE_SIZE = 4 + 4 + 4 + KEY_LEN + TAG_LEN + MAC_LEN + MAC_LEN;
/** type + receiver + nonce + encrypted cookie = 64 */
export const COOKIE_REPLY_SIZE = 4 + 4 + XNONCE_LEN + COOKIE_LEN + TAG_LEN;
/** type + receiver + counter; the sealed payload follows. */
export const DATA_HEADER_SIZE = 4 + 4 + 8;
/** A keepalive: a data message with an empty plaintext. */
export const KEEPALIVE_SIZE = DATA_HEADER_SIZE + TAG_LEN;
export const PADDING_MULTIPLE = 16;

// Counts are bigint: REJECT_AFTER_MESSAGES is not exact as a double.
export const REKEY_AFTER_MESSAGES = 1n << 60n;
export const REJECT_AFTER_MESSAGES = (1n << 64n) - (1n << 13n) - 1n;

export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
/** Retransmissions wait REKEY_TIMEOUT plus 0 to this many ms, exclusive (wireguard-go: 334). */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
/** Retries before giving up: the first initiation plus MAX_TIMER_HANDSHAKES + 1 retries. */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** Key material of a peer that made no new session for this long is erased. */
export const ZERO_KEY_MATERIAL_TIME = REJECT_AFTER_TIME * 3;
/** An initiator asks for a fresh session when its keypair is this old and data arrives,
 * so the new one is in place before the old one is rejected. */
export const REKEY_ON_RECEIVE_TIME = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;

/** At most one initiation per peer consumed per this many ms (wireguard-go's flood check). */
export const HANDSHAKE_INITIATION_RATE = 20;
/** Once under load, the device stays so for this long. */
export const UNDER_LOAD_AFTER_TIME = 1_000;
/** Handshake messages per second above which the device is under load (default). */
export const DEFAULT_LOAD_THRESHOLD = 64;

/** Per source IP under load: this many initiations a second, in bursts of up to RATE_BURST. */
export const RATE_PER_SECOND = 20;
export const RATE_BURST = 5;
/** Idle ratelimiter entries are forgotten after this long. */
export const RATE_ENTRY_TTL = 1_000;

/** Slots of the native keypair table; a local index carries its slot in the low bits. */
export const WG_KEYPAIR_SLOTS = 4096;
export const SLOT_BITS = 12;
export const SLOT_MASK = WG_KEYPAIR_SLOTS - 1;
