// Device path: TUN -> route by inner destination -> our header written in the headroom
// -> sendmmsg to the peer -> release. One pass per batch, top to bottom.
//
// With WireGuard (a Sealer), the route is followed by the peer's keypair slot (no keypair:
// the packet is staged and a handshake asked for), and instead of our header each packet is
// sealed in place (data header in the headroom, padding and tag in the tailroom) by one
// native call per batch; with offloads, each segment is sealed as the addon splits it.
//
// With TUN offloads on, each read may be a super-packet (a virtio-net header, then up to
// 64 KiB of TCP or UDP) that the addon splits into MTU-sized packets and sends with UDP
// GSO: routing is decided here once per super-packet, the per-segment work is native.
import { constants } from "node:os";
import {
  addon, SEND_STATE_GSO_ERRNO, SEND_STATE_LEN, SEND_STATE_RESUME, SEND_STATE_SENDS, VNET_HDR_LEN, WG_COUNTER_EXHAUSTED, WG_HEADER_LEN,
  WG_NO_KEYPAIR, WG_TAG_LEN,
} from "../native/addon.ts";
import type { Addon, PacketIo } from "../native/addon.ts";
import type { TunDevice } from "../native/tun.ts";
import type { UdpSocket } from "../native/udp.ts";
import { ENDPOINT_BYTES } from "../net/address.ts";
import type { BufferPool } from "../pool/buffer-pool.ts";
import type { PooledBuffer } from "../pool/pooled-buffer.ts";
import { ReadBatch } from "./batch.ts";
import type { PathHooks } from "./batch.ts";
import { BATCH, MAX_IP_PACKET, ROUNDS_PER_WAKEUP, SUPER_BATCH_BYTES } from "./constants.ts";
import { Drop, newDropCounters } from "./drops.ts";
import { DATA_HEADER, HEADER_LEN, writeDataHeader } from "./header.ts";
import { destinationOffset } from "./ip-packet.ts";
import type { Peer, PeerTable } from "./peers.ts";
import { PADDING_MULTIPLE } from "../wireguard/constants.ts";

export interface DevicePathHooks extends PathHooks {
  /** The socket is full (true: hold TUN reads, report writability) or takes data again
   * (false). Called after every batch, so it must be cheap when nothing changes. */
  socketFull(full: boolean): void;
  /** The kernel refused UDP GSO on a send (errno): the path has turned it off. */
  gsoRefused(errno: number): void;
}

/** What the device path's I/O may use; decided by the forwarder from config and kernel. */
export interface DeviceOffloads {
  /** The TUN fd carries a virtio-net header and may hand over super-packets. */
  readonly tun: boolean;
  /** Split segments leave in UDP GSO sends (one sendmsg for up to 64 datagrams). */
  gso: boolean;
}

const NO_OFFLOADS: DeviceOffloads = { tun: false, gso: false };

/** The WireGuard side of the device path (wireguard-transport.ts); none on the plain transport. */
export interface Sealer {
  /** Device MTU: padding never goes past it. */
  readonly mtu: number;
  /** The keypair slot to seal the peer's packet with, or -1: the sealer has then taken the
   * buffer (staged until a handshake completes, or dropped and counted). */
  slotFor(peer: Peer, buf: PooledBuffer, now: number): number;
  /** count data messages went to the peer (its timers, rekey after messages)... */
  sent(peer: Peer, count: number): void;
  /** ...told once per batch, here, so the protocol's bookkeeping costs nothing per packet. */
  flushSent(): void;
  /** Seals whole packets in place (the addon's wgSeal). */
  seal: Addon["wgSeal"];
}

/** Our header, on the plain transport; with a sealer, the addon writes WireGuard's. */
const NO_HEADER = new Uint8Array(0);

/** errno the addon reports for a super-packet it cannot parse. */
const { EBADMSG } = constants.errno;

export class DevicePath {
  packets = 0;
  bytes = 0;
  readonly drops = newDropCounters();
  /** The errno of the last failed send, for the log. */
  lastSendErrno = 0;
  /** Packets read from the TUN device (a super-packet counts once). */
  reads = 0;
  /** Datagrams as the socket sent them (a GSO send counts once). */
  sends = 0;

