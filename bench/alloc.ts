// Zero-allocation check for the data path: pushes packets through both paths with an
// in-memory packet I/O (no syscalls, so only our JS is measured) and reports heap growth,
// garbage collections and the pools' allocated counts after warm-up.
//   node --expose-gc bench/alloc.ts [packets per path, default 1000000]
import { PerformanceObserver } from "node:perf_hooks";
import type { PacketIo } from "../src/native/addon.ts";
import { parsePrefix, encodeEndpoint, parseIp, ENDPOINT_BYTES } from "../src/net/address.ts";
import { BufferPool } from "../src/pool/buffer-pool.ts";
import { BATCH, bufferSizeFor, HEADROOM } from "../src/tunnel/constants.ts";
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

const notFaked = (): never => {
  throw new Error("offload I/O is not part of this benchmark");
};
let budget = 0; // packets the fake kernel still has to hand over
const io: PacketIo = {
  udpSendSegments: notFaked,
  tunWriteOffload: notFaked,
  tunRead(_fd, slab, offs, lens, count) {
    const n = Math.min(count, budget);
    for (let i = 0; i < n; i++) {
      slab.set(outbound, offs[i]);
      lens[i] = outbound.length;
    }
    budget -= n;
    return n;
  },
  udpSend(_fd, _v6, _slab, _offs, _lens, count, _dst, status) {
    status.fill(0, 0, count);
    return count;
  },
  udpRecv(_fd, slab, offs, lens, count, sources) {
    const n = Math.min(count, budget);
    for (let i = 0; i < n; i++) {
      slab.set(datagram, offs[i]);
      lens[i] = datagram.length;
      sources.set(peerEndpoint, i * ENDPOINT_BYTES);
    }
    budget -= n;
    return n;
  },
  tunWrite(_fd, _slab, _offs, _lens, count, status) {
    status.fill(0, 0, count);
    return count;
  },
};

const peer = new Peer("b", [parsePrefix("10.77.0.2/32")!]);
const peers = new PeerTable([peer]);
peers.setEndpoint(peer, peerEndpoint);
const tun = { fd: -1, name: "bench0", created: false, mtu: MTU, vnet: false, offload: 0 };
const sock = { fd: -1, v6: 0, endpoint: encodeEndpoint(parseIp("198.18.0.1")!, 51820) };
const pool = (name: string) => new BufferPool({ name, bufferSize: bufferSizeFor(MTU), capacity: 1024, headroom: HEADROOM });
const devicePool = pool("device");
const networkPool = pool("network");
const noop = () => {};
const device = new DevicePath(tun, sock, devicePool, peers, { socketFull: noop, poolEmpty: noop, firstDrop: noop, gsoRefused: noop }, io);
const network = new NetworkPath(sock, tun, networkPool, peers, { poolEmpty: noop, firstDrop: noop }, io);

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

for (const [label, path, p] of [["device -> network", device, devicePool], ["network -> device", network, networkPool]] as const) {
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
      `pool allocated ${alloc0} -> ${p.allocated} (batch ${BATCH}), in use ${p.inUse}`,
  );
}
console.log(`forwarded: device -> network ${device.packets}, network -> device ${network.packets}; drops ${device.drops.reduce((a, b) => a + b) + network.drops.reduce((a, b) => a + b)}`);
