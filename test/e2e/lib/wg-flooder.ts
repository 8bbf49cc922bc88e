// A stranger attacking a WireGuard udptun from a test namespace, bounded in count and time:
//   junk:        random bytes of random sizes, handshake types at the wrong size, and type-4
//                data messages under random receiver indexes (none of which a stranger may send);
//   initiations: handshake initiations with a valid MAC1, as anyone who knows the responder's
//                public key can make them, each from a random static key of its own (built by
//                src/wireguard's own code), sent at a steady rate. With withCookie, it first
//                sends one initiation over and over until a cookie reply comes back, takes the
//                cookie, and then floods with MAC2 valid too (the rate limiter's case).
// Either way it listens on its socket and counts what comes back (cookie replies, anything
// else), then prints one JSON line: {"from", "sent", "probes", "gotCookie", "cookieReplies",
// "otherReplies"} (probes: initiations sent to get the cookie, not counted in sent).
//   node wg-flooder.ts '{"mode": "junk", "to": "198.18.0.1:51820", "count": 20000}'
//   node wg-flooder.ts '{"mode": "initiations", "to": ..., "publicKey": "<base64>", "rate": 2000, "count": 8000}'
// From a test: await flood(ns, {...}).
import dgram from "node:dgram";
import { once } from "node:events";
import { randomBytes, randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { COOKIE_REPLY_SIZE, INITIATION_SIZE, MSG_COOKIE_REPLY, RESPONSE_SIZE } from "../../../src/wireguard/constants.ts";
import { CookieGenerator } from "../../../src/wireguard/cookie.ts";
import { defaultWallClock, tai64n } from "../../../src/wireguard/crypto.ts";
import { decodeKey } from "../../../src/wireguard/keys.ts";
import { Handshake, createInitiation } from "../../../src/wireguard/noise.ts";
import { clamp, generatePrivateKey, publicKeyOf } from "../../../src/wireguard/x25519.ts";
import { parseHostPort } from "../../../src/net/address.ts";
import { run } from "./proc.ts";

export interface FloodSpec {
  mode: "junk" | "initiations";
  /** udptun's ip:port. */
  to: string;
  /** Datagrams to send in all. */
  count: number;
  /** Datagrams per second (initiations; junk goes as fast as the socket takes it). */
  rate?: number;
  /** The responder's public key, base64 (initiations). */
  publicKey?: string;
  /** Distinct initiations (static keys) made before sending; sent in turn (default 256). */
  distinct?: number;
  /** Get a cookie first and flood with MAC2 valid (initiations). */
  withCookie?: boolean;
  /** Stop after this long whatever was sent (default 20 s). */
  maxMs?: number;
}

export interface FloodResult {
  from: string;
  sent: number;
  probes: number;
  gotCookie: boolean;
  cookieReplies: number;
  otherReplies: number;
}

/** Runs the flooder in namespace ns and returns what it printed. */
export async function flood(ns: string, spec: FloodSpec): Promise<FloodResult> {
  const r = await run("ip", ["netns", "exec", ns, process.execPath, fileURLToPath(import.meta.url), JSON.stringify(spec)],
    { timeoutMs: (spec.maxMs ?? 20_000) + 30_000 });
  if (r.code !== 0) throw new Error(`wg-flooder exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as FloodResult;
}

/** Junk no stranger may get past the filter with (the first four bytes and the size never
 * make an exact handshake message). */
function junk(): Buffer[] {
  const out: Buffer[] = [];
  const typed = (type: number, size: number) => {
    const b = randomBytes(size);
    b.writeUInt32LE(type, 0);
    return b;
  };
  for (let i = 0; i < 32; i++) {
    const b = randomBytes(randomInt(1, 1473));
    if (b.length >= 4 && b[0] >= 1 && b[0] <= 3) b[1] = 0xff; // random bytes, never a handshake head
    out.push(b);
  }
  for (let i = 0; i < 24; i++) out.push(typed(4, randomInt(32, 1473))); // data under a random index
  out.push(typed(4, 32), typed(4, 16), typed(4, 4));
  for (const [type, size] of [[1, INITIATION_SIZE - 1], [1, INITIATION_SIZE + 1], [2, INITIATION_SIZE], [2, RESPONSE_SIZE + 1],
    [3, COOKIE_REPLY_SIZE - 1], [1, RESPONSE_SIZE], [5, INITIATION_SIZE]]) out.push(typed(type, size));
  out.push(Buffer.alloc(0), Buffer.from([1, 0, 0]));
  return out;
}

/** `n` initiations to the holder of `responder`, each from a fresh static key, MAC'd by
 * `macs`: MAC1 valid, MAC2 valid while it holds a cookie (else zero). */
function initiations(responder: Uint8Array, n: number, macs: CookieGenerator): Buffer[] {
  const clock = defaultWallClock();
  const out: Buffer[] = [];
  while (out.length < n) {
    const privateKey = generatePrivateKey();
    const local = { privateKey, publicKey: publicKeyOf(privateKey) };
    const hs = new Handshake(responder, undefined);
    hs.precompute(local);
    const msg = createInitiation(local, hs, randomBytes(4).readUInt32LE(0), clamp(new Uint8Array(randomBytes(32))), tai64n(clock()));
    if (!msg) continue;
    macs.addMacs(msg, performance.now());
    out.push(Buffer.from(msg));
  }
  return out;
}

async function main(spec: FloodSpec): Promise<void> {
  const to = parseHostPort(spec.to);
  if (!to) throw new Error(`to: ${JSON.stringify(spec.to)} is not an ip:port`);
  const key = spec.mode === "initiations" ? decodeKey(spec.publicKey ?? "") : null;
  if (spec.mode === "initiations" && !key) throw new Error(`publicKey: ${JSON.stringify(spec.publicKey)} is not a WireGuard key`);
  const macs = key ? new CookieGenerator(key) : null;
  const s = dgram.createSocket(to.host.includes(":") ? "udp6" : "udp4");
  let cookieReplies = 0;
  let otherReplies = 0;
  let gotCookie = false;
  s.on("message", (m) => {
    if (m.length !== COOKIE_REPLY_SIZE || m.readUInt32LE(0) !== MSG_COOKIE_REPLY) {
      otherReplies++;
      return;
    }
    cookieReplies++;
    if (spec.withCookie && !gotCookie) gotCookie = macs!.consumeReply(m, performance.now());
  });
  s.bind(0);
  await once(s, "listening");
  const deadline = performance.now() + (spec.maxMs ?? 20_000);

  // The cookie: one initiation (the last one MAC'd, so its reply opens), repeated past the load
  // threshold until a reply answers it.
  let probes = 0;
  if (spec.withCookie) {
    const probe = initiations(key!, 1, macs!)[0];
    while (!gotCookie && performance.now() < deadline) {
      await Promise.all(Array.from({ length: 64 }, () => new Promise((resolve) => s.send(probe, to.port, to.host, resolve))));
      probes += 64;
      await sleep(20);
    }
  }
  const messages = key ? initiations(key, spec.distinct ?? 256, macs!) : junk();

  const t0 = performance.now();
  let sent = 0;
  // Bursts of at most 64 in flight, so the send queue stays bounded; with a rate, each burst
  // waits for its place on the schedule.
  while (sent < spec.count && performance.now() < deadline) {
    const burst = Math.min(64, spec.count - sent);
    await Promise.all(Array.from({ length: burst }, (_, i) => new Promise((resolve) =>
      s.send(messages[(sent + i) % messages.length], to.port, to.host, resolve))));
    sent += burst;
    if (spec.rate) {
      const due = t0 + (sent / spec.rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
  }
  await sleep(200); // the last replies
  const a = s.address();
  console.log(JSON.stringify({ from: `${a.address}:${a.port}`, sent, probes, gotCookie, cookieReplies, otherReplies }));
  s.close();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(JSON.parse(process.argv[2]) as FloodSpec);
