// WireGuard's per-packet crypto in the addon (src/native/wg-*.c), checked against
// node:crypto's ChaCha20-Poly1305: what wgSeal writes decrypts there byte for byte, what is
// sealed there wgOpen opens, and every way a message can be refused is refused without
// touching the replay window.
import t from "tap";
import type { Test } from "tap";
import { randomBytes } from "node:crypto";
import { addon } from "../../src/native/addon.ts";
import { HEADER, TAG, openMessage, paddingFor, sealMessage } from "./lib/wg-messages.ts";

const SLOTS = addon.WG_KEYPAIR_SLOTS;
const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
const STRIDE = 2048;
const FIRST = 64; // headroom before every packet in these slabs

interface Keypair {
  slot: number;
  local: number;
  remote: number;
  send: Buffer;
  recv: Buffer;
}

let nextSlot = 1;
/** A fresh keypair in a slot of its own; the local index carries high bits too. */
function install(t: Test): Keypair {
  const slot = nextSlot++;
  const kp = { slot, local: ((0x5a5 << 12) | slot) >>> 0, remote: 0x80000000 + slot * 7, send: randomBytes(32), recv: randomBytes(32) };
  addon.wgKeypairSet(kp.slot, kp.local, kp.remote, kp.send, kp.recv);
  t.teardown(() => addon.wgKeypairClear(slot));
  return kp;
}

function counters(slot: number): [number, number] {
  const out = new Float64Array(2);
  addon.wgKeypairCounters(slot, out);
  return [out[0], out[1]];
}

/** A batch of datagrams laid out in one slab, STRIDE bytes apart (or as given). */
function batch(datagrams: Uint8Array[], stride = STRIDE) {
  const slab = new Uint8Array(FIRST + datagrams.length * stride + stride);
  const offs = new Int32Array(datagrams.length);
  const lens = new Int32Array(datagrams.length);
  datagrams.forEach((d, i) => {
    offs[i] = FIRST + i * stride;
    lens[i] = d.length;
    slab.set(d, offs[i]);
  });
  return { slab, offs, lens, count: datagrams.length };
}

interface Entry {
  offset: number;
  length: number;
  verdict: number;
}

function open(datagrams: Uint8Array[], segs: Int32Array | null = null) {
  const b = batch(datagrams, datagrams.reduce((m, d) => Math.max(m, d.length), 0) + 64);
  const out = new Int32Array(b.count * 64 * 3);
  const n = addon.wgOpen(b.slab, b.offs, b.lens, b.count, segs, out);
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) entries.push({ offset: out[3 * i], length: out[3 * i + 1], verdict: out[3 * i + 2] });
  const bytes = (e: Entry) => Buffer.from(b.slab.subarray(e.offset, e.offset + e.length));
  return { entries, bytes, b };
}

const verdicts = (r: { entries: Entry[] }) => r.entries.map((e) => e.verdict);

t.test("constants: the values the TypeScript side takes from the addon", async (t) => {
  t.equal(addon.WG_KEYPAIR_SLOTS, 4096);
  t.equal(addon.WG_HEADER_LEN, HEADER);
  t.equal(addon.WG_TAG_LEN, TAG);
  const codes = [
    addon.WG_NOT_DATA, addon.WG_MALFORMED, addon.WG_UNKNOWN_INDEX, addon.WG_REPLAYED, addon.WG_DECRYPT_FAILED,
    addon.WG_EXPIRED, addon.WG_NO_KEYPAIR, addon.WG_COUNTER_EXHAUSTED,
  ];
  t.equal(new Set(codes).size, codes.length, "eight distinct codes");
  t.ok(codes.every((c) => Number.isInteger(c) && c < -4095), "all below -4095: never a -errno");
});

