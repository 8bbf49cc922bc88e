// The WireGuard protocol for one interface, doing no I/O (boringtun's shape): messages, data
// events and the time come in; messages to send and keypair changes go out through WgEffects.
// Per-packet sealing and opening are native (a keypair table of WG_KEYPAIR_SLOTS slots);
// this file decides which keypair each slot holds and when handshakes and keepalives happen.
//
// Handshake message, in the order it meets the checks (handshakeMessage):
//   type and exact size -> (cookie reply: find our index, open it, done)
//   -> MAC1 (else silence) -> under load? valid MAC2 (else a cookie reply), then the rate
//   limit per source IP -> initiation: open, replay and flood checks, respond, keypair `next`;
//   response: find our index, open, keypair `current`, keypair ready
//
// Time: `now` is monotonic milliseconds, passed in; never read here. The TAI64N wall clock and
// randomness are injectable (options), so tests run on a fake clock with fixed keys.
import { randomBytes } from "node:crypto";
import {
  DEFAULT_LOAD_THRESHOLD, KEY_LEN, MAX_TIMER_HANDSHAKES, MSG_COOKIE_REPLY, MSG_INITIATION, REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_ON_RECEIVE_TIME, REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX, UNDER_LOAD_AFTER_TIME,
} from "./constants.ts";
import { CookieChecker } from "./cookie.ts";
import { defaultWallClock, equalBytes, tai64n } from "./crypto.ts";
import type { WallClock } from "./crypto.ts";
import { WG_DROP_LABELS, WgDrop } from "./drops.ts";
import type { WgDropReason } from "./drops.ts";
import { IndexTable } from "./index-table.ts";
import { Keypair } from "./keypairs.ts";
import { decodeResponse, handshakeType, senderIndex } from "./messages.ts";
import { HandshakeState, consumeInitiation, consumeResponse, createInitiation, createResponse, deriveKeys } from "./noise.ts";
import type { Handshake, StaticIdentity, TransportKeys } from "./noise.ts";
import { WgPeer, peerState } from "./peer.ts";
import type { WgPeerConfig } from "./peer.ts";
import { RateLimiter } from "./ratelimiter.ts";
import { TimerName } from "./timers.ts";
import type { TimerNameValue } from "./timers.ts";
import { clamp, publicKeyOf } from "./x25519.ts";
import { ENDPOINT_BYTES } from "../net/address.ts";

/** Rekey once more than REKEY_AFTER_MESSAGES were sent (made once: bigint arithmetic allocates). */
const PAST_REKEY_AFTER_MESSAGES = REKEY_AFTER_MESSAGES + 1n;

/** What the device asks of the integrator. Calls happen synchronously inside the device's
 * methods (keypairReady can come from dataReceived or handshakeMessage: re-entry is fine). */
export interface WgEffects {
  /** Puts a handshake or cookie message on the wire (it is a fresh buffer, never reused by us);
   * `peer` is whom a handshake message goes to, null for a cookie reply (wireguard-go counts
   * the first in the peer's transfer, not the second). */
  send(endpoint: Uint8Array, msg: Uint8Array, peer: WgPeer | null): void;
  /** A handshake message from the peer authenticated (`bytes` long, for its transfer). */
  handshakeReceived?(peer: WgPeer, bytes: number): void;
  /** Installs a keypair in the native table. Our copies of the keys are zeroed after the call. */
  installKeypair(slot: number, localIndex: number, remoteIndex: number, sendKey: Uint8Array, recvKey: Uint8Array): void;
  /** Removes (and cleanses) the keypair in `slot`; called exactly once per installed keypair. */
  removeKeypair(slot: number): void;
  /** Sends an empty data message with the keypair in `slot` (the peer's current one). */
  sendKeepalive(peer: WgPeer, slot: number): void;
  /** The peer has a keypair to send with: flush what is staged for it. Return true if
   * something was sent; otherwise, after a handshake we initiated, a keepalive confirms it. */
  keypairReady(peer: WgPeer): boolean | void;
  /** Handshake attempts exhausted (REKEY_ATTEMPT_TIME): drop what is staged for the peer. */
  gaveUp(peer: WgPeer): void;
}

