// A WireGuard implementation driven the way `wg` and `wg-quick` drive one: the daemon started
// by its command line (`BIN INTERFACE`, detached unless a test needs the child), configured
// and read only through `wg` (bookworm's or trixie's wireguard-tools) or raw on its UAPI
// socket, and brought up and down by `wg-quick`. The same helpers run wireguard-go (the
// reference) and udptun-wg, so one test holds both to the same contract.
//
// A detached daemon is no child of ours: it is found as the process holding its UAPI
// socket, watched through /proc, and stopped by pid.
import { spawn } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { encodeKey } from "../../../src/wireguard/keys.ts";
import { generatePrivateKey, publicKeyOf } from "../../../src/wireguard/x25519.ts";
import type { Test } from "tap";
import { Lab } from "./netns.ts";
import type { Host } from "./netns.ts";
import { startIperf } from "./iperf.ts";
import type { IperfResult } from "./iperf.ts";
import { must, run, start } from "./proc.ts";
import type { Daemon } from "./proc.ts";
import { ROOT } from "./udptun.ts";
import { BOOKWORM, TRIXIE, TRIXIE_DIR, missingBins } from "./wireguard-bins.ts";
import { parseDump, socketPath } from "./wireguard-go.ts";
import type { WgLogLevel, WgState } from "./wireguard-go.ts";

export type Kind = "wireguard-go" | "wireguard-go-2023" | "udptun-wg";

/** udptun's drop-in for wireguard-go (issue #12). */
export const UDPTUN_WG = path.join(ROOT, "bin/udptun-wg");

/** The executable of each implementation: bookworm's wireguard-go, trixie's (2023), udptun-wg. */
export function binaryOf(kind: Kind): string {
  switch (kind) {
    case "wireguard-go": return BOOKWORM.wireguardGo;
    case "wireguard-go-2023": return TRIXIE.wireguardGo;
    case "udptun-wg": return UDPTUN_WG;
  }
}

/**
 * The implementations each file runs its tests against: the reference first (the tests must
 * pass there), then udptun-wg. WG_TOOLS_KINDS=a,b narrows it for a local run; never by default.
 */
export const SUBJECTS: Kind[] = (process.env.WG_TOOLS_KINDS?.split(",") ?? ["wireguard-go", "udptun-wg"]).map((k) => {
  if (k !== "wireguard-go" && k !== "wireguard-go-2023" && k !== "udptun-wg") throw new Error(`WG_TOOLS_KINDS: ${JSON.stringify(k)} is not wireguard-go, wireguard-go-2023 or udptun-wg`);
  return k;
});

/** One Debian release of wireguard-tools: its `wg` and its `wg-quick`. */
export interface Tools {
  release: "bookworm" | "trixie";
  wg: string;
  wgQuick: string;
}

export const BOOKWORM_TOOLS: Tools = Object.freeze({ release: "bookworm", wg: BOOKWORM.wg, wgQuick: "/usr/bin/wg-quick" });
export const TRIXIE_TOOLS: Tools = Object.freeze({ release: "trixie", wg: TRIXIE.wg, wgQuick: path.join(TRIXIE_DIR, "root/usr/bin/wg-quick") });

/** Null when everything `kind` and `tools` need exists, else what is missing. */
export function missing(kind: Kind, tools: Tools = BOOKWORM_TOOLS): string | null {
  const gone = [binaryOf(kind), tools.wg, tools.wgQuick].filter((p) => !existsSync(p));
  if (gone.length === 0) return null;
  const trixie = missingBins(TRIXIE);
  return `missing: ${gone.join(", ")}${trixie && gone.some((p) => p.startsWith(TRIXIE_DIR)) ? ` (${trixie})` : ""}${gone.includes(UDPTUN_WG) ? " (udptun-wg: branch wg-cmd)" : ""}`;
}

/** The Node running the tests first on PATH, so a `#!/usr/bin/env node` daemon gets Node 24. */
const PATH_ENV = `${path.dirname(process.execPath)}:${process.env.PATH ?? "/usr/bin:/bin"}`;

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

/** A fresh key pair, base64 as `wg` prints them. */
export function keyPair(): KeyPair {
  const priv = generatePrivateKey();
  return { privateKey: encodeKey(priv), publicKey: encodeKey(publicKeyOf(priv)) };
}

