// Longest-prefix match over every peer's allowed IPs: a binary trie per address family,
// walked bit by bit straight from the packet bytes (no allocation per lookup). The last
// answer per family is kept: packets come in runs of one flow (a GRO datagram holds up to
// 64 segments of it), so most lookups are the address just looked up. A table is never
// changed after it is built (a reload builds a new one), so the memo cannot go stale.
import type { Prefix } from "../net/address.ts";

interface TrieNode<T> {
  zero: TrieNode<T> | null;
  one: TrieNode<T> | null;
  value: T | null;
}

const node = <T>(): TrieNode<T> => ({ zero: null, one: null, value: null });

export class PrefixTable<T> {
  private readonly v4: TrieNode<T> = node();
  private readonly v6: TrieNode<T> = node();
  // The last lookup per family: its address as 32-bit words, and its answer.
  private has4 = false;
  private key4 = 0;
  private hit4: T | null = null;
  private has6 = false;
  private readonly key6 = new Int32Array(4);
  private hit6: T | null = null;

  insert(p: Prefix, value: T): void {
    this.has4 = this.has6 = false;
    let n = p.family === 4 ? this.v4 : this.v6;
    for (let bit = 0; bit < p.length; bit++) {
      const one = (p.bytes[bit >> 3] & (0x80 >> (bit & 7))) !== 0;
      let next = one ? n.one : n.zero;
      if (!next) {
        next = node();
        if (one) n.one = next;
        else n.zero = next;
      }
      n = next;
    }
    n.value = value;
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
    let n: TrieNode<T> | null = family === 4 ? this.v4 : this.v6;
    const bits = family === 4 ? 32 : 128;
    let best: T | null = n.value;
    for (let bit = 0; bit < bits; bit++) {
      n = (b[off + (bit >> 3)] & (0x80 >> (bit & 7))) !== 0 ? n.one : n.zero;
      if (!n) break;
      if (n.value !== null) best = n.value;
    }
    return best;
  }
}

/** Four address bytes as one int32 (a small integer to V8: no allocation). */
function word(b: Uint8Array, off: number): number {
  return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
}