export interface WgDeviceOptions {
  /** null: no key yet (wireguard-go's start state): handshakes are refused silently and none
   * are sent until setPrivateKey gives one. */
  privateKey: Uint8Array | null;
  peers: WgPeerConfig[];
  effects: WgEffects;
  /** Nanoseconds since the Unix epoch, for TAI64N timestamps and lastHandshakeTime. */
  wallClock?: WallClock;
  /** n random bytes (ephemeral keys, indexes, cookie secrets and nonces, jitter). */
  random?: (n: number) => Uint8Array;
  /** Handshake messages per second above which the device is under load. */
  loadThreshold?: number;
  /** The native send counter of a slot's keypair, when the integrator has it; without it the
   * device counts what dataSent reports. Rekey and reject after messages read this. */
  sendCounter?: (slot: number) => bigint;
}

/** Random bytes fetched at once for timer jitter: 256 draws. */
const JITTER_BLOCK = 512;

export class WgDevice {
  #identity: StaticIdentity | null;
  #checker: CookieChecker | null;
  readonly #peers: WgPeer[] = [];
  readonly #byKey = new Map<string, WgPeer>();
  readonly #table: IndexTable<WgPeer>;
  readonly #limiter = new RateLimiter();
  readonly #effects: WgEffects;
  readonly #wallClock: WallClock;
  readonly #random: (n: number) => Uint8Array;
  readonly #loadThreshold: number;
  readonly #sendCounter: ((slot: number) => bigint) | undefined;
  #loadWindowStart = -Infinity;
  #loadCount = 0;
  #underLoadUntil = -Infinity;
  /** Random bytes for timer jitter (#jitter), and the next unused one. */
  #jitterBytes: Uint8Array = new Uint8Array(0);
  #jitterAt = 0;
  /** Handshake messages refused, by WgDrop code (index 0 counts those processed). */
  readonly drops = new Float64Array(WG_DROP_LABELS.length);
  readonly #retire = (kp: Keypair): void => {
    this.#effects.removeKeypair(kp.slot);
    this.#table.free(kp.slot);
  };

  constructor(opts: WgDeviceOptions) {
    this.#effects = opts.effects;
    this.#wallClock = opts.wallClock ?? defaultWallClock();
    this.#random = opts.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.#sendCounter = opts.sendCounter;
    const threshold = opts.loadThreshold ?? DEFAULT_LOAD_THRESHOLD;
    if (!Number.isInteger(threshold) || threshold < 0) throw new RangeError(`loadThreshold: ${threshold} is not a non-negative integer`);
    this.#loadThreshold = threshold;
    this.#table = new IndexTable(this.#random);
    this.#identity = opts.privateKey === null ? null : identityOf(opts.privateKey);
    this.#checker = this.#identity === null ? null : new CookieChecker(this.#identity.publicKey, this.#random);
    for (const p of opts.peers) this.addPeer(p);
  }

  get peers(): readonly WgPeer[] {
    return this.#peers;
  }

  /** null while the device has no private key. */
  get publicKey(): Uint8Array | null {
    return this.#identity?.publicKey ?? null;
  }

  /** Slots of the native table in use (handshakes waiting plus keypairs). */
  get slotsInUse(): number {
    return this.#table.used;
  }

  // ---- device path ----

  /** The slot of the peer's current keypair if it may still send (under REJECT_AFTER_TIME and
   * REJECT_AFTER_MESSAGES); else -1, after asking for a handshake (at most one per REKEY_TIMEOUT). */
  sendingSlot(peer: WgPeer, now: number): number {
    const kp = this.#usableCurrent(peer, now);
    if (kp) return kp.slot;
    this.#sendHandshakeInitiation(peer, now, false);
    return -1;
  }

  /** After a batch of data messages (not keepalives) went to the peer with its current keypair. */
  dataSent(peer: WgPeer, now: number, messagesSent: number): void {
    if (messagesSent <= 0) return;
    const st = peerState(peer);
    const kp = st.keypairs.current;
    if (kp) addSent(kp, messagesSent);
    st.timers.anyAuthenticatedPacketTraversal(now);
    st.timers.anyAuthenticatedPacketSent();
    st.timers.dataSent(now);
    this.#keepKeyFreshSending(peer, now);
  }

  // ---- network path ----

  /** The peer whose handshake or keypair holds `slot`, or null. */
  peerOfSlot(slot: number): WgPeer | null {
    return this.#table.get(slot)?.peer ?? null;
  }

  /** A data message opened with the keypair in `slot` (and passed the replay window). False if
   * that keypair is past REJECT_AFTER_TIME or gone: the caller drops it. Else promotes a
   * waiting `next` keypair, moves the endpoint to `source`, and runs the timers. One call may
   * stand for a run of messages from one batch on one slot (keepalive: all were keepalives).
   * `source` is copied if kept. */
  dataReceived(slot: number, source: Uint8Array, now: number, keepalive: boolean): boolean {
    const entry = this.#table.get(slot);
    const kp = entry?.keypair;
    if (!entry || !kp || now - kp.created > REJECT_AFTER_TIME) return false;
    const peer = entry.peer;
    const st = peerState(peer);
    if (st.keypairs.receivedWith(kp, this.#retire)) {
      this.#handshakeComplete(peer);
      this.#effects.keypairReady(peer);
    }
    this.#roam(peer, source);
    this.#keepKeyFreshReceiving(peer, now);
    st.timers.anyAuthenticatedPacketTraversal(now);
    st.timers.anyAuthenticatedPacketReceived();
    if (!keepalive) st.timers.dataReceived(now);
    return true;
  }

  /** A message of type 1, 2 or 3 (or anything the native side did not take as data) from
   * `source`. Returns WgDrop.None (0) if processed, else why not; both are counted in `drops`.
   * Neither `msg` nor `source` is kept (both may be pooled buffers). */
  handshakeMessage(msg: Uint8Array, source: Uint8Array, now: number): WgDropReason {
    const reason = this.#handshakeMessage(msg, source, now);
    this.drops[reason]++;
    return reason;
  }

  // ---- time ----

  /** Runs every timer due at `now`. Call every ~250 ms, or at nextDeadline(). */
  tick(now: number): void {
    for (const peer of [...this.#peers]) {
      for (const name of peerState(peer).timers.expired(now)) {
        if (this.#byKey.get(keyOf(peer.publicKey)) !== peer) break; // removed by an earlier action
        this.#onTimer(peer, name, now);
      }
    }
    this.#limiter.sweep(now);
  }

  /** The earliest timer deadline over all peers (Infinity if none; -Infinity: tick now). */
  nextDeadline(): number {
    let at = Infinity;
    for (const peer of this.#peers) at = Math.min(at, peerState(peer).timers.nextDeadline());
    return at;
  }

  // ---- configuration ----

  addPeer(config: WgPeerConfig): WgPeer {
    if (typeof config.name !== "string" || config.name === "") throw new TypeError(`peer name: ${String(config.name)} is not a non-empty string`);
    checkLength(`peer ${config.name}: publicKey`, config.publicKey, KEY_LEN);
    if (config.presharedKey !== undefined) checkLength(`peer ${config.name}: presharedKey`, config.presharedKey, KEY_LEN);
    if (config.endpoint !== undefined) checkLength(`peer ${config.name}: endpoint`, config.endpoint, ENDPOINT_BYTES);
    const ka = config.persistentKeepalive ?? 0;
    if (!Number.isInteger(ka) || ka < 0 || ka > 65535) throw new RangeError(`peer ${config.name}: persistentKeepalive ${ka} is not an integer 0-65535`);
    const key = keyOf(config.publicKey);
    if (this.#byKey.has(key)) throw new Error(`peer ${config.name}: publicKey is already another peer's`);
    if (this.#identity !== null && equalBytes(config.publicKey, this.#identity.publicKey)) throw new Error(`peer ${config.name}: publicKey is this device's own`);
    const peer = new WgPeer(config, this.#identity, () => this.#jitter());
    this.#peers.push(peer);
    this.#byKey.set(key, peer);
    peerState(peer).timers.started();
    return peer;
  }

  /** Where the peer is, from configuration (an address, a name resolved): handshakes go there
   * until an authenticated message moves it. */
  setEndpoint(peer: WgPeer, endpoint: Uint8Array): void {
    checkLength(`peer ${peer.name}: endpoint`, endpoint, ENDPOINT_BYTES);
    peerState(peer).endpoint = Uint8Array.from(endpoint);
  }

  /** Removes the peer and all its keypairs. False if no peer has this key. */
  removePeer(publicKey: Uint8Array): boolean {
    const peer = this.#byKey.get(keyOf(publicKey));
    if (!peer) return false;
    const st = peerState(peer);
    this.#zeroAndFlushAll(peer);
    st.timers.stop();
    st.handshake.destroy();
    this.#byKey.delete(keyOf(publicKey));
    this.#peers.splice(this.#peers.indexOf(peer), 1);
    return true;
  }

  /** A new static key (null: none): every session is dropped (new handshakes follow on
   * demand); a peer whose public key is the new one's is removed, as wireguard-go does. */
  setPrivateKey(privateKey: Uint8Array | null): void {
    this.#identity?.privateKey.fill(0);
    const identity = privateKey === null ? null : identityOf(privateKey);
    this.#identity = identity;
    this.#checker = identity === null ? null : new CookieChecker(identity.publicKey, this.#random);
    for (const peer of [...this.#peers]) {
      if (identity !== null && equalBytes(peer.publicKey, identity.publicKey)) {
        this.removePeer(peer.publicKey);
        continue;
      }
      this.#zeroAndFlushAll(peer);
      const hs = peerState(peer).handshake;
      hs.precompute(identity);
      hs.lastSentHandshake = -Infinity;
    }
  }

  /** The preshared key the peer's next handshake mixes in (null: none); the session in use
   * keeps going until then. */
  setPresharedKey(peer: WgPeer, presharedKey: Uint8Array | null): void {
    if (presharedKey !== null) checkLength(`peer ${peer.name}: presharedKey`, presharedKey, KEY_LEN);
    peerState(peer).handshake.setPresharedKey(presharedKey);
  }

  /** A new persistent keepalive interval (seconds, 0: off). Turned on, a keepalive goes at once
   * if the peer's endpoint is known, as wireguard-go does. */
  setPersistentKeepalive(peer: WgPeer, seconds: number, now: number): void {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 65535) throw new RangeError(`peer ${peer.name}: persistentKeepalive ${seconds} is not an integer 0-65535`);
    const st = peerState(peer);
    const was = st.timers.persistentKeepaliveInterval;
    st.timers.persistentKeepaliveInterval = seconds * 1000;
    if (seconds > 0 && was === 0 && st.endpoint !== null) this.#sendKeepalive(peer, now);
  }

  /** Whether the peer has a session to send on (a current keypair). */
  hasSession(peer: WgPeer): boolean {
    return peerState(peer).keypairs.current !== null;
  }

  /** Sends a handshake initiation now, whatever REKEY_TIMEOUT says (the socket moved to another
   * port: the peer learns the new one from it within a round trip). Needs a known endpoint. */
  initiateHandshake(peer: WgPeer, now: number): void {
    if (peer.endpoint === null) return;
    peerState(peer).handshake.lastSentHandshake = -Infinity;
    this.#sendHandshakeInitiation(peer, now, false);
  }

  toJSON(): object {
    return { peers: this.#peers.map((p) => p.toJSON()), slotsInUse: this.#table.used };
  }

  // ---- handshake messages ----

  #handshakeMessage(msg: Uint8Array, source: Uint8Array, now: number): WgDropReason {
    const type = handshakeType(msg);
    if (type === 0) return WgDrop.BadSize;
    if (type === MSG_COOKIE_REPLY) {
      // Unauthenticated until it opens under our last MAC1: never moves the endpoint.
      const entry = this.#table.lookup(senderIndex(msg));
      if (!entry) return WgDrop.UnknownIndex;
      if (!peerState(entry.peer).cookies.consumeReply(msg, now)) return WgDrop.BadCookie;
      entry.peer.counters.cookiesReceived++;
      return WgDrop.None;
    }
    const underLoad = this.#countLoad(now);
    // No private key: nothing is addressed to us yet (wireguard-go drops these silently).
    if (this.#checker === null || !this.#checker.checkMac1(msg)) return WgDrop.BadMac1;
    if (underLoad) {
      if (!this.#checker.checkMac2(msg, source, now)) {
        this.#effects.send(Uint8Array.from(source), this.#checker.createReply(msg, source, now), null);
        if (type !== MSG_INITIATION) {
          const entry = this.#table.lookup(decodeResponse(msg)!.receiver);
          if (entry) entry.peer.counters.cookiesSent++;
        }
        return WgDrop.CookieSent;
      }
      if (!this.#limiter.allow(source, now)) return WgDrop.RateLimited;
    }
    return type === MSG_INITIATION ? this.#onInitiation(msg, source, now) : this.#onResponse(msg, source, now);
  }

  /** Counts a handshake message; true while the device is under load (sticky for a second). */
  #countLoad(now: number): boolean {
    if (now - this.#loadWindowStart >= 1000) {
      this.#loadWindowStart = now;
      this.#loadCount = 0;
    }
    if (++this.#loadCount > this.#loadThreshold) this.#underLoadUntil = now + UNDER_LOAD_AFTER_TIME;
    return now < this.#underLoadUntil;
  }

  #onInitiation(msg: Uint8Array, source: Uint8Array, now: number): WgDropReason {
    const found: { peer: WgPeer | null } = { peer: null };
    const consumed = consumeInitiation(this.#identity!, msg, now, (pub) => {
      found.peer = this.#byKey.get(keyOf(pub)) ?? null;
      return found.peer ? peerState(found.peer).handshake : null;
    });
    if (!consumed.ok) return consumed.reason;
    const peer = found.peer!;
    const st = peerState(peer);
    const hs = st.handshake;
    st.timers.anyAuthenticatedPacketTraversal(now);
    st.timers.anyAuthenticatedPacketReceived();
    this.#roam(peer, source);
    this.#effects.handshakeReceived?.(peer, msg.length);

    // Respond. Our own initiation in flight, if any, is superseded: its index dies here.
    hs.lastSentHandshake = now;
    this.#freeHandshakeSlot(hs);
    const entry = this.#table.allocate(peer);
    if (!entry) {
      hs.clear();
      return WgDrop.NoSlot;
    }
    hs.slot = entry.slot;
    const ephemeral = this.#ephemeral();
    const response = createResponse(hs, entry.index, ephemeral);
    ephemeral.fill(0);
    if (!response) {
      this.#freeHandshakeSlot(hs);
      hs.clear();
      return WgDrop.DecryptionFailed;
    }
    st.cookies.addMacs(response, now);
    this.#newKeypair(peer, deriveKeys(hs)!, now);
    st.timers.sessionDerived(now);
    st.timers.anyAuthenticatedPacketTraversal(now);
    st.timers.anyAuthenticatedPacketSent();
    this.#send(peer, response);
    return WgDrop.None;
  }

  #onResponse(msg: Uint8Array, source: Uint8Array, now: number): WgDropReason {
    const receiver = decodeResponse(msg)!.receiver;
    const entry = this.#table.lookup(receiver);
    if (!entry || entry.keypair) return WgDrop.UnknownIndex;
    const peer = entry.peer;
    const st = peerState(peer);
    const hs = st.handshake;
    if (hs.localIndex !== receiver || hs.state !== HandshakeState.InitiationCreated) return WgDrop.UnknownIndex;
    if (!consumeResponse(this.#identity!, hs, msg)) return WgDrop.DecryptionFailed;
    this.#roam(peer, source);
    this.#effects.handshakeReceived?.(peer, msg.length);
    st.timers.anyAuthenticatedPacketTraversal(now);
    st.timers.anyAuthenticatedPacketReceived();
    this.#newKeypair(peer, deriveKeys(hs)!, now);
    st.timers.sessionDerived(now);
    this.#handshakeComplete(peer);
    // The responder uses the keypair only once it sees data on it: give it some.
    if (this.#effects.keypairReady(peer) !== true) this.#sendKeepalive(peer, now);
    return WgDrop.None;
  }

  // ---- keypairs ----

  #newKeypair(peer: WgPeer, keys: TransportKeys, now: number): void {
    const kp = new Keypair({ ...keys, created: now });
    this.#table.setKeypair(kp.slot, kp);
    kp.release((sendKey, recvKey) => this.#effects.installKeypair(kp.slot, kp.localIndex, kp.remoteIndex, sendKey, recvKey));
    const kps = peerState(peer).keypairs;
    if (keys.isInitiator) kps.installInitiator(kp, this.#retire);
    else kps.installResponder(kp, this.#retire);
  }

  /** Messages sent with kp >= limit (a bigint past 2^53). A count that is still a number is
   * under every limit, so the per-packet check needs no BigInt comparison. */
  #sentAtLeast(kp: Keypair, limit: bigint): boolean {
    const sent = this.#sendCounter ? this.#sendCounter(kp.slot) : kp.sent;
    return typeof sent === "number" && sent < Number.MAX_SAFE_INTEGER ? false : sent >= limit;
  }

  #usableCurrent(peer: WgPeer, now: number): Keypair | null {
    const kp = peerState(peer).keypairs.current;
    if (!kp || now - kp.created >= REJECT_AFTER_TIME || this.#sentAtLeast(kp, REJECT_AFTER_MESSAGES)) return null;
    return kp;
  }

  #handshakeComplete(peer: WgPeer): void {
    peerState(peer).timers.handshakeComplete();
    peer.counters.handshakesCompleted++;
    peer.counters.lastHandshakeTime = Number(this.#wallClock() / 1_000_000n);
  }

  #freeHandshakeSlot(hs: Handshake): void {
    if (hs.slot >= 0) this.#table.free(hs.slot);
    hs.slot = -1;
  }

  /** Erases every keypair and the handshake in progress (after 3 x REJECT_AFTER_TIME without
   * a new session, on removal, on a new private key). */
  #zeroAndFlushAll(peer: WgPeer): void {
    const st = peerState(peer);
    st.keypairs.clear(this.#retire);
    this.#freeHandshakeSlot(st.handshake);
    st.handshake.clear();
  }

  // ---- sending ----

  #sendHandshakeInitiation(peer: WgPeer, now: number, isRetry: boolean): void {
    const st = peerState(peer);
    const hs = st.handshake;
    if (!isRetry) st.timers.handshakeAttempts = 0;
    const identity = this.#identity;
    if (identity === null || now - hs.lastSentHandshake < REKEY_TIMEOUT) return;
    hs.lastSentHandshake = now;
    this.#freeHandshakeSlot(hs);
    hs.clear();
    const entry = this.#table.allocate(peer);
    if (!entry) return;
    hs.slot = entry.slot;
    const ephemeral = this.#ephemeral();
    const msg = createInitiation(identity, hs, entry.index, ephemeral, tai64n(this.#wallClock()));
    ephemeral.fill(0);
    if (!msg) {
      this.#freeHandshakeSlot(hs);
      hs.clear();
      return;
    }
    st.cookies.addMacs(msg, now);
    st.timers.anyAuthenticatedPacketTraversal(now);
    st.timers.anyAuthenticatedPacketSent();
    this.#send(peer, msg);
    st.timers.handshakeInitiated(now);
    peer.counters.handshakesInitiated++;
  }

  #sendKeepalive(peer: WgPeer, now: number): void {
    const kp = this.#usableCurrent(peer, now);
    if (!kp) {
      this.#sendHandshakeInitiation(peer, now, false);
      return;
    }
    const st = peerState(peer);
    addSent(kp, 1);
    st.timers.anyAuthenticatedPacketTraversal(now);
    st.timers.anyAuthenticatedPacketSent();
    this.#effects.sendKeepalive(peer, kp.slot);
    this.#keepKeyFreshSending(peer, now);
  }

  /** Rekey after messages, or after time for the initiator of the current keypair. */
  #keepKeyFreshSending(peer: WgPeer, now: number): void {
    const kp = peerState(peer).keypairs.current;
    if (!kp) return;
    if (this.#sentAtLeast(kp, PAST_REKEY_AFTER_MESSAGES) || (kp.isInitiator && now - kp.created > REKEY_AFTER_TIME)) {
      this.#sendHandshakeInitiation(peer, now, false);
    }
  }

  /** An initiator hearing data on an old keypair rekeys once, before it must reject it. */
  #keepKeyFreshReceiving(peer: WgPeer, now: number): void {
    const st = peerState(peer);
    if (st.timers.sentLastMinuteHandshake) return;
    const kp = st.keypairs.current;
    if (kp && kp.isInitiator && now - kp.created > REKEY_ON_RECEIVE_TIME) {
      st.timers.sentLastMinuteHandshake = true;
      this.#sendHandshakeInitiation(peer, now, false);
    }
  }

  #send(peer: WgPeer, msg: Uint8Array): void {
    const ep = peer.endpoint;
    if (ep) this.#effects.send(ep, msg, peer);
  }

  /** The endpoint follows the latest authenticated message (a fresh copy when it changes). */
  #roam(peer: WgPeer, source: Uint8Array): void {
    const st = peerState(peer);
    if (st.endpoint && sameBytes(st.endpoint, source)) return;
    st.endpoint = Uint8Array.from(source);
  }

  // ---- timers ----

  #onTimer(peer: WgPeer, name: TimerNameValue, now: number): void {
    const st = peerState(peer);
    switch (name) {
      case TimerName.RetransmitHandshake:
        if (st.timers.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
          st.timers.gaveUp(now);
          peer.counters.handshakesFailed++;
          this.#effects.gaveUp(peer);
        } else {
          st.timers.handshakeAttempts++;
          this.#sendHandshakeInitiation(peer, now, true);
        }
        break;
      case TimerName.SendKeepalive:
        this.#sendKeepalive(peer, now);
        st.timers.keepaliveSent(now);
        break;
      case TimerName.NewHandshake:
        this.#sendHandshakeInitiation(peer, now, false);
        break;
      case TimerName.ZeroKeyMaterial:
        this.#zeroAndFlushAll(peer);
        break;
      case TimerName.PersistentKeepalive:
        if (st.timers.persistentKeepaliveInterval > 0) this.#sendKeepalive(peer, now);
        break;
    }
  }

  // ---- randomness ----

  #ephemeral(): Uint8Array {
    return clamp(Uint8Array.from(this.#random(KEY_LEN)));
  }

  /** Drawn after most data sends (each answer disarms NEW_HANDSHAKE, the next send re-arms
   * it), so taken from a block of random bytes: a random call per draw would allocate on the
   * data path. */
  #jitter(): number {
    if (this.#jitterAt >= this.#jitterBytes.length) {
      this.#jitterBytes = this.#random(JITTER_BLOCK);
      this.#jitterAt = 0;
    }
    const r = this.#jitterBytes, i = this.#jitterAt;
    this.#jitterAt += 2;
    return (r[i] | (r[i + 1] << 8)) % REKEY_TIMEOUT_JITTER_MAX;
  }
}

function identityOf(privateKey: Uint8Array): StaticIdentity {
  checkLength("privateKey", privateKey, KEY_LEN);
  const priv = Uint8Array.from(privateKey);
  return { privateKey: priv, publicKey: publicKeyOf(priv) };
}

function checkLength(field: string, value: Uint8Array, len: number): void {
  if (!(value instanceof Uint8Array) || value.length !== len) {
    const what = value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
    throw new RangeError(`${field}: ${what}, expected ${len} bytes`);
  }
}

/** Counts n more messages sent with kp: a number while that is exact (no allocation per
 * batch), a bigint past 2^53 (the limits are 2^60 and about 2^64). */
function addSent(kp: Keypair, n: number): void {
  const sent = kp.sent;
  kp.sent = typeof sent === "number" && sent + n <= Number.MAX_SAFE_INTEGER ? sent + n : BigInt(sent) + BigInt(n);
}

/** Byte equality without Buffer.compare's argument checks (it runs per received batch). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function keyOf(publicKey: Uint8Array): string {
  return Buffer.from(publicKey).toString("hex");
}
