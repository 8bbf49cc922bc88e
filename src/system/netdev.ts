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

/** Sets MTU, adds the addresses (IPv6 without duplicate address detection) and brings it up. */
export function configureLink(name: string, mtu: number, addresses: { cidr: string; family: 4 | 6 }[]): void {
  ip(["link", "set", "dev", name, "mtu", String(mtu)]);
  for (const a of addresses) {
    ip(a.family === 6 ? ["-6", "addr", "add", a.cidr, "dev", name, "nodad"] : ["addr", "add", a.cidr, "dev", name]);
  }
  ip(["link", "set", "dev", name, "up"]);
}

export function setLinkUp(name: string): void {
  ip(["link", "set", "dev", name, "up"]);
}
