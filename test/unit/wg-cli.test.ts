// udptun-wg's command line and environment, as wireguard-go reads them.
import t from "tap";
import { badInterfaceName, parseArgs } from "../../src/wg-cli/args.ts";
import { readSettings, SettingsError } from "../../src/wg-cli/env.ts";

t.test("arguments: wireguard-go's forms, anything else is the usage", async (t) => {
  t.same(parseArgs(["wg0"]), { kind: "run", name: "wg0", foreground: false });
  t.same(parseArgs(["-f", "wg0"]), { kind: "run", name: "wg0", foreground: true });
  t.same(parseArgs(["--foreground", "wg0"]), { kind: "run", name: "wg0", foreground: true });
  t.same(parseArgs(["--version"]), { kind: "version" });
  for (const args of [[], ["-f"], ["--foreground"], ["wg0", "-f"], ["a", "b"], ["-f", "a", "b"], ["--version", "x"]]) {
    t.same(parseArgs(args), { kind: "usage" }, JSON.stringify(args));
  }
  t.equal(badInterfaceName("wg0"), null);
  t.equal(badInterfaceName("a".repeat(15)), null);
  t.match(badInterfaceName("a".repeat(16)), /"a{16}" is not valid/);
  t.match(badInterfaceName("wg/0"), /"wg\/0" is not valid/);
  t.match(badInterfaceName(".."), /is not valid/);
});

t.test("LOG_LEVEL: wireguard-go's names, pino's, the default error; output kept only when set and not silent", async (t) => {
  const level = (v?: string) => readSettings(v === undefined ? {} : { LOG_LEVEL: v });
  t.match(level(), { level: "error", keepOutput: false, warnings: [] });
  t.match(level("verbose"), { level: "debug", keepOutput: true });
  t.match(level("debug"), { level: "debug", keepOutput: true });
  t.match(level("error"), { level: "error", keepOutput: true });
  t.match(level("silent"), { level: "silent", keepOutput: false });
  t.match(level("info"), { level: "info", keepOutput: true });
  t.match(level("trace"), { level: "trace", keepOutput: true });
  const odd = level("LOUD");
  t.equal(odd.level, "error", "an unknown value falls back to error, as wireguard-go");
  t.match(odd.warnings[0], /LOG_LEVEL="LOUD" is not one of/);
});

t.test("WG_PROCESS_FOREGROUND and UDPTUN_METRICS", async (t) => {
  t.equal(readSettings({ WG_PROCESS_FOREGROUND: "1" }).foreground, true);
  t.equal(readSettings({ WG_PROCESS_FOREGROUND: "yes" }).foreground, false, "only 1, as wireguard-go");
  t.equal(readSettings({}).metrics, null, "no metrics unless asked");
  t.same(readSettings({ UDPTUN_METRICS: "127.0.0.1:9464" }).metrics, { host: "127.0.0.1", port: 9464 });
  t.same(readSettings({ UDPTUN_METRICS: "[::1]:9464" }).metrics, { host: "::1", port: 9464 });
  let caught: unknown;
  try { readSettings({ UDPTUN_METRICS: "9464" }); } catch (err) { caught = err; }
  t.ok(caught instanceof SettingsError, "a SettingsError (the CLI prints it and exits 1)");
  t.throws(() => readSettings({ UDPTUN_METRICS: "9464" }), /UDPTUN_METRICS="9464" is not HOST:PORT/);
});

