// The HTTP endpoint on metrics.listen: /metrics for Prometheus, /healthz for probes.
import http from "node:http";
import type { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import type { HostPort } from "../net/address.ts";

export interface MetricsServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function startMetricsServer(
  listen: HostPort, exporter: PrometheusExporter, healthy: () => boolean,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && url === "/metrics") {
      exporter.getMetricsRequestHandler(req, res);
    } else if (req.method === "GET" && url === "/healthz") {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "stopping\n");
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n");
    }
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus's scrape interval, so connections are reused
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(new Error(`metrics.listen ${listen.host}:${listen.port}: ${err.code === "EADDRINUSE" ? "address already in use" : err.message}`));
    });
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address();
  const address = typeof addr === "object" && addr ? `${addr.address}:${addr.port}` : String(addr);
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
