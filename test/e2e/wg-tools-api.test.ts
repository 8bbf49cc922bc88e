// Bad input straight on the UAPI socket (node:net), as no `wg` would send it: unknown keys,
// malformed hex, keys of the wrong length, a device key inside a peer section, a line without
// '=', an unknown operation, a truncated request, a client gone mid-request, a line too long,
// and a client of another user (EACCES). Each gets an errno reply or a closed connection; the
// device is unchanged (`wg show dump` identical), the daemon's fds return to their baseline
// and it still answers (issue #12, tests). Runs against the reference (bookworm's
// wireguard-go) and udptun-wg.
//
// The errno expected is wireguard-go's (0.0.20220316 and 0.0.20231211 answer alike). Where
// udptun-wg promises more (a request is applied only once complete, so a truncated one or one
// with a bad line after good ones changes nothing), that is asserted for udptun-wg only and
// wireguard-go's own behaviour, which applies the lines it read, is asserted as the reference.
import net from "node:net";
import t from "tap";
import type { Test } from "tap";
import { run } from "./lib/proc.ts";
import { Fixture, SUBJECTS, hexKey, keyPair, pollUntil, renderConf } from "./lib/wg-tools.ts";
import type { Kind } from "./lib/wg-tools.ts";

const f = new Fixture(t, ["a"]);
const PORT = 54030;

/** How a client leaves: waits for the reply, half-closes after writing, or drops the connection. */
type Leave = "wait" | "end" | "destroy";

/** What the daemon did with one request: its reply, or "closed" when it closed without one. */
function request(socket: string, data: string, leave: Leave): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    let out = "";
    let done = false;
    const finish = (verdict: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      c.destroy();
      resolve(verdict);
    };
    const timer = setTimeout(() => finish(`no answer within 5 s (read ${JSON.stringify(out.slice(0, 80))})`), 5000);
    c.on("data", (d) => {
      out += d;
      if (out.endsWith("\n\n")) finish(out);
    });
    c.on("close", () => finish(out || "closed"));
    // A daemon that closes while a large request is still being written: EPIPE/ECONNRESET here.
    c.on("error", () => finish(out || "closed"));
    c.write(data, () => {
      if (leave === "end") c.end();
      if (leave === "destroy") finish("dropped");
    });
  });
}

interface Case {
  name: string;
  data: (peer: string) => string;
  leave: Leave;
  /** wireguard-go's answer. */
  reference: string;
  /** udptun-wg's, where it may differ: a predicate over the reply. */
  udptun?: (reply: string) => boolean;
  /** wireguard-go changes the device for this one (it applies lines as it reads them); udptun-wg must not. */
  referenceApplies?: boolean;
}

const errnoOrClosed = (r: string): boolean => r === "closed" || /^errno=-\d+\n\n$/.test(r);

const CASES: Case[] = [
  { name: "an unknown device key", data: () => "set=1\nno_such_key=1\n\n", leave: "wait", reference: "errno=-22\n\n" },
  { name: "an unknown peer key", data: (p) => `set=1\npublic_key=${p}\nno_such_key=1\n\n`, leave: "wait", reference: "errno=-22\n\n" },
  { name: "malformed hex in a private key", data: () => `set=1\nprivate_key=${"zz".repeat(32)}\n\n`, leave: "wait", reference: "errno=-22\n\n" },
  { name: "a private key of 31 bytes", data: () => `set=1\nprivate_key=${"ab".repeat(31)}\n\n`, leave: "wait", reference: "errno=-22\n\n" },
  { name: "a public key of 33 bytes", data: () => `set=1\npublic_key=${"ab".repeat(33)}\n\n`, leave: "wait", reference: "errno=-22\n\n" },
  { name: "a device key after a peer section", data: (p) => `set=1\npublic_key=${p}\nlisten_port=54099\n\n`, leave: "wait", reference: "errno=-22\n\n" },
  { name: "a port out of range", data: () => "set=1\nlisten_port=70000\n\n", leave: "wait", reference: "errno=-22\n\n" },
  { name: "a line without '='", data: () => "set=1\nlisten_port\n\n", leave: "wait", reference: "errno=-71\n\n" },
  { name: "an unknown operation", data: () => "frobnicate=1\n\n", leave: "wait", reference: "closed", udptun: (r) => r === "closed" || r === "errno=-22\n\n" },
  { name: "a request truncated mid-line (half-closed)", data: () => "set=1\nlisten_po", leave: "end", reference: "errno=-71\n\n" },
  { name: "a client gone mid-line", data: () => "set=1\nprivate_key=abcd", leave: "destroy", reference: "dropped" },
  // wireguard-go's line limit is bufio.Scanner's 64 KiB (-EIO); udptun-wg's limit is its own.
  { name: "a 1 MiB line", data: () => `set=1\nprivate_key=${"a".repeat(1 << 20)}\n\n`, leave: "wait", reference: "errno=-5\n\n", udptun: errnoOrClosed },
  // udptun-wg only: nothing applied until the blank line ends the request.
  { name: "complete lines, then half-closed before the blank line", data: () => "set=1\nlisten_port=54098\n", leave: "end", reference: "errno=0\n\n", referenceApplies: true, udptun: errnoOrClosed },
  { name: "complete lines, then gone before the blank line", data: () => "set=1\nlisten_port=54097\n", leave: "destroy", reference: "dropped", referenceApplies: true, udptun: (r) => r === "dropped" },
  { name: "a good line, then a bad one", data: () => "set=1\nlisten_port=54096\nno_such_key=1\n\n", leave: "wait", reference: "errno=-22\n\n", referenceApplies: true, udptun: (r) => r === "errno=-22\n\n" },
];

