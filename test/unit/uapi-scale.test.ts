// Issue #12: 40 peers x 2,500 allowed IPs (100,000 prefixes) set and read back within a second,
// with room for the socket, `wg` and the data path. The stages (bench/lib/uapi-scale.ts) are
// bounded in CPU time, generously for a shared 2-core machine; measureScale() itself checks
// each stage's result, including that re-sending the configuration in force rebuilds nothing.
import t from "tap";
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { ScaleTimes } from "../../bench/lib/uapi-scale.ts";

/** The minimum over `runs` of each stage, measured in a process of its own, out of reach of
 * the test runner's coverage instrumentation (which would slow it several-fold). */
async function measure(runs: number): Promise<ScaleTimes> {
  const lib = new URL("../../bench/lib/uapi-scale.ts", import.meta.url).pathname;
  const script = `import { measureScale } from "${lib}"; console.log(JSON.stringify(await measureScale(${runs})));`;
  // Through env(1): tap's hook puts its coverage import back into NODE_OPTIONS of any child
  // it sees spawned, so the variable is dropped past its reach.
  const child = spawn("env", ["-u", "NODE_OPTIONS", "-u", "NODE_V8_COVERAGE", process.execPath, "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, "exit")) as [number];
  if (code !== 0) throw new Error(`the measurement exited with ${code}`);
  return JSON.parse(out) as ScaleTimes;
}

t.test("100,000 allowed IPs: parse and plan, a resend, and a get, each well within budget", async (t) => {
  const ms = await measure(5);
  const show = (n: number): string => `${Math.round(n)} ms CPU`;
  t.ok(ms.parse + ms.plan < 400, `setconf's parse + plan: ${show(ms.parse)} + ${show(ms.plan)}`);
  t.ok(ms.resync < 400, `syncconf of the same configuration (parse + plan, nothing changes): ${show(ms.resync)}`);
  t.ok(ms.get < 300, `the whole get reply: ${show(ms.get)}`);
});
