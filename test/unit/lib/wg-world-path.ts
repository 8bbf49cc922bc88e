// The WireGuard network path's world for the fuzz suite: per run, keypairs for the fixture's
// peers installed in the addon's real table (wgKeypairSet: fresh replay windows), a few
// receiver indices that must be unknown (never installed, retired, or a live slot's index
// with other high bits), and the Opener the real NetworkPath runs with.
//
// The Opener: per-packet crypto is the addon's own wgOpen; handshake messages go to a real
// WgDevice (src/wireguard), whose verdicts on what the fuzz sends (wrong sizes, bad MAC1s,
// unknown indices, well-MAC'd messages that do not open) depend on the bytes alone, with its
// load threshold out of reach. The session side (received, peerOf) is a recording stand-in:
// the keypairs come from this file, not from handshakes, so no WgDevice knows them, and the
// oracle must know which keypair is past REJECT_AFTER_TIME (the stand-in says so for the
// keypairs marked expired) and which calls the path makes.
import { addon, WG_HEADER_LEN, WG_KEYPAIR_SLOTS } from "../../../src/native/addon.ts";
import { HEADROOM } from "../../../src/tunnel/constants.ts";
import { Drop } from "../../../src/tunnel/drops.ts";
import type { Opener } from "../../../src/tunnel/network-path.ts";
import type { Peer } from "../../../src/tunnel/peers.ts";
import { HANDSHAKE_DROPS } from "../../../src/tunnel/wireguard.ts";
import { LABEL_MAC1 } from "../../../src/wireguard/constants.ts";
import { hash } from "../../../src/wireguard/crypto.ts";
import { WgDevice } from "../../../src/wireguard/device.ts";
import { WgDrop } from "../../../src/wireguard/drops.ts";
import { clamp, publicKeyOf } from "../../../src/wireguard/x25519.ts";
import { Rng } from "./packets.ts";
import type { Fixture } from "./world.ts";

/** Where a datagram lands in its buffer: the data header before the headroom, the plaintext at it. */
export const WG_START = HEADROOM - WG_HEADER_LEN;

export interface WgKeypair {
  slot: number;
  /** Our receiver index: its low bits are the slot. */
  index: number;
  /** What the peer seals with and we open with. */
  key: Buffer;
  /** Index into the fixture's peers. */
  peer: number;
  /** Past REJECT_AFTER_TIME: the stand-in refuses it (received() says false). */
  expired: boolean;
}

/** The handshake side: a WgDevice that knows every fixture peer's public key, and the MAC1
 * key a sender needs to get past its first check. */
export interface HandshakeSide {
  device: WgDevice;
  mac1Key: Uint8Array;
  /** The device's clock (ms), moved on by each message. */
  now: number;
}

/** A message sealed with its keypair's own key, and what it holds. */
export interface Sealed {
  msg: Buffer;
  plaintext: Uint8Array;
}

export interface WgWorld {
  fx: Fixture;
  keypairs: WgKeypair[];
  /** Receiver indices no live keypair has. */
  unknown: number[];
  handshake: HandshakeSide;
  /** Every message sealed with the right key this run, by sealedKey(index, counter): with an
   * AEAD, exactly these bytes (and no other) open, so the oracle needs no second decryption. */
  sealed: Map<string, Sealed[]>;
}

export function sealedKey(index: number, counter: bigint): string {
  return `${index}:${counter}`;
}

const refuse = (what: string) => (): never => {
  throw new Error(`handshake device: ${what} (no fuzz input completes a handshake or finds it under load)`);
};

const sides = new Map<Fixture, HandshakeSide>();

function handshakeSide(fx: Fixture): HandshakeSide {
  let side = sides.get(fx);
  if (side) return side;
  const r = new Rng(0x68616e64);
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => r.byte());
  const privateKey = clamp(bytes(32));
  const device = new WgDevice({
    privateKey,
    peers: fx.peers.map((p) => ({ name: p.name, publicKey: publicKeyOf(clamp(bytes(32))) })),
    effects: {
      send: refuse("send"), installKeypair: refuse("installKeypair"), removeKeypair: refuse("removeKeypair"),
      sendKeepalive: refuse("sendKeepalive"), keypairReady: refuse("keypairReady"), gaveUp: refuse("gaveUp"),
    },
    random: bytes,
    loadThreshold: Number.MAX_SAFE_INTEGER,
  });
  side = { device, mac1Key: hash(new TextEncoder().encode(LABEL_MAC1), device.publicKey!), now: 1_000_000 };
  sides.set(fx, side);
  return side;
}

