// The TUN device: open or attach by name; created devices are configured here and vanish
// when their fd closes (they are not persistent), attached ones are left as found.
import { addon } from "./addon.ts";
import { configureLink, linkExists, linkMtu, setLinkUp } from "../system/netdev.ts";
import { formatPrefix } from "../net/address.ts";
import type { Prefix } from "../net/address.ts";

export interface TunDevice {
  readonly fd: number;
  readonly name: string;
  /** True if udptun created the device (and so removes it on exit). */
  readonly created: boolean;
  readonly mtu: number;
}

export function openTun(name: string, mtu: number, addresses: readonly Prefix[]): TunDevice {
  const existed = linkExists(name);
  const { fd, name: actual } = addon.tunOpen(name);
  try {
    if (existed) {
      setLinkUp(actual);
      return { fd, name: actual, created: false, mtu: linkMtu(actual) ?? mtu };
    }
    configureLink(actual, mtu, addresses.map((a) => ({ cidr: formatPrefix(a), family: a.family })));
    return { fd, name: actual, created: true, mtu };
  } catch (err) {
    addon.close(fd);
    throw err;
  }
}

export function closeTun(dev: TunDevice): void {
  addon.close(dev.fd);
}
