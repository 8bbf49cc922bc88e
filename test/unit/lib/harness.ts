// Drives a real NetworkPath / DevicePath (real pool in checked mode, real PeerTable) through
// the fake addon, then holds the result against the oracle. Every check throws a plain Error
// naming what differed, so fast-check can shrink to the smallest input that breaks one.
import fc from "fast-check";
import type { Test } from "tap";
import { DevicePath } from "../../../src/tunnel/device-path.ts";
import { DROP_LABELS } from "../../../src/tunnel/drops.ts";
import { NetworkPath } from "../../../src/tunnel/network-path.ts";
import type { Peer } from "../../../src/tunnel/peers.ts";
import type { BufferPool } from "../../../src/pool/buffer-pool.ts";
import { FakeIo } from "./fake-io.ts";
import { expectDevice, expectNetwork, REASONS, zeroCounts } from "./oracle.ts";
import type { Counts, DevExpectation, NetExpectation, Reason } from "./oracle.ts";
import type { WireDatagram } from "./packets.ts";
import { buildPeerTable, buildPool, FAKE_TUN, fakeSocket } from "./world.ts";
import type { Fixture } from "./world.ts";

/** Batches one readiness wakeup may drain (src/tunnel/constants.ts ROUNDS_PER_WAKEUP). */
const ROUNDS_PER_WAKEUP = 8;
/** A run that needs more driver steps than this is stuck. */
const STEP_LIMIT = 10_000;

export function fail(msg: string): never {
  throw new Error(msg);
}

export const hex = (b: Uint8Array, max = 48): string =>
  Buffer.from(b.subarray(0, max)).toString("hex") + (b.length > max ? `...(${b.length} bytes)` : ` (${b.length} bytes)`);

/** The path's drop counters by metric label. */
export function countsOf(drops: Float64Array): Counts {
  const c = zeroCounts();
  DROP_LABELS.forEach((label, i) => {
    if (!(REASONS as readonly string[]).includes(label)) fail(`unknown drop label ${label}`);
    c[label as Reason] = drops[i];
  });
  return c;
}

export function sameCounts(what: string, actual: Counts, expected: Counts): void {
  for (const r of REASONS) {
    if (actual[r] !== expected[r]) {
      const diff = REASONS.filter((x) => actual[x] !== expected[x]).map((x) => `${x}: ${actual[x]} (expected ${expected[x]})`);
      fail(`${what}: drop counters differ: ${diff.join(", ")}`);
    }
  }
}

/** firstDrop must fire exactly once per reason that dropped anything, with the right detail. */
export function sameFirstDrops(what: string, calls: [number, string][], expected: Map<Reason, string>): void {
  const seen = new Map<Reason, string>();
  for (const [code, detail] of calls) {
    const label = DROP_LABELS[code] as Reason;
    if (seen.has(label)) fail(`${what}: firstDrop called twice for ${label}`);
    seen.set(label, detail);
  }
  for (const [label, detail] of expected) {
    if (!seen.has(label)) fail(`${what}: no firstDrop for ${label}`);
    if (seen.get(label) !== detail) fail(`${what}: firstDrop(${label}) detail ${JSON.stringify(seen.get(label))}, expected ${JSON.stringify(detail)}`);
  }
  for (const label of seen.keys()) if (!expected.has(label)) fail(`${what}: firstDrop for ${label}, which dropped nothing`);
}

// ---------------------------------------------------------------- network path

export interface NetOptions {
  capacity: number;
  readCaps?: readonly number[];
  tunFailures?: ReadonlyMap<number, number>;
}

export interface NetResult {
  expected: NetExpectation;
  path: NetworkPath;
  peers: Peer[];
  pool: BufferPool;
  io: FakeIo;
  firstDrops: [number, string][];
}

