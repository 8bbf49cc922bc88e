// Network path: recvmmsg -> sender is a configured peer? -> our header valid? -> inner
// packet sound and its source inside that peer's allowed IPs? -> header stripped (the
// start moves, nothing is copied) -> TUN write batch -> release. Top to bottom, per batch.
import { addon } from "../native/addon.ts";
import type { PacketIo } from "../native/addon.ts";
import type { TunDevice } from "../native/tun.ts";
import type { UdpSocket } from "../native/udp.ts";
import { ENDPOINT_BYTES, formatEndpoint } from "../net/address.ts";
import type { BufferPool } from "../pool/buffer-pool.ts";
import type { PooledBuffer } from "../pool/pooled-buffer.ts";
import { ReadBatch } from "./batch.ts";
import type { PathHooks } from "./batch.ts";
import { BATCH, DATAGRAM_START, ROUNDS_PER_WAKEUP } from "./constants.ts";
import { Drop, newDropCounters } from "./drops.ts";
import { HEADER_LEN, TYPE_DATA, TYPE_KEEPALIVE, VERSION } from "./header.ts";
import { checkPacket, sourceOffset } from "./ip-packet.ts";
import type { Peer, PeerTable } from "./peers.ts";

export type NetworkPathHooks = PathHooks;

export class NetworkPath {
  packets = 0;
  bytes = 0;
  readonly drops = newDropCounters();
  /** The errno of the last failed TUN write, for the log. */
  lastWriteErrno = 0;

  private readonly batch: ReadBatch;
  private readonly recvSources = new Uint8Array(BATCH * ENDPOINT_BYTES);

  private readonly writeOffs = new Int32Array(BATCH);
  private readonly writeLens = new Int32Array(BATCH);
  private readonly writeStatus = new Int32Array(BATCH);
  private readonly writeBufs: (PooledBuffer | null)[] = new Array<PooledBuffer | null>(BATCH).fill(null);
  private readonly writePeers: (Peer | null)[] = new Array<Peer | null>(BATCH).fill(null);

  /** Largest datagram we accept: a full-MTU packet plus our header. */
  private readonly maxDatagram: number;

  private readonly sock: UdpSocket;
  private readonly tun: TunDevice;
  private readonly pool: BufferPool;
  /** Replaced whole by a reload (SIGHUP), between two batches. */
  peers: PeerTable;
  private readonly hooks: NetworkPathHooks;
  private readonly io: PacketIo;

  constructor(sock: UdpSocket, tun: TunDevice, pool: BufferPool, peers: PeerTable, hooks: NetworkPathHooks, io: PacketIo = addon) {
    this.sock = sock;
    this.tun = tun;
    this.pool = pool;
    this.peers = peers;
    this.hooks = hooks;
    this.io = io;
    this.maxDatagram = tun.mtu + HEADER_LEN;
    // Datagrams land so that the inner packet starts at the headroom; anything longer than
    // the room left arrives truncated and is dropped as oversize.
    this.batch = new ReadBatch(pool, DATAGRAM_START, pool.bufferSize - DATAGRAM_START);
  }

  /** The UDP socket is readable: drain it in batches. */
  onReadable(): void {
    for (let round = 0; round < ROUNDS_PER_WAKEUP; round++) {
      const n = this.receive();
      if (n === 0) return;
      const k = this.decapsulate(n);
      this.write(k);
      if (n < BATCH) return; // EAGAIN: drained
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
      n = this.io.udpRecv(this.sock.fd, this.pool.slab, b.offs, b.lens, want, this.recvSources);
    } finally {
      b.releaseUnused(n, want);
    }
    return n;
  }

  /** Validates each datagram; the ones to deliver go to the write batch. Returns its size. */
  private decapsulate(n: number): number {
    const slab = this.pool.slab;
    const mtu = this.tun.mtu;
    let k = 0;
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
      const byte0 = slab[off];
      if (byte0 >> 4 !== VERSION) {
        this.dropBuf(buf, Drop.BadVersion, i);
        continue;
      }
      if ((slab[off + 1] | slab[off + 2] | slab[off + 3]) !== 0) {
        this.dropBuf(buf, Drop.BadHeader, i);
        continue;
      }
      const type = byte0 & 0x0f;
      if (type === TYPE_KEEPALIVE) {
        if (len === HEADER_LEN) {
          peer.rxKeepalives++;
          buf.release();
        } else {
          this.dropBuf(buf, Drop.BadHeader, i);
        }
        continue;
      }
      if (type !== TYPE_DATA) {
        this.dropBuf(buf, Drop.BadType, i);
        continue;
      }
      buf.end = DATAGRAM_START + len;
      const inner = buf.base + buf.shiftStartRight(HEADER_LEN);
      const innerLen = len - HEADER_LEN;
      const bad = checkPacket(slab, inner, innerLen, mtu);
      if (bad >= 0) {
        this.dropBuf(buf, bad, i);
        continue;
      }
      if (this.peers.route(slab, sourceOffset(slab, inner), slab[inner] >> 4 === 4 ? 4 : 6) !== peer) {
        this.dropBuf(buf, Drop.SourceNotAllowed, i);
        continue;
      }
      this.writeOffs[k] = inner;
      this.writeLens[k] = innerLen;
      this.writeBufs[k] = buf;
      this.writePeers[k] = peer;
      k++;
    }
    return k;
  }

  private write(k: number): void {
    if (k === 0) return;
    const written = this.io.tunWrite(this.tun.fd, this.pool.slab, this.writeOffs, this.writeLens, k, this.writeStatus);
    for (let i = 0; i < k; i++) {
      const buf = this.writeBufs[i]!;
      const peer = this.writePeers[i]!;
      this.writeBufs[i] = null;
      this.writePeers[i] = null;
      if (written === k || this.writeStatus[i] === 0) {
        const len = this.writeLens[i];
        peer.rxPackets++;
        peer.rxBytes += len;
        this.packets++;
        this.bytes += len;
        buf.release();
      } else {
        this.lastWriteErrno = -this.writeStatus[i];
        buf.release();
        if (this.drops[Drop.TunWriteError]++ === 0) this.hooks.firstDrop(Drop.TunWriteError, peer.name);
      }
    }
  }

  private dropBuf(buf: PooledBuffer, reason: number, i: number): void {
    buf.release();
    if (this.drops[reason]++ === 0) this.hooks.firstDrop(reason, formatEndpoint(this.recvSources, i * ENDPOINT_BYTES));
  }
}
