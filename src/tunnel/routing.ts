// Longest-prefix match over every peer's allowed IPs: a binary trie per address family,
// walked bit by bit straight from the packet bytes (no allocation per lookup).
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

  insert(p: Prefix, value: T): void {
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
