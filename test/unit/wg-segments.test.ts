// udpSendSegments with slots: every datagram it sends is a sealed WireGuard data message.
// TSO/USO super-packets and whole packets go out over real loopback UDP sockets (with and
// without GSO) to a plain socket; each datagram is decrypted with node:crypto and must
// carry exactly what the unsealed path sends for the same input, in the same order.
import t from "tap";
import type { Test } from "tap";
import dgram from "node:dgram";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { addon, UDP_GSO } from "../../src/native/addon.ts";
import { encodeEndpoint, ENDPOINT_BYTES, parseIp } from "../../src/net/address.ts";
import { closeUdp, openUdp } from "../../src/native/udp.ts";
import { HEADER, TAG, openMessage, paddingFor } from "./lib/wg-messages.ts";

const MTU = 1420;
const STRIDE = 70_000; // one super-packet (virtio header + up to 64 KiB) per stride
const LOOPBACK = parseIp("127.0.0.1")!;

// ---------------------------------------------------------------- super-packets

const VNET_NEEDS_CSUM = 1;
const GSO_NONE = 0;
const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const GSO_UDP_L4 = 5;

function vnet(gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): Buffer {
  const h = Buffer.alloc(10);
  h[0] = csumStart ? VNET_NEEDS_CSUM : 0;
  h[1] = gsoType;
  h.writeUInt16LE(hdrLen, 2);
  h.writeUInt16LE(gsoSize, 4);
  h.writeUInt16LE(csumStart, 6);
  h.writeUInt16LE(csumOffset, 8);
  return h;
}

/** IPv4 + TCP (12 bytes of options) super-packet, segments of MTU - 52 payload bytes. */
function tso4(payload: number): Buffer {
  const ip = Buffer.alloc(20);
  ip.set([0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2]);
  ip.writeUInt16BE(20 + 32 + payload, 2);
  const tcp = Buffer.alloc(32);
  tcp.writeUInt16BE(40000, 0);
  tcp.writeUInt16BE(5201, 2);
  tcp.writeUInt32BE(0x01020304, 4);
  tcp[12] = 8 << 4;
  tcp[13] = 0x18; // ACK, PSH
  tcp.writeUInt16BE(512, 14);
  tcp.set([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], 20); // NOP NOP timestamps
  return Buffer.concat([vnet(GSO_TCPV4, 52, MTU - 52, 20, 16), ip, tcp, randomBytes(payload)]);
}

/** IPv6 + UDP super-packet (USO), segments of `size` payload bytes. */
function uso6(payload: number, size: number): Buffer {
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(8 + payload, 4);
  ip[6] = 17;
  ip[7] = 64;
  ip.set([0xfd, 0x77, ...Array(13).fill(0), 1], 8);
  ip.set([0xfd, 0x77, ...Array(13).fill(0), 2], 24);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(5000, 0);
  udp.writeUInt16BE(5001, 2);
  udp.writeUInt16BE(8 + payload, 4);
  return Buffer.concat([vnet(GSO_UDP_L4, 48, size, 40, 6), ip, udp, randomBytes(payload)]);
}

/** A whole IPv4 UDP packet of `len` bytes behind an empty virtio header. */
function whole4(len: number): Buffer {
  const ip = Buffer.alloc(28);
  ip.set([0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2]);
  ip.writeUInt16BE(len, 2);
  return Buffer.concat([vnet(GSO_NONE, 0, 0, 0, 0), ip, randomBytes(len - 28)]);
}

// ---------------------------------------------------------------- sockets

/** A plain loopback socket that hands over the datagrams it got, n at a time. */
async function receiver(t: Test) {
  const sock = dgram.createSocket({ type: "udp4", recvBufferSize: 8 << 20 });
  const queue: Buffer[] = [];
  let waiting: { n: number; resolve: (d: Buffer[]) => void } | null = null;
  sock.on("message", (msg) => {
    queue.push(msg);
    if (waiting && queue.length >= waiting.n) waiting.resolve(queue.splice(0, waiting.n));
  });
  sock.bind(0, "127.0.0.1");
  await once(sock, "listening");
  t.teardown(() => sock.close());
  const take = (n: number) =>
    new Promise<Buffer[]>((resolve) => {
      if (queue.length >= n) resolve(queue.splice(0, n));
      else waiting = { n, resolve };
    });
  return { endpoint: encodeEndpoint(LOOPBACK, sock.address().port), take, pending: () => queue.length };
}

