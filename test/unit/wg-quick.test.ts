import t from "tap";
import type { Test } from "tap";
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { configSummary } from "../../src/config/summary.ts";
import { validateConfig } from "../../src/config/validate.ts";
import { interfaceNameOf } from "../../src/config/wg-quick.ts";
import { encodeKey, KEY_FORMAT_ERROR } from "../../src/wireguard/keys.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/x25519.ts";
import { throwsConfigError } from "./lib/config-errors.ts";

const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;
const PRIV = encodeKey(generatePrivateKey());
const PUB = encodeKey(publicKeyOf(Buffer.from(PRIV, "base64")));
const PEER1 = encodeKey(publicKeyOf(generatePrivateKey()));
const PEER2 = encodeKey(publicKeyOf(generatePrivateKey()));
const PEER3 = encodeKey(publicKeyOf(generatePrivateKey()));
const PSK = encodeKey(generatePrivateKey());
const SECRETS = [PRIV, Buffer.from(PRIV, "base64").toString("hex"), PSK, Buffer.from(PSK, "base64").toString("hex")];

/** A file as people write them: comments, blank lines, odd case and spacing, repeated
 * Address and AllowedIPs, comma lists, IPv6, a named peer, an endpoint-less one, wg-quick keys. */
const GOOD = `# wg0: the office end
[Interface]
PrivateKey = ${PRIV}
ListenPort = 51820
Address = 10.0.0.1/24, fd00::1/64
address=10.0.1.1/24
MTU = 1380
DNS = 1.1.1.1, example.com
PostUp = iptables -A FORWARD -i %i -j ACCEPT; ip6tables -A FORWARD -i %i -j ACCEPT

[Peer]
# Name = laptop
PublicKey = ${PEER1}
PresharedKey = ${PSK}
AllowedIPs = 10.0.0.2/32, fd00::2/128
AllowedIPs = 192.168.50.0/24
Endpoint = [2001:db8::2]:51820
PersistentKeepalive = 25

  [ peer ]
publickey=${PEER2}
ALLOWEDIPS = 10.0.0.3/32   # the phone
PersistentKeepalive = off

[Peer]
PublicKey = ${PEER3}
AllowedIPs = 10.0.0.4/32
Endpoint = vpn.example.net:51820
`;

/** The same setup written as JSON: the two must validate to the same config. */
const GOOD_JSON = {
  transport: "wireguard",
  privateKey: PRIV,
  device: { name: "wg0", address: ["10.0.0.1/24", "fd00::1/64", "10.0.1.1/24"], mtu: 1380 },
  listen: "[::]:51820",
  peers: [
    { name: "laptop", publicKey: PEER1, presharedKey: PSK, allowedIps: ["10.0.0.2/32", "fd00::2/128", "192.168.50.0/24"], endpoint: "[2001:db8::2]:51820", persistentKeepalive: 25 },
    { name: "peer2", publicKey: PEER2, allowedIps: ["10.0.0.3/32"], persistentKeepalive: 0 },
    { name: "peer3", publicKey: PEER3, allowedIps: ["10.0.0.4/32"], endpoint: "vpn.example.net:51820" },
  ],
};

function write(dir: string, name: string, text: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

/** Everything in a config but its warnings, byte arrays (keys, addresses) as lists, for comparison. */
const comparable = (c: Config) => JSON.stringify({ ...c, warnings: [] }, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v));

t.test("a good file reads into the same config as its JSON twin", (t) => {
  const dir = t.testdir({});
  const file = write(dir, "wg0.conf", GOOD);
  const c = loadConfig(file, {});
  t.equal(comparable(c), comparable(validateConfig(GOOD_JSON)), "same validated config");
  t.equal(c.transport, "wireguard");
  t.equal(c.device.name, "wg0", "named after the file");
  t.same(c.peers.map((p) => p.name), ["laptop", "peer2", "peer3"], "# Name = x, else peerN by position");
  t.equal(c.peers[1].endpoint, null);
  t.same(c.peers[2].endpoint, { host: "vpn.example.net", port: 51820 });
  t.equal(c.listen.host, "::", "dual stack: a peer has an IPv6 endpoint");
  t.equal(c.listen.port, 51820);
  t.equal(c.metrics.port, 9464, "metrics default as for JSON");
  t.same(c.warnings, [
    `${file}:8: DNS: a wg-quick key udptun does not apply; ignored`,
    `${file}:9: PostUp: a wg-quick key udptun does not apply; ignored`,
  ]);
  t.end();
});

