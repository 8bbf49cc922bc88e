import t from "tap";
import type { Test } from "tap";
import { BufferPool, PoolMisuseError } from "../../src/pool/buffer-pool.ts";
import type { PoolOptions } from "../../src/pool/buffer-pool.ts";
import type { PooledBuffer } from "../../src/pool/pooled-buffer.ts";

const SIZE = 256;
const HEADROOM = 64;

function mkPool(over: Partial<PoolOptions> = {}): BufferPool {
  return new BufferPool({ name: "test", bufferSize: SIZE, capacity: 4, headroom: HEADROOM, checked: true, ...over });
}

function pull(pool: BufferPool): PooledBuffer {
  const b = pool.pull();
  if (b === null) throw new Error("pool unexpectedly exhausted");
  return b;
}

/**
 * PoolMisuseError does not set its own `name`, so tap's t.throws(fn, Class) (which also
 * compares Class.name with err.name) cannot be used; check the class with instanceof.
 */
function throwsMisuse(t: Test, fn: () => unknown, msg: string): void {
  try {
    fn();
    t.fail(`${msg}: did not throw`);
  } catch (err) {
    t.ok(err instanceof PoolMisuseError, `${msg}: throws PoolMisuseError`);
  }
}

/** Where a buffer's payload view starts, relative to the start of the pool's slab. */
function slabOffset(pool: BufferPool, view: Buffer): number {
  return view.byteOffset - pool.slab.byteOffset;
}

t.test("pull gives an empty payload positioned at the headroom", (t) => {
  const pool = mkPool();
  const a = pull(pool);
  const b = pull(pool);
  for (const buf of [a, b]) {
    t.equal(buf.start, HEADROOM);
    t.equal(buf.end, HEADROOM);
    t.equal(buf.length, 0);
    t.equal(buf.headroom, HEADROOM);
    t.equal(buf.tailroom, SIZE - HEADROOM);
    t.equal(buf.bytes().length, 0);
    t.equal(buf.pool, pool);
    t.ok(buf.live);
  }
  t.not(a.index, b.index, "two live buffers are distinct");
  t.equal(Math.abs(a.base - b.base), SIZE, "neighbouring buffers are one buffer size apart in the slab");
  t.equal(slabOffset(pool, b.bytes()), b.base + HEADROOM, "payload view starts at base + headroom");
  t.end();
});

t.test("a pulled buffer starts at the headroom even if the previous owner moved its start", (t) => {
  const pool = mkPool();
  const a = pull(pool);
  a.setPayload(3, 100);
  a.release();
  const again = pull(pool);
  t.equal(again, a);
  t.equal(again.start, HEADROOM);
  t.equal(again.length, 0);
  t.end();
});

t.test("pullInitialised copies the bytes and sets the length", (t) => {
  const pool = mkPool();
  const data = Uint8Array.from({ length: 37 }, (_, i) => (i * 7 + 3) & 0xff);
  const buf = pool.pullInitialised(data);
  t.equal(buf.start, HEADROOM);
  t.equal(buf.length, data.length);
  t.same([...buf.bytes()], [...data]);
  t.same([...pool.slab.subarray(buf.base + HEADROOM, buf.base + HEADROOM + data.length)], [...data], "bytes land in the slab");
  data[0] ^= 0xff;
  t.not(buf.bytes()[0], data[0], "a copy, not a view of the caller's array");
  t.equal(pool.inUse, 1);
  t.end();
});

t.test("pullInitialised bounds", (t) => {
  const pool = mkPool({ capacity: 1 });
  const room = SIZE - HEADROOM;
  t.throws(() => pool.pullInitialised(new Uint8Array(room + 1)), RangeError);
  t.equal(pool.inUse, 0, "a payload that does not fit takes no buffer");
  t.equal(pool.allocated, 0);
  const full = pool.pullInitialised(new Uint8Array(room).fill(9));
  t.equal(full.length, room, "exactly the room after the headroom fits");
  t.equal(full.tailroom, 0);
  t.throws(() => pool.pullInitialised(new Uint8Array(1)), /exhausted/, "throws when the pool is exhausted");
  t.end();
});

