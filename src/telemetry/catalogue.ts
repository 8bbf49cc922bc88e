// The metric catalogue: every instrument udptun exports, declared once with its kind, unit,
// help text and labels, and how it reads the counters a scrape collects. metrics.ts registers
// whatever is here, the README's metric table is generated from it (scripts/metrics-table.ts),
// and a test checks both. Adding an instrument is one entry here (and its counter in the
// snapshot it reads).
//
// Names are OpenTelemetry names; the Prometheus name is the same with `.` as `_` and, on a
// counter, `_total` (prometheusName). A unit "s" or "By" is already in the name (`_seconds`,
// `_bytes`) and other units are annotations (`{packets}`), so an exporter that appends unit
// suffixes (the Collector's, Go's) exports the same Prometheus names as ours, which does not.
import type { Attributes } from "@opentelemetry/api";
import { DEVICE_PATH_DROPS, DROP_LABELS, NETWORK_PATH_DROPS } from "../tunnel/drops.ts";
import type { ProcessReading } from "./process.ts";
import { OFFLOADS } from "./snapshot.ts";
import type { ForwarderSnapshot, PathCounters } from "./snapshot.ts";

export const PATH_DEVICE = "device_to_network";
export const PATH_NETWORK = "network_to_device";

/** counter: monotonic (Prometheus counter); gauge: a level read as is; updowncounter: a count
 * that goes up and down (both gauges in Prometheus). All are observed at scrape time. */
export type Kind = "counter" | "gauge" | "updowncounter";

export interface Label {
  readonly name: string;
  /** The values it takes, when they are a fixed set (for the README). */
  readonly values?: readonly string[];
}

export type Emit = (value: number, attributes?: Attributes) => void;

interface Declared {
  /** OpenTelemetry instrument name. */
  readonly name: string;
  readonly kind: Kind;
  /** UCUM unit ("s", "By") or an annotation ("{packets}"); "" for a 0/1 state. */
  readonly unit: string;
  readonly help: string;
  readonly labels: readonly Label[];
}

/** Per forwarder: with workers > 1 each series also carries `worker`. */
export interface ForwarderInstrument extends Declared {
  readonly scope: "forwarder";
  read(snap: ForwarderSnapshot, emit: Emit): void;
}

/** Process-wide: one series per process, never a `worker` label. */
export interface ProcessInstrument extends Declared {
  readonly scope: "process";
  read(proc: ProcessReading, emit: Emit): void;
}

export type Instrument = ForwarderInstrument | ProcessInstrument;

const POOL_LABELS: readonly Label[] = [{ name: "pool" }, { name: "buffer_size" }];
const PATH: Label = { name: "path", values: [PATH_DEVICE, PATH_NETWORK] };
const PEER: Label = { name: "peer" };
const noLabels: readonly Label[] = [];

type PoolField = "allocated" | "inUse" | "capacity" | "exhausted";
const pools = (field: PoolField) => (snap: ForwarderSnapshot, emit: Emit) => {
  for (const p of Object.values(snap.pools)) emit(p[field], { pool: p.name, buffer_size: p.bufferSize });
};

type PeerField = "Packets" | "Bytes";
const perPeer = (field: PeerField) => (snap: ForwarderSnapshot, emit: Emit) => {
  for (const p of snap.peers) {
    emit(p[`tx${field}`], { path: PATH_DEVICE, peer: p.name });
    emit(p[`rx${field}`], { path: PATH_NETWORK, peer: p.name });
  }
};

/** Only the reasons a path can produce are exported, so no series is always zero. */
const dropsOf = (path: string, codes: readonly number[], counters: PathCounters, emit: Emit) => {
  for (const code of codes) emit(counters.drops[code], { path, reason: DROP_LABELS[code] });
};

