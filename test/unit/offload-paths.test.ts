// The JS side of the offload paths, with the addon's offload calls faked: a GRO datagram is
// checked segment by segment exactly as lone datagrams would be (every verdict counted,
// only good segments written, the buffer back once written); a super-packet the socket
// takes in part is resumed where it stopped, its segments counted once.
import t from "tap";
import { JOIN_TCP, SEND_STATE_RESUME, VNET_HDR_LEN, WRITE_STATS_WRITES } from "../../src/native/addon.ts";
import type { PacketIo } from "../../src/native/addon.ts";
import { ENDPOINT_BYTES, encodeEndpoint, parseIp, parsePrefix } from "../../src/net/address.ts";
import { BufferPool } from "../../src/pool/buffer-pool.ts";
import { DATAGRAM_START, HEADROOM, SUPER_BUFFER_SIZE } from "../../src/tunnel/constants.ts";
import { DevicePath } from "../../src/tunnel/device-path.ts";
import { Drop } from "../../src/tunnel/drops.ts";
import { fixIpv4Checksum } from "./lib/packets.ts";
import { NetworkPath } from "../../src/tunnel/network-path.ts";
import { Peer, PeerTable } from "../../src/tunnel/peers.ts";

const MTU = 1420;
const peerEndpoint = encodeEndpoint(parseIp("198.18.0.2")!, 51820);
const tun = { fd: -1, name: "t0", created: false, mtu: MTU, vnet: true, offload: 0x07 };
const sock = { fd: -1, v6: 0, endpoint: encodeEndpoint(parseIp("198.18.0.1")!, 51820) };
const noop = () => {};

function world() {
  const peer = new Peer("b", [parsePrefix("10.77.0.2/32")!]);
  const peers = new PeerTable([peer]);
  peers.setEndpoint(peer, peerEndpoint);
  const pool = new BufferPool({ name: "t", bufferSize: SUPER_BUFFER_SIZE, capacity: 128, headroom: HEADROOM, checked: true });
  return { peer, peers, pool };
}

/** An IPv4 packet of `len` bytes from src to 10.77.0.1, payload bytes = tag. */
function ipv4(len: number, src: number[], tag: number): Uint8Array {
  const p = new Uint8Array(len).fill(tag);
  p.set([0x45, 0, len >> 8, len & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, ...src, 10, 77, 0, 1]);
  fixIpv4Checksum(p, 0, 20);
  return p;
}

const datagram = (header: number[], inner: Uint8Array) => Uint8Array.from([...header, ...inner]);
const DATA = [0x11, 0, 0, 0];

t.test("a GRO datagram: each segment judged alone, good ones written, the buffer returned", async (t) => {
  const { peer, peers, pool } = world();
  const size = 4 + 1000;
  const segs = [
    datagram(DATA, ipv4(1000, [10, 77, 0, 2], 1)), // good
    datagram([0x21, 0, 0, 0], ipv4(1000, [10, 77, 0, 2], 2)), // bad version
    datagram(DATA, ipv4(1000, [10, 77, 0, 9], 3)), // source outside the peer's allowed IPs
    datagram(DATA, ipv4(1000, [10, 77, 0, 2], 4)), // good
    Uint8Array.from([0x12, 0, 0, 0]), // a keepalive as the short last one
  ];
  const gro = new Uint8Array(segs.reduce((a, s) => a + s.length, 0));
  segs.reduce((at, s) => (gro.set(s, at), at + s.length), 0);
  const written: Uint8Array[] = [];
  let joinSeen = -1;
  let recvs = 0;
  const io = {
    udpRecv(_fd, slab, offs, lens, count, sources, segSizes) {
      if (recvs++ > 0) return 0;
      t.ok(segSizes, "asks for segment sizes");
      t.ok(lens[0] >= gro.length, `offered room ${lens[0]} holds a 64 KiB datagram`);
      t.equal(offs[0] % SUPER_BUFFER_SIZE, DATAGRAM_START, "lands so the first inner packet is at the headroom");
      slab.set(gro, offs[0]);
      lens[0] = gro.length;
      segSizes![0] = size;
      sources.set(peerEndpoint, 0);
      return 1;
    },
    tunWriteOffload(_fd, slab, offs, lens, count, status, join, stats) {
      joinSeen = join;
      for (let i = 0; i < count; i++) {
        written.push(Uint8Array.from(slab.subarray(offs[i], offs[i] + lens[i])));
        status[i] = 0;
      }
      stats[WRITE_STATS_WRITES] = 1;
      t.equal(pool.inUse, 1, "the datagram's buffer is held until the write");
      return count;
    },
  } as PacketIo;
  const path = new NetworkPath(sock, tun, pool, peers, { poolEmpty: noop, firstDrop: noop }, io, { gro: true, tun: true, join: JOIN_TCP });
  path.onReadable();
  t.equal(written.length, 2, "the two good segments were written");
  t.same(written[0], segs[0].subarray(4), "first: the inner packet, header stripped");
  t.same(written[1], segs[3].subarray(4), "second too");
  t.equal(joinSeen, JOIN_TCP, "with the join flags");
  t.equal(path.drops[Drop.BadVersion], 1, "bad version counted");
  t.equal(path.drops[Drop.SourceNotAllowed], 1, "foreign source counted");
  t.equal(peer.rxKeepalives, 1, "keepalive counted");
  t.equal(peer.rxPackets, 2);
  t.equal(path.datagrams, 1, "one datagram as the socket returned it");
  t.equal(path.writes, 1, "one TUN write");
  t.equal(pool.inUse, 0, "buffer back in the pool");
});

