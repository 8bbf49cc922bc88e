// promtool (Debian's prometheus package) linting a /metrics exposition.
import { run } from "./proc.ts";

/** What `promtool check metrics` prints about `exposition` (empty when clean), and its exit code. */
export async function promtoolCheck(exposition: string): Promise<{ code: number | null; findings: string }> {
  const r = await run("promtool", ["check", "metrics"], { input: exposition, timeoutMs: 30_000 });
  return { code: r.code, findings: (r.stdout + r.stderr).trim() };
}
