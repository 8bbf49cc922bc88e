#!/usr/bin/env bash
# Fetches Debian trixie's wireguard-go (0.0.20231211: GSO/GRO and TUN offloads) and
# wireguard-tools into a private, git-ignored folder, without changing the system: apt runs
# with its own sources list, lists and cache (-o Dir::*), and the packages are unpacked with
# dpkg-deb -x, never installed. Tests and the bench run these beside bookworm's packages.
#
#   scripts/fetch-wireguard-trixie.sh [DIR]     (default: <repo>/.deps/trixie)
#
# Trixie's wg needs glibc 2.38 and bookworm has 2.36, so trixie's libc6 is unpacked too and
# DIR/bin/wg runs wg through trixie's own loader. wireguard-go needs only glibc 2.34 and
# runs as it is. A second run finds both binaries working and returns at once.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${1:-$ROOT_DIR/.deps/trixie}
# The version the bench and the interop tests are written against; trixie is a stable
# release, so a different one means the mirror changed under us: stop and say so.
WANT_WG_GO=0.0.20231211
SUITE=trixie
PACKAGES=(wireguard-go wireguard-tools libc6)

WG_GO=$DEST/root/usr/bin/wireguard-go
WG=$DEST/bin/wg

die() { printf 'fetch-wireguard-trixie: %s\n' "$*" >&2; exit 1; }
where() { printf 'wireguard (trixie): wireguard-go %s\nwireguard (trixie): wg           %s\n' "$WG_GO" "$WG"; }

works() { "$WG_GO" --version >/dev/null 2>&1 && "$WG" --version >/dev/null 2>&1; }

if [[ -x $WG_GO && -x $WG ]] && works; then
  where
  exit 0
fi

[[ $(id -u) == 0 ]] || die "needs root (apt-get download drops to the _apt user and needs root to do so)"
for c in apt-get apt-cache dpkg-deb dpkg; do command -v "$c" >/dev/null || die "$c not found (a Debian system is needed)"; done
arch=$(dpkg --print-architecture)
# the wg wrapper below names amd64's loader
[[ $arch == amd64 ]] || die "only amd64 is supported (this machine is $arch)"

# The machine's own Debian archive: the first enabled source whose suite is this release's
# codename (not -security, not -updates), in deb822 .sources files or one-line .list files.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[[ -n $codename ]] || die "no VERSION_CODENAME in /etc/os-release"
lists=()
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [[ -f $f ]] && lists+=("$f"); done
[[ ${#lists[@]} -gt 0 ]] || die "no apt sources in /etc/apt"
read -r uri signed_by < <(
  awk -v want="$codename" '
    function flush() {
      if (uri != "" && enabled != "no" && index(" " suites " ", " " want " ") && !found) {
        print uri, (signed == "" ? "-" : signed); found = 1
      }
      uri = ""; suites = ""; signed = ""; enabled = ""
    }
    FNR == 1 { flush() }
    /^[ \t]*$/ { flush(); next }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { $1 = ""; suites = $0 }
    /^Signed-By:/ { signed = $2 }
    /^Enabled:/ { enabled = $2 }
    /^deb[ \t]/ {
      line = $0; opts = ""
      if (match(line, /\[[^]]*\]/)) { opts = substr(line, RSTART + 1, RLENGTH - 2); line = substr(line, 1, RSTART - 1) substr(line, RSTART + RLENGTH) }
      n = split(line, f, /[ \t]+/)
      if (n >= 3 && f[3] == want && !found) {
        s = "-"; if (match(opts, /signed-by=[^ ]+/)) s = substr(opts, RSTART + 10, RLENGTH - 10)
        print f[2], s; found = 1
      }
    }
    END { flush() }
  ' "${lists[@]}"
) || true
[[ -n ${uri:-} ]] || die "no apt source for suite $codename in /etc/apt/sources.list{,.d/}: cannot tell which Debian mirror to ask for $SUITE"

work=$DEST/apt
rm -rf "$work" "$DEST/debs" "$DEST/root.new"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$DEST/debs" "$DEST/root.new"
opts="[arch=$arch"
[[ $signed_by != - ]] && opts+=" signed-by=$signed_by"
opts+="]"
echo "deb $opts $uri $SUITE main" >"$work/sources.list"
APT=(-q -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  # the private folders are root's; downloading as root spares the _apt permission warning
  -o APT::Sandbox::User=root)

echo "fetch-wireguard-trixie: $(cat "$work/sources.list")" >&2
apt-get "${APT[@]}" update >"$work/update.log" 2>&1 ||
  die "apt-get update for $SUITE failed ($work/update.log): $(tail -n 3 "$work/update.log" | tr '\n' ' ')"
version=$(apt-cache "${APT[@]}" show wireguard-go 2>/dev/null | awk '/^Version:/ { print $2; exit }')
[[ -n $version ]] || die "$SUITE has no wireguard-go package at $uri"
[[ $version == "$WANT_WG_GO"-* ]] || die "$SUITE's wireguard-go is $version, not $WANT_WG_GO-*: the tests and bench expect $WANT_WG_GO"
(cd "$DEST/debs" && apt-get "${APT[@]}" download "${PACKAGES[@]}" >"$work/download.log" 2>&1) ||
  die "apt-get download ${PACKAGES[*]} failed ($work/download.log): $(tail -n 3 "$work/download.log" | tr '\n' ' ')"
for deb in "$DEST"/debs/*.deb; do
  dpkg-deb -x "$deb" "$DEST/root.new" || die "dpkg-deb -x $deb failed"
done
# only the programs and libraries are used; docs, man pages and locales are not
rm -rf "$DEST/root.new/usr/share"
rm -rf "$DEST/root"
mv "$DEST/root.new" "$DEST/root"
# the package lists are ~30 MB and only needed again for a fresh fetch
rm -rf "$work/lists" "$work/cache"

# wg through trixie's loader and libc (--argv0 keeps wg's own name in its messages)
mkdir -p "$DEST/bin"
cat >"$WG" <<'EOF'
#!/bin/sh
# trixie's wg on trixie's glibc (the host's is older); written by scripts/fetch-wireguard-trixie.sh
root=$(dirname "$(readlink -f "$0")")/../root
lib=$root/usr/lib/x86_64-linux-gnu
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" --argv0 wg "$root/usr/bin/wg" "$@"
EOF
chmod 755 "$WG"

"$WG_GO" --version >/dev/null 2>&1 || die "$WG_GO does not run here: $("$WG_GO" --version 2>&1 | head -n 2 | tr '\n' ' ')"
"$WG" --version >/dev/null 2>&1 || die "$WG does not run here: $("$WG" --version 2>&1 | head -n 2 | tr '\n' ' ')"
(cd "$DEST/debs" && ls) >"$DEST/packages.txt"
rm -rf "$DEST/debs"
echo "fetch-wireguard-trixie: unpacked $(tr '\n' ' ' <"$DEST/packages.txt")" >&2
where
