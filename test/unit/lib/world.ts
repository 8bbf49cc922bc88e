// The fuzz suites' world: a few peer tables (IPv4 and IPv6 endpoints, nested allowed IPs,
// default routes, an unresolved peer), written as text and parsed here by the test's own
// tiny parsers, so the oracle never leans on src/net/address.ts to know what a prefix is.
import { BufferPool } from "../../../src/pool/buffer-pool.ts";
import { Peer, PeerTable } from "../../../src/tunnel/peers.ts";
import type { TunDevice } from "../../../src/native/tun.ts";
import type { UdpSocket } from "../../../src/native/udp.ts";

export const MTU = 1420;
/** Layout facts the fakes check the paths against (src/tunnel/constants.ts says the same). */
export const HEADROOM = 64;
export const TAILROOM = 32;
export const BUFFER_SIZE = Math.ceil((HEADROOM + MTU + TAILROOM) / 64) * 64;
/** Our wire header is 4 bytes: a datagram lands 4 bytes before the headroom. */
export const WIRE_HEADER = 4;
export const ENDPOINT_LEN = 20;

export interface TestPrefix {
  family: 4 | 6;
  bytes: Uint8Array;
  length: number;
}

export interface PeerFixture {
  name: string;
  /** 20-byte endpoint as the addon writes it, or null for a peer whose name never resolved. */
  endpoint: Uint8Array | null;
  allowed: TestPrefix[];
}

export interface Fixture {
  label: string;
  peers: PeerFixture[];
  /** Prefixes addresses are drawn from: every allowed IP plus some nobody routes. */
  candidates4: TestPrefix[];
  candidates6: TestPrefix[];
}