function sender(t: Test, gso: boolean) {
  const sock = openUdp(LOOPBACK, 0, 8 << 20, 8 << 20);
  t.teardown(() => closeUdp(sock));
  if (gso) t.equal(addon.udpOffload(sock.fd, UDP_GSO), UDP_GSO, "the kernel takes UDP GSO");
  return sock;
}

interface Sent {
  status: number[];
  bytes: number[];
  sends: number;
  datagrams: Buffer[];
}

/** Sends the packets with one udpSendSegments call; slots given: sealed. */
async function send(
  t: Test, packets: Buffer[], gso: boolean, slots: number[] | null,
): Promise<Sent> {
  const rx = await receiver(t);
  const tx = sender(t, gso);
  const n = packets.length;
  const slab = new Uint8Array(STRIDE * n);
  const offs = new Int32Array(n);
  const lens = new Int32Array(n);
  packets.forEach((p, i) => {
    offs[i] = i * STRIDE + 64;
    lens[i] = p.length;
    slab.set(p, offs[i]);
  });
  const dst = new Uint8Array(ENDPOINT_BYTES * n);
  for (let i = 0; i < n; i++) dst.set(rx.endpoint, i * ENDPOINT_BYTES);
  const status = new Int32Array(n);
  const bytes = new Int32Array(n);
  const state = new Int32Array(3);
  const args = [tx.fd, 0, slab, offs, lens, n, dst, status, bytes, state, new Uint8Array(0), gso ? 1 : 0] as const;
  const done = slots ? addon.udpSendSegments(...args, Int32Array.from(slots), MTU) : addon.udpSendSegments(...args);
  t.equal(done, n, "every packet processed (the socket had room)");
  t.equal(state[1], 0, "GSO not refused");
  const count = [...status].reduce((a, s) => a + Math.max(s, 0), 0);
  const datagrams = await rx.take(count);
  t.equal(rx.pending(), 0, "nothing more arrived");
  return { status: [...status], bytes: [...bytes], sends: state[2], datagrams };
}

let nextSlot = 100;
function install(t: Test) {
  const slot = nextSlot++;
  const kp = { slot, local: slot, remote: 0xabc00000 + slot, send: randomBytes(32), recv: randomBytes(32) };
  addon.wgKeypairSet(slot, kp.local, kp.remote, kp.send, kp.recv);
  t.teardown(() => addon.wgKeypairClear(slot));
  return kp;
}

/** Decrypts every sealed datagram and checks it against the plain one sent for the same input. */
function compare(t: Test, kp: { send: Buffer; remote: number }, sealed: Sent, plain: Sent, firstCounter = 0n) {
  t.same(sealed.status, plain.status, "same statuses: segments sent per packet");
  t.same(sealed.bytes, plain.bytes, "same inner bytes per packet");
  t.equal(sealed.datagrams.length, plain.datagrams.length, "as many datagrams");
  const got = sealed.datagrams.map((d, i) => {
    const o = openMessage(kp.send, d);
    const size = plain.datagrams[i]?.length ?? 0;
    return { type: o.type, receiver: o.receiver, counter: o.counter, length: d.length,
      inner: o.plaintext.subarray(0, size).equals(plain.datagrams[i] ?? Buffer.alloc(0)),
      padding: o.plaintext.subarray(size).toString("hex") };
  });
  const want = plain.datagrams.map((p, i) => {
    const pad = paddingFor(p.length, MTU);
    return { type: 4, receiver: kp.remote, counter: firstCounter + BigInt(i), length: HEADER + p.length + pad + TAG,
      inner: true, padding: "00".repeat(pad) };
  });
  t.same(got, want, "each datagram: type 4, receiver, counters in order, the plain datagram inside, zero padding");
}

// ---------------------------------------------------------------- tests

const mixed = () => [
  tso4(5000), // 4 segments: 3 of the MTU (no padding), a short last
  uso6(3000, 1000), // 3 equal segments of 1048 bytes (pad to 1056)
  whole4(100), whole4(105), whole4(110), whole4(112), whole4(60), // one train when sealed
  tso4(61_000), // 45 segments: one GSO send plain (45 x 1420), two sealed (45 x 1452 > 65000)
  whole4(MTU),
];

