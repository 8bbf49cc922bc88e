// Noise_IKpsk2 between two ends with fixed static and ephemeral keys and a fixed timestamp
// (the shape of wireguard-go's noise_test.go): after each message both ends hold the same
// chaining key and hash, the transport keys cross over, and a data message sealed with
// node:crypto under one end's sending key opens under the other's receiving key.
import t from "tap";
import { createCipheriv, createDecipheriv, createHash } from "node:crypto";
import { tai64n } from "../../src/wireguard/crypto.ts";
import { WgDrop } from "../../src/wireguard/drops.ts";
import {
  Handshake, HandshakeState, consumeInitiation, consumeResponse, createInitiation, createResponse, deriveKeys,
} from "../../src/wireguard/noise.ts";
import type { StaticIdentity } from "../../src/wireguard/noise.ts";
import { clamp, publicKeyOf } from "../../src/wireguard/x25519.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function identity(seedByte: number): StaticIdentity {
  const privateKey = clamp(new Uint8Array(32).map((_, i) => (seedByte * 31 + i * 7) & 0xff));
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

const initiator = identity(1);
const responder = identity(2);
const ephemeralI = clamp(hex("e0".repeat(32)));
const ephemeralR = clamp(hex("e1".repeat(32)));
const psk = hex("aa".repeat(32));
const TIMESTAMP = tai64n(1_767_225_600_000_000_000n);

function handshakes(pskI?: Uint8Array, pskR?: Uint8Array): { hsI: Handshake; hsR: Handshake } {
  const hsI = new Handshake(responder.publicKey, pskI);
  hsI.precompute(initiator);
  const hsR = new Handshake(initiator.publicKey, pskR);
  hsR.precompute(responder);
  return { hsI, hsR };
}

/** Seals one data message payload as the native side will: counter nonce, no AAD. */
function seal(key: Uint8Array, counter: bigint, plaintext: Uint8Array): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(counter, 4);
  const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

function open(key: Uint8Array, counter: bigint, sealed: Buffer): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(counter, 4);
  const d = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
}

t.test("a whole handshake with fixed keys: same state at both ends, crossed transport keys", (t) => {
  const { hsI, hsR } = handshakes(psk, psk);
  const msg1 = createInitiation(initiator, hsI, 0x1234_5001, ephemeralI, TIMESTAMP)!;
  t.equal(msg1.length, 148);
  t.equal(hsI.state, HandshakeState.InitiationCreated);

  const consumed = consumeInitiation(responder, msg1, 1000, (pub) => (toHex(pub) === toHex(initiator.publicKey) ? hsR : null));
  t.ok(consumed.ok, "the responder opens the initiation");
  t.same(hsR.chainKey, hsI.chainKey, "chaining keys agree after message 1");
  t.same(hsR.hash, hsI.hash, "hashes agree after message 1");
  t.equal(hsR.remoteIndex, 0x1234_5001);
  t.same(hsR.lastTimestamp, TIMESTAMP);

  const msg2 = createResponse(hsR, 0x9876_5002, ephemeralR)!;
  t.equal(msg2.length, 92);
  t.ok(consumeResponse(initiator, hsI, msg2), "the initiator opens the response");
  t.same(hsI.chainKey, hsR.chainKey, "chaining keys agree after message 2");
  t.same(hsI.hash, hsR.hash, "hashes agree after message 2");
  t.equal(hsI.remoteIndex, 0x9876_5002);

  const keysI = deriveKeys(hsI)!;
  const keysR = deriveKeys(hsR)!;
  t.ok(keysI.isInitiator);
  t.notOk(keysR.isInitiator);
  t.same(keysI.sendKey, keysR.recvKey);
  t.same(keysI.recvKey, keysR.sendKey);
  t.not(toHex(keysI.sendKey), toHex(keysI.recvKey));
  t.same([keysI.localIndex, keysI.remoteIndex], [0x1234_5001, 0x9876_5002]);
  t.equal(hsI.state, HandshakeState.Zeroed, "the handshake is zeroed after deriving");
  t.ok(hsI.chainKey.every((b) => b === 0));

  const m1 = Buffer.from("wireguard test message 1");
  t.same(open(keysR.recvKey, 0n, seal(keysI.sendKey, 0n, m1)), m1, "initiator -> responder");
  const m2 = Buffer.from("wireguard test message 2");
  t.same(open(keysI.recvKey, 7n, seal(keysR.sendKey, 7n, m2)), m2, "responder -> initiator, counter 7");
  t.throws(() => open(keysI.recvKey, 8n, seal(keysR.sendKey, 7n, m2)), "another counter does not open");

  // Everything is fixed, so the transcript is too: a change to any step changes these digests.
  // (wg-interop.test.ts checks the same code against wireguard-go itself.)
  const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex").slice(0, 16);
  t.same(
    { msg1: digest(msg1), msg2: digest(msg2), send: digest(keysI.sendKey), recv: digest(keysI.recvKey) },
    { msg1: "3323373e4cc7e33e", msg2: "0d459c0e0eaa0927", send: "02bae2c80ed7bd17", recv: "08c5c9c49e2b8f83" },
    "transcript digests (SHA-256, first 8 bytes)",
  );
  t.end();
});

t.test("preshared keys must agree", (t) => {
  const { hsI, hsR } = handshakes(psk, undefined);
  const msg1 = createInitiation(initiator, hsI, 1, ephemeralI, TIMESTAMP)!;
  t.ok(consumeInitiation(responder, msg1, 1000, () => hsR).ok, "message 1 does not involve the psk");
  const msg2 = createResponse(hsR, 2, ephemeralR)!;
  t.notOk(consumeResponse(initiator, hsI, msg2), "message 2 does not open under another psk");
  t.equal(hsI.state, HandshakeState.InitiationCreated, "a failed response leaves the handshake waiting");
  t.end();
});

t.test("consumeInitiation refusals: wrong responder key, unknown peer, replay, flood", (t) => {
  const { hsI, hsR } = handshakes();
  const msg1 = createInitiation(initiator, hsI, 1, ephemeralI, TIMESTAMP)!;
  const other = identity(3);
  t.same(consumeInitiation(other, msg1, 1000, () => hsR), { ok: false, reason: WgDrop.DecryptionFailed }, "sealed to another key");
  t.same(consumeInitiation(responder, msg1, 1000, () => null), { ok: false, reason: WgDrop.UnknownPeer });
  t.ok(consumeInitiation(responder, msg1, 1000, () => hsR).ok);
  t.same(consumeInitiation(responder, msg1, 2000, () => hsR), { ok: false, reason: WgDrop.ReplayedTimestamp }, "same timestamp again");

  const later = createInitiation(initiator, hsI, 2, ephemeralI, tai64n(1_767_225_601_000_000_000n))!;
  t.same(consumeInitiation(responder, later, 1010, () => hsR), { ok: false, reason: WgDrop.Flood }, "10 ms after the last");
  t.ok(consumeInitiation(responder, later, 1021, () => hsR).ok, "21 ms after: accepted");
  const tampered = Uint8Array.from(later);
  tampered[60] ^= 1;
  t.same(consumeInitiation(responder, tampered, 5000, () => hsR), { ok: false, reason: WgDrop.DecryptionFailed });
  t.end();
});

t.test("a low-order public key makes no handshake", (t) => {
  const hs = new Handshake(new Uint8Array(32), undefined); // the all-zero point
  hs.precompute(initiator);
  t.equal(hs.precomputedStaticStatic, null);
  t.equal(createInitiation(initiator, hs, 1, ephemeralI, TIMESTAMP), null);
  t.end();
});
