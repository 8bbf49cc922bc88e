// The WireGuard transport: udptun's two paths with a Sealer and an Opener (the per-packet
// crypto is the addon's, one call per batch), around the protocol in src/wireguard/, which
// does no I/O. This file is its I/O: it puts the protocol's messages on the wire, installs
// its keypairs in the addon's table, holds packets for a peer that has no session yet
// (bounded, released when the handshake completes or gives up), follows roaming peers, and
// runs the timers.
import type { Logger } from "pino";
import type { WireGuardConfig } from "../config/schema.ts";
import { addon, WG_HEADER_LEN, WG_KEYPAIR_SLOTS } from "../native/addon.ts";
import type { PacketIo } from "../native/addon.ts";
import type { UdpSocket } from "../native/udp.ts";
import { ENDPOINT_BYTES } from "../net/address.ts";
import type { PooledBuffer } from "../pool/pooled-buffer.ts";
import { WgDevice } from "../wireguard/device.ts";
import type { WgEffects } from "../wireguard/device.ts";
import { WgDrop } from "../wireguard/drops.ts";
import type { WgPeer, WgPeerCounters } from "../wireguard/peer.ts";
import { DevicePath } from "./device-path.ts";
import type { Sealer } from "./device-path.ts";
import { Drop } from "./drops.ts";
import { writableDevice } from "./fds.ts";
import { NetworkPath } from "./network-path.ts";
import type { Opener } from "./network-path.ts";
import type { Peer, PeerTable } from "./peers.ts";
import type { PeerSettings, Transport, TransportHooks, TransportParts } from "./transport.ts";

/** How often the protocol's timers run (retransmits, keepalives, rekeys, key zeroing). */
const TICK_MS = 250;
/** Packets held per peer while its handshake runs (wireguard-go's QueueStagedSize). */
const STAGED_PER_PEER = 128;
/** At most one handshake log line per peer and event in this time. */
const LOG_EVERY_MS = 10_000;
/** Handshake messages handled per second, at most (burst as large): each costs a few hundred
 * microseconds of JavaScript even when it only earns a cookie reply, and they are handled in
 * line with data, so past this a flood is dropped unread (handshake_overflow) rather than slow the
 * data path. Peers retry their handshakes every REKEY_TIMEOUT; wireguard-go bounds its
 * handshake queue for the same reason. */
const HANDSHAKES_PER_SECOND = 128;

/** Why the protocol refused a handshake message, as the network path's drop reason. */
export const HANDSHAKE_DROPS: Record<number, number> = {
  [WgDrop.BadSize]: Drop.BadSize,
  [WgDrop.BadMac1]: Drop.BadMac,
  [WgDrop.BadCookie]: Drop.BadMac,
  [WgDrop.CookieSent]: Drop.UnderLoad,
  [WgDrop.NoSlot]: Drop.UnderLoad,
  [WgDrop.RateLimited]: Drop.RateLimited,
  [WgDrop.UnknownIndex]: Drop.UnknownIndex,
  [WgDrop.UnknownPeer]: Drop.UnknownPeer,
  [WgDrop.DecryptionFailed]: Drop.DecryptionFailed,
  [WgDrop.ReplayedTimestamp]: Drop.ReplayedHandshake,
  [WgDrop.Flood]: Drop.ReplayedHandshake,
};

export interface WireGuardOptions {
  /** A peer authenticated from a new endpoint (roaming): the forwarder's Endpoints follows it. */
  moved(peer: Peer, endpoint: Uint8Array): void;
}

