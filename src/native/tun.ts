// The TUN device: open or attach by name; created devices are configured here and vanish
// when their fd closes (they are not persistent), attached ones are left as found.
import { readFileSync } from "node:fs";
import { addon, TUN_OPEN_DETACHED, TUN_OPEN_MULTI_QUEUE, TUN_OPEN_VNET } from "./addon.ts";
import { configureLink, linkExists, linkMtu, setLinkMtu, setLinkUp } from "../system/netdev.ts";
import { formatPrefix } from "../net/address.ts";
import type { Config } from "../config/schema.ts";

/** The device section of the config: name, and what a created device gets. */
export type DeviceConfig = Config["device"];

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

/** flags: TUN_OPEN_MULTI_QUEUE, TUN_OPEN_DETACHED; offloads asks for the virtio-net header (TUN_OPEN_VNET). */
export function openTun(dev: DeviceConfig, offloads = false, flags = 0): TunDevice {
  return open(dev.name, dev.mtu, flags | (offloads ? TUN_OPEN_VNET : 0), (actual, existed) => {
    if (existed) return setLinkUp(actual);
    const addresses = dev.addresses.map((a) => ({ cidr: formatPrefix(a), family: a.family }));
    configureLink(actual, { mtu: dev.mtu, addresses, txQueueLen: dev.txQueueLen });
  });
}

/**
 * wireguard-go's way (udptun-wg): create the device with an MTU and leave it down, without
 * addresses, or attach to an existing one as it is. The name is looked up here, at start,
 * only: afterwards the device may move to another network namespace.
 */
export function openTunDown(name: string, mtu: number, txQueueLen: number, offloads: boolean): TunDevice {
  return open(name, mtu, offloads ? TUN_OPEN_VNET : 0, (actual, existed) => {
    if (!existed) setLinkMtu(actual, mtu, txQueueLen);
  });
}

/** Opens (creating or attaching to) the device `name`, then `setUp` configures it; if that
 * throws, the fd is closed (a created device goes with it). An attached device keeps its MTU. */
function open(name: string, mtu: number, flags: number, setUp: (actual: string, existed: boolean) => void): TunDevice {
  const existed = linkExists(name);
  const { fd, name: actual, vnet, offload } = addon.tunOpen(name, flags);
  try {
    setUp(actual, existed);
    return { fd, name: actual, created: !existed, mtu: existed ? (linkMtu(actual) ?? mtu) : mtu, vnet, offload };
  } catch (err) {
    addon.close(fd);
    throw err;
  }
}

/** One worker's share of a multi-queue device: a queue to read and a detached one to write. */
export interface TunQueue {
  /** The attached queue: the kernel steers packets to it by flow hash; the worker reads it. */
  readonly read: TunDevice;
  /** A detached queue of the same device: the worker writes to it, so its writes teach the
   * driver no flow steering and each flow keeps the queue its hash chose (see addon.h). */
  readonly writeFd: number;
}

/**
 * Opens `count` queue pairs of one multi-queue device: the first queue creates (and
 * configures) or attaches the device, the rest attach to it. A device udptun created goes
 * away when its last queue closes. On failure every queue opened so far is closed.
 */
export function openTunQueues(dev: DeviceConfig, count: number, offloads = false): TunQueue[] {
  const fds: number[] = [];
  // Every queue asks for the same header: the device keeps the flags of the last TUNSETIFF.
  const vnet = offloads ? TUN_OPEN_VNET : 0;
  try {
    const first = openTun(dev, offloads, TUN_OPEN_MULTI_QUEUE);
    fds.push(first.fd);
    for (let i = 1; i < count; i++) fds.push(addon.tunOpen(first.name, TUN_OPEN_MULTI_QUEUE | vnet).fd);
    const queues: TunQueue[] = [];
    for (let i = 0; i < count; i++) {
      const writeFd = addon.tunOpen(first.name, TUN_OPEN_MULTI_QUEUE | TUN_OPEN_DETACHED | vnet).fd;
      fds.push(writeFd);
      queues.push({ read: { ...first, fd: fds[i] }, writeFd });
    }
    return queues;
  } catch (err) {
    for (const fd of fds) addon.close(fd);
    const e = err as Error & { code?: string };
    if (e.code === "EINVAL" && fds.length === 0 && isSingleQueueTun(dev.name)) {
      throw new Error(`TUN device ${dev.name} exists without multi-queue support (workers > 1 attaches two queues per worker to it): ` +
        `remove it, or create it with \`ip tuntap add dev ${dev.name} mode tun multi_queue\` (${e.message})`);
    }
    throw err;
  }
}

/** An existing TUN device made without IFF_MULTI_QUEUE (0x100 in sysfs tun_flags). */
function isSingleQueueTun(name: string): boolean {
  try {
    return (Number.parseInt(readFileSync(`/sys/class/net/${name}/tun_flags`, "utf8"), 16) & 0x100) === 0;
  } catch {
    return false;
  }
}

export function closeTun(dev: TunDevice): void {
  addon.close(dev.fd);
}
