// A configuration of 40 peers with 2,500 allowed IPs each (100,000 in all, IPv4 and IPv6
// mixed) set with `wg setconf` and read back with `wg show dump`: complete and correct
// (every peer and every allowed IP, compared as sets), each command within a second of wall
// time (issue #12, tests). Both implementations' times are printed side by side.
import t from "tap";
import type { Test } from "tap";
import { Fixture, SUBJECTS, keyPair, renderConf } from "./lib/wg-tools.ts";
import type { ConfPeer, Kind } from "./lib/wg-tools.ts";
import { quietMachine } from "./lib/quiet.ts";
import { parseDump } from "./lib/wireguard-go.ts";

const PEERS = 40;
const PER_PEER = 2500;
const LIMIT_MS = 1000;

const f = new Fixture(t, ["a"]);
const times: string[] = [];
t.teardown(() => { if (times.length) console.log(`# wg wall times, ${PEERS} peers x ${PER_PEER} allowed IPs:\n${times.join("\n")}`); });

/** Peer p's allowed IPs: host routes, alternately IPv4 (10.p.x.y/32) and IPv6 (fd00:p::i/128), written as wg prints them. */
function allowedIps(p: number): string[] {
  return Array.from({ length: PER_PEER }, (_, i) => (i % 2 === 0 ? `10.${p}.${i >> 8}.${i & 255}/32` : `fd00:${p.toString(16)}::${i.toString(16)}/128`));
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return Math.round(performance.now() - t0);
}

async function scale(t: Test, kind: Kind): Promise<void> {
  const s = await f.start(kind, f.hosts[0], { timed: true });
  const peers: ConfPeer[] = Array.from({ length: PEERS }, (_, i) => ({
    publicKey: keyPair().publicKey,
    allowedIps: allowedIps(i + 1),
    // Half with an endpoint, so the dump carries both forms.
    ...(i % 2 === 0 ? { endpoint: `198.18.0.${100 + i}:${54100 + i}` } : {}),
  }));
  const file = f.scratch.file(`${s.device}.conf`, renderConf({ privateKey: keyPair().privateKey, listenPort: 54060, peers }));

  if (!(await quietMachine())) t.comment("the machine never went quiet: timed under load");
  const setMs = await timed(() => s.wg(["setconf", s.device, file]));
  let dump = "";
  const showMs = await timed(async () => { dump = await s.wg(["show", s.device, "dump"]); });
  times.push(`#   ${kind.padEnd(18)} setconf ${String(setMs).padStart(5)} ms   show dump ${String(showMs).padStart(5)} ms`);
  t.ok(setMs < LIMIT_MS, `wg setconf of ${PEERS * PER_PEER} allowed IPs took ${setMs} ms (limit ${LIMIT_MS})`);
  t.ok(showMs < LIMIT_MS, `wg show dump of them took ${showMs} ms (limit ${LIMIT_MS})`);

  const state = parseDump(dump);
  t.equal(state.listenPort, 54060, "listen port");
  t.equal(state.peers.length, PEERS, `${PEERS} peers`);
  const got = new Map(state.peers.map((p) => [p.publicKey, p]));
  let missingIps = 0;
  let extraIps = 0;
  const wrong: string[] = [];
  for (const want of peers) {
    const p = got.get(want.publicKey);
    if (!p) { wrong.push(`${want.publicKey}: missing`); continue; }
    const have = new Set(p.allowedIps);
    const miss = want.allowedIps.filter((ip) => !have.has(ip));
    const extra = have.size - (want.allowedIps.length - miss.length);
    missingIps += miss.length;
    extraIps += extra;
    if (miss.length || extra) wrong.push(`${want.publicKey}: ${miss.length} missing (e.g. ${miss.slice(0, 3).join(" ")}), ${extra} extra`);
    if (p.endpoint !== (want.endpoint ?? null)) wrong.push(`${want.publicKey}: endpoint ${p.endpoint}, set ${want.endpoint}`);
  }
  t.equal(missingIps, 0, "no allowed IP missing");
  t.equal(extraIps, 0, "no allowed IP that was not set");
  t.same(wrong.slice(0, 10), [], "every peer present with its allowed IPs and endpoint");
  t.equal(state.peers.reduce((n, p) => n + p.allowedIps.length, 0), PEERS * PER_PEER, `${PEERS * PER_PEER} allowed IPs in all`);
  const stop = await s.stop();
  t.notOk(stop.killed, "it exits on SIGTERM");
}

for (const kind of SUBJECTS) t.test(`${kind}: ${PEERS} peers x ${PER_PEER} allowed IPs through wg`, (t) => scale(t, kind));