export class WireGuardTransport implements Transport, WgEffects, Sealer, Opener {
  readonly devicePath: DevicePath;
  readonly networkPath: NetworkPath;
  readonly protocol: WgDevice;
  readonly mtu: number;
  private sock: UdpSocket;
  /** The paths' packet I/O: control messages go out through it too. */
  private readonly io: PacketIo;
  private readonly log: Logger;
  private readonly opts: WireGuardOptions;
  private readonly wgOf = new Map<Peer, WgPeer>();
  private readonly peerOfWg = new Map<WgPeer, Peer>();
  /** The peer whose keypair each native slot holds: the network path's lookup, no Map per packet. */
  private readonly slotPeers: (Peer | null)[] = new Array<Peer | null>(WG_KEYPAIR_SLOTS).fill(null);
  private readonly staged = new Map<Peer, PooledBuffer[]>();
  /** Data messages sent per peer in the batch in hand, for the protocol once the batch is out:
   * entries [0, unreportedCount) (arrays, not a Map: iterating a Map allocates per batch). */
  private readonly unreportedPeers: (Peer | null)[] = [];
  private readonly unreportedMessages: number[] = [];
  private unreportedCount = 0;
  private stagedTotal = 0;
  private readonly stagedMax: number;
  private readonly timer: NodeJS.Timeout;
  /** The time of the batch in hand (set where a path calls in), so a batch reads the clock once. */
  private now = performance.now();
  private readonly logged = new Map<string, number>();
  /** Handshake messages that may be handled now (a token bucket refilled at HANDSHAKES_PER_SECOND). */
  private budget = HANDSHAKES_PER_SECOND;
  private budgetAt = 0;
  // One control message at a time (handshake, cookie reply, keepalive): room for the
  // largest (148 bytes) and for sealing an empty one (header before, tag after).
  private readonly ctl = new Uint8Array(256);
  private readonly ctlOffs = new Int32Array(1);
  private readonly ctlLens = new Int32Array(1);
  private readonly ctlSlots = new Int32Array(1);
  private readonly ctlStatus = new Int32Array(1);

  constructor(parts: TransportParts, hooks: TransportHooks, config: WireGuardConfig, opts: WireGuardOptions) {
    const { fds, pools, offloads, peers } = parts;
    const io = parts.io ?? addon;
    this.io = io;
    this.sock = fds.sock;
    this.log = parts.log;
    this.opts = opts;
    this.mtu = fds.tun.mtu;
    // Staged packets hold device-pool buffers: a quarter of the pool at most, so reads go on.
    this.stagedMax = Math.max(1, Math.floor(pools.device.capacity / 4));
    this.devicePath = new DevicePath(fds.tun, fds.sock, pools.device, peers, hooks.device, io, offloads.device, this);
    this.networkPath = new NetworkPath(fds.sock, writableDevice(fds), pools.network, peers, hooks.network, io, offloads.network, this);
    this.protocol = new WgDevice({ privateKey: config.privateKey, peers: [], effects: this });
    this.timer = setInterval(() => this.tick(), TICK_MS).unref();
  }

  // ---- Transport ----

  /** The peers in force, keyed by public key: a new key joins the protocol, a key gone leaves
   * it (its keypairs and staged packets with it). A key still configured keeps its protocol
   * peer and so its session, whatever else changed (allowed IPs, endpoint, preshared key for
   * the next handshake, keepalive); if a reload built a new Peer for it, the session follows. */
  setPeers(table: PeerTable, configs: readonly PeerSettings[]): void {
    this.devicePath.peers = this.networkPath.peers = table;
    const next = new Map<string, number>();
    configs.forEach((c, i) => next.set(keyOf(c.publicKey!), i));
    for (const [peer, wp] of [...this.wgOf]) {
      const i = next.get(keyOf(wp.publicKey));
      if (i === undefined) {
        this.dropStaged(peer);
        this.protocol.removePeer(wp.publicKey);
        this.wgOf.delete(peer);
        this.peerOfWg.delete(wp);
      } else if (table.peers[i] !== peer) {
        this.rehome(peer, table.peers[i], wp, table);
      }
    }
    table.peers.forEach((peer, i) => {
      const c = configs[i];
      const wp = this.wgOf.get(peer);
      if (wp !== undefined) {
        this.protocol.setPresharedKey(wp, c.presharedKey);
        this.protocol.setPersistentKeepalive(wp, c.persistentKeepalive, performance.now());
        return;
      }
      const added = this.protocol.addPeer({
        name: c.name, publicKey: c.publicKey!, presharedKey: c.presharedKey ?? undefined,
        endpoint: peer.endpoint ?? undefined, persistentKeepalive: c.persistentKeepalive,
      });
      this.wgOf.set(peer, added);
      this.peerOfWg.set(added, peer);
    });
  }