t.test("wgSeal: every header byte, the nonce, the padding and the tag, read back by node:crypto", async (t) => {
  const kp = install(t);
  let counter = 0n;
  for (const mtu of [0, 1280, 1420, 1500]) {
    const sizes = [0, 1, 15, 16, 17, 40, 1000, 1279, 1280, 1281, 1404, 1405, 1419, 1420, 1421, 1500, 1501, 2841];
    const plains = sizes.map((n) => randomBytes(n));
    const b = batch(plains, 4096);
    const status = new Int32Array(b.count).fill(99);
    const before = Int32Array.from(b.offs);
    addon.wgSeal(b.slab, b.offs, b.lens, b.count, new Int32Array(b.count).fill(kp.slot), mtu, status);
    t.same([...status], sizes.map(() => 0), `mtu ${mtu}: all sealed`);
    // What each message must be, and what it is, side by side (one line per packet on failure).
    const want = plains.map((plain) => {
      const pad = paddingFor(plain.length, mtu);
      return { size: plain.length, start: -HEADER, length: HEADER + plain.length + pad + TAG, head: "04000000", receiver: kp.remote,
        counter: counter++, plain: true, padding: "00".repeat(pad) };
    });
    const got = plains.map((plain, i) => {
      const msg = Buffer.from(b.slab.subarray(b.offs[i], b.offs[i] + b.lens[i]));
      const opened = openMessage(kp.send, msg); // throws unless the tag and the nonce (the counter's) match
      return { size: plain.length, start: b.offs[i] - before[i], length: b.lens[i], head: msg.subarray(0, 4).toString("hex"),
        receiver: msg.readUInt32LE(4), counter: opened.counter, plain: opened.plaintext.subarray(0, plain.length).equals(plain),
        padding: opened.plaintext.subarray(plain.length).toString("hex") };
    });
    t.same(got, want, `mtu ${mtu}: header (type 4, reserved 0, receiver, counter), plaintext, zero padding, tag`);
  }
  t.same(counters(kp.slot), [Number(counter), 0], "wgKeypairCounters: messages sent");
});

t.test("wgSeal and wgOpen: random lengths 0..1500 over dirty buffers, against node:crypto", async (t) => {
  // The padding is zeroed where it lies (one cipher update per message), so whatever the
  // slab held after the packet must not reach the wire.
  const kp = install(t);
  const mtu = 1420;
  const sizes = [0, 1500, ...Array.from({ length: addon.MAX_BATCH - 2 }, () => Math.floor(Math.random() * 1501))];
  const plains = sizes.map((n) => randomBytes(n));
  const b = batch(plains);
  b.offs.forEach((off, i) => b.slab.fill(0xa5, off + plains[i].length, off + STRIDE - FIRST));
  const status = new Int32Array(b.count);
  addon.wgSeal(b.slab, b.offs, b.lens, b.count, new Int32Array(b.count).fill(kp.slot), mtu, status);
  t.ok(status.every((s) => s === 0), "all sealed");
  const bad = plains.flatMap((plain, i) => {
    const opened = openMessage(kp.send, b.slab.subarray(b.offs[i], b.offs[i] + b.lens[i]));
    const pad = opened.plaintext.subarray(plain.length);
    const ok = opened.counter === BigInt(i) && opened.plaintext.subarray(0, plain.length).equals(plain) &&
      pad.length === paddingFor(plain.length, mtu) && pad.every((x) => x === 0);
    return ok ? [] : [`size ${plain.length}`];
  });
  t.same(bad, [], "node:crypto reads each: its counter, the plaintext, zero padding");

  const msgs = plains.map((p, i) => sealMessage(kp.recv, kp.local, BigInt(i), p, mtu));
  const r = open(msgs);
  t.same(verdicts(r), plains.map(() => kp.slot), "wgOpen authenticates each sealed by node:crypto");
  const wrong = r.entries.flatMap((e, i) => (r.bytes(e).subarray(0, plains[i].length).equals(plains[i]) ? [] : [`size ${plains[i].length}`]));
  t.same(wrong, [], "and reads its plaintext");
});

t.test("wgSeal: an empty slot leaves its packet untouched and seals the others", async (t) => {
  const kp = install(t);
  const plains = [randomBytes(100), randomBytes(100), randomBytes(100)];
  const b = batch(plains);
  const status = new Int32Array(3);
  const empty = 4000;
  addon.wgSeal(b.slab, b.offs, b.lens, 3, Int32Array.of(kp.slot, empty, kp.slot), 1420, status);
  t.same([...status], [0, addon.WG_NO_KEYPAIR, 0]);
  t.equal(b.offs[1], FIRST + STRIDE, "offset unchanged");
  t.equal(b.lens[1], 100, "length unchanged");
  t.same(Buffer.from(b.slab.subarray(b.offs[1], b.offs[1] + 100)), plains[1], "bytes unchanged");
  t.same(Buffer.from(b.slab.subarray(b.offs[1] - HEADER, b.offs[1])), Buffer.alloc(HEADER), "headroom unchanged");
  t.equal(openMessage(kp.send, b.slab.subarray(b.offs[2], b.offs[2] + b.lens[2])).counter, 1n, "the empty slot took no counter");
});

