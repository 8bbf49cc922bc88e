// The metric catalogue: every instrument udptun exports is declared in this file.
// The data path keeps plain counters; the observable instruments read them when
// Prometheus scrapes, so no OpenTelemetry call is made per packet.
//
// A scrape reads one snapshot per forwarder (snapshotOf): taken on the spot with a single
// forwarder, or asked of each worker thread (workers > 1), whose series then carry a
// `worker` label ("0".."N-1"). Process metrics are process-wide: the heap and GC counts
// add up every thread's.
//
//   udptun_buffer_count{udptun_buffer_pool_name, udptun_buffer_pool_buffer_size}  buffers allocated
//   udptun_buffer_in_use{...same}          buffers pulled and not yet released
//   udptun_buffer_capacity{...same}        the most buffers the pool may hold
//   udptun_buffer_exhausted_total{...same} times a pull found the pool empty
//   udptun_packets_total{path, peer}       packets forwarded (path: device_to_network | network_to_device)
//   udptun_bytes_total{path, peer}         inner IP bytes forwarded
//   udptun_drops_total{path, reason}       packets dropped, by reason (src/tunnel/drops.ts)
//   udptun_keepalives_received_total{peer} keepalive messages received
//   udptun_socket_full_total               times the UDP socket was full and TUN reads paused
//   udptun_socket_receive_drops_total      datagrams the kernel dropped before udptun read them (SO_MEMINFO):
//                                          strangers stopped by the peer filter, and receive-buffer overflows
//   udptun_reads_paused_seconds_total{source}  time reads of the TUN device / UDP socket spent paused (back-pressure)
//   udptun_tun_reads_total                 reads from the TUN device (a super-packet counts once)
//   udptun_tun_writes_total                writes to the TUN device (a joined run of TCP segments counts once)
//   udptun_udp_datagrams_received_total    datagrams as the socket returned them (a GRO datagram counts once)
//   udptun_udp_datagrams_sent_total        datagrams as the socket sent them (a GSO send counts once)
//   udptun_offload_active{offload}         1 if the offload is in use (udp_gso, udp_gro, tun, coalesce), else 0
//     (all of the above also carry {worker} when workers > 1)
//   udptun_process_resident_memory_bytes   resident set size
//   udptun_process_heap_used_bytes         V8 heap in use, every thread's
//   udptun_process_open_fds                open file descriptors
//   udptun_process_cpu_seconds_total       CPU time, user + system, every thread's
//   udptun_process_gc_total                garbage collections, every thread's (flat in steady state: no per-packet allocation)
import type { Attributes, Meter, UpDownCounter } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { readdirSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";
import { DEVICE_PATH_DROPS, DROP_LABELS, NETWORK_PATH_DROPS } from "../tunnel/drops.ts";
import type { Forwarder } from "../tunnel/forwarder.ts";

export const PATH_DEVICE = "device_to_network";
export const PATH_NETWORK = "network_to_device";

/** What identifies a pool in its series. */
export interface PoolIdentity {
  readonly name: string;
  readonly bufferSize: number;
}

export function poolAttributes(pool: PoolIdentity, worker?: string): Attributes {
  const a: Attributes = { "udptun.buffer.pool.name": pool.name, "udptun.buffer.pool.buffer_size": pool.bufferSize };
  if (worker !== undefined) a.worker = worker;
  return a;
}

/** One forwarder's counters at one moment: plain data, so a worker thread can post it. */
export interface ForwarderSnapshot {
  /** The `worker` label ("0".."N-1"); absent with a single forwarder on the main thread. */
  worker?: string;
  pools: { name: string; bufferSize: number; inUse: number; capacity: number; exhausted: number }[];
  peers: { name: string; txPackets: number; txBytes: number; rxPackets: number; rxBytes: number; rxKeepalives: number }[];
  /** Indexed by drop code (src/tunnel/drops.ts). */
  deviceDrops: number[];
  networkDrops: number[];
  socketFull: number;
  /** The socket's kernel drops: strangers refused by the peer filter, receive buffer overflows. */
  receiveDrops: number;
  pausedDeviceSeconds: number;
  pausedNetworkSeconds: number;
  tunReads: number;
  tunWrites: number;
  datagramsReceived: number;
  datagramsSent: number;
  /** Offloads in use, by metric label (udp_gso, udp_gro, tun, coalesce). */
  offloads: Record<string, boolean>;
  /** A worker thread's own V8 heap in use and GC count, added to the main thread's. */
  heapUsed?: number;
  gcRuns?: number;
}

/** Reads a forwarder's counters (on scrape: never on the data path). */
export function snapshotOf(fwd: Forwarder, worker?: string): ForwarderSnapshot {
  const pool = (p: Forwarder["devicePool"]) => ({ name: p.name, bufferSize: p.bufferSize, inUse: p.inUse, capacity: p.capacity, exhausted: p.exhausted });
  return {
    worker,
    pools: [pool(fwd.devicePool), pool(fwd.networkPool)],
    peers: fwd.peers.peers.map((p) => ({
      name: p.name, txPackets: p.txPackets, txBytes: p.txBytes, rxPackets: p.rxPackets, rxBytes: p.rxBytes, rxKeepalives: p.rxKeepalives,
    })),
    deviceDrops: Array.from(fwd.devicePath.drops),
    networkDrops: Array.from(fwd.networkPath.drops),
    socketFull: fwd.tunWatch.pauses.socketFull,
    receiveDrops: fwd.receiveDrops,
    pausedDeviceSeconds: fwd.tunWatch.pausedSeconds,
    pausedNetworkSeconds: fwd.sockWatch.pausedSeconds,
    tunReads: fwd.devicePath.reads,
    tunWrites: fwd.networkPath.writes,
    datagramsReceived: fwd.networkPath.datagrams,
    datagramsSent: fwd.devicePath.sends,
    offloads: {
      udp_gso: fwd.deviceOffloads.gso,
      udp_gro: fwd.networkOffloads.gro,
      tun: fwd.deviceOffloads.tun,
      coalesce: fwd.networkOffloads.join !== 0,
    },
  };
}

/** Counts this thread's garbage collections (each worker thread keeps its own). */
export class GcCounter {
  runs = 0;
  private readonly observer = new PerformanceObserver((list) => {
    this.runs += list.getEntries().length;
  });

  constructor() {
    this.observer.observe({ entryTypes: ["gc"] });
  }

  stop(): void {
    this.observer.disconnect();
  }
}

export class Telemetry {
  readonly exporter: PrometheusExporter;
  readonly provider: MeterProvider;
  private readonly meter: Meter;
  private readonly bufferCount: UpDownCounter;
  private readonly gc = new GcCounter();

  constructor(version: string) {
    // The exporter serves through our own HTTP server (server.ts), beside /healthz.
    this.exporter = new PrometheusExporter({ preventServerStart: true });
    this.provider = new MeterProvider({
      resource: resourceFromAttributes({ "service.name": "udptun", "service.version": version }),
      readers: [this.exporter],
    });
    this.meter = this.provider.getMeter("udptun", version);
    this.bufferCount = this.meter.createUpDownCounter("udptun.buffer.count", {
      description: "Buffers allocated by the pool.",
      unit: "{buffers}",
    });
  }

  /** The pool created (or, with a negative delta, freed) buffers; worker: the thread's label. */
  onAllocate(pool: PoolIdentity, delta: number, worker?: string): void {
    this.bufferCount.add(delta, poolAttributes(pool, worker));
  }

  /**
   * Registers the observable instruments; on each scrape they read `source`: one snapshot
   * per forwarder, taken at once (a single forwarder) or answered by the worker threads.
   */
  observe(source: () => ForwarderSnapshot[] | Promise<ForwarderSnapshot[]>): void {
    const m = this.meter;
    const inUse = m.createObservableUpDownCounter("udptun.buffer.in_use", {
      description: "Buffers pulled from the pool and not yet released.",
      unit: "{buffers}",
    });
    const capacity = m.createObservableGauge("udptun.buffer.capacity", {
      description: "The most buffers the pool may hold.",
      unit: "{buffers}",
    });
    const exhausted = m.createObservableCounter("udptun.buffer.exhausted", {
      description: "Times a pull found the pool empty (the reader then backs off).",
      unit: "{events}",
    });
    const packets = m.createObservableCounter("udptun.packets", {
      description: "Packets forwarded, by path and peer.",
      unit: "{packets}",
    });
    const bytes = m.createObservableCounter("udptun.bytes", {
      description: "Inner IP bytes forwarded, by path and peer.",
    });
    const drops = m.createObservableCounter("udptun.drops", {
      description: "Packets dropped, by path and reason.",
      unit: "{packets}",
    });
    const keepalives = m.createObservableCounter("udptun.keepalives.received", {
      description: "Keepalive messages received, by peer.",
      unit: "{messages}",
    });
    const socketFull = m.createObservableCounter("udptun.socket_full", {
      description: "Times the UDP socket's send buffer was full and TUN reads paused.",
      unit: "{events}",
    });
    const receiveDrops = m.createObservableCounter("udptun.socket.receive_drops", {
      description: "Datagrams the kernel dropped before udptun read them: strangers stopped by the peer filter, and receive-buffer overflows.",
      unit: "{datagrams}",
    });
    const rss = m.createObservableGauge("udptun.process.resident_memory_bytes", { description: "Resident set size.", unit: "By" });
    const heap = m.createObservableGauge("udptun.process.heap_used_bytes", { description: "V8 heap in use (every thread's).", unit: "By" });
    const fds = m.createObservableGauge("udptun.process.open_fds", { description: "Open file descriptors.", unit: "{fds}" });
    const cpu = m.createObservableCounter("udptun.process.cpu_seconds", { description: "CPU time, user + system.", unit: "s" });
    const gc = m.createObservableCounter("udptun.process.gc", { description: "Garbage collections (every thread's).", unit: "{collections}" });
    const paused = m.createObservableCounter("udptun.reads.paused_seconds", {
      description: "Time reads spent paused by back-pressure (socket full, pool empty), by source.",
      unit: "s",
    });
    const tunReads = m.createObservableCounter("udptun.tun.reads", {
      description: "Reads from the TUN device; with TUN offloads one read may be a super-packet of many packets.",
      unit: "{reads}",
    });
    const tunWrites = m.createObservableCounter("udptun.tun.writes", {
      description: "Writes to the TUN device; with coalescing one write may carry a run of TCP segments.",
      unit: "{writes}",
    });
    const datagrams = m.createObservableCounter("udptun.udp.datagrams_received", {
      description: "Datagrams as the socket returned them; with UDP GRO one may hold up to 64 of the peer's.",
      unit: "{datagrams}",
    });
    const datagramsSent = m.createObservableCounter("udptun.udp.datagrams_sent", {
      description: "Datagrams as the socket sent them; with UDP GSO one send may carry up to 64.",
      unit: "{datagrams}",
    });
    const offload = m.createObservableGauge("udptun.offload.active", {
      description: "1 if the offload is in use (udp_gso, udp_gro, tun, coalesce), else 0.",
    });
    // One callback for all of them, so a scrape asks each worker once.
    m.addBatchObservableCallback(async (r) => {
      const snaps = await source();
      let heapUsed = process.memoryUsage().heapUsed;
      let gcRuns = this.gc.runs;
      for (const snap of snaps) {
        heapUsed += snap.heapUsed ?? 0;
        gcRuns += snap.gcRuns ?? 0;
        // The worker label, when there is one, goes on every data-path series.
        const w = snap.worker;
        const at = (a: Attributes): Attributes => (w === undefined ? a : { ...a, worker: w });
        for (const p of snap.pools) {
          const a = poolAttributes(p, w);
          r.observe(inUse, p.inUse, a);
          r.observe(capacity, p.capacity, a);
          r.observe(exhausted, p.exhausted, a);
        }
        for (const peer of snap.peers) {
          const tx = at({ path: PATH_DEVICE, peer: peer.name });
          const rx = at({ path: PATH_NETWORK, peer: peer.name });
          r.observe(packets, peer.txPackets, tx);
          r.observe(packets, peer.rxPackets, rx);
          r.observe(bytes, peer.txBytes, tx);
          r.observe(bytes, peer.rxBytes, rx);
          r.observe(keepalives, peer.rxKeepalives, at({ peer: peer.name }));
        }
        for (const code of DEVICE_PATH_DROPS) r.observe(drops, snap.deviceDrops[code], at({ path: PATH_DEVICE, reason: DROP_LABELS[code] }));
        for (const code of NETWORK_PATH_DROPS) r.observe(drops, snap.networkDrops[code], at({ path: PATH_NETWORK, reason: DROP_LABELS[code] }));
        r.observe(socketFull, snap.socketFull, at({}));
        r.observe(receiveDrops, snap.receiveDrops, at({}));
        r.observe(paused, snap.pausedDeviceSeconds, at({ source: "device" }));
        r.observe(paused, snap.pausedNetworkSeconds, at({ source: "network" }));
        r.observe(tunReads, snap.tunReads, at({}));
        r.observe(tunWrites, snap.tunWrites, at({}));
        r.observe(datagrams, snap.datagramsReceived, at({}));
        r.observe(datagramsSent, snap.datagramsSent, at({}));
        for (const [name, on] of Object.entries(snap.offloads)) r.observe(offload, on ? 1 : 0, at({ offload: name }));
      }
      const usage = process.cpuUsage(); // the whole process: every thread
      r.observe(rss, process.memoryUsage.rss());
      r.observe(heap, heapUsed);
      r.observe(fds, readdirSync("/proc/self/fd").length);
      r.observe(cpu, (usage.user + usage.system) / 1e6);
      r.observe(gc, gcRuns);
    }, [inUse, capacity, exhausted, packets, bytes, drops, keepalives, socketFull, receiveDrops, paused, tunReads, tunWrites, datagrams, datagramsSent, offload,
      rss, heap, fds, cpu, gc]);
  }

  async shutdown(): Promise<void> {
    this.gc.stop();
    await this.provider.shutdown();
  }
}

