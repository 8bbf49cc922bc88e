// Zero-allocation check for the data path: pushes packets through both paths with an
// in-memory packet I/O (no syscalls, so only our JS is measured) and reports heap growth,
// garbage collections and the pools' allocated counts after warm-up. Both paths run twice:
// without offloads (a packet per read), and with them (each TUN read a TSO super-packet of
// SEGS segments, each datagram a GRO datagram of SEGS; the native split and join are
// faked, so the JS around them is what is measured).
//
// Then the same four runs over the WireGuard transport (src/tunnel/wireguard.ts): its real
// Sealer and Opener, its protocol (WgDevice) and the addon's keypair table, after a real
// handshake with a peer that is the protocol alone. The fake kernel seals what it hands the
// network path with that peer's keys (wgSeal; its CPU, measured apart, is left out),
// so every message is opened, replay-checked and judged for real; without offloads the
// device path seals with wgSeal for real. With offloads the split and its sealing are inside
// udpSendSegments, which is faked like the rest of the kernel.
//
// Per run: CPU ns per packet (CPU time, not wall time: the machine may be shared), the bytes
// the run allocated (the heap's growth when no GC ran; the fake kernel allocates nothing),
// GCs, and the pool's counts. Exit 1 on a GC during a run, a pool that grew, a buffer left
// in use, or a drop.
//   node --expose-gc bench/alloc.ts [packets per path, default 1000000]
import { PerformanceObserver } from "node:perf_hooks";
import { pino } from "pino";
import type { WireGuardConfig, WireGuardPeerConfig } from "../src/config/schema.ts";
import {
  addon, SEND_STATE_GSO_ERRNO, SEND_STATE_RESUME, VNET_HDR_LEN, WG_HEADER_LEN, WG_KEYPAIR_SLOTS, WG_TAG_LEN, WRITE_STATS_WRITES,
} from "../src/native/addon.ts";
import type { PacketIo } from "../src/native/addon.ts";
import { parsePrefix, encodeEndpoint, parseIp, ENDPOINT_BYTES } from "../src/net/address.ts";
import { BufferPool } from "../src/pool/buffer-pool.ts";
import { BATCH, bufferSizeFor, HEADROOM, SUPER_BUFFER_SIZE } from "../src/tunnel/constants.ts";
import { DevicePath } from "../src/tunnel/device-path.ts";
import { NetworkPath } from "../src/tunnel/network-path.ts";
import { Peer, PeerTable } from "../src/tunnel/peers.ts";
import { ipv4HeaderSum } from "../src/tunnel/ip-packet.ts";
import type { Offloads } from "../src/tunnel/offloads.ts";
import { WireGuardTransport } from "../src/tunnel/wireguard.ts";
import { WgDevice } from "../src/wireguard/device.ts";
import { generatePrivateKey, publicKeyOf } from "../src/wireguard/x25519.ts";

const PACKETS = Number(process.argv[2] ?? 1_000_000);
const MTU = 1420;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");

// 1400-byte IPv4 packets with a right header checksum: from the peer (network path) and to it (device path).
function ipv4(src: number[], dst: number[]): Uint8Array {
  const p = new Uint8Array(1400);
  p.set([0x45, 0, 1400 >> 8, 1400 & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, ...src, ...dst]);
  const sum = ipv4HeaderSum(p, 0, 20);
  p[10] = (~sum >> 8) & 0xff;
  p[11] = ~sum & 0xff;
  return p;
}
const inner = ipv4([10, 77, 0, 2], [10, 77, 0, 1]);
const outbound = ipv4([10, 77, 0, 1], [10, 77, 0, 2]);
const datagram = new Uint8Array(4 + inner.length);
datagram.set([0x11, 0, 0, 0]);
datagram.set(inner, 4);
const peerEndpoint = encodeEndpoint(parseIp("198.18.0.2")!, 51820);