/** A base64 key as the UAPI socket takes it: 64 lowercase hex characters. */
export const hexKey = (base64: string): string => Buffer.from(base64, "base64").toString("hex");

/** A temporary folder for key files, configurations and daemon logs; removed by cleanup(). */
export class Scratch {
  readonly dir = mkdtempSync(path.join(tmpdir(), "ute-wg-"));
  /** Writes a file only root can read: it may hold a private key. */
  file(name: string, text: string): string {
    const f = path.join(this.dir, name);
    writeFileSync(f, text, { mode: 0o600 });
    return f;
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let devices = 0;
/** A device name with the `ute` prefix, unique across files running at once (the socket path is host-wide). */
export function deviceName(): string {
  return `ute${process.pid.toString(36)}${(devices++).toString(36)}`.slice(0, 15);
}

export interface StartOptions {
  device?: string;
  /** The daemon stays our child (its exit code and output are then ours to read): by -f, or by WG_PROCESS_FOREGROUND=1. */
  foreground?: "flag" | "env";
  logLevel?: WgLogLevel;
  /** The tools `wg()` uses on this implementation; default bookworm's. */
  tools?: Tools;
  scratch: Scratch;
  /** Without the test runner's instrumentation (NODE_V8_COVERAGE and the hooks in NODE_OPTIONS,
   * inherited by every Node child): it slows udptun-wg's JavaScript 2-3x, so a timed daemon
   * runs without it. */
  timed?: boolean;
}

export interface Implementation {
  kind: Kind;
  /** Where the daemon runs (its UDP socket lives here even if the device moves). */
  host: Host;
  device: string;
  socket: string;
  pid: number;
  /** With -f only. */
  child: Daemon | null;
  /** The daemon's output so far (a detached one writes to a log file). */
  log(): string;
  /** Runs `wg ARGS` (this implementation's tools) in the daemon's namespace. */
  wg(args: string[], tools?: Tools): Promise<string>;
  /** `wg show DEVICE dump`, parsed. */
  dump(tools?: Tools): Promise<WgState>;
  /** The number of open file descriptors of the daemon. */
  fds(): number;
  alive(): boolean;
  /** SIGTERM and wait until the process is gone (SIGKILL after timeoutMs). */
  stop(timeoutMs?: number): Promise<{ killed: boolean; socketLeft: boolean }>;
}

/**
 * Starts `kind` as wg-quick would: `BIN DEVICE` in the host's namespace, whose parent must exit
 * 0 only once the device and its UAPI socket exist; with foreground, `BIN -f DEVICE` (or
 * WG_PROCESS_FOREGROUND=1) and wait for the socket. The returned daemon is unconfigured: no key, no port, no peers.
 */
export async function startImplementation(kind: Kind, lab: Lab, host: Host, opts: StartOptions): Promise<Implementation> {
  const device = opts.device ?? deviceName();
  if (!/^ute[A-Za-z0-9_.-]{1,12}$/.test(device)) throw new Error(`${kind}: device: ${JSON.stringify(device)} is not an interface name starting ute`);
  const socket = socketPath(device);
  if (existsSync(socket)) throw new Error(`${kind}: ${socket} already exists (another instance, or a leftover)`);
  const gone = missing(kind);
  if (gone) throw new Error(`${kind}: ${gone}`);
  const bin = binaryOf(kind);
  const unset = opts.timed ? ["-u", "NODE_V8_COVERAGE", "-u", "NODE_OPTIONS"] : [];
  const env = [`PATH=${PATH_ENV}`, `LOG_LEVEL=${opts.logLevel ?? "error"}`];
  const logFile = path.join(opts.scratch.dir, `${device}.log`);
  let child: Daemon | null = null;
  if (opts.foreground) {
    const how = opts.foreground === "flag"
      ? [...unset, "-u", "WG_PROCESS_FOREGROUND", ...env, bin, "-f", device]
      : [...unset, "WG_PROCESS_FOREGROUND=1", ...env, bin, device];
    child = start(...lab.exec(host, "env", how));
    await pollUntil(() => existsSync(socket), 10_000, () => `${kind} ${how.slice(-2).join(" ")}: ${socket} did not appear:\n${child!.output()}`, child.exited);
  } else {
    const r = await runLogged(lab.exec(host, "env", [...unset, "-u", "WG_PROCESS_FOREGROUND", ...env, bin, device]), logFile, 15_000);
    if (r.code !== 0) throw new Error(`${kind} ${device} exited ${r.code} (expected 0 once device and socket exist):\n${r.output}`);
    // The contract: both exist by the time the parent has exited, not some time later.
    if (!existsSync(socket)) throw new Error(`${kind} ${device}: the parent exited 0 before ${socket} existed:\n${readLog(logFile)}`);
  }
  const link = await run(...lab.exec(host, "ip", ["link", "show", "dev", device]));
  if (link.code !== 0) throw new Error(`${kind} ${device}: no device in ${host.ns} once the socket exists: ${link.stderr.trim()}`);
  const pid = await daemonOf(host.ns, device);
  const tools = opts.tools ?? BOOKWORM_TOOLS;
  const inst: Implementation = {
    kind, host, device, socket, pid, child,
    log: () => child?.output() ?? readLog(logFile),
    wg: (args, t = tools) => must(...lab.exec(host, t.wg, args)),
    dump: async (t = tools) => parseDump(await must(...lab.exec(host, t.wg, ["show", device, "dump"]))),
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    alive: () => isAlive(pid),
    stop: async (timeoutMs = 5000) => {
      const killed = await stopPid(pid, timeoutMs);
      return { killed, socketLeft: existsSync(socket) };
    },
  };
  return inst;
}

/** For teardowns: SIGKILL whatever still runs, and the socket file a killed daemon leaves. */
export async function killImplementation(inst: Implementation | undefined): Promise<void> {
  if (!inst) return;
  if (inst.alive()) await stopPid(inst.pid, 0);
  rmSync(inst.socket, { force: true });
}

/** Whether pid runs (a zombie counts as gone: a detached daemon has no parent of ours to reap it). */
export function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/** SIGTERM (or SIGKILL at once when timeoutMs is 0), SIGKILL at the timeout; true if it had to be killed. */
async function stopPid(pid: number, timeoutMs: number): Promise<boolean> {
  try { process.kill(pid, timeoutMs === 0 ? "SIGKILL" : "SIGTERM"); } catch { return false; }
  try {
    await pollUntil(() => !isAlive(pid), timeoutMs || 5000, () => `pid ${pid} still runs`);
    return timeoutMs === 0;
  } catch {
    try { process.kill(pid, "SIGKILL"); } catch { /* gone meanwhile */ }
    await pollUntil(() => !isAlive(pid), 5000, () => `pid ${pid} survived SIGKILL`);
    return true;
  }
}

/** The pid of the daemon of `device` running in namespace ns: the process holding its UAPI socket. */
export function daemonOf(ns: string, device: string): Promise<number> {
  return pollFor(() => socketHolder(ns, socketPath(device)), 5000, () => `no process in ${ns} holds ${socketPath(device)}`);
}

/** The pid in namespace ns with an open fd on the listening unix socket bound to path. */
async function socketHolder(ns: string, socket: string): Promise<number | null> {
  const pids = (await run("ip", ["netns", "pids", ns])).stdout.split("\n").filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      // /proc/PID/net/unix: "Num RefCount Protocol Flags Type St Inode Path", this pid's namespace.
      const inodes = new Set(readFileSync(`/proc/${pid}/net/unix`, "utf8").split("\n")
        .map((l) => l.trim().split(/\s+/)).filter((f) => f[7] === socket).map((f) => `socket:[${f[6]}]`));
      if (inodes.size === 0) continue;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return pid;
      }
    } catch { /* exited meanwhile */ }
  }
  return null;
}