export const CATALOGUE: readonly Instrument[] = [
  {
    scope: "forwarder", name: "udptun.buffer.allocated", kind: "updowncounter", unit: "{buffers}", labels: POOL_LABELS,
    help: "Buffers the pool has created; it grows on demand up to its capacity and keeps them.",
    read: pools("allocated"),
  },
  {
    scope: "forwarder", name: "udptun.buffer.in_use", kind: "updowncounter", unit: "{buffers}", labels: POOL_LABELS,
    help: "Buffers pulled from the pool and not yet released.",
    read: pools("inUse"),
  },
  {
    scope: "forwarder", name: "udptun.buffer.capacity", kind: "gauge", unit: "{buffers}", labels: POOL_LABELS,
    help: "The most buffers the pool may hold.",
    read: pools("capacity"),
  },
  {
    scope: "forwarder", name: "udptun.buffer.exhausted", kind: "counter", unit: "{events}", labels: POOL_LABELS,
    help: "Times a pull found the pool empty (the reader then backs off).",
    read: pools("exhausted"),
  },
  {
    scope: "forwarder", name: "udptun.packets", kind: "counter", unit: "{packets}", labels: [PATH, PEER],
    help: "Packets forwarded, by path and peer.",
    read: perPeer("Packets"),
  },
  {
    scope: "forwarder", name: "udptun.bytes", kind: "counter", unit: "By", labels: [PATH, PEER],
    help: "Inner IP bytes forwarded, by path and peer.",
    read: perPeer("Bytes"),
  },
  {
    scope: "forwarder", name: "udptun.drops", kind: "counter", unit: "{packets}",
    labels: [PATH, { name: "reason", values: [...new Set([...NETWORK_PATH_DROPS, ...DEVICE_PATH_DROPS].map((c) => DROP_LABELS[c]))] }],
    help: "Packets dropped, by path and reason; each path exports only the reasons it can produce (src/tunnel/drops.ts).",
    read: (s, emit) => {
      dropsOf(PATH_DEVICE, DEVICE_PATH_DROPS, s.device, emit);
      dropsOf(PATH_NETWORK, NETWORK_PATH_DROPS, s.network, emit);
    },
  },
  {
    scope: "forwarder", name: "udptun.keepalives.received", kind: "counter", unit: "{messages}", labels: [PEER],
    help: "Keepalive messages received, by peer.",
    read: (s, emit) => {
      for (const p of s.peers) emit(p.rxKeepalives, { peer: p.name });
    },
  },
  {
    scope: "forwarder", name: "udptun.wireguard.latest_handshake_timestamp_seconds", kind: "gauge", unit: "s", labels: [PEER],
    help: "WireGuard: Unix time of the peer's latest completed handshake (0: none yet), as `wg show` reports it.",
    read: (s, emit) => {
      for (const p of s.peers) if (p.wireguard) emit(p.wireguard.latestHandshake, { peer: p.name });
    },
  },
  {
    scope: "forwarder", name: "udptun.wireguard.handshakes", kind: "counter", unit: "{handshakes}",
    labels: [PEER, { name: "event", values: ["initiated", "completed", "failed"] }],
    help: "WireGuard handshakes by peer: initiations sent (retransmissions included), sessions completed (either role), attempts given up.",
    read: (s, emit) => {
      for (const p of s.peers) {
        if (!p.wireguard) continue;
        emit(p.wireguard.handshakesInitiated, { peer: p.name, event: "initiated" });
        emit(p.wireguard.handshakesCompleted, { peer: p.name, event: "completed" });
        emit(p.wireguard.handshakesFailed, { peer: p.name, event: "failed" });
      }
    },
  },
  {
    scope: "forwarder", name: "udptun.wireguard.transfer.bytes", kind: "counter", unit: "By",
    labels: [PEER, { name: "direction", values: ["rx", "tx"] }],
    help: "WireGuard: UDP payload bytes received from the peer (authenticated) and sent to it, every message counted but cookie replies: `wg show`'s transfer, to the byte.",
    read: (s, emit) => {
      for (const p of s.peers) {
        if (!p.wireguard) continue;
        emit(p.wireguard.transferRx, { peer: p.name, direction: "rx" });
        emit(p.wireguard.transferTx, { peer: p.name, direction: "tx" });
      }
    },
  },
  {
    scope: "forwarder", name: "udptun.wireguard.cookies", kind: "counter", unit: "{messages}",
    labels: [PEER, { name: "direction", values: ["sent", "received"] }],
    help: "WireGuard cookie replies by peer: sent under load (to its responses), received and accepted.",
    read: (s, emit) => {
      for (const p of s.peers) {
        if (!p.wireguard) continue;
        emit(p.wireguard.cookiesSent, { peer: p.name, direction: "sent" });
        emit(p.wireguard.cookiesReceived, { peer: p.name, direction: "received" });
      }
    },
  },
  {
    scope: "forwarder", name: "udptun.socket.full", kind: "counter", unit: "{events}", labels: noLabels,
    help: "Times the UDP socket's send buffer was full and TUN reads paused.",
    read: (s, emit) => emit(s.socketFull),
  },
  {
    scope: "forwarder", name: "udptun.socket.receive_drops", kind: "counter", unit: "{datagrams}", labels: noLabels,
    help: "Datagrams the kernel dropped before udptun read them (SO_MEMINFO): strangers stopped by the peer filter, and receive-buffer overflows (those also in Udp.RcvbufErrors).",
    read: (s, emit) => emit(s.receiveDrops),
  },
  {
    scope: "forwarder", name: "udptun.reads.paused_seconds", kind: "counter", unit: "s",
    labels: [{ name: "source", values: ["device", "network"] }],
    help: "Time reads spent paused by back-pressure (socket full, pool empty), by the source whose reads paused.",
    read: (s, emit) => {
      emit(s.pausedDeviceSeconds, { source: "device" });
      emit(s.pausedNetworkSeconds, { source: "network" });
    },
  },
  {
    scope: "forwarder", name: "udptun.tun.reads", kind: "counter", unit: "{reads}", labels: noLabels,
    help: "Reads from the TUN device; with TUN offloads one read may be a super-packet of many packets.",
    read: (s, emit) => emit(s.tunReads),
  },
  {
    scope: "forwarder", name: "udptun.tun.writes", kind: "counter", unit: "{writes}", labels: noLabels,
    help: "Writes to the TUN device; with coalescing one write may carry a joined run of TCP segments or UDP datagrams.",
    read: (s, emit) => emit(s.tunWrites),
  },
  {
    scope: "forwarder", name: "udptun.udp.datagrams_received", kind: "counter", unit: "{datagrams}", labels: noLabels,
    help: "Datagrams as the socket returned them; with UDP GRO one may hold up to 64 of the peer's (as the kernel's Udp.InDatagrams counts).",
    read: (s, emit) => emit(s.datagramsReceived),
  },
  {
    scope: "forwarder", name: "udptun.udp.datagrams_sent", kind: "counter", unit: "{datagrams}", labels: noLabels,
    help: "Datagrams as the socket sent them; with UDP GSO one send may carry up to 64 (as the kernel's Udp.OutDatagrams counts).",
    read: (s, emit) => emit(s.datagramsSent),
  },
  {
    scope: "forwarder", name: "udptun.offload.active", kind: "gauge", unit: "",
    labels: [{ name: "offload", values: OFFLOADS }],
    help: "1 if the offload is in use, else 0.",
    read: (s, emit) => {
      for (const name of OFFLOADS) emit(s.offloads[name] ? 1 : 0, { offload: name });
    },
  },
  {
    scope: "process", name: "udptun.process.resident_memory_bytes", kind: "gauge", unit: "By", labels: noLabels,
    help: "Resident set size.",
    read: (p, emit) => emit(p.residentBytes),
  },
  {
    scope: "process", name: "udptun.process.heap_used_bytes", kind: "gauge", unit: "By", labels: noLabels,
    help: "V8 heap in use, every thread's.",
    read: (p, emit) => emit(p.heapUsedBytes),
  },
  {
    scope: "process", name: "udptun.process.open_fds", kind: "gauge", unit: "{fds}", labels: noLabels,
    help: "Open file descriptors.",
    read: (p, emit) => emit(p.openFds),
  },
  {
    scope: "process", name: "udptun.process.cpu_seconds", kind: "counter", unit: "s", labels: noLabels,
    help: "CPU time, user + system, every thread's.",
    read: (p, emit) => emit(p.cpuSeconds),
  },
  {
    scope: "process", name: "udptun.process.gc", kind: "counter", unit: "{collections}", labels: noLabels,
    help: "Garbage collections, every thread's; flat in steady state (no per-packet allocation).",
    read: (p, emit) => emit(p.gcRuns),
  },
];

/** The name OpenTelemetry's Prometheus exporter gives the instrument (a test checks it against the exporter). */
export function prometheusName(i: Pick<Instrument, "name" | "kind">): string {
  const name = i.name.replace(/[^a-zA-Z0-9_]/g, "_");
  return i.kind === "counter" && !name.endsWith("_total") ? `${name}_total` : name;
}
