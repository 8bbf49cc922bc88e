// The configuration API over a running WireGuard forwarder: each set request is planned with
// wireguard-go's semantics (plan.ts), pushed into the data path, then committed; each get
// reports the running truth (the bound port, the endpoints peers roamed to, the transfer the
// paths counted). A public key's peer lives as long as the key is configured, so changing its
// allowed IPs, endpoint, preshared key or keepalive never ends its session.
import type { Logger } from "pino";
import { decodeEndpoint } from "../net/address.ts";
import type { UdpSocket } from "../native/udp.ts";
import type { Forwarder } from "../tunnel/forwarder.ts";
import { Peer, PeerTable } from "../tunnel/peers.ts";
import type { PeerSettings } from "../tunnel/transport.ts";
import type { WireGuardTransport } from "../tunnel/wireguard.ts";
import { encodeKey } from "../wireguard/keys.ts";
import { ERRNO_PORT_IN_USE, UapiError } from "./errors.ts";
import { ModelDevice } from "./model.ts";
import { formatHexKey } from "./protocol.ts";
import type { ConfigChange, ModelState, PeerConfig } from "./state.ts";
import type { DeviceOperation, DeviceState, PeerOperation, PeerState, SetRequest, UapiDevice } from "./target.ts";

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** What a forwarder already runs (its config's peers, its bound port), as a request that
 * builds the model's first state. */
function runningRequest(fwd: Forwarder, wg: WireGuardTransport): SetRequest {
  const config = fwd.runningConfig;
  const device: DeviceOperation[] = [
    { op: "private_key", key: config.privateKey },
    { op: "listen_port", port: boundPort(fwd) },
    { op: "fwmark", mark: fwd.fwmark },
  ];
  const peers = fwd.peers.peers.map((peer, i) => {
    const c = config.peers[i];
    const operations: PeerOperation[] = [
      { op: "preshared_key", key: c.presharedKey },
      { op: "persistent_keepalive_interval", seconds: c.persistentKeepalive },
      ...peer.allowedIps.map((prefix): PeerOperation => ({ op: "allowed_ip", prefix, remove: false })),
    ];
    const endpoint = peer.endpoint ?? wg.protocolPeer(peer)?.endpoint ?? null;
    if (endpoint !== null) operations.push({ op: "endpoint", endpoint });
    return { publicKey: c.publicKey!, operations };
  });
  return { device, peers };
}

function boundPort(fwd: Forwarder): number {
  return decodeEndpoint(fwd.sock.endpoint).port;
}

const settingsOf = (name: string, c: PeerConfig): PeerSettings => ({
  name, publicKey: c.publicKey, presharedKey: c.presharedKey, persistentKeepalive: c.persistentKeepalive,
});

export class LiveDevice implements UapiDevice {
  readonly #fwd: Forwarder;
  readonly #wg: WireGuardTransport;
  readonly #log: Logger;
  readonly #model = new ModelDevice();
  /** The running peer of each configured public key (hex), for as long as it is configured. */
  readonly #peers = new Map<string, Peer>();

  constructor(fwd: Forwarder, log: Logger) {
    if (fwd.wg === null) throw new Error("the configuration API needs the WireGuard transport (transport: \"wireguard\")");
    this.#fwd = fwd;
    this.#wg = fwd.wg;
    this.#log = log;
    const { state } = this.#model.plan(runningRequest(fwd, fwd.wg));
    this.#model.commit(state);
    const running = fwd.peers.peers;
    [...state.peers.keys()].forEach((hex, i) => this.#peers.set(hex, running[i]));
  }

  apply(request: SetRequest): void {
    const { state, change } = this.#model.plan(request);
    // The steps that may refuse come first, and change nothing the data path sees.
    let sock: UdpSocket | null = null;
    if (change.listenPort) sock = this.#openSocket(state);
    else if (change.fwmark) this.#setMark(state.fwmark);
    // From here nothing refuses.
    if (sock !== null) this.#fwd.adopt(sock);
    if (change.privateKey) this.#wg.setPrivateKey(state.privateKey);
    if (change.removed.length + change.added.length + change.updated.length > 0) this.#applyPeers(state, change);
    if (sock !== null) this.#wg.initiateSessions();
    this.#model.commit(sock === null ? state : Object.freeze({ ...state, listenPort: boundPort(this.#fwd) }));
    this.#log.info({
      privateKey: change.privateKey || undefined, listenPort: change.listenPort ? boundPort(this.#fwd) : undefined,
      fwmark: change.fwmark ? state.fwmark : undefined,
      added: change.added.length, removed: change.removed.length, updated: change.updated.length, peers: state.peers.size,
    }, "configuration applied");
  }

  get(): DeviceState {
    const state = this.#model.state;
    const peers: PeerState[] = [];
    for (const [hex, c] of state.peers) {
      const peer = this.#peers.get(hex)!;
      const wp = this.#wg.protocolPeer(peer);
      const endpoint = peer.endpoint ?? wp?.endpoint ?? c.endpoint;
      const ms = wp?.counters.lastHandshakeTime ?? 0;
      peers.push({
        publicKey: c.publicKey,
        presharedKey: c.presharedKey,
        endpoint: endpoint === null ? null : endpoint.slice(),
        persistentKeepalive: c.persistentKeepalive,
        allowedIps: c.allowedIps.values(),
        lastHandshake: ms === 0 ? null : { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 },
        txBytes: peer.wireTxBytes,
        rxBytes: peer.wireRxBytes,
      });
    }
    return { privateKey: state.privateKey, listenPort: boundPort(this.#fwd), fwmark: this.#fwd.fwmark, peers };
  }

  /** A socket on the new port, with the new mark; wireguard-go answers any failure to bind
   * (or mark) with EADDRINUSE. */
  #openSocket(state: ModelState): UdpSocket {
    try {
      return this.#fwd.openSocket(state.listenPort, state.fwmark);
    } catch (err) {
      throw new UapiError(ERRNO_PORT_IN_USE, `listen_port=${state.listenPort}: ${(err as Error).message}`);
    }
  }

  #setMark(mark: number): void {
    try {
      this.#fwd.setFwmark(mark);
    } catch (err) {
      throw new UapiError(ERRNO_PORT_IN_USE, `fwmark=${mark}: ${(err as Error).message}`);
    }
  }

  /** The peers of `state` put in force: one routing table and one filter for the request. */
  #applyPeers(state: ModelState, change: ConfigChange): void {
    const endpoints: { peer: Peer; endpoint: Uint8Array }[] = [];
    // A key removed and created again in one request (replace_peers) starts over, as in
    // wireguard-go: it leaves the protocol before its new peer joins.
    let recreated = false;
    for (const c of change.removed) {
      const hex = formatHexKey(c.publicKey);
      if (state.peers.get(hex)?.generation !== c.generation && state.peers.has(hex)) recreated = true;
      this.#peers.delete(hex);
    }
    if (recreated) this.#install(state, endpoints, true);
    for (const c of change.added) {
      const peer = new Peer(encodeKey(c.publicKey), [...c.allowedIps.values()]);
      this.#peers.set(formatHexKey(c.publicKey), peer);
      if (c.endpoint !== null) endpoints.push({ peer, endpoint: c.endpoint });
    }
    for (const { before, after } of change.updated) {
      const peer = this.#peers.get(formatHexKey(after.publicKey))!;
      if (before.allowedIps !== after.allowedIps) peer.allowedIps = [...after.allowedIps.values()];
      if (after.endpoint !== null && !sameBytes(before.endpoint, after.endpoint)) endpoints.push({ peer, endpoint: after.endpoint });
    }
    this.#install(state, endpoints, false);
  }

  /** Builds the routing table of the running peers configured in `state` (only those already
   * running if `existing`) and hands it to the forwarder. */
  #install(state: ModelState, endpoints: { peer: Peer; endpoint: Uint8Array }[], existing: boolean): void {
    const peers: Peer[] = [];
    const settings: PeerSettings[] = [];
    for (const [hex, c] of state.peers) {
      const peer = this.#peers.get(hex);
      if (peer === undefined) {
        if (existing) continue;
        throw new Error(`peer ${hex}: configured but not running`);
      }
      peers.push(peer);
      settings.push(settingsOf(peer.name, c));
    }
    this.#fwd.setPeers(new PeerTable(peers), settings, existing ? [] : endpoints);
  }
}