// Offloads: a super-packet is a virtio header and a 64 KiB-ish IP packet (only its header
// is read by JS); a GRO datagram is SEGS datagrams back to back.
const SEGS = 45;
const superPacket = new Uint8Array(VNET_HDR_LEN + outbound.length);
superPacket.set(outbound, VNET_HDR_LEN);
const groDatagram = new Uint8Array(datagram.length * SEGS);
for (let k = 0; k < SEGS; k++) groDatagram.set(datagram, k * datagram.length);

let budget = 0; // packets the fake kernel still has to hand over

/** Copies `unit` (holding `per` packets) into up to `count` buffers while the budget lasts;
 * with sources, each filled buffer comes from the peer (and with segs, holds datagrams of
 * the plain datagram's size). Returns how many were filled. No closures: the fake kernel
 * allocates nothing either, so what a run allocates is ours. */
function handOver(
  slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, unit: Uint8Array, per: number, sources?: Uint8Array, segs?: Int32Array,
): number {
  const n = Math.min(count, Math.ceil(budget / per));
  for (let i = 0; i < n; i++) {
    slab.set(unit, offs[i]);
    lens[i] = unit.length;
    if (sources) sources.set(peerEndpoint, i * ENDPOINT_BYTES);
    if (segs) segs[i] = datagram.length;
  }
  budget -= n * per;
  return n;
}

// WireGuard. The peer's side of the wire: control messages it answered with, delivered
// before anything else; then the inner packet sealed (in place, where it lands) with the
// peer's keypair, installed in a slot the transport never reaches (its slots are taken
// from 0 up). wgSeal's time is the fake kernel's, kept apart.
const PEER_SLOT = WG_KEYPAIR_SLOTS - 1;
const SEALED = WG_HEADER_LEN + Math.ceil(inner.length / 16) * 16 + WG_TAG_LEN; // one data message
let sealing = false; // udpRecv hands over sealed messages (else our plain header)
const wire: Uint8Array[] = [];
/** Datagrams the transport sent while set (the handshake), else only counted. */
let capture: Uint8Array[] | null = null;
const sealOffs = new Int32Array(SEGS * 2);
const sealLens = new Int32Array(SEGS * 2);
const sealSlots = new Int32Array(SEGS * 2).fill(PEER_SLOT);
const sealStatus = new Int32Array(SEGS * 2);
let sealed = 0; // messages the fake kernel sealed; their CPU is taken out of the run's (sealCost)

/** Seals the first count plaintexts placed at sealOffs (each is `inner`) in place. Not timed
 * here: a clock read per call would allocate, and the run's allocations must all be ours. */
function sealFake(slab: Uint8Array, count: number): void {
  addon.wgSeal(slab, sealOffs, sealLens, count, sealSlots, MTU, sealStatus);
  sealed += count;
  for (let i = 0; i < count; i++) if (sealStatus[i] !== 0 || sealLens[i] !== SEALED) throw new Error(`fake kernel: wgSeal status ${sealStatus[i]}, length ${sealLens[i]}`);
}

/** CPU milliseconds the fake kernel spends sealing one message (the peer's keypair installed). */
function sealCost(): number {
  const scratch = new Uint8Array(SEGS * SEALED + 64);
  const rounds = 400;
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < SEGS; k++) {
      sealOffs[k] = k * SEALED + WG_HEADER_LEN;
      sealLens[k] = inner.length;
      scratch.set(inner, sealOffs[k]);
    }
    sealFake(scratch, SEGS);
  }
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1000 / (rounds * SEGS);
}
let perSeal = 0;

/** The peer's data messages into up to count buffers (with segs: SEGS messages each, GRO). */
function handOverSealed(slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, sources: Uint8Array, segs?: Int32Array): number {
  const per = segs ? SEGS : 1;
  const n = Math.min(count, Math.ceil(budget / per));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < per; k++) {
      sealOffs[k] = offs[i] + k * SEALED + WG_HEADER_LEN;
      sealLens[k] = inner.length;
      slab.set(inner, sealOffs[k]);
    }
    sealFake(slab, per);
    lens[i] = per * SEALED;
    if (segs) segs[i] = SEALED;
    sources.set(peerEndpoint, i * ENDPOINT_BYTES);
  }
  budget -= n * per;
  return n;
}

