// bench/crypto/seal-open.ts -- ns of CPU per WireGuard data message for the addon's own
// seal and open code (seal-open.c), and OpenSSL's floor at the same sizes. CPU time of the
// measuring thread, min (and median) of several runs: the machine is shared, and the
// minimum of CPU time is what stays put under load. Build first: bench/crypto/build.sh.
//   node bench/crypto/seal-open.ts [--runs N] [--messages N] [--baseline MODULE] [--json]
// --baseline: the same benchmark built from another revision (build.sh REV prints its
// path), run alternately with this one, run for run, so both see the same load.
import { createRequire } from "node:module";
import path from "node:path";
import { parseArgs } from "node:util";

interface Bench {
  /** ns of CPU per message, one run. */
  measure(kind: string, plain: number, header: number, messages: number): number;
}
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "9" },
    messages: { type: "string", default: "20000" },
    baseline: { type: "string" },
    json: { type: "boolean" },
  },
});
const load = createRequire(import.meta.url);
const bench = load("./build/Release/seal_open.node") as Bench;
const baseline = values.baseline ? (load(path.resolve(values.baseline)) as Bench) : undefined;
const runs = Number(values.runs);
const messages = Number(values.messages);
if (!(Number.isInteger(runs) && runs > 0)) throw new RangeError(`--runs: ${values.runs} is not a positive integer`);
if (!(Number.isInteger(messages) && messages > 0)) throw new RangeError(`--messages: ${values.messages} is not a positive integer`);

interface Case {
  name: string;
  kind: string;
  plain: number;
  header?: number;
  /** Subtract this case's figure (open's copy of the original). */
  minus?: string;
}

// MTU-sized IP packets (1420 at the default MTU), small ones (TCP ACKs are 52-72 bytes
// with options), and the segments of a TSO super-packet: IPv4 TCP with timestamps (52-byte
// headers, 1368-byte payload) and IPv6 (72-byte headers, 1348).
const cases: Case[] = [];
for (const plain of [1420, 100, 60]) {
  cases.push({ name: `seal in place ${plain}`, kind: "seal", plain });
  cases.push({ name: `open ${plain} (copy subtracted)`, kind: "open", plain, minus: `copy ${plain}` });
  cases.push({ name: `copy ${plain}`, kind: "copy", plain });
  cases.push({ name: `evp-message ${plain}`, kind: "evp-message", plain });
  cases.push({ name: `evp-update ${plain}`, kind: "evp-update", plain });
}
cases.push({ name: "seal segments 52+1368", kind: "segments", plain: 1420, header: 52 });
cases.push({ name: "seal segments 72+1348", kind: "segments", plain: 1420, header: 72 });

interface Figure {
  min: number;
  median: number;
}

function summary(ns: number[]): Figure {
  ns.sort((a, b) => a - b);
  return { min: ns[0]!, median: ns[Math.floor(ns.length / 2)]! };
}

const now = new Map<string, Figure>();
const before = new Map<string, Figure>();
for (const c of cases) {
  const args = [c.kind, c.plain, c.header ?? 0, messages] as const;
  bench.measure(...args); // warm-up
  baseline?.measure(...args);
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < runs; r++) {
    ours.push(bench.measure(...args));
    if (baseline) theirs.push(baseline.measure(...args));
  }
  now.set(c.name, summary(ours));
  if (baseline) before.set(c.name, summary(theirs));
}

/** A case's figure, less that of the case it names (open's copy). */
function net(figures: Map<string, Figure>, c: Case): Figure {
  const r = figures.get(c.name)!;
  const less = c.minus ? figures.get(c.minus)! : { min: 0, median: 0 };
  return { min: r.min - less.min, median: r.median - less.median };
}

const rows = cases.map((c) => ({ case: c.name, ...net(now, c), ...(baseline ? { baseline: net(before, c) } : {}) }));
if (values.json) {
  console.log(JSON.stringify({ openssl: process.versions.openssl, runs, messages, baseline: values.baseline, rows }, null, 2));
} else {
  const change = (a: number, b: number): string => `${(((b - a) / a) * 100).toFixed(1)}%`;
  const cols = baseline ? ["before min", "min", "change", "before med", "median", "change"] : ["min", "median"];
  console.log(`OpenSSL ${process.versions.openssl}, ${runs} runs of ${messages} messages; ns of CPU per message`);
  console.log("case".padEnd(32) + cols.map((h) => h.padStart(12)).join(""));
  for (const r of rows) {
    const b = r.baseline;
    const cells = b
      ? [b.min, r.min, change(b.min, r.min), b.median, r.median, change(b.median, r.median)]
      : [r.min, r.median];
    console.log(r.case.padEnd(32) + cells.map((v) => (typeof v === "number" ? v.toFixed(0) : v).padStart(12)).join(""));
  }
}
