// The catalogue (src/telemetry/catalogue.ts) against what the real OpenTelemetry exporter
// serves over a real HTTP server on loopback: every instrument under its Prometheus name,
// with its help, type and declared labels; promtool has nothing to say; the names survive an
// exporter that appends unit suffixes; the README's table is the generated one.
import t from "tap";
import { readFileSync } from "node:fs";
import { CATALOGUE, prometheusName } from "../../src/telemetry/catalogue.ts";
import type { Instrument } from "../../src/telemetry/catalogue.ts";
import { Telemetry } from "../../src/telemetry/metrics.ts";
import { metricTable, TABLE_BEGIN, TABLE_END, withTable } from "../../src/telemetry/readme-table.ts";
import { startMetricsServer } from "../../src/telemetry/server.ts";
import type { ForwarderSnapshot } from "../../src/telemetry/snapshot.ts";
import { Drop, DROP_LABELS } from "../../src/tunnel/drops.ts";
import { summaryOf } from "../../src/tunnel/summary.ts";
import { promtoolCheck } from "../e2e/lib/promtool.ts";

/** A snapshot whose every counter is distinct, so a value read from the wrong field shows. */
function snapshot(worker?: string, base = 0): ForwarderSnapshot {
  let n = base;
  const next = () => ++n;
  const drops = () => DROP_LABELS.map(() => next());
  const pool = (name: string, bufferSize: number) => ({ name, bufferSize, allocated: next(), inUse: next(), capacity: next(), exhausted: next() });
  return {
    worker,
    pools: { device: pool("device_gso", 65_600), network: pool("network_gro", 65_600) },
    device: { packets: next(), bytes: next(), drops: drops() },
    network: { packets: next(), bytes: next(), drops: drops() },
    peers: ["b", "c"].map((name) => ({
      name, txPackets: next(), txBytes: next(), rxPackets: next(), rxBytes: next(), rxKeepalives: next(),
      wireguard: {
        latestHandshake: next(), handshakesInitiated: next(), handshakesCompleted: next(), handshakesFailed: next(),
        cookiesSent: next(), cookiesReceived: next(), transferTx: next(), transferRx: next(),
      },
    })),
    socketFull: next(),
    receiveDrops: next(),
    pausedDeviceSeconds: next(),
    pausedNetworkSeconds: next(),
    tunReads: next(),
    tunWrites: next(),
    datagramsReceived: next(),
    datagramsSent: next(),
    offloads: { udp_gso: true, udp_gro: false, tun: true, coalesce: false },
    heapUsed: worker === undefined ? undefined : 1000,
    gcRuns: worker === undefined ? undefined : 7,
  };
}

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Exposition { text: string; types: Map<string, string>; helps: Map<string, string>; samples: Sample[] }

/** Serves `snaps` through Telemetry and the metrics server, and scrapes it once. */
async function scrape(snaps: ForwarderSnapshot[]): Promise<Exposition> {
  const telemetry = new Telemetry("0.0.0-test");
  telemetry.observe(() => snaps);
  const server = await startMetricsServer({ host: "127.0.0.1", port: 0 }, telemetry.exporter, () => true);
  try {
    const text = await (await fetch(`http://${server.address}/metrics`)).text();
    const types = new Map<string, string>();
    const helps = new Map<string, string>();
    const samples: Sample[] = [];
    for (const line of text.split("\n")) {
      let m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (m) types.set(m[1], m[2]);
      m = /^# HELP (\S+) (.*)$/.exec(line);
      if (m) helps.set(m[1], m[2]);
      m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (m) {
        const labels: Record<string, string> = {};
        for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
        samples.push({ name: m[1], labels, value: Number(m[3]) });
      }
    }
    return { text, types, helps, samples };
  } finally {
    await server.close();
    await telemetry.shutdown();
  }
}

const PROMETHEUS_TYPE = { counter: "counter", gauge: "gauge", updowncounter: "gauge" } as const;
const ours = (names: Iterable<string>) => [...names].filter((n) => n.startsWith("udptun_")).sort();
const value = (e: Exposition, name: string, labels: Record<string, string>) =>
  e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

t.test("every instrument is served under its Prometheus name, with its help and type, and nothing else is", async (t) => {
  const e = await scrape([snapshot()]);
  t.same(ours(e.types.keys()), CATALOGUE.map(prometheusName).sort(), "the exporter's names are prometheusName()'s");
  for (const i of CATALOGUE) {
    const name = prometheusName(i);
    t.equal(e.types.get(name), PROMETHEUS_TYPE[i.kind], `${name}: type`);
    t.equal(e.helps.get(name), i.help, `${name}: help`);
  }
});

t.test("each series carries exactly its declared labels, with declared values; worker on data-path series only", async (t) => {
  for (const workers of [[undefined], ["0", "1"]]) {
    const e = await scrape(workers.map((w, k) => snapshot(w, k * 1000)));
    const byName = new Map<string, Instrument>(CATALOGUE.map((i) => [prometheusName(i), i]));
    for (const s of e.samples) {
      const i = byName.get(s.name);
      if (i === undefined) continue; // target_info
      const want = i.labels.map((l) => l.name);
      if (i.scope === "forwarder" && workers[0] !== undefined) want.push("worker");
      const got = Object.keys(s.labels).filter((k) => !k.startsWith("otel_scope_"));
      t.same(got.sort(), want.sort(), `${s.name}{${got.join(",")}} (workers: ${workers.length})`);
      for (const l of i.labels) if (l.values) t.ok(l.values.includes(s.labels[l.name]), `${s.name}: ${l.name}="${s.labels[l.name]}" is declared`);
    }
    for (const i of CATALOGUE) {
      const series = e.samples.filter((s) => s.name === prometheusName(i)).length;
      t.equal(series % (i.scope === "forwarder" ? workers.length : 1), 0, `${i.name}: the same series per worker`);
      t.ok(series > 0, `${i.name}: served`);
    }
  }
});