/** The outcome of a command whose daemon children inherit its output (so we wait for its exit, not for EOF). */
export interface Logged {
  code: number | null;
  output: string;
}

/** Runs [cmd, args] with stdout and stderr appended to logFile; resolves when it exits. */
export function runLogged([cmd, args]: [string, string[]], logFile: string, timeoutMs: number): Promise<Logged> {
  const offset = readLog(logFile).length;
  const fd = openSync(logFile, "a", 0o600);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output: readLog(logFile).slice(offset) });
    });
  });
}

function readLog(file: string): string {
  try { return readFileSync(file, "utf8"); } catch { return ""; }
}

/**
 * wg-quick ACTION FILE in the host's namespace, `kind` as its userspace implementation. wg-quick
 * puts its own folder first on PATH; trixie's `wg` there needs trixie's glibc, so trixie's
 * wg-quick runs from a copy beside a link to the wrapper that provides it.
 */
export function wgQuick(lab: Lab, host: Host, tools: Tools, kind: Kind, action: "up" | "down", file: string, scratch: Scratch): Promise<Logged> {
  let script = tools.wgQuick;
  if (tools.release === "trixie") {
    const dir = path.join(scratch.dir, "trixie-bin");
    script = path.join(dir, "wg-quick");
    if (!existsSync(script)) {
      mkdirSync(dir);
      copyFileSync(tools.wgQuick, script);
      symlinkSync(tools.wg, path.join(dir, "wg"));
    }
  }
  return runLogged(lab.exec(host, "env", ["-u", "WG_PROCESS_FOREGROUND", `PATH=${PATH_ENV}`, `WG_QUICK_USERSPACE_IMPLEMENTATION=${binaryOf(kind)}`,
    "LOG_LEVEL=error", "bash", script, action, file]), `${file}.log`, 30_000);
}

