// What `udptun run` drives: one forwarder on the main thread (workers = 1), or a group of
// worker threads, each running its own (workers.ts). Either way the same face: counters for
// a scrape, a reload, a stop that reports the final counters.
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import { readForwarder } from "../telemetry/snapshot.ts";
import type { ForwarderSnapshot } from "../telemetry/snapshot.ts";
import { Forwarder } from "./forwarder.ts";
import type { ReloadResult } from "./reload.ts";
import { mergeSummaries, summarize } from "./summary.ts";
import type { Summary } from "./summary.ts";
import { WorkerGroup } from "./workers.ts";

export interface DataPlane {
  readonly localEndpoint: string;
  readonly deviceCreated: boolean;
  /** One snapshot per forwarder, for a scrape. */
  snapshots(): ForwarderSnapshot[] | Promise<ForwarderSnapshot[]>;
  reload(next: Config): Promise<ReloadResult>;
  /** Stops forwarding everywhere; resolves with the fields of the "stopped" log line. */
  stop(): Promise<{ final: Summary | null; workers?: (Summary | null)[] }>;
}

export interface DataPlaneOptions {
  config: Config;
  log: Logger;
  /** Forwarding failed: the process must stop, logging `why` with the error and fields. */
  onFatal: (why: string, err: Error, fields?: object) => void;
}

/** Within the CLI's stop deadline: how long the workers get to stop and report their final counters. */
const WORKER_STOP_MS = 1000;

export async function startDataPlane(opts: DataPlaneOptions): Promise<DataPlane> {
  const { config, log } = opts;
  if (config.workers === 1) {
    return singlePlane(new Forwarder({
      config, log,
      onFatal: (err) => opts.onFatal("forwarding failed", err),
    }));
  }
  return workerPlane(await WorkerGroup.start({
    config, log,
    onFatal: (err, worker) => opts.onFatal(`worker ${worker} failed; stopping every worker`, err, { worker }),
  }));
}

function singlePlane(fwd: Forwarder): DataPlane {
  return {
    localEndpoint: fwd.localEndpoint,
    deviceCreated: fwd.tun.created,
    snapshots: () => [readForwarder(fwd)],
    reload: async (next) => fwd.reload(next),
    stop: async () => {
      fwd.stop();
      return { final: summarize(fwd) };
    },
  };
}

function workerPlane(group: WorkerGroup): DataPlane {
  return {
    localEndpoint: group.localEndpoint,
    deviceCreated: group.tun.created,
    snapshots: () => group.snapshots(),
    reload: (next) => group.reload(next),
    stop: async () => {
      const workers = await group.stop(WORKER_STOP_MS);
      const answered = workers.filter((w) => w !== null);
      return { final: answered.length ? mergeSummaries(answered) : null, workers };
    },
  };
}
