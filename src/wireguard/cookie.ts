// MAC1, MAC2 and cookie replies (whitepaper 5.4.4 and 5.4.7). The checker is the device's (it
// verifies what peers send us, keyed by our public key); a generator is per peer (it MACs what
// we send that peer, keyed by its public key, and holds the cookie it gave us).
import { COOKIE_REFRESH_TIME, HASH_LEN, LABEL_COOKIE, LABEL_MAC1, MAC_LEN, XNONCE_LEN } from "./constants.ts";
import { equalBytes, hash, mac, xaeadOpen, xaeadSeal } from "./crypto.ts";
import { decodeCookieReply, encodeCookieReply, mac1Offset, mac2Offset, senderIndex } from "./messages.ts";

const LABEL_MAC1_BYTES = new TextEncoder().encode(LABEL_MAC1);
const LABEL_COOKIE_BYTES = new TextEncoder().encode(LABEL_COOKIE);

/** HASH(label || public key): the MAC1 key and the cookie encryption key for one public key. */
function keysFor(publicKey: Uint8Array): { mac1Key: Uint8Array; cookieKey: Uint8Array } {
  return { mac1Key: hash(LABEL_MAC1_BYTES, publicKey), cookieKey: hash(LABEL_COOKIE_BYTES, publicKey) };
}

export class CookieChecker {
  #mac1Key: Uint8Array;
  #cookieKey: Uint8Array;
  #secret: Uint8Array = new Uint8Array(HASH_LEN);
  #secretSet = -Infinity;
  readonly #random: (n: number) => Uint8Array;

  constructor(ourPublicKey: Uint8Array, random: (n: number) => Uint8Array) {
    ({ mac1Key: this.#mac1Key, cookieKey: this.#cookieKey } = keysFor(ourPublicKey));
    this.#random = random;
  }

  /** MAC1 over everything before it, keyed by our public key. */
  checkMac1(msg: Uint8Array): boolean {
    const at = mac1Offset(msg.length);
    return equalBytes(mac(this.#mac1Key, msg.subarray(0, at)), msg.subarray(at, at + MAC_LEN));
  }

  /** MAC2 with the cookie we would give `source` now; false once the secret is stale. */
  checkMac2(msg: Uint8Array, source: Uint8Array, now: number): boolean {
    if (now - this.#secretSet > COOKIE_REFRESH_TIME) return false;
    const at = mac2Offset(msg.length);
    return equalBytes(mac(this.#cookie(source), msg.subarray(0, at)), msg.subarray(at));
  }

  /** The cookie reply to `msg` (an initiation or response with a valid MAC1) from `source`. */
  createReply(msg: Uint8Array, source: Uint8Array, now: number): Uint8Array {
    if (now - this.#secretSet > COOKIE_REFRESH_TIME) {
      this.#secret = this.#random(HASH_LEN);
      this.#secretSet = now;
    }
    const nonce = this.#random(XNONCE_LEN);
    const at = mac1Offset(msg.length);
    const cookie = xaeadSeal(this.#cookieKey, nonce, this.#cookie(source), msg.subarray(at, at + MAC_LEN));
    return encodeCookieReply({ receiver: senderIndex(msg), nonce, cookie });
  }

  /** The cookie for a source address (its 20-byte endpoint: address and port). */
  #cookie(source: Uint8Array): Uint8Array {
    return mac(this.#secret, source);
  }
}

export class CookieGenerator {
  readonly #mac1Key: Uint8Array;
  readonly #cookieKey: Uint8Array;
  #cookie: Uint8Array = new Uint8Array(MAC_LEN);
  #cookieSet = -Infinity;
  #lastMac1: Uint8Array | null = null;

  constructor(peerPublicKey: Uint8Array) {
    ({ mac1Key: this.#mac1Key, cookieKey: this.#cookieKey } = keysFor(peerPublicKey));
  }

  /** Fills mac1 and, while the peer's cookie is fresh, mac2 (else mac2 stays zero), in place. */
  addMacs(msg: Uint8Array, now: number): void {
    const at1 = mac1Offset(msg.length);
    const at2 = mac2Offset(msg.length);
    const mac1 = mac(this.#mac1Key, msg.subarray(0, at1));
    msg.set(mac1, at1);
    this.#lastMac1 = mac1;
    if (now - this.#cookieSet > COOKIE_REFRESH_TIME) {
      msg.fill(0, at2);
      return;
    }
    msg.set(mac(this.#cookie, msg.subarray(0, at2)), at2);
  }

  /** Takes the cookie from a reply to the last message we MAC'd; false if it does not open. */
  consumeReply(msg: Uint8Array, now: number): boolean {
    const reply = decodeCookieReply(msg);
    if (!reply || !this.#lastMac1) return false;
    const cookie = xaeadOpen(this.#cookieKey, reply.nonce, reply.cookie, this.#lastMac1);
    if (!cookie) return false;
    this.#cookie = cookie;
    this.#cookieSet = now;
    return true;
  }

  /** Whether a cookie is held and fresh (for tests and metrics). */
  hasCookie(now: number): boolean {
    return now - this.#cookieSet <= COOKIE_REFRESH_TIME;
  }
}
