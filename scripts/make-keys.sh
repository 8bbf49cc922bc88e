#!/usr/bin/env bash
# Keys for a pair of WireGuard configs that name each other (one peer each): makes the
# private key file each config names in `privateKeyFile`, and the preshared key in
# `peers[0].presharedKeyFile` if they name one (the same key for both ends), then writes each
# end's public key into the other's `peers[0].publicKey`. Keys that exist are kept, so running
# it again changes nothing; a private key is never printed.
#
#   scripts/make-keys.sh A.json B.json              the configs edited in place (`make keys`)
#   scripts/make-keys.sh --out DIR A.json B.json    DIR/A/config.json, DIR/B/config.json and
#                                                   their keys (the Docker stack's set-up)
#
# Key paths are relative to where the config is written. Key files are made 0600 in folders
# made 0700. UDPTUN is the command that runs `udptun genkey|pubkey|genpsk` (default: the
# repo's Node 24 on src/cli.ts; docker/lib.sh runs it inside the image).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
UDPTUN="${UDPTUN:-$REPO/node_modules/.bin/node $REPO/src/cli.ts}"
die() { echo "make-keys: $*" >&2; exit 2; }
# shellcheck disable=SC2086 # UDPTUN is a command line
udptun() { $UDPTUN "$@"; }

OUT=""
if [ "${1:-}" = --out ]; then OUT="${2:?--out needs a folder}"; shift 2; fi
[ $# = 2 ] || die "usage: make-keys.sh [--out DIR] A.json B.json"
command -v jq >/dev/null || die "needs jq"
umask 077

at() { # CONFIG FOLDER FIELD: the path the field names, relative to FOLDER; "" if absent
  local p
  p="$(jq -r "$3 // empty" "$1")"
  if [ -z "$p" ] || [[ "$p" = /* ]]; then echo "$p"; else echo "$2/$p"; fi
}

src=("$1" "$2")
dest=() priv=() psk=() pub=()
for i in 0 1; do
  f="${src[$i]}"
  [ -f "$f" ] || die "$f: no such file"
  [ "$(jq '.peers | length' "$f")" = 1 ] || die "$f: peers: expected exactly one peer (the other end)"
  if [ -n "$OUT" ]; then dest[i]="$OUT/$(basename "$f" .json)/config.json"; else dest[i]="$f"; fi
  dir="$(dirname "${dest[$i]}")"
  priv[i]="$(at "$f" "$dir" .privateKeyFile)"
  [ -n "${priv[$i]}" ] || die "$f: privateKeyFile: missing (this script makes the file it names)"
  psk[i]="$(at "$f" "$dir" .peers[0].presharedKeyFile)"
done

if [ -n "${psk[0]}${psk[1]}" ] && { [ -z "${psk[0]}" ] || [ -z "${psk[1]}" ]; }; then
  die "peers[0].presharedKeyFile: named by one config only (both ends need the same key)"
fi

for i in 0 1; do
  mkdir -p "$(dirname "${priv[$i]}")"
  if [ ! -s "${priv[$i]}" ]; then
    udptun genkey >"${priv[$i]}" </dev/null
    echo "made ${priv[$i]}"
  fi
  pub[i]="$(udptun pubkey <"${priv[$i]}")"
done

# One preshared key for the pair: the one either end already has, else a new one.
if [ -n "${psk[0]}${psk[1]}" ]; then
  have=""
  for i in 0 1; do [ -s "${psk[$i]}" ] && have="${psk[$i]}"; done
  for i in 0 1; do
    [ ! -s "${psk[$i]}" ] || [ "$(cat "${psk[$i]}")" = "$(cat "$have")" ] || die "${psk[0]} and ${psk[1]} differ (remove one to copy the other)"
  done
  key="$(if [ -n "$have" ]; then cat "$have"; else udptun genpsk </dev/null; fi)"
  for i in 0 1; do
    [ -s "${psk[$i]}" ] && continue
    mkdir -p "$(dirname "${psk[$i]}")"
    printf '%s\n' "$key" >"${psk[$i]}"
    echo "made ${psk[$i]}"
  done
fi

for i in 0 1; do
  other="${pub[$((1 - i))]}"
  if [ -n "$OUT" ]; then
    (umask 022 && jq --arg k "$other" '.peers[0].publicKey = $k' "${src[$i]}" >"${dest[$i]}")
  else
    # In place, as a text edit of the one publicKey value, so the file keeps its layout.
    [ "$(grep -c '"publicKey": *"[^"]*"' "${dest[$i]}")" = 1 ] || die "${dest[$i]}: expected one \"publicKey\": \"...\" line to fill in"
    sed -i "s#\"publicKey\": *\"[^\"]*\"#\"publicKey\": \"$other\"#" "${dest[$i]}"
  fi
  echo "${dest[$i]}: peer $(jq -r '.peers[0].name' "${dest[$i]}") has public key $other"
done
