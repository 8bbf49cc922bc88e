// A readiness watch on one fd whose reading can be paused for several reasons at once
// (back-pressure), with the time spent paused kept for the metrics. pollSet is a syscall
// (epoll_ctl), so it is only issued when the watched events actually change.
import { addon, READABLE, WRITABLE } from "../native/addon.ts";

/** Why reading is paused: the socket cannot take what we read, or the pool has no buffer. */
export const PAUSE_SOCKET_FULL = 1;
export const PAUSE_POOL_EMPTY = 2;

export class Watch {
  private handle: object | null;
  private readonly onEvents: (status: number, events: number) => void;
  private reasons = 0;
  private writable = false;
  private events = READABLE;
  private pausedSince = 0;
  private pausedMs = 0;
  /** Times reading was paused for each reason. */
  readonly pauses = { socketFull: 0, poolEmpty: 0 };

  constructor(fd: number, onEvents: (status: number, events: number) => void) {
    this.onEvents = onEvents;
    this.handle = addon.pollStart(fd, READABLE, onEvents);
  }

  /** Watches another fd (the socket was replaced) for what this one was watched for, pauses
   * and writability kept. */
  moveTo(fd: number): void {
    if (!this.handle) return;
    addon.pollStop(this.handle);
    this.handle = addon.pollStart(fd, READABLE, this.onEvents);
    if (this.events !== READABLE) addon.pollSet(this.handle, this.events);
  }

  pause(reason: number): void {
    if (this.reasons & reason) return;
    if (this.reasons === 0) this.pausedSince = performance.now();
    this.reasons |= reason;
    if (reason === PAUSE_SOCKET_FULL) this.pauses.socketFull++;
    else this.pauses.poolEmpty++;
    this.apply();
  }

  resume(reason: number): void {
    if (!(this.reasons & reason)) return;
    this.reasons &= ~reason;
    if (this.reasons === 0) this.pausedMs += performance.now() - this.pausedSince;
    this.apply();
  }

  /** Also (or no longer) report when the fd can be written. */
  wantWritable(on: boolean): void {
    this.writable = on;
    this.apply();
  }

  /** Seconds reading has spent paused, the current pause included. */
  get pausedSeconds(): number {
    return (this.pausedMs + (this.reasons ? performance.now() - this.pausedSince : 0)) / 1000;
  }

  stop(): void {
    if (this.handle) addon.pollStop(this.handle);
    this.handle = null;
  }

  private apply(): void {
    const events = (this.reasons ? 0 : READABLE) | (this.writable ? WRITABLE : 0);
    if (events === this.events || !this.handle) return;
    this.events = events;
    addon.pollSet(this.handle, events);
  }
}
