// One worker thread (workers > 1): a Forwarder over the TUN queue and SO_REUSEPORT socket
// the main thread opened for it, with its own two pools, on this thread's own event loop.
// No buffer ever leaves the thread; what crosses to the main thread is plain data: counters
// on request (a scrape), reload results, a fatal error, the final summary.
import { parentPort, workerData } from "node:worker_threads";
import { createLogger } from "../telemetry/log.ts";
import { GcCounter } from "../telemetry/process.ts";
import { readForwarder } from "../telemetry/snapshot.ts";
import { Forwarder } from "./forwarder.ts";
import { summarize } from "./summary.ts";
import type { Summary } from "./summary.ts";
import type { ToMain, ToWorker, WorkerData } from "./workers.ts";

const { index, config, tun, tunWriteFd, sock } = workerData as WorkerData;
const port = parentPort!;
const post = (m: ToMain): void => port.postMessage(m);
const label = String(index);
const log = createLogger(config.log.level).child({ worker: index });
const gc = new GcCounter();

let final: Summary | null = null;
/** Stops forwarding (fds closed, every buffer back) once; returns the final counters. */
const stopForwarding = (): Summary => {
  if (final === null) {
    fwd.stop();
    final = summarize(fwd);
    gc.stop();
  }
  return final;
};

const fwd: Forwarder = new Forwarder({
  config, log, fds: { tun, tunWriteFd, sock },
  // Every worker's socket shares the local ip:port, so one thread keeps the peers' NAT
  // mappings open for all of them.
  keepalives: index === 0,
  // Stop here at once (a deleted device would otherwise keep waking us until the main
  // thread's stop arrives), then let the main thread take the process down.
  onFatal: (err) => {
    if (final !== null) return;
    stopForwarding();
    post({ t: "fatal", message: err.message, stack: err.stack });
  },
});

port.on("message", (m: ToWorker) => {
  switch (m.t) {
    case "snapshot": {
      const snap = readForwarder(fwd, label);
      snap.heapUsed = process.memoryUsage().heapUsed;
      snap.gcRuns = gc.runs;
      post({ t: "snapshot", id: m.id, snap });
      break;
    }
    case "reload":
      try {
        const result = fwd.reload(m.config);
        log.debug(result, "peers reloaded in this worker");
        post({ t: "reloaded", id: m.id, result });
      } catch (err) {
        post({ t: "reloaded", id: m.id, error: (err as Error).message });
      }
      break;
    case "stop":
      post({ t: "stopped", final: stopForwarding() });
      port.close(); // nothing else keeps the thread alive once the watches are stopped
      break;
  }
});

post({ t: "ready" });
