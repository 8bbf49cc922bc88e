// The UAPI socket with the in-memory model behind it, driven over raw connections.
import t from "tap";
import type { Test } from "tap";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { UapiClient } from "../../src/uapi/client.ts";
import { ERRNO_INVALID, ERRNO_IO, ERRNO_PORT_IN_USE, ERRNO_PROTOCOL, ERRNO_UNKNOWN, UapiError } from "../../src/uapi/errors.ts";
import { ModelDevice } from "../../src/uapi/model.ts";
import { DEFAULT_DIR, UapiServer } from "../../src/uapi/server.ts";
import type { UapiServerOptions } from "../../src/uapi/server.ts";

const run = promisify(execFile);
const A = "a1".repeat(32);
const B = "b2".repeat(32);

function uniqueName(): string {
  return `ut${randomBytes(5).toString("hex")}`;
}

async function start(t: Test, options: Partial<UapiServerOptions> = {}): Promise<{ server: UapiServer; dev: ModelDevice; errors: Error[] }> {
  const dev = new ModelDevice();
  const errors: Error[] = [];
  const server = await UapiServer.listen({ name: uniqueName(), device: dev, onError: (e) => errors.push(e), ...options });
  t.teardown(() => server.close());
  return { server, dev, errors };
}

/** A raw connection that records everything the server sends and whether it closed. */
class Raw {
  text = "";
  closed = false;
  readonly socket: Socket;
  #wake: (() => void) | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.text += d;
      this.#wake?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#wake?.();
    });
    socket.on("error", () => {});
  }

  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new Raw(s)));
      s.once("error", reject);
    });
  }

  /** Waits until `done` holds for what arrived, or the server closes. */
  async until(done: (text: string) => boolean): Promise<void> {
    while (!done(this.text) && !this.closed) await new Promise<void>((r) => (this.#wake = r));
  }

  /** Waits for `count` replies (or the close) and returns their errno values. */
  async replies(count: number): Promise<number[]> {
    const errnos = (): number[] => [...this.text.matchAll(/(?<=^|\n)errno=(-?\d+)\n\n/g)].map((m) => Number(m[1]));
    await this.until(() => errnos().length >= count);
    return errnos();
  }

  async closing(): Promise<void> {
    await this.until(() => false);
  }
}

t.test("the socket: 0600 in a 0755 directory, removed on close", async (t) => {
  const dir = mkdtempSync(`${tmpdir()}/uapi-`);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = await UapiServer.listen({ name: "wgtest0", device: new ModelDevice(), dir: `${dir}/run/wireguard` });
  t.equal(server.path, `${dir}/run/wireguard/wgtest0.sock`);
  t.ok(lstatSync(server.path).isSocket());
  t.equal(lstatSync(server.path).mode & 0o777, 0o600);
  t.equal(statSync(`${dir}/run/wireguard`).mode & 0o777, 0o755, "the directory is created 0755");
  await server.close();
  t.notOk(existsSync(server.path), "close() removes the socket file");
});

t.test("names that cannot be interfaces are refused, naming the value", async (t) => {
  for (const name of ["", "a/b", "x".repeat(16), "..", "has space"]) {
    await t.rejects(UapiServer.listen({ name, device: new ModelDevice() }), { message: new RegExp(`interface name ${JSON.stringify(JSON.stringify(name)).slice(1, -1)}`) });
  }
});

t.test("set then get, several requests on one connection", async (t) => {
  const { server } = await start(t);
  const c = await UapiClient.connect(server.path);
  t.teardown(() => c.close());
  t.same(await c.set([`private_key=${A}`, "listen_port=51820", `public_key=${B}`, "endpoint=192.0.2.1:51820", "allowed_ip=10.0.0.0/8"]), { body: "", errno: 0 });
  const got = await c.get();
  t.equal(got.errno, 0);
  t.match(got.body, /^private_key=a1a1.*\nlisten_port=51820\npublic_key=b2b2.*\n.*endpoint=192\.0\.2\.1:51820\n.*allowed_ip=10\.0\.0\.0\/8\n$/s);
  t.same(await c.set(["fwmark=3"]), { body: "", errno: 0 });
  t.match((await c.get()).body, "fwmark=3\n");
});

t.test("requests sent together are answered in order", async (t) => {
  const { server, dev } = await start(t);
  const raw = await Raw.open(server.path);
  t.teardown(() => raw.socket.destroy());
  raw.socket.write(`set=1\nlisten_port=1\n\nget=1\n\nset=1\nlisten_port=x\n\nset=1\nlisten_port=3\n\nget=1\n\n`);
  t.same(await raw.replies(5), [0, 0, ERRNO_INVALID, 0, 0]);
  const gets = raw.text.split(/errno=-?\d+\n\n/);
  t.equal(gets[1], "listen_port=1\n");
  t.equal(gets[4], "listen_port=3\n");
  t.equal(dev.state.listenPort, 3);
});

t.test("bad input: an errno reply, the device unchanged, the connection still in step", async (t) => {
  const { server, dev, errors } = await start(t);
  const c = await UapiClient.connect(server.path);
  t.teardown(() => c.close());
  await c.set([`public_key=${A}`, "allowed_ip=10.0.0.0/8"]);
  const before = dev.state;
  const cases: [string, string[], number][] = [
    ["unknown device key", ["listen_port=2", "bogus=1"], ERRNO_INVALID],
    ["unknown peer key", [`public_key=${B}`, "bogus=1"], ERRNO_INVALID],
    ["malformed hex", [`public_key=${A.toUpperCase()}`], ERRNO_INVALID],
    ["short hex", [`public_key=${A}`, `preshared_key=${B.slice(1)}`], ERRNO_INVALID],
    ["device key after a peer", [`public_key=${B}`, "listen_port=2"], ERRNO_INVALID],
    ["peer key before any peer", ["allowed_ip=10.0.0.0/8"], ERRNO_INVALID],
    ["a line without =", [`public_key=${B}`, "remove"], ERRNO_PROTOCOL],
    ["bad value after good lines", ["listen_port=2", `public_key=${B}`, "allowed_ip=10.1.0.0/16", "allowed_ip=10.1.0.0/99"], ERRNO_INVALID],
  ];
  for (const [what, lines, errno] of cases) {
    t.equal((await c.set(lines)).errno, errno, what);
    t.equal(dev.state, before, `${what}: the device is unchanged`);
  }
  t.equal(errors.length, cases.length, "each refusal is reported");
  t.ok(errors.every((e) => e instanceof UapiError));
  t.match(errors[0].message, 'bogus="1"', "the report names the key and value");
  t.match((await c.request("get=1\nx\n")).errno, ERRNO_INVALID, "get=1 followed by a non-blank line");
  t.equal((await c.get()).errno, 0, "still in step after all of it");
});

t.test("a truncated request is not applied: EPROTO to a client that half-closes", async (t) => {
  const { server, dev } = await start(t);
  const before = dev.state;
  for (const cut of [`set=1\nlisten_port=5\n`, `set=1\nlisten_port=5\npublic_key=${A}\nallowed_ip=10.0.0.0/8`]) {
    const raw = await Raw.open(server.path);
    raw.socket.end(cut);
    await raw.closing();
    t.equal(raw.text, `errno=${ERRNO_PROTOCOL}\n\n`);
    t.equal(dev.state, before, "nothing applied");
  }
  await server.idle();
  t.equal(server.connections, 0);
});

t.test("a client that disconnects mid-request: nothing applied, nothing left open", async (t) => {
  const { server, dev } = await start(t);
  const before = dev.state;
  const raws = await Promise.all([1, 2, 3].map(() => Raw.open(server.path)));
  raws[0].socket.write("set=1\nlisten_port=5\n");
  raws[1].socket.write(`set=1\npublic_key=${A}\nallowed_ip=10.0.0`);
  raws[2].socket.write("get=1\n");
  // Let the server read what was sent before the clients vanish.
  const probe = await UapiClient.connect(server.path);
  await probe.get();
  probe.close();
  for (const r of raws) r.socket.destroy();
  await server.idle();
  t.equal(server.connections, 0);
  t.equal(dev.state, before);
});

t.test("unknown operation: the connection is closed without a reply (as wireguard-go)", async (t) => {
  const { server } = await start(t);
  for (const op of ["GET=1\n\n", "\n", "set=2\n\n", "get=1 \n\n"]) {
    const raw = await Raw.open(server.path);
    raw.socket.write(op);
    await raw.closing();
    t.equal(raw.text, "", JSON.stringify(op));
  }
});

t.test("limits: an oversized line or request gets EIO and the connection is closed", async (t) => {
  const { server, dev } = await start(t, { maxLineBytes: 100, maxRequestBytes: 1000 });
  const before = dev.state;
  const long = await Raw.open(server.path);
  long.socket.write(`set=1\nlisten_port=${"1".repeat(200)}`); // no newline: it must not be buffered whole
  await long.closing();
  t.equal(long.text, `errno=${ERRNO_IO}\n\n`, "a line over the limit, before its newline arrives");
  const big = await Raw.open(server.path);
  big.socket.write(`set=1\n${`public_key=${A}\n`.repeat(20)}\n`);
  await big.closing();
  t.equal(big.text, `errno=${ERRNO_IO}\n\n`, "a request over the limit");
  const op = await Raw.open(server.path);
  op.socket.write("x".repeat(500));
  await op.closing();
  t.equal(op.text, `errno=${ERRNO_IO}\n\n`, "an operation line over the limit");
  t.equal(dev.state, before);
  const ok = await UapiClient.connect(server.path);
  t.equal((await ok.set([`public_key=${A}`, "allowed_ip=10.0.0.0/8"])).errno, 0, "a request under the limits passes");
  ok.close();
});

t.test("errors from the device: a UapiError's errno, anything else ENOANO", async (t) => {
  const dev = new ModelDevice();
  let fail: Error | null = new UapiError(ERRNO_PORT_IN_USE, "listen_port=1: in use");
  const device = {
    get: () => dev.get(),
    apply: async (r: Parameters<ModelDevice["apply"]>[0]) => {
      if (fail) throw fail;
      dev.apply(r);
    },
  };
  const server = await UapiServer.listen({ name: uniqueName(), device });
  t.teardown(() => server.close());
  const c = await UapiClient.connect(server.path);
  t.teardown(() => c.close());
  t.equal((await c.set(["listen_port=1"])).errno, ERRNO_PORT_IN_USE);
  fail = new Error("boom");
  t.equal((await c.set(["listen_port=1"])).errno, ERRNO_UNKNOWN);
  fail = null;
  t.equal((await c.set(["listen_port=1"])).errno, 0);
  t.equal(dev.state.listenPort, 1);
});

t.test("a slow reader streams its snapshot without holding up other clients", async (t) => {
  const { server, dev } = await start(t);
  const lines = [`public_key=${A}`];
  for (let i = 0; i < 60_000; i++) lines.push(`allowed_ip=10.${i >> 8}.${i & 255}.0/24`);
  const c = await UapiClient.connect(server.path);
  t.teardown(() => c.close());
  t.equal((await c.set(lines)).errno, 0);
  const slow = await Raw.open(server.path);
  t.teardown(() => slow.socket.destroy());
  slow.socket.pause();
  slow.socket.write("get=1\n\n");
  await new Promise<void>((r) => slow.socket.once("readable", () => r())); // its reply has begun
  t.equal((await c.set(["replace_peers=true", `public_key=${B}`])).errno, 0, "a set completes while the get is stalled");
  slow.socket.resume();
  await slow.replies(1);
  t.match(slow.text, `public_key=${A}`, "the slow reader sees the state its get started from");
  t.notMatch(slow.text, `public_key=${B}`);
  t.equal(slow.text.split("\nallowed_ip=").length - 1, 60_000);
  t.equal([...dev.state.peers.keys()].join(), B);
});

t.test("a stale socket file is replaced; a live one is refused, a non-socket kept", async (t) => {
  const name = uniqueName();
  const path = `${DEFAULT_DIR}/${name}.sock`;
  // A socket file nobody listens on, as a killed process leaves it.
  const owner = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`]);
  await once(owner.stdout, "data");
  owner.kill("SIGKILL");
  await once(owner, "exit");
  t.ok(lstatSync(path).isSocket());
  const first = await UapiServer.listen({ name, device: new ModelDevice() });
  t.teardown(() => first.close());
  const c = await UapiClient.connect(path);
  t.equal((await c.get()).errno, 0, "the stale socket was replaced by a live one");
  c.close();
  await t.rejects(UapiServer.listen({ name, device: new ModelDevice() }), { message: `UAPI: ${path} is in use: another process serves this interface` });
  t.equal((await (await UapiClient.connect(path)).get()).errno, 0, "the live server still answers");
  await first.close();
  writeFileSync(path, "not a socket");
  t.teardown(() => rmSync(path, { force: true }));
  await t.rejects(UapiServer.listen({ name, device: new ModelDevice() }), { message: /exists and is not a socket/ });
  t.equal(readFileSync(path, "utf8"), "not a socket", "the file is left alone");
});

t.test("another user cannot open the socket", async (t) => {
  const { server } = await start(t);
  const probe = `require("net").connect(${JSON.stringify(server.path)}).on("connect", () => { console.log("connected"); process.exit(0); }).on("error", (e) => console.log(e.code))`;
  const asNobody = await run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", probe]);
  t.equal(asNobody.stdout.trim(), "EACCES", "uid 65534 is refused");
  const asRoot = await run(process.execPath, ["-e", probe]);
  t.equal(asRoot.stdout.trim(), "connected", "the same probe as root connects");
  await server.idle();
});
