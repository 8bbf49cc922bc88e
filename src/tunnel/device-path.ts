// Device path: TUN -> route by inner destination -> our header written in the headroom
// -> sendmmsg to the peer -> release. One pass per batch, top to bottom.
import { addon } from "../native/addon.ts";
import type { PacketIo } from "../native/addon.ts";
import type { TunDevice } from "../native/tun.ts";
import type { UdpSocket } from "../native/udp.ts";
import { ENDPOINT_BYTES } from "../net/address.ts";
import type { BufferPool } from "../pool/buffer-pool.ts";
import type { PooledBuffer } from "../pool/pooled-buffer.ts";
import { ReadBatch } from "./batch.ts";
import type { PathHooks } from "./batch.ts";
import { BATCH, ROUNDS_PER_WAKEUP } from "./constants.ts";
import { Drop, newDropCounters } from "./drops.ts";
import { HEADER_LEN, writeDataHeader } from "./header.ts";
import { destinationOffset } from "./ip-packet.ts";
import type { Peer, PeerTable } from "./peers.ts";

export interface DevicePathHooks extends PathHooks {
  /** The socket is full (true: hold TUN reads, report writability) or takes data again
   * (false). Called after every batch, so it must be cheap when nothing changes. */
  socketFull(full: boolean): void;
}

export class DevicePath {
  packets = 0;
  bytes = 0;
  readonly drops = newDropCounters();
  /** The errno of the last failed send, for the log. */
  lastSendErrno = 0;

  private readonly batch: ReadBatch;

  // The send batch; entries [0, sendCount) are waiting for sendmmsg.
  private readonly sendOffs = new Int32Array(BATCH);
  private readonly sendLens = new Int32Array(BATCH);
  private readonly sendStatus = new Int32Array(BATCH);
  private readonly sendDests = new Uint8Array(BATCH * ENDPOINT_BYTES);
  private readonly sendBufs: (PooledBuffer | null)[] = new Array<PooledBuffer | null>(BATCH).fill(null);
  private readonly sendPeers: (Peer | null)[] = new Array<Peer | null>(BATCH).fill(null);
  private sendCount = 0;

  private readonly tun: TunDevice;
  private readonly sock: UdpSocket;
  private readonly pool: BufferPool;
  /** Replaced whole by a reload (SIGHUP), between two batches. */
  peers: PeerTable;
  private readonly hooks: DevicePathHooks;
  private readonly io: PacketIo;

  constructor(tun: TunDevice, sock: UdpSocket, pool: BufferPool, peers: PeerTable, hooks: DevicePathHooks, io: PacketIo = addon) {
    this.tun = tun;
    this.sock = sock;
    this.pool = pool;
    this.peers = peers;
    this.hooks = hooks;
    this.io = io;
    // The kernel never hands us more than the MTU; the packet lands at the headroom.
    this.batch = new ReadBatch(pool, pool.headroom, tun.mtu);
  }

  /** The TUN fd is readable: drain it in batches. */
  onReadable(): void {
    for (let round = 0; round < ROUNDS_PER_WAKEUP; round++) {
      if (this.sendCount > 0) return; // still waiting for the socket; reads are paused
      const n = this.read();
      if (n === 0) return;
      this.encapsulate(n);
      this.send();
      if (n < BATCH) return; // EAGAIN: drained
    }
  }

  /** The UDP socket can take more: finish the held batch, then read again. */
  onWritable(): void {
    this.send();
  }

  /** True while a batch waits for the socket. */
  get sending(): boolean {
    return this.sendCount > 0;
  }

  /** Releases everything still held (on shutdown), counting it as dropped. */
  discard(): void {
    for (let i = 0; i < this.sendCount; i++) this.drop(i, Drop.Shutdown);
    this.sendCount = 0;
  }

  private read(): number {
    const b = this.batch;
    const want = b.fill();
    if (want === 0) {
      this.hooks.poolEmpty();
      return 0;
    }
    let n = 0;
    try {
      n = this.io.tunRead(this.tun.fd, this.pool.slab, b.offs, b.lens, want);
    } finally {
      b.releaseUnused(n, want);
    }
    return n;
  }

  private encapsulate(n: number): void {
    const slab = this.pool.slab;
    let k = this.sendCount;
    for (let i = 0; i < n; i++) {
      const buf = this.batch.take(i);
      const len = this.batch.lens[i];
      buf.end = buf.start + len;
      const off = buf.base + buf.start;
      const dst = destinationOffset(slab, off, len);
      if (dst < 0) {
        this.dropBuf(buf, Drop.MalformedIp, "");
        continue;
      }
      const peer = this.peers.route(slab, dst, slab[off] >> 4 === 4 ? 4 : 6);
      if (peer === null) {
        this.dropBuf(buf, Drop.NoRoute, "");
        continue;
      }
      if (peer.endpoint === null) {
        this.dropBuf(buf, Drop.NoEndpoint, peer.name);
        continue;
      }
      const start = buf.shiftStartLeft(HEADER_LEN);
      writeDataHeader(slab, buf.base + start);
      this.sendOffs[k] = buf.base + start;
      this.sendLens[k] = len + HEADER_LEN;
      this.sendDests.set(peer.endpoint, k * ENDPOINT_BYTES);
      this.sendBufs[k] = buf;
      this.sendPeers[k] = peer;
      k++;
    }
    this.sendCount = k;
  }

  private send(): void {
    const count = this.sendCount;
    if (count === 0) return;
    const done = this.io.udpSend(
      this.sock.fd, this.sock.v6, this.pool.slab, this.sendOffs, this.sendLens, count, this.sendDests, this.sendStatus,
    );
    for (let i = 0; i < done; i++) {
      if (this.sendStatus[i] === 0) {
        const len = this.sendLens[i] - HEADER_LEN;
        const peer = this.sendPeers[i]!;
        peer.txPackets++;
        peer.txBytes += len;
        this.packets++;
        this.bytes += len;
        this.sendBufs[i]!.release();
        this.sendBufs[i] = null;
        this.sendPeers[i] = null;
      } else {
        this.lastSendErrno = -this.sendStatus[i];
        this.drop(i, Drop.SendError);
      }
    }
    if (done === count) {
      this.sendCount = 0;
      this.hooks.socketFull(false);
      return;
    }
    // The socket buffer is full: keep the rest, stop reading the TUN until it drains.
    const rest = count - done;
    this.sendOffs.copyWithin(0, done, count);
    this.sendLens.copyWithin(0, done, count);
    this.sendDests.copyWithin(0, done * ENDPOINT_BYTES, count * ENDPOINT_BYTES);
    // Move first, then clear the tail: with done === 0 the two ranges are the same slots.
    for (let i = 0; i < rest; i++) {
      this.sendBufs[i] = this.sendBufs[done + i];
      this.sendPeers[i] = this.sendPeers[done + i];
    }
    for (let i = rest; i < count; i++) {
      this.sendBufs[i] = null;
      this.sendPeers[i] = null;
    }
    this.sendCount = rest;
    this.hooks.socketFull(true);
  }

  private drop(i: number, reason: number): void {
    this.dropBuf(this.sendBufs[i]!, reason, this.sendPeers[i]?.name ?? "");
    this.sendBufs[i] = null;
    this.sendPeers[i] = null;
  }

  private dropBuf(buf: PooledBuffer, reason: number, detail: string): void {
    buf.release();
    if (this.drops[reason]++ === 0) this.hooks.firstDrop(reason, detail);
  }
}
