// Zero-allocation check for the data path: pushes packets through both paths with an
// in-memory packet I/O (no syscalls, so only our JS is measured) and reports heap growth,
// garbage collections and the pools' allocated counts after warm-up. Both paths run twice:
// without offloads (a packet per read), and with them (each TUN read a TSO super-packet of
// SEGS segments, each datagram a GRO datagram of SEGS; the native split and join are
// faked, so the JS around them is what is measured).
//   node --expose-gc bench/alloc.ts [packets per path, default 1000000]
import { PerformanceObserver } from "node:perf_hooks";
import { SEND_STATE_GSO_ERRNO, SEND_STATE_RESUME, VNET_HDR_LEN, WRITE_STATS_WRITES } from "../src/native/addon.ts";
import type { PacketIo } from "../src/native/addon.ts";
import { parsePrefix, encodeEndpoint, parseIp, ENDPOINT_BYTES } from "../src/net/address.ts";
import { BufferPool } from "../src/pool/buffer-pool.ts";
import { BATCH, bufferSizeFor, HEADROOM, SUPER_BUFFER_SIZE } from "../src/tunnel/constants.ts";
import { DevicePath } from "../src/tunnel/device-path.ts";
import { NetworkPath } from "../src/tunnel/network-path.ts";
import { Peer, PeerTable } from "../src/tunnel/peers.ts";
import { ipv4HeaderSum } from "../src/tunnel/ip-packet.ts";

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
 * each buffer filled is passed to `also`. Returns how many were filled. */
function handOver(slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, unit: Uint8Array, per: number, also?: (i: number) => void): number {
  const n = Math.min(count, Math.ceil(budget / per));
  for (let i = 0; i < n; i++) {
    slab.set(unit, offs[i]);
    lens[i] = unit.length;
    also?.(i);
  }
  budget -= n * per;
  return n;
}

const io: PacketIo = {
  tunRead(_fd, slab, offs, lens, count) {
    return offloaded ? handOver(slab, offs, lens, count, superPacket, SEGS) : handOver(slab, offs, lens, count, outbound, 1);
  },
  udpSend(_fd, _v6, _slab, _offs, _lens, count, _dst, status) {
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
    const from = (i: number) => sources.set(peerEndpoint, i * ENDPOINT_BYTES);
    if (!segs) return handOver(slab, offs, lens, count, datagram, 1, from);
    return handOver(slab, offs, lens, count, groDatagram, SEGS, (i) => {
      segs[i] = datagram.length;
      from(i);
    });
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

function push(path: { onReadable(): void }, packets: number): number {
  budget = packets;
  const t0 = performance.now();
  while (budget > 0) path.onReadable();
  return performance.now() - t0;
}

const settle = async () => {
  gc!();
  await new Promise((r) => setImmediate(r)); // let the GC observer report
};

const runs = [
  ["device -> network", devicePath, devicePool, false],
  ["network -> device", networkPath, networkPool, false],
  ["device -> network, offloads (TSO + GSO)", devicePathGso, devicePoolGso, true],
  ["network -> device, offloads (GRO + join)", networkPathGro, networkPoolGro, true],
] as const;
for (const [label, path, p, off] of runs) {
  offloaded = off;
  push(path, 200_000); // warm-up: JIT, lazy pool growth
  await settle();
  const heap0 = process.memoryUsage().heapUsed;
  const gc0 = gcs;
  const alloc0 = p.allocated;
  const ms = push(path, PACKETS);
  const gcDuring = gcs - gc0;
  await settle();
  const heap1 = process.memoryUsage().heapUsed;
  console.log(
    `${label}: ${PACKETS} packets in ${ms.toFixed(0)} ms (${((ms * 1e6) / PACKETS).toFixed(0)} ns/packet of JS), ` +
      `heap ${((heap1 - heap0) / 1024).toFixed(1)} KiB after GC, ${gcDuring} GCs during the run, ` +
      `pool ${p.name} allocated ${alloc0} -> ${p.allocated} (batch ${BATCH}), in use ${p.inUse}`,
  );
}
const paths = [devicePath, networkPath, devicePathGso, networkPathGro];
const drops = paths.reduce((a, x) => a + x.drops.reduce((s, d) => s + d, 0), 0);
console.log(`forwarded: ${paths.map((x) => x.packets).join(", ")} packets; drops ${drops}`);