const io: PacketIo = {
  tunRead(_fd, slab, offs, lens, count) {
    return offloaded ? handOver(slab, offs, lens, count, superPacket, SEGS) : handOver(slab, offs, lens, count, outbound, 1);
  },
  udpSend(_fd, _v6, slab, offs, lens, count, _dst, status) {
    if (capture) for (let i = 0; i < count; i++) capture.push(slab.slice(offs[i], offs[i] + lens[i]));
    status.fill(0, 0, count);
    return count;
  },
  udpSendSegments(_fd, _v6, _slab, _offs, lens, count, _dst, status, bytes, state) {
    for (let i = 0; i < count; i++) {
      status[i] = SEGS;
      bytes[i] = lens[i];
    }
    state[SEND_STATE_RESUME] = state[SEND_STATE_GSO_ERRNO] = 0;
    return count;
  },
  udpRecv(_fd, slab, offs, lens, count, sources, segs) {
    const msg = wire.shift();
    if (msg) {
      slab.set(msg, offs[0]);
      lens[0] = msg.length;
      if (segs) segs[0] = 0;
      sources.set(peerEndpoint, 0);
      return 1;
    }
    if (sealing) return handOverSealed(slab, offs, lens, count, sources, segs);
    return segs ? handOver(slab, offs, lens, count, groDatagram, SEGS, sources, segs) : handOver(slab, offs, lens, count, datagram, 1, sources);
  },
  tunWrite(_fd, _slab, _offs, _lens, count, status) {
    status.fill(0, 0, count);
    return count;
  },
  tunWriteOffload(_fd, _slab, _offs, _lens, count, status, _join, stats) {
    status.fill(0, 0, count);
    stats[WRITE_STATS_WRITES] = Math.ceil(count / SEGS);
    return count;
  },
};
let offloaded = false;

const peer = new Peer("b", [parsePrefix("10.77.0.2/32")!]);
const peers = new PeerTable([peer]);
peers.setEndpoint(peer, peerEndpoint);
const tun = { fd: -1, name: "bench0", created: false, mtu: MTU, vnet: false, offload: 0 };
const tunVnet = { ...tun, vnet: true, offload: 0x67 };
const sock = { fd: -1, v6: 0, endpoint: encodeEndpoint(parseIp("198.18.0.1")!, 51820) };
const pool = (name: string, size: number) => new BufferPool({ name, bufferSize: size, capacity: 256, headroom: HEADROOM });
const devicePool = pool("device", bufferSizeFor(MTU));
const networkPool = pool("network", bufferSizeFor(MTU));
const devicePoolGso = pool("device_gso", SUPER_BUFFER_SIZE);
const networkPoolGro = pool("network_gro", SUPER_BUFFER_SIZE);
const noop = () => {};
const deviceHooks = { socketFull: noop, poolEmpty: noop, firstDrop: noop, gsoRefused: noop };
const devicePath = new DevicePath(tun, sock, devicePool, peers, deviceHooks, io);
const networkPath = new NetworkPath(sock, tun, networkPool, peers, { poolEmpty: noop, firstDrop: noop }, io);
const devicePathGso = new DevicePath(tunVnet, sock, devicePoolGso, peers, deviceHooks, io, { tun: true, gso: true });
const networkPathGro = new NetworkPath(sock, tunVnet, networkPoolGro, peers, { poolEmpty: noop, firstDrop: noop }, io, { gro: true, tun: true, join: 1 });

let gcs = 0;
new PerformanceObserver((l) => (gcs += l.getEntries().length)).observe({ entryTypes: ["gc"] });

function push(path: { onReadable(): void }, packets: number): void {
  budget = packets;
  while (budget > 0) path.onReadable();
}

