import t from "tap";
import fc from "fast-check";
import { encodeEndpoint, formatEndpoint, formatPrefix, networkOf, parseIp, parsePrefix } from "../../src/net/address.ts";
import { ERRNO_INVALID, ERRNO_PROTOCOL, UapiError } from "../../src/uapi/errors.ts";
import { formatHexKey, parseSet, SetParser } from "../../src/uapi/protocol.ts";
import { serializeGet, serializeGetText } from "../../src/uapi/serialize.ts";
import type { DeviceState, PeerOperation } from "../../src/uapi/target.ts";

const K1 = "a1".repeat(32);
const K2 = "b2".repeat(32);
const ZERO = "00".repeat(32);

function errnoOf(text: string): number | null {
  try {
    parseSet(text);
    return null;
  } catch (err) {
    if (err instanceof UapiError) return err.errno;
    throw err;
  }
}

t.test("every device key parses into its operation", (t) => {
  const r = parseSet(`private_key=${K1}\nlisten_port=51820\nfwmark=4294967295\nreplace_peers=true\n`);
  t.same(r.peers, []);
  t.equal(r.device.length, 4);
  t.same(r.device[0], { op: "private_key", key: new Uint8Array(32).fill(0xa1) });
  t.same(r.device[1], { op: "listen_port", port: 51820 });
  t.same(r.device[2], { op: "fwmark", mark: 0xffffffff });
  t.same(r.device[3], { op: "replace_peers" });
  t.same(parseSet(`private_key=${ZERO}\nlisten_port=0\nfwmark=0\nlisten_port=00080\n`).device, [
    { op: "private_key", key: null },
    { op: "listen_port", port: 0 },
    { op: "fwmark", mark: 0 },
    { op: "listen_port", port: 80 }, // leading zeros, as Go's ParseUint takes them
  ]);
  t.end();
});

t.test("every peer key parses into its operation, in order, per section", (t) => {
  const r = parseSet(
    [
      `public_key=${K1}`,
      "update_only=true",
      `preshared_key=${K2}`,
      "endpoint=192.0.2.1:51820",
      "persistent_keepalive_interval=25",
      "replace_allowed_ips=true",
      "allowed_ip=10.1.2.3/8",
      "allowed_ip=-fd00::1/64",
      "protocol_version=1",
      `public_key=${K2}`,
      "remove=true",
      `preshared_key=${ZERO}`,
      "endpoint=[fd00::2]:7",
      "",
      "ignored=after the blank line",
    ].join("\n"),
  );
  t.same(r.device, []);
  t.equal(r.peers.length, 2);
  t.equal(formatHexKey(r.peers[0].publicKey), K1);
  const ops = r.peers[0].operations;
  t.same(
    ops.map((o) => o.op),
    ["update_only", "preshared_key", "endpoint", "persistent_keepalive_interval", "replace_allowed_ips", "allowed_ip", "allowed_ip", "protocol_version"],
  );
  t.same(ops[1], { op: "preshared_key", key: new Uint8Array(32).fill(0xb2) });
  t.equal(formatEndpoint((ops[2] as Extract<PeerOperation, { op: "endpoint" }>).endpoint), "192.0.2.1:51820");
  t.same(ops[3], { op: "persistent_keepalive_interval", seconds: 25 });
  const a = ops[5] as Extract<PeerOperation, { op: "allowed_ip" }>;
  const b = ops[6] as Extract<PeerOperation, { op: "allowed_ip" }>;
  t.same([formatPrefix(a.prefix), a.remove], ["10.0.0.0/8", false], "masked to its network, as the trie stores it");
  t.same([formatPrefix(b.prefix), b.remove], ["fd00::/64", true], "a leading - removes");
  t.same(ops[7], { op: "protocol_version", version: 1 });
  t.same(r.peers[1].operations.map((o) => o.op), ["remove", "preshared_key", "endpoint"]);
  t.same(r.peers[1].operations[1], { op: "preshared_key", key: null }, "zero preshared key means none");
  t.equal(formatEndpoint((r.peers[1].operations[2] as Extract<PeerOperation, { op: "endpoint" }>).endpoint), "[fd00::2]:7");
  t.end();
});

