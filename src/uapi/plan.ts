// A set request applied with wireguard-go's semantics: to a draft that copies only what the
// request touches, so a refused request leaves nothing behind and the peers it did not touch
// stay the same objects (which is how the change is found).
import { publicKeyOf } from "../wireguard/x25519.ts";
import { ERRNO_INVALID, UapiError } from "./errors.ts";
import { formatHexKey } from "./protocol.ts";
import { MAX_PEERS, prefixKey } from "./state.ts";
import type { Prefix } from "../net/address.ts";
import type { ConfigChange, ModelState, PeerConfig, PrefixKey } from "./state.ts";
import type { DeviceOperation, PeerOperation, PeerSection, SetRequest } from "./target.ts";

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameKeys(a: ReadonlyMap<unknown, unknown>, b: ReadonlyMap<unknown, unknown>): boolean {
  if (a.size !== b.size) return false;
  const bk = b.keys();
  for (const k of a.keys()) if (k !== bk.next().value) return false;
  return true;
}

function samePeer(a: PeerConfig, b: PeerConfig): boolean {
  return (
    sameBytes(a.presharedKey, b.presharedKey) &&
    sameBytes(a.endpoint, b.endpoint) &&
    a.persistentKeepalive === b.persistentKeepalive &&
    sameKeys(a.allowedIps, b.allowedIps)
  );
}

interface DraftPeer {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  endpoint: Uint8Array | null;
  persistentKeepalive: number;
  allowedIps: Map<PrefixKey, Prefix>;
  generation: number;
}

let nextGeneration = 1;

/** One request being applied: copies are made only of what it touches. */
class Draft {
  privateKey: Uint8Array | null;
  publicKey: Uint8Array | null;
  listenPort: number;
  fwmark: number;
  readonly peers: Map<string, PeerConfig | DraftPeer>;
  readonly touched = new Set<string>();
  readonly #base: ModelState;
  readonly #drafts = new Set<DraftPeer>();
  /** The allowed-IP lists the draft may change; a draft peer starts with its base's list and
   * copies it only when the list itself changes (an endpoint alone copies no prefixes). */
  readonly #ownLists = new Set<Map<PrefixKey, Prefix>>();
  /** Copied from the base on the first write only: a request that re-sends the configuration
   * in force (syncconf) writes nothing, and so copies nothing. */
  #owners: Map<PrefixKey, string> | null = null;
  /** Lists that replace_allowed_ips set aside, by peer. Their prefixes keep the peer as owner
   * until finish() drops those it did not take back: re-adding the same list then costs a
   * lookup per prefix instead of a delete and a set on the owners map. */
  readonly #setAside = new Map<string, ReadonlyMap<PrefixKey, Prefix>[]>();

  constructor(base: ModelState) {
    this.#base = base;
    this.privateKey = base.privateKey;
    this.publicKey = base.publicKey;
    this.listenPort = base.listenPort;
    this.fwmark = base.fwmark;
    this.peers = new Map(base.peers);
  }

  get owners(): ReadonlyMap<PrefixKey, string> {
    return this.#owners ?? this.#base.owners;
  }

