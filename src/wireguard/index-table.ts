// Our side of the native keypair table: which slot holds which handshake or keypair. A local
// index (the sender index in our handshake messages, later the receiver index of data sent to
// us) is `random 20 bits << 12 | slot`, so the native side finds a keypair from the index alone
// and a stale index of a reused slot still fails its comparison there.
import { SLOT_BITS, SLOT_MASK, WG_KEYPAIR_SLOTS } from "./constants.ts";
import type { Keypair } from "./keypairs.ts";

export interface SlotEntry<P> {
  index: number;
  peer: P;
  /** Null while the slot belongs to a handshake not yet finished. */
  keypair: Keypair | null;
}

export class IndexTable<P> {
  readonly #entries: (SlotEntry<P> | null)[] = new Array<SlotEntry<P> | null>(WG_KEYPAIR_SLOTS).fill(null);
  // Free slots in FIFO order: a slot just freed is the last to be taken again, so late
  // packets for a retired keypair meet an empty slot rather than its successor.
  readonly #free = new Int32Array(WG_KEYPAIR_SLOTS);
  #head = 0;
  #count = WG_KEYPAIR_SLOTS;
  readonly #random: (n: number) => Uint8Array;

  constructor(random: (n: number) => Uint8Array) {
    this.#random = random;
    for (let i = 0; i < WG_KEYPAIR_SLOTS; i++) this.#free[i] = i;
  }

  /** A free slot and a fresh index for it, owned by `peer`; null when the table is full. */
  allocate(peer: P): SlotEntry<P> & { slot: number } | null {
    if (this.#count === 0) return null;
    const slot = this.#free[this.#head];
    this.#head = (this.#head + 1) % WG_KEYPAIR_SLOTS;
    this.#count--;
    const r = this.#random(4);
    const high = ((r[0] | (r[1] << 8) | (r[2] << 16)) & 0xfffff) >>> 0;
    const entry = { index: ((high << SLOT_BITS) | slot) >>> 0, peer, keypair: null };
    this.#entries[slot] = entry;
    return { ...entry, slot };
  }

  /** The entry holding exactly this index, or null. */
  lookup(index: number): SlotEntry<P> | null {
    const e = this.#entries[index & SLOT_MASK];
    return e && e.index === index ? e : null;
  }

  get(slot: number): SlotEntry<P> | null {
    return slot >= 0 && slot < WG_KEYPAIR_SLOTS ? this.#entries[slot] : null;
  }

  /** The handshake in `slot` became this keypair (same slot, same index). */
  setKeypair(slot: number, keypair: Keypair): void {
    const e = this.#entries[slot];
    if (!e) throw new Error(`keypair slot ${slot} is not allocated`);
    e.keypair = keypair;
  }

  free(slot: number): void {
    if (!this.#entries[slot]) throw new Error(`keypair slot ${slot} freed twice`);
    this.#entries[slot] = null;
    this.#free[(this.#head + this.#count) % WG_KEYPAIR_SLOTS] = slot;
    this.#count++;
  }

  get used(): number {
    return WG_KEYPAIR_SLOTS - this.#count;
  }
}
