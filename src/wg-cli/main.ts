#!/usr/bin/env node
// udptun-wg [-f|--foreground] INTERFACE-NAME: wireguard-go's command line over udptun, so
// `wg` and `wg-quick` (WG_QUICK_USERSPACE_IMPLEMENTATION=udptun-wg) drive it. See README.md,
// "Use with wg and wg-quick".
import { readFileSync } from "node:fs";
import { badInterfaceName, parseArgs, USAGE } from "./args.ts";
import { detach } from "./detach.ts";
import { readSettings, SettingsError } from "./env.ts";
import type { DaemonSettings } from "./env.ts";
import { READY_FD_ENV, readinessFromEnv } from "./readiness.ts";

const EXIT_FAILED = 1;

function version(): string {
  // src/wg-cli/main.ts sits two levels below package.json; dist/src/wg-cli/main.js three.
  const rel = import.meta.url.includes("/dist/src/") ? "../../../package.json" : "../../package.json";
  return String(JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")).version);
}

async function main(): Promise<void> {
  const cmd = parseArgs(process.argv.slice(2));
  if (cmd.kind === "version") {
    console.log(`udptun-wg v${version()}\n\nUserspace WireGuard daemon for ${process.platform}-${process.arch} (udptun on Node ${process.version}),\nwith wireguard-go's command line and configuration API.`);
    return;
  }
  if (cmd.kind === "usage") {
    console.log(USAGE);
    return;
  }
  const fail = (why: string): never => {
    console.error(`udptun-wg: ${why}`);
    process.exit(EXIT_FAILED);
  };
  const bad = badInterfaceName(cmd.name);
  if (bad) fail(bad);
  let settings: DaemonSettings;
  try {
    settings = readSettings(process.env);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    return fail(err.message);
  }
  const isDaemon = process.env[READY_FD_ENV] !== undefined;
  if (!isDaemon && !cmd.foreground && !settings.foreground) {
    const r = await detach([cmd.name], settings.keepOutput);
    if (r.code !== 0) fail(r.error ?? "the daemon failed");
    return;
  }
  // Loaded only here: the parent of a detached daemon never loads the addon or OpenTelemetry.
  const { runDaemon } = await import("./daemon.ts");
  await runDaemon(cmd.name, settings, readinessFromEnv(process.env), version());
}

await main();