t.test("a GRO datagram with nothing to deliver goes straight back; a stranger's is not parsed", async (t) => {
  const { peers, pool } = world();
  const bad = datagram([0x21, 0, 0, 0], ipv4(100, [10, 77, 0, 2], 0));
  let recvs = 0;
  let writes = 0;
  const io: Partial<PacketIo> = {
    udpRecv(_fd, slab, offs, lens, _count, sources, segSizes) {
      recvs++;
      if (recvs > 2) return 0;
      slab.set(bad, offs[0]);
      slab.set(bad, offs[0] + bad.length);
      lens[0] = bad.length * 2;
      segSizes![0] = bad.length;
      sources.set(recvs === 1 ? peerEndpoint : encodeEndpoint(parseIp("198.18.0.66")!, 1), 0);
      return 1;
    },
    tunWriteOffload: () => (writes++, 0),
  };
  const path = new NetworkPath(sock, tun, pool, peers, { poolEmpty: noop, firstDrop: noop }, io as PacketIo, { gro: true, tun: true, join: 0 });
  path.onReadable();
  path.onReadable();
  t.equal(path.drops[Drop.BadVersion], 2, "each of the peer's two segments counted");
  t.equal(path.drops[Drop.UnknownPeer], 1, "the stranger's datagram counted once, as a whole");
  t.equal(writes, 0, "nothing written");
  t.equal(pool.inUse, 0, "every buffer back");
});

t.test("super-packets: a send cut short resumes where it stopped, segments counted once", async (t) => {
  const { peer, peers, pool } = world();
  const packet = new Uint8Array(VNET_HDR_LEN + 3000);
  packet.set(ipv4(3000, [10, 77, 0, 1], 5).map((b, i) => (i >= 16 && i < 20 ? [10, 77, 0, 2][i - 16] : b)), VNET_HDR_LEN);
  let reads = 0;
  const calls: { count: number; resume: number }[] = [];
  const full: boolean[] = [];
  const io = {
    tunRead(_fd, slab, offs, lens, count, maxBytes) {
      t.ok(maxBytes !== undefined && maxBytes <= 1 << 20, "reads bounded in bytes");
      if (reads++ > 0) return 0;
      t.ok(lens[0] >= VNET_HDR_LEN + 65535, "room for a whole super-packet");
      for (let i = 0; i < 2; i++) {
        slab.set(packet, offs[i]);
        lens[i] = packet.length;
      }
      return 2;
    },
    udpSendSegments(_fd, _v6, _slab, offs, lens, count, dst, status, bytes, state, header, gso) {
      calls.push({ count, resume: state[SEND_STATE_RESUME] });
      t.same(Array.from(header), DATA, "our data header for every segment");
      t.equal(gso, 1);
      t.same(dst.subarray(0, ENDPOINT_BYTES), peerEndpoint, "to the peer");
      t.equal(lens[0], packet.length);
      if (calls.length === 1) {
        // 5 segments each; the socket fills after the first packet and 2 of the second.
        status[0] = 5;
        bytes[0] = 3000 + 4 * 40;
        status[1] = 2;
        bytes[1] = 1200;
        state[SEND_STATE_RESUME] = 2;
        return 1;
      }
      status[0] = 3; // the 3 segments left
      bytes[0] = 3000 + 4 * 40 - 1200;
      state[SEND_STATE_RESUME] = 0;
      return count;
    },
  } as PacketIo;
  const path = new DevicePath(tun, sock, pool, peers, { socketFull: (f) => full.push(f), poolEmpty: noop, firstDrop: noop, gsoRefused: noop }, io, { tun: true, gso: true });
  path.onReadable();
  t.ok(path.sending, "the rest is held for the socket");
  t.equal(pool.inUse, 1, "the first buffer released, the second held");
  t.equal(peer.txPackets, 7, "5 + the 2 segments already sent");
  path.onWritable();
  t.same(calls, [{ count: 2, resume: 0 }, { count: 1, resume: 2 }], "the retry resumes after the 2 sent segments");
  t.equal(peer.txPackets, 10, "every segment counted once");
  t.equal(peer.txBytes, 2 * (3000 + 160), "inner bytes of all segments");
  t.same(full, [true, false], "reads paused, then resumed");
  t.equal(pool.inUse, 0, "both buffers back");
  t.equal(path.reads, 2, "two TUN reads");
});
