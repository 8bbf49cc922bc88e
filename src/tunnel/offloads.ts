// Offload negotiation: each offload is on where config asks and the kernel accepts, the rest
// fall back. The TUN device's were settled when it was opened (tun.vnet, tun.offload); the
// socket's are asked for here.
import type { Config } from "../config/schema.ts";
import { addon, JOIN_TCP, JOIN_UDP, TUN_OFFLOAD_BITS, UDP_GRO, UDP_GSO } from "../native/addon.ts";
import type { TunDevice } from "../native/tun.ts";
import type { UdpSocket } from "../native/udp.ts";
import type { DeviceOffloads } from "./device-path.ts";
import type { NetworkOffloads } from "./network-path.ts";

export interface Offloads {
  /** The device path may turn gso off if the kernel refuses it mid-run. */
  readonly device: DeviceOffloads;
  readonly network: NetworkOffloads;
}

type Wanted = Config["offloads"];

export function negotiateOffloads(want: Wanted, sock: UdpSocket, tun: TunDevice): Offloads {
  const udp = addon.udpOffload(sock.fd, (want.udpGso ? UDP_GSO : 0) | (want.udpGro ? UDP_GRO : 0));
  const uso = (tun.offload & (TUN_OFFLOAD_BITS.uso4 | TUN_OFFLOAD_BITS.uso6)) !== 0;
  return {
    device: { tun: tun.vnet, gso: (udp & UDP_GSO) !== 0 },
    network: {
      gro: (udp & UDP_GRO) !== 0,
      tun: tun.vnet,
      join: tun.vnet && want.coalesce ? JOIN_TCP | (uso && want.coalesceUdp ? JOIN_UDP : 0) : 0,
    },
  };
}

/** The start-up log line's fields: each offload on, or off and why. */
export function offloadSummary(want: Wanted, tun: TunDevice, got: Offloads): Record<string, string> {
  const state = (asked: boolean, on: boolean) => (on ? "on" : asked ? "off (kernel refused)" : "off (config)");
  const tunBits = Object.entries(TUN_OFFLOAD_BITS).filter(([, bit]) => tun.offload & bit).map(([name]) => name);
  const join = got.network.join;
  return {
    udpGso: state(want.udpGso, got.device.gso),
    udpGro: state(want.udpGro, got.network.gro),
    tun: tun.vnet ? `on (${tunBits.join(" ") || "virtio header only"})` : state(want.tun, false),
    coalesce: join ? `on (${join & JOIN_UDP ? "tcp udp" : "tcp"})` : state(want.coalesce && want.tun, false),
  };
}
