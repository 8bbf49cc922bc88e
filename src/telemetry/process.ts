// The process-wide readings (memory, fds, CPU, GC): one per scrape, whatever the workers.
import { readdirSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";

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

export interface ProcessReading {
  residentBytes: number;
  /** V8 heap in use: this thread's plus the workers' (they report theirs in their snapshots). */
  heapUsedBytes: number;
  openFds: number;
  /** User + system: the whole process, every thread. */
  cpuSeconds: number;
  gcRuns: number;
}

/** Reads the process; the workers' own heap and GC counts are added by the caller's arguments. */
export function readProcess(gc: GcCounter, workersHeapUsed: number, workersGcRuns: number): ProcessReading {
  const usage = process.cpuUsage();
  return {
    residentBytes: process.memoryUsage.rss(),
    heapUsedBytes: process.memoryUsage().heapUsed + workersHeapUsed,
    openFds: readdirSync("/proc/self/fd").length,
    cpuSeconds: (usage.user + usage.system) / 1e6,
    gcRuns: gc.runs + workersGcRuns,
  };
}
