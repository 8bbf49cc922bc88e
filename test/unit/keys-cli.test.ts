// udptun genkey / genpsk / pubkey through the real CLI process, against the real `wg`.
import t from "tap";
import { spawnSync } from "node:child_process";
import type { SpawnSyncReturns } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";

const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;
const KEY_LINE = /^[A-Za-z0-9+/]{43}=\n$/;

const udptun = (args: string[], input?: string | Buffer): SpawnSyncReturns<string> =>
  spawnSync(process.execPath, [CLI, ...args], { input, encoding: "utf8" });
const wg = (args: string[], input?: string | Buffer): SpawnSyncReturns<string> => spawnSync("wg", args, { input, encoding: "utf8" });

if (wg(["--version"]).status !== 0) throw new Error("these tests compare with wg: apt-get install -y wireguard-tools");

t.test("genkey: a clamped key on one line, whose public key wg agrees with", (t) => {
  for (let i = 0; i < 3; i++) {
    const g = udptun(["genkey"]);
    t.equal(g.status, 0, g.stderr);
    t.match(g.stdout, KEY_LINE, "44 characters of base64 and a newline");
    const key = Buffer.from(g.stdout.trim(), "base64");
    t.equal(key[0] & 7, 0, "clamped: low 3 bits clear");
    t.equal(key[31] & 0xc0, 0x40, "clamped: top bit clear, next set");
    const ours = udptun(["pubkey"], g.stdout);
    const theirs = wg(["pubkey"], g.stdout);
    t.equal(theirs.status, 0, "wg takes our key");
    t.equal(ours.stdout, theirs.stdout, "udptun pubkey = wg pubkey");
  }
  t.not(udptun(["genkey"]).stdout, udptun(["genkey"]).stdout, "a new key each time");
  t.end();
});

t.test("wg genkey | udptun pubkey = wg pubkey", (t) => {
  for (let i = 0; i < 5; i++) {
    const key = wg(["genkey"]).stdout;
    const ours = udptun(["pubkey"], key);
    t.equal(ours.status, 0, ours.stderr);
    t.equal(ours.stdout, wg(["pubkey"], key).stdout);
    t.equal(ours.stderr, "");
  }
  // An unclamped key: both clamp before multiplying.
  const raw = Buffer.alloc(32, 0xff).toString("base64") + "\n";
  t.equal(udptun(["pubkey"], raw).stdout, wg(["pubkey"], raw).stdout, "unclamped input");
  t.end();
});

t.test("genpsk: 32 random bytes on one line", (t) => {
  const a = udptun(["genpsk"]);
  const b = udptun(["genpsk"]);
  t.equal(a.status, 0);
  t.match(a.stdout, KEY_LINE);
  t.not(a.stdout, b.stdout);
  t.equal(wg(["pubkey"], a.stdout).status, 0, "wg reads it as a key");
  t.end();
});

t.test("bad input: wg's exit code and wg's message, word for word", (t) => {
  const key = wg(["genkey"]).stdout.trim();
  const cases: [string, string | Buffer][] = [
    ["empty", ""],
    ["short", "bad\n"],
    ["43 characters", key.slice(0, 43) + "\n"],
    ["no padding", key.slice(0, 43) + "A\n"],
    ["leading spaces", `  ${key}\n`],
    ["trailing spaces and blank lines", `${key}  \n\n\t\n`],
    ["no newline", key],
    ["CRLF", `${key}\r\n`],
    ["a NUL after it", Buffer.concat([Buffer.from(key), Buffer.from([0, 10])])],
    ["a second line", `${key}\nextra\n`],
    ["a character stuck on", `${key}x\n`],
    ["two keys", `${key}${key}\n`],
    ["base64url", Buffer.alloc(32, 0xfb).toString("base64url") + "=\n"],
    ["a character outside base64", `${key.slice(0, 10)}!${key.slice(11)}\n`],
    ["unused bits set", `${key.slice(0, 42)}${key[42] === "/" ? "A" : String.fromCharCode(key.charCodeAt(42) + 1)}=\n`],
    ["hex", Buffer.from(key, "base64").toString("hex") + "\n"],
  ];
  for (const [what, input] of cases) {
    const ours = udptun(["pubkey"], input);
    const theirs = wg(["pubkey"], input);
    t.equal(ours.status, theirs.status, `${what}: exit ${theirs.status} as wg`);
    t.equal(ours.stdout, theirs.stdout, `${what}: same output`);
    t.equal(ours.stderr, theirs.stderr.replace(/^wg: /, "udptun: "), `${what}: ${JSON.stringify(theirs.stderr)}`);
    if (theirs.status !== 0 && typeof input === "string" && input.length >= 40) {
      t.notOk(ours.stderr.includes(input.trim()), `${what}: the input is not echoed`);
    }
  }
  t.end();
});

t.test("arguments: wg's usage line and exit code", (t) => {
  for (const cmd of ["genkey", "genpsk", "pubkey"]) {
    const ours = udptun([cmd, "extra"]);
    const theirs = wg([cmd, "extra"]);
    t.equal(ours.status, theirs.status, `${cmd} extra: exit ${theirs.status}`);
    t.equal(ours.stderr, theirs.stderr.replace("wg", "udptun"));
    t.equal(ours.stdout, "");
  }
  t.end();
});

t.test("genkey/genpsk to a file group or others can read: wg's warning, the key still written", (t) => {
  const dir = t.testdir({});
  const into = (cmd: string, name: string, mode: number) => {
    const file = join(dir, name);
    const fd = openSync(file, "w", mode);
    try {
      const r = spawnSync(process.execPath, [CLI, cmd], { stdio: ["ignore", fd, "pipe"], encoding: "utf8" });
      return { status: r.status, stderr: r.stderr, written: readFileSync(file, "utf8") };
    } finally {
      closeSync(fd);
    }
  };
  const wgInto = (name: string, mode: number) => {
    const file = join(dir, name);
    const fd = openSync(file, "w", mode);
    try {
      return spawnSync("wg", ["genkey"], { stdio: ["ignore", fd, "pipe"], encoding: "utf8" }).stderr;
    } finally {
      closeSync(fd);
    }
  };
  const world = "Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n";
  for (const cmd of ["genkey", "genpsk"]) {
    const open = into(cmd, `${cmd}-644`, 0o644);
    t.equal(open.status, 0);
    t.equal(open.stderr, world, `${cmd}: 0644 warned as wg warns`);
    t.match(open.written, KEY_LINE, "and the key is written anyway");
    t.equal(wgInto(`wg-${cmd}-644`, 0o644), world, "wg's words are the same");
    t.equal(into(cmd, `${cmd}-640`, 0o640).stderr, world.replace("world", "group"), `${cmd}: 0640 warned too (wg says nothing)`);
    const closed = into(cmd, `${cmd}-600`, 0o600);
    t.equal(closed.stderr, "", `${cmd}: 0600 is quiet`);
    t.match(closed.written, KEY_LINE);
  }
  t.end();
});
