// Longest-prefix match over every peer's allowed IPs: a binary trie per address family,
// walked bit by bit straight from the packet bytes (no allocation per lookup). The last
// answer per family is kept: packets come in runs of one flow (a GRO datagram holds up to
// 64 segments of it), so most lookups are the address just looked up. A table is never
// changed after it is built (a reload builds a new one), so the memo cannot go stale.
import type { Prefix } from "../net/address.ts";

/** A binary trie in flat arrays: node n's children are kids[2n] (bit 0) and kids[2n + 1]
 * (bit 1), 0 meaning none (node 0 is a root, never anyone's child); its value is
 * values[slot[n] - 1], slot 0 meaning none. A table of 100,000 host routes is about a million
 * nodes: as objects they cost the garbage collector more than building them. */
class FlatTrie<T> {
  kids = new Int32Array(2048);
  slot = new Int32Array(1024);
  nodes = 1; // node 0, the root
  readonly values: T[] = [];

  insert(bytes: Uint8Array, length: number, value: T): void {
    let n = 0;
    for (let bit = 0; bit < length; bit++) {
      const k = 2 * n + ((bytes[bit >> 3] >> (7 - (bit & 7))) & 1);
      let next = this.kids[k];
      if (next === 0) {
        next = this.grow();
        this.kids[k] = next;
      }
      n = next;
    }
    if (this.slot[n] === 0) this.slot[n] = this.values.push(value);
    else this.values[this.slot[n] - 1] = value;
  }

  /** The value of the longest prefix on the path of the `bits`-bit address at b[off..]. */
  walk(b: Uint8Array, off: number, bits: number): T | null {
    const { kids, slot } = this;
    let best = slot[0];
    let n = 0;
    for (let bit = 0; bit < bits; bit++) {
      n = kids[2 * n + ((b[off + (bit >> 3)] >> (7 - (bit & 7))) & 1)];
      if (n === 0) break;
      if (slot[n] !== 0) best = slot[n];
    }
    return best === 0 ? null : this.values[best - 1];
  }

  private grow(): number {
    if (this.nodes === this.slot.length) {
      const kids = new Int32Array(this.kids.length * 2);
      kids.set(this.kids);
      this.kids = kids;
      const slot = new Int32Array(this.slot.length * 2);
      slot.set(this.slot);
      this.slot = slot;
    }
    return this.nodes++;
  }
}

export class PrefixTable<T> {
  private readonly v4 = new FlatTrie<T>();
  private readonly v6 = new FlatTrie<T>();
  // The last lookup per family: its address as 32-bit words, and its answer.
  private has4 = false;
  private key4 = 0;
  private hit4: T | null = null;
  private has6 = false;
  private readonly key6 = new Int32Array(4);
  private hit6: T | null = null;

  insert(p: Prefix, value: T): void {
    this.has4 = this.has6 = false;
    (p.family === 4 ? this.v4 : this.v6).insert(p.bytes, p.length, value);
  }

  /** The value of the longest prefix covering the address at b[off..], or null. */
  lookup(b: Uint8Array, off: number, family: 4 | 6): T | null {
    if (family === 4) {
      const key = word(b, off);
      if (this.has4 && key === this.key4) return this.hit4;
      this.hit4 = this.walk(b, off, family);
      this.key4 = key;
      this.has4 = true;
      return this.hit4;
    }
    const k = this.key6;
    const w0 = word(b, off), w1 = word(b, off + 4), w2 = word(b, off + 8), w3 = word(b, off + 12);
    if (this.has6 && w0 === k[0] && w1 === k[1] && w2 === k[2] && w3 === k[3]) return this.hit6;
    this.hit6 = this.walk(b, off, family);
    k[0] = w0;
    k[1] = w1;
    k[2] = w2;
    k[3] = w3;
    this.has6 = true;
    return this.hit6;
  }

  private walk(b: Uint8Array, off: number, family: 4 | 6): T | null {
    return family === 4 ? this.v4.walk(b, off, 32) : this.v6.walk(b, off, 128);
  }
}

/** Four address bytes as one int32 (a small integer to V8: no allocation). */
function word(b: Uint8Array, off: number): number {
  return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
}
