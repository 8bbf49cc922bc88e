import t from "tap";
import type { Test } from "tap";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, validateConfig } from "../../src/config/validate.ts";
import { loadConfig } from "../../src/config/load.ts";
import { DEFAULTS } from "../../src/config/schema.ts";

const CONFIG_A = new URL("../../config/plain.json", import.meta.url);
const aText = readFileSync(CONFIG_A, "utf8");

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A fresh, mutable copy of config/plain.json (the plain example). */
const a = (): Json => JSON.parse(aText) as Json;

/** The smallest config: only the required fields. */
const minimal = (): Json => ({
  transport: "plain",
  device: { name: "tun9", address: "10.9.0.1/24" },
  peers: [{ name: "p", endpoint: "192.0.2.9:51820", allowedIps: "10.9.0.2/32" }],
});

/**
 * validateConfig(raw) must throw a ConfigError for `field` whose message starts with the
 * field and mentions each string in `mentions` (the bad value, usually as JSON).
 */
function rejects(t: Test, raw: unknown, field: string, ...mentions: string[]): void {
  let err: unknown;
  try {
    validateConfig(raw);
  } catch (e) {
    err = e;
  }
  if (!(err instanceof ConfigError)) {
    t.fail(`expected a ConfigError for ${field}, got ${err === undefined ? "no error" : String(err)}`);
    return;
  }
  t.equal(err.field, field, `field of: ${err.message}`);
  t.ok(err.message.startsWith(`${field}: `), `message starts with the field: ${err.message}`);
  for (const m of mentions) t.ok(err.message.includes(m), `message mentions ${m}: ${err.message}`);
}

function isDeepFrozen(v: unknown, path: string, out: string[]): void {
  if (typeof v !== "object" || v === null || ArrayBuffer.isView(v)) return;
  if (!Object.isFrozen(v)) out.push(path || "(top)");
  for (const [k, x] of Object.entries(v)) isDeepFrozen(x, `${path}.${k}`, out);
}

t.test("config/plain.json is valid and fully parsed", (t) => {
  const c = validateConfig(a());
  t.equal(c.device.name, "udptun0");
  t.equal(c.device.mtu, 1420);
  t.equal(c.device.addresses.length, 2);
  t.same(
    { family: c.device.addresses[0].family, bytes: [...c.device.addresses[0].bytes], length: c.device.addresses[0].length },
    { family: 4, bytes: [10, 77, 0, 1], length: 24 },
    "the device address keeps its host part (it is the interface address)",
  );
  t.equal(c.device.addresses[1].family, 6);
  t.equal(c.device.addresses[1].length, 64);
  t.equal(c.device.addresses[1].bytes[15], 1);

  t.equal(c.listen.host, "198.18.0.1");
  t.equal(c.listen.port, 51820);
  t.same({ family: c.listen.ip.family, bytes: [...c.listen.ip.bytes] }, { family: 4, bytes: [198, 18, 0, 1] });

  t.equal(c.peers.length, 1);
  t.equal(c.peers[0].name, "b");
  t.same(c.peers[0].endpoint, { host: "198.18.0.2", port: 51820 });
  t.same(
    c.peers[0].allowedIps.map((p) => [p.family, p.length]),
    [[4, 32], [6, 128]],
  );
  t.same([...c.peers[0].allowedIps[0].bytes], [10, 77, 0, 2]);
  t.same(c.metrics, { host: "198.18.0.1", port: 9464 });
  t.equal(c.log.level, "info");
  t.end();
});

t.test("the validated config is deeply frozen", (t) => {
  const c = validateConfig(a());
  const notFrozen: string[] = [];
  isDeepFrozen(c, "", notFrozen);
  t.same(notFrozen, [], "every object and array is frozen");
  // Spot checks that the walk above reached the nested parts.
  for (const part of [c, c.device, c.device.addresses, c.device.addresses[0], c.listen, c.listen.ip, c.peers, c.peers[0],
    c.peers[0].endpoint, c.peers[0].allowedIps, c.peers[0].allowedIps[1], c.metrics, c.log, c.socket, c.pools]) {
    t.ok(Object.isFrozen(part));
  }
  t.throws(() => {
    (c.device as { mtu: number }).mtu = 9000;
  }, TypeError, "assignment throws in strict mode");
  t.throws(() => {
    (c.peers as unknown[]).push({});
  }, TypeError);
  t.equal(c.device.mtu, 1420);
  t.end();
});