t.test("wgOpen: messages sealed by node:crypto open in place", async (t) => {
  const kp = install(t);
  const plains = [Buffer.alloc(0), randomBytes(1), randomBytes(64), randomBytes(1420), randomBytes(3000)];
  const msgs = plains.map((p, i) => sealMessage(kp.recv, kp.local, BigInt(i), p, 1420));
  const r = open(msgs);
  t.same(verdicts(r), plains.map(() => kp.slot), "each authenticated, verdict = the slot");
  r.entries.forEach((e, i) => {
    t.equal(e.offset, r.b.offs[i] + HEADER, `message ${i}: plaintext right after the header`);
    t.equal(e.length, msgs[i].length - HEADER - TAG, `message ${i}: padding not trimmed`);
    t.same(r.bytes(e).subarray(0, plains[i].length), plains[i], `message ${i}: the plaintext`);
  });
  t.equal(r.entries[0].length, 0, "a keepalive is an empty plaintext");
  t.same(counters(kp.slot), [0, plains.length], "wgKeypairCounters: messages received");
});

t.test("wgOpen: a tampered message fails and leaves the window as it was", async (t) => {
  const kp = install(t);
  const plain = randomBytes(200);
  const good = (counter: bigint) => sealMessage(kp.recv, kp.local, counter, plain);
  const tampered = (counter: bigint, at: (m: Buffer) => number) => {
    const m = good(counter);
    m[at(m)] ^= 0x01;
    return m;
  };
  const cases: [string, Buffer][] = [
    ["ciphertext", tampered(5n, () => HEADER + 17)],
    ["last ciphertext byte", tampered(6n, (m) => m.length - TAG - 1)],
    ["tag", tampered(7n, (m) => m.length - 1)],
    ["counter in the header", tampered(8n, () => 8)], // now claims counter 9, sealed for 8
    ["counter's high byte", tampered(10n, () => 15)],
  ];
  for (const [what, msg] of cases) {
    t.same(verdicts(open([msg])), [addon.WG_DECRYPT_FAILED], `${what}: WG_DECRYPT_FAILED`);
  }
  t.same(counters(kp.slot), [0, 0], "nothing counted as received");
  const again = [5n, 6n, 7n, 8n, 9n, 10n, 10n + 2n ** 56n].map(good);
  t.same(verdicts(open(again)), again.map(() => kp.slot), "the same counters, authentic, are accepted afterwards");
});

t.test("wgOpen: replays are refused, in one batch and across batches; the window is 8128 wide", async (t) => {
  const kp = install(t);
  const m = (c: bigint) => sealMessage(kp.recv, kp.local, c, randomBytes(32));
  const first = m(3n);
  t.same(verdicts(open([first, Buffer.from(first), m(2n)])), [kp.slot, addon.WG_REPLAYED, kp.slot], "twice in one batch");
  t.same(verdicts(open([first])), [addon.WG_REPLAYED], "again in a later batch");
  t.same(verdicts(open([m(9000n), m(9000n - 8128n), m(9000n - 8129n), m(9000n - 8128n)])), [
    kp.slot, kp.slot, addon.WG_REPLAYED, addon.WG_REPLAYED,
  ], "8128 behind the newest accepted once, 8129 behind refused");
  t.same(counters(kp.slot), [0, 4], "only the accepted ones counted");
});

