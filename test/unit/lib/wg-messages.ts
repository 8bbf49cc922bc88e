// WireGuard data messages built and read with node:crypto, apart from the addon, to check
// its sealing and opening against: the wire format (all little-endian: u32 type 4, u32
// receiver index, u64 counter, ChaCha20-Poly1305 with nonce = 4 zero bytes + counter and
// no AAD) and wireguard-go's padding rule, written out here a second time on purpose.
import { createCipheriv, createDecipheriv, createSecretKey } from "node:crypto";
import type { KeyObject } from "node:crypto";

export const HEADER = 16;
export const TAG = 16;

function nonce(counter: bigint): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(counter, 4);
  return n;
}

/** Padding wireguard-go adds (device/send.go, calculatePaddingSize). */
export function paddingFor(len: number, mtu: number): number {
  if (mtu === 0) return (16 - (len % 16)) % 16;
  const lastUnit = len > mtu ? len % mtu : len;
  const padded = Math.min(Math.ceil(lastUnit / 16) * 16, mtu);
  return padded - lastUnit;
}

export interface Opened {
  type: number;
  receiver: number;
  counter: bigint;
  /** Decrypted bytes, padding included. */
  plaintext: Buffer;
}

/** Reads and decrypts a data message; throws if it does not authenticate. */
export function openMessage(key: Uint8Array, msg: Uint8Array): Opened {
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  const counter = b.readBigUInt64LE(8);
  const d = createDecipheriv("chacha20-poly1305", key, nonce(counter), { authTagLength: TAG });
  d.setAuthTag(b.subarray(b.length - TAG));
  const plaintext = Buffer.concat([d.update(b.subarray(HEADER, b.length - TAG)), d.final()]);
  return { type: b.readUInt32LE(0), receiver: b.readUInt32LE(4), counter, plaintext };
}

/** A data message for plaintext, zero-padded by the rule above. */
export function sealMessage(key: Uint8Array, receiver: number, counter: bigint, plaintext: Uint8Array, mtu = 0): Buffer {
  return sealExact(key, receiver, counter, Buffer.concat([plaintext, Buffer.alloc(paddingFor(plaintext.length, mtu))]));
}

/** Key objects by raw key: node:crypto builds one per call from raw bytes, at a cost that
 * shows when the fuzz suites seal a million messages. */
const keyObjects = new WeakMap<Uint8Array, KeyObject>();

/** A data message for plaintext as given (any padding already in it). */
export function sealExact(key: Uint8Array, receiver: number, counter: bigint, plaintext: Uint8Array): Buffer {
  let k = keyObjects.get(key);
  if (k === undefined) keyObjects.set(key, (k = createSecretKey(key)));
  const out = Buffer.allocUnsafe(HEADER + plaintext.length + TAG);
  out.writeUInt32LE(4, 0);
  out.writeUInt32LE(receiver, 4);
  out.writeBigUInt64LE(counter, 8);
  const c = createCipheriv("chacha20-poly1305", k, nonce(counter), { authTagLength: TAG });
  let at = HEADER + c.update(plaintext).copy(out, HEADER);
  at += c.final().copy(out, at);
  c.getAuthTag().copy(out, at);
  return out;
}