t.test("the input object is not frozen or changed", (t) => {
  const raw = a();
  const before = JSON.stringify(raw);
  validateConfig(raw);
  t.notOk(Object.isFrozen(raw));
  t.equal(JSON.stringify(raw), before);
  t.end();
});

t.test("defaults when optional sections are missing", (t) => {
  const c = validateConfig(minimal());
  t.equal(c.device.mtu, DEFAULTS.mtu);
  t.equal(c.device.mtu, 1420, "the documented default MTU");
  t.equal(c.device.txQueueLen, DEFAULTS.txQueueLen);
  t.equal(c.device.txQueueLen, 4000, "the documented default queue length (the TUN default is 500)");
  t.equal(c.device.addresses.length, 1, "a single string is a one-element list");
  t.equal(`${c.listen.host}:${c.listen.port}`, DEFAULTS.listen);
  t.equal(c.listen.ip.family, 4);
  t.same([...c.listen.ip.bytes], [0, 0, 0, 0]);
  t.equal(`${c.metrics.host}:${c.metrics.port}`, DEFAULTS.metricsListen);
  t.equal(c.log.level, DEFAULTS.logLevel);
  t.equal(c.socket.receiveBuffer, DEFAULTS.receiveBuffer);
  t.equal(c.socket.sendBuffer, DEFAULTS.sendBuffer);
  t.equal(c.socket.receiveBuffer, 4 * 1024 * 1024, "4 MiB");
  t.equal(c.socket.peerFilter, true, "the peer filter is on unless turned off");
  t.same(c.offloads, { udpGso: true, udpGro: true, tun: true, coalesce: true, coalesceUdp: false },
    "every offload on where the kernel takes it, UDP joining off");
  t.same(validateConfig({ ...minimal(), offloads: { tun: false, coalesceUdp: true } }).offloads,
    { udpGso: true, udpGro: true, tun: false, coalesce: true, coalesceUdp: true }, "each switch on its own");
  t.equal(c.pools.deviceCapacity, DEFAULTS.poolCapacity);
  t.equal(c.pools.networkCapacity, DEFAULTS.poolCapacity);
  t.equal(c.peers[0].allowedIps.length, 1, "a single allowed IP string is a one-element list");

  // Empty optional sections also take the defaults.
  const e = validateConfig({ ...minimal(), metrics: {}, log: {}, socket: {}, pools: {} });
  t.equal(`${e.metrics.host}:${e.metrics.port}`, DEFAULTS.metricsListen);
  t.equal(e.log.level, DEFAULTS.logLevel);
  t.equal(e.socket.sendBuffer, DEFAULTS.sendBuffer);
  t.equal(e.socket.peerFilter, DEFAULTS.peerFilter);
  t.equal(e.pools.networkCapacity, DEFAULTS.poolCapacity);

  // And values given replace them.
  const g = validateConfig({
    ...minimal(),
    socket: { receiveBuffer: 8192, sendBuffer: 4096, peerFilter: false },
    pools: { deviceCapacity: 128, networkCapacity: 65536 },
    log: { level: "trace" },
    metrics: { listen: "[::1]:9000" },
  });
  t.same(g.socket, { receiveBuffer: 8192, sendBuffer: 4096, peerFilter: false });
  t.same(g.pools, { deviceCapacity: 128, networkCapacity: 65536 });
  t.equal(g.log.level, "trace");
  t.same(g.metrics, { host: "::1", port: 9000 });
  t.end();
});

t.test("workers: 1 (one thread, as before) unless set; 1 to 16 accepted", (t) => {
  t.equal(validateConfig(minimal()).workers, 1, "default 1");
  t.equal(DEFAULTS.workers, 1);
  t.equal(validateConfig(a()).workers, 1, "config/plain.json has none: 1");
  for (const n of [1, 2, 4, 16]) t.equal(validateConfig({ ...minimal(), workers: n }).workers, n, `workers ${n}`);
  t.ok(Object.isFrozen(validateConfig({ ...minimal(), workers: 2 })), "frozen with the rest");
  t.end();
});

