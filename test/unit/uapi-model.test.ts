import t from "tap";
import fc from "fast-check";
import { formatEndpoint, formatPrefix, networkOf, parsePrefix } from "../../src/net/address.ts";
import { ERRNO_INVALID, UapiError } from "../../src/uapi/errors.ts";
import { ModelDevice } from "../../src/uapi/model.ts";
import { plan } from "../../src/uapi/plan.ts";
import { EMPTY_STATE, MAX_PEERS, prefixKey } from "../../src/uapi/state.ts";
import type { ConfigChange, ModelState, PeerConfig } from "../../src/uapi/state.ts";
import { formatHexKey, parseSet } from "../../src/uapi/protocol.ts";
import { serializeGetText } from "../../src/uapi/serialize.ts";
import { publicKeyOf } from "../../src/wireguard/x25519.ts";

const A = "a1".repeat(32);
const B = "b2".repeat(32);
const C = "c3".repeat(32);

function set(dev: ModelDevice, ...lines: string[]): void {
  dev.apply(parseSet(lines.join("\n")));
}

function peer(dev: ModelDevice, hex: string): PeerConfig | undefined {
  return dev.state.peers.get(hex);
}

function ips(p: PeerConfig | undefined): string[] {
  return p ? [...p.allowedIps.values()].map(formatPrefix) : [];
}

function changes(): { log: ConfigChange[]; dev: ModelDevice } {
  const log: ConfigChange[] = [];
  return { log, dev: new ModelDevice({ onChange: (c) => log.push(c) }) };
}

const names = (ps: PeerConfig[]): string[] => ps.map((p) => formatHexKey(p.publicKey).slice(0, 2));

t.test("peers are created by public_key and updated field by field", (t) => {
  const dev = new ModelDevice();
  set(dev, `public_key=${A}`, "endpoint=192.0.2.1:1", "allowed_ip=10.0.0.0/8", `public_key=${B}`);
  t.same([...dev.state.peers.keys()], [A, B], "creation order");
  set(dev, `public_key=${A}`, "persistent_keepalive_interval=25", `preshared_key=${C}`, "allowed_ip=fd00::/64");
  const a = peer(dev, A)!;
  t.equal(formatEndpoint(a.endpoint!), "192.0.2.1:1", "untouched fields stay");
  t.equal(a.persistentKeepalive, 25);
  t.equal(formatHexKey(a.presharedKey!), C);
  t.same(ips(a), ["10.0.0.0/8", "fd00::/64"], "allowed IPs accumulate");
  set(dev, `public_key=${A}`, `preshared_key=${"00".repeat(32)}`);
  t.equal(peer(dev, A)!.presharedKey, null, "a zero preshared key clears it");
  t.end();
});

t.test("an allowed IP has one owner: adding it to another peer moves it, as in the trie", (t) => {
  const { dev, log } = changes();
  set(dev, `public_key=${A}`, "allowed_ip=10.0.0.0/8", "allowed_ip=10.1.0.0/16", `public_key=${B}`, `public_key=${C}`, "allowed_ip=192.0.2.0/24");
  log.length = 0;
  const c = peer(dev, C);
  set(dev, `public_key=${B}`, "allowed_ip=10.0.0.0/8");
  t.same(ips(peer(dev, A)), ["10.1.0.0/16"], "gone from the first peer");
  t.same(ips(peer(dev, B)), ["10.0.0.0/8"], "now the second peer's");
  t.equal(dev.state.owners.size, 3);
  t.same(names(log[0].updated.map((u) => u.after)).sort(), ["a1", "b2"], "both peers changed");
  t.equal(peer(dev, C), c, "the untouched peer is the same object (its flows are not disturbed)");
  t.same([log[0].added, log[0].removed], [[], []]);
  t.end();
});

