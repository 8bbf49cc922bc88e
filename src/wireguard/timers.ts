// A peer's protocol timers (whitepaper 6; wireguard-go's timers.go). Each event function is
// named for the event that calls it and only records a deadline; `expired` is the one polled
// place that says which timers are due, and the device acts on them (device.ts, onTimer).
// Deadlines are `now` milliseconds; Infinity means not pending.
import { KEEPALIVE_TIMEOUT, REKEY_TIMEOUT, ZERO_KEY_MATERIAL_TIME } from "./constants.ts";

export const TimerName = {
  RetransmitHandshake: "retransmitHandshake",
  SendKeepalive: "sendKeepalive",
  NewHandshake: "newHandshake",
  ZeroKeyMaterial: "zeroKeyMaterial",
  PersistentKeepalive: "persistentKeepalive",
} as const;
export type TimerNameValue = (typeof TimerName)[keyof typeof TimerName];

const ALL: readonly TimerNameValue[] = Object.values(TimerName);

export class PeerTimers {
  readonly deadlines: Record<TimerNameValue, number> = {
    retransmitHandshake: Infinity,
    sendKeepalive: Infinity,
    newHandshake: Infinity,
    zeroKeyMaterial: Infinity,
    persistentKeepalive: Infinity,
  };
  handshakeAttempts = 0;
  needAnotherKeepalive = false;
  sentLastMinuteHandshake = false;
  /** Persistent keepalive interval in ms; 0 = off. */
  persistentKeepaliveInterval: number;
  /** 0 .. REKEY_TIMEOUT_JITTER_MAX - 1 ms, drawn per use. */
  readonly #jitter: () => number;

  constructor(persistentKeepaliveInterval: number, jitter: () => number) {
    this.persistentKeepaliveInterval = persistentKeepaliveInterval;
    this.#jitter = jitter;
  }

  pending(name: TimerNameValue): boolean {
    return this.deadlines[name] !== Infinity;
  }

  #mod(name: TimerNameValue, at: number): void {
    this.deadlines[name] = at;
  }

  #del(name: TimerNameValue): void {
    this.deadlines[name] = Infinity;
  }

  /** After an authenticated data message (not a keepalive) was sent: expect an answer. */
  dataSent(now: number): void {
    if (!this.pending(TimerName.NewHandshake)) this.#mod(TimerName.NewHandshake, now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.#jitter());
  }

  /** After an authenticated data message (not a keepalive) arrived: answer it if we stay silent. */
  dataReceived(now: number): void {
    if (!this.pending(TimerName.SendKeepalive)) this.#mod(TimerName.SendKeepalive, now + KEEPALIVE_TIMEOUT);
    else this.needAnotherKeepalive = true;
  }

  /** After any authenticated message was sent (data, keepalive, handshake): no keepalive owed. */
  anyAuthenticatedPacketSent(): void {
    this.#del(TimerName.SendKeepalive);
  }

  /** After any authenticated message arrived: the peer is alive, no new handshake needed. */
  anyAuthenticatedPacketReceived(): void {
    this.#del(TimerName.NewHandshake);
  }

  /** After an initiation was sent: retransmit unless answered. */
  handshakeInitiated(now: number): void {
    this.#mod(TimerName.RetransmitHandshake, now + REKEY_TIMEOUT + this.#jitter());
  }

  /** After a response was consumed, or the first data arrived on a responder's keypair. */
  handshakeComplete(): void {
    this.#del(TimerName.RetransmitHandshake);
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  /** After a keypair was derived: erase everything if no newer one follows in time. */
  sessionDerived(now: number): void {
    this.#mod(TimerName.ZeroKeyMaterial, now + ZERO_KEY_MATERIAL_TIME);
  }

  /** Before an authenticated message is sent, or after one arrived. */
  anyAuthenticatedPacketTraversal(now: number): void {
    if (this.persistentKeepaliveInterval > 0) this.#mod(TimerName.PersistentKeepalive, now + this.persistentKeepaliveInterval);
  }

  /** A new peer with a persistent keepalive sends one at the first poll, so it has a session
   * before any traffic (wireguard-go does so when the device comes up). */
  started(): void {
    if (this.persistentKeepaliveInterval > 0) this.#mod(TimerName.PersistentKeepalive, -Infinity);
  }

  /** After handshake attempts were exhausted: no keepalive, erase the residue later. */
  gaveUp(now: number): void {
    this.#del(TimerName.SendKeepalive);
    if (!this.pending(TimerName.ZeroKeyMaterial)) this.#mod(TimerName.ZeroKeyMaterial, now + ZERO_KEY_MATERIAL_TIME);
  }

  /** After the keepalive timer fired: once more if data arrived meanwhile. */
  keepaliveSent(now: number): void {
    if (this.needAnotherKeepalive) {
      this.needAnotherKeepalive = false;
      this.#mod(TimerName.SendKeepalive, now + KEEPALIVE_TIMEOUT);
    }
  }

  /** The timers due at `now`, earliest first; each is disarmed as it is returned. */
  expired(now: number): TimerNameValue[] {
    const due = ALL.filter((n) => this.deadlines[n] <= now).sort((a, b) => this.deadlines[a] - this.deadlines[b]);
    for (const n of due) this.#del(n);
    return due;
  }

  nextDeadline(): number {
    return Math.min(...ALL.map((n) => this.deadlines[n]));
  }

  stop(): void {
    for (const n of ALL) this.#del(n);
    this.handshakeAttempts = 0;
    this.needAnotherKeepalive = false;
    this.sentLastMinuteHandshake = false;
  }
}