/** Feeds `datagrams` to a fresh network path, drains it, and checks it against the oracle. */
export function runNetwork(fx: Fixture, datagrams: readonly WireDatagram[], opts: NetOptions): NetResult {
  const pool = buildPool("network", opts.capacity);
  const { table, peers } = buildPeerTable(fx);
  const io = new FakeIo({ role: "network", slab: pool.slab, readCaps: opts.readCaps, tunFailures: opts.tunFailures });
  const firstDrops: [number, string][] = [];
  const path = new NetworkPath(fakeSocket(true), FAKE_TUN, pool, table, {
    poolEmpty: () => fail("network path: pool reported empty (every batch is returned before the next read)"),
    firstDrop: (r, d) => firstDrops.push([r, d]),
  }, io);
  io.feedUdp(datagrams);
  drainNetwork(path, io, pool);
  const expected = expectNetwork(fx, datagrams, opts.tunFailures ?? new Map());
  checkNetwork(`network path (${fx.label})`, expected, path, io, peers, firstDrops);
  return { expected, path, peers, pool, io, firstDrops };
}

/** Wakes the path until the fake has handed over every datagram; each wakeup must stay
 * within ROUNDS_PER_WAKEUP reads and give every buffer back. */
export function drainNetwork(path: NetworkPath, io: FakeIo, pool: BufferPool): void {
  let steps = 0;
  while (io.pending > 0) {
    if (++steps > STEP_LIMIT) fail(`network path stuck with ${io.pending} datagrams unread`);
    const before = io.calls.udpRecv;
    path.onReadable();
    if (io.calls.udpRecv - before > ROUNDS_PER_WAKEUP) fail(`one wakeup made ${io.calls.udpRecv - before} udpRecv calls`);
    if (pool.inUse !== 0) fail(`${pool.inUse} network buffers still out after onReadable`);
  }
}

/** What the network path did, held against the oracle's expectation. */
export function checkNetwork(
  what: string, expected: NetExpectation, path: NetworkPath, io: FakeIo, peers: readonly Peer[], firstDrops: [number, string][],
): void {
  if (io.calls.udpSend !== 0 || io.calls.tunRead !== 0) fail(`${what}: called udpSend/tunRead`);
  sameCounts(what, countsOf(path.drops), expected.drops);
  if (io.tunOut.length !== expected.delivered.length) {
    fail(`${what}: ${io.tunOut.length} packets reached the TUN device, expected ${expected.delivered.length}`);
  }
  expected.delivered.forEach((want, i) => {
    if (!io.tunOut[i].equals(want)) fail(`${what}: delivered packet ${i} is ${hex(io.tunOut[i])}, expected ${hex(want)}`);
  });
  peers.forEach((p, i) => {
    const rx = expected.rx[i];
    if (p.rxPackets !== rx.packets || p.rxBytes !== rx.bytes || p.rxKeepalives !== rx.keepalives) {
      fail(`${what}: peer ${p.name} rx ${p.rxPackets}/${p.rxBytes}B/${p.rxKeepalives}ka, expected ${rx.packets}/${rx.bytes}B/${rx.keepalives}ka`);
    }
    if (p.txPackets !== 0 || p.txBytes !== 0) fail(`${what}: peer ${p.name} has tx counts`);
  });
  if (path.packets !== expected.packets || path.bytes !== expected.bytes) {
    fail(`${what}: path counted ${path.packets} packets/${path.bytes} bytes, expected ${expected.packets}/${expected.bytes}`);
  }
  if (path.lastWriteErrno !== expected.lastWriteErrno) fail(`${what}: lastWriteErrno ${path.lastWriteErrno}, expected ${expected.lastWriteErrno}`);
  sameFirstDrops(what, firstDrops, expected.firstDrop);
}

// ---------------------------------------------------------------- device path

export interface DevOptions {
  capacity: number;
  v6socket: boolean;
  readCaps?: readonly number[];
  sendBudgets?: readonly number[];
  sendFailures?: ReadonlyMap<number, number>;
  /** Per driver step: also make a call that must do nothing (onReadable while held, onWritable while idle). */
  spurious?: readonly boolean[];
  /** Shut down (discard) at the first step from this one on where a batch is held. */
  stopAt?: number | null;
  /** Let udpSend return 0 (see FakeIoOptions.eagainFirst). */
  eagainFirst?: boolean;
}

export interface DevResult {
  expected: DevExpectation;
  path: DevicePath;
  peers: Peer[];
  pool: BufferPool;
  io: FakeIo;
  firstDrops: [number, string][];
  discarded: boolean;
  /** Most buffers held at once while waiting for the socket. */
  maxHeld: number;
}

