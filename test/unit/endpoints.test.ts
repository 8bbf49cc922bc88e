// Endpoints on a real UDP socket (loopback, peer filter attached for real), with names
// answered by a scripted resolver: literals set at once, names looked up and retried while
// the peer is configured, and never again once a reload has removed or rebuilt it.
import t from "tap";
import { Writable } from "node:stream";
import { pino } from "pino";
import { closeUdp, openUdp } from "../../src/native/udp.ts";
import type { UdpSocket } from "../../src/native/udp.ts";
import { formatEndpoint, parseIp } from "../../src/net/address.ts";
import type { HostPort } from "../../src/net/address.ts";
import { Endpoints } from "../../src/tunnel/endpoints.ts";
import { Peer, PeerTable } from "../../src/tunnel/peers.ts";

/** A resolver whose answers the test gives, one lookup at a time. */
class Resolver {
  readonly calls: { host: string; answer: (address: string) => void; fail: (code: string) => void }[] = [];
  private waiters: (() => void)[] = [];
  lookup = (host: string): Promise<string> => new Promise((resolve, reject) => {
    this.calls.push({ host, answer: resolve, fail: (code) => reject(Object.assign(new Error(`getaddrinfo ${code} ${host}`), { code })) });
    for (const w of this.waiters.splice(0)) w();
  });

  /** Resolves once there have been n lookups. The timer also keeps the event loop alive: the
   * retry timers are unref'd, as in udptun. */
  async until(n: number, ms = 5000): Promise<void> {
    const guard = setTimeout(() => { throw new Error(`${this.calls.length} lookups after ${ms} ms, expected ${n}`); }, ms);
    while (this.calls.length < n) await new Promise<void>((r) => this.waiters.push(r));
    clearTimeout(guard);
  }
}

function logger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const stream = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
  return { log: pino({ level: "info" }, stream), lines, msgs: (re: RegExp) => lines.filter((l) => re.test(l.msg)) };
}

const hp = (s: string): HostPort => ({ host: s.slice(0, s.lastIndexOf(":")), port: Number(s.slice(s.lastIndexOf(":") + 1)) });
const peer = (name: string, allowed: string) => new Peer(name, [{ ...parseIp(allowed)!, length: 32 }]);
/** Settles the lookup's promise callbacks. */
const settle = () => new Promise((r) => setImmediate(r));

let sock: UdpSocket;
t.before(() => { sock = openUdp(parseIp("127.0.0.1")!, 0, 65536, 65536); });
t.teardown(() => closeUdp(sock));

function setup(peers: [Peer, string][], retryMs = 20) {
  const table = new PeerTable(peers.map(([p]) => p));
  const resolver = new Resolver();
  const l = logger();
  const eps = new Endpoints(table, peers.map(([, e]) => hp(e)), { log: l.log, peerFilter: true, lookup: resolver.lookup, retryMs });
  eps.attach(sock);
  eps.start();
  return { table, resolver, eps, ...l };
}

t.test("literals at once, a name once it resolves; the filter follows", async (t) => {
  const lit = peer("lit", "10.0.0.1"), named = peer("named", "10.0.0.2");
  const { resolver, eps, msgs } = setup([[lit, "192.0.2.1:51820"], [named, "peer.test:51820"]]);
  t.equal(formatEndpoint(lit.endpoint!), "192.0.2.1:51820", "the literal is set before any lookup");
  t.equal(named.endpoint, null);
  await resolver.until(1);
  t.equal(resolver.calls[0].host, "peer.test");
  resolver.calls[0].answer("192.0.2.2");
  await settle();
  t.equal(formatEndpoint(named.endpoint!), "192.0.2.2:51820");
  t.same(msgs(/peer filter admits/).map((l) => l.endpoints), [1, 2], "the filter admitted the literal, then both");
  eps.stop();
});

t.test("a failed name is retried while its peer is configured", async (t) => {
  const p = peer("slow", "10.0.0.3");
  const { resolver, eps, msgs, table } = setup([[p, "slow.test:51820"]]);
  await resolver.until(1);
  resolver.calls[0].fail("EAI_AGAIN");
  await resolver.until(2);
  t.equal(msgs(/did not resolve/).length, 1, "the failure logged");
  // A reload that keeps the peer (same object): the retries go on.
  eps.replace(new PeerTable(table.peers), []);
  resolver.calls[1].fail("EAI_AGAIN");
  await resolver.until(3);
  resolver.calls[2].answer("192.0.2.3");
  await settle();
  t.equal(formatEndpoint(p.endpoint!), "192.0.2.3:51820", "resolved on the third try");
  t.equal(eps.retrying, 0);
  eps.stop();
});

t.test("a peer removed by a reload while its name keeps failing: no more lookups, no more log lines", async (t) => {
  const keep = peer("keep", "10.0.0.4"), ghost = peer("ghost", "10.0.0.5");
  const { resolver, eps, msgs } = setup([[keep, "192.0.2.4:51820"], [ghost, "ghost.test:51820"]], 30);
  await resolver.until(1);
  resolver.calls[0].fail("ENOTFOUND");
  await settle();
  t.equal(eps.retrying, 1, "a retry is waiting");
  eps.replace(new PeerTable([keep]), []);
  t.equal(eps.retrying, 0, "the reload cancelled it");
  // Three retry periods: before the fix, each brought a lookup and a warning.
  await new Promise((r) => setTimeout(r, 100));
  t.equal(resolver.calls.length, 1, "never looked up again");
  t.equal(msgs(/did not resolve/).length, 1, "logged once, before the reload");
  eps.stop();
});

t.test("a lookup in flight when its peer is removed or rebuilt: its answer is ignored", async (t) => {
  const old = peer("p", "10.0.0.6");
  const { resolver, eps, msgs } = setup([[old, "p.test:51820"]]);
  await resolver.until(1);
  // Rebuilt (its allowed IPs changed): a new object, looked up anew.
  const rebuilt = peer("p", "10.0.0.7");
  eps.replace(new PeerTable([rebuilt]), [{ peer: rebuilt, endpoint: hp("p.test:51820") }]);
  await resolver.until(2);
  resolver.calls[0].fail("EAI_AGAIN");
  await settle();
  t.equal(eps.retrying, 0, "the old object's failure schedules nothing");
  t.equal(msgs(/did not resolve/).length, 0, "and logs nothing");
  resolver.calls[1].answer("192.0.2.7");
  await settle();
  t.equal(formatEndpoint(rebuilt.endpoint!), "192.0.2.7:51820", "the rebuilt peer resolves");
  t.equal(old.endpoint, null, "the old object is left alone");
  t.equal(msgs(/peer endpoint resolved/).length, 1, "one resolved line: the live peer's");
  eps.stop();
});