t.test("values are read from the snapshot's own fields", async (t) => {
  const s = snapshot();
  const e = await scrape([s]);
  t.equal(value(e, "udptun_buffer_allocated", { pool: "network_gro" }), s.pools.network.allocated, "allocated");
  t.equal(value(e, "udptun_buffer_in_use", { pool: "device_gso", buffer_size: "65600" }), s.pools.device.inUse, "in use, with the buffer size");
  t.equal(value(e, "udptun_buffer_exhausted_total", { pool: "device_gso" }), s.pools.device.exhausted, "exhausted");
  t.equal(value(e, "udptun_packets_total", { path: "device_to_network", peer: "c" }), s.peers[1].txPackets, "packets out to c");
  t.equal(value(e, "udptun_bytes_total", { path: "network_to_device", peer: "b" }), s.peers[0].rxBytes, "bytes in from b");
  t.equal(value(e, "udptun_drops_total", { path: "network_to_device", reason: "unknown_peer" }), s.network.drops[Drop.UnknownPeer], "network drop");
  t.equal(value(e, "udptun_drops_total", { path: "device_to_network", reason: "no_route" }), s.device.drops[Drop.NoRoute], "device drop");
  t.equal(value(e, "udptun_drops_total", { path: "device_to_network", reason: "unknown_peer" }), undefined, "no series for a reason the path cannot produce");
  t.equal(value(e, "udptun_reads_paused_seconds_total", { source: "network" }), s.pausedNetworkSeconds, "paused seconds");
  t.equal(value(e, "udptun_udp_datagrams_sent_total", {}), s.datagramsSent, "datagrams sent");
  t.equal(value(e, "udptun_offload_active", { offload: "udp_gro" }), 0, "an offload off");
  t.equal(value(e, "udptun_offload_active", { offload: "tun" }), 1, "an offload on");
  t.ok((value(e, "udptun_process_open_fds", {}) ?? 0) > 2, "the process's open fds");
});

t.test("promtool check metrics finds nothing to flag", async (t) => {
  const e = await scrape([snapshot("0"), snapshot("1", 1000)]);
  const r = await promtoolCheck(e.text);
  t.equal(r.findings, "", "no findings");
  t.equal(r.code, 0, "exit code 0");
  // The check itself works: the name this catalogue replaced is flagged.
  const old = await promtoolCheck("# HELP udptun_buffer_count Buffers.\n# TYPE udptun_buffer_count gauge\nudptun_buffer_count 1\n");
  t.match(old.findings, /udptun_buffer_count.*_count/, `the old name is flagged: ${old.findings}`);
});

t.test("names are unique and come out the same from an exporter that appends unit suffixes", async (t) => {
  const names = CATALOGUE.map(prometheusName);
  t.equal(new Set(names).size, names.length, "unique Prometheus names");
  for (const i of CATALOGUE) {
    const name = prometheusName(i);
    t.notMatch(name, /_(count|sum|bucket|created|info)$/, `${name}: no suffix Prometheus reserves for histograms, summaries, info`);
    if (i.kind !== "counter") t.notMatch(name, /_total$/, `${name}: _total only on counters`);
    t.notMatch(i.name, /[._]total$/, `${i.name}: the exporter adds _total, the name does not carry it`);
    // Base units are already in the name; anything else is an annotation, which such exporters drop.
    if (i.unit === "s") t.match(name, /_seconds(_total)?$/, `${name}: unit s, name says seconds`);
    else if (i.unit === "By") t.match(name, /(^|_)bytes(_total)?$/, `${name}: unit By, name says bytes`);
    else t.match(i.unit, /^(\{[a-z]+\})?$/, `${i.name}: unit ${JSON.stringify(i.unit)} is an annotation or none (no "1", which gains _ratio)`);
  }
});

t.test("README's metric table is the one the catalogue generates", async (t) => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const begin = readme.indexOf(TABLE_BEGIN);
  t.ok(begin >= 0, "README has the table's markers");
  t.equal(readme.slice(begin, readme.indexOf(TABLE_END) + TABLE_END.length), metricTable(),
    "README's table matches src/telemetry/catalogue.ts (regenerate: node scripts/metrics-table.ts --write)");
  t.throws(() => withTable("no markers here", metricTable()), /README\.md: the metric table's markers are missing/, "a README without markers is refused, by name");
});

t.test("the shutdown summary is made from the same snapshot", async (t) => {
  const s = snapshot();
  s.network.drops = DROP_LABELS.map(() => 0);
  s.network.drops[Drop.BadChecksum] = 3;
  const sum = summaryOf(s);
  t.same(sum.networkToDevice, { packets: s.network.packets, bytes: s.network.bytes, drops: { bad_checksum: 3 } }, "only non-zero drops, by label");
  t.same(sum.pools.device, { name: "device_gso", allocated: s.pools.device.allocated, inUse: s.pools.device.inUse, capacity: s.pools.device.capacity, bufferSize: 65_600 });
  t.equal(sum.socketReceiveDrops, s.receiveDrops, "the socket's kernel drops");
});