  setSocket(sock: UdpSocket): void {
    this.sock = this.devicePath.sock = this.networkPath.sock = sock;
  }

  /** The device's private key (null: none). Every session ends; handshakes start again when
   * traffic needs them. A peer with the new key's public key must be gone already. */
  setPrivateKey(privateKey: Uint8Array | null): void {
    this.protocol.setPrivateKey(privateKey);
  }

  /** A handshake initiation, now, to every peer with a session and a known endpoint (the socket
   * moved: those peers learn the new port from it within a round trip, not at their next
   * rekey). Peers without a session are left alone: their first packet starts a handshake from
   * the new port anyway, and an initiation sent while they may not be up yet (wg-quick sets the
   * port and the peers in one request) would hold their first packets for a retransmit. */
  initiateSessions(): void {
    const now = performance.now();
    for (const wp of this.peerOfWg.keys()) if (this.protocol.hasSession(wp)) this.protocol.initiateHandshake(wp, now);
  }

  /** The protocol peer of a configured peer. */
  protocolPeer(peer: Peer): WgPeer | undefined {
    return this.wgOf.get(peer);
  }

  /** The protocol's counters for the peer (metrics). */
  countersOf(peer: Peer): WgPeerCounters | undefined {
    return this.wgOf.get(peer)?.counters;
  }

  /** The peer's configured endpoint became known (an address, or a name resolved). */
  endpointKnown(peer: Peer): void {
    const wp = this.wgOf.get(peer);
    if (wp && peer.endpoint) this.protocol.setEndpoint(wp, peer.endpoint);
  }

  stop(): void {
    clearInterval(this.timer);
    for (const peer of [...this.staged.keys()]) this.dropStaged(peer);
    // Every session's keys go: the protocol's copies, and the addon's table.
    for (const wp of [...this.peerOfWg.keys()]) this.protocol.removePeer(wp.publicKey);
    for (let slot = 0; slot < WG_KEYPAIR_SLOTS; slot++) if (this.slotPeers[slot] !== null) this.removeKeypair(slot);
  }

  // ---- Sealer (device path) ----

  slotFor(peer: Peer, buf: PooledBuffer, now: number): number {
    this.now = now;
    const wp = this.wgOf.get(peer);
    const slot = wp === undefined ? -1 : this.protocol.sendingSlot(wp, now);
    if (slot >= 0) return slot;
    this.stage(peer, buf);
    return -1;
  }

  sent(peer: Peer, count: number): void {
    const n = this.unreportedCount;
    // A batch mostly goes to one peer or a few: the latest entry is the likeliest.
    for (let i = n - 1; i >= 0; i--) {
      if (this.unreportedPeers[i] === peer) {
        this.unreportedMessages[i] += count;
        return;
      }
    }
    this.unreportedPeers[n] = peer;
    this.unreportedMessages[n] = count;
    this.unreportedCount = n + 1;
  }

  flushSent(): void {
    for (let i = 0; i < this.unreportedCount; i++) {
      const wp = this.wgOf.get(this.unreportedPeers[i]!);
      if (wp !== undefined) this.protocol.dataSent(wp, this.now, this.unreportedMessages[i]);
      this.unreportedPeers[i] = null;
    }
    this.unreportedCount = 0;
  }

  seal = addon.wgSeal;

  // ---- Opener (network path) ----

