// workers > 1: the main thread opens one TUN queue (IFF_MULTI_QUEUE) and one SO_REUSEPORT
// socket per worker, configures the device once, then hands each pair to a worker thread
// (worker-thread.ts) and never reads or writes them itself. It keeps the signals, the
// metrics endpoint and the logs of the whole process.
//
// Flow affinity comes from the kernel: the TUN driver picks a flow's queue by its flow
// hash, and the socket group picks a datagram's socket by its 4-tuple hash, so one flow
// (and every datagram of one peer) stays on one worker and is never reordered by us.
//
// All fds are opened before the first thread starts: a taken port or a device that cannot
// be created stops the start before anything runs, and the socket group is complete before
// the first datagram is read (a socket joining later would move peers between sockets).
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { Config } from "../config/schema.ts";
import { openTunQueues } from "../native/tun.ts";
import type { TunDevice, TunQueue } from "../native/tun.ts";
import { closeUdp, openUdp } from "../native/udp.ts";
import type { UdpSocket } from "../native/udp.ts";
import { formatEndpoint } from "../net/address.ts";
import type { ForwarderSnapshot } from "../telemetry/snapshot.ts";
import type { ReloadResult } from "./reload.ts";
import type { Summary } from "./summary.ts";

/** What a worker thread starts with (structured-cloned into it). */
export interface WorkerData {
  index: number;
  config: Config;
  tun: TunDevice;
  tunWriteFd: number;
  sock: UdpSocket;
}

export type ToWorker =
  | { t: "snapshot"; id: number }
  | { t: "reload"; id: number; config: Config }
  | { t: "stop" };

export type ToMain =
  | { t: "ready" }
  | { t: "snapshot"; id: number; snap: ForwarderSnapshot }
  | { t: "reloaded"; id: number; result?: ReloadResult; error?: string }
  | { t: "fatal"; message: string; stack?: string }
  | { t: "stopped"; final: Summary };

export interface WorkerGroupOptions {
  config: Config;
  log: Logger;
  /** A worker failed (its forwarding error, a crash, an unexpected exit): the process must go. */
  onFatal: (err: Error, worker: number) => void;
}

/** How long a scrape waits for a worker's counters before using its previous ones. */
const SNAPSHOT_TIMEOUT_MS = 1000;
const START_TIMEOUT_MS = 10_000;

// Node runs src/*.ts directly; the build has dist/src/*.js.
const WORKER_URL = new URL(import.meta.url.endsWith(".ts") ? "./worker-thread.ts" : "./worker-thread.js", import.meta.url);

interface Slot {
  readonly index: number;
  readonly thread: Worker;
  /** The last counters it answered with (a late answer falls back to these). */
  last: ForwarderSnapshot | null;
  final: Summary | null;
  alive: boolean;
}

/** Opens every queue and socket, closing all of them if any fails. */
function openAll(config: Config): { tuns: TunQueue[]; socks: UdpSocket[] } {
  const n = config.workers;
  const { ip, port } = config.listen;
  const { receiveBuffer, sendBuffer } = config.socket;
  // A plain bind first: if anything holds the address it fails here, as with one worker,
  // instead of our sockets quietly joining another same-user process's SO_REUSEPORT group.
  closeUdp(openUdp(ip, port, 0, 0));
  const socks: UdpSocket[] = [];
  try {
    for (let i = 0; i < n; i++) socks.push(openUdp(ip, port, receiveBuffer, sendBuffer, true));
    const tuns = openTunQueues(config.device, n, config.offloads.tun);
    return { tuns, socks };
  } catch (err) {
    for (const s of socks) closeUdp(s);
    throw err;
  }
}

export class WorkerGroup {
  readonly size: number;
  readonly tun: TunDevice;
  readonly localEndpoint: string;
  private readonly slots: Slot[];
  private readonly opts: WorkerGroupOptions;
  private nextId = 1;
  private readonly waiting = new Map<number, { slot: Slot; done: (m: ToMain | null) => void }>();
  private stopping = false;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private readyCount = 0;

  /** Opens the fds, starts the threads and resolves once every one runs its forwarder. */
  static async start(opts: WorkerGroupOptions): Promise<WorkerGroup> {
    const { tuns, socks } = openAll(opts.config);
    const group = new WorkerGroup(opts, tuns, socks);
    await group.ready();
    return group;
  }

