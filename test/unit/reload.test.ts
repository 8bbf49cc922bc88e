// planReload: which peers a new config keeps, rebuilds, adds and removes, and which other
// sections only a restart applies. Real validated configs, no I/O.
import t from "tap";
import { validateConfig } from "../../src/config/validate.ts";
import { Peer } from "../../src/tunnel/peers.ts";
import { planReload } from "../../src/tunnel/reload.ts";
import type { Config } from "../../src/config/schema.ts";

type PeerJson = { name: string; endpoint: string; allowedIps: string[]; persistentKeepalive?: number };
const config = (peers: PeerJson[], extra: object = {}): Config =>
  validateConfig({ device: { name: "tun9", address: "10.9.0.1/24" }, peers, ...extra });
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
  t.not(plan.peers[1], peers[1], "c: built anew");
  t.same(plan.fresh.map((f) => [f.peer.name, f.endpoint?.host]), [["c", "peer-c.test"], ["e", "192.0.2.5"]], "the new ones, with their endpoints to set or look up");
  t.equal(plan.fresh[0].peer, plan.peers[1]);
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