t.test("clone is an independent copy in the same pool", (t) => {
  const pool = mkPool();
  const a = pool.pullInitialised(Uint8Array.of(1, 2, 3, 4, 5, 6));
  a.shiftStartLeft(4);
  a.bytes().set([0xa, 0xb, 0xc, 0xd], 0);
  const c = a.clone();
  t.equal(c.pool, pool);
  t.not(c.index, a.index);
  t.equal(c.start, a.start, "same payload offset (headers shifted in stay in place)");
  t.equal(c.end, a.end);
  t.same([...c.bytes()], [0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4, 5, 6]);
  t.equal(pool.inUse, 2);

  a.bytes()[4] = 0x99;
  t.equal(c.bytes()[4], 1, "writing the original leaves the clone alone");
  c.bytes()[5] = 0x77;
  t.equal(a.bytes()[5], 2, "writing the clone leaves the original alone");

  a.release();
  t.same([...c.bytes()], [0xa, 0xb, 0xc, 0xd, 1, 0x77, 3, 4, 5, 6], "the clone survives the original's release (and poisoning)");
  t.end();
});

t.test("clone of a buffer in an exhausted pool throws", (t) => {
  const pool = mkPool({ capacity: 1 });
  const a = pull(pool);
  t.throws(() => a.clone(), /exhausted/);
  t.equal(pool.inUse, 1);
  t.end();
});

t.test("shiftStartLeft and shiftStartRight", (t) => {
  const pool = mkPool();
  const payload = Uint8Array.of(10, 11, 12, 13, 14, 15, 16, 17, 18, 19);
  const buf = pool.pullInitialised(payload);

  t.equal(buf.shiftStartLeft(4), HEADROOM - 4, "returns the new start");
  t.equal(buf.start, HEADROOM - 4);
  t.equal(buf.length, payload.length + 4);
  t.equal(buf.headroom, HEADROOM - 4);
  buf.bytes().set([0xf0, 0xf1, 0xf2, 0xf3], 0);
  t.same([...buf.bytes().subarray(4)], [...payload], "payload behind the new header is untouched");

  t.equal(buf.shiftStartRight(4), HEADROOM);
  t.same([...buf.bytes()], [...payload], "stripping the header gives the payload back");

  t.throws(() => buf.shiftStartLeft(HEADROOM + 1), RangeError, "beyond the headroom");
  t.equal(buf.start, HEADROOM, "a refused shift leaves the start alone");
  t.equal(buf.shiftStartLeft(HEADROOM), 0, "all of the headroom can be used");
  t.throws(() => buf.shiftStartLeft(1), RangeError, "no headroom left");
  t.equal(buf.shiftStartRight(HEADROOM), HEADROOM);

  t.throws(() => buf.shiftStartRight(payload.length + 1), RangeError, "beyond the payload");
  t.equal(buf.start, HEADROOM);
  t.equal(buf.length, payload.length);
  t.equal(buf.shiftStartRight(payload.length), HEADROOM + payload.length, "the whole payload can be stripped");
  t.equal(buf.length, 0);
  t.throws(() => buf.shiftStartRight(1), RangeError);
  t.end();
});

t.test("setPayload rejects ranges outside the buffer", (t) => {
  const pool = mkPool();
  const buf = pull(pool);
  buf.setPayload(0, SIZE);
  t.equal(buf.length, SIZE);
  t.throws(() => buf.setPayload(1, SIZE), RangeError);
  t.throws(() => buf.setPayload(-1, 4), RangeError);
  t.throws(() => buf.setPayload(4, -1), RangeError);
  t.equal(buf.start, 0, "a refused setPayload changes nothing");
  t.equal(buf.length, SIZE);
  t.end();
});

