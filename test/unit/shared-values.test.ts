// Values C and TypeScript share. C defines them and the addon exports them (udptun.c); this
// checks that TypeScript reads every one from there and defines none of its own, that the
// sizes TypeScript chooses fit the addon's limits, and, over real loopback sockets, that
// both sides read the endpoint form and the batch-call arrays the same way.
import t from "tap";
import { once } from "node:events";
import { createSocket } from "node:dgram";
import type { AddressInfo } from "node:net";
import * as native from "../../src/native/addon.ts";
import { addon } from "../../src/native/addon.ts";
import { openUdp, closeUdp } from "../../src/native/udp.ts";
import { ENDPOINT_BYTES, encodeEndpoint, formatEndpoint, parseIp } from "../../src/net/address.ts";
import { BATCH, DATAGRAM_START, HEADROOM, WRITE_BATCH } from "../../src/tunnel/constants.ts";
import { DATA_HEADER, HEADER_LEN } from "../../src/tunnel/header.ts";

/** Every number the addon exports, by name. */
const shared = Object.entries(addon).filter((e): e is [string, number] => typeof e[1] === "number");

t.test("the addon exports each shared value as a fixed integer, and addon.ts passes it on unchanged", async (t) => {
  t.ok(shared.length >= 20, `${shared.length} values exported`);
  for (const [name, value] of shared) {
    // Only the WireGuard verdicts are negative (below -4095, so never a -errno).
    t.ok(Number.isInteger(value) && (value >= 0 || (name.startsWith("WG_") && value < -4095)), `${name} = ${value}`);
    const d = Object.getOwnPropertyDescriptor(addon, name)!;
    t.notOk(d.writable || d.configurable, `${name} cannot be changed from JS`);
    if (name.startsWith("TUN_F_")) continue; // passed on as TUN_OFFLOAD_BITS
    if (name === "ENDPOINT_BYTES") continue; // address.ts has its own, checked below
    t.equal((native as Record<string, unknown>)[name], value, `addon.ts exports ${name} from the addon`);
  }
  const tunBits = shared.filter(([name]) => name.startsWith("TUN_F_")).map(([, v]) => v).sort((x, y) => x - y);
  t.same(Object.values(native.TUN_OFFLOAD_BITS).sort((x, y) => x - y), tunBits, "TUN_OFFLOAD_BITS holds exactly the addon's TUN_F_* bits");
});

t.test("addon.ts defines no number of its own", async (t) => {
  const exported = new Map(shared);
  for (const [name, value] of Object.entries(native)) {
    if (typeof value !== "number") continue;
    t.equal(exported.get(name), value, `${name} comes from the addon`);
  }
});

t.test("flags are distinct bits, array positions distinct and inside their arrays", async (t) => {
  const bits = (label: string, values: number[]) => {
    for (const v of values) t.ok(v > 0 && (v & (v - 1)) === 0, `${label}: ${v} is one bit`);
    t.equal(new Set(values).size, values.length, `${label}: no bit twice`);
  };
  bits("poll events", [native.READABLE, native.WRITABLE]);
  bits("tunOpen flags", [native.TUN_OPEN_MULTI_QUEUE, native.TUN_OPEN_VNET, native.TUN_OPEN_DETACHED]);
  bits("udpOffload bits", [native.UDP_GSO, native.UDP_GRO]);
  bits("join bits", [native.JOIN_TCP, native.JOIN_UDP]);
  bits("TUN offload bits", Object.values(native.TUN_OFFLOAD_BITS));

  const state = [native.SEND_STATE_RESUME, native.SEND_STATE_GSO_ERRNO, native.SEND_STATE_SENDS];
  t.same([...state].sort((x, y) => x - y), [0, 1, 2], "the send state's positions");
  t.equal(native.SEND_STATE_LEN, state.length, "SEND_STATE_LEN counts them");
  t.equal(native.WRITE_STATS_WRITES, 0, "the write stats' one position");
  t.equal(native.WRITE_STATS_LEN, 1);
});

t.test("what TypeScript chooses fits what the addon takes", async (t) => {
  t.ok(BATCH >= 1 && BATCH <= native.MAX_BATCH, `BATCH ${BATCH} <= MAX_BATCH ${native.MAX_BATCH}`);
  t.ok(WRITE_BATCH <= native.MAX_WRITE_BATCH, `WRITE_BATCH ${WRITE_BATCH} <= MAX_WRITE_BATCH ${native.MAX_WRITE_BATCH}`);
  t.equal(WRITE_BATCH, BATCH * native.GRO_MAX_SEGS, "a write batch holds every segment of a read batch");
  t.equal(DATA_HEADER.length, HEADER_LEN);
  t.ok(HEADER_LEN <= native.HEADER_ROOM_MAX, `our header (${HEADER_LEN}) fits HEADER_ROOM_MAX ${native.HEADER_ROOM_MAX}`);
  t.ok(DATAGRAM_START >= 0 && HEADER_LEN <= HEADROOM, `our header (${HEADER_LEN}) fits the headroom (${HEADROOM})`);
  t.equal(ENDPOINT_BYTES, addon.ENDPOINT_BYTES, "the endpoint form has one length on both sides");
});

