// Datagrams as they crossed a namespace's interface: tcpdump writes them to a file, stop()
// reads it back (IPv4 UDP over Ethernet, which is what a Lab's veths carry), and resend()
// puts a captured datagram on the wire again from its own source address and port, through
// a raw socket, so a peer that holds that port (wireguard-go, udptun) need not let it go.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Host, Lab } from "./netns.ts";
import { run, start } from "./proc.ts";

export interface Datagram {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** The UDP payload. */
  payload: Buffer;
}

export interface Capture {
  /** Stops tcpdump and returns the IPv4 UDP datagrams it saw, in order. */
  stop(): Promise<Datagram[]>;
}

/** Captures on `iface` in the host's namespace what matches the tcpdump `filter`; resolves once tcpdump listens. */
export async function startCapture(lab: Lab, host: Host, iface: string, filter: string): Promise<Capture> {
  const dir = mkdtempSync(path.join(tmpdir(), "udptun-e2e-pcap-"));
  const file = path.join(dir, "capture.pcap");
  // Each packet handed over as it comes (--immediate-mode) and written as it is (-U): a stop
  // right after the traffic loses nothing (by default the kernel fills blocks for up to a second).
  const daemon = start(...lab.exec(host, "tcpdump", ["-i", iface, "-n", "--immediate-mode", "-U", "-s", "0", "-w", file, filter]));
  await daemon.waitFor(/listening on/);
  return {
    async stop() {
      daemon.child.kill("SIGINT");
      const code = await daemon.exited;
      if (code !== 0) throw new Error(`tcpdump exited ${code}: ${daemon.output()}`);
      try {
        return parsePcap(readFileSync(file));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

const LINKTYPE_ETHERNET = 1;
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_UDP = 17;

/** The IPv4 UDP datagrams of a classic pcap file (either byte order and time resolution). */
export function parsePcap(file: Buffer): Datagram[] {
  const magic = file.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && file.readUInt32BE(0) !== 0xa1b2c3d4 && file.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`not a pcap file (magic ${magic.toString(16)})`);
  const u32 = (at: number): number => (le ? file.readUInt32LE(at) : file.readUInt32BE(at));
  if (u32(20) !== LINKTYPE_ETHERNET) throw new Error(`pcap link type ${u32(20)}, expected Ethernet (${LINKTYPE_ETHERNET})`);
  const out: Datagram[] = [];
  for (let at = 24; at + 16 <= file.length;) {
    const len = u32(at + 8);
    const frame = file.subarray(at + 16, at + 16 + len);
    at += 16 + len;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== ETHERTYPE_IPV4) continue;
    const ip = frame.subarray(14);
    const ihl = (ip[0] & 0x0f) * 4;
    if (ip[0] >> 4 !== 4 || ip[9] !== IPPROTO_UDP) continue;
    const udp = ip.subarray(ihl, ip.readUInt16BE(2));
    out.push({
      src: [...ip.subarray(12, 16)].join("."),
      dst: [...ip.subarray(16, 20)].join("."),
      sport: udp.readUInt16BE(0),
      dport: udp.readUInt16BE(2),
      payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))),
    });
  }
  return out;
}

// A raw IPv4 socket with the UDP header written here: the kernel adds the IP header with the
// namespace's own source address; checksum 0 means none (IPv4 allows it).
const RESEND = `
import socket, struct, sys
sport, dst, dport, count, payload = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), bytes.fromhex(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
for _ in range(count):
    s.sendto(udp, (dst, 0))
print(count)`;

/** Sends the datagram `count` times from the host's namespace, from its captured source port
 * (the host must own its source address). */
export async function resend(lab: Lab, host: Host, d: Datagram, count: number): Promise<void> {
  if (d.src !== host.ip4) throw new Error(`resend: the datagram came from ${d.src}, not from ${host.ns} (${host.ip4})`);
  const r = await run(...lab.exec(host, "python3", ["-c", RESEND, String(d.sport), d.dst, String(d.dport), String(count), d.payload.toString("hex")]));
  if (r.code !== 0 || r.stdout.trim() !== String(count)) throw new Error(`resend: exit ${r.code}: ${r.stderr.trim()}`);
}