const settle = async () => {
  gc!();
  await new Promise((r) => setImmediate(r)); // let the GC observer report
};

/** Each run's verdict: no GC during it, its pools no larger after it and nothing left in use. */
const failures: string[] = [];

async function measure(label: string, path: { onReadable(): void }, ps: BufferPool[], off: boolean): Promise<void> {
  offloaded = off;
  push(path, 200_000); // warm-up: JIT, lazy pool growth
  await settle();
  const heap0 = process.memoryUsage().heapUsed;
  const gc0 = gcs;
  const alloc0 = ps.map((p) => p.allocated);
  const sealed0 = sealed;
  const cpu0 = process.cpuUsage();
  push(path, PACKETS);
  const cpu = process.cpuUsage(cpu0);
  // With no GC during the run, the heap's growth is every byte the run allocated.
  const grown = process.memoryUsage().heapUsed - heap0;
  const gcDuring = gcs - gc0;
  await settle();
  const heap1 = process.memoryUsage().heapUsed;
  // CPU time, not wall time (the machine is shared), less the fake kernel's sealing.
  const sealing = (sealed - sealed0) * perSeal;
  const ms = (cpu.user + cpu.system) / 1000 - sealing;
  const kernel = sealing > 0 ? `, less ${sealing.toFixed(0)} ms of the fake kernel's sealing` : "";
  const allocated = gcDuring === 0 ? `${(grown / 1024).toFixed(1)} KiB allocated during the run (${(grown / PACKETS).toFixed(2)} B/packet), ` : "";
  console.log(
    `${label}: ${PACKETS} packets, ${((ms * 1e6) / PACKETS).toFixed(0)} ns/packet of CPU${kernel}; ` +
      `${allocated}heap ${((heap1 - heap0) / 1024).toFixed(1)} KiB after GC, ${gcDuring} GCs during the run, ` +
      ps.map((p, i) => `pool ${p.name} allocated ${alloc0[i]} -> ${p.allocated} (batch ${BATCH}), in use ${p.inUse}`).join("; "),
  );
  if (gcDuring > 0 || ps.some((p, i) => p.allocated > alloc0[i] || p.inUse > 0)) failures.push(label);
}

const runs = [
  ["device -> network", devicePath, devicePool, false],
  ["network -> device", networkPath, networkPool, false],
  ["device -> network, offloads (TSO + GSO)", devicePathGso, devicePoolGso, true],
  ["network -> device, offloads (GRO + join)", networkPathGro, networkPoolGro, true],
] as const;
for (const [label, path, p, off] of runs) await measure(label, path, [p], off);
const paths = [devicePath, networkPath, devicePathGso, networkPathGro];
const sum = (a: Float64Array) => a.reduce((s, d) => s + d, 0);
const drops = paths.reduce((a, x) => a + sum(x.drops), 0);
console.log(`forwarded: ${paths.map((x) => x.packets).join(", ")} packets; drops ${drops}`);

// ---- WireGuard ----

const silent = pino({ level: "silent" });
const hooks = { device: deviceHooks, network: { poolEmpty: noop, firstDrop: noop } };

/** udptun's WireGuard transport over the fake kernel, with a session to the peer "b" (a
 * real handshake: b is the protocol alone), whose keypair seals what the fake kernel hands
 * the network path. */
