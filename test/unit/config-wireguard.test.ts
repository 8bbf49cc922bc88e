import t from "tap";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { DEFAULTS } from "../../src/config/schema.ts";
import { configSummary } from "../../src/config/summary.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { encodeKey, KEY_FORMAT_ERROR } from "../../src/wireguard/keys.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/x25519.ts";
import { throwsConfigError } from "./lib/config-errors.ts";

const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;
const hex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const b64 = (h: string) => Buffer.from(h, "hex").toString("base64");

// RFC 7748 section 6.1 (Alice and Bob): a private key and the public key it must give.
const ALICE_PRIV = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const BOB_PUB = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const PSK = "a1".repeat(32);
const CAROL_PUB = encodeKey(publicKeyOf(generatePrivateKey()));

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A WireGuard config: Bob with endpoint and preshared key, Carol with neither. */
const wgConfig = (): Json => ({
  transport: "wireguard",
  privateKey: b64(ALICE_PRIV),
  device: { name: "wg0", address: ["10.78.0.1/24", "fd78::1/64"] },
  listen: "[::]:51820",
  peers: [
    { name: "bob", publicKey: b64(BOB_PUB), presharedKey: b64(PSK), endpoint: "198.18.0.2:51820", allowedIps: ["10.78.0.2/32"], persistentKeepalive: 25 },
    { name: "carol", publicKey: CAROL_PUB, allowedIps: ["10.78.0.3/32", "fd78::3/128"] },
  ],
});

const plainConfig = (): Json => ({
  transport: "plain",
  device: { name: "tun9", address: "10.9.0.1/24" },
  peers: [{ name: "p", endpoint: "192.0.2.9:51820", allowedIps: "10.9.0.2/32" }],
});

/** Writes keys/a.key (Alice's, with `privMode`) and keys/a-b.psk under dir, and dir/wg.json:
 * wgConfig() with its secrets read from those files. Returns the three paths. */
function withKeyFiles(dir: string, privMode = 0o600): { file: string; priv: string; psk: string } {
  mkdirSync(join(dir, "keys"), { recursive: true });
  const priv = join(dir, "keys", "a.key");
  const psk = join(dir, "keys", "a-b.psk");
  writeFileSync(priv, `${b64(ALICE_PRIV)}\n`);
  writeFileSync(psk, `  ${b64(PSK)}  \n\n`);
  chmodSync(priv, privMode);
  chmodSync(psk, 0o600);
  const raw = wgConfig();
  delete raw.privateKey;
  raw.privateKeyFile = "keys/a.key";
  delete raw.peers[0].presharedKey;
  raw.peers[0].presharedKeyFile = "keys/a-b.psk";
  const file = join(dir, "wg.json");
  writeFileSync(file, JSON.stringify(raw));
  return { file, priv, psk };
}

/** Every spelling of the secrets a leak could take. */
const SECRETS = [b64(ALICE_PRIV), ALICE_PRIV, b64(PSK), PSK];

t.test("a WireGuard config: keys as 32 bytes, endpoint optional, keepalive 0 unless set", (t) => {
  const c = validateConfig(wgConfig());
  t.equal(c.transport, "wireguard");
  if (c.transport !== "wireguard") return t.end();
  t.same(c.privateKey, hex(ALICE_PRIV));
  t.same(c.publicKey, hex(ALICE_PUB), "the public key is derived (RFC 7748 vector)");
  t.ok(c.privateKey instanceof Uint8Array && c.privateKey.length === 32);
  const [bob, carol] = c.peers;
  t.same(bob.publicKey, hex(BOB_PUB));
  t.same(bob.presharedKey, hex(PSK));
  t.same(bob.endpoint, { host: "198.18.0.2", port: 51820 });
  t.equal(bob.persistentKeepalive, 25);
  t.equal(carol.endpoint, null, "no endpoint: reached once it contacts us");
  t.equal(carol.presharedKey, null);
  t.equal(carol.persistentKeepalive, 0, "0 = off by default");
  t.same(c.warnings, []);
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.peers) && Object.isFrozen(bob), "frozen as ever");
  for (const k of [0, 1, 65535]) {
    const raw = wgConfig();
    raw.peers[0].persistentKeepalive = k;
    t.equal(validateConfig(raw).peers[0].persistentKeepalive, k, `persistentKeepalive ${k}`);
  }
  const port0 = wgConfig();
  port0.listen = "0.0.0.0:0";
  t.equal(validateConfig(port0).listen.port, 0, "listen port 0 (the kernel picks) is fine with WireGuard: peers learn it by roaming");
  t.end();
});