for (const gso of [true, false]) {
  t.test(`sealed segments, ${gso ? "with" : "without"} GSO: the plain datagrams, sealed`, async (t) => {
    const kp = install(t);
    const packets = mixed();
    const copies = () => packets.map((p) => Buffer.from(p));
    const plain = await send(t, copies(), gso, null);
    const sealed = await send(t, copies(), gso, packets.map(() => kp.slot));
    t.same(plain.status, [4, 3, 1, 1, 1, 1, 1, 45, 1], "the plain path split as expected");
    compare(t, kp, sealed, plain);
    const out = new Float64Array(2);
    addon.wgKeypairCounters(kp.slot, out);
    t.equal(out[0], sealed.datagrams.length, "one counter per datagram");
    if (gso) {
      // tso4(5000) 1, uso6 1, the whole packets 4 plain (sizes differ) but 1 sealed (all
      // pad to 112; 60 to 64, shorter, last), tso4(61000) 1 plain but 2 sealed, whole 1.
      t.equal(plain.sends, 8, "plain GSO sends");
      t.equal(sealed.sends, 6, "sealed GSO sends: trains sized by the sealed lengths");
    } else {
      t.equal(sealed.sends, sealed.datagrams.length, "one send per datagram");
    }
  });
}

/** IPv4 or IPv6 TCP super-packet: `options` bytes of TCP options (a multiple of 4, up to
 * 40), segments of `size` payload bytes. */
function tso(v6: boolean, payload: number, options: number, size: number): Buffer {
  const iphl = v6 ? 40 : 20;
  const ip = Buffer.alloc(iphl);
  if (v6) {
    ip[0] = 0x60;
    ip.writeUInt16BE(20 + options + payload, 4);
    ip[6] = 6;
    ip[7] = 64;
    ip.set([0xfd, 0x77, ...Array(13).fill(0), 1], 8);
    ip.set([0xfd, 0x77, ...Array(13).fill(0), 2], 24);
  } else {
    ip.set([0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 77, 0, 1, 10, 77, 0, 2]);
    ip.writeUInt16BE(20 + 20 + options + payload, 2);
  }
  const tcp = Buffer.alloc(20 + options, 1); // options: NOPs
  tcp.writeUInt16BE(40000, 0);
  tcp.writeUInt16BE(5201, 2);
  tcp.writeUInt32BE(0x01020304, 4);
  tcp.writeUInt32BE(0, 8);
  tcp[12] = ((20 + options) / 4) << 4;
  tcp[13] = 0x18;
  tcp.writeUInt16BE(512, 14);
  tcp.writeUInt32BE(0, 16);
  const hdr = iphl + 20 + options;
  return Buffer.concat([vnet(v6 ? GSO_TCPV6 : GSO_TCPV4, hdr, size, iphl, 16), ip, tcp, randomBytes(payload)]);
}

t.test("sealed segments: random header and payload splits, whole packets 1..1500, against node:crypto", async (t) => {
  // Each datagram is sealed from two pieces (the header block built per segment, the
  // payload slice in the slab) copied together into the seal buffer and enciphered in one
  // update; whatever that buffer held before must not show up as padding.
  const kp = install(t);
  const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
  const packets: Buffer[] = [];
  for (let i = 0; i < 16; i++) {
    const v6 = i % 2 === 1;
    const options = 4 * rand(0, 10);
    const header = (v6 ? 40 : 20) + 20 + options;
    packets.push(tso(v6, rand(1, 9000), options, rand(1, MTU - header)));
  }
  for (let i = 0; i < 8; i++) packets.push(uso6(rand(1, 9000), rand(1, MTU - 48)));
  for (let i = 0; i < 24; i++) packets.push(whole4(rand(28, 1500)));
  for (const len of [1, 2, 15, 27]) packets.push(Buffer.concat([vnet(GSO_NONE, 0, 0, 0, 0), Buffer.of(0x45), randomBytes(len - 1)]));
  for (const gso of [true, false]) {
    const copies = () => packets.map((p) => Buffer.from(p));
    const plain = await send(t, copies(), gso, null);
    const before = new Float64Array(2);
    addon.wgKeypairCounters(kp.slot, before);
    const sealed = await send(t, copies(), gso, packets.map(() => kp.slot));
    compare(t, kp, sealed, plain, BigInt(before[0]));
  }
});

