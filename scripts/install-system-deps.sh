#!/usr/bin/env bash
# Installs the Debian packages udptun's build, tests, demo and benchmarks use, if missing.
# Idempotent: apt runs only when something is absent. Then Debian trixie's wireguard-go and
# wg, which the interop tests and the bench run beside bookworm's, are fetched into .deps/
# (scripts/fetch-wireguard-trixie.sh: private, nothing installed; a no-op when present).
set -euo pipefail
fetch_trixie() { "$(dirname "${BASH_SOURCE[0]}")/fetch-wireguard-trixie.sh"; }
PKGS=(iproute2 iperf3 prometheus curl iputils-ping ethtool tcpdump python3 make g++ wireguard-go wireguard-tools linux-perf libssl-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  fetch_trixie
  exit 0
fi
echo "system packages: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "need root to install packages (and to create TUN devices and namespaces)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's prometheus package would start a service; we start our own in tests.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages: done"
fetch_trixie
