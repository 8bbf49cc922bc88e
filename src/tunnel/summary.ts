// The forwarder's counters as one plain object: the shutdown log line and tests use it.
import { DROP_LABELS } from "./drops.ts";
import type { Forwarder } from "./forwarder.ts";

interface PathSummary { packets: number; bytes: number; drops: Record<string, number> }
interface PoolSummary { name: string; allocated: number; inUse: number; capacity: number; bufferSize: number }
export interface Summary {
  deviceToNetwork: PathSummary;
  networkToDevice: PathSummary;
  pools: { device: PoolSummary; network: PoolSummary };
  socketFull: number;
  /** The socket's kernel drops (strangers refused by the peer filter, buffer overflows). */
  socketReceiveDrops: number;
}

function nonZero(drops: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  DROP_LABELS.forEach((label, code) => {
    if (drops[code] > 0) out[label] = drops[code];
  });
  return out;
}

export function summarize(fwd: Forwarder): Summary {
  const pool = (p: typeof fwd.devicePool) => ({ name: p.name, allocated: p.allocated, inUse: p.inUse, capacity: p.capacity, bufferSize: p.bufferSize });
  return {
    deviceToNetwork: { packets: fwd.devicePath.packets, bytes: fwd.devicePath.bytes, drops: nonZero(fwd.devicePath.drops) },
    networkToDevice: { packets: fwd.networkPath.packets, bytes: fwd.networkPath.bytes, drops: nonZero(fwd.networkPath.drops) },
    pools: { device: pool(fwd.devicePool), network: pool(fwd.networkPool) },
    socketFull: fwd.tunWatch.pauses.socketFull,
    socketReceiveDrops: fwd.receiveDrops,
  };
}

/** Several workers' summaries as one: counts and pool sizes added up (buffer sizes are equal). */
export function mergeSummaries(list: readonly Summary[]): Summary {
  const path = (k: "deviceToNetwork" | "networkToDevice"): PathSummary => {
    const drops: Record<string, number> = {};
    for (const s of list) for (const [r, n] of Object.entries(s[k].drops)) drops[r] = (drops[r] ?? 0) + n;
    return { packets: list.reduce((a, s) => a + s[k].packets, 0), bytes: list.reduce((a, s) => a + s[k].bytes, 0), drops };
  };
  const pool = (k: "device" | "network"): PoolSummary => ({
    name: list[0]?.pools[k].name ?? k,
    allocated: list.reduce((a, s) => a + s.pools[k].allocated, 0),
    inUse: list.reduce((a, s) => a + s.pools[k].inUse, 0),
    capacity: list.reduce((a, s) => a + s.pools[k].capacity, 0),
    bufferSize: list[0]?.pools[k].bufferSize ?? 0,
  });
  return {
    deviceToNetwork: path("deviceToNetwork"),
    networkToDevice: path("networkToDevice"),
    pools: { device: pool("device"), network: pool("network") },
    socketFull: list.reduce((a, s) => a + s.socketFull, 0),
    socketReceiveDrops: list.reduce((a, s) => a + s.socketReceiveDrops, 0),
  };
}
