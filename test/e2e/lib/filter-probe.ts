// Runs inside a test namespace (test/e2e/peer-filter.test.ts): opens a real udptun socket, then
// for each phase sets (or clears) its peer filter, sends one datagram from each sender socket,
// reads the udptun socket and prints one JSON line: which sources arrived, how many datagrams
// the kernel dropped (SO_MEMINFO), and the filter's length or the error it threw.
//   node filter-probe.ts '{"listen": "127.0.0.1:0", "senders": ["127.0.0.1:41001", ...],
//                          "phases": [{"filter": ["127.0.0.1:41001"]}, {"filter": null}, {"tooMany": 818}]}'
import dgram from "node:dgram";
import { once } from "node:events";
import { addon } from "../../../src/native/addon.ts";
import { clearPeerFilter, openUdp, ReceiveDrops, setPeerFilter } from "../../../src/native/udp.ts";
import { encodeEndpoint, formatEndpoint, parseHostPort, parseIp } from "../../../src/net/address.ts";

interface Phase {
  /** Endpoints to admit; null removes the filter. */
  filter?: string[] | null;
  /** Tries a filter of this many distinct IPv4 endpoints instead (expected to fail). */
  tooMany?: number;
}
const spec = JSON.parse(process.argv[2]) as { listen: string; senders: string[]; phases: Phase[] };

const endpoint = (text: string): Uint8Array => {
  const hp = parseHostPort(text)!;
  return encodeEndpoint(parseIp(hp.host)!, hp.port);
};

const listen = parseHostPort(spec.listen)!;
const sock = openUdp(parseIp(listen.host)!, listen.port, 1 << 20, 1 << 20);
const port = (sock.endpoint[2] << 8) | sock.endpoint[3];
const dst = listen.host === "::" ? null : listen.host; // a wildcard socket is sent to per family
const drops = new ReceiveDrops(sock);

const senders = await Promise.all(spec.senders.map(async (text) => {
  const hp = parseHostPort(text)!;
  const v6 = parseIp(hp.host)!.family === 6;
  const s = dgram.createSocket(v6 ? "udp6" : "udp4");
  s.bind(hp.port, hp.host);
  await once(s, "listening");
  return { s, to: dst ?? (v6 ? "::1" : "127.0.0.1") };
}));

const slab = new Uint8Array(64 * 2048);
const offs = Int32Array.from({ length: 64 }, (_, i) => i * 2048);
const lens = new Int32Array(64);
const sources = new Uint8Array(64 * 20);

for (const [n, phase] of spec.phases.entries()) {
  const out: Record<string, unknown> = { phase: n };
  try {
    if (phase.tooMany !== undefined) {
      const many = Array.from({ length: phase.tooMany }, (_, i) => endpoint(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:1`));
      out.instructions = setPeerFilter(sock, many);
    } else if (phase.filter === null) {
      clearPeerFilter(sock);
      out.instructions = 0;
    } else if (phase.filter !== undefined) {
      out.instructions = setPeerFilter(sock, phase.filter.map(endpoint));
    }
  } catch (err) {
    out.error = (err as { code?: string }).code;
    out.message = (err as Error).message;
  }
  const dropsBefore = drops.read();
  await Promise.all(senders.map(({ s, to }) => new Promise((resolve, reject) =>
    s.send(Buffer.from(`phase ${n}`), port, to, (err) => (err ? reject(err) : resolve(null))))));
  // Every datagram sent is either read or counted dropped; loopback delivers within the send
  // call, so this normally holds at the first look. No readiness event covers a drop, hence a
  // bounded loop on the condition.
  const received: string[] = [];
  const deadline = performance.now() + 3000;
  for (;;) {
    lens.fill(2048);
    const got = addon.udpRecv(sock.fd, slab, offs, lens, 64, sources);
    for (let i = 0; i < got; i++) {
      const text = Buffer.from(slab.subarray(offs[i], offs[i] + lens[i])).toString();
      if (text === `phase ${n}`) received.push(formatEndpoint(sources, i * 20));
      else out.stale = ((out.stale as number) ?? 0) + 1; // left from an earlier phase: a bug
    }
    if (received.length + drops.read() - dropsBefore >= senders.length || performance.now() > deadline) break;
    if (got === 0) await new Promise((r) => setImmediate(r));
  }
  out.received = received.sort();
  out.drops = drops.read() - dropsBefore;
  console.log(JSON.stringify(out));
}
for (const { s } of senders) s.close();
addon.close(sock.fd);
