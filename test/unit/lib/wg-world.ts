// Two (or more) WgDevice instances on a fake clock, wired through recording effects: what one
// sends is queued and delivered to the other on demand; a fake native keypair table per side
// checks every install and removal, so a double removal or a reused live slot fails the test.
import { createCipheriv, createDecipheriv } from "node:crypto";
import { WgDevice } from "../../../src/wireguard/device.ts";
import type { WgEffects } from "../../../src/wireguard/device.ts";
import type { WgPeer } from "../../../src/wireguard/peer.ts";
import { encodeEndpoint, parseIp } from "../../../src/net/address.ts";
import { generatePrivateKey, publicKeyOf } from "../../../src/wireguard/x25519.ts";

export interface NativeKeypair {
  localIndex: number;
  remoteIndex: number;
  sendKey: Uint8Array;
  recvKey: Uint8Array;
  counter: bigint;
}

/** A small deterministic PRNG (mulberry32) as a byte source, so failures reproduce. */
export function seededRandom(seed: number): (n: number) => Uint8Array {
  let a = seed >>> 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      a = (a + 0x6d2b79f5) >>> 0;
      let x = Math.imul(a ^ (a >>> 15), 1 | a);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      out[i] = (x ^ (x >>> 14)) & 0xff;
    }
    return out;
  };
}

export function endpoint(ip: string, port: number): Uint8Array {
  return encodeEndpoint(parseIp(ip)!, port);
}

/** A recorded side effect, in order. */
export type Event =
  | { kind: "send"; to: Uint8Array; msg: Uint8Array; peer: WgPeer | null }
  | { kind: "handshakeReceived"; peer: WgPeer; bytes: number }
  | { kind: "install"; slot: number }
  | { kind: "remove"; slot: number }
  | { kind: "keepalive"; peer: WgPeer; slot: number }
  | { kind: "ready"; peer: WgPeer }
  | { kind: "gaveUp"; peer: WgPeer };

export class Side {
  readonly name: string;
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly endpoint: Uint8Array;
  readonly native = new Map<number, NativeKeypair>();
  readonly events: Event[] = [];
  /** Every slot ever installed, with how many times it was removed (must end at most 1 each life). */
  readonly installs: number[] = [];
  readonly removals: number[] = [];
  /** What keypairReady returns (true: "I flushed staged data"). */
  readyReturns = false;
  /** The size of every random draw the device made, in order. */
  readonly randomDraws: number[] = [];
  device!: WgDevice;

  constructor(name: string, ip: string, port: number) {
    this.name = name;
    this.privateKey = generatePrivateKey();
    this.publicKey = publicKeyOf(this.privateKey);
    this.endpoint = endpoint(ip, port);
  }

  effects(): WgEffects {
    return {
      send: (to, msg, peer) => this.events.push({ kind: "send", to: Uint8Array.from(to), msg: Uint8Array.from(msg), peer }),
      handshakeReceived: (peer, bytes) => this.events.push({ kind: "handshakeReceived", peer, bytes }),
      installKeypair: (slot, localIndex, remoteIndex, sendKey, recvKey) => {
        if (this.native.has(slot)) throw new Error(`${this.name}: slot ${slot} installed while live`);
        if ((localIndex & 0xfff) !== slot) throw new Error(`${this.name}: index ${localIndex} does not carry slot ${slot}`);
        this.native.set(slot, { localIndex, remoteIndex, sendKey: Uint8Array.from(sendKey), recvKey: Uint8Array.from(recvKey), counter: 0n });
        this.installs.push(slot);
        this.events.push({ kind: "install", slot });
      },
      removeKeypair: (slot) => {
        if (!this.native.delete(slot)) throw new Error(`${this.name}: slot ${slot} removed but not installed`);
        this.removals.push(slot);
        this.events.push({ kind: "remove", slot });
      },
      sendKeepalive: (peer, slot) => this.events.push({ kind: "keepalive", peer, slot }),
      keypairReady: (peer) => {
        this.events.push({ kind: "ready", peer });
        return this.readyReturns;
      },
      gaveUp: (peer) => this.events.push({ kind: "gaveUp", peer }),
    };
  }

  /** Events of a kind since index `from`. */
  of<K extends Event["kind"]>(kind: K, from = 0): Extract<Event, { kind: K }>[] {
    return this.events.slice(from).filter((e): e is Extract<Event, { kind: K }> => e.kind === kind);
  }

  /** Seals one data message with the native keypair in `slot`, as the C side would. */
  seal(slot: number, plaintext: Uint8Array): Uint8Array {
    const kp = this.native.get(slot);
    if (!kp) throw new Error(`${this.name}: no keypair in slot ${slot}`);
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64LE(kp.counter, 4);
    const c = createCipheriv("chacha20-poly1305", kp.sendKey, nonce, { authTagLength: 16 });
    const head = Buffer.alloc(16);
    head.writeUInt32LE(4, 0);
    head.writeUInt32LE(kp.remoteIndex, 4);
    head.writeBigUInt64LE(kp.counter, 8);
    kp.counter++;
    return Buffer.concat([head, c.update(plaintext), c.final(), c.getAuthTag()]);
  }