t.test("transport: one default constant, wireguard; plain keeps its rules", (t) => {
  t.equal(DEFAULTS.transport, "wireguard");
  const absent = wgConfig();
  delete absent.transport;
  t.equal(validateConfig(absent).transport, "wireguard", "absent: the default");
  const c = validateConfig(plainConfig());
  t.equal(c.transport, "plain");
  t.equal(c.privateKey, null);
  t.equal(c.peers[0].publicKey, null);
  t.equal(validateConfig({ ...plainConfig(), transport: "plain" }).transport, "plain", "explicit");
  const keepalive = plainConfig();
  keepalive.peers[0].persistentKeepalive = 10;
  t.equal(validateConfig(keepalive).peers[0].persistentKeepalive, 10, "persistentKeepalive means the same for plain peers");
  throwsConfigError(t, () => validateConfig({ ...plainConfig(), transport: "WireGuard" }), "transport", ['"WireGuard"', "plain, wireguard"]);
  throwsConfigError(t, () => validateConfig({ ...plainConfig(), transport: 1 }), "transport", ["1"]);
  const noEndpoint = plainConfig();
  delete noEndpoint.peers[0].endpoint;
  throwsConfigError(t, () => validateConfig(noEndpoint), "peers[0].endpoint", ["undefined"]);
  throwsConfigError(t, () => validateConfig({ ...plainConfig(), listen: "0.0.0.0:0" }), "listen", ["port 0"]);
  t.end();
});

t.test("plain refuses keys, without showing them", (t) => {
  const secret = b64(ALICE_PRIV);
  for (const k of ["privateKey", "privateKeyFile"]) {
    throwsConfigError(t, () => validateConfig({ ...plainConfig(), [k]: secret }), k, ['"transport": "wireguard"'], [secret]);
  }
  for (const k of ["publicKey", "presharedKey", "presharedKeyFile"]) {
    const raw = plainConfig();
    raw.peers[0][k] = secret;
    throwsConfigError(t, () => validateConfig(raw), `peers[0].${k}`, ['"transport": "wireguard"'], [secret]);
  }
  t.end();
});

t.test("WireGuard errors name the field and never show a key", (t) => {
  const both = wgConfig();
  both.privateKeyFile = "a.key";
  throwsConfigError(t, () => validateConfig(both), "privateKey", ["privateKey or privateKeyFile, not both"], SECRETS);
  const neither = wgConfig();
  delete neither.privateKey;
  throwsConfigError(t, () => validateConfig(neither), "privateKey", ["missing", "privateKeyFile"]);

  const good = b64(ALICE_PRIV);
  const bad: [string, unknown][] = [
    ["43 characters", good.slice(0, 43)],
    ["no padding", good.slice(0, 43) + "A"],
    ["45 characters", good + "="],
    ["31 bytes", Buffer.alloc(31, 7).toString("base64")],
    ["33 bytes", Buffer.alloc(33, 7).toString("base64")],
    ["a character outside base64", good.slice(0, 10) + "!" + good.slice(11)],
    ["base64url", Buffer.from(hex("fb".repeat(32))).toString("base64url") + "="],
    ["unused low bits set", good.slice(0, 42) + String.fromCharCode(good.charCodeAt(42) + 1) + "="],
    ["hex instead of base64", ALICE_PRIV],
    ["a number", 42],
    ["empty", ""],
  ];
  for (const [what, value] of bad) {
    const raw = wgConfig();
    raw.privateKey = value;
    throwsConfigError(t, () => validateConfig(raw), "privateKey", [KEY_FORMAT_ERROR], typeof value === "string" && value ? [value] : []);
    const peer = wgConfig();
    peer.peers[1].publicKey = value;
    throwsConfigError(t, () => validateConfig(peer), "peers[1].publicKey", [KEY_FORMAT_ERROR], typeof value === "string" && value ? [value] : []);
    const psk = wgConfig();
    psk.peers[0].presharedKey = value;
    throwsConfigError(t, () => validateConfig(psk), "peers[0].presharedKey", [KEY_FORMAT_ERROR], typeof value === "string" && value ? [value] : []);
    t.comment(`refused: ${what}`);
  }
  const spaced = wgConfig();
  spaced.privateKey = ` ${b64(ALICE_PRIV)}\n`;
  t.same(validateConfig(spaced).privateKey, hex(ALICE_PRIV), "whitespace around a key is trimmed");

  const noKey = wgConfig();
  delete noKey.peers[1].publicKey;
  throwsConfigError(t, () => validateConfig(noKey), "peers[1].publicKey", ["missing"]);
  const same = wgConfig();
  same.peers[1].publicKey = b64(BOB_PUB);
  throwsConfigError(t, () => validateConfig(same), "peers[1].publicKey", ['peer "bob"'], [b64(BOB_PUB)]);
  const own = wgConfig();
  own.peers[1].publicKey = b64(ALICE_PUB);
  throwsConfigError(t, () => validateConfig(own), "peers[1].publicKey", ["our own public key"]);
  const lowOrder = wgConfig();
  lowOrder.peers[1].publicKey = Buffer.alloc(32).toString("base64");
  throwsConfigError(t, () => validateConfig(lowOrder), "peers[1].publicKey", ["low-order"]);
  const pubFile = wgConfig();
  pubFile.peers[1].publicKeyFile = "carol.pub";
  throwsConfigError(t, () => validateConfig(pubFile), "peers[1].publicKeyFile", ["unknown field"]);
  const pskBoth = wgConfig();
  pskBoth.peers[0].presharedKeyFile = "psk";
  throwsConfigError(t, () => validateConfig(pskBoth), "peers[0].presharedKey", ["not both"], SECRETS);

  for (const k of [-1, 65536, 1.5, "25", null]) {
    const raw = wgConfig();
    raw.peers[0].persistentKeepalive = k;
    throwsConfigError(t, () => validateConfig(raw), "peers[0].persistentKeepalive", ["from 0 to 65535", `got ${JSON.stringify(k)}`]);
  }
  t.end();
});