/** "10.1.2.3" -> 4 bytes. */
function parseV4(s: string): Uint8Array {
  const parts = s.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad IPv4 literal ${s}`);
  return Uint8Array.from(parts);
}

/** "fd00:1::8000:0:0:1" -> 16 bytes (no embedded IPv4 tails; fixtures do not need them). */
function parseV6(s: string): Uint8Array {
  const halves = s.split("::");
  if (halves.length > 2) throw new Error(`bad IPv6 literal ${s}`);
  const groups = (h: string): number[] => (h === "" ? [] : h.split(":").map((g) => parseInt(g, 16)));
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  const all = halves.length === 2 ? [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right] : left;
  if (all.length !== 8 || all.some((g) => !(g >= 0 && g <= 0xffff))) throw new Error(`bad IPv6 literal ${s}`);
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

export function parseAddr(s: string): { family: 4 | 6; bytes: Uint8Array } {
  return s.includes(":") ? { family: 6, bytes: parseV6(s) } : { family: 4, bytes: parseV4(s) };
}

/** "10.1.0.0/16" -> a prefix with its host bits cleared. */
export function prefix(s: string): TestPrefix {
  const [addr, len] = s.split("/");
  const { family, bytes } = parseAddr(addr);
  const length = Number(len);
  for (let bit = length; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family, bytes, length };
}

/** "192.0.2.1:51820" or "[2001:db8::2]:51820" -> the addon's 20-byte endpoint form:
 * [0] family, [1] 0, [2..3] port big endian, [4..] address, zeros after. */
export function endpoint(s: string): Uint8Array {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s);
  if (!m) throw new Error(`bad endpoint ${s}`);
  const { family, bytes } = parseAddr(m[1] ?? m[2]);
  const port = Number(m[3]);
  const ep = new Uint8Array(ENDPOINT_LEN);
  ep[0] = family;
  ep[2] = port >> 8;
  ep[3] = port & 0xff;
  ep.set(bytes, 4);
  return ep;
}

interface PeerSpec {
  name: string;
  endpoint: string | null;
  allowed: string[];
}

/** Prefixes nobody in any fixture owns (or that cover the owners'), to draw stray addresses from. */
const STRAY4 = ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/15", "8.8.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "0.0.0.0/32"];
const STRAY6 = ["::/0", "fd00::/16", "fd00:1::/48", "2001:db8::/32", "::ffff:0:0/96", "ff02::/16", "::/128", "fe80::/10"];

const SPECS: { label: string; peers: PeerSpec[] }[] = [
  {
    label: "nested",
    peers: [
      { name: "alpha", endpoint: "192.0.2.1:51820", allowed: ["10.1.0.0/16", "fd00:1::/64"] },
      { name: "beta", endpoint: "[2001:db8::2]:51820", allowed: ["10.2.0.0/16", "10.1.128.0/17", "fd00:2::/64", "fd00:1:0:0:8000::/65"] },
      { name: "gamma", endpoint: "192.0.2.1:51821", allowed: ["10.3.0.0/24", "10.1.200.7/32", "192.168.0.0/16"] },
      { name: "delta", endpoint: null, allowed: ["10.4.0.0/16", "fd00:4::/48", "10.1.64.0/18"] },
      { name: "eps", endpoint: "[2001:db8::2]:51821", allowed: ["fd00:5::/64", "fd00:1::8000:0:0:1/128", "172.16.0.0/12"] },
    ],
  },
  {
    label: "defaults",
    peers: [
      { name: "alpha", endpoint: "192.0.2.1:51820", allowed: ["10.1.0.0/16", "fd00:1::/64"] },
      { name: "beta", endpoint: "[2001:db8::2]:51820", allowed: ["10.1.128.0/17", "fd00:2::/64"] },
      { name: "delta", endpoint: null, allowed: ["10.4.0.0/16"] },
      { name: "omega", endpoint: "[2001:db8::ff]:65535", allowed: ["0.0.0.0/0", "::/0"] },
    ],
  },
  {
    label: "unresolved-default",
    peers: [
      { name: "a", endpoint: "198.18.0.1:51820", allowed: ["10.77.0.1/32", "fd77::1/128", "0.0.0.0/1"] },
      { name: "dflt", endpoint: null, allowed: ["::/0", "128.0.0.0/1"] },
      { name: "b", endpoint: "[::1]:1", allowed: ["fd77::/16", "10.77.0.0/24"] },
    ],
  },
  {
    label: "single",
    peers: [{ name: "b", endpoint: "198.18.0.2:51820", allowed: ["10.77.0.2/32", "fd77::2/128"] }],
  },
];

export const FIXTURES: readonly Fixture[] = SPECS.map(({ label, peers }) => {
  const fx: Fixture = {
    label,
    peers: peers.map((p) => ({ name: p.name, endpoint: p.endpoint === null ? null : endpoint(p.endpoint), allowed: p.allowed.map(prefix) })),
    candidates4: STRAY4.map(prefix),
    candidates6: STRAY6.map(prefix),
  };
  for (const p of fx.peers) {
    for (const a of p.allowed) (a.family === 4 ? fx.candidates4 : fx.candidates6).push(a);
  }
  return fx;
});

/** The path's view of a fixture: fresh Peer objects (zeroed counters), endpoints set as the
 * forwarder does once a literal resolves. Each Peer gets its own copies of the bytes. */
export function buildPeerTable(fx: Fixture): { table: PeerTable; peers: Peer[] } {
  const peers = fx.peers.map(
    (p) => new Peer(p.name, p.allowed.map((a) => ({ family: a.family, bytes: new Uint8Array(a.bytes), length: a.length }))),
  );
  const table = new PeerTable(peers);
  fx.peers.forEach((p, i) => {
    if (p.endpoint !== null) table.setEndpoint(peers[i], new Uint8Array(p.endpoint));
  });
  return { table, peers };
}

export function buildPool(name: string, capacity: number): BufferPool {
  return new BufferPool({ name, bufferSize: BUFFER_SIZE, capacity, headroom: HEADROOM, checked: true });
}

export const FAKE_TUN: TunDevice = { fd: -1, name: "fuzz0", created: false, mtu: MTU, vnet: false, offload: 0 };

export function fakeSocket(v6: boolean): UdpSocket {
  return { fd: -1, v6: v6 ? 1 : 0, endpoint: endpoint(v6 ? "[::]:51820" : "0.0.0.0:51820") };
}
