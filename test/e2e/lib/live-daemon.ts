// A udptun WireGuard forwarder configured only through the configuration API, as the
// uapi-live test drives it: it starts as wireguard-go does (no private key, no peers), serves
// /var/run/wireguard/NAME.sock and /metrics, and prints "live device ready" once both answer.
// Run inside a namespace: node live-daemon.ts NAME ADDRESS[,ADDRESS] LISTEN METRICS_LISTEN
import { validateConfig } from "../../../src/config/validate.ts";
import type { Config } from "../../../src/config/schema.ts";
import { createLogger } from "../../../src/telemetry/log.ts";
import { Telemetry } from "../../../src/telemetry/metrics.ts";
import { startMetricsServer } from "../../../src/telemetry/server.ts";
import { readForwarder } from "../../../src/telemetry/snapshot.ts";
import { Forwarder } from "../../../src/tunnel/forwarder.ts";
import { LiveDevice } from "../../../src/uapi/live.ts";
import { UapiServer } from "../../../src/uapi/server.ts";
import { encodeKey } from "../../../src/wireguard/keys.ts";
import { generatePrivateKey, publicKeyOf } from "../../../src/wireguard/x25519.ts";

const [name, addresses, listen, metrics] = process.argv.slice(2);
// A file's config needs a key and a peer; the daemon's has neither, as wireguard-go starts.
const placeholder = encodeKey(publicKeyOf(generatePrivateKey()));
const validated = validateConfig({
  transport: "wireguard", privateKey: encodeKey(generatePrivateKey()),
  device: { name, address: addresses.split(",") }, listen, metrics: { listen: metrics }, log: { level: "info" },
  peers: [{ name: "placeholder", publicKey: placeholder, allowedIps: ["192.0.2.1/32"] }],
});
const config = { ...validated, privateKey: null, publicKey: null, peers: [] } as Config;
const log = createLogger("info");
const fwd = new Forwarder({ config, log, onFatal: (err) => { log.error({ err: err.message }, "forwarding failed"); process.exit(1); } });
const telemetry = new Telemetry("test");
telemetry.observe(() => [readForwarder(fwd)]);
const server = await startMetricsServer(config.metrics, telemetry.exporter, () => true);
const uapi = await UapiServer.listen({ name, device: new LiveDevice(fwd, log), onError: (err) => log.warn({ err: err.message }, "uapi request refused") });

const stop = async (): Promise<void> => {
  await uapi.close();
  fwd.stop();
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
log.info({ listen: fwd.localEndpoint }, "live device ready");