t.test("re-adding an allowed IP moves it to the end; -prefix removes it only from its owner", (t) => {
  const dev = new ModelDevice();
  set(dev, `public_key=${A}`, "allowed_ip=10.0.0.0/8", "allowed_ip=10.1.0.0/16", "allowed_ip=10.2.0.0/16", `public_key=${B}`, "allowed_ip=fd00::/8");
  set(dev, `public_key=${A}`, "allowed_ip=10.0.0.0/8");
  t.same(ips(peer(dev, A)), ["10.1.0.0/16", "10.2.0.0/16", "10.0.0.0/8"]);
  set(dev, `public_key=${A}`, "allowed_ip=-10.1.0.0/16", "allowed_ip=-fd00::/8", "allowed_ip=-172.16.0.0/12");
  t.same(ips(peer(dev, A)), ["10.2.0.0/16", "10.0.0.0/8"]);
  t.same(ips(peer(dev, B)), ["fd00::/8"], "another peer's prefix is left alone");
  t.equal(dev.state.owners.size, 3);
  t.end();
});

t.test("replace_allowed_ips clears the peer's list before the lines after it", (t) => {
  const { dev, log } = changes();
  set(dev, `public_key=${A}`, "allowed_ip=10.0.0.0/8", "allowed_ip=10.1.0.0/16");
  set(dev, `public_key=${A}`, "allowed_ip=172.16.0.0/12", "replace_allowed_ips=true", "allowed_ip=192.0.2.0/24");
  t.same(ips(peer(dev, A)), ["192.0.2.0/24"]);
  t.same([...dev.state.owners.keys()].length, 1, "the cleared prefixes have no owner");
  log.length = 0;
  const before = peer(dev, A);
  set(dev, `public_key=${A}`, "replace_allowed_ips=true", "allowed_ip=192.0.2.0/24", "endpoint=192.0.2.9:9", "endpoint=192.0.2.9:9");
  t.same(log[0].updated.length, 1, "the endpoint changed");
  const again = peer(dev, A);
  set(dev, `public_key=${A}`, "replace_allowed_ips=true", "allowed_ip=192.0.2.0/24", "endpoint=192.0.2.9:9");
  t.equal(peer(dev, A), again, "setting what is already there (wg syncconf) changes nothing");
  t.same(log[1], { privateKey: false, listenPort: false, fwmark: false, removed: [], added: [], updated: [] });
  t.not(before, again);
  t.end();
});

t.test("update_only: an existing peer is updated, a missing one is not created", (t) => {
  const dev = new ModelDevice();
  set(dev, `public_key=${A}`);
  set(dev, `public_key=${A}`, "update_only=true", "persistent_keepalive_interval=5", `public_key=${B}`, "update_only=true", "allowed_ip=10.0.0.0/8", "endpoint=192.0.2.1:1");
  t.equal(peer(dev, A)!.persistentKeepalive, 5);
  t.equal(peer(dev, B), undefined, "not created, and its lines are ignored");
  t.equal(dev.state.owners.size, 0);
  t.end();
});

t.test("remove: the peer and its allowed IPs go; the rest of its section is ignored", (t) => {
  const { dev, log } = changes();
  set(dev, `public_key=${A}`, "allowed_ip=10.0.0.0/8", `public_key=${B}`, "allowed_ip=10.1.0.0/16");
  log.length = 0;
  set(dev, `public_key=${A}`, "remove=true", "allowed_ip=10.2.0.0/16", `public_key=${C}`, "remove=true");
  t.same([...dev.state.peers.keys()], [B]);
  t.same([...dev.state.owners.values()], [B]);
  t.same(names(log[0].removed), ["a1"], "removing a peer that does not exist is no change");
  t.end();
});

t.test("replace_peers: every peer goes; one named again is a new peer (its sessions start over)", (t) => {
  const { dev, log } = changes();
  set(dev, `public_key=${A}`, "allowed_ip=10.0.0.0/8", `public_key=${B}`, "allowed_ip=fd00::/8");
  const a = peer(dev, A)!;
  log.length = 0;
  set(dev, "replace_peers=true", `public_key=${A}`, "allowed_ip=10.0.0.0/8");
  t.same([...dev.state.peers.keys()], [A]);
  t.not(peer(dev, A)!.generation, a.generation);
  t.same(names(log[0].removed).sort(), ["a1", "b2"]);
  t.same(names(log[0].added), ["a1"]);
  t.same([...dev.state.owners.values()], [A]);
  t.end();
});

