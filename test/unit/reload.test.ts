// planReload: which peers a new config keeps, rebuilds, adds and removes, and which other
// sections only a restart applies. Real validated configs, no I/O.
import t from "tap";
import { validateConfig } from "../../src/config/validate.ts";
import { formatPrefix } from "../../src/net/address.ts";
import { Peer } from "../../src/tunnel/peers.ts";
import { planReload } from "../../src/tunnel/reload.ts";
import type { Config } from "../../src/config/schema.ts";

type PeerJson = { name: string; endpoint: string; allowedIps: string[]; persistentKeepalive?: number };
const config = (peers: PeerJson[], extra: object = {}): Config =>
  validateConfig({ transport: "plain", device: { name: "tun9", address: "10.9.0.1/24" }, peers, ...extra });
const b: PeerJson = { name: "b", endpoint: "192.0.2.2:51820", allowedIps: ["10.9.0.2/32"] };
const c: PeerJson = { name: "c", endpoint: "peer-c.test:51820", allowedIps: ["10.9.0.3/32"] };
const d: PeerJson = { name: "d", endpoint: "192.0.2.4:51820", allowedIps: ["10.9.0.4/32"] };
const running = (cfg: Config) => cfg.peers.map((p) => new Peer(p.name, p.allowedIps));

t.test("kept, changed, added, removed; kept peers are the same objects", (t) => {
  const now = config([b, c, d]);
  const peers = running(now);
  const next = config([b, { ...c, allowedIps: ["10.9.0.33/32"] }, { name: "e", endpoint: "192.0.2.5:51820", allowedIps: ["10.9.0.5/32"] }]);
  const plan = planReload(now, peers, next);
  t.same(plan.result, { kept: ["b"], added: ["e"], changed: ["c"], removed: ["d"], needsRestart: [] });
  t.equal(plan.peers[0], peers[0], "b: the running object, counters and endpoint with it");
  t.equal(plan.peers[1], peers[1], "c: the running object too (same name and key)");
  t.same(plan.routes.map((r) => [r.peer, r.allowedIps.map(formatPrefix)]), [[peers[1], ["10.9.0.33/32"]]], "c's new allowed IPs, to set before the table is built");
  t.same(peers[1].allowedIps.map(formatPrefix), ["10.9.0.3/32"], "nothing touched by the plan");
  t.same(plan.fresh.map((f) => [f.peer.name, f.endpoint?.host]), [["e", "192.0.2.5"]], "the new one, with its endpoint to set or look up");
  t.not(plan.peers[2], undefined);
  t.equal(plan.fresh[0].peer, plan.peers[2]);
  t.same(plan.config.peers.map((p) => p.name), ["b", "c", "e"]);
  t.end();
});

t.test("persistentKeepalive alone: listed as changed, the peer kept (flows untouched)", (t) => {
  const now = config([b, d]);
  const peers = running(now);
  const plan = planReload(now, peers, config([{ ...b, persistentKeepalive: 25 }, d]));
  t.same(plan.result.changed, ["b"]);
  t.same(plan.result.kept, ["d"]);
  t.equal(plan.peers[0], peers[0], "same object");
  t.same(plan.fresh, [], "nothing to resolve");
  t.equal(plan.config.peers[0].persistentKeepalive, 25, "the new interval is in force");
  t.end();
});

t.test("other sections: reported, and the running values stay in force", (t) => {
  const now = config([b]);
  const next = config([b], { workers: 2, listen: "0.0.0.0:51999", log: { level: "debug" } });
  const plan = planReload(now, running(now), next);
  t.same(plan.result.needsRestart, ["listen", "workers"]);
  t.equal(plan.config.workers, 1, "workers as running");
  t.equal(plan.config.listen.port, 51820, "listen as running");
  t.equal(plan.config.log.level, "debug", "the log section is not restart-only");
  t.end();
});

t.test("an endpoint changed: the peer kept, its new endpoint to set; a new public key: built anew", (t) => {
  const wg = (peers: object[]): Config => validateConfig({
    transport: "wireguard", privateKey: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=", device: { name: "tun9", address: "10.9.0.1/24" }, peers,
  });
  const k1 = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
  const k2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
  const now = wg([{ name: "p", publicKey: k1, endpoint: "192.0.2.2:51820", allowedIps: ["10.9.0.2/32"] }]);
  const peers = running(now);
  const moved = planReload(now, peers, wg([{ name: "p", publicKey: k1, endpoint: "192.0.2.9:51820", allowedIps: ["10.9.0.2/32"] }]));
  t.same(moved.result.changed, ["p"]);
  t.equal(moved.peers[0], peers[0], "kept");
  t.same(moved.routes, [], "its routes unchanged");
  t.same(moved.fresh.map((f) => [f.peer, f.endpoint?.host]), [[peers[0], "192.0.2.9"]], "its new endpoint to set");
  const rekeyed = planReload(now, peers, wg([{ name: "p", publicKey: k2, endpoint: "192.0.2.2:51820", allowedIps: ["10.9.0.2/32"] }]));
  t.same(rekeyed.result.changed, ["p"]);
  t.not(rekeyed.peers[0], peers[0], "another key is another peer");
  t.end();
});
