// The whitepaper's primitives (section 5.4) over node:crypto, with @noble for the two that
// OpenSSL does not expose through node: keyed BLAKE2s-128 (MAC) and XChaCha20-Poly1305 (XAEAD).
// Handshake-rate code: allocation per call is fine here, never on the data path.
import { createCipheriv, createDecipheriv, createHash, createHmac, timingSafeEqual } from "node:crypto";
import { blake2s } from "@noble/hashes/blake2.js";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { MAC_LEN, TAG_LEN, TIMESTAMP_LEN } from "./constants.ts";

/** HASH(a || b || ...): BLAKE2s-256. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("blake2s256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** MAC(key, msg): keyed BLAKE2s with a 16-byte output (not a truncated BLAKE2s-256). */
export function mac(key: Uint8Array, msg: Uint8Array): Uint8Array {
  return blake2s(msg, { key, dkLen: MAC_LEN });
}

/** HMAC(key, a || b || ...): RFC 2104 over BLAKE2s-256. */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac("blake2s256", key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** KDF_n(key, input): the first n outputs of HKDF with BLAKE2s (the whitepaper's KDF). */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmac(key, input);
  const out = [hmac(prk, ONE)];
  if (n >= 2) out.push(hmac(prk, out[0], TWO));
  if (n === 3) out.push(hmac(prk, out[1], THREE));
  prk.fill(0);
  return out;
}

export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdf(1, key, input)[0];
}

export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const [a, b] = kdf(2, key, input);
  return [a, b];
}

export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const [a, b, c] = kdf(3, key, input);
  return [a, b, c];
}

/** The 12-byte AEAD nonce: 4 zero bytes, then the counter as u64 little-endian. */
export function counterNonce(counter: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(counter, 4);
  return nonce;
}

/** AEAD(key, counter, plaintext, aad): ChaCha20-Poly1305, ciphertext || tag. */
export function aeadSeal(key: Uint8Array, counter: bigint, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const c = createCipheriv("chacha20-poly1305", key, counterNonce(counter), { authTagLength: TAG_LEN });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  const body = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

/** The plaintext, or null if the tag does not verify. */
export function aeadOpen(key: Uint8Array, counter: bigint, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (sealed.length < TAG_LEN) return null;
  const d = createDecipheriv("chacha20-poly1305", key, counterNonce(counter), { authTagLength: TAG_LEN });
  d.setAAD(aad, { plaintextLength: sealed.length - TAG_LEN });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
  try {
    const out = Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_LEN)), d.final()]);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch {
    return null;
  }
}

/** XAEAD(key, nonce, plaintext, aad): XChaCha20-Poly1305 with a 24-byte nonce. */
export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(sealed);
  } catch {
    return null;
  }
}

/** Constant-time equality of two equal-length byte strings (false if the lengths differ). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function isZero(a: Uint8Array): boolean {
  let acc = 0;
  for (const b of a) acc |= b;
  return acc === 0;
}

/** A wall clock in nanoseconds since the Unix epoch. */
export type WallClock = () => bigint;

/** Date for the epoch, process.hrtime for the nanoseconds since: monotonic between calls,
 * and a restarted process starts from the wall clock, so its timestamps do not go backwards. */
export function defaultWallClock(): WallClock {
  const epochNs = BigInt(Date.now()) * 1_000_000n;
  const start = process.hrtime.bigint();
  return () => epochNs + (process.hrtime.bigint() - start);
}

const TAI64_BASE = (1n << 62n) + 10n;
/** Nanoseconds are rounded down to 2^24 ns (~17 ms), as wireguard-go does, so the
 * timestamp does not leak fine-grained timing of the sender. */
const WHITENER_MASK = 0x1000000 - 1;

/** TAI64N of a wall-clock time: 8 bytes of seconds + 2^62 + 10, 4 of nanoseconds, big-endian. */
export function tai64n(wallNs: bigint): Uint8Array {
  const out = new Uint8Array(TIMESTAMP_LEN);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, TAI64_BASE + wallNs / 1_000_000_000n);
  v.setUint32(8, (Number(wallNs % 1_000_000_000n) & ~WHITENER_MASK) >>> 0);
  return out;
}

/** Whether timestamp a is later than b (both TAI64N: big-endian, so byte order is time order). */
export function timestampAfter(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) > 0;
}
