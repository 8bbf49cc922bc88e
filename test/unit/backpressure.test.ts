// Back-pressure: a reader that finds its pool empty reports it (so the forwarder pauses
// the fd's watch) instead of reading, and is called back once when a buffer returns.
import t from "tap";
import type { PacketIo } from "../../src/native/addon.ts";
import { encodeEndpoint, parseIp, parsePrefix } from "../../src/net/address.ts";
import { BufferPool } from "../../src/pool/buffer-pool.ts";
import { bufferSizeFor, HEADROOM } from "../../src/tunnel/constants.ts";
import { DevicePath } from "../../src/tunnel/device-path.ts";
import { NetworkPath } from "../../src/tunnel/network-path.ts";
import { Peer, PeerTable } from "../../src/tunnel/peers.ts";

const pool = (capacity: number) => new BufferPool({ name: "t", bufferSize: bufferSizeFor(1420), capacity, headroom: HEADROOM, checked: true });

t.test("whenAvailable: counts the exhaustion and calls back once, on the next release", async (t) => {
  const p = pool(2);
  const a = p.pull()!;
  const b = p.pull()!;
  let calls = 0;
  p.whenAvailable(() => calls++);
  t.equal(p.exhausted, 1);
  t.equal(calls, 0, "not while every buffer is out");
  a.release();
  t.equal(calls, 1, "called when one comes back");
  b.release();
  t.equal(calls, 1, "and only once");
});

t.test("both paths report an empty pool instead of reading, and read again after a release", async (t) => {
  const calls = { tunRead: 0, udpRecv: 0 };
  const io: PacketIo = {
    tunRead: () => (calls.tunRead++, 0),
    udpRecv: () => (calls.udpRecv++, 0),
    tunWrite: () => 0,
    udpSend: () => 0,
    udpSendSegments: () => 0,
    tunWriteOffload: () => 0,
  };
  const peer = new Peer("b", [parsePrefix("10.77.0.2/32")!]);
  const peers = new PeerTable([peer]);
  const tun = { fd: -1, name: "t0", created: false, mtu: 1420, vnet: false, offload: 0 };
  const sock = { fd: -1, v6: 0, endpoint: encodeEndpoint(parseIp("127.0.0.1")!, 1) };
  const devPool = pool(1);
  const netPool = pool(1);
  let empty = { device: 0, network: 0 };
  const noop = () => {};
  const device = new DevicePath(tun, sock, devPool, peers, { socketFull: noop, poolEmpty: () => empty.device++, firstDrop: noop, gsoRefused: noop }, io);
  const network = new NetworkPath(sock, tun, netPool, peers, { poolEmpty: () => empty.network++, firstDrop: noop }, io);

  const heldDev = devPool.pull()!; // someone else holds the only buffer
  const heldNet = netPool.pull()!;
  device.onReadable();
  network.onReadable();
  t.same(empty, { device: 1, network: 1 }, "each path reported its empty pool");
  t.same(calls, { tunRead: 0, udpRecv: 0 }, "and did not read");

  heldDev.release();
  heldNet.release();
  empty = { device: 0, network: 0 };
  device.onReadable();
  network.onReadable();
  t.same(calls, { tunRead: 1, udpRecv: 1 }, "with a buffer back, they read");
  t.same(empty, { device: 0, network: 0 });
  t.equal(devPool.inUse + netPool.inUse, 0, "and gave the unused buffers back");
});
