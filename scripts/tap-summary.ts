// Prints one closing line, "N passed, N failed", from tap's output, and fails if tap
// failed anything or ran nothing. Skipped tests are reported, never counted as passed.
import { readFileSync } from "node:fs";

const text = readFileSync(process.argv[2], "utf8");
const m = [...text.matchAll(/^# (\{ total: .* \})$/gm)].pop();
if (!m) {
  console.log("0 passed, 1 failed");
  console.error("tap-summary: no tap summary found");
  process.exit(1);
}
const field = (k: string): number => Number(new RegExp(`${k}: (\\d+)`).exec(m[1])?.[1] ?? 0);
const passed = field("pass");
const failed = field("fail") + (field("total") === 0 ? 1 : 0);
const skipped = field("skip") + field("todo");
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