t.test("key files: read, trimmed, relative to the config file, group/other access warned about", (t) => {
  const dir = t.testdir({});
  const { file, priv } = withKeyFiles(dir);
  const raw = JSON.parse(readFileSync(file, "utf8")) as Json;
  const c = loadConfig(file, {});
  t.same(c.privateKey, hex(ALICE_PRIV), "relative to the config file's directory, not the working directory");
  t.same(c.peers[0].presharedKey, hex(PSK));
  t.same(c.warnings, [], "mode 0600: nothing to say");

  for (const mode of [0o640, 0o604, 0o644, 0o660]) {
    chmodSync(priv, mode);
    const w = loadConfig(file, {}).warnings;
    t.equal(w.length, 1, `mode 0${mode.toString(8)}: one warning`);
    t.match(w[0], `privateKeyFile: ${JSON.stringify(priv)} has mode 0${mode.toString(8)}`);
    t.match(w[0], "chmod 600");
  }
  chmodSync(priv, 0o400);
  t.same(loadConfig(file, {}).warnings, [], "0400 is fine too");

  const abs = wgConfig();
  delete abs.privateKey;
  abs.privateKeyFile = priv;
  t.same(validateConfig(abs, { baseDir: "/nonexistent" }).privateKey, hex(ALICE_PRIV), "an absolute path is taken as it is");

  const missing = { ...raw, privateKeyFile: "keys/none.key" };
  throwsConfigError(t, () => validateConfig(missing, { baseDir: dir }), "privateKeyFile", [JSON.stringify(join(dir, "keys/none.key")), "ENOENT"]);
  const notKey = join(dir, "keys", "not.key");
  writeFileSync(notKey, `${PSK}\n`, { mode: 0o600 });
  throwsConfigError(t, () => validateConfig({ ...raw, privateKeyFile: notKey }), "privateKeyFile", [JSON.stringify(notKey), KEY_FORMAT_ERROR], [PSK]);
  const two = join(dir, "keys", "two.key");
  writeFileSync(two, `${b64(ALICE_PRIV)}\n${b64(PSK)}\n`, { mode: 0o600 });
  throwsConfigError(t, () => validateConfig({ ...raw, privateKeyFile: two }), "privateKeyFile", ["nothing else"], SECRETS);
  const empty = join(dir, "keys", "empty.key");
  writeFileSync(empty, "", { mode: 0o600 });
  throwsConfigError(t, () => validateConfig({ ...raw, privateKeyFile: empty }), "privateKeyFile", [KEY_FORMAT_ERROR]);
  throwsConfigError(t, () => validateConfig({ ...raw, privateKeyFile: "/dev/zero" }), "privateKeyFile", ['"/dev/zero"', KEY_FORMAT_ERROR]);
  throwsConfigError(t, () => validateConfig({ ...raw, privateKeyFile: dir }), "privateKeyFile", ["cannot read", "EISDIR"]);
  throwsConfigError(t, () => validateConfig({ ...raw, privateKeyFile: 7 }), "privateKeyFile", ["expected a file path", "7"]);
  t.end();
});

t.test("a config file with a key written in it gets the same mode warning", (t) => {
  const dir = t.testdir({});
  const file = join(dir, "inline.json");
  writeFileSync(file, JSON.stringify(wgConfig()));
  chmodSync(file, 0o644);
  const w = loadConfig(file, {}).warnings;
  t.equal(w.length, 1);
  t.match(w[0], `--config: ${JSON.stringify(file)} has mode 0644`);
  for (const s of SECRETS) t.notOk(w[0].includes(s));
  chmodSync(file, 0o600);
  t.same(loadConfig(file, {}).warnings, []);
  const pub = join(dir, "public-only.json");
  const raw = wgConfig();
  delete raw.privateKey;
  delete raw.peers[0].presharedKey;
  raw.privateKeyFile = "a.key";
  writeFileSync(join(dir, "a.key"), b64(ALICE_PRIV), { mode: 0o600 });
  chmodSync(join(dir, "a.key"), 0o600);
  writeFileSync(pub, JSON.stringify(raw));
  chmodSync(pub, 0o644);
  t.same(loadConfig(pub, {}).warnings, [], "public keys only: a readable config is fine");
  t.end();
});

