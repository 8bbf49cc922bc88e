// The README's metric table, rendered from the catalogue: scripts/metrics-table.ts writes it
// between the markers, and a unit test fails when the README's copy differs.
import { CATALOGUE, prometheusName } from "./catalogue.ts";
import type { Instrument, Kind } from "./catalogue.ts";

export const TABLE_BEGIN = "<!-- metric table: generated from src/telemetry/catalogue.ts by `node scripts/metrics-table.ts --write` -->";
export const TABLE_END = "<!-- end of metric table -->";

const OTEL_KIND: Record<Kind, string> = { counter: "ObservableCounter", gauge: "ObservableGauge", updowncounter: "ObservableUpDownCounter" };
const PROMETHEUS_TYPE: Record<Kind, string> = { counter: "counter", gauge: "gauge", updowncounter: "gauge" };
const code = (s: string) => `\`${s}\``;

function labels(i: Instrument): string {
  return i.labels.map((l) => (l.values ? `${code(l.name)} (${l.values.map(code).join(", ")})` : code(l.name))).join(", ");
}

/** The table, markers included. */
export function metricTable(): string {
  const rows = CATALOGUE.map((i) => [
    `${code(prometheusName(i))} ${PROMETHEUS_TYPE[i.kind]}`,
    `${code(i.name)} ${OTEL_KIND[i.kind]}`,
    i.unit ? code(i.unit) : "",
    labels(i),
    i.help.replaceAll("|", "\\|"),
  ]);
  return [
    TABLE_BEGIN,
    "| Prometheus | OpenTelemetry | unit | labels | meaning |",
    "|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    TABLE_END,
  ].join("\n");
}

/** The README with its table replaced by `table`; throws if the markers are missing. */
export function withTable(readme: string, table: string): string {
  const begin = readme.indexOf(TABLE_BEGIN);
  const end = readme.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`README.md: the metric table's markers are missing (${TABLE_BEGIN} ... ${TABLE_END})`);
  return readme.slice(0, begin) + table + readme.slice(end + TABLE_END.length);
}
