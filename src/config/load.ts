// Reads a config file, JSON or wg-quick (by the .conf suffix, as wg-quick names them), and
// applies the command line's and the environment's overrides (containers set the log level).
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { ConfigError, show } from "./error.ts";
import { modeWarning } from "./keys.ts";
import type { Config } from "./schema.ts";
import { hostPort, validateConfig } from "./validate.ts";
import { locate, parseWgQuick } from "./wg-quick.ts";

export interface ConfigOverrides {
  /** --metrics HOST:PORT: where /metrics is served, whatever the file says. */
  readonly metrics?: string;
}

/** wg-quick's own test: a file named NAME.conf is a wg-quick file. */
export const isWgQuickFile = (file: string): boolean => file.endsWith(".conf");

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function readConfigFile(file: string): { text: string; mode: number } {
  try {
    const fd = openSync(file, "r");
    try {
      return { mode: fstatSync(fd).mode, text: readFileSync(fd, "utf8") };
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new ConfigError("--config", `cannot read ${show(file)}: ${(err as Error).message}`);
  }
}

/** Sets raw[section] = { ...raw[section], [key]: value } where the section is absent or an
 * object; anything else stays for validation to reject. */
function override(raw: Obj, section: string, key: string, value: string): void {
  if (raw[section] === undefined) raw[section] = { [key]: value };
  else if (isObject(raw[section])) raw[section] = { ...raw[section], [key]: value };
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const { text, mode } = readConfigFile(file);
  let raw: unknown;
  let wgQuick: ReturnType<typeof parseWgQuick> | null = null;
  if (isWgQuickFile(file)) {
    wgQuick = parseWgQuick(text, file);
    raw = wgQuick.raw;
  } else {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError("--config", `${show(file)} is not valid JSON: ${(err as Error).message}`);
    }
  }

  const warnings = [...(wgQuick?.warnings ?? [])];
  if (isObject(raw)) {
    if (env.UDPTUN_LOG_LEVEL) override(raw, "log", "level", env.UDPTUN_LOG_LEVEL);
    if (overrides.metrics !== undefined) {
      hostPort(overrides.metrics, "--metrics");
      override(raw, "metrics", "listen", overrides.metrics);
    }
    const peers = Array.isArray(raw.peers) ? raw.peers : [];
    const holdsSecret = wgQuick ? wgQuick.holdsSecret : raw.privateKey !== undefined || peers.some((p) => isObject(p) && p.presharedKey !== undefined);
    const warning = holdsSecret && modeWarning("--config", file, mode);
    if (warning) warnings.push(warning);
  }

  try {
    return validateConfig(raw, { baseDir: dirname(file), warnings });
  } catch (err) {
    if (wgQuick && err instanceof ConfigError) throw locate(err, wgQuick.origins, file);
    throw err;
  }
}
