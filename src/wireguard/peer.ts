// A WireGuard peer as the integrator sees it: name, public key, endpoint and counters. The
// protocol state (handshake, keypairs, timers, cookie) sits in a private field that only the
// device reaches (peerState), so neither toJSON nor util.inspect can print key material.
import { CookieGenerator } from "./cookie.ts";
import { Handshake } from "./noise.ts";
import type { StaticIdentity } from "./noise.ts";
import { Keypairs } from "./keypairs.ts";
import { PeerTimers } from "./timers.ts";
import { formatEndpoint } from "../net/address.ts";

export interface WgPeerConfig {
  name: string;
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** udptun's 20-byte endpoint form (src/net/address.ts); absent until the peer shows up. */
  endpoint?: Uint8Array;
  /** Seconds; 0 or absent = off. */
  persistentKeepalive?: number;
}

/** Plain counters the integrator exports as metrics (read at scrape time). */
export interface WgPeerCounters {
  /** Wall-clock ms of the last completed handshake; 0 = never. */
  lastHandshakeTime: number;
  /** Initiations we sent (retransmissions included). */
  handshakesInitiated: number;
  /** Handshakes that produced a confirmed keypair (either role). */
  handshakesCompleted: number;
  /** Times we gave up after REKEY_ATTEMPT_TIME of unanswered initiations. */
  handshakesFailed: number;
  /** Cookie replies we sent in answer to this peer's responses under load. */
  cookiesSent: number;
  /** Cookie replies from this peer that opened. */
  cookiesReceived: number;
}

/** What the device keeps per peer. */
export interface PeerState {
  handshake: Handshake;
  keypairs: Keypairs;
  timers: PeerTimers;
  cookies: CookieGenerator;
  endpoint: Uint8Array | null;
}

let stateOf: (p: WgPeer) => PeerState;

export class WgPeer {
  readonly name: string;
  readonly publicKey: Uint8Array;
  readonly counters: WgPeerCounters = {
    lastHandshakeTime: 0, handshakesInitiated: 0, handshakesCompleted: 0, handshakesFailed: 0, cookiesSent: 0, cookiesReceived: 0,
  };
  readonly #state: PeerState;

  static {
    stateOf = (p) => p.#state;
  }

  constructor(config: WgPeerConfig, local: StaticIdentity | null, jitter: () => number) {
    this.name = config.name;
    this.publicKey = Uint8Array.from(config.publicKey);
    const handshake = new Handshake(config.publicKey, config.presharedKey);
    handshake.precompute(local);
    this.#state = {
      handshake,
      keypairs: new Keypairs(),
      timers: new PeerTimers((config.persistentKeepalive ?? 0) * 1000, jitter),
      cookies: new CookieGenerator(config.publicKey),
      endpoint: config.endpoint ? Uint8Array.from(config.endpoint) : null,
    };
  }

  /** Where this peer's messages go: configured, then the source of its latest authenticated message. */
  get endpoint(): Uint8Array | null {
    return this.#state.endpoint;
  }

  /** The public key abbreviated as wireguard-go prints it ("peer(abcd…wxyz)"). */
  toString(): string {
    const b64 = Buffer.from(this.publicKey).toString("base64");
    return `peer(${b64.slice(0, 4)}…${b64.slice(39, 43)})`;
  }

  toJSON(): object {
    const ep = this.#state.endpoint;
    return { name: this.name, peer: this.toString(), endpoint: ep ? formatEndpoint(ep) : null, counters: this.counters };
  }
}

/** The protocol state of a peer: for device.ts only. */
export function peerState(peer: WgPeer): PeerState {
  return stateOf(peer);
}
