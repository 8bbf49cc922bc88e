// The two wireguard-go releases udptun is tested and benchmarked against, with the `wg` of the
// same Debian release: bookworm's from the system packages, trixie's from the private folder
// scripts/fetch-wireguard-trixie.sh fills (that script lays the folder out; this module is the
// one place tests and bench/lib/scenarios.sh read the paths from).
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface WireguardBins {
  /** Debian release the binaries come from. */
  release: "bookworm" | "trixie";
  /** Upstream snapshot date of the wireguard-go package (what `--version` prints may differ). */
  version: string;
  wireguardGo: string;
  wg: string;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const TRIXIE_DIR = path.join(ROOT, ".deps/trixie");

/** 0.0.20220316: no batching, no offloads. */
export const BOOKWORM: WireguardBins = Object.freeze({
  release: "bookworm",
  version: "0.0.20220316",
  wireguardGo: "/usr/bin/wireguard-go",
  wg: "/usr/bin/wg",
});

/** 0.0.20231211 (prints 0.0.20230223): UDP GSO/GRO and TUN offloads. */
export const TRIXIE: WireguardBins = Object.freeze({
  release: "trixie",
  version: "0.0.20231211",
  wireguardGo: path.join(TRIXIE_DIR, "root/usr/bin/wireguard-go"),
  // a wrapper that runs trixie's wg on trixie's glibc (the host's is too old for it)
  wg: path.join(TRIXIE_DIR, "bin/wg"),
});

/** Null when both binaries exist, else what is missing and how to get it. */
/** Throws missingBins' reason: for a test file's set-up, which cannot run without them. */
export function requireBins(bins: WireguardBins): void {
  const missing = missingBins(bins);
  if (missing) throw new Error(missing);
}

export function missingBins(bins: WireguardBins): string | null {
  const missing = [bins.wireguardGo, bins.wg].filter((p) => !existsSync(p));
  if (missing.length === 0) return null;
  const how = bins.release === "trixie" ? "run scripts/fetch-wireguard-trixie.sh (make setup does)" : "apt-get install wireguard-go wireguard-tools";
  return `${bins.release}'s wireguard binaries missing: ${missing.join(", ")}; ${how}`;
}
