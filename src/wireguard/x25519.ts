// X25519 over node:crypto (OpenSSL): raw 32-byte keys in and out, as WireGuard and `wg` use them.
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from "node:crypto";
import type { KeyObject } from "node:crypto";

export const KEY_LEN = 32;

function privateKeyObject(priv: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(priv.buffer, priv.byteOffset, priv.byteLength), format: "raw-private", asymmetricKeyType: "x25519" });
}

function publicKeyObject(pub: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.from(pub.buffer, pub.byteOffset, pub.byteLength), format: "raw-public", asymmetricKeyType: "x25519" });
}

/** A new private key, clamped as `wg genkey` prints it (RFC 7748 section 5). */
export function generatePrivateKey(): Uint8Array {
  const raw = new Uint8Array(generateKeyPairSync("x25519").privateKey.export({ format: "raw-private" }));
  return clamp(raw);
}

/** Clamps in place (X25519 ignores these bits; `wg` prints keys with them set so). */
export function clamp(priv: Uint8Array): Uint8Array {
  priv[0] &= 248;
  priv[31] = (priv[31] & 127) | 64;
  return priv;
}

export function publicKeyOf(priv: Uint8Array): Uint8Array {
  return new Uint8Array(createPublicKey(privateKeyObject(priv)).export({ format: "raw-public" }));
}

/** The shared secret, or null where X25519 fails or yields all zeros (a low-order point):
 * WireGuard treats both as a failed handshake. */
export function sharedSecret(priv: Uint8Array, pub: Uint8Array): Uint8Array | null {
  let out: Buffer;
  try {
    out = diffieHellman({ privateKey: privateKeyObject(priv), publicKey: publicKeyObject(pub) });
  } catch {
    return null;
  }
  let acc = 0;
  for (const b of out) acc |= b;
  return acc === 0 ? null : new Uint8Array(out);
}