t.test("wgOpen: unknown, mismatched and cleared receiver indices", async (t) => {
  const kp = install(t);
  const other = (SLOTS - 1) | (1 << 12); // a slot nobody installed
  const wrongHigh = (kp.local ^ (1 << 20)) >>> 0; // kp's slot, not kp's index
  const r = open([
    sealMessage(kp.recv, other, 0n, randomBytes(10)),
    sealMessage(kp.recv, wrongHigh, 0n, randomBytes(10)),
    sealMessage(kp.recv, kp.local, 0n, randomBytes(10)),
  ]);
  t.same(verdicts(r), [addon.WG_UNKNOWN_INDEX, addon.WG_UNKNOWN_INDEX, kp.slot]);

  addon.wgKeypairClear(kp.slot);
  t.same(verdicts(open([sealMessage(kp.recv, kp.local, 1n, randomBytes(10))])), [addon.WG_UNKNOWN_INDEX], "cleared: unknown");
  t.same(counters(kp.slot), [0, 0], "cleared: counters gone");
  const b = batch([randomBytes(10)]);
  const status = new Int32Array(1);
  addon.wgSeal(b.slab, b.offs, b.lens, 1, Int32Array.of(kp.slot), 1420, status);
  t.same([...status], [addon.WG_NO_KEYPAIR], "cleared: nothing to send with");

  // The slot reused for a new keypair: its window and counters start empty.
  addon.wgKeypairSet(kp.slot, kp.local, kp.remote, kp.send, kp.recv);
  t.same(verdicts(open([sealMessage(kp.recv, kp.local, 0n, randomBytes(10))])), [kp.slot], "reinstalled: counter 0 again");
});

t.test("wgOpen: what is not a data message, malformed or expired", async (t) => {
  const kp = install(t);
  const initiation = Buffer.alloc(148);
  initiation[0] = 1;
  const short = sealMessage(kp.recv, kp.local, 0n, Buffer.alloc(0)).subarray(0, 31);
  const reserved = sealMessage(kp.recv, kp.local, 1n, randomBytes(20));
  reserved[2] = 1;
  const expired = sealMessage(kp.recv, kp.local, REJECT_AFTER_MESSAGES, randomBytes(20));
  const beyond = sealMessage(kp.recv, kp.local, 2n ** 64n - 1n, randomBytes(20));
  const r = open([initiation, Buffer.alloc(0), short, reserved, expired, beyond, sealMessage(kp.recv, kp.local, REJECT_AFTER_MESSAGES - 1n, randomBytes(20))]);
  t.same(verdicts(r), [
    addon.WG_NOT_DATA, addon.WG_NOT_DATA, addon.WG_MALFORMED, addon.WG_MALFORMED, addon.WG_EXPIRED, addon.WG_EXPIRED, kp.slot,
  ]);
  t.same(r.entries.slice(0, 6).map((e) => [e.offset, e.length]), [initiation, Buffer.alloc(0), short, reserved, expired, beyond]
    .map((m, i) => [r.b.offs[i], m.length]), "refused messages are framed as received");
  t.same(r.bytes(r.entries[0]), initiation, "a handshake message is left as it came");
});

t.test("wgOpen: GRO datagrams are cut into messages, each judged alone", async (t) => {
  const kp = install(t);
  const size = HEADER + 96 + TAG;
  const plains = [0, 1, 2, 3].map(() => randomBytes(96));
  const parts = plains.map((p, i) => sealMessage(kp.recv, kp.local, BigInt(i), p));
  parts[2][HEADER + 3] ^= 0x80; // tampered
  parts.push(sealMessage(kp.recv, kp.local, 1n, Buffer.alloc(0))); // replays counter 1, shorter last
  const gro = Buffer.concat(parts);
  const lone = sealMessage(kp.recv, kp.local, 4n, randomBytes(500));
  const shortGro = sealMessage(kp.recv, kp.local, 5n, randomBytes(50)); // segment size above its length
  const r = open([gro, lone, shortGro], Int32Array.of(size, 0, 1000));
  t.same(verdicts(r), [kp.slot, kp.slot, addon.WG_DECRYPT_FAILED, kp.slot, addon.WG_REPLAYED, kp.slot, kp.slot]);
  t.same(r.entries.slice(0, 5).map((e) => e.offset - r.b.offs[0]), [16, size + 16, 2 * size, 3 * size + 16, 4 * size], "offsets");
  t.same(r.entries.slice(0, 5).map((e) => e.length), [96, 96, size, 96, 32], "lengths");
  [0, 1, 3].forEach((i) => t.same(r.bytes(r.entries[i]), plains[i], `segment ${i}: plaintext`));
  t.equal(r.entries[5].offset, r.b.offs[1] + HEADER, "a lone datagram next to GRO ones");
});