t.test("CRLF line endings, no ListenPort, IPv4 only", (t) => {
  const dir = t.testdir({});
  const text = `[Interface]\r\nPrivateKey = ${PRIV}\r\nAddress = 10.0.0.1/24\r\n\r\n[Peer]\r\nPublicKey = ${PEER1}\r\nAllowedIPs = 0.0.0.0/0\r\nEndpoint = 192.0.2.1:51820\r\n`;
  const c = loadConfig(write(dir, "office-vpn.conf", text), {});
  t.equal(c.device.name, "office-vpn");
  t.same({ host: c.listen.host, port: c.listen.port }, { host: "0.0.0.0", port: 0 }, "ListenPort absent: a random port, as wg-quick");
  t.equal(c.device.mtu, 1420, "MTU absent: the JSON default");
  t.same(c.warnings, []);
  t.end();
});

t.test("every key wg-quick knows but udptun does not apply is a warning naming line and key", (t) => {
  const dir = t.testdir({});
  const ignored = ["DNS = 1.1.1.1", "Table = off", "PreUp = true", "PostUp = true", "PreDown = true", "PostDown = true", "SaveConfig = true", "FwMark = 0x1234"];
  const text = `[Interface]\nPrivateKey = ${PRIV}\nAddress = 10.0.0.1/24\n${ignored.join("\n")}\nMystery = 1\n[Peer]\nPublicKey = ${PEER1}\nAllowedIPs = 10.0.0.2/32\nEndpint = 192.0.2.1:51820\n`;
  const file = write(dir, "wg1.conf", text);
  const w = loadConfig(file, {}).warnings;
  t.equal(w.length, ignored.length + 2);
  ignored.forEach((line, i) => t.equal(w[i], `${file}:${i + 4}: ${line.split(" ")[0]}: a wg-quick key udptun does not apply; ignored`));
  t.equal(w[ignored.length], `${file}:12: Mystery: not a key udptun knows in [Interface]; ignored`);
  t.equal(w[ignored.length + 1], `${file}:16: Endpint: not a key udptun knows in [Peer]; ignored`, "a typo is said, with its line");

  const pasted = write(dir, "wg3.conf", body(PRIV));
  const pw = loadConfig(pasted, {}).warnings;
  t.same(pw, [`${pasted}:4: not a key udptun knows (the line is not shown); ignored`], "a key pasted on a line of its own is not echoed");

  const again = write(dir, "wg2.conf", `[Interface]\nPrivateKey = ${PSK}\nPrivateKey = ${PRIV}\nAddress = 10.0.0.1/24\n[Peer]\nPublicKey = ${PEER1}\nAllowedIPs = 10.0.0.2/32\n`);
  const c = loadConfig(again, {});
  t.same(c.privateKey, Buffer.from(PRIV, "base64"), "a repeated key: the last wins, as in wg");
  t.same(c.warnings, [`${again}:3: PrivateKey: repeated; this value replaces line 2's (as wg does)`]);
  t.end();
});

/** A minimal good file with `line` spliced in before the [Peer] section ("peer" puts it in the peer). */
const body = (extraInterface: string, extraPeer = "", peerKey = PEER1) =>
  `[Interface]\nPrivateKey = ${PRIV}\nAddress = 10.0.0.1/24\n${extraInterface}\n[Peer]\nPublicKey = ${peerKey}\nAllowedIPs = 10.0.0.2/32\n${extraPeer}\n`;