t.test("sealed segments: more than the seal buffer holds (512 KiB) in one call", async (t) => {
  const kp = install(t);
  const packets = Array.from({ length: 12 }, () => tso4(61_000)); // 540 datagrams, 784 KB sealed
  const plain = await send(t, packets.map((p) => Buffer.from(p)), true, null);
  const sealed = await send(t, packets, true, packets.map(() => kp.slot));
  compare(t, kp, sealed, plain);
});

t.test("sealed segments: a packet without a keypair fails alone, the others go out", async (t) => {
  const kp = install(t);
  const packets = [tso4(3000), uso6(2000, 1000), tso4(2000)];
  const copies = () => packets.map((p) => Buffer.from(p));
  const plain = await send(t, copies(), true, null);
  const sealed = await send(t, copies(), true, [kp.slot, 4095, kp.slot]);
  t.same(sealed.status, [3, addon.WG_NO_KEYPAIR, 2], "WG_NO_KEYPAIR for the empty slot");
  const without = { ...plain, status: sealed.status, bytes: [plain.bytes[0], 0, plain.bytes[2]],
    datagrams: [...plain.datagrams.slice(0, 3), ...plain.datagrams.slice(5)] };
  compare(t, kp, sealed, without);
});

t.test("sealed segments: counters go on from where wgSeal left them", async (t) => {
  const kp = install(t);
  const slab = new Uint8Array(256);
  const status = new Int32Array(1);
  addon.wgSeal(slab, Int32Array.of(64), Int32Array.of(10), 1, Int32Array.of(kp.slot), MTU, status);
  const packets = [tso4(4000)];
  const plain = await send(t, packets.map((p) => Buffer.from(p)), true, null);
  const sealed = await send(t, packets, true, [kp.slot]);
  compare(t, kp, sealed, plain, 1n);
});

t.test("plain behaviour unchanged when slots is null or left out", async (t) => {
  const packets = mixed();
  const a = await send(t, packets.map((p) => Buffer.from(p)), true, null);
  const rx = await receiver(t);
  const tx = sender(t, true);
  const slab = new Uint8Array(STRIDE * packets.length);
  const offs = Int32Array.from(packets, (_, i) => i * STRIDE + 64);
  const lens = Int32Array.from(packets, (p) => p.length);
  packets.forEach((p, i) => slab.set(p, offs[i]));
  const dst = new Uint8Array(ENDPOINT_BYTES * packets.length);
  packets.forEach((_, i) => dst.set(rx.endpoint, i * ENDPOINT_BYTES));
  const status = new Int32Array(packets.length);
  const state = new Int32Array(3);
  addon.udpSendSegments(tx.fd, 0, slab, offs, lens, packets.length, dst, status, new Int32Array(packets.length), state,
    new Uint8Array(0), 1, null, MTU);
  const b = await rx.take(a.datagrams.length);
  t.same(b, a.datagrams, "slots null: the same datagrams");
  t.equal(state[2], a.sends, "and the same sends");
});

t.test("sealed segments: bad arguments throw EINVAL naming the field", async (t) => {
  const tx = sender(t, false);
  const slab = new Uint8Array(STRIDE);
  const p = whole4(100);
  slab.set(p, 64);
  const args = (header: Uint8Array) =>
    [tx.fd, 0, slab, Int32Array.of(64), Int32Array.of(p.length), 1, encodeEndpoint(LOOPBACK, 9), new Int32Array(1),
      new Int32Array(1), new Int32Array(3), header, 0] as const;
  t.throws(() => addon.udpSendSegments(...args(new Uint8Array(4)), Int32Array.of(1), MTU),
    { code: "EINVAL", message: /header: 4 bytes, but sealed datagrams carry none/ });
  t.throws(() => addon.udpSendSegments(...args(new Uint8Array(0)), Int32Array.of(4096), MTU),
    { code: "EINVAL", message: /udpSendSegments: slots\[0\]: 4096 is not a keypair slot/ });
  t.throws(() => addon.udpSendSegments(...args(new Uint8Array(0)), new Int32Array(0), MTU),
    { code: "EINVAL", message: /slots: expected an Int32Array of 1/ });
  t.throws(() => addon.udpSendSegments(...args(new Uint8Array(0)), Int32Array.of(1)),
    { code: "EINVAL", message: /mtu: missing/ });
  t.throws(() => addon.udpSendSegments(...args(new Uint8Array(0)), Int32Array.of(1), 70000),
    { code: "EINVAL", message: /mtu: expected an integer in 0..65535/ });
});
