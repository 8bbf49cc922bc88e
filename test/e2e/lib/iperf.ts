// iperf3 runs between two hosts of a Lab: a one-off server per run (so no run meets a
// server still busy with the last one), results read from the receiver's side.
import type { Host, Lab } from "./netns.ts";
import { run, start } from "./proc.ts";

export interface IperfResult {
  /** Goodput at the receiver, bits per second. */
  bps: number;
  /** UDP: datagrams lost, percent. */
  lostPercent: number;
  /** TCP: segments retransmitted by the sender. */
  retransmits: number;
}

export async function iperf(lab: Lab, client: Host, server: Host, args: string[], seconds: number): Promise<IperfResult> {
  const srv = start(...lab.exec(server, "iperf3", ["-s", "-1", "--forceflush"]));
  await srv.waitFor(/Server listening/);
  const r = await run(...lab.exec(client, "iperf3", ["-J", "-t", String(seconds), ...args]), { timeoutMs: (seconds + 20) * 1000 });
  await srv.exited;
  const out = JSON.parse(r.stdout || "{}");
  if (out.error || !out.end) throw new Error(`iperf3 ${args.join(" ")}: ${out.error ?? r.stderr}`);
  const end = out.end;
  // With -R and UDP, end.sum mixes sender counts with receiver loss: sum_received is the receiver.
  const recv = end.sum_received ?? end.sum;
  return {
    bps: recv.bits_per_second,
    lostPercent: end.sum?.lost_percent ?? 0,
    retransmits: end.sum_sent?.retransmits ?? 0,
  };
}