t.test("endpoints: ip:port, [ipv6]:port; a v4-mapped address is an IPv4 peer", (t) => {
  const ep = (v: string): string => formatEndpoint((parseSet(`public_key=${K1}\nendpoint=${v}\n`).peers[0].operations[0] as { endpoint: Uint8Array }).endpoint);
  t.equal(ep("127.0.0.1:0"), "127.0.0.1:0");
  t.equal(ep("[::1]:65535"), "[::1]:65535");
  t.equal(ep("[::ffff:192.0.2.7]:9"), "192.0.2.7:9");
  t.end();
});

t.test("malformed values: EINVAL, and the message names the key and the value (a secret key's length only)", (t) => {
  const bad: [string, string][] = [
    ["private_key", K1.toUpperCase()],
    ["private_key", K1.slice(2)],
    ["private_key", `${K1}00`],
    ["private_key", "zz".repeat(32)],
    ["private_key", ""],
    ["listen_port", "65536"],
    ["listen_port", "-1"],
    ["listen_port", "+1"],
    ["listen_port", "0x10"],
    ["listen_port", ""],
    ["fwmark", "4294967296"],
    ["fwmark", "0x10"],
    ["replace_peers", "false"],
    ["replace_peers", "1"],
  ];
  for (const [key, value] of bad) {
    try {
      parseSet(`${key}=${value}\n`);
      t.fail(`${key}=${value} accepted`);
    } catch (err) {
      t.equal((err as UapiError).errno, ERRNO_INVALID, `${key}=${value}`);
      const shown = key === "private_key" ? `(${value.length} characters, not shown)` : JSON.stringify(value);
      t.match((err as Error).message, `${key}=${shown}`);
    }
  }
  const badPeer: [string, string][] = [
    ["public_key", "b2".repeat(31)],
    ["remove", "yes"],
    ["update_only", "false"],
    ["replace_allowed_ips", "TRUE"],
    ["preshared_key", "b2".repeat(33)],
    ["endpoint", "192.0.2.1"],
    ["endpoint", "192.0.2.1:65536"],
    ["endpoint", "::1:80"],
    ["endpoint", "[192.0.2.1]:80"],
    ["endpoint", "example.com:80"],
    ["endpoint", "[fe80::1%eth0]:80"],
    ["endpoint", "192.0.2.256:80"],
    ["persistent_keepalive_interval", "65536"],
    ["persistent_keepalive_interval", "off"],
    ["allowed_ip", "10.0.0.1"],
    ["allowed_ip", "10.0.0.0/33"],
    ["allowed_ip", "10.0.0.0/08"],
    ["allowed_ip", "fd00::/129"],
    ["allowed_ip", "010.0.0.0/8"],
    ["allowed_ip", "fe80::1%eth0/64"],
    ["allowed_ip", "--10.0.0.0/8"],
    ["allowed_ip", ""],
    ["protocol_version", "2"],
    ["protocol_version", "01"],
  ];
  for (const [key, value] of badPeer) {
    const lines = key === "public_key" ? `public_key=${value}\n` : `public_key=${K1}\n${key}=${value}\n`;
    t.equal(errnoOf(lines), ERRNO_INVALID, `${key}=${value}`);
  }
  t.end();
});

t.test("unknown keys and keys in the wrong section: EINVAL; a line without = : EPROTO", (t) => {
  t.equal(errnoOf("private_kee=1\n"), ERRNO_INVALID, "unknown device key");
  t.equal(errnoOf(`public_key=${K1}\nbogus=1\n`), ERRNO_INVALID, "unknown peer key");
  t.equal(errnoOf("endpoint=192.0.2.1:1\n"), ERRNO_INVALID, "a peer key before any public_key");
  t.equal(errnoOf("allowed_ip=10.0.0.0/8\n"), ERRNO_INVALID, "allowed_ip before any public_key");
  t.equal(errnoOf(`public_key=${K1}\nlisten_port=1\n`), ERRNO_INVALID, "a device key after a public_key");
  t.equal(errnoOf(`public_key=${K1}\nprivate_key=${K2}\n`), ERRNO_INVALID, "private_key after a public_key");
  t.equal(errnoOf(`public_key=${K1}\nreplace_peers=true\n`), ERRNO_INVALID, "replace_peers after a public_key");
  t.equal(errnoOf("listen_port\n"), ERRNO_PROTOCOL, "no =");
  t.equal(errnoOf(`public_key=${K1}\nremove\n`), ERRNO_PROTOCOL, "no = in a peer section");
  t.equal(errnoOf("get=1\n"), ERRNO_INVALID, "an operation line inside a request is an unknown key");
  t.end();
});