t.test("release returns the buffer: accounting and LIFO reuse", (t) => {
  const pool = mkPool({ capacity: 4 });
  t.equal(pool.allocated, 0);
  t.equal(pool.inUse, 0);
  t.equal(pool.available, 4);

  const a = pull(pool);
  const b = pull(pool);
  t.equal(pool.allocated, 2);
  t.equal(pool.inUse, 2);
  t.equal(pool.available, 2);

  a.release();
  t.notOk(a.live);
  t.equal(pool.allocated, 2, "release never frees the allocation");
  t.equal(pool.inUse, 1);
  t.equal(pool.available, 3);

  const c = pull(pool);
  t.equal(c, a, "the released buffer is handed out again");
  t.equal(c.index, a.index);
  t.equal(pool.allocated, 2, "no new allocation while the free list has one");

  // LIFO: the most recently released buffer comes back first.
  b.release();
  c.release();
  t.equal(pull(pool), c);
  t.equal(pull(pool), b);
  t.equal(pool.inUse, 2);
  t.equal(pool.allocated, 2);
  t.end();
});

for (const checked of [true, false]) {
  t.test(`double release throws PoolMisuseError (checked: ${checked})`, (t) => {
    const pool = mkPool({ checked });
    const a = pull(pool);
    const b = pull(pool);
    a.release();
    throwsMisuse(t, () => a.release(), "release twice");
    throwsMisuse(t, () => pool.release(a), "release twice via the pool");
    t.equal(pool.inUse, 1, "a refused release changes no counts");
    t.equal(pool.available, pool.capacity - 1);
    // The buffer must be on the free list once only: two pulls give two different buffers.
    const x = pull(pool);
    const y = pull(pool);
    t.equal(x, a);
    t.not(y, a, "the double release did not put the buffer on the free list twice");
    t.not(y, b);
    t.end();
  });
}

t.test("use after release throws in checked mode and the bytes are poisoned", (t) => {
  const pool = mkPool({ checked: true });
  const a = pool.pullInitialised(new Uint8Array(50).fill(0x42));
  a.shiftStartLeft(4);
  const base = a.base;
  a.release();
  throwsMisuse(t, () => a.bytes(), "bytes() after release");
  throwsMisuse(t, () => a.shiftStartLeft(1), "shiftStartLeft after release");
  throwsMisuse(t, () => a.shiftStartRight(1), "shiftStartRight after release");
  throwsMisuse(t, () => a.clone(), "clone after release");
  t.equal(pool.inUse, 0, "a refused clone pulls nothing");
  const slice = pool.slab.subarray(base, base + SIZE);
  t.ok(slice.every((x) => x === 0xdb), "the whole released buffer, headroom to tailroom, reads 0xdb");

  const again = pull(pool);
  t.equal(again, a);
  t.equal(again.bytes().length, 0, "live again once pulled");
  t.end();
});

t.test("release poisons only the released buffer", (t) => {
  const pool = mkPool({ checked: true });
  const a = pool.pullInitialised(new Uint8Array(8).fill(1));
  const b = pool.pullInitialised(new Uint8Array(8).fill(2));
  a.release();
  t.same([...b.bytes()], [2, 2, 2, 2, 2, 2, 2, 2]);
  t.end();
});

t.test("unchecked mode neither poisons nor rejects use after release", (t) => {
  const pool = mkPool({ checked: false });
  const a = pool.pullInitialised(Uint8Array.of(5, 6, 7));
  a.release();
  t.same([...a.bytes()], [5, 6, 7]);
  t.end();
});

t.test("capacity bound: pull returns null when exhausted and counts it", (t) => {
  const pool = mkPool({ capacity: 2 });
  const a = pull(pool);
  pull(pool);
  t.equal(pool.available, 0);
  t.equal(pool.exhausted, 0);
  t.equal(pool.pull(), null);
  t.equal(pool.exhausted, 1);
  t.equal(pool.pull(), null);
  t.equal(pool.exhausted, 2);
  t.equal(pool.inUse, 2, "a failed pull takes nothing");
  t.equal(pool.allocated, 2, "and allocates nothing");
  a.release();
  t.equal(pool.pull(), a);
  t.equal(pool.exhausted, 2, "a successful pull does not count");
  t.end();
});