  private readonly batch: ReadBatch;

  // The send batch; entries [0, sendCount) are waiting for sendmmsg.
  private readonly sendOffs = new Int32Array(BATCH);
  private readonly sendLens = new Int32Array(BATCH);
  private readonly sendStatus = new Int32Array(BATCH);
  private readonly sendDests = new Uint8Array(BATCH * ENDPOINT_BYTES);
  private readonly sendBufs: (PooledBuffer | null)[] = new Array<PooledBuffer | null>(BATCH).fill(null);
  private readonly sendPeers: (Peer | null)[] = new Array<Peer | null>(BATCH).fill(null);
  /** Inner bytes of each whole packet (a split super-packet's are counted by the addon). */
  private readonly sendInner = new Int32Array(BATCH);
  /** WireGuard: the keypair slot each entry is sealed with. */
  private readonly sendSlots = new Int32Array(BATCH);
  private sendCount = 0;
  // Offload sends: inner bytes sent per super-packet, and udpSendSegments' state (read and
  // written by its SEND_STATE_* positions).
  private readonly sendBytes = new Int32Array(BATCH);
  private readonly sendState = new Int32Array(SEND_STATE_LEN);

  private readonly tun: TunDevice;
  /** Replaced when the socket moves to another port (a configuration change), between batches. */
  sock: UdpSocket;
  private readonly pool: BufferPool;
  /** Replaced whole by a reload (SIGHUP), between two batches. */
  peers: PeerTable;
  private readonly hooks: DevicePathHooks;
  private readonly io: PacketIo;
  readonly offloads: DeviceOffloads;
  private readonly sealer: Sealer | null;
  /** Where the IP packet starts in what a read returns (after the virtio header, if any). */
  private readonly ipStart: number;
  /** Bytes one batch of TUN reads may bring in. */
  private readonly maxBytes: number;

  constructor(
    tun: TunDevice, sock: UdpSocket, pool: BufferPool, peers: PeerTable, hooks: DevicePathHooks,
    io: PacketIo = addon, offloads: DeviceOffloads = NO_OFFLOADS, sealer: Sealer | null = null,
  ) {
    this.tun = tun;
    this.sock = sock;
    this.pool = pool;
    this.peers = peers;
    this.hooks = hooks;
    this.io = io;
    this.offloads = offloads;
    this.sealer = sealer;
    this.ipStart = offloads.tun ? VNET_HDR_LEN : 0;
    // Without offloads the kernel never hands us more than the MTU; with them, a whole
    // super-packet behind its virtio header. Either lands at the headroom.
    this.maxBytes = offloads.tun ? SUPER_BATCH_BYTES : 0x7fffffff;
    this.batch = new ReadBatch(pool, pool.headroom, offloads.tun ? VNET_HDR_LEN + MAX_IP_PACKET : tun.mtu, BATCH,
      offloads.tun ? SUPER_BATCH_BYTES : 0);
  }

  /** The TUN fd is readable: drain it in batches. */
  onReadable(): void {
    for (let round = 0; round < ROUNDS_PER_WAKEUP; round++) {
      if (this.sendCount > 0) return; // still waiting for the socket; reads are paused
      const n = this.read();
      if (n === 0) return;
      this.encapsulate(n);
      this.seal();
      this.send();
      // Fewer than offered and under the byte limit: EAGAIN, drained.
      if (n < this.batch.offered && this.batch.lastBytes < this.maxBytes) return;
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
    this.sendState[SEND_STATE_RESUME] = 0;
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
      n = this.io.tunRead(this.tun.fd, this.pool.slab, b.offs, b.lens, want, this.maxBytes);
    } finally {
      b.releaseUnused(n, want);
    }
    this.reads += n;
    return n;
  }