function wireGuard(offloads: Offloads, device: BufferPool, network: BufferPool): WireGuardTransport {
  const ourKey = generatePrivateKey();
  const theirKey = generatePrivateKey();
  const b = new Peer("b", [parsePrefix("10.77.0.2/32")!]);
  const table = new PeerTable([b]);
  table.setEndpoint(b, peerEndpoint);
  const fds = { tun: offloads.device.tun ? tunVnet : tun, tunWriteFd: -1, sock };
  const parts = { fds, pools: { device, network }, offloads, peers: table, log: silent, io };
  // Only the key fields are read by the transport.
  const config = { transport: "wireguard", privateKey: ourKey, publicKey: publicKeyOf(ourKey) } as WireGuardConfig;
  const t = new WireGuardTransport(parts, hooks, config, { moved: noop });
  const peerConfig = { name: "b", endpoint: null, publicKey: publicKeyOf(theirKey), presharedKey: null, persistentKeepalive: 0 };
  t.setPeers(table, [peerConfig as unknown as WireGuardPeerConfig]);

  // The peer: its replies go on the wire; its keys to the fake kernel's slot.
  const theirs = { remote: -1, send: new Uint8Array(32), recv: new Uint8Array(32) };
  const peer = new WgDevice({
    privateKey: theirKey,
    peers: [{ name: "a", publicKey: publicKeyOf(ourKey), endpoint: sock.endpoint }],
    effects: {
      send: (_ep, msg) => wire.push(Uint8Array.from(msg)),
      installKeypair: (_slot, _local, remote, send, recv) => {
        theirs.remote = remote;
        theirs.send.set(send);
        theirs.recv.set(recv);
      },
      removeKeypair: noop, sendKeepalive: noop, keypairReady: () => false, gaveUp: noop,
    },
  });

  // A packet for b finds no session: it is staged and an initiation goes out; b answers;
  // the response completes the handshake and the staged packet goes.
  offloaded = offloads.device.tun;
  capture = [];
  budget = 1;
  t.devicePath.onReadable();
  const initiation = capture.shift();
  if (!initiation) throw new Error("no handshake initiation was sent");
  peer.handshakeMessage(initiation, sock.endpoint, performance.now());
  if (wire.length !== 1 || theirs.remote < 0) throw new Error("the peer did not answer the initiation");
  t.networkPath.onReadable();
  capture = null;
  if (t.devicePath.packets !== (offloads.device.tun ? SEGS : 1)) throw new Error("the staged packet did not go once the handshake completed");
  addon.wgKeypairSet(PEER_SLOT, PEER_SLOT, theirs.remote, theirs.send, theirs.recv);
  return t;
}

const wgRuns = [
  ["", { device: { tun: false, gso: false }, network: { gro: false, tun: false, join: 0 } }, "device", "network", bufferSizeFor(MTU)],
  [", offloads (TSO + GSO)", { device: { tun: true, gso: true }, network: { gro: true, tun: true, join: 1 } }, "device_gso", "network_gro", SUPER_BUFFER_SIZE],
] as const;
sealing = true;
for (const [what, offloads, deviceName, networkName, size] of wgRuns) {
  const device = pool(deviceName, size);
  const network = pool(networkName, size);
  const t = wireGuard({ device: { ...offloads.device }, network: offloads.network }, device, network);
  perSeal = sealCost();
  const off = offloads.device.tun;
  await measure(`wireguard: device -> network${what}`, t.devicePath, [device], off);
  await measure(`wireguard: network -> device${off ? ", offloads (GRO + join)" : ""}`, t.networkPath, [network], off);
  // A TCP flow's pattern: data out, an answer in, data out again. Each answer disarms the
  // new-handshake timer and the next send re-arms it with fresh jitter, which one-way runs
  // never do.
  const both = { onReadable: () => (t.devicePath.onReadable(), t.networkPath.onReadable()) };
  await measure(`wireguard: both ways in turn${what}`, both, [device, network], off);
  const d = sum(t.devicePath.drops) + sum(t.networkPath.drops);
  console.log(`forwarded: ${t.devicePath.packets}, ${t.networkPath.packets} packets; drops ${d}; handshakes ${t.protocol.peers[0].counters.handshakesInitiated}`);
  if (d > 0) failures.push(`wireguard${what}: drops`);
  t.stop();
  addon.wgKeypairClear(PEER_SLOT);
}

console.log(failures.length === 0 ? "PASS: no GC, pools flat, nothing in use" : `FAIL: ${failures.join("; ")}`);
if (failures.length > 0 || drops > 0) process.exitCode = 1;
