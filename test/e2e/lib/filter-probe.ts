// The peer filter seen from outside, two ways; both run inside a test namespace.
//
// Phases (test/e2e/peer-filter.test.ts): opens a real udptun socket, then for each phase sets
// (or clears) its peer filter, sends from each sender socket one datagram (or, with `send`, one
// of each crafted kind), reads the udptun socket and prints one JSON line: what arrived
// (sources, or "source kind" with `send`), how many datagrams the kernel dropped (SO_MEMINFO),
// and the filter's length or the error it threw.
//   node filter-probe.ts '{"listen": "127.0.0.1:0", "senders": ["127.0.0.1:41001", ...],
//                          "phases": [{"filter": ["127.0.0.1:41001"]}, {"filter": null}, {"tooMany": 818},
//                                     {"filter": [], "mode": "wireguard", "send": ["initiation", "data"]}]}'
//
// Send: crafted datagrams (WireGuard handshake messages, data, near misses, junk) from one
// socket to a udptun instance, for an end-to-end test of the WireGuard transport (a junk flood
// stopped in the kernel, a roamed peer's handshake from a new address). Prints
// {"from": "ip:port", "sent": N}. From a test: await sendCrafted(ns, {...}).
//   node filter-probe.ts send '{"from": "198.18.0.3:0", "to": "198.18.0.1:51820", "kinds": ["data"], "repeat": 10000}'
import dgram from "node:dgram";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { addon, FILTER_PLAIN, FILTER_WIREGUARD } from "../../../src/native/addon.ts";
import { clearPeerFilter, openUdp, ReceiveDrops, setPeerFilter } from "../../../src/native/udp.ts";
import { encodeEndpoint, formatEndpoint, parseHostPort, parseIp } from "../../../src/net/address.ts";
import { run } from "./proc.ts";

/** Crafted datagrams by name: UDP payload size and first four bytes (a WireGuard message type
 * is a little-endian u32, so the last three are reserved zeros). The rest is zero but bytes
 * 4..7, which carry a tag. A stranger gets past the wireguard-mode filter with the first three
 * only. */
export const CRAFTED = {
  initiation: { size: 148, head: [1, 0, 0, 0] },
  response: { size: 92, head: [2, 0, 0, 0] },
  cookie: { size: 64, head: [3, 0, 0, 0] },
  keepalive: { size: 32, head: [4, 0, 0, 0] },
  data: { size: 1452, head: [4, 0, 0, 0] },
  "initiation-short": { size: 147, head: [1, 0, 0, 0] },
  "initiation-long": { size: 149, head: [1, 0, 0, 0] },
  "initiation-size-response-type": { size: 148, head: [2, 0, 0, 0] },
  "initiation-reserved-set": { size: 148, head: [1, 1, 0, 0] },
  "response-reserved-set": { size: 92, head: [2, 0, 0, 1] },
  junk: { size: 100, head: [0xff, 0xff, 0xff, 0xff] },
} as const;
export type CraftedKind = keyof typeof CRAFTED;

/** A crafted datagram of this kind, tagged (bytes 4..7, little-endian). */
export function craft(kind: CraftedKind, tag = 0): Buffer {
  const c = (CRAFTED as Record<string, { size: number; head: readonly number[] } | undefined>)[kind];
  if (!c) throw new Error(`crafted kind ${JSON.stringify(kind)} is not one of ${Object.keys(CRAFTED).join(", ")}`);
  const b = Buffer.alloc(c.size);
  b.set(c.head);
  b.writeUInt32LE(tag >>> 0, 4);
  return b;
}

/** The kind a received datagram was crafted as (its size and head), or undefined. */
function kindOf(d: Uint8Array): CraftedKind | undefined {
  return (Object.keys(CRAFTED) as CraftedKind[]).find((k) =>
    CRAFTED[k].size === d.length && CRAFTED[k].head.every((v, i) => d[i] === v));
}

export interface SendSpec {
  /** Source ip:port to bind (port 0: any). */
  from: string;
  to: string;
  /** Sent in turn, repeat times over. */
  kinds: CraftedKind[];
  repeat?: number;
}

/** Runs the send mode in namespace ns; returns the bound source and the datagrams sent. */
export async function sendCrafted(ns: string, spec: SendSpec, timeoutMs = 60_000): Promise<{ from: string; sent: number }> {
  const r = await run("ip", ["netns", "exec", ns, process.execPath, fileURLToPath(import.meta.url), "send", JSON.stringify(spec)],
    { timeoutMs });
  if (r.code !== 0) throw new Error(`filter-probe send exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as { from: string; sent: number };
}

const endpoint = (text: string): Uint8Array => {
  const hp = parseHostPort(text);
  const ip = hp && parseIp(hp.host);
  if (!hp || !ip) throw new Error(`not an ip:port: ${JSON.stringify(text)}`);
  return encodeEndpoint(ip, hp.port);
};

async function bound(text: string): Promise<dgram.Socket> {
  const hp = parseHostPort(text)!;
  const s = dgram.createSocket(parseIp(hp.host)!.family === 6 ? "udp6" : "udp4");
  s.bind(hp.port, hp.host);
  await once(s, "listening");
  return s;
}

async function sendMode(spec: SendSpec): Promise<void> {
  const s = await bound(spec.from);
  const to = parseHostPort(spec.to)!;
  const total = spec.kinds.length * (spec.repeat ?? 1);
  const datagrams = spec.kinds.map((k) => craft(k));
  // At most 64 sends queued at a time, so the queue stays bounded however many are asked for.
  for (let sent = 0; sent < total;) {
    const burst = Math.min(64, total - sent);
    await Promise.all(Array.from({ length: burst }, (_, i) => new Promise((resolve, reject) =>
      s.send(datagrams[(sent + i) % datagrams.length], to.port, to.host, (err) => (err ? reject(err) : resolve(null))))));
    sent += burst;
  }
  const a = s.address();
  console.log(JSON.stringify({ from: a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`, sent: total }));
  s.close();
}

