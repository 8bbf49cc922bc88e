// iperf3 runs between two hosts of a Lab: a one-off server per run (so no run meets a
// server still busy with the last one), results read from the receiver's side.
// startIperf() runs in the background (long soaks, traffic beside something else); the
// server prints a line per second (-i 1 --forceflush), so the run can be seen to be alive.
import type { Host, Lab } from "./netns.ts";
import { run, start } from "./proc.ts";
import type { Daemon, RunResult } from "./proc.ts";

export interface IperfResult {
  /** Goodput at the receiver, bits per second. */
  bps: number;
  /** With --bidir: goodput of the reverse direction (server -> client), else 0. */
  reverseBps: number;
  /** Payload bytes the receiver got; with --bidir, reverseBytes those of the reverse direction. */
  bytes: number;
  reverseBytes: number;
  /** UDP: datagrams lost, percent. */
  lostPercent: number;
  /** TCP: segments retransmitted by the sender. */
  retransmits: number;
  /**
   * UDP: datagrams received out of order, summed over streams, as the client counted them:
   * meaningful with -R only (the client is then the receiver; without -R iperf3 3.12 leaves
   * the server's count out of the client's JSON and this reads 0 whatever happened).
   */
  outOfOrder: number;
}

export interface IperfRun {
  /** The one-off server (its output has one interval line per stream and second). */
  server: Daemon;
  /** Interval lines the server has printed so far (a run that stalls stops adding them). */
  intervals(): number;
  /** The client's result once the run ends (rejects if iperf3 reports an error). */
  result: Promise<IperfResult>;
}

const INTERVAL_LINE = /^\[[^\]]+\](?:\[[^\]]+\])?\s+\d+\.\d+-\d+\.\d+\s+sec\s+\S+\s+\S?Bytes\s+\S+\s+\S?bits\/sec/gm;

/** Starts a one-off server on `port` and the client against it; resolves once the client runs. */
export async function startIperf(lab: Lab, client: Host, server: Host, args: string[], seconds: number, port = 5201): Promise<IperfRun> {
  const srv = start(...lab.exec(server, "iperf3", ["-s", "-1", "-p", String(port), "-i", "1", "--forceflush"]));
  await srv.waitFor(/Server listening/);
  const result = run(...lab.exec(client, "iperf3", ["-J", "-p", String(port), "-t", String(seconds), ...args]), { timeoutMs: (seconds + 20) * 1000 })
    .then(async (r) => {
      await srv.exited;
      return parseResult(r, args);
    });
  return { server: srv, intervals: () => srv.output().match(INTERVAL_LINE)?.length ?? 0, result };
}

export async function iperf(lab: Lab, client: Host, server: Host, args: string[], seconds: number): Promise<IperfResult> {
  return (await startIperf(lab, client, server, args, seconds)).result;
}

function parseResult(r: RunResult, args: string[]): IperfResult {
  const out = JSON.parse(r.stdout || "{}");
  if (out.error || !out.end) throw new Error(`iperf3 ${args.join(" ")}: ${out.error ?? r.stderr}`);
  const end = out.end;
  // With -R and UDP, end.sum mixes sender counts with receiver loss: sum_received is the receiver.
  const recv = end.sum_received ?? end.sum;
  return {
    bps: recv.bits_per_second,
    reverseBps: end.sum_received_bidir_reverse?.bits_per_second ?? 0,
    bytes: recv.bytes,
    reverseBytes: end.sum_received_bidir_reverse?.bytes ?? 0,
    lostPercent: end.sum?.lost_percent ?? 0,
    retransmits: end.sum_sent?.retransmits ?? 0,
    outOfOrder: (end.streams ?? []).reduce((n: number, st: { udp?: { out_of_order?: number } }) => n + (st.udp?.out_of_order ?? 0), 0),
  };
}
