// Drives the real NetworkPath with the WireGuard Opener (wg-world-path.ts) over the fake
// addon I/O, with or without UDP GRO, and holds the run against the WireGuard oracle: drops,
// delivered bytes, per-peer counters, the Opener's calls and each keypair's accepted count.
import { SUPER_BUFFER_SIZE } from "../../../src/tunnel/constants.ts";
import { NetworkPath } from "../../../src/tunnel/network-path.ts";
import type { Peer } from "../../../src/tunnel/peers.ts";
import { BufferPool } from "../../../src/pool/buffer-pool.ts";
import { FakeIo } from "./fake-io.ts";
import { checkNetwork, drainNetwork, fail, hex } from "./harness.ts";
import type { NetOptions } from "./harness.ts";
import type { WireDatagram } from "./packets.ts";
import { expectWireGuard, DATA_HEADER, TAG } from "./wg-oracle.ts";
import type { WgExpectation } from "./wg-oracle.ts";
import { acceptedOn, FuzzOpener, installWorld, WG_START } from "./wg-world-path.ts";
import type { WgWorld } from "./wg-world-path.ts";
import { BUFFER_SIZE, buildPeerTable, buildPool, FAKE_TUN, fakeSocket, HEADROOM, MTU } from "./world.ts";

export interface WgRunOptions extends NetOptions {
  gro: boolean;
}

export interface WgResult {
  expected: WgExpectation;
  path: NetworkPath;
  peers: Peer[];
  io: FakeIo;
  opener: FuzzOpener;
  firstDrops: [number, string][];
}

/** GRO pools (64 KiB buffers) are kept between runs, one per capacity; each run starts with all back. */
const groPools = new Map<number, BufferPool>();

function groPool(capacity: number): BufferPool {
  let pool = groPools.get(capacity);
  if (pool === undefined) {
    pool = new BufferPool({ name: "network_gro", bufferSize: SUPER_BUFFER_SIZE, capacity, headroom: HEADROOM, checked: true });
    groPools.set(capacity, pool);
  }
  if (pool.inUse !== 0) fail(`${pool.inUse} GRO buffers out before the run`);
  return pool;
}

/** Installs the world's keypairs, feeds `datagrams` to a fresh path, drains it, and checks it. */
export function runWireGuard(world: WgWorld, datagrams: readonly WireDatagram[], opts: WgRunOptions): WgResult {
  installWorld(world);
  const pool = opts.gro ? groPool(opts.capacity) : buildPool("network", opts.capacity);
  const bufferSize = opts.gro ? SUPER_BUFFER_SIZE : BUFFER_SIZE;
  const { table, peers } = buildPeerTable(world.fx);
  const io = new FakeIo({
    role: "network", slab: pool.slab, readCaps: opts.readCaps, tunFailures: opts.tunFailures, bufferSize, datagramStart: WG_START, gro: opts.gro,
  });
  const opener = new FuzzOpener(world, peers);
  const firstDrops: [number, string][] = [];
  const path = new NetworkPath(fakeSocket(true), FAKE_TUN, pool, table, {
    poolEmpty: () => fail("network path: pool reported empty (every batch is returned before the next read)"),
    firstDrop: (r, d) => firstDrops.push([r, d]),
  }, io, { gro: opts.gro, tun: false, join: 0 }, opener);
  io.feedUdp(datagrams);
  drainNetwork(path, io, pool);

  const room = bufferSize - WG_START;
  const expected = expectWireGuard(world, datagrams, opts.tunFailures ?? new Map(), opts.gro ? room : MTU + DATA_HEADER + TAG, room);
  const what = `wireguard network path (${world.fx.label}${opts.gro ? ", GRO" : ""})`;
  checkNetwork(what, expected, path, io, peers, firstDrops);
  // The oracle expects a call per datagram's run; the path makes one per run across datagrams
  // of a batch (batch ends the oracle cannot see start new ones). So the path's calls must be
  // the oracle's in order, less repeats of the run in hand; a new keypair or source is never skipped.
  const same = (x: { slot: number; source: Uint8Array }, y: { slot: number; source: Uint8Array }) =>
    x.slot === y.slot && Buffer.from(x.source).equals(Buffer.from(y.source));
  let j = 0;
  expected.calls.forEach((want, i) => {
    const got = opener.calls[j];
    if (got !== undefined && same(got, want) && got.keepalive === want.keepalive) {
      j++;
      return;
    }
    if (i === 0 || !same(expected.calls[i - 1], want)) {
      fail(`${what}: received() call ${j} is ${got ? `(slot ${got.slot}, keepalive ${got.keepalive}, from ${hex(got.source)})` : "missing"}, ` +
        `expected (slot ${want.slot}, keepalive ${want.keepalive}, from ${hex(want.source)})`);
    }
  });
  if (j !== opener.calls.length) fail(`${what}: ${opener.calls.length - j} received() calls the oracle did not expect`);
  for (const [slot, n] of expected.accepted) {
    const got = acceptedOn(slot);
    if (got !== n) fail(`${what}: the keypair in slot ${slot} accepted ${got} messages, expected ${n}`);
  }
  return { expected, path, peers, io, opener, firstDrops };
}
