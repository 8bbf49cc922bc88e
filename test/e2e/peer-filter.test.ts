// The peer filter on a real udptun socket (src/native/filter.c through src/native/udp.ts), in a
// namespace of its own: its loopback carries every sender, with extra IPv6 addresses that differ
// from the peer's in each 32-bit word (the program compares them one word at a time).
// Each case sends one datagram per sender with no filter first (all must arrive: the strangers
// can reach the socket), then with filters: only the admitted endpoints may arrive, the rest
// must be counted by the kernel's drop count (SO_MEMINFO), and a re-attached filter replaces the
// previous one. In wireguard mode, crafted WireGuard messages and near misses: peers get in
// with anything, strangers with exact handshake messages only. Needs root and iproute2.
import t from "tap";
import type { Test } from "tap";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { must, run } from "./lib/proc.ts";
import { CRAFTED, sendCrafted } from "./lib/filter-probe.ts";
import type { CraftedKind } from "./lib/filter-probe.ts";
import { parseSnmp, diff } from "./lib/snmp.ts";
import { NODE } from "./lib/udptun.ts";

const NS = `ut${randomBytes(3).toString("hex")}-pf`;
const PROBE = fileURLToPath(new URL("./lib/filter-probe.ts", import.meta.url));
const V6 = ["fd00::1", "fd00::2", "fd00::3", "fd01::2", "fd00:0:1::2", "fd00::1:0:0:2", "fd00::7f00:1"];

t.before(async () => {
  await must("ip", ["netns", "add", NS]);
  await must("ip", ["-n", NS, "link", "set", "lo", "up"]);
  for (const a of V6) await must("ip", ["-n", NS, "-6", "addr", "add", `${a}/128`, "dev", "lo", "nodad"]);
});
t.teardown(() => run("ip", ["netns", "del", NS]));

interface PhaseResult { phase: number; received: string[]; drops: number; instructions?: number; error?: string; message?: string; stale?: number }