  private encapsulate(n: number): void {
    const slab = this.pool.slab;
    const sealer = this.sealer;
    const now = sealer !== null ? performance.now() : 0;
    let k = this.sendCount;
    // A run of packets to one peer shares its keypair slot: the sealer is asked once per run
    // (and the batch's time is passed once, not boxed per packet).
    let lastPeer: Peer | null = null;
    let lastSlot = -1;
    for (let i = 0; i < n; i++) {
      const buf = this.batch.take(i);
      const len = this.batch.lens[i];
      buf.end = buf.start + len;
      const off = buf.base + buf.start + this.ipStart;
      const dst = destinationOffset(slab, off, len - this.ipStart);
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
      if (sealer !== null) {
        const slot = peer === lastPeer && lastSlot >= 0 ? lastSlot : sealer.slotFor(peer, buf, now);
        lastPeer = peer;
        lastSlot = slot;
        if (slot < 0) continue; // the sealer has it
        this.sendSlots[k] = slot;
      }
      this.enqueue(k++, buf, peer, len);
    }
    this.sendCount = k;
  }

  /** Entry k of the send batch: buf's packet (len bytes as read) to the peer. */
  private enqueue(k: number, buf: PooledBuffer, peer: Peer, len: number): void {
    if (this.offloads.tun || this.sealer !== null) {
      // The addon reads the virtio header and heads every segment; or seal() seals in place.
      this.sendOffs[k] = buf.base + buf.start;
      this.sendLens[k] = len;
    } else {
      const start = buf.shiftStartLeft(HEADER_LEN);
      writeDataHeader(this.pool.slab, buf.base + start);
      this.sendOffs[k] = buf.base + start;
      this.sendLens[k] = len + HEADER_LEN;
    }
    this.sendInner[k] = len;
    this.sendDests.set(peer.endpoint!, k * ENDPOINT_BYTES);
    this.sendBufs[k] = buf;
    this.sendPeers[k] = peer;
  }

  /**
   * Packets the sealer staged for a peer that had no keypair, sent now that it has one
   * (slot). Takes them from the front of bufs in batches; stops early, leaving the rest in
   * bufs, while a batch waits for the socket. Returns how many it took.
   */
  sendStaged(peer: Peer, slot: number, bufs: PooledBuffer[]): number {
    let taken = 0;
    while (taken < bufs.length && this.sendCount === 0 && peer.endpoint !== null) {
      let k = 0;
      while (k < BATCH && taken < bufs.length) {
        const buf = bufs[taken++];
        this.sendSlots[k] = slot;
        this.enqueue(k++, buf, peer, buf.end - buf.start);
      }
      this.sendCount = k;
      this.seal();
      this.send();
    }
    return taken;
  }

  /** WireGuard without TUN offloads: the queued packets sealed in place, one native call. A
   * packet whose keypair ran out meanwhile (refused: nothing sealed) leaves the batch. */
  private seal(): void {
    const count = this.sendCount;
    if (this.sealer === null || this.offloads.tun || count === 0) return;
    const status = this.sendStatus;
    this.sealer.seal(this.pool.slab, this.sendOffs, this.sendLens, count, this.sendSlots, this.sealer.mtu, status);
    let kept = 0;
    for (let i = 0; i < count; i++) {
      if (status[i] !== 0) {
        this.drop(i, Drop.NoSession);
        continue;
      }
      if (kept !== i) this.move(i, kept);
      kept++;
    }
    this.sendCount = kept;
  }

  private send(): void {
    if (this.sendCount === 0) return;
    if (this.offloads.tun) this.sendSegments();
    else this.sendPackets();
    if (this.sealer !== null) this.sealer.flushSent();
  }

  private sendPackets(): void {
    const count = this.sendCount;
    const done = this.io.udpSend(
      this.sock.fd, this.sock.v6, this.pool.slab, this.sendOffs, this.sendLens, count, this.sendDests, this.sendStatus,
    );
    for (let i = 0; i < done; i++) {
      if (this.sendStatus[i] === 0) {
        this.sends++;
        this.countSent(i, 1, this.sendInner[i]);
        if (this.sealer !== null) this.sendPeers[i]!.wireTxBytes += this.sendLens[i];
        this.finish(i);
      } else {
        this.lastSendErrno = -this.sendStatus[i];
        this.drop(i, Drop.SendError);
      }
    }
    this.keepRest(done, count);
  }

