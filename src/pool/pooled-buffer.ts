// One buffer of a pool: a fixed slice of the pool's slab, with a movable start and end so
// headers can be added in front (shiftStartLeft) or stripped (shiftStartRight) in place.
import type { BufferPool } from "./buffer-pool.ts";

export class PooledBuffer {
  /** Byte offset of this buffer's slice within pool.slab. */
  readonly base: number;
  /** Payload start and end, relative to base: the payload is slab[base+start, base+end). */
  start = 0;
  end = 0;
  /** True while someone owns the buffer; the pool checks it on release. */
  live = false;
  readonly pool: BufferPool;
  readonly index: number;

  constructor(pool: BufferPool, index: number) {
    this.pool = pool;
    this.index = index;
    this.base = index * pool.bufferSize;
  }

  get length(): number {
    return this.end - this.start;
  }

  /** Room left in front of the payload, for headers. */
  get headroom(): number {
    return this.start;
  }

  /** Room left behind the payload (an authentication tag goes here later). */
  get tailroom(): number {
    return this.pool.bufferSize - this.end;
  }

  /** The payload as a Buffer view (no copy). Cold paths and tests only: it allocates a view. */
  bytes(): Buffer {
    this.pool.assertLive(this);
    return this.pool.slab.subarray(this.base + this.start, this.base + this.end);
  }

  /** Sets the payload to [start, start+length) relative to the buffer. */
  setPayload(start: number, length: number): void {
    if (start < 0 || length < 0 || start + length > this.pool.bufferSize) {
      throw new RangeError(`payload [${start}, ${start + length}) outside buffer of ${this.pool.bufferSize}`);
    }
    this.start = start;
    this.end = start + length;
  }

  /** Moves the start n bytes left (adds n bytes in front) and returns the new start. */
  shiftStartLeft(n: number): number {
    this.pool.assertLive(this);
    if (!(n >= 0 && n <= this.start)) throw new RangeError(`no headroom for ${n} bytes (have ${this.start})`);
    this.start -= n;
    return this.start;
  }

  /** Moves the start n bytes right (drops n bytes from the front) and returns the new start. */
  shiftStartRight(n: number): number {
    this.pool.assertLive(this);
    if (!(n >= 0 && n <= this.length)) throw new RangeError(`cannot strip ${n} bytes from ${this.length}`);
    this.start += n;
    return this.start;
  }

  /** A new buffer from the same pool holding a copy of this payload at the same offset. */
  clone(): PooledBuffer {
    this.pool.assertLive(this);
    const copy = this.pool.pull();
    if (!copy) throw new Error(`pool ${this.pool.name} exhausted (capacity ${this.pool.capacity})`);
    this.pool.slab.copy(this.pool.slab, copy.base + this.start, this.base + this.start, this.base + this.end);
    copy.start = this.start;
    copy.end = this.end;
    return copy;
  }

  /** Gives the buffer back to its pool. Exactly once per pull. */
  release(): void {
    this.pool.release(this);
  }
}