t.test("bad arguments throw EINVAL naming the field and the value", async (t) => {
  const key = randomBytes(32);
  const throwsWith = (fn: () => unknown, message: RegExp, what: string) =>
    t.throws(fn, { code: "EINVAL", message }, what);
  throwsWith(() => addon.wgKeypairSet(SLOTS, SLOTS, 0, key, key), /slot: 4096 is not a keypair slot/, "slot too large");
  throwsWith(() => addon.wgKeypairSet(-1, 0, 0, key, key), /slot: -1 is not/, "negative slot");
  throwsWith(() => addon.wgKeypairSet(1.5, 1, 0, key, key), /slot: 1.5 is not/, "fractional slot");
  throwsWith(() => addon.wgKeypairSet(7, 8, 0, key, key), /localIndex: 8 does not encode slot 7/, "index of another slot");
  throwsWith(() => addon.wgKeypairSet(7, 2 ** 32 + 7, 0, key, key), /localIndex: 4.29\d*e\+09 is not an integer/, "index past 32 bits");
  throwsWith(() => addon.wgKeypairSet(7, 7, -1, key, key), /remoteIndex: -1 is not/, "negative remote index");
  throwsWith(() => addon.wgKeypairSet(7, 7, 0, randomBytes(31), key), /sendKey: expected a Uint8Array of 32 bytes/, "short send key");
  throwsWith(() => addon.wgKeypairSet(7, 7, 0, key, randomBytes(33)), /recvKey/, "long receive key");
  throwsWith(() => addon.wgKeypairClear(4096), /wgKeypairClear: slot: 4096/, "clear: bad slot");
  throwsWith(() => addon.wgKeypairCounters(1, new Float64Array(1)), /out: expected a Float64Array of 2/, "counters: short out");
  throwsWith(() => addon.wgKeypairCounters(1, new Int32Array(2) as unknown as Float64Array), /out/, "counters: wrong type");

  const b = batch([randomBytes(100), randomBytes(100)]);
  const status = new Int32Array(2);
  const slots = Int32Array.of(1, 1);
  throwsWith(() => addon.wgSeal(b.slab, b.offs, b.lens, 2, Int32Array.of(1, 4096), 1420, status), /slots\[1\]: 4096 is not/, "seal: bad slot");
  throwsWith(() => addon.wgSeal(b.slab, b.offs, b.lens, 2, Int32Array.of(1), 1420, status), /slots: expected an Int32Array of 2/, "seal: short slots");
  throwsWith(() => addon.wgSeal(b.slab, b.offs, b.lens, 2, slots, -1, status), /mtu/, "seal: negative mtu");
  throwsWith(() => addon.wgSeal(b.slab, b.offs, b.lens, 2, slots, 1420, new Int32Array(1)), /status/, "seal: short status");
  throwsWith(() => addon.wgSeal(b.slab, Int32Array.of(15, FIRST), b.lens, 2, slots, 1420, status), /packet 0 \(offset 15.*16 bytes before/, "seal: no headroom");
  const last = b.slab.length - (112 + TAG); // 100 bytes pad to 112
  throwsWith(() => addon.wgSeal(b.slab, Int32Array.of(FIRST, last + 1), b.lens, 2, slots, 1420, status), /packet 1 .*28 after/, "seal: no tailroom");
  t.doesNotThrow(() => addon.wgSeal(b.slab, Int32Array.of(FIRST, last), b.lens, 2, Int32Array.of(4001, 4001), 1420, status), "exactly the room it needs");

  const out = new Int32Array(2 * 3);
  throwsWith(() => addon.wgOpen(b.slab, b.offs, b.lens, 2, null, new Int32Array(5)), /out: 5 Int32s hold 1 entries, the batch has 2 messages/, "open: out too short");
  throwsWith(() => addon.wgOpen(b.slab, b.offs, b.lens, 2, Int32Array.of(10), out), /segs: expected null or an Int32Array of 2/, "open: short segs");
  throwsWith(() => addon.wgOpen(b.slab, b.offs, b.lens, 2, Int32Array.of(10, 0), out), /the batch has 11 messages/, "open: GRO segments counted");
  t.equal(addon.wgOpen(b.slab, b.offs, b.lens, 2, undefined as unknown as null, out), 2, "open: segs may be left undefined");
});