t.test("private_key: the device's own public key cannot be a peer", (t) => {
  const { dev, log } = changes();
  const priv = "48".repeat(32);
  const own = formatHexKey(publicKeyOf(Buffer.from(priv, "hex")));
  set(dev, `public_key=${own}`, "allowed_ip=10.0.0.0/8", `public_key=${A}`);
  set(dev, `private_key=${priv}`);
  t.same([...dev.state.peers.keys()], [A], "the peer with the new public key is removed");
  t.equal(dev.state.owners.size, 0);
  t.equal(formatHexKey(dev.state.publicKey!), own);
  set(dev, `public_key=${own}`, "allowed_ip=10.0.0.0/8");
  t.same([...dev.state.peers.keys()], [A], "a section for the own key is ignored");
  log.length = 0;
  set(dev, `private_key=${priv}`, "listen_port=0", "fwmark=0");
  t.same(log[0], { privateKey: false, listenPort: false, fwmark: false, removed: [], added: [], updated: [] }, "the same key again is no change");
  set(dev, `private_key=${"00".repeat(32)}`, "listen_port=51820", "fwmark=7");
  t.same([dev.state.privateKey, dev.state.publicKey, dev.state.listenPort, dev.state.fwmark], [null, null, 51820, 7]);
  t.same([log[1].privateKey, log[1].listenPort, log[1].fwmark], [true, true, true]);
  t.end();
});

t.test("all or nothing: a request that cannot be applied leaves the state as it was", (t) => {
  let base: ModelState = EMPTY_STATE;
  const lines = ["listen_port=1"];
  for (let i = 0; i < MAX_PEERS; i++) lines.push(`public_key=${i.toString(16).padStart(64, "0")}`);
  base = plan(base, parseSet(lines.join("\n"))).state;
  t.equal(base.peers.size, MAX_PEERS);
  const request = parseSet(["listen_port=2", `public_key=${"00".repeat(32)}`, "allowed_ip=10.0.0.0/8", `public_key=${A}`].join("\n"));
  try {
    plan(base, request);
    t.fail("one peer too many was accepted");
  } catch (err) {
    t.equal((err as UapiError).errno, ERRNO_INVALID);
    t.match((err as Error).message, A);
  }
  t.equal(base.listenPort, 1, "the port is unchanged");
  t.equal(base.owners.size, 0, "the allowed IP given before the failure is not there");
  t.equal(base.peers.get("00".repeat(32))!.allowedIps.size, 0);
  t.end();
});

t.test("a get snapshot is not changed by later requests; stats come from the provider", (t) => {
  const dev = new ModelDevice({ stats: (p) => ({ lastHandshake: { sec: 5, nsec: 6 }, txBytes: p.persistentKeepalive, rxBytes: 9 }) });
  set(dev, "listen_port=51820", `public_key=${A}`, "persistent_keepalive_interval=3", "allowed_ip=10.0.0.0/8");
  const snap = dev.get();
  set(dev, "listen_port=1", "replace_peers=true", `public_key=${B}`);
  const body = serializeGetText(snap);
  t.match(body, "listen_port=51820\n");
  t.match(body, `public_key=${A}\n`);
  t.notMatch(body, B);
  t.match(body, "last_handshake_time_sec=5\nlast_handshake_time_nsec=6\ntx_bytes=3\nrx_bytes=9\n");
  t.match(body, "allowed_ip=10.0.0.0/8\n");
  t.end();
});

t.test("prefix keys: equal exactly when the prefixes are (IPv4 packs the length into the number)", (t) => {
  const v4 = fc.record({ bytes: fc.uint8Array({ minLength: 4, maxLength: 4 }), length: fc.integer({ min: 0, max: 32 }) }).map((p) => networkOf({ family: 4, ...p }));
  const v6 = fc.record({ bytes: fc.uint8Array({ minLength: 16, maxLength: 16 }), length: fc.integer({ min: 0, max: 128 }) }).map((p) => networkOf({ family: 6, ...p }));
  const any = fc.oneof(v4, v6, fc.constantFrom(...["0.0.0.0/0", "10.0.0.0/31", "10.0.0.1/32", "10.0.0.0/32", "::/0", "::a00:0/127", "::a00:1/128"].map((s) => parsePrefix(s)!)));
  fc.assert(
    fc.property(any, any, (a, b) => (prefixKey(a) === prefixKey(b)) === (formatPrefix(a) === formatPrefix(b) && a.family === b.family)),
    { numRuns: 5000 },
  );
  t.not(prefixKey(parsePrefix("10.0.0.0/31")!), prefixKey(parsePrefix("10.0.0.1/32")!));
  t.not(prefixKey(parsePrefix("10.0.0.0/32")!), prefixKey(parsePrefix("10.0.0.0/31")!));
  // The most numerous keys must stay in int32 range, which V8 keeps unboxed.
  for (const host of ["0.0.0.0/32", "127.255.255.255/32", "128.0.0.0/32", "255.255.255.255/32"]) {
    const k = prefixKey(parsePrefix(host)!);
    t.equal(k, (k as number) | 0, `${host}: an int32 key`);
  }
  t.end();
});