t.test("the endpoint form: C reads what address.ts writes, and address.ts reads what C writes", async (t) => {
  for (const host of ["127.0.0.1", "::1"]) {
    const ip = parseIp(host)!;
    const sock = openUdp(ip, 0, 0, 0);
    const peer = createSocket(ip.family === 4 ? "udp4" : "udp6");
    t.teardown(() => {
      closeUdp(sock);
      peer.close();
    });
    peer.bind(0, host);
    await once(peer, "listening");
    const peerPort = (peer.address() as AddressInfo).port;
    const bound = formatEndpoint(sock.endpoint);
    const port = Number(bound.slice(bound.lastIndexOf(":") + 1));
    t.equal(bound, ip.family === 4 ? `${host}:${port}` : `[${host}]:${port}`, `${host}: the bound endpoint C wrote`);
    t.ok(port > 0, "with the port the kernel chose");

    // JS -> C: a datagram from a known source, read by udpRecv once the poll says READABLE.
    const readable = new Promise<number>((resolve) => {
      const watch = addon.pollStart(sock.fd, native.READABLE, (_status, events) => {
        addon.pollStop(watch);
        resolve(events);
      });
    });
    peer.send(Uint8Array.of(1, 2, 3), port, host);
    t.equal((await readable) & native.READABLE, native.READABLE, "the poll reports READABLE");
    const slab = new Uint8Array(64);
    const offs = Int32Array.of(0);
    const lens = Int32Array.of(64);
    const sources = new Uint8Array(ENDPOINT_BYTES);
    t.equal(addon.udpRecv(sock.fd, slab, offs, lens, 1, sources), 1, "one datagram");
    t.same(sources, encodeEndpoint(ip, peerPort), "its source, as C wrote it, is the bytes address.ts encodes");

    // C -> JS: udpSend to a destination address.ts encoded reaches that socket.
    const got = once(peer, "message");
    slab.set([7, 8, 9], 0);
    lens[0] = 3;
    const status = new Int32Array(1);
    t.equal(addon.udpSend(sock.fd, sock.v6, slab, offs, lens, 1, encodeEndpoint(ip, peerPort), status), 1, "sent");
    t.equal(status[0], 0, "status 0");
    const [msg, rinfo] = (await got) as [Buffer, AddressInfo];
    t.same([...msg], [7, 8, 9], "the datagram arrived");
    t.equal(rinfo.port, port, "from the addon's socket");
  }
});

t.test("the addon holds its batch calls to the limits and array lengths it exports", async (t) => {
  const sock = openUdp(parseIp("127.0.0.1")!, 0, 0, 0);
  t.teardown(() => closeUdp(sock));
  const n = native.MAX_BATCH + 1;
  const slab = new Uint8Array(n);
  const offs = new Int32Array(n);
  const lens = new Int32Array(n);
  const sources = new Uint8Array(n * ENDPOINT_BYTES);
  t.throws(() => addon.udpRecv(sock.fd, slab, offs, lens, n, sources), /count out of range/, "MAX_BATCH + 1 refused");
  t.equal(addon.udpRecv(sock.fd, slab, offs, lens, native.MAX_BATCH, sources), 0, "MAX_BATCH taken (nothing waiting)");

  const none = new Int32Array(0);
  const send = (state: Int32Array) =>
    addon.udpSendSegments(sock.fd, sock.v6, slab, none, none, 0, new Uint8Array(0), none, none, state, DATA_HEADER, 1);
  t.throws(() => send(new Int32Array(native.SEND_STATE_LEN - 1)), /udpSendSegments arrays/, "a state array too short refused");
  const state = new Int32Array(native.SEND_STATE_LEN).fill(-9);
  t.equal(send(state), 0, "an empty batch sent");
  t.equal(state[native.SEND_STATE_RESUME], 0, "nothing to resume");
  t.equal(state[native.SEND_STATE_GSO_ERRNO], 0, "no GSO refusal");
  t.equal(state[native.SEND_STATE_SENDS], 0, "no sends");
  t.throws(
    () => addon.udpSendSegments(sock.fd, sock.v6, slab, none, none, 0, new Uint8Array(0), none, none, state,
      new Uint8Array(native.HEADER_ROOM_MAX + 1), 1),
    /udpSendSegments arrays/, "a header longer than HEADER_ROOM_MAX refused",
  );

  const write = (stats: Int32Array) => addon.tunWriteOffload(-1, slab, none, none, 0, none, native.JOIN_TCP, stats);
  t.throws(() => write(new Int32Array(native.WRITE_STATS_LEN - 1)), /tunWriteOffload status\/stats/, "a stats array too short refused");
  const stats = Int32Array.of(-9);
  t.equal(write(stats), 0, "an empty batch written");
  t.equal(stats[native.WRITE_STATS_WRITES], 0, "no writes");
});
