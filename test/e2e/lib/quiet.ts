// Timing assertions measure the code under test, not the other test files tap runs beside it:
// before one, wait (bounded) until the machine's CPUs are mostly idle.
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";

/** Idle and total jiffies over all CPUs (the first line of /proc/stat). */
function cpuTimes(): { idle: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return { idle: f[3] + f[4], total: f.reduce((a, b) => a + b, 0) };
}

/** Resolves true once a `windowMs` window passed with at least `idleShare` of all CPU time
 * idle, or false after `maxMs` (the caller then measures anyway and says so). */
export async function quietMachine(maxMs = 90_000, idleShare = 0.7, windowMs = 500): Promise<boolean> {
  const deadline = performance.now() + maxMs;
  let last = cpuTimes();
  while (performance.now() < deadline) {
    await delay(windowMs);
    const now = cpuTimes();
    const idle = (now.idle - last.idle) / Math.max(1, now.total - last.total);
    if (idle >= idleShare) return true;
    last = now;
  }
  return false;
}