t.test("the parser stops at the first bad line; earlier lines do not leak into a new parser", (t) => {
  const p = new SetParser();
  p.line("listen_port=1");
  t.throws(() => p.line("listen_port=x"), UapiError);
  t.same(new SetParser().finish(), { device: [], peers: [] });
  t.end();
});

function state(peers: DeviceState["peers"], extra: Partial<DeviceState> = {}): DeviceState {
  return { privateKey: null, listenPort: 0, fwmark: 0, peers, ...extra };
}

t.test("get: device keys only when set, every peer key, in wireguard-go's order", (t) => {
  t.equal(serializeGetText(state([])), "", "an empty device has an empty body");
  const body = serializeGetText(
      state(
        [
          {
            publicKey: new Uint8Array(32).fill(0xa1),
            presharedKey: null,
            endpoint: null,
            persistentKeepalive: 0,
            allowedIps: [],
            lastHandshake: null,
            txBytes: 0,
            rxBytes: 0,
          },
          {
            publicKey: new Uint8Array(32).fill(0xb2),
            presharedKey: new Uint8Array(32).fill(0xa1),
            endpoint: encodeEndpoint(parseIp("fd00::1")!, 51820),
            persistentKeepalive: 25,
            allowedIps: [parsePrefix("10.0.0.0/8")!, parsePrefix("fd00::/64")!],
            lastHandshake: { sec: 1700000000, nsec: 123456789 },
            txBytes: 2 ** 40,
            rxBytes: 7,
          },
        ],
        { privateKey: new Uint8Array(32).fill(0xb2), listenPort: 51820, fwmark: 0 },
      ),
  );
  t.equal(
    body,
    [
      `private_key=${K2}`,
      "listen_port=51820",
      `public_key=${K1}`,
      `preshared_key=${ZERO}`,
      "protocol_version=1",
      "last_handshake_time_sec=0",
      "last_handshake_time_nsec=0",
      "tx_bytes=0",
      "rx_bytes=0",
      "persistent_keepalive_interval=0",
      `public_key=${K2}`,
      `preshared_key=${K1}`,
      "protocol_version=1",
      "endpoint=[fd00::1]:51820",
      "last_handshake_time_sec=1700000000",
      "last_handshake_time_nsec=123456789",
      "tx_bytes=1099511627776",
      "rx_bytes=7",
      "persistent_keepalive_interval=25",
      "allowed_ip=10.0.0.0/8",
      "allowed_ip=fd00::/64",
      "",
    ].join("\n"),
  );
  t.equal(serializeGetText(state([], { fwmark: 51 })), "fwmark=51\n", "fwmark when nonzero");
  t.end();
});

