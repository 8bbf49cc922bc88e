// Network path: recvmmsg -> sender is a configured peer? -> our header valid? -> inner
// packet sound and its source inside that peer's allowed IPs? -> header stripped (the
// write starts past it, nothing is copied) -> TUN write batch -> release. Top to bottom,
// per batch.
//
// With UDP GRO on, one received datagram may hold up to 64 datagrams of the peer's, all of
// one size but the last: each is checked on its own, exactly as if it had come alone. With
// TUN offloads on, the addon joins consecutive TCP segments of a flow into one write.
import { addon, GRO_MAX_SEGS, WRITE_STATS_LEN, WRITE_STATS_WRITES } from "../native/addon.ts";
import type { PacketIo } from "../native/addon.ts";
import type { TunDevice } from "../native/tun.ts";
import type { UdpSocket } from "../native/udp.ts";
import { ENDPOINT_BYTES, formatEndpoint } from "../net/address.ts";
import type { BufferPool } from "../pool/buffer-pool.ts";
import type { PooledBuffer } from "../pool/pooled-buffer.ts";
import { ReadBatch } from "./batch.ts";
import type { PathHooks } from "./batch.ts";
import { BATCH, DATAGRAM_START, ROUNDS_PER_WAKEUP, SUPER_BATCH_BYTES, WRITE_BATCH } from "./constants.ts";
import { Drop, newDropCounters } from "./drops.ts";
import { HEADER_LEN, TYPE_DATA, TYPE_KEEPALIVE, VERSION } from "./header.ts";
import { checkPacket, sourceOffset } from "./ip-packet.ts";
import type { Peer, PeerTable } from "./peers.ts";

export type NetworkPathHooks = PathHooks;

/** What the network path's I/O may use; decided by the forwarder from config and kernel. */
export interface NetworkOffloads {
  /** The socket has UDP GRO on: a datagram may carry many of the peer's. */
  readonly gro: boolean;
  /** The TUN fd carries a virtio-net header (every write needs one). */
  readonly tun: boolean;
  /** Join consecutive segments of a flow into one super-packet write: JOIN_TCP, and
   * JOIN_UDP where the device took USO (0: write packet by packet). */
  readonly join: number;
}

const NO_OFFLOADS: NetworkOffloads = { gro: false, tun: false, join: 0 };

// judge()'s verdicts besides a drop reason (a Drop code, >= 0).
/** An inner packet to write to the device. */
const DELIVER = -1;
/** A keepalive: counted for the peer, nothing to write. */
const KEEPALIVE = -2;

export class NetworkPath {
  packets = 0;
  bytes = 0;
  readonly drops = newDropCounters();
  /** The errno of the last failed TUN write, for the log. */
  lastWriteErrno = 0;
  /** Datagrams as recvmmsg returned them (a GRO datagram counts once). */
  datagrams = 0;
  /** Writes to the TUN device (a joined run counts once). */
  writes = 0;

  private readonly batch: ReadBatch;
  private readonly recvSources = new Uint8Array(BATCH * ENDPOINT_BYTES);
  private readonly recvSegs: Int32Array | null;

  // The write batch: one entry per inner packet, pointing into the held datagram buffers,
  // which go back to the pool once the batch is written.
  private readonly writeOffs = new Int32Array(WRITE_BATCH);
  private readonly writeLens = new Int32Array(WRITE_BATCH);
  private readonly writeStatus = new Int32Array(WRITE_BATCH);
  private readonly writePeers: (Peer | null)[] = new Array<Peer | null>(WRITE_BATCH).fill(null);
  private readonly held: (PooledBuffer | null)[] = new Array<PooledBuffer | null>(BATCH).fill(null);
  private heldCount = 0;
  /** tunWriteOffload's stats, by their WRITE_STATS_* positions. */
  private readonly writeStats = new Int32Array(WRITE_STATS_LEN);

  /** Largest datagram we accept: a full-MTU packet plus our header, or a GRO datagram. */
  private readonly maxDatagram: number;

  private readonly sock: UdpSocket;
  private readonly tun: TunDevice;
  private readonly pool: BufferPool;
  /** Replaced whole by a reload (SIGHUP), between two batches. */
  peers: PeerTable;
  private readonly hooks: NetworkPathHooks;
  private readonly io: PacketIo;
  readonly offloads: NetworkOffloads;

  constructor(
    sock: UdpSocket, tun: TunDevice, pool: BufferPool, peers: PeerTable, hooks: NetworkPathHooks,
    io: PacketIo = addon, offloads: NetworkOffloads = NO_OFFLOADS,
  ) {
    this.sock = sock;
    this.tun = tun;
    this.pool = pool;
    this.peers = peers;
    this.hooks = hooks;
    this.io = io;
    this.offloads = offloads;
    this.recvSegs = offloads.gro ? new Int32Array(BATCH) : null;
    // Datagrams land so that the inner packet starts at the headroom; anything longer than
    // the room left arrives truncated and is dropped as oversize.
    const room = pool.bufferSize - DATAGRAM_START;
    this.maxDatagram = offloads.gro ? room : tun.mtu + HEADER_LEN;
    this.batch = new ReadBatch(pool, DATAGRAM_START, room, BATCH, offloads.gro ? SUPER_BATCH_BYTES : 0);
  }

