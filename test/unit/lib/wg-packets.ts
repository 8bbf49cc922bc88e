// Generators for the WireGuard network path: fast-check picks a small description of each
// datagram (which keypair, which counter, what is inside, what to break); the builder seals
// it with node:crypto, keeping per keypair the next counter and the messages already made,
// so replays and late or far-ahead counters are real ones. The oracle judges the bytes
// (test/unit/lib/wg-oracle.ts); the names here only steer generation.
import fc from "fast-check";
import { mac } from "../../../src/wireguard/crypto.ts";
import { buildDatagramFrom, buildIp, buildSource, innerDescArb, NET_FAULTS, noise, Rng, sourceArb } from "./packets.ts";
import type { InnerDesc, SourceSpec, WireDatagram } from "./packets.ts";
import { paddingFor, sealExact } from "./wg-messages.ts";
import { DATA_HEADER, HANDSHAKE_SIZES, REJECT_AFTER_MESSAGES, REPLAY_WINDOW, TAG } from "./wg-oracle.ts";
import { sealedKey } from "./wg-world-path.ts";
import type { WgKeypair, WgWorld } from "./wg-world-path.ts";
import { MTU, WIRE_HEADER } from "./world.ts";

export const WG_KINDS = [
  "data", // a sound packet, padded as wireguard-go pads
  "keepalive", // an empty plaintext
  "odd-padding", // padding of any length and bytes (only the IP length says where the packet ends)
  "bit-flip", // one byte changed anywhere: header, ciphertext or tag
  "truncate", // bytes cut off the end (the tag moves), or below a data header and tag
  "extend", // bytes after the tag
  "unknown-index", // a receiver index no live keypair has
  "wrong-key", // sealed with another key
  "reserved", // a data message with reserved bytes set
  "handshake", // type 1-3 at the right size (noise: bad MAC1; a cookie reply: unknown index) or not
  "handshake-mac1", // type 1 or 2 at the right size with a valid MAC1 (nothing else holds)
  "other-type", // a first byte that is no message type
  "empty", // a datagram of 0 bytes
  "oversize", // a sound packet larger than the MTU, sealed
] as const;

const KIND_WEIGHTS = [40, 6, 5, 8, 5, 3, 5, 3, 2, 5, 1, 3, 1, 3];

export const COUNTER_MODES = [
  "next", // the keypair's next counter
  "skip", // jump a little ahead (leaves gaps the "late" ones fill)
  "late", // any counter behind the next, inside the window or not, seen or not
  "replay", // a message made before, byte for byte
  "far", // at the window's edge ahead, or a long way ahead
  "limit", // around REJECT_AFTER_MESSAGES
] as const;

const COUNTER_WEIGHTS = [70, 8, 8, 8, 4, 1];

/** Inner-packet faults of the plain suite that apply inside an opened message. */
const INNER_FAULTS = [
  "none", "v4-total-lies", "v4-ihl-lies", "v4-bad-checksum", "inner-cut", "v6-payload-lies", "inner-version",
  "checksum-negzero", "garbage", "inner-padded",
].map((f) => NET_FAULTS.indexOf(f as (typeof NET_FAULTS)[number]));

export interface WgDatagramDesc {
  from: SourceSpec;
  kind: number;
  keypair: number;
  counter: number;
  /** The inner packet (its fault mapped onto INNER_FAULTS). */
  inner: InnerDesc;
  /** With GRO: messages in the datagram (1: alone). */
  train: number;
  /** What breaks in a train (0-2: nothing). */
  trainFault: number;
  arg: number;
}

const weighted = (weights: readonly number[]): fc.Arbitrary<number> =>
  fc.oneof(...weights.map((weight, i) => ({ weight, arbitrary: fc.constant(i) })));

export const wgDatagramDescArb: fc.Arbitrary<WgDatagramDesc> = fc.record({
  from: sourceArb,
  kind: weighted(KIND_WEIGHTS),
  keypair: fc.nat({ max: 31 }),
  counter: weighted(COUNTER_WEIGHTS),
  inner: innerDescArb,
  train: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, { weight: 3, arbitrary: fc.integer({ min: 2, max: 8 }) }, { weight: 1, arbitrary: fc.integer({ min: 9, max: 64 }) }),
  trainFault: fc.nat({ max: 7 }),
  arg: fc.nat(),
});

const U64_MAX = (1n << 64n) - 1n;

interface KeypairState {
  next: bigint;
  made: Buffer[];
}

/** Builds a run's datagrams in order, keeping each keypair's counters and history. */
export class WgBuilder {
  private readonly world: WgWorld;
  private readonly state = new Map<WgKeypair, KeypairState>();
  private readonly gro: boolean;
  /** What the last message sealed held: the rest of a train carries it again. */
  private lastPlaintext: Uint8Array = new Uint8Array(0);

