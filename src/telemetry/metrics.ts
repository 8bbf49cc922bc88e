// The metric catalogue: every instrument udptun exports is declared in this file.
// The data path keeps plain counters; the observable instruments read them when
// Prometheus scrapes, so no OpenTelemetry call is made per packet.
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
//   udptun_process_resident_memory_bytes   resident set size
//   udptun_process_heap_used_bytes         V8 heap in use
//   udptun_process_open_fds                open file descriptors
//   udptun_process_cpu_seconds_total       CPU time, user + system
//   udptun_process_gc_total                garbage collections (flat in steady state: no per-packet allocation)
import type { Attributes, Meter, UpDownCounter } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { readdirSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";
import type { BufferPool } from "../pool/buffer-pool.ts";
import { DEVICE_PATH_DROPS, DROP_LABELS, NETWORK_PATH_DROPS } from "../tunnel/drops.ts";
import type { Forwarder } from "../tunnel/forwarder.ts";

export const PATH_DEVICE = "device_to_network";
export const PATH_NETWORK = "network_to_device";

export function poolAttributes(pool: BufferPool): Attributes {
  return { "udptun.buffer.pool.name": pool.name, "udptun.buffer.pool.buffer_size": pool.bufferSize };
}

export class Telemetry {
  readonly exporter: PrometheusExporter;
  readonly provider: MeterProvider;
  private readonly meter: Meter;
  private readonly bufferCount: UpDownCounter;
  private gcRuns = 0;
  private readonly gcObserver = new PerformanceObserver((list) => {
    this.gcRuns += list.getEntries().length;
  });

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
    this.gcObserver.observe({ entryTypes: ["gc"] });
  }

  /** The pool created (or, with a negative delta, freed) buffers. */
  onAllocate(pool: BufferPool, delta: number): void {
    this.bufferCount.add(delta, poolAttributes(pool));
  }

  /** Registers the observable instruments that read the forwarder's counters on scrape. */
  observe(fwd: Forwarder): void {
    const m = this.meter;
    const pools = [fwd.devicePool, fwd.networkPool];
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
    const heap = m.createObservableGauge("udptun.process.heap_used_bytes", { description: "V8 heap in use.", unit: "By" });
    const fds = m.createObservableGauge("udptun.process.open_fds", { description: "Open file descriptors.", unit: "{fds}" });
    const cpu = m.createObservableCounter("udptun.process.cpu_seconds", { description: "CPU time, user + system.", unit: "s" });
    const gc = m.createObservableCounter("udptun.process.gc", { description: "Garbage collections.", unit: "{collections}" });
    m.addBatchObservableCallback((r) => {
      const mem = process.memoryUsage();
      const usage = process.cpuUsage();
      r.observe(rss, mem.rss);
      r.observe(heap, mem.heapUsed);
      r.observe(fds, readdirSync("/proc/self/fd").length);
      r.observe(cpu, (usage.user + usage.system) / 1e6);
      r.observe(gc, this.gcRuns);
    }, [rss, heap, fds, cpu, gc]);
    const paused = m.createObservableCounter("udptun.reads.paused_seconds", {
      description: "Time reads spent paused by back-pressure (socket full, pool empty), by source.",
      unit: "s",
    });
    m.addBatchObservableCallback((r) => {
      for (const p of pools) {
        const a = poolAttributes(p);
        r.observe(inUse, p.inUse, a);
        r.observe(capacity, p.capacity, a);
        r.observe(exhausted, p.exhausted, a);
      }
      for (const peer of fwd.peers.peers) {
        const tx = { path: PATH_DEVICE, peer: peer.name };
        const rx = { path: PATH_NETWORK, peer: peer.name };
        r.observe(packets, peer.txPackets, tx);
        r.observe(packets, peer.rxPackets, rx);
        r.observe(bytes, peer.txBytes, tx);
        r.observe(bytes, peer.rxBytes, rx);
        r.observe(keepalives, peer.rxKeepalives, { peer: peer.name });
      }
      for (const code of DEVICE_PATH_DROPS) r.observe(drops, fwd.device.drops[code], { path: PATH_DEVICE, reason: DROP_LABELS[code] });
      for (const code of NETWORK_PATH_DROPS) r.observe(drops, fwd.network.drops[code], { path: PATH_NETWORK, reason: DROP_LABELS[code] });
      r.observe(socketFull, fwd.tunWatch.pauses.socketFull);
      r.observe(receiveDrops, fwd.receiveDrops);
      r.observe(paused, fwd.tunWatch.pausedSeconds, { source: "device" });
      r.observe(paused, fwd.sockWatch.pausedSeconds, { source: "network" });
    }, [inUse, capacity, exhausted, packets, bytes, drops, keepalives, socketFull, receiveDrops, paused]);
  }

  async shutdown(): Promise<void> {
    this.gcObserver.disconnect();
    await this.provider.shutdown();
  }
}