/** A keypair installed and cleared before each run, in a slot no run uses otherwise. */
const retired = { slot: WG_KEYPAIR_SLOTS - 1, index: 0x5eed0000 | (WG_KEYPAIR_SLOTS - 1) };
const installed = new Set<number>();

/** Draws the run's keypairs: one or two per peer (every peer, also one with no endpoint: a
 * peer may roam in from anywhere), about one in sixteen past its time. */
export function buildWgWorld(fx: Fixture, seed: number): WgWorld {
  const r = new Rng(seed);
  const used = new Set<number>([retired.slot]);
  const freeSlot = (): number => {
    for (;;) {
      const slot = r.below(WG_KEYPAIR_SLOTS);
      if (!used.has(slot)) {
        used.add(slot);
        return slot;
      }
    }
  };
  const key = (): Buffer => Buffer.from(Uint8Array.from({ length: 32 }, () => r.byte()));
  const indexOf = (slot: number): number => ((r.next() & ~(WG_KEYPAIR_SLOTS - 1)) | slot) >>> 0;
  const keypairs: WgKeypair[] = [];
  fx.peers.forEach((_, peer) => {
    const n = r.below(3) === 0 ? 2 : 1;
    for (let k = 0; k < n; k++) {
      const slot = freeSlot();
      keypairs.push({ slot, index: indexOf(slot), key: key(), peer, expired: r.below(16) === 0 });
    }
  });
  const live = keypairs[r.below(keypairs.length)];
  const unknown = [
    indexOf(freeSlot()), // never installed
    (live.index ^ (WG_KEYPAIR_SLOTS << r.below(20))) >>> 0, // a live slot, another index
    retired.index, // installed and cleared: a retired keypair's index must stay dead
  ];
  return { fx, keypairs, unknown, handshake: handshakeSide(fx), sealed: new Map() };
}

/** Puts the world's keypairs in the addon's table (and nothing else): fresh windows, counters 0. */
export function installWorld(world: WgWorld): void {
  for (const slot of installed) addon.wgKeypairClear(slot);
  installed.clear();
  const filler = Buffer.alloc(32, 0x5a);
  addon.wgKeypairSet(retired.slot, retired.index, 0, filler, filler);
  addon.wgKeypairClear(retired.slot);
  for (const kp of world.keypairs) {
    if (kp.slot === retired.slot) throw new Error("world: the retired slot is in use");
    addon.wgKeypairSet(kp.slot, kp.index, 0x0badcafe, filler, kp.key);
    installed.add(kp.slot);
  }
}

/** Messages the addon accepted on the slot's keypair so far. */
export function acceptedOn(slot: number): number {
  const out = new Float64Array(2);
  addon.wgKeypairCounters(slot, out);
  return out[1];
}

export interface ReceivedCall {
  slot: number;
  source: Uint8Array;
  keepalive: boolean;
}

/** The Opener the fuzzed NetworkPath runs with (see the top of this file). */
export class FuzzOpener implements Opener {
  readonly calls: ReceivedCall[] = [];
  private readonly slotPeers = new Map<number, Peer>();
  private readonly expired = new Set<number>();
  private readonly side: HandshakeSide;

  constructor(world: WgWorld, peers: readonly Peer[]) {
    for (const kp of world.keypairs) {
      this.slotPeers.set(kp.slot, peers[kp.peer]);
      if (kp.expired) this.expired.add(kp.slot);
    }
    this.side = world.handshake;
  }

  peerOf(slot: number): Peer | null {
    return this.slotPeers.get(slot) ?? null;
  }

  received(slot: number, source: Uint8Array, keepalive: boolean): boolean {
    this.calls.push({ slot, source: Uint8Array.from(source), keepalive });
    return !this.expired.has(slot);
  }

  control(message: Uint8Array, source: Uint8Array): number {
    const side = this.side;
    side.now += 1000;
    const reason = side.device.handshakeMessage(message, source, side.now);
    // As WireGuardTransport.control maps it.
    return reason === WgDrop.None ? -1 : HANDSHAKE_DROPS[reason] ?? Drop.BadType;
  }

  open = addon.wgOpen;
}
