// The daemon proper, in the foreground or detached: the device, the socket, the forwarder and
// the configuration socket, then it runs until SIGTERM/SIGINT or until its device is deleted
// (`ip link del`, `wg-quick down`), and leaves with the socket file removed and every buffer
// back in its pool. Nothing looks the device up by name after start: it may be moved into
// another network namespace and must keep working there (wireguard.com/netns).
import type { Logger } from "pino";
import { addon } from "../native/addon.ts";
import { closeTun, openTunDown } from "../native/tun.ts";
import type { TunDevice } from "../native/tun.ts";
import type { WireGuardConfig } from "../config/schema.ts";
import { closeUdp, openUdp } from "../native/udp.ts";
import { createLogger } from "../telemetry/log.ts";
import { Telemetry } from "../telemetry/metrics.ts";
import { startMetricsServer } from "../telemetry/server.ts";
import type { MetricsServer } from "../telemetry/server.ts";
import { readForwarder } from "../telemetry/snapshot.ts";
import { Forwarder } from "../tunnel/forwarder.ts";
import type { ForwarderFds } from "../tunnel/fds.ts";
import { summarize } from "../tunnel/summary.ts";
import { LiveDevice } from "../uapi/live.ts";
import { UapiServer } from "../uapi/server.ts";
import { daemonConfig } from "./config.ts";
import type { DaemonSettings } from "./env.ts";
import type { Readiness } from "./readiness.ts";

/** Exit codes: 0 a clean stop (signal, device deleted), 1 anything else (wireguard-go's ExitSetupFailed). */
const EXIT_FAILED = 1;
/** Whatever hangs at stop, the process leaves within this. */
const STOP_DEADLINE_MS = 1500;

export async function runDaemon(name: string, settings: DaemonSettings, readiness: Readiness, version: string): Promise<void> {
  const log = createLogger(settings.level).child({ interface: name });
  for (const warning of settings.warnings) log.warn(warning);
  const config = daemonConfig(name, settings.level);
  let fwd: Forwarder | null = null;
  let uapi: UapiServer | null = null;
  let metrics: MetricsServer | null = null;
  let telemetry: Telemetry | null = null;
  let stopping = false;

  const stop = async (code: number, why: string, err?: Error): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (err) log.error({ err }, why);
    else log.info({ reason: why }, "stopping");
    setTimeout(() => process.exit(code), STOP_DEADLINE_MS).unref();
    // The socket first: `wg` must not reach a device that is going away.
    await uapi?.close();
    if (fwd) {
      fwd.stop();
      log.info({ final: summarize(fwd) }, "stopped");
    }
    await Promise.allSettled([metrics?.close(), telemetry?.shutdown()]);
    process.exit(code);
  };

  const onFatal = (err: Error): void => {
    // A device deleted underneath (its fd detached) is how wg-quick down stops us: a clean
    // exit. A device moved to another namespace stays attached and never gets here.
    if (fwd && !addon.tunAttached(fwd.tun.fd)) void stop(0, "device deleted");
    else void stop(EXIT_FAILED, "forwarding failed", err);
  };
  process.on("SIGINT", () => void stop(0, "SIGINT"));
  process.on("SIGTERM", () => void stop(0, "SIGTERM"));
  process.on("uncaughtException", (err) => void stop(EXIT_FAILED, "uncaught exception", err));

  let fds: ForwarderFds | null = null;
  try {
    // The metrics port first: if it is taken, nothing else is created.
    if (settings.metrics) {
      telemetry = new Telemetry(version);
      metrics = await startMetricsServer(settings.metrics, telemetry.exporter, () => fwd !== null && !stopping);
    }
    // The device before the socket file, as wireguard-go: a name another daemon holds fails
    // here, before anything of ours exists.
    const tun = createDevice(name, config);
    let sock;
    try {
      sock = openUdp(config.listen.ip, config.listen.port, config.socket.receiveBuffer, config.socket.sendBuffer);
    } catch (err) {
      closeTun(tun);
      throw err;
    }
    fds = { tun, tunWriteFd: -1, sock };
    fwd = new Forwarder({ config, log, fds, onFatal });
    fds = null; // the forwarder owns them now
    // Configured through the API alone (wg set, wg setconf, wg-quick).
    const device = new LiveDevice(fwd, log);
    uapi = await UapiServer.listen({ name, device, onError: (e) => log.warn({ err: e.message }, "configuration request refused") });
    const live = fwd;
    telemetry?.observe(() => [readForwarder(live)]);
  } catch (err) {
    const why = (err as Error).message;
    log.error({ err: why }, "cannot start");
    readiness.failed(why);
    if (fds) {
      closeTun(fds.tun);
      closeUdp(fds.sock);
    }
    fwd?.stop();
    await metrics?.close();
    process.exit(EXIT_FAILED);
  }
  startedLine(log, version, fwd, uapi, metrics);
  readiness.ready();
}

function createDevice(name: string, config: WireGuardConfig): TunDevice {
  try {
    return openTunDown(name, config.device.mtu, config.device.txQueueLen, config.offloads.tun);
  } catch (err) {
    throw new Error(`cannot create TUN device ${name}: ${(err as Error).message}`, { cause: err });
  }
}

function startedLine(log: Logger, version: string, fwd: Forwarder, uapi: UapiServer, metrics: MetricsServer | null): void {
  log.info({ version, node: process.version, listen: fwd.localEndpoint, socket: uapi.path, metrics: metrics?.address ?? null, deviceCreated: fwd.tun.created }, "udptun-wg started");
}
