// A real Prometheus server (Debian's package) scraping udptun instances every second.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Lab } from "./netns.ts";
import { start } from "./proc.ts";
import type { Daemon } from "./proc.ts";
import { fetchIn } from "./udptun.ts";

export interface Prometheus {
  daemon: Daemon;
  url: string;
  ns: string;
}

export async function startPrometheus(lab: Lab, ns: string, listen: string, targets: string[]): Promise<Prometheus> {
  const dir = mkdtempSync(path.join(tmpdir(), "udptun-prom-"));
  const config = path.join(dir, "prometheus.yml");
  writeFileSync(config, [
    "global:",
    "  scrape_interval: 1s",
    "  scrape_timeout: 900ms",
    "scrape_configs:",
    "  - job_name: udptun",
    "    static_configs:",
    `      - targets: [${targets.map((t) => `"${t}"`).join(", ")}]`,
    "",
  ].join("\n"));
  const [cmd, args] = lab.exec(ns, "prometheus", [
    `--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, "data")}`,
    `--web.listen-address=${listen}`, "--log.level=warn",
  ]);
  const daemon = start(cmd, args);
  const prom = { daemon, url: `http://${listen}`, ns };
  // Ready when its own readiness endpoint says so.
  await waitUntil(async () => (await fetchIn(lab, ns, `${prom.url}/-/ready`).catch(() => "")).includes("Ready"), 30_000);
  return prom;
}

export interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

export async function query(lab: Lab, prom: Prometheus, q: string): Promise<Series[]> {
  const body = await fetchIn(lab, prom.ns, `${prom.url}/api/v1/query?query=${encodeURIComponent(q)}`);
  const res = JSON.parse(body) as { status: string; data: { result: Series[] } };
  if (res.status !== "success") throw new Error(`query ${q}: ${body}`);
  return res.data.result;
}

/** Polls cond every 250 ms until it holds; throws after timeoutMs. For state that has no event (a scrape). */
export async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
