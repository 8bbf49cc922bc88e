// Registers the catalogue (catalogue.ts) with OpenTelemetry and serves it to Prometheus.
// The data path keeps plain counters; every instrument is observable and reads them when
// Prometheus scrapes, so no OpenTelemetry call is made per packet.
//
// A scrape reads one snapshot per forwarder: taken on the spot with a single forwarder, or
// asked of each worker thread (workers > 1), whose series then carry a `worker` label
// ("0".."N-1"). Process metrics are process-wide: the heap and GC counts add up every thread's.
import type { Attributes, Meter, Observable } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { CATALOGUE } from "./catalogue.ts";
import type { Emit, Instrument } from "./catalogue.ts";
import { GcCounter, readProcess } from "./process.ts";
import type { ForwarderSnapshot } from "./snapshot.ts";

function create(meter: Meter, i: Instrument): Observable {
  const opts = { description: i.help, unit: i.unit };
  switch (i.kind) {
    case "counter": return meter.createObservableCounter(i.name, opts);
    case "gauge": return meter.createObservableGauge(i.name, opts);
    case "updowncounter": return meter.createObservableUpDownCounter(i.name, opts);
  }
}

export class Telemetry {
  readonly exporter: PrometheusExporter;
  readonly provider: MeterProvider;
  private readonly meter: Meter;
  private readonly gc = new GcCounter();

  constructor(version: string) {
    // The exporter serves through our own HTTP server (server.ts), beside /healthz.
    this.exporter = new PrometheusExporter({ preventServerStart: true });
    this.provider = new MeterProvider({
      resource: resourceFromAttributes({ "service.name": "udptun", "service.version": version }),
      readers: [this.exporter],
    });
    this.meter = this.provider.getMeter("udptun", version);
  }

  /**
   * Registers every instrument of the catalogue; on each scrape they read `source`: one
   * snapshot per forwarder, taken at once (a single forwarder) or answered by the worker threads.
   */
  observe(source: () => ForwarderSnapshot[] | Promise<ForwarderSnapshot[]>): void {
    const instruments = CATALOGUE.map((i) => ({ i, o: create(this.meter, i) }));
    // One callback for all of them, so a scrape asks each worker once.
    this.meter.addBatchObservableCallback(async (r) => {
      const snaps = await source();
      for (const snap of snaps) {
        // The worker label, when there is one, goes on every data-path series.
        const w = snap.worker;
        for (const { i, o } of instruments) {
          if (i.scope !== "forwarder") continue;
          const emit: Emit = (v, a: Attributes = {}) => r.observe(o, v, w === undefined ? a : { ...a, worker: w });
          i.read(snap, emit);
        }
      }
      const sumOf = (k: "heapUsed" | "gcRuns") => snaps.reduce((n, s) => n + (s[k] ?? 0), 0);
      const proc = readProcess(this.gc, sumOf("heapUsed"), sumOf("gcRuns"));
      for (const { i, o } of instruments) if (i.scope === "process") i.read(proc, (v, a) => r.observe(o, v, a));
    }, instruments.map(({ o }) => o));
  }

  async shutdown(): Promise<void> {
    this.gc.stop();
    await this.provider.shutdown();
  }
}