t.test("the summary shows public keys, never private or preshared ones", (t) => {
  const s = configSummary(validateConfig(wgConfig())) as Json;
  t.equal(s.transport, "wireguard");
  t.equal(s.publicKey, b64(ALICE_PUB));
  t.same(s.peers.map((p: Json) => [p.name, p.publicKey, p.presharedKey, p.endpoint, p.persistentKeepalive]), [
    ["bob", b64(BOB_PUB), true, "198.18.0.2:51820", 25],
    ["carol", CAROL_PUB, false, null, undefined],
  ]);
  const text = JSON.stringify(s);
  for (const secret of SECRETS) t.notOk(text.includes(secret), `summary free of ${secret.slice(0, 6)}...`);
  t.notOk(text.includes("privateKey"), "not even the field name");
  const plain = configSummary(validateConfig(plainConfig())) as Json;
  t.equal(plain.publicKey, undefined, "plain: no key fields at all");
  t.equal(plain.peers[0].publicKey, undefined);
  t.end();
});

t.test("udptun check (real process): public keys out, secrets nowhere, warnings on stderr", (t) => {
  const { file, priv: keyFile } = withKeyFiles(t.testdir({}), 0o644);
  const check = (...args: string[]) => spawnSync(process.execPath, [CLI, "check", "--config", file, ...args], { encoding: "utf8", env: { ...process.env, UDPTUN_CONFIG: "" } });
  const r = check();
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, "config ok");
  const out = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf("}") + 1));
  t.equal(out.publicKey, b64(ALICE_PUB));
  t.equal(out.metrics, "127.0.0.1:9464", "metrics default as for any JSON config");
  t.match(r.stderr, `udptun: warning: privateKeyFile: ${JSON.stringify(keyFile)} has mode 0644`);
  for (const secret of SECRETS) {
    t.notOk(r.stdout.includes(secret) || r.stderr.includes(secret), `${secret.slice(0, 6)}... nowhere in check's output`);
    t.notOk(r.stdout.toLowerCase().includes(secret.toLowerCase()), "nor in another case");
  }

  const m = check("--metrics", "127.0.0.2:9999");
  t.equal(m.status, 0, m.stderr);
  t.equal(JSON.parse(m.stdout.slice(0, m.stdout.lastIndexOf("}") + 1)).metrics, "127.0.0.2:9999", "--metrics overrides the file");
  const eq = check("--metrics=[::1]:9000");
  t.equal(JSON.parse(eq.stdout.slice(0, eq.stdout.lastIndexOf("}") + 1)).metrics, "[::1]:9000", "--metrics=HOST:PORT");
  const bad = check("--metrics", "127.0.0.1");
  t.equal(bad.status, 2);
  t.match(bad.stderr, 'udptun: invalid configuration: --metrics: "127.0.0.1" is not host:port');

  // run reads the same keys; a bad --metrics stops it before it touches the system (a valid
  // config would start a real tunnel here, outside any namespace).
  const run = spawnSync(process.execPath, [CLI, "run", "--config", file, "--metrics", "127.0.0.1"], { encoding: "utf8", timeout: 30_000 });
  t.equal(run.status, 2, "run refuses the bad --metrics");
  t.match(run.stderr, 'udptun: invalid configuration: --metrics: "127.0.0.1" is not host:port');
  for (const secret of SECRETS) t.notOk(run.stderr.includes(secret) || run.stdout.includes(secret));
  t.end();
});

t.test("config/wireguard.json is valid once its key files exist", (t) => {
  const dir = t.testdir({});
  const text = readFileSync(new URL("../../config/wireguard.json", import.meta.url), "utf8");
  const raw = JSON.parse(text) as Json;
  t.equal(raw.privateKey, undefined, "no private key in the repo's example");
  withKeyFiles(dir); // the example names the same two files
  writeFileSync(join(dir, "wireguard.json"), text);
  const c = loadConfig(join(dir, "wireguard.json"), {});
  t.equal(c.transport, "wireguard");
  t.equal(c.peers.length, 2);
  t.equal(c.peers[1].endpoint, null, "the second peer shows an endpoint-less peer");
  t.equal(c.peers[0].persistentKeepalive, 25);
  t.end();
});
