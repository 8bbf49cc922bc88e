// The WireGuard side of both paths is asked once per run, not once per packet: the device
// path asks the sealer for a peer's slot once per run of packets to that peer, and the
// network path tells the opener once per run of messages on one keypair from one source,
// across datagrams. A change of peer, slot or source starts a new run, so roaming and
// staging behave as they did per packet.
import t from "tap";
import type { PacketIo } from "../../src/native/addon.ts";
import { encodeEndpoint, ENDPOINT_BYTES, parseIp, parsePrefix } from "../../src/net/address.ts";
import { BufferPool } from "../../src/pool/buffer-pool.ts";
import type { PooledBuffer } from "../../src/pool/pooled-buffer.ts";
import { bufferSizeFor, HEADROOM } from "../../src/tunnel/constants.ts";
import { DevicePath } from "../../src/tunnel/device-path.ts";
import type { Sealer } from "../../src/tunnel/device-path.ts";
import { ipv4HeaderSum } from "../../src/tunnel/ip-packet.ts";
import { NetworkPath } from "../../src/tunnel/network-path.ts";
import type { Opener } from "../../src/tunnel/network-path.ts";
import { Peer, PeerTable } from "../../src/tunnel/peers.ts";

const MTU = 1420;
const WG_HEADER = 16;
const WG_TAG = 16;

function ipv4(src: number[], dst: number[]): Uint8Array {
  const p = new Uint8Array(100);
  p.set([0x45, 0, 0, 100, 0, 0, 0x40, 0, 64, 17, 0, 0, ...src, ...dst]);
  const sum = ipv4HeaderSum(p, 0, 20);
  p[10] = (~sum >> 8) & 0xff;
  p[11] = ~sum & 0xff;
  return p;
}

const ep = (ip: string) => encodeEndpoint(parseIp(ip)!, 51820);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const noop = () => {};
const pool = () => new BufferPool({ name: "t", bufferSize: bufferSizeFor(MTU), capacity: 64, headroom: HEADROOM, checked: true });
const tun = { fd: -1, name: "t0", created: false, mtu: MTU, vnet: false, offload: 0 };
const sock = { fd: -1, v6: 0, endpoint: ep("198.18.0.1") };

/** Only the calls the plain offload-free paths make; the rest throw. */
function io(over: Partial<PacketIo>): PacketIo {
  const no = () => {
    throw new Error("not expected");
  };
  return { tunRead: no, tunWrite: no, udpRecv: no, udpSend: no, udpSendSegments: no, tunWriteOffload: no, ...over };
}

t.test("network path: one received() per run of a keypair and a source, across datagrams", (t) => {
  const b = new Peer("b", [parsePrefix("10.77.0.2/32")!]);
  const peers = new PeerTable([b]);
  const inner = ipv4([10, 77, 0, 2], [10, 77, 0, 1]);
  const from = [ep("198.18.0.2"), ep("198.18.0.2"), ep("198.18.0.3"), ep("198.18.0.3"), ep("198.18.0.2")];
  let given = false;
  const packetIo = io({
    udpRecv(_fd, slab, offs, lens, count, sources) {
      if (given) return 0;
      given = true;
      for (let i = 0; i < from.length && i < count; i++) {
        slab.set(inner, offs[i] + WG_HEADER);
        lens[i] = WG_HEADER + inner.length + WG_TAG;
        sources.set(from[i], i * ENDPOINT_BYTES);
      }
      return from.length;
    },
    tunWrite(_fd, _slab, _offs, _lens, count, status) {
      status.fill(0, 0, count);
      return count;
    },
  });
  const heard: string[] = [];
  const opener: Opener = {
    peerOf: (slot) => (slot === 0 ? b : null),
    received(slot, source, keepalive) {
      heard.push(`${slot} ${hex(source)} ${keepalive}`);
      return true;
    },
    control: () => -1,
    open(_slab, offs, lens, count, _segs, out) {
      for (let i = 0; i < count; i++) out.set([offs[i] + WG_HEADER, lens[i] - WG_HEADER - WG_TAG, 0], i * 3);
      return count;
    },
  };
  const p = pool();
  const path = new NetworkPath(sock, tun, p, peers, { poolEmpty: noop, firstDrop: noop }, packetIo, undefined, opener);
  path.onReadable();
  t.same(heard, [`0 ${hex(from[0])} false`, `0 ${hex(from[2])} false`, `0 ${hex(from[4])} false`], "a new run where the source changes");
  t.equal(path.packets, 5, "every packet delivered");
  t.equal(p.inUse, 0, "every buffer back");
  t.end();
});

t.test("device path: one slotFor() per run of packets to a peer; a staged packet does not end the asking", (t) => {
  const b = new Peer("b", [parsePrefix("10.77.0.2/32")!]);
  const c = new Peer("c", [parsePrefix("10.77.0.3/32")!]);
  const peers = new PeerTable([b, c]);
  peers.setEndpoint(b, ep("198.18.0.2"));
  peers.setEndpoint(c, ep("198.18.0.3"));
  const to = [2, 2, 3, 3, 2, 2];
  let given = false;
  let sent = 0;
  const packetIo = io({
    tunRead(_fd, slab, offs, lens, count) {
      if (given) return 0;
      given = true;
      for (let i = 0; i < to.length && i < count; i++) {
        const pkt = ipv4([10, 77, 0, 1], [10, 77, 0, to[i]]);
        slab.set(pkt, offs[i]);
        lens[i] = pkt.length;
      }
      return to.length;
    },
    udpSend(_fd, _v6, _slab, _offs, _lens, count, _dst, status) {
      status.fill(0, 0, count);
      sent += count;
      return count;
    },
  });
  const asked: string[] = [];
  const staged: PooledBuffer[] = [];
  const sealer: Sealer = {
    mtu: MTU,
    // b has a session (slot 7); c has none: each of its packets is staged, and asked for.
    slotFor(peer, buf) {
      asked.push(peer.name);
      if (peer === b) return 7;
      staged.push(buf);
      return -1;
    },
    sent: noop,
    flushSent: noop,
    seal(_slab, _offs, _lens, count, slots, _mtu, status) {
      for (let i = 0; i < count; i++) t.equal(slots[i], 7, `packet ${i} sealed with b's slot`);
      status.fill(0, 0, count);
    },
  };
  const p = pool();
  const path = new DevicePath(tun, sock, p, peers, { socketFull: noop, poolEmpty: noop, firstDrop: noop, gsoRefused: noop }, packetIo, undefined, sealer);
  path.onReadable();
  t.same(asked, ["b", "c", "c", "b"], "once per run to b; every packet to c, which has no session");
  t.equal(sent, 4, "b's four packets sent");
  t.equal(staged.length, 2, "c's two staged");
  for (const buf of staged) buf.release();
  t.equal(p.inUse, 0);
  t.end();
});