  constructor(world: WgWorld, gro: boolean) {
    this.world = world;
    this.gro = gro;
  }

  build(d: WgDatagramDesc): WireDatagram {
    const { source } = buildSource(d.from, this.world.fx);
    const kp = this.world.keypairs[d.keypair % this.world.keypairs.length];
    const r = new Rng(d.arg);
    const kind = WG_KINDS[d.kind];
    const first = this.message(d, kp, r, kind);
    const plain = this.lastPlaintext;
    const trainable = this.gro && (kind === "data" || kind === "keepalive") && plain.length + DATA_HEADER + TAG === first.length;
    const count = trainable ? Math.min(d.train, Math.floor(65535 / first.length)) : 1;
    if (count <= 1) return { bytes: first, length: first.length, source, ...(this.gro && r.below(4) === 0 ? { seg: first.length } : {}) };
    // A GRO train: the kernel merges datagrams of one size from one source; the last may be shorter.
    const parts = [first];
    for (let j = 1; j < count; j++) parts.push(this.seal(kp, this.counter(kp, "next", r), plain));
    const j = 1 + r.below(count - 1);
    switch (d.trainFault) {
      case 3:
        parts[j] = Buffer.from(parts[j]);
        parts[j][r.below(parts[j].length)] ^= 1 + r.below(255);
        break;
      case 4:
        parts[j] = parts[j - 1]; // the same message twice in one datagram
        break;
      case 5:
        parts[j] = Buffer.from(parts[j]);
        parts[j].writeUInt32LE(this.world.unknown[r.below(this.world.unknown.length)], 4);
        break;
      case 6: {
        // A shorter last message: a keepalive on the same keypair, or a short packet.
        const inner = r.below(2) === 0 ? Buffer.alloc(0) : this.inner(d, kp, r, first.length - DATA_HEADER - TAG - 16);
        parts[count - 1] = this.seal(kp, this.counter(kp, "next", r), this.pad(inner));
        break;
      }
      case 7:
        parts[count - 1] = Buffer.from(noise(d.inner.ip.noiseOff, 1 + r.below(first.length)));
        break;
    }
    const bytes = Buffer.concat(parts);
    return { bytes, length: bytes.length, source, seg: first.length };
  }

  private stateOf(kp: WgKeypair): KeypairState {
    let s = this.state.get(kp);
    if (s === undefined) this.state.set(kp, (s = { next: 0n, made: [] }));
    return s;
  }

  private counter(kp: WgKeypair, mode: (typeof COUNTER_MODES)[number], r: Rng): bigint {
    const s = this.stateOf(kp);
    switch (mode) {
      case "skip":
        s.next += BigInt(1 + r.below(100));
        break;
      case "late": {
        if (s.next === 0n) break;
        const back = BigInt(1 + r.below(r.below(4) === 0 ? 20_000 : 200));
        return back > s.next ? 0n : s.next - back;
      }
      case "far":
        s.next += r.below(2) === 0 ? REPLAY_WINDOW - 2n + BigInt(r.below(5)) : 1n << BigInt(14 + r.below(48));
        break;
      case "limit":
        // Not kept as the next: a keypair's window that took the last counters refuses all
        // the rest as replayed, which would leave little of the run to deliver.
        return REJECT_AFTER_MESSAGES + BigInt(r.below(4)) - 2n;
    }
    if (s.next > U64_MAX) s.next = U64_MAX;
    if (s.next >= REJECT_AFTER_MESSAGES) return s.next;
    return s.next++;
  }

  private seal(kp: WgKeypair, counter: bigint, plaintext: Uint8Array, key: Uint8Array = kp.key): Buffer {
    const m = sealFor(this.world, kp, counter, plaintext, key);
    this.lastPlaintext = plaintext;
    const s = this.stateOf(kp);
    s.made.push(m);
    if (s.made.length > 16) s.made.shift();
    return m;
  }

  /** An inner packet from the keypair's peer (or, for source faults, from anyone). */
  private inner(d: WgDatagramDesc, kp: WgKeypair, r: Rng, max = MTU): Buffer {
    const fault = INNER_FAULTS[d.inner.fault % INNER_FAULTS.length];
    const desc: InnerDesc = { ...d.inner, fault: d.inner.fault === 0 ? 0 : fault, ip: { ...d.inner.ip, size: Math.min(d.inner.ip.size, max) } };
    const b = buildDatagramFrom(desc, this.world.fx, new Uint8Array(20), kp.peer).bytes.subarray(WIRE_HEADER);
    return Buffer.from(b.length > max ? b.subarray(0, Math.max(0, max)) : b);
  }

  private pad(inner: Uint8Array): Buffer {
    return Buffer.concat([inner, Buffer.alloc(paddingFor(inner.length, MTU))]);
  }

