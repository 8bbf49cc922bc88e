// Readable builders for the hand-written regression cases (the fuzz generators are in
// packets.ts): sound IPv4 / IPv6 packets from address literals.
import { parseAddr } from "./world.ts";

/** A sound IPv4 packet (checksum right) with `payload` bytes of 0xab and optional extras. */
export function ipv4(src: string, dst: string, payload = 8, o: { options?: number[]; frag?: number } = {}): Buffer {
  const opts = o.options ?? [];
  const hlen = 20 + opts.length;
  const b = Buffer.alloc(hlen + payload, 0xab);
  b[0] = 0x40 | (hlen / 4);
  b[1] = 0;
  b.writeUInt16BE(hlen + payload, 2);
  b.writeUInt16BE(0x1234, 4);
  b.writeUInt16BE(o.frag ?? 0, 6);
  b[8] = 64;
  b[9] = 17;
  b.writeUInt16BE(0, 10);
  b.set(parseAddr(src).bytes, 12);
  b.set(parseAddr(dst).bytes, 16);
  b.set(opts, 20);
  setChecksum(b);
  return b;
}

export function setChecksum(b: Buffer): void {
  const hlen = (b[0] & 0x0f) * 4;
  b.writeUInt16BE(0, 10);
  let sum = 0;
  for (let i = 0; i < hlen; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  b.writeUInt16BE(~sum & 0xffff, 10);
}

/** A sound IPv6 packet; `ext` are extension headers already laid out (next-header chained by the caller). */
export function ipv6(src: string, dst: string, payload = 8, ext: number[] = [], next = 17): Buffer {
  const b = Buffer.alloc(40 + ext.length + payload, 0xcd);
  b.writeUInt32BE(0x60000000, 0);
  b.writeUInt16BE(ext.length + payload, 4);
  b[6] = ext.length > 0 ? 0 : next; // hop-by-hop first when there are extensions
  b[7] = 64;
  b.set(parseAddr(src).bytes, 8);
  b.set(parseAddr(dst).bytes, 24);
  b.set(ext, 40);
  return b;
}