  /** Super-packets: the addon splits (and with a sealer seals) and sends; status[i] is the segments sent. */
  private sendSegments(): void {
    const count = this.sendCount;
    const state = this.sendState;
    const sealer = this.sealer;
    const done = this.io.udpSendSegments(
      this.sock.fd, this.sock.v6, this.pool.slab, this.sendOffs, this.sendLens, count, this.sendDests,
      this.sendStatus, this.sendBytes, state, sealer === null ? DATA_HEADER : NO_HEADER, this.offloads.gso ? 1 : 0,
      sealer === null ? null : this.sendSlots, sealer === null ? 0 : sealer.mtu,
    );
    this.sends += state[SEND_STATE_SENDS];
    // A super-packet cut short by a full socket has its sent segments counted now.
    const counted = done < count ? done + 1 : done;
    for (let i = 0; i < counted; i++) {
      const segs = this.sendStatus[i];
      if (segs > 0) {
        this.countSent(i, segs, this.sendBytes[i]);
        if (sealer !== null) this.sendPeers[i]!.wireTxBytes += sealedBytes(segs, this.sendBytes[i], sealer.mtu);
        if (i < done) this.finish(i);
      } else if (i < done) {
        this.lastSendErrno = -segs;
        this.drop(i, segs === -EBADMSG ? Drop.MalformedIp : segs === WG_NO_KEYPAIR || segs === WG_COUNTER_EXHAUSTED ? Drop.NoSession : Drop.SendError);
      }
    }
    if (state[SEND_STATE_GSO_ERRNO] !== 0 && this.offloads.gso) {
      this.offloads.gso = false;
      this.hooks.gsoRefused(state[SEND_STATE_GSO_ERRNO]);
    }
    this.keepRest(done, count);
  }

  /** Sent up to done: with all sent, carry on; else keep the rest and wait for the socket. */
  private keepRest(done: number, count: number): void {
    if (done === count) {
      this.sendCount = 0;
      this.hooks.socketFull(false);
      return;
    }
    // The socket buffer is full: keep the rest, stop reading the TUN until it drains.
    const rest = count - done;
    if (done > 0) for (let i = 0; i < rest; i++) this.move(done + i, i);
    this.sendCount = rest;
    this.hooks.socketFull(true);
  }

  /** Moves send entry from to the free slot to (to < from). */
  private move(from: number, to: number): void {
    this.sendOffs[to] = this.sendOffs[from];
    this.sendLens[to] = this.sendLens[from];
    this.sendInner[to] = this.sendInner[from];
    this.sendSlots[to] = this.sendSlots[from];
    this.sendDests.copyWithin(to * ENDPOINT_BYTES, from * ENDPOINT_BYTES, (from + 1) * ENDPOINT_BYTES);
    this.sendBufs[to] = this.sendBufs[from];
    this.sendPeers[to] = this.sendPeers[from];
    this.sendBufs[from] = null;
    this.sendPeers[from] = null;
  }

  /** Counts inner packets and bytes of entry i that the kernel took, for its peer and the path. */
  private countSent(i: number, packets: number, bytes: number): void {
    const peer = this.sendPeers[i]!;
    peer.txPackets += packets;
    peer.txBytes += bytes;
    this.packets += packets;
    this.bytes += bytes;
    if (this.sealer !== null) this.sealer.sent(peer, packets);
  }

  /** Entry i is sent: its buffer goes back to the pool. */
  private finish(i: number): void {
    this.sendBufs[i]!.release();
    this.sendBufs[i] = null;
    this.sendPeers[i] = null;
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

/** The bytes on the wire of `segs` sealed messages holding `inner` bytes of one super-packet:
 * each message adds its header and tag, and pads its plaintext to 16 bytes (not past the MTU).
 * The segments but the last are taken to fill the MTU, as TCP's do (their MSS comes from it),
 * which makes it exact for them and for single packets. Segments shorter than the MTU (an
 * application's UDP GSO) may be counted up to 15 bytes short each: their lengths are the
 * addon's, not known here. */
function sealedBytes(segs: number, inner: number, mtu: number): number {
  const last = inner - (segs - 1) * mtu;
  const overhead = segs * (WG_HEADER_LEN + WG_TAG_LEN);
  if (last <= 0 || last > mtu) return overhead + inner;
  return overhead + inner - last + Math.min(mtu, Math.ceil(last / PADDING_MULTIPLE) * PADDING_MULTIPLE);
}