  private message(d: WgDatagramDesc, kp: WgKeypair, r: Rng, kind: (typeof WG_KINDS)[number]): Buffer {
    const mode = COUNTER_MODES[d.counter];
    const s = this.stateOf(kp);
    if (mode === "replay" && s.made.length > 0 && (kind === "data" || kind === "keepalive")) {
      this.lastPlaintext = new Uint8Array(0);
      return s.made[r.below(s.made.length)];
    }
    switch (kind) {
      case "data":
        return this.seal(kp, this.counter(kp, mode, r), this.pad(this.inner(d, kp, r)));
      case "keepalive":
        return this.seal(kp, this.counter(kp, mode, r), new Uint8Array(0));
      case "odd-padding": {
        const inner = this.inner(d, kp, r);
        return this.seal(kp, this.counter(kp, mode, r), Buffer.concat([inner, noise(d.arg, r.below(32))]));
      }
      case "bit-flip": {
        const m = Buffer.from(this.seal(kp, this.counter(kp, mode, r), this.pad(this.inner(d, kp, r))));
        const at = r.below(3) === 0 ? r.below(DATA_HEADER) : DATA_HEADER + r.below(m.length - DATA_HEADER);
        m[at] ^= 1 << r.below(8);
        return m;
      }
      case "truncate": {
        const m = this.seal(kp, this.counter(kp, mode, r), this.pad(this.inner(d, kp, r)));
        return m.subarray(0, r.below(4) === 0 ? r.below(DATA_HEADER + TAG) : m.length - 1 - r.below(Math.min(m.length - 1, 40)));
      }
      case "extend": {
        const m = this.seal(kp, this.counter(kp, mode, r), this.pad(this.inner(d, kp, r, MTU - 32)));
        return Buffer.concat([m, noise(d.arg, 1 + r.below(16))]);
      }
      case "unknown-index": {
        const m = Buffer.from(this.seal(kp, this.counter(kp, mode, r), this.pad(this.inner(d, kp, r))));
        const u = this.world.unknown;
        m.writeUInt32LE(r.below(4) === 0 ? r.next() : u[r.below(u.length)], 4);
        return m;
      }
      case "wrong-key": {
        const others = this.world.keypairs.filter((k) => k !== kp);
        const key = others.length > 0 && r.below(2) === 0 ? others[r.below(others.length)].key : noise(d.arg, 32);
        return this.seal(kp, this.counter(kp, mode, r), this.pad(this.inner(d, kp, r)), key);
      }
      case "reserved": {
        const m = Buffer.from(this.seal(kp, this.counter(kp, mode, r), this.pad(this.inner(d, kp, r))));
        m[1 + r.below(3)] = 1 + r.below(255);
        return m;
      }
      case "handshake": {
        const type = 1 + r.below(3);
        const right = HANDSHAKE_SIZES[type];
        const size = r.below(3) === 0 ? r.below(200) : right;
        const m = Buffer.from(noise(d.arg, size));
        if (size > 0) m[0] = type;
        if (size >= 4) m.fill(0, 1, 4);
        if (size >= 4 && r.below(8) === 0) m[1 + r.below(3)] = 1 + r.below(255);
        return m;
      }
      case "handshake-mac1": {
        const type = 1 + r.below(2);
        const size = HANDSHAKE_SIZES[type];
        const m = Buffer.from(noise(d.arg, size));
        m.set([type, 0, 0, 0], 0);
        m.set(mac(this.world.handshake.mac1Key, m.subarray(0, size - 32)), size - 32);
        return m;
      }
      case "other-type": {
        const m = Buffer.from(noise(d.arg, 1 + r.below(200)));
        m[0] = [0, 5, 6, 0x14, 0x41, 0xff][r.below(6)];
        return m;
      }
      case "empty":
        return Buffer.alloc(0);
      case "oversize": {
        const len = MTU + 1 + r.below(r.below(4) === 0 ? 200 : 40);
        const ip = buildIp(d.inner.ip, this.world.fx, this.world.fx.peers[kp.peer].allowed, len, len);
        return this.seal(kp, this.counter(kp, mode, r), ip);
      }
    }
  }
}

/** Seals a data message for the keypair's index (with its own key unless another is given)
 * and, if the key is its own, records it for the oracle (WgWorld.sealed). */
export function sealFor(world: WgWorld, kp: WgKeypair, counter: bigint, plaintext: Uint8Array, key: Uint8Array = kp.key): Buffer {
  const m = sealExact(key, kp.index, counter, plaintext);
  if (key === kp.key) {
    const k = sealedKey(kp.index, counter);
    const list = world.sealed.get(k);
    if (list === undefined) world.sealed.set(k, [{ msg: m, plaintext }]);
    else list.push({ msg: m, plaintext });
  }
  return m;
}
