// A forwarder's two pools, sized for what each path reads: an MTU-sized packet, or with
// offloads a whole super-packet (TUN) or GRO datagram (UDP); those pools carry their own
// names, so the metrics tell them apart.
import type { Config } from "../config/schema.ts";
import { BufferPool } from "../pool/buffer-pool.ts";
import { bufferSizeFor, HEADROOM, SUPER_BUFFER_SIZE } from "./constants.ts";
import type { Offloads } from "./offloads.ts";

export interface Pools {
  /** What TUN reads land in. */
  readonly device: BufferPool;
  /** What UDP receives land in. */
  readonly network: BufferPool;
}

export interface PoolOptions {
  /** Misuse checks (tests). */
  checked?: boolean;
}

export function createPools(config: Config, offloads: Offloads, opts: PoolOptions): Pools {
  const pool = (name: string, size: number, capacity: number): BufferPool =>
    new BufferPool({ name, bufferSize: size, capacity, headroom: HEADROOM, checked: opts.checked });
  const mtuSize = bufferSizeFor(config.device.mtu);
  const { deviceCapacity, networkCapacity } = config.pools;
  return {
    device: offloads.device.tun
      ? pool("device_gso", SUPER_BUFFER_SIZE, deviceCapacity)
      : pool("device", mtuSize, deviceCapacity),
    network: offloads.network.gro
      ? pool("network_gro", SUPER_BUFFER_SIZE, networkCapacity)
      : pool("network", mtuSize, networkCapacity),
  };
}