/** Feeds `packets` to a fresh device path, drives reads and writability until it is drained
 * (or discarded), and checks it against the oracle. */
export function runDevice(fx: Fixture, packets: readonly Uint8Array[], opts: DevOptions): DevResult {
  const pool = buildPool("device", opts.capacity);
  const { table, peers } = buildPeerTable(fx);
  const io = new FakeIo({
    role: "device", slab: pool.slab, v6socket: opts.v6socket, readCaps: opts.readCaps,
    sendBudgets: opts.sendBudgets, sendFailures: opts.sendFailures, eagainFirst: opts.eagainFirst,
  });
  const firstDrops: [number, string][] = [];
  let full: boolean | null = null;
  const path = new DevicePath(FAKE_TUN, fakeSocket(opts.v6socket), pool, table, {
    socketFull: (f) => (full = f),
    poolEmpty: () => fail("device path: pool reported empty (reads pause while a batch is held)"),
    firstDrop: (r, d) => firstDrops.push([r, d]),
    gsoRefused: () => fail("device path: GSO is not used without TUN offloads"),
  }, io);
  io.feedTun(packets);
  const what = `device path (${fx.label}, ${opts.v6socket ? "v6" : "v4"} socket)`;

  let discarded = false;
  let maxHeld = 0;
  for (let step = 0; ; step++) {
    if (step > STEP_LIMIT) fail(`${what}: stuck (${io.pending} unread, ${io.held} held)`);
    const spurious = opts.spurious?.[step % Math.max(1, opts.spurious.length)] ?? false;
    if (path.sending) {
      if (opts.stopAt != null && step >= opts.stopAt) {
        path.discard();
        discarded = true;
        break;
      }
      if (spurious) {
        const before = io.calls.tunRead + io.calls.udpSend;
        path.onReadable(); // a wakeup already in flight when reads were paused: must do nothing
        if (io.calls.tunRead + io.calls.udpSend !== before) fail(`${what}: onReadable did I/O while a batch was held`);
      }
      path.onWritable();
    } else {
      if (io.pending === 0) break;
      if (spurious) {
        const before = io.calls.udpSend;
        path.onWritable(); // writability with nothing held: must do nothing
        if (io.calls.udpSend !== before) fail(`${what}: onWritable sent with nothing held`);
      }
      const before = io.calls.tunRead;
      path.onReadable();
      if (io.calls.tunRead - before > ROUNDS_PER_WAKEUP) fail(`${what}: one wakeup made ${io.calls.tunRead - before} tunRead calls`);
    }
    // Buffers out of the pool are exactly the ones held for the socket.
    if (path.sending !== io.held > 0) fail(`${what}: sending=${path.sending} but ${io.held} datagrams were left by udpSend`);
    if (pool.inUse !== (path.sending ? io.held : 0)) fail(`${what}: ${pool.inUse} device buffers out, ${io.held} held for the socket`);
    maxHeld = Math.max(maxHeld, pool.inUse);
    // Back-pressure hooks agree with the state: reads paused and writability wanted iff held.
    if (full !== null && full !== path.sending) fail(`${what}: socketFull(${full}) while sending=${path.sending}`);
  }
  if (pool.inUse !== 0) fail(`${what}: ${pool.inUse} device buffers still out at the end${discarded ? " (after discard)" : ""}`);
  if (discarded && path.sending) fail(`${what}: still sending after discard`);

  const read = packets.slice(0, io.consumed);
  if (!discarded && read.length !== packets.length) fail(`${what}: ${packets.length - read.length} packets never read`);
  const expected = expectDevice(fx, read, opts.v6socket, opts.sendFailures ?? new Map(), discarded ? io.processed : null);
  if (io.calls.udpRecv !== 0 || io.calls.tunWrite !== 0) fail(`${what}: called udpRecv/tunWrite`);
  sameCounts(what, countsOf(path.drops), expected.drops);
  if (io.sent.length !== expected.sent.length) fail(`${what}: ${io.sent.length} datagrams sent, expected ${expected.sent.length}`);
  expected.sent.forEach((want, i) => {
    const got = io.sent[i];
    if (!Buffer.from(got.dest).equals(want.dest)) fail(`${what}: datagram ${i} sent to ${hex(got.dest)}, expected ${hex(want.dest)}`);
    if (!Buffer.from(got.bytes).equals(want.bytes)) fail(`${what}: datagram ${i} is ${hex(got.bytes)}, expected ${hex(want.bytes)}`);
  });
  peers.forEach((p, i) => {
    const tx = expected.tx[i];
    if (p.txPackets !== tx.packets || p.txBytes !== tx.bytes) {
      fail(`${what}: peer ${p.name} tx ${p.txPackets}/${p.txBytes}B, expected ${tx.packets}/${tx.bytes}B`);
    }
    if (p.rxPackets !== 0 || p.rxBytes !== 0 || p.rxKeepalives !== 0) fail(`${what}: peer ${p.name} has rx counts`);
  });
  if (path.packets !== expected.packets || path.bytes !== expected.bytes) {
    fail(`${what}: path counted ${path.packets} packets/${path.bytes} bytes, expected ${expected.packets}/${expected.bytes}`);
  }
  if (path.lastSendErrno !== expected.lastSendErrno) fail(`${what}: lastSendErrno ${path.lastSendErrno}, expected ${expected.lastSendErrno}`);
  sameFirstDrops(what, firstDrops, expected.firstDrop);
  return { expected, path, peers, pool, io, firstDrops, discarded, maxHeld };
}