async function badInput(t: Test, kind: Kind): Promise<void> {
  const { lab, scratch, hosts: [a] } = f;
  const s = await f.start(kind, a);
  const peer = keyPair().publicKey;
  const conf = scratch.file(`${s.device}.conf`, renderConf({
    privateKey: keyPair().privateKey, listenPort: PORT, fwmark: 0x42,
    peers: [{ publicKey: peer, allowedIps: ["10.82.0.2/32", "fd82::2/128"], endpoint: `${a.ip4}:54031`, persistentKeepalive: 0 }],
  }));
  await s.wg(["setconf", s.device, conf]);
  // The device stays down: no handshakes, so the dump cannot change by itself.
  const baseline = await s.wg(["show", s.device, "dump"]);
  const fds = s.fds();
  const isUdptun = kind === "udptun-wg";

  for (const c of CASES) {
    const reply = await request(s.socket, c.data(hexKey(peer)), c.leave);
    const expected = isUdptun && c.udptun ? c.udptun(reply) : reply === c.reference;
    t.ok(expected, `${c.name}: ${JSON.stringify(reply)} (wireguard-go: ${JSON.stringify(c.reference)})`);
    const after = await s.wg(["show", s.device, "dump"]);
    if (c.referenceApplies && !isUdptun) {
      t.not(after, baseline, `${c.name}: wireguard-go applied the lines it read (the reference; udptun-wg must not)`);
      await s.wg(["setconf", s.device, conf]);
    } else {
      t.equal(after, baseline, `${c.name}: the device is unchanged`);
    }
    // A leak is growth; a rebind may legitimately leave one fewer (wireguard-go's does).
    await t.resolves(pollUntil(() => s.fds() <= fds, 3000, () => `${s.fds()} fds open, ${fds} before`), `${c.name}: the daemon's fds back to at most ${fds}`);
    t.match(await request(s.socket, "get=1\n\n", "wait"), /^private_key=[0-9a-f]{64}\n[^]*errno=0\n\n$/, `${c.name}: it still answers get`);
  }

  // Another user: the socket is root's alone (connect needs write permission on it). The
  // system python3: a client with no access to anything of root's (pyenv shims included).
  const r = await run(...lab.exec(a, "setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c",
    "import errno, socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print('connected')\nexcept OSError as e:\n  print(errno.errorcode[e.errno])", s.socket]));
  t.equal(r.stdout.trim(), "EACCES", `another user cannot open ${s.socket}${r.stderr ? `: ${r.stderr.trim()}` : ""}`);
  t.equal(await s.wg(["show", s.device, "dump"]), baseline, "the device is unchanged at the end");
  t.ok(s.fds() <= fds, `no fd leaked over the whole run (${s.fds()} open, ${fds} at the start)`);
  const stop = await s.stop();
  t.notOk(stop.killed, "it exits on SIGTERM after all that");
}

for (const kind of SUBJECTS) t.test(`bad UAPI input to ${kind}`, (t) => badInput(t, kind));