  /** The UDP socket is readable: drain it in batches. */
  onReadable(): void {
    for (let round = 0; round < ROUNDS_PER_WAKEUP; round++) {
      const n = this.receive();
      if (n === 0) return;
      const k = this.decapsulate(n);
      this.write(k);
      if (n < this.batch.offered) return; // EAGAIN: drained
    }
  }

  private receive(): number {
    const b = this.batch;
    const want = b.fill();
    if (want === 0) {
      this.hooks.poolEmpty();
      return 0;
    }
    let n = 0;
    try {
      n = this.recvSegs === null
        ? this.io.udpRecv(this.sock.fd, this.pool.slab, b.offs, b.lens, want, this.recvSources)
        : this.io.udpRecv(this.sock.fd, this.pool.slab, b.offs, b.lens, want, this.recvSources, this.recvSegs);
    } finally {
      b.releaseUnused(n, want);
    }
    this.datagrams += n;
    return n;
  }

  /** Checks each datagram (each of its segments, with GRO); the inner packets to deliver
   * go to the write batch, and the buffers holding them are kept. Returns the entries. */
  private decapsulate(n: number): number {
    const slab = this.pool.slab;
    const segs = this.recvSegs;
    let k = 0;
    let held = 0;
    for (let i = 0; i < n; i++) {
      const buf = this.batch.take(i);
      const len = this.batch.lens[i];
      // Strangers first: nothing from an unknown source is parsed further.
      const peer = this.peers.fromEndpoint(this.recvSources, i * ENDPOINT_BYTES);
      if (peer === null) {
        this.dropBuf(buf, Drop.UnknownPeer, i);
        continue;
      }
      if (len < 0 || len > this.maxDatagram) {
        this.dropBuf(buf, Drop.Oversize, i);
        continue;
      }
      if (len < HEADER_LEN) {
        this.dropBuf(buf, Drop.Truncated, i);
        continue;
      }
      const off = buf.base + DATAGRAM_START;
      const size = segs !== null && segs[i] > 0 ? segs[i] : len;
      const first = k;
      let count = 0;
      for (let at = 0; at < len; at += size) {
        const segLen = Math.min(size, len - at);
        const verdict = ++count > GRO_MAX_SEGS ? Drop.Oversize : this.judge(slab, off + at, segLen, peer);
        if (verdict === DELIVER) {
          this.writeOffs[k] = off + at + HEADER_LEN;
          this.writeLens[k] = segLen - HEADER_LEN;
          this.writePeers[k] = peer;
          k++;
        } else if (verdict === KEEPALIVE) {
          peer.rxKeepalives++;
        } else {
          this.countDrop(verdict, i);
        }
      }
      if (k > first) this.held[held++] = buf;
      else buf.release();
    }
    this.heldCount = held;
    return k;
  }

  /** One of the peer's datagrams: DELIVER, KEEPALIVE, or the Drop reason. */
  private judge(slab: Uint8Array, off: number, len: number, peer: Peer): number {
    if (len > this.tun.mtu + HEADER_LEN) return Drop.Oversize;
    if (len < HEADER_LEN) return Drop.Truncated;
    const byte0 = slab[off];
    if (byte0 >> 4 !== VERSION) return Drop.BadVersion;
    if ((slab[off + 1] | slab[off + 2] | slab[off + 3]) !== 0) return Drop.BadHeader;
    const type = byte0 & 0x0f;
    if (type === TYPE_KEEPALIVE) return len === HEADER_LEN ? KEEPALIVE : Drop.BadHeader;
    if (type !== TYPE_DATA) return Drop.BadType;
    const inner = off + HEADER_LEN;
    const bad = checkPacket(slab, inner, len - HEADER_LEN, this.tun.mtu);
    if (bad >= 0) return bad;
    if (this.peers.route(slab, sourceOffset(slab, inner), slab[inner] >> 4 === 4 ? 4 : 6) !== peer) return Drop.SourceNotAllowed;
    return DELIVER;
  }

  private write(k: number): void {
    if (k > 0) {
      const o = this.offloads;
      let written: number;
      if (o.tun) {
        written = this.io.tunWriteOffload(
          this.tun.fd, this.pool.slab, this.writeOffs, this.writeLens, k, this.writeStatus, o.join, this.writeStats,
        );
        this.writes += this.writeStats[WRITE_STATS_WRITES];
      } else {
        written = this.io.tunWrite(this.tun.fd, this.pool.slab, this.writeOffs, this.writeLens, k, this.writeStatus);
        this.writes += k;
      }
      for (let i = 0; i < k; i++) {
        const peer = this.writePeers[i]!;
        this.writePeers[i] = null;
        if (written === k || this.writeStatus[i] === 0) {
          const len = this.writeLens[i];
          peer.rxPackets++;
          peer.rxBytes += len;
          this.packets++;
          this.bytes += len;
        } else {
          this.lastWriteErrno = -this.writeStatus[i];
          if (this.drops[Drop.TunWriteError]++ === 0) this.hooks.firstDrop(Drop.TunWriteError, peer.name);
        }
      }
    }
    for (let i = 0; i < this.heldCount; i++) {
      this.held[i]!.release();
      this.held[i] = null;
    }
    this.heldCount = 0;
  }

  private dropBuf(buf: PooledBuffer, reason: number, i: number): void {
    buf.release();
    this.countDrop(reason, i);
  }

  private countDrop(reason: number, i: number): void {
    if (this.drops[reason]++ === 0) this.hooks.firstDrop(reason, formatEndpoint(this.recvSources, i * ENDPOINT_BYTES));
  }
}
