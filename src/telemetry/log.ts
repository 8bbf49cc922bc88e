// JSON logs on stdout. Synchronous writes: udptun logs rarely (start, errors, first drop
// of each kind, shutdown), and the final counters must be out before the process exits.
import pino from "pino";
import type { Logger } from "pino";
import type { LogLevel } from "../config/schema.ts";

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: "udptun" } }, pino.destination({ dest: 1, sync: true }));
}
