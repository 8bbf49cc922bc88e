// The WireGuard network path's oracle: its own reading of every datagram, from the wire
// format (whitepaper section 5.4, all little-endian), the addon's documented verdicts
// (src/native/addon.ts wgOpen) and the Opener contract (src/tunnel/network-path.ts), not by
// calling into src. A data message authenticates if it is, byte for byte, one the generator
// sealed (node:crypto) with that keypair's key: the AEAD's promise, with no second
// decryption. The replay window is a set of seen counters and the newest (the addon keeps
// a ring of bit blocks); MAC1 is computed with the primitives of src/wireguard/crypto.ts
// (keyed BLAKE2s has no node:crypto form).
import { mac } from "../../../src/wireguard/crypto.ts";
import { countDrop, emptyNetExpectation, expectWrite, judgeInner, showEndpoint } from "./oracle.ts";
import type { NetExpectation, Reason } from "./oracle.ts";
import type { WireDatagram } from "./packets.ts";
import { sealedKey } from "./wg-world-path.ts";
import type { ReceivedCall, WgKeypair, WgWorld } from "./wg-world-path.ts";

export const DATA_HEADER = 16;
export const TAG = 16;
/** Counters at or past this are never accepted: 2^64 - 2^13 - 1. */
export const REJECT_AFTER_MESSAGES = (1n << 64n) - (1n << 13n) - 1n;
/** How far behind the newest counter a message may still come (the kernel's and wireguard-go's). */
export const REPLAY_WINDOW = 8128n;
/** Handshake message sizes by type. */
export const HANDSHAKE_SIZES: Record<number, number> = { 1: 148, 2: 92, 3: 64 };

interface KeypairModel {
  kp: WgKeypair;
  newest: bigint;
  seen: Set<bigint>;
  accepted: number;
}

export interface WgExpectation extends NetExpectation {
  /** The Opener's received() calls, in order. */
  calls: ReceivedCall[];
  /** Messages each keypair accepted (by slot). */
  accepted: Map<number, number>;
  /** Messages seen (GRO segments counted one by one). */
  messages: number;
}

/** What the handshake side must say about a message that is not a data message. Nothing here
 * completes a handshake, and the device is never under load: null would mean "accepted". */
export function judgeHandshake(world: WgWorld, m: Uint8Array): Reason | null {
  if (m.length < 4 || m[1] !== 0 || m[2] !== 0 || m[3] !== 0) return "bad_size";
  const size = HANDSHAKE_SIZES[m[0]];
  if (size === undefined || m.length !== size) return "bad_size";
  // A cookie reply names one of our handshakes in flight; this device never starts one.
  if (m[0] === 3) return "unknown_index";
  const at = size - 32;
  const want = mac(world.handshake.mac1Key, m.subarray(0, at));
  for (let i = 0; i < 16; i++) if (want[i] !== m[at + i]) return "bad_mac";
  // MAC1 holds: an initiation's static key must open (these are noise), a response must
  // name a handshake of ours (there is none).
  return m[0] === 1 ? "decryption_failed" : "unknown_index";
}

/** What the message holds if it is one sealed with the keypair's key (an AEAD opens exactly
 * those bytes), else null. */
function open(world: WgWorld, index: number, counter: bigint, m: Uint8Array): Buffer | null {
  for (const s of world.sealed.get(sealedKey(index, counter)) ?? []) {
    if (s.msg.equals(m)) return Buffer.from(s.plaintext);
  }
  return null;
}

type MessageVerdict = { kind: "drop"; reason: Reason } | { kind: "control" } | { kind: "open"; model: KeypairModel; plaintext: Buffer };

