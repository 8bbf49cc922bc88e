// Network path: recvmmsg -> sender is a configured peer? -> our header valid? -> inner
// packet sound and its source inside that peer's allowed IPs? -> header stripped (the
// write starts past it, nothing is copied) -> TUN write batch -> release. Top to bottom,
// per batch.
//
// With UDP GRO on, one received datagram may hold up to 64 datagrams of the peer's, all of
// one size but the last: each is checked on its own, exactly as if it had come alone. With
// TUN offloads on, the addon joins consecutive TCP segments of a flow into one write.
//
// With WireGuard (an Opener), the peer is not known from the source: one native call per
// batch opens every data message in place (receiver index -> keypair, replay window,
// ChaCha20-Poly1305), and its keypair names the peer; the padding is trimmed by the inner
// IP length, then the same checks follow. Anything that is not a data message goes to the
// handshake (TypeScript), as it comes.
import {
  addon, GRO_MAX_SEGS, WG_DECRYPT_FAILED, WG_EXPIRED, WG_HEADER_LEN, WG_MALFORMED, WG_NOT_DATA, WG_REPLAYED, WG_TAG_LEN,
  WG_UNKNOWN_INDEX, WRITE_STATS_LEN, WRITE_STATS_WRITES,
} from "../native/addon.ts";
import type { Addon, PacketIo } from "../native/addon.ts";
import type { TunDevice } from "../native/tun.ts";
import type { UdpSocket } from "../native/udp.ts";
import { ENDPOINT_BYTES, formatEndpoint } from "../net/address.ts";
import type { BufferPool } from "../pool/buffer-pool.ts";
import type { PooledBuffer } from "../pool/pooled-buffer.ts";
import { ReadBatch } from "./batch.ts";
import type { PathHooks } from "./batch.ts";
import { BATCH, DATAGRAM_START, HEADROOM, ROUNDS_PER_WAKEUP, SUPER_BATCH_BYTES, WRITE_BATCH } from "./constants.ts";
import { Drop, newDropCounters } from "./drops.ts";
import { HEADER_LEN, TYPE_DATA, TYPE_KEEPALIVE, VERSION } from "./header.ts";
import { checkPacket, declaredLength, sourceOffset } from "./ip-packet.ts";
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

/** The WireGuard side of the network path (wireguard-transport.ts); none on the plain transport. */
export interface Opener {
  /** The peer whose keypair is in slot, or null. */
  peerOf(slot: number): Peer | null;
  /** Messages that authenticated on slot came from source: one call stands for a run of them
   * (keepalive: all were); now is the batch's time. False: the keypair is past its time, and
   * they are dropped. */
  received(slot: number, source: Uint8Array, keepalive: boolean, now: number): boolean;
  /** A datagram that is not a data message, for the handshake: -1 if taken, else its Drop reason. */
  control(message: Uint8Array, source: Uint8Array): number;
  /** Opens a batch's data messages in place (the addon's wgOpen). */
  open: Addon["wgOpen"];
}

/** Whether the endpoints of datagrams i and j in sources are the same. */
function sameEndpoint(sources: Uint8Array, i: number, j: number): boolean {
  if (i === j) return true;
  const a = i * ENDPOINT_BYTES;
  const b = j * ENDPOINT_BYTES;
  for (let x = 0; x < ENDPOINT_BYTES; x++) if (sources[a + x] !== sources[b + x]) return false;
  return true;
}