// ---------------------------------------------------------------- the fuzz loop

export interface FuzzSettings {
  seed: number;
  inputs: number;
  /** FUZZ_REPLAY=seed:path replays one counterexample fast-check reported. */
  replay: { seed: number; path: string } | null;
}

export function fuzzSettings(defaultSeed: number, defaultInputs = 1_000_000): FuzzSettings {
  const env = process.env;
  const seed = env.FUZZ_SEED ? Number(env.FUZZ_SEED) | 0 : defaultSeed;
  const inputs = env.FUZZ_INPUTS ? Math.max(1, Number(env.FUZZ_INPUTS)) : defaultInputs;
  let replay: FuzzSettings["replay"] = null;
  if (env.FUZZ_REPLAY) {
    const [s, ...p] = env.FUZZ_REPLAY.split(":");
    replay = { seed: Number(s) | 0, path: p.join(":") };
  }
  if (!Number.isFinite(inputs)) throw new Error(`FUZZ_INPUTS=${env.FUZZ_INPUTS} is not a number`);
  return { seed, inputs, replay };
}

export interface FuzzReport {
  inputs: number;
  runs: number;
  chunks: number;
  seconds: number;
}

/**
 * Runs `property` over values of `arb` until it has consumed `settings.inputs` inputs (it
 * returns how many each run took). Chunk c runs with seed settings.seed + c; fast-check's
 * failure message gives the seed and path, which FUZZ_REPLAY=seed:path replays.
 */
export function fuzz<T>(t: Test, name: string, settings: FuzzSettings, arb: fc.Arbitrary<T>, property: (v: T) => number): FuzzReport {
  const start = performance.now();
  let inputs = 0;
  let runs = 0;
  let chunks = 0;
  const prop = fc.property(arb, (v) => {
    inputs += property(v);
    runs++;
  });
  if (settings.replay) {
    t.comment(`${name}: replaying seed ${settings.replay.seed} path ${settings.replay.path}`);
    fc.assert(prop, { seed: settings.replay.seed, path: settings.replay.path, numRuns: 1 });
  } else {
    t.comment(`${name}: seed ${settings.seed}, ${settings.inputs} inputs (override with FUZZ_SEED, FUZZ_INPUTS)`);
    while (inputs < settings.inputs) {
      const perRun = runs > 0 ? inputs / runs : 40;
      const numRuns = Math.max(1, Math.ceil((settings.inputs - inputs) / perRun));
      fc.assert(prop, { seed: (settings.seed + chunks) | 0, numRuns });
      chunks++;
    }
  }
  return { inputs, runs, chunks, seconds: (performance.now() - start) / 1000 };
}

/** Adds one run's counters into a running total. */
export function addCounts(total: Counts, c: Counts): void {
  for (const r of REASONS) total[r] += c[r];
}

export function showCounts(c: Counts, reasons: readonly Reason[]): string {
  return reasons.map((r) => `${r}=${c[r]}`).join(" ");
}