t.test("errors name the file, the line and the key (and the value, unless a secret)", (t) => {
  const dir = t.testdir({});
  const check = (t: Test, name: string, text: string, line: number, key: string, mentions: string[] = [], hides: string[] = SECRETS) => {
    const file = write(dir, name, text);
    throwsConfigError(t, () => loadConfig(file, {}), `${file}:${line}: ${key}`, mentions, hides);
  };
  t.test("values the parser checks", (t) => {
    check(t, "lp.conf", body("ListenPort = 70000"), 4, "ListenPort", ['"70000"', "0-65535"]);
    check(t, "lp2.conf", body("ListenPort = http"), 4, "ListenPort", ['"http"']);
    check(t, "mtu.conf", body("MTU = 1400b"), 4, "MTU", ['"1400b"']);
    check(t, "ka.conf", body("", "PersistentKeepalive = often"), 8, "PersistentKeepalive", ['"often"', "neither 0/off nor 1-65535"]);
    check(t, "empty.conf", body("MTU ="), 4, "MTU", ["no value"]);
    check(t, "list.conf", body("", "AllowedIPs = 10.0.0.5/32,,10.0.0.6/32"), 8, "AllowedIPs", ["empty entry"]);
    check(t, "noeq.conf", body("MTU 1400"), 4, "MTU 1400", ["line unrecognized"]);
    const bare = write(dir, "bare.conf", body(`${PRIV.slice(0, 43)}`));
    throwsConfigError(t, () => loadConfig(bare, {}), `${bare}:4`, ["line unrecognized", "not shown"], [...SECRETS, PRIV.slice(0, 43)]);
    check(t, "badsection.conf", body(`[${PSK}]`), 4, "[?]", ["unknown section", "not shown"]);
    check(t, "section.conf", body("[Interfaces]"), 4, "[Interfaces]", ["unknown section"]);
    check(t, "outside.conf", `MTU = 1400\n${body("")}`, 1, "MTU", ["outside a section"]);
    t.end();
  });
  t.test("values validation checks, restated at their line", (t) => {
    check(t, "addr.conf", body("Address = fd00::1/64, 10.0.0.300/24"), 4, "Address", ['"10.0.0.300/24"']);
    check(t, "addr2.conf", body("Address = 10.0.1.1"), 4, "Address", ['"10.0.1.1"', "prefix length"]);
    check(t, "mtu2.conf", body("MTU = 100"), 4, "MTU", ["from 576 to 9000", "got 100"]);
    check(t, "mtu6.conf", body("Address = fd00::1/64\nMTU = 1200"), 5, "MTU", ["1280"]);
    check(t, "ka2.conf", body("", "PersistentKeepalive = 65536"), 8, "PersistentKeepalive", ["got 65536"]);
    check(t, "ep.conf", body("", "Endpoint = 192.0.2.1"), 8, "Endpoint", ['"192.0.2.1"', "host:port"]);
    check(t, "ep2.conf", body("", "Endpoint = 192.0.2.1:0"), 8, "Endpoint", ["port 0"]);
    check(t, "ip.conf", body("", "AllowedIPs = 10.0.0.0/33"), 8, "AllowedIPs", ['"10.0.0.0/33"']);
    check(t, "route.conf", body("", `[Peer]\nPublicKey = ${PEER2}\nAllowedIPs = 10.0.0.9/32, 10.0.0.2/32`), 10, "AllowedIPs", ['"10.0.0.2/32"', 'already routed to peer "peer1"']);
    check(t, "name.conf", body("", `[Peer]\n# Name = peer1\nPublicKey = ${PEER2}\nAllowedIPs = 10.0.0.9/32`), 9, "Name", ['"peer1"', "earlier peer"]);
    check(t, "name2.conf", body("", "# Name = my laptop"), 8, "Name", ['"my laptop"']);
    t.end();
  });
  t.test("keys: named, never shown", (t) => {
    check(t, "priv.conf", body("").replace(PRIV, PRIV.slice(0, 43)), 2, "PrivateKey", [KEY_FORMAT_ERROR], [...SECRETS, PRIV.slice(0, 43)]);
    check(t, "pub.conf", body("", "", PEER1.slice(1) + "A"), 6, "PublicKey", [KEY_FORMAT_ERROR], [PEER1.slice(1)]);
    check(t, "psk.conf", body("", `PresharedKey = ${PSK.slice(0, 40)}`), 8, "PresharedKey", [KEY_FORMAT_ERROR], [...SECRETS, PSK.slice(0, 40)]);
    check(t, "dup.conf", body("", `[Peer]\nPublicKey = ${PEER1}\nAllowedIPs = 10.0.0.9/32`), 9, "PublicKey", ['peer "peer1"'], [PEER1]);
    check(t, "own.conf", body("", "", PUB), 6, "PublicKey", ["our own public key"]);
    t.end();
  });
  t.test("what is missing: the section's line", (t) => {
    const file = (name: string, text: string) => write(dir, name, text);
    const noIface = file("noiface.conf", `[Peer]\nPublicKey = ${PEER1}\nAllowedIPs = 10.0.0.2/32\n`);
    throwsConfigError(t, () => loadConfig(noIface, {}), noIface, ["no [Interface] section"]);
    check(t, "nopriv.conf", body("").replace(`PrivateKey = ${PRIV}`, "# no key"), 1, "[Interface]", ["PrivateKey missing"]);
    check(t, "noaddr.conf", body("").replace("Address = 10.0.0.1/24", ""), 1, "[Interface]", ["Address missing"]);
    const noPeer = file("nopeer.conf", `[Interface]\nPrivateKey = ${PRIV}\nAddress = 10.0.0.1/24\n`);
    throwsConfigError(t, () => loadConfig(noPeer, {}), noPeer, ["no [Peer] section"], SECRETS);
    check(t, "nopub.conf", body("", `[Peer]\nAllowedIPs = 10.0.0.9/32`), 8, "[Peer]", ["PublicKey missing"]);
    check(t, "noallowed.conf", body("", `[Peer]\nPublicKey = ${PEER2}`), 8, "[Peer]", ["AllowedIPs missing"]);
    t.end();
  });
  t.end();
});