  /** Opens a data message as the C side would: slot from the receiver index, full index
   * compared, AEAD verified. Returns the slot and plaintext, or null. */
  open(msg: Uint8Array): { slot: number; plaintext: Uint8Array } | null {
    const b = Buffer.from(msg);
    if (b.readUInt32LE(0) !== 4 || b.length < 32) return null;
    const index = b.readUInt32LE(4);
    const slot = index & 0xfff;
    const kp = this.native.get(slot);
    if (!kp || kp.localIndex !== index) return null;
    const nonce = Buffer.alloc(12);
    b.copy(nonce, 4, 8, 16);
    const d = createDecipheriv("chacha20-poly1305", kp.recvKey, nonce, { authTagLength: 16 });
    d.setAuthTag(b.subarray(b.length - 16));
    try {
      return { slot, plaintext: Buffer.concat([d.update(b.subarray(16, b.length - 16)), d.final()]) };
    } catch {
      return null;
    }
  }
}

export interface WorldOptions {
  loadThreshold?: { a?: number; b?: number };
  persistentKeepalive?: { a?: number; b?: number };
  seed?: number;
}

/** Devices A and B, each the other's only peer, on one fake clock starting at 1000 s. */
export class World {
  now = 1_000_000;
  /** Wall clock = this epoch + now (so timestamps move with the fake clock). */
  wallEpochMs = 1_767_225_600_000;
  readonly a = new Side("A", "198.18.0.1", 51820);
  readonly b = new Side("B", "198.18.0.2", 51821);
  /** Messages in flight are dropped while `lossy`, or only those from `lossyFrom`. */
  lossy = false;
  lossyFrom: Side | null = null;
  readonly dataLog: { from: string; slot: number; keepalive: boolean; accepted: boolean }[] = [];
  #cursor = new Map<Side, number>();

  constructor(o: WorldOptions = {}) {
    const seed = o.seed ?? 1;
    const sides = [
      [this.a, this.b, o.persistentKeepalive?.a, o.loadThreshold?.a, seed],
      [this.b, this.a, o.persistentKeepalive?.b, o.loadThreshold?.b, seed + 7],
    ] as const;
    for (const [side, other, ka, load, s] of sides) {
      const random = seededRandom(s);
      side.device = new WgDevice({
        privateKey: side.privateKey,
        peers: [{ name: other.name, publicKey: other.publicKey, endpoint: other.endpoint, persistentKeepalive: ka ?? 0 }],
        effects: side.effects(),
        wallClock: () => BigInt(this.wallEpochMs + this.now) * 1_000_000n,
        random: (n) => (side.randomDraws.push(n), random(n)),
        loadThreshold: load,
      });
    }
  }

  other(side: Side): Side {
    return side === this.a ? this.b : this.a;
  }

  peerOf(side: Side): WgPeer {
    return side.device.peers[0];
  }

  /** Delivers everything sent since the last call, both ways, until quiet: handshake
   * messages to handshakeMessage, keepalives sealed and opened through the fake tables. */
  deliver(): void {
    for (let round = 0; round < 20; round++) {
      let moved = false;
      for (const from of [this.a, this.b]) {
        const to = this.other(from);
        const start = this.#cursor.get(from) ?? 0;
        const events = from.events.slice(start);
        this.#cursor.set(from, from.events.length);
        for (const e of events) {
          if (this.#lost(from)) continue;
          if (e.kind === "send") {
            moved = true;
            to.device.handshakeMessage(e.msg, from.endpoint, this.now);
          } else if (e.kind === "keepalive") {
            moved = true;
            this.#data(from, e.slot, true);
          }
        }
      }
      if (!moved) return;
    }
    throw new Error("messages kept flowing for 20 rounds");
  }

  /** Sends `count` data messages from `from` as the integrator would: asks for a slot; if
   * there is one, seals, delivers to the other side's table and reports dataSent. */
  sendData(from: Side, count = 1): boolean {
    const slot = from.device.sendingSlot(this.peerOf(from), this.now);
    if (slot < 0) return false;
    for (let i = 0; i < count; i++) this.#data(from, slot, false);
    from.device.dataSent(this.peerOf(from), this.now, count);
    return true;
  }

  #data(from: Side, slot: number, keepalive: boolean): void {
    const to = this.other(from);
    const msg = from.seal(slot, keepalive ? new Uint8Array(0) : new Uint8Array(32).fill(0x45));
    const opened = this.#lost(from) ? null : to.open(msg);
    let accepted = false;
    if (opened) accepted = to.device.dataReceived(opened.slot, from.endpoint, this.now, keepalive);
    this.dataLog.push({ from: from.name, slot, keepalive, accepted });
  }

  #lost(from: Side): boolean {
    return this.lossy || this.lossyFrom === from;
  }

  /** Advances the clock in steps of `step` ms, ticking both devices and delivering. */
  run(ms: number, step = 250, each?: () => void): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + step);
      this.a.device.tick(this.now);
      this.b.device.tick(this.now);
      this.deliver();
      each?.();
    }
  }
}

/** A world whose devices completed a handshake (A initiated, B confirmed by A's keepalive). */
export function established(o?: WorldOptions): World {
  const w = new World(o);
  w.a.device.sendingSlot(w.peerOf(w.a), w.now);
  w.deliver();
  if (w.a.native.size !== 1 || w.b.native.size !== 1) throw new Error("handshake did not complete");
  return w;
}