async function probe(listen: string, senders: string[], phases: object[]): Promise<PhaseResult[]> {
  const r = await run("ip", ["netns", "exec", NS, NODE, PROBE, JSON.stringify({ listen, senders, phases })], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`filter probe exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as PhaseResult);
}

/** One phase's outcome: exactly `admitted` arrived, every other sender's datagram was dropped. */
function expectPhase(t: Test, r: PhaseResult, senders: string[], admitted: string[], what: string): void {
  t.same(r.received, [...admitted].sort(), `${what}: arrived ${JSON.stringify(r.received)}`);
  t.equal(r.drops, senders.length - admitted.length, `${what}: the kernel counted ${r.drops} dropped`);
  t.notOk(r.stale, `${what}: nothing left over from an earlier phase`);
}

t.test("IPv4 socket: source address and port both matched", async (t) => {
  const peer = "127.0.0.1:41001";
  const senders = [peer, "127.0.0.1:41002", "127.0.0.2:41001", "127.0.0.2:41002"];
  const [open, one, replaced, none, cleared, again, tooMany] = await probe("127.0.0.1:0", senders, [
    { filter: null }, { filter: [peer] }, { filter: ["127.0.0.2:41001", "127.0.0.1:41002"] }, { filter: [] }, { filter: null },
    { filter: [peer] }, { tooMany: 818 }, // one endpoint too many: refused, [peer] stays
  ]);
  expectPhase(t, open, senders, senders, "no filter: every sender reaches the socket");
  expectPhase(t, one, senders, [peer], "filter [peer]: same address other port, and other address same port, dropped");
  t.ok(one.instructions! > 1, `a ${one.instructions}-instruction program`);
  expectPhase(t, replaced, senders, ["127.0.0.2:41001", "127.0.0.1:41002"], "re-attached with two other endpoints: they arrive, the old peer does not");
  expectPhase(t, none, senders, [], "no endpoints: nothing arrives");
  t.equal(none.instructions, 1, "a one-instruction drop-all program");
  expectPhase(t, cleared, senders, senders, "filter removed: every sender again");
  expectPhase(t, again, senders, [peer], "filter [peer] again");
  t.equal(tooMany.error, "E2BIG", `818 IPv4 endpoints refused: ${tooMany.message}`);
  t.match(tooMany.message, /BPF_MAXINSNS \(4096\)/, "the error names the limit");
  expectPhase(t, tooMany, senders, [peer], "the refused filter left the previous one in place");
});

t.test("IPv6 socket: every word of the address and the port matched", async (t) => {
  const peer = "[fd00::2]:41001";
  // Differing from the peer in the port, and in address word 3, 0, 1, 2.
  const senders = [peer, "[fd00::2]:41002", "[fd00::3]:41001", "[fd01::2]:41001", "[fd00:0:1::2]:41001", "[fd00::1:0:0:2]:41001"];
  const [open, one, replaced, none] = await probe("[fd00::1]:0", senders, [
    { filter: null }, { filter: [peer] }, { filter: ["[fd00::2]:41002", "[fd00::1:0:0:2]:41001", "[fd00::9]:41001"] }, { filter: [] },
  ]);
  expectPhase(t, open, senders, senders, "no filter: every sender reaches the socket");
  expectPhase(t, one, senders, [peer], "filter [peer]: other port, and an address differing in any one word, dropped");
  expectPhase(t, replaced, senders, ["[fd00::2]:41002", "[fd00::1:0:0:2]:41001"], "re-attached with a new set");
  expectPhase(t, none, senders, [], "no endpoints: nothing arrives");
});

t.test("dual-stack socket: IPv4 peers (written v4-mapped) arrive as IPv4 packets, IPv6 peers as IPv6", async (t) => {
  const p4 = "127.0.0.1:41001";
  const p6 = "[fd00::2]:41001";
  // fd00::7f00:1 ends in the same 32 bits as 127.0.0.1: only the protocol check tells them apart.
  const senders = [p4, "127.0.0.1:41002", "127.0.0.2:41001", p6, "[fd00::2]:41002", "[fd00::3]:41001", "[fd00::7f00:1]:41001"];
  const [open, both, only4, only6, v6low] = await probe("[::]:0", senders, [
    { filter: null },
    { filter: ["[::ffff:127.0.0.1]:41001", p6] },
    { filter: ["[::ffff:127.0.0.1]:41001"] },
    { filter: [p6] },
    { filter: ["[fd00::7f00:1]:41001"] },
  ]);
  expectPhase(t, open, senders, senders, "no filter: every sender reaches the socket");
  t.ok(open.received.includes(p4), "IPv4 senders are reported as IPv4 endpoints");
  expectPhase(t, both, senders, [p4, p6], "v4-mapped and IPv6 peers admitted, the strangers of both families dropped");
  expectPhase(t, only4, senders, [p4], "IPv4 peer alone: no IPv6 sender gets in, not even one ending in the same 32 bits");
  expectPhase(t, only6, senders, [p6], "IPv6 peer alone: the IPv4 peer is now dropped");
  expectPhase(t, v6low, senders, ["[fd00::7f00:1]:41001"], "and the IPv6 endpoint ending in 127.0.0.1 does not admit 127.0.0.1");
});

t.test("wireguard mode, dual-stack socket: peers send anything, strangers handshake messages only", async (t) => {
  const p4 = "127.0.0.1:41001";
  const p6 = "[fd00::2]:41001";
  const senders = [p4, "127.0.0.2:41001", p6, "[fd00::3]:41001"];
  const kinds = Object.keys(CRAFTED) as CraftedKind[];
  const handshakes: CraftedKind[] = ["initiation", "response", "cookie"];
  const each = (from: string[], ks: CraftedKind[]): string[] => from.flatMap((s) => ks.map((k) => `${s} ${k}`));
  const peers = ["[::ffff:127.0.0.1]:41001", p6];
  const [wg, none, plain, tooMany] = await probe("[::]:0", senders, [
    { filter: peers, mode: "wireguard", send: kinds },
    { filter: [], mode: "wireguard", send: kinds },
    { filter: peers, send: kinds },
    { tooMany: 815, mode: "wireguard", send: kinds }, // refused: the plain filter stays
  ]);
  const all = senders.length * kinds.length;
  const expectKinds = (r: PhaseResult, admitted: string[], what: string): void => {
    t.same(r.received, [...admitted].sort(), `${what}: arrived ${JSON.stringify(r.received)}`);
    t.equal(r.drops, all - admitted.length, `${what}: the kernel counted ${r.drops} dropped`);
    t.notOk(r.stale, `${what}: nothing left over from an earlier phase`);
  };
  expectKinds(wg, [...each([p4, p6], kinds), ...each(["127.0.0.2:41001", "[fd00::3]:41001"], handshakes)],
    "wireguard: every kind from the peers, only handshakes from the strangers");
  t.equal(wg.instructions! - plain.instructions!, 12, "the wireguard program is the plain one plus the 12-instruction check");
  expectKinds(none, each(senders, handshakes), "wireguard with no endpoints: handshakes from anyone, nothing else");
  expectKinds(plain, each([p4, p6], kinds), "plain: the strangers' handshakes dropped too");
  t.equal(tooMany.error, "E2BIG", `815 IPv4 endpoints refused in wireguard mode: ${tooMany.message}`);
  expectKinds(tooMany, each([p4, p6], kinds), "the refused filter left the plain one in place");
});

t.test("sendCrafted: crafted datagrams leave a namespace from the asked source", async (t) => {
  const before = parseSnmp(await must("ip", ["netns", "exec", NS, "cat", "/proc/net/snmp"]));
  const r = await sendCrafted(NS, { from: "127.0.0.1:41009", to: "127.0.0.1:9", kinds: ["initiation", "data", "junk"], repeat: 100 });
  const after = diff(parseSnmp(await must("ip", ["netns", "exec", NS, "cat", "/proc/net/snmp"])), before);
  t.same(r, { from: "127.0.0.1:41009", sent: 300 }, "the source bound and the count sent");
  t.equal(after["Udp.OutDatagrams"], 300, "the kernel sent them all");
  t.equal(after["Udp.NoPorts"], 300, "and they all arrived (at a closed port)");
});