t.test("the device is named after the file, as wg-quick names it", (t) => {
  for (const [file, name] of [["wg0.conf", "wg0"], ["/etc/wireguard/office_1.conf", "office_1"], ["a=b+c.d-e.conf", "a=b+c.d-e"], ["abcdefghijklmno.conf", "abcdefghijklmno"]]) {
    t.equal(interfaceNameOf(file), name, file);
  }
  for (const file of ["abcdefghijklmnop.conf", "wg 0.conf", ".conf", "wg0.conf.bak", "wg:0.conf", "...conf"]) {
    throwsConfigError(t, () => interfaceNameOf(file), "--config", [JSON.stringify(file), "followed by .conf"]);
  }
  t.end();
});

t.test("a file holding keys that group or others can read: warned, not fatal", (t) => {
  const dir = t.testdir({});
  const file = write(dir, "wg0.conf", GOOD, 0o644);
  const w = loadConfig(file, {}).warnings;
  t.ok(w.includes(`--config: ${JSON.stringify(file)} has mode 0644: group or others can read the key in it (chmod 600 it)`), w.join("\n"));
  chmodSync(file, 0o600);
  t.notOk(loadConfig(file, {}).warnings.some((x) => x.startsWith("--config")));
  t.end();
});

t.test("overrides: UDPTUN_LOG_LEVEL and --metrics apply to wg-quick files too", (t) => {
  const dir = t.testdir({});
  const file = write(dir, "wg0.conf", GOOD);
  const c = loadConfig(file, { UDPTUN_LOG_LEVEL: "debug" }, { metrics: "[::1]:9100" });
  t.equal(c.log.level, "debug");
  t.same(c.metrics, { host: "::1", port: 9100 });
  throwsConfigError(t, () => loadConfig(file, {}, { metrics: "nope" }), "--metrics", ['"nope"']);
  t.end();
});

t.test("udptun check --config wg0.conf (real process)", (t) => {
  const dir = t.testdir({});
  const file = write(dir, "wg0.conf", GOOD, 0o640);
  const r = spawnSync(process.execPath, [CLI, "check", "--config", file, "--metrics", "127.0.0.1:9200"], { encoding: "utf8" });
  t.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout.slice(0, r.stdout.lastIndexOf("}") + 1));
  t.same(summary, JSON.parse(JSON.stringify(configSummary(loadConfig(file, {}, { metrics: "127.0.0.1:9200" })))));
  t.equal(summary.publicKey, PUB);
  t.match(r.stderr, `udptun: warning: ${file}:8: DNS: a wg-quick key udptun does not apply; ignored`);
  t.match(r.stderr, "has mode 0640");
  for (const s of SECRETS) t.notOk(r.stdout.includes(s) || r.stderr.includes(s), "no secret in check's output");

  const bad = write(dir, "wg1.conf", GOOD.replace("MTU = 1380", "MTU = 99999"));
  const e = spawnSync(process.execPath, [CLI, "check", "--config", bad], { encoding: "utf8" });
  t.equal(e.status, 2);
  t.match(e.stderr, `udptun: invalid configuration: ${bad}:7: MTU: expected an integer from 576 to 9000, got 99999`);
  t.end();
});
