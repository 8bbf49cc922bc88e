// The kernel's protocol counters of one namespace (/proc/net/snmp is per network namespace),
// keyed "Proto.Field": e.g. Udp.InDatagrams (datagrams read by sockets), Udp.RcvbufErrors
// (dropped because a socket's receive buffer was full), Udp.OutDatagrams, Ip.InReceives.
import type { Host, Lab } from "./netns.ts";
import { must } from "./proc.ts";

export type Counters = Record<string, number>;

export async function snmp(lab: Lab, ns: Host | string): Promise<Counters> {
  return parseSnmp(await must(...lab.exec(ns, "cat", ["/proc/net/snmp"])));
}

/** /proc/net/snmp comes in pairs of lines: "Proto: Name Name..." then "Proto: value value...". */
export function parseSnmp(text: string): Counters {
  const out: Counters = {};
  const lines = text.split("\n").filter(Boolean);
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [proto, ...names] = lines[i].split(/\s+/);
    const values = lines[i + 1].split(/\s+/).slice(1);
    names.forEach((n, j) => (out[`${proto.replace(/:$/, "")}.${n}`] = Number(values[j])));
  }
  return out;
}

/** after - before, field by field. */
export function diff(after: Counters, before: Counters): Counters {
  const out: Counters = {};
  for (const k of Object.keys(after)) out[k] = after[k] - (before[k] ?? 0);
  return out;
}

/** The TCP extension counters of one namespace (/proc/net/netstat, same layout): "TcpExt.TCPSACKReorder"... */
export async function netstat(lab: Lab, ns: Host | string): Promise<Counters> {
  return parseSnmp(await must(...lab.exec(ns, "cat", ["/proc/net/netstat"])));
}

/**
 * Counters the kernel raises when TCP detects reordering. They count at the data sender
 * (it sees the reordering in SACKs, duplicate ACKs or timestamps); the receiver only sees
 * out-of-order arrivals (TcpExt.TCPOFOQueue), which every loss causes too.
 */
export const TCP_REORDER = ["TcpExt.TCPSACKReorder", "TcpExt.TCPRenoReorder", "TcpExt.TCPTSReorder"] as const;
