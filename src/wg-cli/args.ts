// wireguard-go's command line: `udptun-wg [-f|--foreground] INTERFACE-NAME`, `--version`.
// Anything else prints the usage on stdout and exits 0, as wireguard-go does (wg-quick checks
// only that the daemon left a device behind).
import { INTERFACE_NAME } from "../config/schema.ts";

export const USAGE = "Usage: udptun-wg [-f/--foreground] INTERFACE-NAME";

export type Command =
  | { kind: "version" }
  | { kind: "usage" }
  | { kind: "run"; name: string; foreground: boolean };

export function parseArgs(args: readonly string[]): Command {
  if (args.length === 1 && args[0] === "--version") return { kind: "version" };
  if (args.length === 2 && (args[0] === "-f" || args[0] === "--foreground")) return { kind: "run", name: args[1], foreground: true };
  if (args.length === 1 && args[0] !== "-f" && args[0] !== "--foreground") return { kind: "run", name: args[0], foreground: false };
  return { kind: "usage" };
}

/** A name the kernel and wg-quick both take; null if fine, else why not. wireguard-go leaves
 * this to TUNSETIFF, whose EINVAL does not say which rule was broken. */
export function badInterfaceName(name: string): string | null {
  if (INTERFACE_NAME.test(name) && name !== "." && name !== "..") return null;
  return `interface name ${JSON.stringify(name)} is not valid (1-15 of A-Z a-z 0-9 _ = + . -)`;
}