/** Polls cond every 20 ms until it holds; rejects with why() after timeoutMs or when `exited` settles first. */
export async function pollUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, why: () => string, exited?: Promise<unknown>): Promise<void> {
  await pollFor(async () => ((await cond()) ? true : null), timeoutMs, why, exited);
}

/** Polls fn every 20 ms until it returns non-null. */
export async function pollFor<T>(fn: () => T | null | Promise<T | null>, timeoutMs: number, why: () => string, exited?: Promise<unknown>): Promise<T> {
  let ended = false;
  void exited?.then(() => { ended = true; });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (ended) throw new Error(`exited: ${why()}`);
    if (Date.now() > deadline) throw new Error(`after ${timeoutMs} ms: ${why()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** ping -c COUNT; true when every reply came back. */
export async function ping(lab: Lab, ns: string, dst: string, opts: { count?: number; source?: string; waitS?: number } = {}): Promise<boolean> {
  const args = ["-n", "-q", "-c", String(opts.count ?? 3), "-i", "0.2", "-W", String(opts.waitS ?? 2), ...(opts.source ? ["-I", opts.source] : []), dst];
  const r = await run(...lab.exec(ns, dst.includes(":") ? "ping6" : "ping", args));
  return r.code === 0;
}

/** Retries a single ping until one answers; resolves with the milliseconds it took. */
export async function pingUntil(lab: Lab, ns: string, dst: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await pollUntil(() => ping(lab, ns, dst, { count: 1, waitS: 1 }), timeoutMs, () => `no reply from ${dst} in ${ns}`);
  return Date.now() - t0;
}

/** Adds addresses to a device and brings it up (where the device now is). */
export async function addressUp(lab: Lab, ns: string, device: string, cidrs: string[], mtu = 1420): Promise<void> {
  for (const cidr of cidrs) {
    const v6 = cidr.includes(":");
    await must(...lab.exec(ns, "ip", [...(v6 ? ["-6"] : []), "addr", "add", cidr, "dev", device, ...(v6 ? ["nodad"] : [])]));
  }
  await must(...lab.exec(ns, "ip", ["link", "set", device, "mtu", String(mtu), "up"]));
}

/** One peer of a configuration file. */
export interface ConfPeer {
  publicKey: string;
  presharedKey?: string;
  allowedIps: string[];
  endpoint?: string;
  persistentKeepalive?: number;
}

/** A device's configuration as `wg setconf` takes it; with address, a wg-quick file. */
export interface Conf {
  privateKey: string;
  listenPort?: number;
  fwmark?: number;
  /** wg-quick only. */
  address?: string[];
  peers: ConfPeer[];
}

/** The text of a configuration file (`wg setconf`/`syncconf`, or wg-quick with address). */
export function renderConf(c: Conf): string {
  const lines = ["[Interface]", `PrivateKey = ${c.privateKey}`];
  if (c.listenPort !== undefined) lines.push(`ListenPort = ${c.listenPort}`);
  if (c.fwmark) lines.push(`FwMark = 0x${c.fwmark.toString(16)}`);
  if (c.address) lines.push(`Address = ${c.address.join(", ")}`);
  for (const p of c.peers) {
    lines.push("", "[Peer]", `PublicKey = ${p.publicKey}`);
    if (p.presharedKey) lines.push(`PresharedKey = ${p.presharedKey}`);
    lines.push(`AllowedIPs = ${p.allowedIps.join(", ")}`);
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.persistentKeepalive) lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  }
  return lines.join("\n") + "\n";
}

/** `wg showconf` output: the [Interface] section's keys, then each [Peer]'s, as written. */
export function parseShowconf(text: string): { iface: Record<string, string>; peers: Record<string, string>[] } {
  const sections: Record<string, string>[] = [];
  for (const line of text.split("\n")) {
    if (/^\[(Interface|Peer)\]$/.test(line.trim())) sections.push({});
    const m = /^(\w+)\s*=\s*(.*)$/.exec(line.trim());
    if (m && sections.length) sections[sections.length - 1][m[1]] = m[2];
  }
  const [iface = {}, ...peers] = sections;
  return { iface, peers };
}

/** Field by field: what `wg show dump` reports against the configuration that was set. */
export function checkDump(t: Test, got: WgState, want: Conf, publicKey: string): void {
  t.equal(got.privateKey, want.privateKey, "dump: private key");
  t.equal(got.publicKey, publicKey, "dump: public key");
  t.equal(got.listenPort, want.listenPort, "dump: listen port");
  t.equal(got.fwmark, want.fwmark ? `0x${want.fwmark.toString(16)}` : "off", "dump: fwmark");
  t.equal(got.peers.length, want.peers.length, "dump: peer count");
  for (const wp of want.peers) {
    const p = got.peers.find((x) => x.publicKey === wp.publicKey);
    if (!t.ok(p, `dump: peer ${wp.publicKey} present`) || !p) continue;
    t.equal(p.presharedKey, wp.presharedKey ?? null, "dump: preshared key");
    t.equal(p.endpoint, wp.endpoint ?? null, "dump: endpoint");
    t.same([...p.allowedIps].sort(), [...wp.allowedIps].sort(), "dump: allowed IPs");
    t.equal(p.persistentKeepalive, wp.persistentKeepalive ?? 0, "dump: persistent keepalive");
  }
}

/**
 * A test file's world: a Lab with the named hosts (198.18.0.1, .2, ... in order, ready once
 * t.before has run), a scratch folder, and every implementation started through it killed
 * in teardown.
 */
export class Fixture {
  readonly lab = new Lab();
  readonly scratch = new Scratch();
  readonly hosts: Host[] = [];
  private readonly started: Implementation[] = [];

  constructor(t: Test, names: string[]) {
    t.before(async () => {
      await this.lab.up();
      for (const [i, name] of names.entries()) this.hosts.push(await this.lab.addHost(name, i + 1));
    });
    t.teardown(async () => {
      for (const i of this.started) await killImplementation(i);
      await this.lab.destroy();
      this.scratch.cleanup();
    });
  }

  async start(kind: Kind, host: Host, opts: Omit<StartOptions, "scratch"> = {}): Promise<Implementation> {
    const inst = await startImplementation(kind, this.lab, host, { ...opts, scratch: this.scratch });
    this.started.push(inst);
    return inst;
  }
}

/**
 * iperf3 through a tunnel, bounded: startIperf's one-off server waits for its client forever,
 * so a tunnel that carries nothing would hang the file; here it fails after a deadline.
 */
export async function iperfThrough(lab: Lab, client: Host, server: Host, args: string[], seconds: number, port: number): Promise<IperfResult> {
  const r = await startIperf(lab, client, server, ["--connect-timeout", "3000", ...args], seconds, port);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`iperf3 ${args.join(" ")}: no result within ${seconds + 10} s`)), (seconds + 10) * 1000);
  });
  try {
    return await Promise.race([r.result, deadline]);
  } finally {
    clearTimeout(timer);
    r.server.child.kill("SIGKILL");
  }
}