t.test("peers[].persistentKeepalive: off (0) unless set; 0 to 65535 seconds, as WireGuard's", (t) => {
  t.equal(validateConfig(minimal()).peers[0].persistentKeepalive, 0, "absent: off");
  for (const n of [0, 1, 25, 65535]) {
    const c = minimal();
    c.peers[0].persistentKeepalive = n;
    t.equal(validateConfig(c).peers[0].persistentKeepalive, n, `${n}`);
  }
  t.end();
});

t.test("accepted variations", (t) => {
  const mtu = minimal();
  mtu.device.mtu = 1000;
  t.equal(validateConfig(mtu).device.mtu, 1000, "MTU below 1280 is fine without IPv6");
  const m576 = a();
  m576.device.address = ["10.77.0.1/24"];
  m576.device.mtu = 576;
  t.equal(validateConfig(m576).device.mtu, 576);
  const m9000 = a();
  m9000.device.mtu = 9000;
  t.equal(validateConfig(m9000).device.mtu, 9000);
  for (const q of [1, 500, 1_000_000]) {
    const c = a();
    c.device.txQueueLen = q;
    t.equal(validateConfig(c).device.txQueueLen, q, `txQueueLen ${q}`);
  }

  const dual = a();
  dual.listen = "[::]:51820";
  dual.peers = [
    { name: "v4", endpoint: "198.18.0.2:51820", allowedIps: ["10.77.0.2/32"] },
    { name: "v6", endpoint: "[2001:db8::2]:51820", allowedIps: ["10.77.0.3/32"] },
  ];
  t.equal(validateConfig(dual).peers.length, 2, "listening on [::] takes both families");

  const v6 = a();
  v6.listen = "[2001:db8::1]:51820";
  v6.peers[0].endpoint = "[2001:db8::2]:51820";
  t.equal(validateConfig(v6).listen.ip.family, 6);

  const dns = a();
  dns.peers[0].endpoint = "peer-b.example:51820";
  t.same(validateConfig(dns).peers[0].endpoint, { host: "peer-b.example", port: 51820 }, "a DNS name is kept for later resolution");

  const overlap = a();
  overlap.peers = [
    { name: "wide", endpoint: "198.18.0.2:51820", allowedIps: ["10.0.0.0/8"] },
    { name: "narrow", endpoint: "198.18.0.3:51820", allowedIps: ["10.1.0.0/16"] },
  ];
  t.equal(validateConfig(overlap).peers.length, 2, "nested prefixes are not duplicates (longest prefix wins)");

  const hostBits = a();
  hostBits.peers[0].allowedIps = ["10.77.0.9/24"];
  const net = validateConfig(hostBits).peers[0].allowedIps[0];
  t.same([...net.bytes], [10, 77, 0, 0], "allowed IPs are normalised to their network");
  t.equal(net.length, 24);
  t.end();
});

