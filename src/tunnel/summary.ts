// The forwarder's counters as one plain object: the shutdown log line and tests use it.
import { DROP_LABELS } from "./drops.ts";
import type { Forwarder } from "./forwarder.ts";

function nonZero(drops: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  DROP_LABELS.forEach((label, code) => {
    if (drops[code] > 0) out[label] = drops[code];
  });
  return out;
}

export function summarize(fwd: Forwarder): object {
  const pool = (p: typeof fwd.devicePool) => ({ allocated: p.allocated, inUse: p.inUse, capacity: p.capacity, bufferSize: p.bufferSize });
  return {
    deviceToNetwork: { packets: fwd.device.packets, bytes: fwd.device.bytes, drops: nonZero(fwd.device.drops) },
    networkToDevice: { packets: fwd.network.packets, bytes: fwd.network.bytes, drops: nonZero(fwd.network.drops) },
    pools: { device: pool(fwd.devicePool), network: pool(fwd.networkPool) },
    socketFull: fwd.tunWatch.pauses.socketFull,
    socketReceiveDrops: fwd.receiveDrops,
  };
}
