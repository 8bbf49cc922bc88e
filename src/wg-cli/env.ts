// The daemon's settings, all from the environment as wireguard-go takes them, plus udptun's
// own: LOG_LEVEL, WG_PROCESS_FOREGROUND, UDPTUN_METRICS.
import { LOG_LEVELS } from "../config/schema.ts";
import type { LogLevel } from "../config/schema.ts";
import type { HostPort } from "../net/address.ts";
import { parseHostPort } from "../net/address.ts";

/** wireguard-go's LOG_LEVEL names, as pino levels; pino's own names are taken as they are. */
const WIREGUARD_GO_LEVELS: Readonly<Record<string, LogLevel>> = { verbose: "debug", debug: "debug", error: "error", silent: "silent" };
/** wireguard-go's default. */
const DEFAULT_LEVEL: LogLevel = "error";

export interface DaemonSettings {
  level: LogLevel;
  /** The detached daemon keeps the caller's stdout and stderr (else /dev/null): LOG_LEVEL is
   * set and not silent, as wireguard-go decides. */
  keepOutput: boolean;
  /** WG_PROCESS_FOREGROUND=1: stay in the foreground as -f does. */
  foreground: boolean;
  /** UDPTUN_METRICS=HOST:PORT: serve /metrics there; null (the default): no metrics. */
  metrics: HostPort | null;
  /** Settings that were ignored, for the log (an unknown LOG_LEVEL, as wireguard-go, falls back to error). */
  warnings: string[];
}

export class SettingsError extends Error {}

export function readSettings(env: NodeJS.ProcessEnv): DaemonSettings {
  const warnings: string[] = [];
  const raw = env.LOG_LEVEL ?? "";
  let level = WIREGUARD_GO_LEVELS[raw] ?? (LOG_LEVELS.includes(raw as LogLevel) ? (raw as LogLevel) : null);
  if (level === null) {
    if (raw !== "") warnings.push(`LOG_LEVEL=${JSON.stringify(raw)} is not one of verbose, error, silent, ${LOG_LEVELS.join(", ")}; using ${DEFAULT_LEVEL}`);
    level = DEFAULT_LEVEL;
  }
  let metrics: HostPort | null = null;
  const m = env.UDPTUN_METRICS;
  if (m !== undefined && m !== "") {
    metrics = parseHostPort(m);
    if (!metrics) throw new SettingsError(`UDPTUN_METRICS=${JSON.stringify(m)} is not HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464)`);
  }
  return { level, keepOutput: raw !== "" && level !== "silent", foreground: env.WG_PROCESS_FOREGROUND === "1", metrics, warnings };
}
