// Reads the config file (JSON) and applies environment overrides, for containers.
import { readFileSync } from "node:fs";
import { ConfigError, validateConfig } from "./validate.ts";
import type { Config } from "./schema.ts";

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError("--config", `cannot read ${JSON.stringify(file)}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError("--config", `${JSON.stringify(file)} is not valid JSON: ${(err as Error).message}`);
  }
  if (env.UDPTUN_LOG_LEVEL && typeof raw === "object" && raw !== null) {
    const r = raw as Record<string, unknown>;
    // Only where "log" is absent or an object: anything else stays for validation to reject.
    if (r.log === undefined) r.log = { level: env.UDPTUN_LOG_LEVEL };
    else if (typeof r.log === "object" && r.log !== null && !Array.isArray(r.log)) r.log = { ...r.log, level: env.UDPTUN_LOG_LEVEL };
  }
  return validateConfig(raw);
}