t.test("lazy allocation: onAllocate(+1) only when the free list is empty", (t) => {
  const calls: number[] = [];
  const pool = mkPool({ capacity: 3, onAllocate: (d) => calls.push(d) });
  t.equal(pool.allocated, 0, "nothing allocated up front");
  t.same(calls, []);

  const a = pull(pool);
  t.equal(pool.allocated, 1);
  t.same(calls, [1]);

  a.release();
  const a2 = pull(pool);
  t.equal(a2, a);
  t.equal(pool.allocated, 1, "reuse does not allocate");
  t.same(calls, [1]);

  const b = pull(pool);
  t.equal(pool.allocated, 2);
  t.same(calls, [1, 1]);
  pull(pool);
  t.same(calls, [1, 1, 1]);
  t.equal(pool.allocated, 3);

  t.equal(pool.pull(), null);
  t.same(calls, [1, 1, 1], "an exhausted pull does not allocate");
  b.release();
  pull(pool);
  t.same(calls, [1, 1, 1]);
  t.equal(pool.allocated, 3);
  t.end();
});

t.test("releasing into the wrong pool throws", (t) => {
  const p1 = mkPool({ name: "one" });
  const p2 = mkPool({ name: "two" });
  const b = pull(p1);
  throwsMisuse(t, () => p2.release(b), "release into another pool");
  t.equal(p2.inUse, 0);
  t.equal(p2.available, p2.capacity);
  t.ok(b.live, "still owned after the refused release");
  t.equal(p1.inUse, 1);
  b.release();
  t.equal(p1.inUse, 0, "the right pool still takes it");
  t.end();
});

t.test("constructor rejects bad sizes and capacities", (t) => {
  const base: PoolOptions = { name: "x", bufferSize: 128, capacity: 2, headroom: 64 };
  t.throws(() => new BufferPool({ ...base, bufferSize: 64 }), RangeError, "size equal to the headroom");
  t.throws(() => new BufferPool({ ...base, bufferSize: 32 }), RangeError, "size below the headroom");
  t.throws(() => new BufferPool({ ...base, bufferSize: 128.5 }), RangeError, "fractional size");
  t.throws(() => new BufferPool({ ...base, bufferSize: NaN }), RangeError, "NaN size");
  t.throws(() => new BufferPool({ ...base, capacity: 0 }), RangeError, "zero capacity");
  t.throws(() => new BufferPool({ ...base, capacity: -1 }), RangeError, "negative capacity");
  t.throws(() => new BufferPool({ ...base, capacity: 1.5 }), RangeError, "fractional capacity");
  t.throws(() => new BufferPool({ ...base, bufferSize: 1024, capacity: 2 ** 21 }), RangeError, "slab of 2 GiB");
  const ok = new BufferPool({ ...base, bufferSize: 65, capacity: 1 });
  t.equal(ok.slab.length, 65, "the smallest valid pool");
  t.equal(ok.checked, false, "unchecked by default");
  t.end();
});

t.test("negative or fractional sizes are refused", async (t) => {
  const pool = mkPool();
  const b = pull(pool);
  t.throws(() => b.shiftStartRight(-100), RangeError, "a negative strip would reach the previous buffer");
  t.throws(() => b.shiftStartLeft(-100), RangeError);
  t.equal(b.start, HEADROOM, "start unchanged");
  t.throws(() => mkPool({ headroom: -8 }), RangeError);
  t.throws(() => mkPool({ headroom: 1.5 }), RangeError);
  b.release();
});

t.test("misuse errors carry their class name", async (t) => {
  const pool = mkPool();
  const b = pull(pool);
  b.release();
  t.throws(() => b.release(), { name: "PoolMisuseError" });
});
