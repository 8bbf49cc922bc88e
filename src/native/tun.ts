// The TUN device: open or attach by name; created devices are configured here and vanish
// when their fd closes (they are not persistent), attached ones are left as found.
import { addon, TUN_OPEN_VNET } from "./addon.ts";
import { configureLink, linkExists, linkMtu, setLinkUp } from "../system/netdev.ts";
import { formatPrefix } from "../net/address.ts";
import type { Prefix } from "../net/address.ts";

export interface TunDevice {
  readonly fd: number;
  readonly name: string;
  /** True if udptun created the device (and so removes it on exit). */
  readonly created: boolean;
  readonly mtu: number;
  /** Every read and write carries a virtio-net header (offloads were asked for). */
  readonly vnet: boolean;
  /** TUN_F_* offloads the kernel accepted (TUN_OFFLOAD_BITS); 0 without the header. */
  readonly offload: number;
}

export function openTun(name: string, mtu: number, addresses: readonly Prefix[], offloads = false): TunDevice {
  const existed = linkExists(name);
  const { fd, name: actual, vnet, offload } = addon.tunOpen(name, offloads ? TUN_OPEN_VNET : 0);
  try {
    if (existed) {
      setLinkUp(actual);
      return { fd, name: actual, created: false, mtu: linkMtu(actual) ?? mtu, vnet, offload };
    }
    configureLink(actual, mtu, addresses.map((a) => ({ cidr: formatPrefix(a), family: a.family })));
    return { fd, name: actual, created: true, mtu, vnet, offload };
  } catch (err) {
    addon.close(fd);
    throw err;
  }
}

export function closeTun(dev: TunDevice): void {
  addon.close(dev.fd);
}
