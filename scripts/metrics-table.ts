// Prints the README's metric table from src/telemetry/catalogue.ts; --write puts it into
// README.md between its markers (test/unit/metrics-catalogue.test.ts checks they agree).
import { readFileSync, writeFileSync } from "node:fs";
import { metricTable, withTable } from "../src/telemetry/readme-table.ts";

const README = new URL("../README.md", import.meta.url);
if (process.argv[2] === "--write") writeFileSync(README, withTable(readFileSync(README, "utf8"), metricTable()));
else if (process.argv[2] === undefined) console.log(metricTable());
else {
  console.error(`metrics-table: unknown argument ${JSON.stringify(process.argv[2])}; usage: node scripts/metrics-table.ts [--write]`);
  process.exit(2);
}