function judgeMessage(world: WgWorld, byIndex: Map<number, KeypairModel>, m: Uint8Array): MessageVerdict {
  const drop = (reason: Reason): MessageVerdict => ({ kind: "drop", reason });
  if (m.length === 0 || m[0] !== 4) {
    const reason = judgeHandshake(world, m);
    return reason === null ? { kind: "control" } : drop(reason);
  }
  if (m.length < DATA_HEADER + TAG || m[1] !== 0 || m[2] !== 0 || m[3] !== 0) return drop("bad_header");
  const b = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
  const model = byIndex.get(b.readUInt32LE(4));
  if (model === undefined) return drop("unknown_index");
  const counter = b.readBigUInt64LE(8);
  if (counter >= REJECT_AFTER_MESSAGES) return drop("expired_keypair");
  const fresh = counter > model.newest || (model.newest - counter <= REPLAY_WINDOW && !model.seen.has(counter));
  if (!fresh) return drop("replayed");
  const plaintext = open(world, model.kp.index, counter, m);
  if (plaintext === null) return drop("decryption_failed");
  model.seen.add(counter);
  if (counter > model.newest) model.newest = counter;
  model.accepted++;
  return { kind: "open", model, plaintext };
}

/** The IP length the plaintext's header declares, if the plaintext holds it (the rest is padding); -1 if not. */
function declared(p: Buffer): number {
  let total = -1;
  if (p.length >= 20 && p[0] >> 4 === 4) total = p.readUInt16BE(2);
  else if (p.length >= 40 && p[0] >> 4 === 6) total = p.readUInt16BE(4) + 40;
  return total <= p.length ? total : -1;
}

/**
 * The whole run: datagrams in order, each cut into its GRO segments; the k-th packet handed
 * to the TUN device fails with tunFailures.get(k). maxDatagram: the most the path takes in
 * one datagram (MTU + 32, or the room with GRO); room: what fits the buffer.
 */
export function expectWireGuard(
  world: WgWorld, datagrams: readonly WireDatagram[], tunFailures: ReadonlyMap<number, number>, maxDatagram: number, room: number,
): WgExpectation {
  const { fx } = world;
  const e: WgExpectation = { ...emptyNetExpectation(fx), calls: [], accepted: new Map(), messages: 0 };
  const byIndex = new Map<number, KeypairModel>();
  for (const kp of world.keypairs) byIndex.set(kp.index, { kp, newest: 0n, seen: new Set(), accepted: 0 });
  let written = 0;
  for (const d of datagrams) {
    const where = showEndpoint(d.source);
    const count = (reason: Reason): void => countDrop(e, reason, where);
    // Longer than the path takes (or than the buffer holds: the kernel cut it): refused whole.
    if (d.length > room || d.length > maxDatagram) {
      e.messages++;
      count("oversize");
      continue;
    }
    const seg = d.seg !== undefined && d.seg > 0 && d.length > d.seg ? d.seg : Math.max(d.length, 1);
    // The Opener hears once per run of messages on one keypair, again when a run of
    // keepalives turns to data; a refusal (expired) holds for the rest of the run.
    let runSlot = -1;
    let runOk = false;
    let runData = false;
    for (let at = 0; at < Math.max(d.length, 1); at += seg) {
      e.messages++;
      const m = d.bytes.subarray(at, Math.min(at + seg, d.length));
      const v = judgeMessage(world, byIndex, m);
      if (v.kind === "drop") {
        count(v.reason);
        continue;
      }
      if (v.kind === "control") continue;
      const { kp } = v.model;
      const keepalive = v.plaintext.length === 0;
      if (kp.slot !== runSlot || (runOk && !runData && !keepalive)) {
        if (kp.slot !== runSlot) runData = false;
        runSlot = kp.slot;
        runData ||= !keepalive;
        runOk = !kp.expired;
        e.calls.push({ slot: kp.slot, source: d.source, keepalive });
      }
      if (!runOk) {
        count("expired_keypair");
        continue;
      }
      if (keepalive) {
        e.rx[kp.peer].keepalives++;
        continue;
      }
      const total = declared(v.plaintext);
      const o = total < 0 ? { kind: "drop" as const, reason: "malformed_ip" as Reason } : judgeInner(fx, kp.peer, v.plaintext.subarray(0, total));
      e.outcomes.push(o);
      if (o.kind === "drop") {
        count(o.reason);
        continue;
      }
      if (o.kind === "deliver") expectWrite(e, fx, kp.peer, o.inner, tunFailures.get(written++) ?? 0);
    }
  }
  for (const m of byIndex.values()) e.accepted.set(m.kp.slot, m.accepted);
  return e;
}