  peerOf(slot: number): Peer | null {
    return this.slotPeers[slot];
  }

  received(slot: number, source: Uint8Array, keepalive: boolean, now: number): boolean {
    this.now = now;
    if (!this.protocol.dataReceived(slot, source, now, keepalive)) return false;
    const peer = this.slotPeers[slot];
    if (peer !== null) this.follow(peer);
    return true;
  }

  control(message: Uint8Array, source: Uint8Array): number {
    this.now = performance.now();
    this.budget = Math.min(HANDSHAKES_PER_SECOND, this.budget + ((this.now - this.budgetAt) * HANDSHAKES_PER_SECOND) / 1000);
    this.budgetAt = this.now;
    if (this.budget < 1) return Drop.HandshakeOverflow;
    this.budget--;
    const reason = this.protocol.handshakeMessage(message, source, this.now);
    this.followAll();
    return reason === WgDrop.None ? -1 : HANDSHAKE_DROPS[reason] ?? Drop.BadType;
  }

  open = addon.wgOpen;

  // ---- WgEffects (what the protocol asks for) ----

  send(endpoint: Uint8Array, msg: Uint8Array, wp: WgPeer | null): void {
    // A response to a roamed initiator: the filter must let its data in before it can come.
    this.followAll();
    this.ctl.set(msg, 0);
    this.ctlOffs[0] = 0;
    this.ctlLens[0] = msg.length;
    if (this.sendControl(endpoint) && wp !== null) {
      const peer = this.peerOfWg.get(wp);
      if (peer !== undefined) peer.wireTxBytes += msg.length;
    }
  }

  handshakeReceived(wp: WgPeer, bytes: number): void {
    const peer = this.peerOfWg.get(wp);
    if (peer !== undefined) peer.wireRxBytes += bytes;
  }

  installKeypair(slot: number, localIndex: number, remoteIndex: number, sendKey: Uint8Array, recvKey: Uint8Array): void {
    addon.wgKeypairSet(slot, localIndex, remoteIndex, sendKey, recvKey);
    const wp = this.protocol.peerOfSlot(slot);
    const peer = wp === null ? null : this.peerOfWg.get(wp) ?? null;
    this.slotPeers[slot] = peer;
    if (peer !== null) this.note(peer, "handshake", "info", "session keys installed (handshake complete)");
  }

  removeKeypair(slot: number): void {
    addon.wgKeypairClear(slot);
    this.slotPeers[slot] = null;
  }

  sendKeepalive(wp: WgPeer, slot: number): void {
    if (wp.endpoint === null) return;
    // An empty plaintext, sealed where a data message would be: header before it, tag after.
    this.ctlOffs[0] = WG_HEADER_LEN;
    this.ctlLens[0] = 0;
    this.ctlSlots[0] = slot;
    addon.wgSeal(this.ctl, this.ctlOffs, this.ctlLens, 1, this.ctlSlots, this.mtu, this.ctlStatus);
    if (this.ctlStatus[0] !== 0) return;
    const sealed = this.ctlLens[0];
    const peer = this.peerOfWg.get(wp);
    if (this.sendControl(wp.endpoint) && peer !== undefined) peer.wireTxBytes += sealed;
  }

  keypairReady(wp: WgPeer): boolean {
    const peer = this.peerOfWg.get(wp);
    return peer !== undefined && this.flushStaged(peer) > 0;
  }

  gaveUp(wp: WgPeer): void {
    const peer = this.peerOfWg.get(wp);
    if (peer === undefined) return;
    this.note(peer, "gave-up", "warn", "handshake attempts exhausted; packets held for the peer are dropped");
    this.dropStaged(peer);
  }

  // ---- the rest ----

  private tick(): void {
    this.now = performance.now();
    this.protocol.tick(this.now);
    // Held packets a full socket kept from going when their session came.
    for (const peer of this.staged.keys()) this.flushStaged(peer);
  }

