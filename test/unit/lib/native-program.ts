// Builds a C test program of test/native/ with cc during the test run and reads its report:
// one line per case, "ok NAME" or "not ok NAME: why", then "done N cases, F failed"
// (test/native/check.h). Each case becomes one assertion, so tap names the case that failed.
import type { Test } from "tap";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** Compiles test/native/<program>.c with the given src/native/ sources; returns the executable. */
export function buildNative(program: string, sources: string[]): string {
  const exe = path.join(mkdtempSync(path.join(tmpdir(), `udptun-${program}-`)), program);
  const files = [`test/native/${program}.c`, ...sources.map((s) => `src/native/${s}`)].map((f) => path.join(root, f));
  execFileSync("cc", ["-O2", "-Wall", "-Werror", "-std=gnu11", "-o", exe, ...files]);
  return exe;
}

/** Runs the program and asserts every case it reports, and that it ran to its end. */
export function assertCases(t: Test, exe: string): void {
  const run = spawnSync(exe, { encoding: "utf8", timeout: 120_000 });
  const lines = run.stdout.split("\n").filter((l) => l !== "");
  const cases = lines.filter((l) => l.startsWith("ok ") || l.startsWith("not ok "));
  for (const line of cases) t.ok(line.startsWith("ok "), line.replace(/^(not )?ok /, ""));
  const failed = cases.filter((l) => l.startsWith("not ok ")).length;
  t.equal(lines.at(-1), `done ${cases.length} cases, ${failed} failed`, `ran to the end ${run.stderr}`.trim());
  t.equal(run.status, 0, "exit status");
}
