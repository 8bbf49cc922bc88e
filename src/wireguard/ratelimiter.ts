// Handshakes per source IP while the device is under load: a token bucket per address
// (RATE_PER_SECOND, bursts of RATE_BURST), as wireguard-go's ratelimiter package.
// The port is not part of the key: one host must not get more by using more ports.
import { RATE_BURST, RATE_ENTRY_TTL, RATE_PER_SECOND } from "./constants.ts";

/** Tokens are milliseconds of credit; one message costs this many. */
const COST = 1000 / RATE_PER_SECOND;
const MAX_TOKENS = COST * RATE_BURST;

interface Entry {
  tokens: number;
  last: number;
}

export class RateLimiter {
  readonly #table = new Map<string, Entry>();

  /** Whether a message from this source (20-byte endpoint) may be processed now. */
  allow(source: Uint8Array, now: number): boolean {
    const key = addressKey(source);
    const entry = this.#table.get(key);
    if (!entry) {
      this.#table.set(key, { tokens: MAX_TOKENS - COST, last: now });
      return true;
    }
    entry.tokens = Math.min(MAX_TOKENS, entry.tokens + (now - entry.last));
    entry.last = now;
    if (entry.tokens > COST) {
      entry.tokens -= COST;
      return true;
    }
    return false;
  }

  /** Forgets sources idle for over a second (a full bucket again), so the table stays small. */
  sweep(now: number): void {
    for (const [key, entry] of this.#table) if (now - entry.last > RATE_ENTRY_TTL) this.#table.delete(key);
  }

  get size(): number {
    return this.#table.size;
  }
}

/** Family and address of a 20-byte endpoint ([0] family, [2..3] port, [4..] address). */
function addressKey(ep: Uint8Array): string {
  const len = ep[0] === 6 ? 16 : 4;
  return String.fromCharCode(ep[0], ...ep.subarray(4, 4 + len));
}
