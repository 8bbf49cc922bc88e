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

const ALL: readonly TimerNameValue[] = [
  TimerName.RetransmitHandshake, TimerName.SendKeepalive, TimerName.NewHandshake, TimerName.ZeroKeyMaterial, TimerName.PersistentKeepalive,
];
// Each timer's position in ALL: its deadline's place in the Float64Array.
const RETRANSMIT_HANDSHAKE = 0;
const SEND_KEEPALIVE = 1;
const NEW_HANDSHAKE = 2;
const ZERO_KEY_MATERIAL = 3;
const PERSISTENT_KEEPALIVE = 4;
const NONE_DUE: readonly TimerNameValue[] = Object.freeze([]);

export class PeerTimers {
  // Deadlines in a Float64Array: the data path sets them per batch, and storing a double
  // there allocates nothing (a property would take a boxed number).
  readonly #at = new Float64Array(ALL.length).fill(Infinity);
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

  /** Every deadline by timer name (a copy, for tests and inspection). */
  get deadlines(): Record<TimerNameValue, number> {
    return Object.fromEntries(ALL.map((n, i) => [n, this.#at[i]])) as Record<TimerNameValue, number>;
  }

  pending(name: TimerNameValue): boolean {
    return this.#at[ALL.indexOf(name)] !== Infinity;
  }

  /** After an authenticated data message (not a keepalive) was sent: expect an answer. */
  dataSent(now: number): void {
    if (this.#at[NEW_HANDSHAKE] === Infinity) this.#at[NEW_HANDSHAKE] = now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.#jitter();
  }

  /** After an authenticated data message (not a keepalive) arrived: answer it if we stay silent. */
  dataReceived(now: number): void {
    if (this.#at[SEND_KEEPALIVE] === Infinity) this.#at[SEND_KEEPALIVE] = now + KEEPALIVE_TIMEOUT;
    else this.needAnotherKeepalive = true;
  }

  /** After any authenticated message was sent (data, keepalive, handshake): no keepalive owed. */
  anyAuthenticatedPacketSent(): void {
    this.#at[SEND_KEEPALIVE] = Infinity;
  }

  /** After any authenticated message arrived: the peer is alive, no new handshake needed. */
  anyAuthenticatedPacketReceived(): void {
    this.#at[NEW_HANDSHAKE] = Infinity;
  }

  /** After an initiation was sent: retransmit unless answered. */
  handshakeInitiated(now: number): void {
    this.#at[RETRANSMIT_HANDSHAKE] = now + REKEY_TIMEOUT + this.#jitter();
  }

  /** After a response was consumed, or the first data arrived on a responder's keypair. */
  handshakeComplete(): void {
    this.#at[RETRANSMIT_HANDSHAKE] = Infinity;
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  /** After a keypair was derived: erase everything if no newer one follows in time. */
  sessionDerived(now: number): void {
    this.#at[ZERO_KEY_MATERIAL] = now + ZERO_KEY_MATERIAL_TIME;
  }

  /** Before an authenticated message is sent, or after one arrived. */
  anyAuthenticatedPacketTraversal(now: number): void {
    if (this.persistentKeepaliveInterval > 0) this.#at[PERSISTENT_KEEPALIVE] = now + this.persistentKeepaliveInterval;
  }

  /** A new peer with a persistent keepalive sends one at the first poll, so it has a session
   * before any traffic (wireguard-go does so when the device comes up). */
  started(): void {
    if (this.persistentKeepaliveInterval > 0) this.#at[PERSISTENT_KEEPALIVE] = -Infinity;
  }

  /** After handshake attempts were exhausted: no keepalive, erase the residue later. */
  gaveUp(now: number): void {
    this.#at[SEND_KEEPALIVE] = Infinity;
    if (this.#at[ZERO_KEY_MATERIAL] === Infinity) this.#at[ZERO_KEY_MATERIAL] = now + ZERO_KEY_MATERIAL_TIME;
  }

  /** After the keepalive timer fired: once more if data arrived meanwhile. */
  keepaliveSent(now: number): void {
    if (this.needAnotherKeepalive) {
      this.needAnotherKeepalive = false;
      this.#at[SEND_KEEPALIVE] = now + KEEPALIVE_TIMEOUT;
    }
  }

  /** The timers due at `now`, earliest first; each is disarmed as it is returned. */
  expired(now: number): readonly TimerNameValue[] {
    const at = this.#at;
    let any = false;
    for (let i = 0; i < ALL.length; i++) any ||= at[i] <= now;
    if (!any) return NONE_DUE;
    const due = ALL.filter((_, i) => at[i] <= now).sort((a, b) => at[ALL.indexOf(a)] - at[ALL.indexOf(b)]);
    for (const n of due) at[ALL.indexOf(n)] = Infinity;
    return due;
  }

  nextDeadline(): number {
    return Math.min(...this.#at);
  }

  stop(): void {
    this.#at.fill(Infinity);
    this.handshakeAttempts = 0;
    this.needAnotherKeepalive = false;
    this.sentLastMinuteHandshake = false;
  }
}