t.test("errors name the field and the bad value", (t) => {
  t.test("top level", (t) => {
    rejects(t, null, "", "null");
    rejects(t, [], "", "[]");
    rejects(t, "config", "", '"config"');
    rejects(t, { ...a(), extra: 1 }, "extra", "unknown field");
    t.end();
  });

  t.test("device", (t) => {
    const noDevice = a();
    delete noDevice.device;
    rejects(t, noDevice, "device", "undefined");

    const mtux = a();
    mtux.device.mtux = 1420;
    rejects(t, mtux, "device.mtux", "unknown field");

    for (const bad of [575, 9001, 1420.5, "1420", -1, null]) {
      const c = a();
      c.device.address = ["10.77.0.1/24"];
      c.device.mtu = bad;
      rejects(t, c, "device.mtu", JSON.stringify(bad));
    }

    for (const bad of [0, 1_000_001, 10.5, "4000", -1, null]) {
      const c = a();
      c.device.txQueueLen = bad;
      rejects(t, c, "device.txQueueLen", JSON.stringify(bad));
    }

    const lowV6 = a();
    lowV6.device.mtu = 1279;
    rejects(t, lowV6, "device.mtu", "1279", "1280");

    const addr1 = a();
    addr1.device.address = ["10.77.0.1/24", "10.77.0.300/24"];
    rejects(t, addr1, "device.address[1]", '"10.77.0.300/24"');

    const bare = a();
    bare.device.address = ["10.77.0.1/24", "fd77::1"];
    rejects(t, bare, "device.address[1]", '"fd77::1"', "prefix length");

    const long = a();
    long.device.address = ["10.77.0.1/33"];
    rejects(t, long, "device.address[0]", '"10.77.0.1/33"');

    const empty = a();
    empty.device.address = [];
    rejects(t, empty, "device.address", "[]");

    const notString = a();
    notString.device.address = ["10.77.0.1/24", 42];
    rejects(t, notString, "device.address[1]", "42");

    for (const name of ["abcdefghijklmnop", "tun 0", "..", "tun/0", ""]) {
      const c = a();
      c.device.name = name;
      rejects(t, c, "device.name", JSON.stringify(name));
    }
    const noName = a();
    delete noName.device.name;
    rejects(t, noName, "device.name", "undefined");
    t.end();
  });

  t.test("listen", (t) => {
    const dns = a();
    dns.listen = "tunnel.example:51820";
    rejects(t, dns, "listen", '"tunnel.example:51820"');
    const port0 = a();
    port0.listen = "0.0.0.0:0";
    rejects(t, port0, "listen", '"0.0.0.0:0"', "port 0");
    const noPort = a();
    noPort.listen = "0.0.0.0";
    rejects(t, noPort, "listen", '"0.0.0.0"');
    const num = a();
    num.listen = 51820;
    rejects(t, num, "listen", "51820");
    t.end();
  });

  t.test("peers", (t) => {
    rejects(t, { ...a(), peers: [] }, "peers", "[]");
    const none = a();
    delete none.peers;
    rejects(t, none, "peers", "undefined");
    rejects(t, { ...a(), peers: "b" }, "peers", '"b"');
    rejects(t, { ...a(), peers: ["b"] }, "peers[0]", '"b"');

    const ep = a();
    ep.peers[0].endpoint = "198.18.0.2";
    rejects(t, ep, "peers[0].endpoint", '"198.18.0.2"');
    const bigPort = a();
    bigPort.peers[0].endpoint = "198.18.0.2:65536";
    rejects(t, bigPort, "peers[0].endpoint", '"198.18.0.2:65536"');
    const unbracketed = a();
    unbracketed.peers[0].endpoint = "2001:db8::2:51820";
    rejects(t, unbracketed, "peers[0].endpoint", '"2001:db8::2:51820"');

    const v6ep = a();
    v6ep.peers[0].endpoint = "[2001:db8::2]:51820";
    rejects(t, v6ep, "peers[0].endpoint", '"[2001:db8::2]:51820"', '"198.18.0.1:51820"', "IPv6", "IPv4");

    const v4ep = a();
    v4ep.listen = "[2001:db8::1]:51820";
    rejects(t, v4ep, "peers[0].endpoint", '"198.18.0.2:51820"', '"[2001:db8::1]:51820"');

    const dupName = a();
    dupName.peers.push({ name: "b", endpoint: "198.18.0.3:51820", allowedIps: ["10.77.0.3/32"] });
    rejects(t, dupName, "peers[1].name", '"b"');

    const badName = a();
    badName.peers[0].name = "peer b";
    rejects(t, badName, "peers[0].name", '"peer b"');

    const typo = a();
    typo.peers[0].allowedIPs = typo.peers[0].allowedIps;
    rejects(t, typo, "peers[0].allowedIPs", "unknown field");

    const noAllowed = a();
    noAllowed.peers[0].allowedIps = [];
    rejects(t, noAllowed, "peers[0].allowedIps", "[]");

    for (const bad of [-1, 65536, 1.5, "25", null]) {
      const ka = a();
      ka.peers[0].persistentKeepalive = bad;
      rejects(t, ka, "peers[0].persistentKeepalive", JSON.stringify(bad), "0 to 65535");
    }

    const badPrefix = a();
    badPrefix.peers[0].allowedIps = ["10.77.0.2/32", "10.77.0.0/40"];
    rejects(t, badPrefix, "peers[0].allowedIps[1]", '"10.77.0.0/40"');
    t.end();
  });

  t.test("allowed IPs routed to two peers", (t) => {
    const dup = a();
    dup.peers.push({ name: "c", endpoint: "198.18.0.3:51820", allowedIps: ["10.77.0.2/32"] });
    rejects(t, dup, "peers[1].allowedIps[0]", '"10.77.0.2/32"', 'already routed to peer "b"');

    const later = a();
    later.peers.push({ name: "c", endpoint: "198.18.0.3:51820", allowedIps: ["10.77.0.3/32", "fd77::2/128"] });
    rejects(t, later, "peers[1].allowedIps[1]", '"fd77::2/128"', 'peer "b"');

    // The same network written differently is still the same route.
    const spelled = a();
    spelled.peers.push({ name: "c", endpoint: "198.18.0.3:51820", allowedIps: ["fd77:0:0:0:0:0:0:2/128"] });
    rejects(t, spelled, "peers[1].allowedIps[0]", '"fd77:0:0:0:0:0:0:2/128"', 'peer "b"');
    const hostBits = a();
    hostBits.peers = [
      { name: "x", endpoint: "198.18.0.2:51820", allowedIps: ["10.0.0.0/8"] },
      { name: "y", endpoint: "198.18.0.3:51820", allowedIps: ["10.1.2.3/8"] },
    ];
    rejects(t, hostBits, "peers[1].allowedIps[0]", '"10.1.2.3/8"', 'peer "x"');
    t.end();
  });

  t.test("metrics, log, socket, pools", (t) => {
    rejects(t, { ...a(), metrics: { listen: "127.0.0.1:99999" } }, "metrics.listen", '"127.0.0.1:99999"');
    rejects(t, { ...a(), metrics: { port: 9464 } }, "metrics.port", "unknown field");
    rejects(t, { ...a(), metrics: "127.0.0.1:9464" }, "metrics", '"127.0.0.1:9464"');
    rejects(t, { ...a(), log: { level: "verbose" } }, "log.level", '"verbose"');
    rejects(t, { ...a(), log: { level: 3 } }, "log.level", "3");
    rejects(t, { ...a(), log: { level: "INFO" } }, "log.level", '"INFO"');
    rejects(t, { ...a(), socket: { receiveBuffer: 100 } }, "socket.receiveBuffer", "100");
    rejects(t, { ...a(), socket: { sendBuffer: 2 ** 31 } }, "socket.sendBuffer", String(2 ** 31));
    rejects(t, { ...a(), socket: { peerFilter: "yes" } }, "socket.peerFilter", '"yes"');
    rejects(t, { ...a(), socket: { peerFilter: 1 } }, "socket.peerFilter", "1");
    rejects(t, { ...a(), socket: { peerFilter: null } }, "socket.peerFilter", "null");
    rejects(t, { ...a(), pools: { deviceCapacity: 127 } }, "pools.deviceCapacity", "127");
    rejects(t, { ...a(), pools: { networkCapacity: 65537 } }, "pools.networkCapacity", "65537");
    t.end();
  });

  t.test("offloads", (t) => {
    rejects(t, { ...a(), offloads: { udpGso: "on" } }, "offloads.udpGso", '"on"');
    rejects(t, { ...a(), offloads: { udpGro: 0 } }, "offloads.udpGro", "0");
    rejects(t, { ...a(), offloads: { tun: null } }, "offloads.tun", "null");
    rejects(t, { ...a(), offloads: { coalesce: "false" } }, "offloads.coalesce", '"false"');
    rejects(t, { ...a(), offloads: { coalesceUdp: 1 } }, "offloads.coalesceUdp", "1");
    rejects(t, { ...a(), offloads: { gso: true } }, "offloads.gso", "unknown field");
    rejects(t, { ...a(), offloads: true }, "offloads", "true");
    t.end();
  });

  t.test("workers", (t) => {
    rejects(t, { ...a(), workers: 0 }, "workers", "from 1 to 16", "got 0");
    rejects(t, { ...a(), workers: 17 }, "workers", "got 17");
    rejects(t, { ...a(), workers: -2 }, "workers", "got -2");
    rejects(t, { ...a(), workers: 1.5 }, "workers", "got 1.5");
    rejects(t, { ...a(), workers: "2" }, "workers", 'got "2"');
    rejects(t, { ...a(), workers: null }, "workers", "got null");
    rejects(t, { ...a(), workers: [2] }, "workers", "got [2]");
    rejects(t, { ...a(), worker: 2 }, "worker", "unknown field", "workers");
    t.end();
  });
  t.end();
});