  #writeOwners(): Map<PrefixKey, string> {
    this.#owners ??= new Map(this.#base.owners);
    return this.#owners;
  }

  /** The peer, copied into the draft before its first change (its allowed IPs only by ips()). */
  edit(hex: string): DraftPeer {
    const p = this.peers.get(hex)!;
    if (this.#drafts.has(p as DraftPeer)) return p as DraftPeer;
    const copy: DraftPeer = { ...p, allowedIps: p.allowedIps as Map<PrefixKey, Prefix> };
    this.peers.set(hex, copy);
    this.#drafts.add(copy);
    this.touched.add(hex);
    return copy;
  }

  /** The peer's allowed IPs, for changing. */
  ips(hex: string): Map<PrefixKey, Prefix> {
    const mine = this.edit(hex);
    if (!this.#ownLists.has(mine.allowedIps)) this.#own(mine, new Map(mine.allowedIps));
    return mine.allowedIps;
  }

  #own(mine: DraftPeer, list: Map<PrefixKey, Prefix>): void {
    mine.allowedIps = list;
    this.#ownLists.add(list);
  }

  create(publicKey: Uint8Array, hex: string): void {
    if (this.peers.size >= MAX_PEERS) throw new UapiError(ERRNO_INVALID, `public_key=${hex}: the device already has ${MAX_PEERS} peers`);
    const peer: DraftPeer = { publicKey, presharedKey: null, endpoint: null, persistentKeepalive: 0, allowedIps: new Map(), generation: nextGeneration++ };
    this.peers.set(hex, peer);
    this.#drafts.add(peer);
    this.#ownLists.add(peer.allowedIps);
    this.touched.add(hex);
  }

  remove(hex: string): void {
    const peer = this.peers.get(hex);
    if (!peer) return;
    if (peer.allowedIps.size > 0) {
      const owners = this.#writeOwners();
      for (const key of peer.allowedIps.keys()) owners.delete(key);
    }
    this.#dropSetAside(hex, null);
    this.peers.delete(hex);
    this.touched.add(hex);
  }

  removeAll(): void {
    for (const hex of this.peers.keys()) this.touched.add(hex);
    this.peers.clear();
    this.#owners = new Map();
    this.#setAside.clear();
  }

  replaceAllowedIps(hex: string): void {
    const mine = this.edit(hex);
    const aside = mine.allowedIps;
    if (aside.size === 0) return;
    this.#own(mine, new Map());
    const lists = this.#setAside.get(hex);
    if (lists) lists.push(aside);
    else this.#setAside.set(hex, [aside]);
  }

  /** Drops the owner entries of `hex`'s set-aside prefixes that are not in `kept` (all of
   * them if null: the peer is gone). */
  #dropSetAside(hex: string, kept: ReadonlyMap<PrefixKey, Prefix> | null): void {
    const lists = this.#setAside.get(hex);
    if (!lists) return;
    this.#setAside.delete(hex);
    for (const list of lists) {
      for (const key of list.keys()) {
        if (kept?.has(key) || this.owners.get(key) !== hex) continue;
        this.#writeOwners().delete(key);
      }
    }
  }

  /** As the trie's insert: a prefix has one owner; taking it from another peer removes it
   * there, and re-adding it moves it to the end of the peer's list. `list` is ips(hex), which
   * the caller keeps until its next other operation. */
  addAllowedIp(hex: string, list: Map<PrefixKey, Prefix>, prefix: Prefix): void {
    const key = prefixKey(prefix);
    const owner = this.owners.get(key);
    if (owner === hex) {
      list.delete(key); // a no-op for a set-aside prefix: it is owned but in no list
    } else {
      if (owner !== undefined) this.ips(owner).delete(key);
      this.#writeOwners().set(key, hex);
    }
    list.set(key, prefix);
  }

  removeAllowedIp(hex: string, prefix: Prefix): void {
    const key = prefixKey(prefix);
    if (this.owners.get(key) !== hex) return;
    this.#writeOwners().delete(key);
    this.ips(hex).delete(key);
  }

  /** The new state and what differs from the base. */
  finish(): { state: ModelState; change: ConfigChange } {
    const base = this.#base;
    for (const hex of [...this.#setAside.keys()]) this.#dropSetAside(hex, this.peers.get(hex)!.allowedIps);
    const change: ConfigChange = {
      privateKey: !sameBytes(base.privateKey, this.privateKey),
      listenPort: base.listenPort !== this.listenPort,
      fwmark: base.fwmark !== this.fwmark,
      removed: [],
      added: [],
      updated: [],
    };
    for (const hex of this.touched) {
      const before = base.peers.get(hex);
      const draft = this.peers.get(hex);
      let after: PeerConfig | undefined;
      if (draft) {
        after = Object.freeze({ ...draft });
        if (before && before.generation === after.generation && samePeer(before, after)) after = before;
        this.peers.set(hex, after);
      }
      if (before === after) continue;
      if (before && after && before.generation === after.generation) {
        change.updated.push({ before, after });
        continue;
      }
      if (before) change.removed.push(before);
      if (after) change.added.push(after);
    }
    const state: ModelState = Object.freeze({
      privateKey: this.privateKey,
      publicKey: this.publicKey,
      listenPort: this.listenPort,
      fwmark: this.fwmark,
      peers: this.peers as Map<string, PeerConfig>,
      owners: this.#owners ?? base.owners,
    });
    return { state, change };
  }
}

function applyDevice(draft: Draft, op: DeviceOperation): void {
  switch (op.op) {
    case "private_key": {
      if (sameBytes(draft.privateKey, op.key)) return;
      draft.privateKey = op.key;
      draft.publicKey = op.key ? publicKeyOf(op.key) : null;
      // A peer with the device's own public key cannot exist (wireguard-go drops it).
      if (draft.publicKey) draft.remove(formatHexKey(draft.publicKey));
      return;
    }
    case "listen_port":
      draft.listenPort = op.port;
      return;
    case "fwmark":
      draft.fwmark = op.mark;
      return;
    case "replace_peers":
      draft.removeAll();
      return;
  }
}

/** One peer section. Once the section's peer is gone (removed, update_only for a peer that
 * did not exist, or the device's own key) the rest of it is validated but ignored. */
function applyPeer(draft: Draft, section: PeerSection): void {
  const hex = formatHexKey(section.publicKey);
  let live = !sameBytes(section.publicKey, draft.publicKey);
  let created = false;
  if (live && !draft.peers.has(hex)) {
    draft.create(section.publicKey, hex);
    created = true;
  }
  let list: Map<PrefixKey, Prefix> | null = null;
  for (const op of section.operations) {
    if (!live) break;
    if (op.op === "allowed_ip" && !op.remove) {
      // The bulk of a large request: the peer's list is looked up once per run of additions
      // (any other operation may replace it).
      list ??= draft.ips(hex);
      draft.addAllowedIp(hex, list, op.prefix);
      continue;
    }
    list = null;
    applyPeerOperation(draft, hex, op, created);
    if (op.op === "remove" || (op.op === "update_only" && created)) live = false;
  }
}

function applyPeerOperation(draft: Draft, hex: string, op: PeerOperation, created: boolean): void {
  switch (op.op) {
    case "remove":
      draft.remove(hex);
      return;
    case "update_only":
      if (created) draft.remove(hex);
      return;
    case "preshared_key":
      draft.edit(hex).presharedKey = op.key;
      return;
    case "endpoint":
      draft.edit(hex).endpoint = op.endpoint;
      return;
    case "persistent_keepalive_interval":
      draft.edit(hex).persistentKeepalive = op.seconds;
      return;
    case "replace_allowed_ips":
      draft.replaceAllowedIps(hex);
      return;
    case "allowed_ip":
      draft.removeAllowedIp(hex, op.prefix); // additions are applyPeer's
      return;
    case "protocol_version":
      return;
  }
}

/** The state a request leads to from `base`, and what it changes; throws a UapiError (and
 * changes nothing) if it cannot be applied. */
export function plan(base: ModelState, request: SetRequest): { state: ModelState; change: ConfigChange } {
  const draft = new Draft(base);
  for (const op of request.device) applyDevice(draft, op);
  for (const section of request.peers) applyPeer(draft, section);
  return draft.finish();
}