/** The allowed-IP semantics in the plainest form, applied eagerly (every owner entry deleted as
 * soon as its prefix leaves a list), to hold the planner's shortcuts to. */
function referenceApply(ref: Map<string, string[]>, lines: string[]): void {
  let hex: string | null = null;
  for (const line of lines) {
    const [key, value] = line.split("=");
    if (key === "replace_peers") ref.clear();
    else if (key === "public_key") {
      hex = value;
      if (!ref.has(hex)) ref.set(hex, []);
    } else if (key === "remove") {
      ref.delete(hex!);
      hex = null;
    } else if (hex === null) continue;
    else if (key === "replace_allowed_ips") ref.set(hex, []);
    else if (key === "allowed_ip" && value.startsWith("-")) {
      const p = value.slice(1);
      if (ref.get(hex)!.includes(p)) ref.set(hex, ref.get(hex)!.filter((x) => x !== p));
    } else if (key === "allowed_ip") {
      for (const [h, list] of ref) if (list.includes(value)) ref.set(h, list.filter((x) => x !== value));
      ref.get(hex)!.push(value);
    }
  }
}

t.test("allowed IPs and their owners match a plain eager model over random request sequences", (t) => {
  const prefixes = ["10.0.0.0/8", "10.0.0.1/32", "192.0.2.0/24", "198.18.0.9/32", "fd00::/64", "fd00::1/128", "::/0", "0.0.0.0/0"];
  const op = fc.oneof(
    { arbitrary: fc.constantFrom(...prefixes).map((p) => `allowed_ip=${p}`), weight: 6 },
    { arbitrary: fc.constantFrom(...prefixes).map((p) => `allowed_ip=-${p}`), weight: 2 },
    { arbitrary: fc.constant("replace_allowed_ips=true"), weight: 2 },
    { arbitrary: fc.constant("endpoint=192.0.2.1:56000"), weight: 1 },
    { arbitrary: fc.constant("remove=true"), weight: 1 },
  );
  const section = fc.tuple(fc.constantFrom(A, B, C), fc.array(op, { maxLength: 8 })).map(([hex, ops]) => [`public_key=${hex}`, ...ops]);
  const request = fc.tuple(fc.boolean(), fc.array(section, { maxLength: 4 })).map(([replace, ss]) => [...(replace ? ["replace_peers=true"] : []), ...ss.flat()]);
  fc.assert(
    fc.property(fc.array(request, { minLength: 1, maxLength: 5 }), (requests) => {
      const dev = new ModelDevice();
      const ref = new Map<string, string[]>();
      for (const lines of requests) {
        if (lines.length === 0) continue;
        set(dev, ...lines);
        referenceApply(ref, lines);
        const got = new Map([...dev.state.peers].map(([hex, p]) => [hex, ips(p)]));
        if (JSON.stringify([...got]) !== JSON.stringify([...ref])) return false;
        const owners = [...dev.state.owners].map(([, hex]) => hex).sort();
        const expected = [...ref].flatMap(([hex, list]) => list.map(() => hex)).sort();
        if (JSON.stringify(owners) !== JSON.stringify(expected)) return false;
        for (const [hex, p] of dev.state.peers) for (const k of p.allowedIps.keys()) if (dev.state.owners.get(k) !== hex) return false;
      }
      return true;
    }),
    { numRuns: 3000 },
  );
  t.pass("3000 sequences agree");
  t.end();
});