  /** True if the kernel took it. */
  private sendControl(endpoint: Uint8Array): boolean {
    const sent = this.io.udpSend(this.sock.fd, this.sock.v6, this.ctl, this.ctlOffs, this.ctlLens, 1, endpoint, this.ctlStatus);
    if (sent !== 1 || this.ctlStatus[0] !== 0) return false;
    this.devicePath.sends++;
    return true;
  }

  /** A reload built a new Peer for a public key still configured: its session, keypair slots
   * and staged packets move to it. */
  private rehome(from: Peer, to: Peer, wp: WgPeer, table: PeerTable): void {
    this.wgOf.delete(from);
    this.wgOf.set(to, wp);
    this.peerOfWg.set(wp, to);
    for (let slot = 0; slot < WG_KEYPAIR_SLOTS; slot++) if (this.slotPeers[slot] === from) this.slotPeers[slot] = to;
    const list = this.staged.get(from);
    if (list !== undefined) {
      this.staged.delete(from);
      this.staged.set(to, list);
    }
    if (to.endpoint === null && wp.endpoint !== null) table.setEndpoint(to, wp.endpoint);
  }

  private stage(peer: Peer, buf: PooledBuffer): void {
    let list = this.staged.get(peer);
    if (list === undefined) this.staged.set(peer, (list = []));
    list.push(buf);
    this.stagedTotal++;
    // Over either bound, the oldest goes (the newest packets matter most once the session is up).
    if (list.length > STAGED_PER_PEER || this.stagedTotal > this.stagedMax) this.release(list.shift()!);
  }

  /** Sends what is held for the peer if it has a session now; returns how many went. */
  private flushStaged(peer: Peer): number {
    const list = this.staged.get(peer);
    const wp = this.wgOf.get(peer);
    if (list === undefined || wp === undefined) return 0;
    const slot = this.protocol.sendingSlot(wp, this.now);
    if (slot < 0) return 0;
    const taken = this.devicePath.sendStaged(peer, slot, list);
    list.splice(0, taken);
    this.stagedTotal -= taken;
    if (list.length === 0) this.staged.delete(peer);
    return taken;
  }

  private dropStaged(peer: Peer): void {
    const list = this.staged.get(peer);
    if (list === undefined) return;
    this.staged.delete(peer);
    for (const buf of list) this.release(buf);
  }

  private release(buf: PooledBuffer): void {
    buf.release();
    this.stagedTotal--;
    this.devicePath.drops[Drop.NoSession]++;
  }

  /** The protocol moved the peer's endpoint (an authenticated packet from elsewhere): follow it. */
  private follow(peer: Peer): void {
    const ep = this.wgOf.get(peer)?.endpoint;
    if (ep && ep !== peer.endpoint && !sameEndpoint(ep, peer.endpoint)) this.opts.moved(peer, ep);
  }

  private followAll(): void {
    for (const peer of this.wgOf.keys()) this.follow(peer);
  }

  /** A handshake event worth a log line, at most one per peer and kind per LOG_EVERY_MS. */
  private note(peer: Peer, kind: string, level: "info" | "warn", msg: string): void {
    const key = `${kind} ${peer.name}`;
    const last = this.logged.get(key) ?? -Infinity;
    if (this.now - last < LOG_EVERY_MS) return;
    this.logged.set(key, this.now);
    const wp = this.wgOf.get(peer);
    this.log[level]({ peer: peer.name, key: wp?.toString(), ...(wp ? { counters: wp.counters } : {}) }, msg);
  }
}

function sameEndpoint(a: Uint8Array, b: Uint8Array | null): boolean {
  if (b === null) return false;
  for (let i = 0; i < ENDPOINT_BYTES; i++) if (a[i] !== b[i]) return false;
  return true;
}

function keyOf(publicKey: Uint8Array): string {
  return Buffer.from(publicKey).toString("hex");
}