t.test("get streams: a huge peer comes in bounded chunks that join into whole lines", (t) => {
  const many = Array.from({ length: 100_000 }, (_, i) => parsePrefix(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`)!);
  let pulled = 0;
  const lazy = (function* () {
    for (const p of many) {
      pulled++;
      yield p;
    }
  })();
  const peer = { publicKey: new Uint8Array(32), presharedKey: null, endpoint: null, persistentKeepalive: 0, allowedIps: lazy, lastHandshake: null, txBytes: 0, rxBytes: 0 };
  const chunks = serializeGet(state([peer]), 4096);
  const first = chunks.next();
  t.ok(!first.done && first.value.length < 4200, "the first chunk is about the chunk size");
  t.ok(pulled < 200, `only what the first chunk needed was read (${pulled} prefixes)`);
  let count = first.value!.toString("latin1").split("\n").length - 1;
  let max = 0;
  let cut = 0;
  for (const bytes of chunks) {
    const c = bytes.toString("latin1");
    if (!c.endsWith("\n")) cut++;
    max = Math.max(max, c.length);
    count += c.split("\n").length - 1;
  }
  t.equal(cut, 0, "every chunk ends at a line end");
  t.equal(count, 8 + many.length, "every line came out (8 peer lines, one per allowed IP)");
  t.ok(max < 4200, `chunks stay near the chunk size (largest ${max})`);
  t.end();
});

// The hand-written allowed-IP readers and writer against the general ones in src/net/address.ts.
t.test("allowed IPs: the fast readers and writer agree with address.ts on any prefix", (t) => {
  const words = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 });
  const v6 = fc.record({ words, length: fc.integer({ min: 0, max: 128 }), mapped: fc.boolean() }).map(({ words, length, mapped }) => {
    const bytes = new Uint8Array(16);
    words.forEach((w, i) => ((bytes[i * 2] = w >> 8), (bytes[i * 2 + 1] = w & 255)));
    if (mapped) bytes.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 0);
    return { family: 6 as const, bytes, length };
  });
  const v4 = fc.record({ bytes: fc.uint8Array({ minLength: 4, maxLength: 4 }), length: fc.integer({ min: 0, max: 32 }) }).map((p) => ({ family: 4 as const, ...p }));
  fc.assert(
    fc.property(fc.oneof(v4, v6), fc.boolean(), (p, upper) => {
      const text = formatPrefix(p); // host bits left set: the reader must mask them
      const full = p.family === 6 && !text.includes(".") ? `${Array.from({ length: 8 }, (_, i) => ((p.bytes[i * 2] << 8) | p.bytes[i * 2 + 1]).toString(16)).join(":")}/${p.length}` : text;
      const input = upper ? full.toUpperCase() : text;
      const op = parseSet(`public_key=${K1}\nallowed_ip=${input}\n`).peers[0].operations[0] as Extract<PeerOperation, { op: "allowed_ip" }>;
      const want = networkOf(parsePrefix(input)!);
      if (op.prefix.family !== want.family || op.prefix.length !== want.length || !op.prefix.bytes.every((b, i) => b === want.bytes[i])) return false;
      const body = serializeGetText(state([{ publicKey: new Uint8Array(32), presharedKey: null, endpoint: null, persistentKeepalive: 0, allowedIps: [op.prefix], lastHandshake: null, txBytes: 0, rxBytes: 0 }]));
      return body.endsWith(`allowed_ip=${formatPrefix(want)}\n`);
    }),
    { numRuns: 3000 },
  );
  for (const bad of ["1:::2/64", "1::2:/64", "12345::/64", "1::2::3/64", ":1::/64", "1:2:3:4:5:6:7:8:9/64", "1:2:3:4:5:6:7/64", "g::/8", "::/129", "::/01"]) {
    t.equal(errnoOf(`public_key=${K1}\nallowed_ip=${bad}\n`), ERRNO_INVALID, bad);
  }
  t.end();
});

t.test("allowed IPs share slabs but not bytes: thousands parsed, then every one read back", (t) => {
  const texts: string[] = [];
  for (let i = 0; i < 3000; i++) texts.push(i % 3 === 2 ? `fd00:${i.toString(16)}::${(i * 7).toString(16)}/128` : `198.18.${i >> 8}.${i & 255}/32`);
  texts.push("1::2/64", "10.1.2.3/8"); // host bits, masked in their own bytes
  const ops = parseSet(`public_key=${K1}\n${texts.map((x) => `allowed_ip=${x}`).join("\n")}\n`).peers[0].operations;
  t.equal(ops.length, texts.length);
  const back = ops.map((op) => formatPrefix((op as Extract<PeerOperation, { op: "allowed_ip" }>).prefix));
  t.same(back, texts.map((x) => formatPrefix(networkOf(parsePrefix(x)!))), "each prefix keeps its own bytes");
  t.end();
});

t.test("a refused secret key is named, its value never quoted", async (t) => {
  for (const text of [`private_key=${K1.toUpperCase()}\n`, `public_key=${K1}\nprivate_key=${K2}\n`, `public_key=${K1}\npreshared_key=${K2}x\n`]) {
    let message = "";
    try {
      parseSet(text);
    } catch (err) {
      message = (err as Error).message;
    }
    t.match(message, /^(private|preshared)_key=\(\d+ characters, not shown\)/, text.split("\n").at(-2)!.slice(0, 14));
    t.notMatch(message.toLowerCase(), /a1a1|b2b2/, "no key material in the message");
  }
});
