// A batch of pooled buffers handed to the addon for one read: the buffers, and where in
// the pool's slab each one's room starts and how long it is.
import type { BufferPool } from "../pool/buffer-pool.ts";
import type { PooledBuffer } from "../pool/pooled-buffer.ts";
import { BATCH, MIN_FILL } from "./constants.ts";

/** What both paths tell the forwarder. */
export interface PathHooks {
  /** The path's pool has no buffer: stop reading its fd until one comes back. */
  poolEmpty(): void;
  /** First drop for a reason: worth one log line; the rest are only counted. */
  firstDrop(reason: number, detail: string): void;
}

export class ReadBatch {
  readonly offs = new Int32Array(BATCH);
  /** Room on the way in; the received length on the way out. */
  readonly lens = new Int32Array(BATCH);
  readonly bufs: (PooledBuffer | null)[] = new Array<PooledBuffer | null>(BATCH).fill(null);
  private readonly pool: BufferPool;
  /** Where in each buffer the data is to land, and how much room it gets. */
  private readonly start: number;
  private readonly room: number;

  /** The most buffers one read is offered. */
  private readonly max: number;

  /** With offloads (TSO reads, GRO datagrams): offer no more buffers than this many bytes
   * of packets of the size the last read found would fill (0: no limit). */
  private readonly maxBytes: number;
  /** Bytes the last read brought in; counted only when there is a byte limit. */
  lastBytes = 0;

  constructor(pool: BufferPool, start: number, room: number, max = BATCH, maxBytes = 0) {
    this.pool = pool;
    this.max = max;
    this.next = max;
    this.maxBytes = maxBytes;
    this.start = start;
    this.room = room;
  }

  /** How many buffers the next fill offers the read: twice what the last read took, at
   * least MIN_FILL, so a read that finds little waiting does not pull and return a whole
   * batch (with GRO and TSO a wakeup often finds a few large datagrams, not 64 small). */
  private next = BATCH;
  /** What the last fill offered: a read that returns fewer found the fd drained. */
  offered = 0;

  /** Pulls up to a batch (fewer if the pool runs low) and returns how many. */
  fill(): number {
    const want = Math.min(this.next, this.pool.available);
    this.offered = want;
    for (let i = 0; i < want; i++) {
      const buf = this.pool.pull()!;
      buf.start = this.start;
      this.bufs[i] = buf;
      this.offs[i] = buf.base + this.start;
      this.lens[i] = this.room;
    }
    return want;
  }

  /** Gives back the buffers [from, to) that the read did not fill (from: what it read). */
  releaseUnused(from: number, to: number): void {
    let next = Math.min(this.max, Math.max(MIN_FILL, from * 2));
    if (this.maxBytes > 0) {
      this.lastBytes = this.bytes(from);
      if (from > 0) next = Math.max(MIN_FILL, Math.min(next, Math.floor(this.maxBytes / Math.max(this.lastBytes / from, 1))));
    }
    this.next = next;
    for (let i = from; i < to; i++) {
      this.bufs[i]!.release();
      this.bufs[i] = null;
    }
  }

  /** Bytes the last read brought into its first n buffers. */
  private bytes(n: number): number {
    let total = 0;
    for (let i = 0; i < n; i++) if (this.lens[i] > 0) total += this.lens[i];
    return total;
  }

  /** Takes buffer i out of the batch: the caller now owns it. */
  take(i: number): PooledBuffer {
    const buf = this.bufs[i]!;
    this.bufs[i] = null;
    return buf;
  }
}
