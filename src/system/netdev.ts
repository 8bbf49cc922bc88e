// Network device configuration through iproute2. Runs once at start and exit, never on
// the data path; `ip` is the tool every operator knows, so its errors read familiar.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

export function linkMtu(name: string): number | null {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/mtu`, "utf8").trim());
  } catch {
    return null;
  }
}

function ip(args: string[]): void {
  try {
    execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`ip ${args.join(" ")}: ${e.stderr?.toString().trim() || e.message}`);
  }
}

/** What udptun sets on a device it creates. */
export interface LinkSettings {
  readonly mtu: number;
  readonly addresses: readonly { cidr: string; family: 4 | 6 }[];
  /** Packets the kernel queues for our reads before it drops (the device's txqueuelen). */
  readonly txQueueLen: number;
}

/** Sets MTU and queue length, adds the addresses (IPv6 without duplicate address
 * detection) and brings it up. */
export function configureLink(name: string, link: LinkSettings): void {
  ip(["link", "set", "dev", name, "mtu", String(link.mtu), "txqueuelen", String(link.txQueueLen)]);
  for (const a of link.addresses) {
    ip(a.family === 6 ? ["-6", "addr", "add", a.cidr, "dev", name, "nodad"] : ["addr", "add", a.cidr, "dev", name]);
  }
  ip(["link", "set", "dev", name, "up"]);
}

/** MTU and queue length only: the device stays down and without addresses (udptun-wg: the
 * tool that configures it, wg-quick, adds those and brings it up). */
export function setLinkMtu(name: string, mtu: number, txQueueLen: number): void {
  ip(["link", "set", "dev", name, "mtu", String(mtu), "txqueuelen", String(txQueueLen)]);
}

export function setLinkUp(name: string): void {
  ip(["link", "set", "dev", name, "up"]);
}