interface Phase {
  /** Endpoints to admit; null removes the filter. */
  filter?: string[] | null;
  /** The filter's mode (plain if left out). */
  mode?: "plain" | "wireguard";
  /** Tries a filter of this many distinct IPv4 endpoints instead (expected to fail). */
  tooMany?: number;
  /** Each sender sends one datagram of each kind instead of the phase's text. */
  send?: CraftedKind[];
}

async function phaseMode(spec: { listen: string; senders: string[]; phases: Phase[] }): Promise<void> {
  const listen = parseHostPort(spec.listen)!;
  const sock = openUdp(parseIp(listen.host)!, listen.port, 1 << 20, 1 << 20);
  const port = (sock.endpoint[2] << 8) | sock.endpoint[3];
  const dst = listen.host === "::" ? null : listen.host; // a wildcard socket is sent to per family
  const drops = new ReceiveDrops(sock);
  const senders = await Promise.all(spec.senders.map(async (text) => {
    const s = await bound(text);
    return { s, to: dst ?? (s.address().family === "IPv6" ? "::1" : "127.0.0.1") };
  }));

  const slab = new Uint8Array(64 * 2048);
  const offs = Int32Array.from({ length: 64 }, (_, i) => i * 2048);
  const lens = new Int32Array(64);
  const sources = new Uint8Array(64 * 20);

  for (const [n, phase] of spec.phases.entries()) {
    const out: Record<string, unknown> = { phase: n };
    const mode = phase.mode === "wireguard" ? FILTER_WIREGUARD : FILTER_PLAIN;
    try {
      if (phase.tooMany !== undefined) {
        const many = Array.from({ length: phase.tooMany }, (_, i) => endpoint(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:1`));
        out.instructions = setPeerFilter(sock, many, mode);
      } else if (phase.filter === null) {
        clearPeerFilter(sock);
        out.instructions = 0;
      } else if (phase.filter !== undefined) {
        out.instructions = setPeerFilter(sock, phase.filter.map(endpoint), mode);
      }
    } catch (err) {
      out.error = (err as { code?: string }).code;
      out.message = (err as Error).message;
    }
    // A crafted datagram carries the phase in its tag; the plain one is the phase's text.
    const datagrams = phase.send?.map((k) => craft(k, n)) ?? [Buffer.from(`phase ${n}`)];
    const expected = senders.length * datagrams.length;
    const dropsBefore = drops.read();
    await Promise.all(senders.flatMap(({ s, to }) => datagrams.map((d) => new Promise((resolve, reject) =>
      s.send(d, port, to, (err) => (err ? reject(err) : resolve(null)))))));
    // Every datagram sent is either read or counted dropped; loopback delivers within the send
    // call, so this normally holds at the first look. No readiness event covers a drop, hence a
    // bounded loop on the condition.
    const received: string[] = [];
    const deadline = performance.now() + 3000;
    for (;;) {
      lens.fill(2048);
      const got = addon.udpRecv(sock.fd, slab, offs, lens, 64, sources);
      for (let i = 0; i < got; i++) {
        const d = slab.subarray(offs[i], offs[i] + lens[i]);
        const from = formatEndpoint(sources, i * 20);
        const kind = phase.send ? kindOf(d) : undefined;
        if (kind && Buffer.from(d).readUInt32LE(4) === n) received.push(`${from} ${kind}`);
        else if (!phase.send && Buffer.from(d).toString() === `phase ${n}`) received.push(from);
        else out.stale = ((out.stale as number) ?? 0) + 1; // left from an earlier phase: a bug
      }
      if (received.length + drops.read() - dropsBefore >= expected || performance.now() > deadline) break;
      if (got === 0) await new Promise((r) => setImmediate(r));
    }
    out.received = received.sort();
    out.drops = drops.read() - dropsBefore;
    console.log(JSON.stringify(out));
  }
  for (const { s } of senders) s.close();
  addon.close(sock.fd);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === "send") await sendMode(JSON.parse(process.argv[3]) as SendSpec);
  else await phaseMode(JSON.parse(process.argv[2]) as { listen: string; senders: string[]; phases: Phase[] });
}