  private constructor(opts: WorkerGroupOptions, tuns: TunQueue[], socks: UdpSocket[]) {
    this.opts = opts;
    this.size = tuns.length;
    this.tun = tuns[0].read;
    this.localEndpoint = formatEndpoint(socks[0].endpoint);
    // From here on each worker owns its fds and closes them when it stops.
    this.slots = tuns.map((q, index) => {
      const data: WorkerData = { index, config: opts.config, tun: q.read, tunWriteFd: q.writeFd, sock: socks[index] };
      const thread = new Worker(WORKER_URL, { workerData: data, name: `udptun-worker-${index}` });
      const slot: Slot = { index, thread, last: null, final: null, alive: true };
      thread.on("message", (m: ToMain) => this.onMessage(slot, m));
      thread.on("error", (err) => this.fail(slot, err));
      thread.on("exit", (code) => {
        slot.alive = false;
        this.settleAll(slot);
        if (!this.stopping) this.fail(slot, new Error(`worker ${index} exited unexpectedly (code ${code})`));
      });
      return slot;
    });
  }

  private ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workers not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      this.readyWaiters = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
    });
  }

  private onMessage(slot: Slot, m: ToMain): void {
    switch (m.t) {
      case "ready":
        if (++this.readyCount === this.size) this.readyWaiters?.resolve();
        break;
      case "fatal": {
        const err = new Error(m.message);
        if (m.stack) err.stack = m.stack;
        this.fail(slot, err);
        break;
      }
      case "stopped":
        slot.final = m.final;
        this.settleAll(slot, m);
        break;
      default: {
        const w = this.waiting.get(m.id);
        if (w) {
          this.waiting.delete(m.id);
          w.done(m);
        }
      }
    }
  }

  /** A worker failed: before it was ready, the start fails; after, the process must go. */
  private fail(slot: Slot, err: Error): void {
    if (this.readyCount < this.size) {
      this.readyWaiters?.reject(new Error(`worker ${slot.index}: ${err.message}`));
      this.readyWaiters = null; // the start has failed once: the process is on its way out
      return;
    }
    if (!this.stopping) this.opts.onFatal(err, slot.index);
  }

  /** Sends a request to every live worker; resolves with each answer, or null after timeoutMs. */
  private ask(make: (id: number) => ToWorker, timeoutMs: number): Promise<(ToMain | null)[]> {
    return Promise.all(this.slots.map((slot) => new Promise<ToMain | null>((resolve) => {
      if (!slot.alive) return resolve(null);
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(id, { slot, done: (m) => { clearTimeout(timer); resolve(m); } });
      slot.thread.postMessage(make(id));
    })));
  }

  /** Answers every request still waiting on a worker (it stopped or exited). */
  private settleAll(slot: Slot, m: ToMain | null = null): void {
    for (const [id, w] of this.waiting) {
      if (w.slot !== slot) continue;
      this.waiting.delete(id);
      w.done(m?.t === "stopped" ? m : null);
    }
  }

  /** Every worker's counters, for a scrape (a worker late to answer counts with its last ones). */
  async snapshots(): Promise<ForwarderSnapshot[]> {
    const answers = await this.ask((id) => ({ t: "snapshot", id }), SNAPSHOT_TIMEOUT_MS);
    const out: ForwarderSnapshot[] = [];
    answers.forEach((m, i) => {
      const slot = this.slots[i];
      if (m?.t === "snapshot") slot.last = m.snap;
      if (slot.last) out.push(slot.last);
    });
    return out;
  }

  /** Applies a new config's peers in every worker; the results agree (same before, same after). */
  async reload(next: Config): Promise<ReloadResult & { workers: number[] }> {
    const answers = await this.ask((id) => ({ t: "reload", id, config: next }), 5000);
    const applied: number[] = [];
    let result: ReloadResult | undefined;
    const errors: string[] = [];
    answers.forEach((m, i) => {
      if (m?.t !== "reloaded") errors.push(`worker ${i}: no answer`);
      else if (m.error !== undefined) errors.push(`worker ${i}: ${m.error}`);
      else {
        applied.push(i);
        result ??= m.result;
      }
    });
    if (errors.length || !result) throw new Error(`reload did not reach every worker (${errors.join("; ")})`);
    return { ...result, workers: applied };
  }

  /**
   * Stops every worker (each stops reading, returns every buffer and closes its queue and
   * socket; a device udptun created goes with the last queue). Resolves with each worker's
   * final counters, or null for one that did not answer within timeoutMs.
   */
  async stop(timeoutMs: number): Promise<(Summary | null)[]> {
    this.stopping = true;
    await Promise.all(this.slots.map((slot) => new Promise<void>((resolve) => {
      if (slot.final || !slot.alive) return resolve();
      const timer = setTimeout(resolve, timeoutMs);
      const id = -slot.index - 1; // a fixed id per slot: settled by its "stopped" message
      this.waiting.set(id, { slot, done: () => { clearTimeout(timer); resolve(); } });
      slot.thread.postMessage({ t: "stop" } satisfies ToWorker);
    })));
    return this.slots.map((s) => s.final);
  }
}
