// Byte-exact transfers through the tunnel: a TCP stream and a burst of UDP GSO datagrams,
// each side hashing or checking what it handled, so corruption, loss or reordering inside
// the tunnel shows up as a mismatch rather than as a throughput number.
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Host, Lab } from "./netns.ts";
import { run, start } from "./proc.ts";
import { NODE } from "./udptun.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface StreamResult {
  sentBytes: number;
  sentSha: string;
  receivedBytes: number;
  receivedSha: string;
}

// The sender's bytes: an AES-CTR keystream (fast, and no two blocks alike, so a segment
// joined or split at the wrong offset cannot hash the same).
const SERVER = `
const net = require("node:net"), { createHash } = require("node:crypto");
const [host, port] = process.argv.slice(1);
const srv = net.createServer((s) => {
  const h = createHash("sha256"); let n = 0;
  s.on("data", (d) => { h.update(d); n += d.length; });
  s.on("end", () => { console.log(JSON.stringify({ bytes: n, sha: h.digest("hex") })); s.end(); srv.close(); });
});
srv.listen(Number(port), host, () => console.log("LISTENING"));`;

const CLIENT = `
const net = require("node:net"), { createHash, createCipheriv } = require("node:crypto");
const [host, port, total] = process.argv.slice(1);
const ks = createCipheriv("aes-128-ctr", Buffer.alloc(16, 7), Buffer.alloc(16, 0));
const zeros = Buffer.alloc(1 << 20);
const h = createHash("sha256"); let sent = 0;
const s = net.connect(Number(port), host, () => {
  const pump = () => {
    while (sent < Number(total)) {
      const chunk = ks.update(zeros.subarray(0, Math.min(zeros.length, Number(total) - sent)));
      h.update(chunk); sent += chunk.length;
      if (!s.write(chunk)) return s.once("drain", pump);
    }
    s.end();
  };
  pump();
});
s.on("close", () => console.log(JSON.stringify({ bytes: sent, sha: h.digest("hex") })));
s.resume();`;

/** Streams `bytes` from `from` to `to` (an address inside the tunnel) over TCP. */
export async function tcpStream(lab: Lab, from: Host, to: Host, toAddr: string, port: number, bytes: number): Promise<StreamResult> {
  const server = start(...lab.exec(to, NODE, ["-e", SERVER, toAddr, String(port)]));
  await server.waitFor(/LISTENING/);
  const client = await run(...lab.exec(from, NODE, ["-e", CLIENT, toAddr, String(port), String(bytes)]), { timeoutMs: 120_000 });
  const code = await server.exited;
  if (client.code !== 0 || code !== 0) throw new Error(`tcpStream: client exit ${client.code} (${client.stderr}), server exit ${code}`);
  const sent = JSON.parse(client.stdout.trim().split("\n").pop()!) as { bytes: number; sha: string };
  const got = JSON.parse(server.output().trim().split("\n").pop()!) as { bytes: number; sha: string };
  return { sentBytes: sent.bytes, sentSha: sent.sha, receivedBytes: got.bytes, receivedSha: got.sha };
}

export interface DatagramResult {
  sent: number;
  /** Distinct datagrams that arrived exactly as sent. */
  intact: number;
  /** Datagrams that arrived with other bytes or another length than the one sent. */
  corrupt: number;
  duplicates: number;
}

/**
 * Sends `count` datagrams of `size` bytes (each with its index and a pattern derived from
 * it) in sends of `perSend` with UDP_SEGMENT set, so the kernel hands the TUN device USO
 * super-packets; every fourth send ends with a shorter datagram. The receiver checks each.
 */
export async function udpSegmented(
  lab: Lab, from: Host, to: Host, toAddr: string, port: number, count: number, size: number, perSend: number,
): Promise<DatagramResult> {
  const script = path.join(HERE, "udp-gso.py");
  const receiver = start(...lab.exec(to, "python3", [script, "recv", toAddr, String(port), String(size)]));
  await receiver.waitFor(/READY/);
  const sender = await run(...lab.exec(from, "python3", [script, "send", toAddr, String(port), String(size), String(count), String(perSend)]), { timeoutMs: 120_000 });
  if (sender.code !== 0) throw new Error(`udpSegmented sender: ${sender.stderr}`);
  const code = await receiver.exited;
  if (code !== 0) throw new Error(`udpSegmented receiver exit ${code}: ${receiver.output()}`);
  const got = JSON.parse(receiver.output().trim().split("\n").pop()!) as Omit<DatagramResult, "sent">;
  const sent = JSON.parse(sender.stdout.trim().split("\n").pop()!) as { sent: number };
  return { sent: sent.sent, ...got };
}
