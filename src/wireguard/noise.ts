// Noise_IKpsk2 as WireGuard uses it (whitepaper 5.4.2-5.4.5): create and consume the
// initiation and the response, then derive the transport keys. No I/O, no clock: indexes,
// ephemeral keys, timestamps and `now` come from the caller (device.ts). MACs are cookie.ts's.
import {
  CONSTRUCTION, HANDSHAKE_INITIATION_RATE, HASH_LEN, IDENTIFIER, KEY_LEN, NO_PRESHARED_KEY, TIMESTAMP_LEN,
} from "./constants.ts";
import { aeadOpen, aeadSeal, hash, kdf1, kdf2, kdf3, timestampAfter } from "./crypto.ts";
import { WgDrop } from "./drops.ts";
import type { WgDropReason } from "./drops.ts";
import { decodeInitiation, decodeResponse, encodeInitiation, encodeResponse } from "./messages.ts";
import { publicKeyOf, sharedSecret } from "./x25519.ts";

const te = new TextEncoder();
/** C0 = HASH(construction), H0 = HASH(C0 || identifier): the same for every handshake. */
const INITIAL_CHAIN_KEY = hash(te.encode(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, te.encode(IDENTIFIER));
const EMPTY = new Uint8Array(0);

export const HandshakeState = {
  Zeroed: 0,
  InitiationCreated: 1,
  InitiationConsumed: 2,
  ResponseCreated: 3,
  ResponseConsumed: 4,
} as const;
export type HandshakeStateValue = (typeof HandshakeState)[keyof typeof HandshakeState];

/** Our static key pair. */
export interface StaticIdentity {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

/** One peer's handshake in progress, plus what persists between handshakes (timestamps,
 * the precomputed static-static secret). Key material is zeroed when done with. */
export class Handshake {
  state: HandshakeStateValue = HandshakeState.Zeroed;
  hash: Uint8Array = new Uint8Array(HASH_LEN);
  chainKey: Uint8Array = new Uint8Array(HASH_LEN);
  localEphemeral = new Uint8Array(KEY_LEN);
  remoteEphemeral = new Uint8Array(KEY_LEN);
  /** Our index for this handshake (0 when none) and its keypair-table slot (-1 when none). */
  localIndex = 0;
  slot = -1;
  remoteIndex = 0;
  readonly remoteStatic: Uint8Array;
  presharedKey: Uint8Array;
  /** DH(our static, their static); null when it is zero (no handshake possible). */
  precomputedStaticStatic: Uint8Array | null = null;
  /** The greatest TAI64N timestamp consumed from this peer (replay protection). */
  lastTimestamp: Uint8Array = new Uint8Array(TIMESTAMP_LEN);
  lastInitiationConsumption = -Infinity;
  lastSentHandshake = -Infinity;

  constructor(remoteStatic: Uint8Array, presharedKey: Uint8Array | undefined) {
    this.remoteStatic = Uint8Array.from(remoteStatic);
    this.presharedKey = Uint8Array.from(presharedKey ?? NO_PRESHARED_KEY);
  }

  /** Recomputes the static-static secret (at creation and when our private key changes;
   * null: the device has no key, no handshake is possible). */
  precompute(local: StaticIdentity | null): void {
    this.precomputedStaticStatic?.fill(0);
    this.precomputedStaticStatic = local === null ? null : sharedSecret(local.privateKey, this.remoteStatic);
  }

  /** The preshared key for the next handshake (null: none); the old one is zeroed. */
  setPresharedKey(presharedKey: Uint8Array | null): void {
    this.presharedKey.fill(0);
    this.presharedKey = Uint8Array.from(presharedKey ?? NO_PRESHARED_KEY);
  }

  /** Forgets the exchange in progress (not the timestamps); the caller frees the slot first. */
  clear(): void {
    this.localEphemeral.fill(0);
    this.remoteEphemeral.fill(0);
    this.chainKey.fill(0);
    this.hash.fill(0);
    this.localIndex = 0;
    this.slot = -1;
    this.state = HandshakeState.Zeroed;
  }

  /** Zeroes everything secret, for good (peer removed). */
  destroy(): void {
    this.clear();
    this.presharedKey.fill(0);
    this.precomputedStaticStatic?.fill(0);
  }
}

function mixHash(h: Uint8Array, data: Uint8Array): Uint8Array {
  return hash(h, data);
}

/** Message 1, from the initiator. Returns the message (MACs zero), or null when a DH fails. */
export function createInitiation(
  local: StaticIdentity, hs: Handshake, localIndex: number, ephemeralPrivate: Uint8Array, timestamp: Uint8Array,
): Uint8Array | null {
  if (!hs.precomputedStaticStatic) return null;
  let h = mixHash(INITIAL_HASH, hs.remoteStatic);
  let c: Uint8Array = INITIAL_CHAIN_KEY;
  const ephemeral = publicKeyOf(ephemeralPrivate);
  c = kdf1(c, ephemeral);
  h = mixHash(h, ephemeral);
  const es = sharedSecret(ephemeralPrivate, hs.remoteStatic);
  if (!es) return null;
  let key: Uint8Array;
  [c, key] = kdf2(c, es);
  const sealedStatic = aeadSeal(key, 0n, local.publicKey, h);
  h = mixHash(h, sealedStatic);
  [c, key] = kdf2(c, hs.precomputedStaticStatic);
  const sealedTimestamp = aeadSeal(key, 0n, timestamp, h);
  h = mixHash(h, sealedTimestamp);
  key.fill(0);
  es.fill(0);

  hs.hash = h;
  hs.chainKey = c;
  hs.localEphemeral.set(ephemeralPrivate);
  hs.localIndex = localIndex;
  hs.state = HandshakeState.InitiationCreated;
  return encodeInitiation({ sender: localIndex, ephemeral, static: sealedStatic, timestamp: sealedTimestamp });
}

export type ConsumedInitiation = { ok: true; handshake: Handshake } | { ok: false; reason: WgDropReason };

/**
 * Message 1, at the responder: opens the initiator's static key, finds its handshake through
 * `lookup`, checks the timestamp is newer than the last (replay) and that the last initiation
 * consumed is over HANDSHAKE_INITIATION_RATE old (flood). Only then is the handshake updated.
 */
export function consumeInitiation(
  local: StaticIdentity, msg: Uint8Array, now: number, lookup: (publicKey: Uint8Array) => Handshake | null,
): ConsumedInitiation {
  const m = decodeInitiation(msg);
  if (!m) return { ok: false, reason: WgDrop.BadSize };
  let h = mixHash(INITIAL_HASH, local.publicKey);
  h = mixHash(h, m.ephemeral);
  let c = kdf1(INITIAL_CHAIN_KEY, m.ephemeral);
  const es = sharedSecret(local.privateKey, m.ephemeral);
  if (!es) return { ok: false, reason: WgDrop.DecryptionFailed };
  let key: Uint8Array;
  [c, key] = kdf2(c, es);
  es.fill(0);
  const peerStatic = aeadOpen(key, 0n, m.static, h);
  if (!peerStatic) return { ok: false, reason: WgDrop.DecryptionFailed };
  h = mixHash(h, m.static);

  const hs = lookup(peerStatic);
  if (!hs) return { ok: false, reason: WgDrop.UnknownPeer };
  if (!hs.precomputedStaticStatic) return { ok: false, reason: WgDrop.DecryptionFailed };
  [c, key] = kdf2(c, hs.precomputedStaticStatic);
  const timestamp = aeadOpen(key, 0n, m.timestamp, h);
  key.fill(0);
  if (!timestamp) return { ok: false, reason: WgDrop.DecryptionFailed };
  h = mixHash(h, m.timestamp);

  if (!timestampAfter(timestamp, hs.lastTimestamp)) return { ok: false, reason: WgDrop.ReplayedTimestamp };
  if (now - hs.lastInitiationConsumption <= HANDSHAKE_INITIATION_RATE) return { ok: false, reason: WgDrop.Flood };

  hs.hash = h;
  hs.chainKey = c;
  hs.remoteIndex = m.sender;
  hs.remoteEphemeral.set(m.ephemeral);
  hs.lastTimestamp = timestamp;
  hs.lastInitiationConsumption = now;
  hs.state = HandshakeState.InitiationConsumed;
  return { ok: true, handshake: hs };
}

/** Message 2's key schedule, the same at both ends given the two DH results (ephemeral-
 * ephemeral and the responder's ephemeral with the initiator's static): null if either failed. */
function responseKeys(
  hs: Handshake, responderEphemeral: Uint8Array, ee: Uint8Array | null, se: Uint8Array | null,
): { h: Uint8Array; c: Uint8Array; key: Uint8Array } | null {
  if (!ee || !se) {
    ee?.fill(0);
    se?.fill(0);
    return null;
  }
  const h = mixHash(hs.hash, responderEphemeral);
  let c = kdf1(hs.chainKey, responderEphemeral);
  c = kdf1(c, ee);
  c = kdf1(c, se);
  ee.fill(0);
  se.fill(0);
  const [c2, tau, key] = kdf3(c, hs.presharedKey);
  const mixed = { h: mixHash(h, tau), c: c2, key };
  tau.fill(0);
  return mixed;
}

/** Message 2, from the responder, after consumeInitiation. Null when a DH fails. */
export function createResponse(hs: Handshake, localIndex: number, ephemeralPrivate: Uint8Array): Uint8Array | null {
  if (hs.state !== HandshakeState.InitiationConsumed) return null;
  const ephemeral = publicKeyOf(ephemeralPrivate);
  const mixed = responseKeys(hs, ephemeral, sharedSecret(ephemeralPrivate, hs.remoteEphemeral), sharedSecret(ephemeralPrivate, hs.remoteStatic));
  if (!mixed) return null;
  const empty = aeadSeal(mixed.key, 0n, EMPTY, mixed.h);
  mixed.key.fill(0);

  hs.hash = mixHash(mixed.h, empty);
  hs.chainKey = mixed.c;
  hs.localEphemeral.set(ephemeralPrivate);
  hs.localIndex = localIndex;
  hs.state = HandshakeState.ResponseCreated;
  return encodeResponse({ sender: localIndex, receiver: hs.remoteIndex, ephemeral, empty });
}

/** Message 2, at the initiator (the caller found `hs` by the receiver index). */
export function consumeResponse(local: StaticIdentity, hs: Handshake, msg: Uint8Array): boolean {
  const m = decodeResponse(msg);
  if (!m || hs.state !== HandshakeState.InitiationCreated) return false;
  const mixed = responseKeys(hs, m.ephemeral, sharedSecret(hs.localEphemeral, m.ephemeral), sharedSecret(local.privateKey, m.ephemeral));
  if (!mixed) return false;
  const opened = aeadOpen(mixed.key, 0n, m.empty, mixed.h);
  mixed.key.fill(0);
  if (!opened) return false;

  hs.hash = mixHash(mixed.h, m.empty);
  hs.chainKey = mixed.c;
  hs.remoteIndex = m.sender;
  hs.state = HandshakeState.ResponseConsumed;
  return true;
}

export interface TransportKeys {
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  isInitiator: boolean;
  localIndex: number;
  remoteIndex: number;
  slot: number;
}

/** The transport keys from a finished handshake (KDF2(C, empty), swapped for the responder);
 * the handshake is zeroed and its index and slot pass to the keypair. */
export function deriveKeys(hs: Handshake): TransportKeys | null {
  const isInitiator = hs.state === HandshakeState.ResponseConsumed;
  if (!isInitiator && hs.state !== HandshakeState.ResponseCreated) return null;
  const [first, second] = kdf2(hs.chainKey, EMPTY);
  const keys = {
    sendKey: isInitiator ? first : second,
    recvKey: isInitiator ? second : first,
    isInitiator,
    localIndex: hs.localIndex,
    remoteIndex: hs.remoteIndex,
    slot: hs.slot,
  };
  hs.clear();
  return keys;
}
