#!/usr/bin/env node
// udptun run --config FILE   start the tunnel
// udptun check --config FILE validate the config and print what it would do
// udptun genkey | genpsk | pubkey   WireGuard keys, as wg's commands
import { readFileSync } from "node:fs";
import { isKeyCommand, runKeyCommand } from "./cli/key-commands.ts";
import { loadConfig } from "./config/load.ts";
import type { ConfigOverrides } from "./config/load.ts";
import type { Config } from "./config/schema.ts";
import { configSummary } from "./config/summary.ts";
import { ConfigError } from "./config/validate.ts";
import type { MetricsServer } from "./telemetry/server.ts";
import type { DataPlane } from "./tunnel/data-plane.ts";

const USAGE = `usage: udptun run --config FILE     run the tunnel (or set UDPTUN_CONFIG)
       udptun check --config FILE   validate FILE and print the resulting setup
         FILE: JSON, or a wg-quick file if it ends in .conf (the device is named after it)
         --metrics HOST:PORT         serve /metrics there instead of where FILE says
       udptun genkey | genpsk        print a new private key | preshared key (as wg's)
       udptun pubkey                 read a private key on stdin, print its public key
       udptun --version
       udptun-wg [-f|--foreground] INTERFACE   wireguard-go's command line, for wg and wg-quick (README)`;

/** Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or config. */
const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;
const STOP_DEADLINE_MS = 1500;

function version(): string {
  // src/cli.ts sits one level below package.json; dist/src/cli.js two.
  const rel = import.meta.url.includes("/dist/src/") ? "../../package.json" : "../package.json";
  const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8"));
  return String(pkg.version);
}

function parseArgs(argv: string[]): { cmd: string; config: string | undefined; overrides: ConfigOverrides } {
  const [cmd = "", ...rest] = argv;
  let config = process.env.UDPTUN_CONFIG;
  let metrics: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--config" || rest[i] === "-c") config = rest[++i];
    else if (rest[i].startsWith("--config=")) config = rest[i].slice(9);
    else if (rest[i] === "--metrics") metrics = rest[++i] ?? "";
    else if (rest[i].startsWith("--metrics=")) metrics = rest[i].slice(10);
    else throw new ConfigError(rest[i], "unknown argument\n" + USAGE);
  }
  return { cmd, config, overrides: metrics === undefined ? {} : { metrics } };
}

async function run(config: Config, load: () => Config, ver: string): Promise<void> {
  // Loaded here, not at the top: the key commands and `check` start without the addon,
  // OpenTelemetry and pino (`udptun pubkey` answers as fast as `wg pubkey` is expected to).
  const [{ createLogger }, { Telemetry }, { startMetricsServer }, { startDataPlane }] = await Promise.all([
    import("./telemetry/log.ts"), import("./telemetry/metrics.ts"), import("./telemetry/server.ts"), import("./tunnel/data-plane.ts"),
  ]);
  const log = createLogger(config.log.level);
  for (const warning of config.warnings) log.warn(warning);
  const telemetry = new Telemetry(ver);
  let plane: DataPlane | null = null;
  let server: MetricsServer | null = null;
  let stopping = false;

  const stop = async (code: number, why: string, err?: Error, fields: object = {}): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (err) log.error({ err, ...fields }, why);
    else log.info({ reason: why }, "stopping");
    // A hard deadline: whatever hangs, the process still leaves within it.
    setTimeout(() => process.exit(code), STOP_DEADLINE_MS).unref();
    if (plane) log.info({ ...(await plane.stop()), deviceRemoved: plane.deviceCreated }, "stopped");
    await Promise.allSettled([server?.close(), telemetry.shutdown()]);
    process.exit(code);
  };

  process.on("SIGHUP", () => {
    if (!plane || stopping) return;
    let next: Config;
    try {
      next = load();
    } catch (err) {
      log.error({ err: (err as Error).message }, "reload failed; the running config stays");
      return;
    }
    plane.reload(next).then(
      (res) => log.info(res, res.needsRestart.length ? "peers reloaded; other changes need a restart" : "peers reloaded"),
      (err: Error) => log.error({ err: err.message }, "reload failed; the running config stays"),
    );
  });
  process.on("SIGINT", () => void stop(0, "SIGINT"));
  process.on("SIGTERM", () => void stop(0, "SIGTERM"));
  process.on("uncaughtException", (err) => void stop(EXIT_RUNTIME, "uncaught exception", err));

  try {
    // The metrics port first: if it is taken we stop before creating anything.
    server = await startMetricsServer(config.metrics, telemetry.exporter, () => plane !== null && !stopping);
    const started = await startDataPlane({
      config, log,
      onFatal: (why, err, fields) => void stop(EXIT_RUNTIME, why, err, fields),
    });
    telemetry.observe(() => started.snapshots());
    plane = started;
  } catch (err) {
    log.error({ err: (err as Error).message }, "cannot start");
    await server?.close();
    process.exit(EXIT_RUNTIME);
  }
  log.info({ version: ver, node: process.version, config: configSummary(config), listen: plane.localEndpoint, metrics: server.address, deviceCreated: plane.deviceCreated }, "udptun started");
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--version" || argv[0] === "-v") {
    console.log(version());
    return;
  }
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    console.log(USAGE);
    return;
  }
  if (isKeyCommand(argv[0])) {
    process.exitCode = runKeyCommand(argv[0], argv.slice(1));
    return;
  }
  let cmd: string;
  let config: Config;
  let load: () => Config;
  try {
    const args = parseArgs(argv);
    cmd = args.cmd;
    if (cmd !== "run" && cmd !== "check") throw new ConfigError(cmd, `unknown command\n${USAGE}`);
    if (!args.config) throw new ConfigError("--config", "missing (give --config FILE or set UDPTUN_CONFIG)");
    const file = args.config;
    load = () => loadConfig(file, process.env, args.overrides);
    config = load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`udptun: invalid configuration: ${err.message}`);
    process.exit(EXIT_USAGE);
  }
  if (cmd === "check") {
    for (const warning of config.warnings) console.error(`udptun: warning: ${warning}`);
    console.log(JSON.stringify(configSummary(config), null, 2));
    console.log("config ok");
    return;
  }
  await run(config, load, version());
}

await main();
