// The configuration API at scale (issue #12): 40 peers x 2,500 allowed IPs (100,000 prefixes,
// IPv4 and IPv6 mixed), in process, stage by stage, in CPU time (the machine may be shared),
// the minimum of N runs. The stages are bench/lib/uapi-scale.ts's.
//   node bench/uapi-scale.ts [runs, default 7]
import { measureScale, scaleRequest } from "./lib/uapi-scale.ts";

const RUNS = Number(process.argv[2] ?? 7);
const text = scaleRequest({ replacePeers: true });
console.log(`request: ${(text.length / 1e6).toFixed(1)} MB, ${text.toString("latin1").split("\n").length} lines`);
const best = await measureScale(RUNS);
for (const [stage, ms] of Object.entries(best)) console.log(`${stage.padEnd(8)} ${ms.toFixed(1).padStart(7)} ms CPU`);
