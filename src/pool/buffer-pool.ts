// A pool of equal-size buffers carved from one preallocated slab, so the native layer can
// address any buffer as (slab, offset) and a batch crosses into C as two Int32Arrays.
//
// After Firezone connlib's bufferpool: pull / pull initialised / clone / shift the start
// for headers, and a count of allocated buffers tagged with the pool's name and buffer
// size. Differences: release is explicit (JS has no destructor); the free list is a LIFO
// stack (one thread, and the most recently used buffer is the one still in cache); and the
// pool is bounded: when every buffer is out, pull() returns null and the reader backs off.
import { PooledBuffer } from "./pooled-buffer.ts";

export interface PoolOptions {
  name: string;
  /** Bytes per buffer, headroom and tailroom included. */
  bufferSize: number;
  /** Most buffers the pool will ever hold; the slab is reserved for all of them at start. */
  capacity: number;
  /** Where a pulled buffer's payload starts: room for headers written in place. */
  headroom: number;
  /** Called with +1 each time a buffer is first created (the allocated-buffers counter). */
  onAllocate?: (delta: number) => void;
  /**
   * Misuse detection for tests: poison released buffers and reject any use after release.
   * Double release is rejected in every mode (it would hand one buffer to two owners).
   */
  checked?: boolean;
}

export class PoolMisuseError extends Error {
  override name = "PoolMisuseError";
}

export class BufferPool {
  readonly name: string;
  readonly bufferSize: number;
  readonly capacity: number;
  readonly headroom: number;
  readonly checked: boolean;
  /** Every buffer of the pool lives in here; buffer i is slab[i*bufferSize, (i+1)*bufferSize). */
  readonly slab: Buffer;
  /** Buffers created so far (grows lazily up to capacity, never shrinks while the pool lives). */
  allocated = 0;
  /** Buffers pulled and not yet released. */
  inUse = 0;
  /** Times a pull, or a reader, found the pool exhausted. */
  exhausted = 0;
  /** Called once when a buffer next comes back (a reader paused on an empty pool). */
  private waiter: (() => void) | null = null;

  private readonly buffers: PooledBuffer[] = [];
  private readonly free: Int32Array;
  private freeCount = 0;
  private readonly onAllocate: (delta: number) => void;

  constructor(opts: PoolOptions) {
    if (!Number.isInteger(opts.headroom) || opts.headroom < 0) {
      throw new RangeError(`pool ${opts.name}: headroom ${opts.headroom} must be a whole number >= 0`);
    }
    if (!Number.isInteger(opts.bufferSize) || opts.bufferSize <= opts.headroom) {
      throw new RangeError(`pool ${opts.name}: buffer size ${opts.bufferSize} must exceed headroom ${opts.headroom}`);
    }
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1 || opts.capacity * opts.bufferSize > 2 ** 31 - 1) {
      throw new RangeError(`pool ${opts.name}: capacity ${opts.capacity} out of range`);
    }
    this.name = opts.name;
    this.bufferSize = opts.bufferSize;
    this.capacity = opts.capacity;
    this.headroom = opts.headroom;
    this.checked = opts.checked ?? false;
    this.onAllocate = opts.onAllocate ?? (() => {});
    this.slab = Buffer.alloc(opts.capacity * opts.bufferSize);
    this.free = new Int32Array(opts.capacity);
  }

  /** Buffers that pull() can still hand out. */
  get available(): number {
    return this.freeCount + (this.capacity - this.allocated);
  }

  /** A buffer with an empty payload at the headroom, or null if the pool is exhausted. */
  pull(): PooledBuffer | null {
    let buf: PooledBuffer;
    if (this.freeCount > 0) {
      buf = this.buffers[this.free[--this.freeCount]];
    } else if (this.allocated < this.capacity) {
      buf = new PooledBuffer(this, this.allocated);
      this.buffers.push(buf);
      this.allocated++;
      this.onAllocate(1);
    } else {
      this.exhausted++;
      return null;
    }
    buf.live = true;
    buf.start = buf.end = this.headroom;
    this.inUse++;
    return buf;
  }

  /** A buffer holding a copy of data at the headroom. Throws if data does not fit or the pool is exhausted. */
  pullInitialised(data: Uint8Array): PooledBuffer {
    if (data.length > this.bufferSize - this.headroom) {
      throw new RangeError(`pool ${this.name}: ${data.length} bytes do not fit (room ${this.bufferSize - this.headroom})`);
    }
    const buf = this.pull();
    if (!buf) throw new Error(`pool ${this.name} exhausted (capacity ${this.capacity})`);
    this.slab.set(data, buf.base + buf.start);
    buf.end = buf.start + data.length;
    return buf;
  }

  release(buf: PooledBuffer): void {
    if (buf.pool !== this) throw new PoolMisuseError(`buffer of pool ${buf.pool.name} released to pool ${this.name}`);
    if (!buf.live) throw new PoolMisuseError(`pool ${this.name}: buffer ${buf.index} released twice`);
    buf.live = false;
    this.inUse--;
    this.free[this.freeCount++] = buf.index;
    if (this.checked) this.slab.fill(0xdb, buf.base, buf.base + this.bufferSize);
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w();
    }
  }

  /** A reader found no buffer: count it, and call back once a buffer is released. */
  whenAvailable(cb: () => void): void {
    this.exhausted++;
    this.waiter = cb;
  }

  /** Throws on use after release, in checked mode; free otherwise. */
  assertLive(buf: PooledBuffer): void {
    if (this.checked && !buf.live) throw new PoolMisuseError(`pool ${this.name}: buffer ${buf.index} used after release`);
  }
}
