// scripts/make-keys.sh (`make keys`, and the Docker stack's set-up) on copies of the
// repo's example pairs: the configs it leaves load, name each other's public key, share one
// preshared key, and their key files are private; a second run keeps the keys.
import t from "tap";
import type { Test } from "tap";
import { spawnSync } from "node:child_process";
import { copyFileSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { encodeKey } from "../../src/wireguard/keys.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SCRIPT = join(ROOT, "scripts/make-keys.sh");

function makeKeys(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(SCRIPT, args, { encoding: "utf8", env: { ...process.env, UDPTUN: `${process.execPath} ${join(ROOT, "src/cli.ts")}` } });
}

/** The two configs load and each names the other's public key, with the same preshared key. */
function assertPair(t: Test, a: string, b: string): void {
  const ca = loadConfig(a, {});
  const cb = loadConfig(b, {});
  t.equal(ca.transport, "wireguard");
  t.same(ca.warnings, [], "no warning: the key files are private");
  t.equal(encodeKey(ca.peers[0].publicKey!), encodeKey(cb.publicKey!), "a's peer is b's public key");
  t.equal(encodeKey(cb.peers[0].publicKey!), encodeKey(ca.publicKey!), "b's peer is a's public key");
  t.ok(ca.peers[0].presharedKey, "a has a preshared key");
  t.same(ca.peers[0].presharedKey, cb.peers[0].presharedKey, "the same one as b");
}

const mode = (f: string) => statSync(f).mode & 0o777;

t.test("make keys: config/a.json and config/b.json filled in place, keys 0600 in a 0700 folder", (t) => {
  const dir = t.testdir({});
  for (const f of ["a.json", "b.json"]) copyFileSync(join(ROOT, "config", f), join(dir, f));
  const a = join(dir, "a.json");
  const b = join(dir, "b.json");
  t.throws(() => loadConfig(a, {}), /privateKeyFile/, "as committed, the example needs its keys");

  const r = makeKeys([a, b]);
  t.equal(r.status, 0, r.stderr);
  assertPair(t, a, b);
  for (const f of ["a.key", "b.key", "a-b.psk"]) t.equal(mode(join(dir, "keys", f)), 0o600, `${f} is 0600`);
  t.equal(mode(join(dir, "keys")), 0o700, "keys/ is 0700");
  const secrets = ["a.key", "b.key", "a-b.psk"].map((f) => readFileSync(join(dir, "keys", f), "utf8").trim());
  for (const s of secrets) t.notOk(r.stdout.includes(s) || r.stderr.includes(s), "no private or preshared key printed");
  t.match(readFileSync(a, "utf8"), /^ {6}"publicKey": "[A-Za-z0-9+/]{43}=",$/m, "the file keeps its layout");

  const before = readFileSync(a, "utf8");
  t.equal(makeKeys([a, b]).status, 0);
  t.equal(readFileSync(a, "utf8"), before, "a second run changes nothing");
  t.same(["a.key", "b.key", "a-b.psk"].map((f) => readFileSync(join(dir, "keys", f), "utf8").trim()), secrets, "and keeps the keys");
  t.end();
});

t.test("--out: the Docker peers' configs written beside their keys, the committed ones untouched", (t) => {
  const out = t.testdir({});
  const src = ["peer-a.json", "peer-b.json"].map((f) => join(ROOT, "docker", f));
  const committed = src.map((f) => readFileSync(f, "utf8"));
  const r = makeKeys(["--out", out, ...src]);
  t.equal(r.status, 0, r.stderr);
  assertPair(t, join(out, "peer-a/config.json"), join(out, "peer-b/config.json"));
  t.same(src.map((f) => readFileSync(f, "utf8")), committed, "docker/peer-*.json unchanged");
  t.equal(mode(join(out, "peer-a")), 0o700);
  t.equal(mode(join(out, "peer-a/private.key")), 0o600);
  t.end();
});

t.test("refused: a config with two peers, a preshared key named by one end only", (t) => {
  const dir = t.testdir({
    "two.json": JSON.stringify({ privateKeyFile: "x.key", peers: [{ name: "p" }, { name: "q" }] }),
    "one.json": JSON.stringify({ privateKeyFile: "y.key", peers: [{ name: "p", publicKey: "", presharedKeyFile: "p.psk" }] }),
    "other.json": JSON.stringify({ privateKeyFile: "z.key", peers: [{ name: "q", publicKey: "" }] }),
  });
  const two = makeKeys([join(dir, "two.json"), join(dir, "one.json")]);
  t.equal(two.status, 2);
  t.match(two.stderr, "two.json: peers: expected exactly one peer");
  const psk = makeKeys([join(dir, "one.json"), join(dir, "other.json")]);
  t.equal(psk.status, 2);
  t.match(psk.stderr, "presharedKeyFile: named by one config only");
  t.end();
});