t.test("loadConfig", (t) => {
  const dir = t.testdir({
    "a.json": aText,
    "nolog.json": JSON.stringify({ ...minimal() }),
    "broken.json": '{ "device": ',
    "badlevel.json": JSON.stringify({ ...a(), log: { level: "loud" } }),
  });

  const c = loadConfig(join(dir, "a.json"), {});
  t.equal(c.device.name, "udptun0");
  t.equal(c.log.level, "info", "from the file when the environment says nothing");

  const missing = join(dir, "missing.json");
  try {
    loadConfig(missing, {});
    t.fail("a missing file should throw");
  } catch (e) {
    t.ok(e instanceof ConfigError, "missing file: a ConfigError");
    t.equal((e as ConfigError).field, "--config");
    t.ok((e as Error).message.includes(JSON.stringify(missing)), "names the file");
  }

  try {
    loadConfig(join(dir, "broken.json"), {});
    t.fail("invalid JSON should throw");
  } catch (e) {
    t.ok(e instanceof ConfigError, "invalid JSON: a ConfigError");
    t.equal((e as ConfigError).field, "--config");
    t.match((e as Error).message, "not valid JSON");
  }

  t.test("UDPTUN_LOG_LEVEL overrides log.level", (t) => {
    t.equal(loadConfig(join(dir, "a.json"), { UDPTUN_LOG_LEVEL: "debug" }).log.level, "debug");
    t.equal(loadConfig(join(dir, "nolog.json"), { UDPTUN_LOG_LEVEL: "warn" }).log.level, "warn", "also without a log section");
    t.equal(loadConfig(join(dir, "badlevel.json"), { UDPTUN_LOG_LEVEL: "error" }).log.level, "error", "replaces a bad level in the file");
    t.equal(loadConfig(join(dir, "a.json"), { UDPTUN_LOG_LEVEL: "" }).log.level, "info", "an empty variable is no override");
    try {
      loadConfig(join(dir, "a.json"), { UDPTUN_LOG_LEVEL: "loud" });
      t.fail("a bad override should throw");
    } catch (e) {
      t.ok(e instanceof ConfigError);
      t.equal((e as ConfigError).field, "log.level");
      t.match((e as Error).message, '"loud"');
    }
    t.end();
  });

  t.test("the env argument is used, not process.env", (t) => {
    const saved = process.env.UDPTUN_LOG_LEVEL;
    process.env.UDPTUN_LOG_LEVEL = "trace";
    try {
      t.equal(loadConfig(join(dir, "a.json"), {}).log.level, "info");
      t.equal(loadConfig(join(dir, "a.json")).log.level, "trace", "process.env is the default");
    } finally {
      if (saved === undefined) delete process.env.UDPTUN_LOG_LEVEL;
      else process.env.UDPTUN_LOG_LEVEL = saved;
    }
    t.end();
  });
  t.end();
});

t.test("the log-level override never hides a malformed log section", async (t) => {
  const { mkdtempSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const file = join(mkdtempSync(join(tmpdir(), "udptun-cfg-")), "c.json");
  for (const log of ["info", null, [1]]) {
    writeFileSync(file, JSON.stringify({ ...a(), log }));
    t.throws(() => loadConfig(file, { UDPTUN_LOG_LEVEL: "debug" }), { name: "ConfigError", field: "log" }, `log: ${JSON.stringify(log)}`);
  }
});