/** wgOpen's refusals, as drop reasons. */
function sealedDrop(verdict: number): number {
  switch (verdict) {
    case WG_UNKNOWN_INDEX: return Drop.UnknownIndex;
    case WG_REPLAYED: return Drop.Replayed;
    case WG_DECRYPT_FAILED: return Drop.DecryptionFailed;
    case WG_EXPIRED: return Drop.ExpiredKeypair;
    case WG_MALFORMED: return Drop.BadHeader;
    default: return Drop.BadType;
  }
}

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
  /** Where in a buffer a datagram lands: its inner packet then starts at the headroom. */
  private readonly start: number;

  private readonly opener: Opener | null;
  /** wgOpen's entries, three Int32s per message: offset, length, verdict. */
  private readonly opened: Int32Array;
  /** Datagram i's source, as a view made once (no allocation per packet). */
  private readonly sourceViews: Uint8Array[] = [];
  /** Datagrams refused before opening (truncated or too long): wgOpen sees them empty. */
  private readonly refused = new Uint8Array(BATCH);

  /** Replaced when the socket moves to another port (a configuration change), between batches. */
  sock: UdpSocket;
  private readonly tun: TunDevice;
  private readonly pool: BufferPool;
  /** Replaced whole by a reload (SIGHUP), between two batches. */
  peers: PeerTable;
  private readonly hooks: NetworkPathHooks;
  private readonly io: PacketIo;
  readonly offloads: NetworkOffloads;

  constructor(
    sock: UdpSocket, tun: TunDevice, pool: BufferPool, peers: PeerTable, hooks: NetworkPathHooks,
    io: PacketIo = addon, offloads: NetworkOffloads = NO_OFFLOADS, opener: Opener | null = null,
  ) {
    this.sock = sock;
    this.tun = tun;
    this.pool = pool;
    this.peers = peers;
    this.hooks = hooks;
    this.io = io;
    this.offloads = offloads;
    this.opener = opener;
    this.recvSegs = offloads.gro ? new Int32Array(BATCH) : null;
    // Datagrams land so that the inner packet starts at the headroom; anything longer than
    // the room left arrives truncated and is dropped as oversize.
    this.start = opener === null ? DATAGRAM_START : HEADROOM - WG_HEADER_LEN;
    const room = pool.bufferSize - this.start;
    this.maxDatagram = offloads.gro ? room : tun.mtu + (opener === null ? HEADER_LEN : WG_HEADER_LEN + WG_TAG_LEN);
    this.batch = new ReadBatch(pool, this.start, room, BATCH, offloads.gro ? SUPER_BATCH_BYTES : 0);
    this.opened = new Int32Array(opener === null ? 0 : BATCH * GRO_MAX_SEGS * 3);
    for (let i = 0; i < BATCH; i++) this.sourceViews.push(this.recvSources.subarray(i * ENDPOINT_BYTES, (i + 1) * ENDPOINT_BYTES));
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
    if (this.opener !== null) return this.open(n);
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
      const off = buf.base + this.start;
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
    return this.admit(slab, off + HEADER_LEN, len - HEADER_LEN, peer);
  }

  /** An inner packet from peer: DELIVER, or why not (unsound, or its source outside the peer's allowed IPs). */
  private admit(slab: Uint8Array, inner: number, len: number, peer: Peer): number {
    const bad = checkPacket(slab, inner, len, this.tun.mtu);
    if (bad >= 0) return bad;
    if (this.peers.route(slab, sourceOffset(slab, inner), slab[inner] >> 4 === 4 ? 4 : 6) !== peer) return Drop.SourceNotAllowed;
    return DELIVER;
  }

  /** WireGuard: opens the batch's data messages (one native call), then judges each as
   * decapsulate does; the rest go to the handshake. Returns the write entries. */
  private open(n: number): number {
    const slab = this.pool.slab;
    const b = this.batch;
    const segs = this.recvSegs;
    const opener = this.opener!;
    const out = this.opened;
    for (let i = 0; i < n; i++) {
      const bad = b.lens[i] < 0 || b.lens[i] > this.maxDatagram;
      this.refused[i] = bad ? 1 : 0;
      if (bad) b.lens[i] = 0;
    }
    opener.open(slab, b.offs, b.lens, n, segs, out);
    const now = performance.now(); // once per batch, as the device path does
    let e = 0;
    let k = 0;
    let held = 0;
    // Messages mostly come in runs on one keypair from one source: the opener hears of each
    // run once, across datagrams too (runFrom: the datagram whose source the run has).
    let runSlot = -1;
    let runOk = false;
    let runData = false;
    let runFrom = -1;
    for (let i = 0; i < n; i++) {
      const buf = b.take(i);
      const len = b.lens[i];
      const size = segs !== null && segs[i] > 0 ? segs[i] : 0;
      const messages = size > 0 && len > size ? Math.ceil(len / size) : 1;
      if (this.refused[i] === 1) {
        e += messages;
        this.dropBuf(buf, Drop.Oversize, i);
        continue;
      }
      const source = this.sourceViews[i];
      const first = k;
      if (runFrom >= 0 && !sameEndpoint(this.recvSources, runFrom, i)) runSlot = -1;
      for (let m = 0; m < messages; m++, e++) {
        const off = out[e * 3];
        const mlen = out[e * 3 + 1];
        const slot = out[e * 3 + 2];
        if (slot < 0) {
          const reason = slot === WG_NOT_DATA ? opener.control(slab.subarray(off, off + mlen), source) : sealedDrop(slot);
          if (reason >= 0) this.countDrop(reason, i);
          continue;
        }
        const keepalive = mlen === 0;
        if (slot !== runSlot) {
          runSlot = slot;
          runFrom = i;
          runData = !keepalive;
          runOk = opener.received(slot, source, keepalive, now);
        } else if (runOk && !runData && !keepalive) {
          runData = true;
          runOk = opener.received(slot, source, false, now);
        }
        const peer = runOk ? opener.peerOf(slot) : null;
        if (peer === null) {
          this.countDrop(Drop.ExpiredKeypair, i);
          continue;
        }
        // Authenticated: counted as wireguard-go does, before the allowed-IPs check.
        peer.wireRxBytes += mlen + WG_HEADER_LEN + WG_TAG_LEN;
        if (keepalive) {
          peer.rxKeepalives++;
          continue;
        }
        const ipLen = declaredLength(slab, off, mlen);
        const verdict = ipLen < 0 ? Drop.MalformedIp : this.admit(slab, off, ipLen, peer);
        if (verdict !== DELIVER) {
          this.countDrop(verdict, i);
          continue;
        }
        this.writeOffs[k] = off;
        this.writeLens[k] = ipLen;
        this.writePeers[k] = peer;
        k++;
      }
      if (k > first) this.held[held++] = buf;
      else buf.release();
    }
    this.heldCount = held;
    return k;
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
