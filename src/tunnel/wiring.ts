// Readiness and back-pressure: the TUN fd's and the socket's uv_poll watches drive a
// transport's two paths on Node's event loop. TUN reads pause while the socket is full or
// the device pool is empty; socket reads pause while the network pool is empty; the socket's
// writability is watched only while a batch waits for it.
import type { Logger } from "pino";
import { addon, READABLE, WRITABLE } from "../native/addon.ts";
import type { BufferPool } from "../pool/buffer-pool.ts";
import { DROP_LABELS } from "./drops.ts";
import type { ForwarderFds } from "./fds.ts";
import type { Pools } from "./pools.ts";
import type { Transport, TransportHooks } from "./transport.ts";
import { PAUSE_POOL_EMPTY, PAUSE_SOCKET_FULL, Watch } from "./watch.ts";

export class Wiring {
  /** Set by start(); the hooks only run once the watches do. */
  tunWatch!: Watch;
  sockWatch!: Watch;
  readonly hooks: TransportHooks;
  private transport: Transport | null = null;
  private stopped = false;
  private readonly fds: ForwarderFds;
  private readonly onFatal: (err: Error) => void;

  constructor(fds: ForwarderFds, pools: Pools, log: Logger, onFatal: (err: Error) => void) {
    this.fds = fds;
    this.onFatal = onFatal;
    // Device-path drops are routine (multicast with no route); network-path ones mean a
    // misconfigured or hostile sender, worth a warning.
    const firstDrop = (path: string, level: "info" | "warn") => (reason: number, detail: string) =>
      log[level]({ path, reason: DROP_LABELS[reason], detail }, "first drop for this reason; further ones are only counted");
    this.hooks = {
      device: {
        socketFull: (full) => {
          if (full) this.tunWatch.pause(PAUSE_SOCKET_FULL);
          else this.tunWatch.resume(PAUSE_SOCKET_FULL);
          this.sockWatch.wantWritable(full);
        },
        poolEmpty: () => pauseUntilAvailable(this.tunWatch, pools.device),
        firstDrop: firstDrop("device_to_network", "info"),
        gsoRefused: (errno) => log.warn({ errno }, "the kernel refused UDP GSO on a send; sending datagrams one by one from now on"),
      },
      network: {
        poolEmpty: () => pauseUntilAvailable(this.sockWatch, pools.network),
        firstDrop: firstDrop("network_to_device", "warn"),
      },
    };
  }

  /** Starts watching: from the next turn of the event loop, readiness drives the paths. */
  start(transport: Transport): void {
    this.transport = transport;
    this.tunWatch = new Watch(this.fds.tun.fd, (status) => this.onTunEvents(status));
    this.sockWatch = new Watch(this.fds.sock.fd, (status, events) => this.onSocketEvents(status, events));
  }

  stop(): void {
    this.stopped = true;
    this.tunWatch.stop();
    this.sockWatch.stop();
  }

  // No closure per wakeup: the try/catch is written out in each.
  private onTunEvents(status: number): void {
    if (this.stopped) return;
    try {
      const tun = this.fds.tun;
      if (status < 0) {
        throw new Error(addon.tunAttached(tun.fd)
          ? `TUN device ${tun.name}: poll error`
          : `TUN device ${tun.name} was deleted underneath udptun; exiting (a supervisor restart recreates it)`);
      }
      this.transport!.devicePath.onReadable();
    } catch (err) {
      this.onFatal(err as Error);
    }
  }

  private onSocketEvents(status: number, events: number): void {
    if (this.stopped) return;
    try {
      if (status < 0) throw new Error("UDP socket: poll error");
      if (events & WRITABLE) this.transport!.devicePath.onWritable();
      if (events & READABLE) this.transport!.networkPath.onReadable();
    } catch (err) {
      this.onFatal(err as Error);
    }
  }
}

/** A reader found its pool empty: stop watching its fd until a buffer comes back, rather
 * than being woken again and again by a fd that stays readable. */
function pauseUntilAvailable(watch: Watch, pool: BufferPool): void {
  watch.pause(PAUSE_POOL_EMPTY);
  pool.whenAvailable(() => watch.resume(PAUSE_POOL_EMPTY));
}
