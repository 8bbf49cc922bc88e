#!/usr/bin/env bash
# bench/profile.sh -- where udptun's CPU goes under load, and whether the buffer pool
# stays under 1% of it.
#
# Two namespaces joined by a veth (bench/lib/topo.sh, prefix "upf"), udptun at each end
# (dist/src/cli.js, Node started with --perf-basic-prof --interpreted-frames-native-stack so
# JS frames have names), iperf3 TCP from A to B through the tunnel. After a warm-up, both
# udptun processes are sampled with `perf record -g` (cpu-clock) for PROFILE_SECONDS.
#
# Inlining: TurboFan and Maglev inline small functions such as pull() and release() into
# their callers, and the perf map only names the outer function. Node also writes V8's code
# log (--log-code --log-source-position): for every optimised code object the inlining id of
# each instruction range and the inlined functions. bench/lib/profile-report.mjs resolves each
# sampled JS pc through it and adds the inlined functions as frames, so pool code is counted
# where it runs, in the JIT configuration production uses.
#
# Passes (each with fresh udptun processes, same topology):
#   production  V8 as in production (plus logging): the verdict comes from this pass.
#   noinline    (optional, --noinline) --no-turbo-inlining --no-maglev-inlining: every pool
#               function is a real call; a cross-check (it pays calls inlining removes).
#   cpuprof     (optional, --cpu-prof) V8's own profiler: a .cpuprofile per end for DevTools.
#
# Writes bench/results/profile/<stamp>-<prefix>/ (perf.data, the V8 perf maps and code logs,
# folded stacks, flame graph SVGs, report.txt, summary.json; "latest" points at it) and prints
# the top symbols of each end and the pool's share with PASS/FAIL against 1%.
# Exit 0 when a profile was taken (PASS or FAIL; --strict: 3 on FAIL), 1 when not.
set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/.." && pwd)

usage() {
  cat <<'EOF'
usage: bench/profile.sh [options]            (root: namespaces, TUN devices, perf)
  --seconds S      sampling window per pass (default 10; env PROFILE_SECONDS)
  --warmup S       iperf3 runs S seconds before sampling starts, so the JIT has
                   settled (default 3; env PROFILE_WARMUP)
  --freq HZ        perf sampling frequency (default 999; env PROFILE_FREQ)
  --noinline       add a pass with V8 inlining off, for comparison (env PROFILE_NOINLINE=1)
  --cpu-prof       add a pass with V8's --cpu-prof: a.cpuprofile / b.cpuprofile for
                   Chrome DevTools (env PROFILE_CPUPROF=1)
  --no-flamegraph  no SVG flame graphs (env PROFILE_FLAMEGRAPH=0)
  --iperf-args "A" extra iperf3 client arguments, e.g. "-R" (B->A) or "-P 4"
                   (env PROFILE_IPERF_ARGS)
  --udptun-config JSON
                   config fragment merged into both ends' configs, e.g.
                   '{"offloads":{"udpGso":false,"udpGro":false,"tun":false}}'
                   (env PROFILE_UDPTUN_CONFIG; default {})
  --target PCT     the pool's budget in % of samples (default 1; env PROFILE_TARGET_PCT)
  --strict         exit 3 when the pool is over the target (default: exit 0, print FAIL;
                   env PROFILE_STRICT=1)
  --prefix P       namespace prefix (default upf; env PROFILE_PREFIX): P-a, P-b
  --out DIR        results directory (default bench/results/profile; env PROFILE_OUT)
  --report DIR     only rebuild report.txt / summary.json / SVGs from a run directory
  --cleanup        remove namespaces left by a killed run with --prefix, then exit
EOF
}

SECS=${PROFILE_SECONDS:-10}
WARMUP=${PROFILE_WARMUP:-3}
FREQ=${PROFILE_FREQ:-999}
NOINLINE=${PROFILE_NOINLINE:-0}
CPUPROF=${PROFILE_CPUPROF:-0}
FLAMEGRAPH=${PROFILE_FLAMEGRAPH:-1}
IPERF_ARGS=${PROFILE_IPERF_ARGS:-}
UDPTUN_CONFIG=${PROFILE_UDPTUN_CONFIG:-'{}'}
TARGET=${PROFILE_TARGET_PCT:-1}
STRICT=${PROFILE_STRICT:-0}
PREFIX=${PROFILE_PREFIX:-upf}
OUT_DIR=${PROFILE_OUT:-$BENCH_DIR/results/profile}
REPORT_ONLY=
CLEANUP_ONLY=0
EVENT=cpu-clock

die() { printf 'profile: %s\n' "$*" >&2; exit 1; }
plog() { printf '[profile] %s\n' "$*" >&2; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) need_arg "$@"; SECS=$2; shift 2 ;;
    --warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
    --freq) need_arg "$@"; FREQ=$2; shift 2 ;;
    --noinline) NOINLINE=1; shift ;;
    --cpu-prof) CPUPROF=1; shift ;;
    --no-flamegraph) FLAMEGRAPH=0; shift ;;
    --iperf-args) need_arg "$@"; IPERF_ARGS=$2; shift 2 ;;
    --udptun-config) need_arg "$@"; UDPTUN_CONFIG=$2; shift 2 ;;
    --target) need_arg "$@"; TARGET=$2; shift 2 ;;
    --strict) STRICT=1; shift ;;
    --prefix) need_arg "$@"; PREFIX=$2; shift 2 ;;
    --out) need_arg "$@"; OUT_DIR=$2; shift 2 ;;
    --report) need_arg "$@"; REPORT_ONLY=$2; shift 2 ;;
    --cleanup) CLEANUP_ONLY=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "--seconds / PROFILE_SECONDS must be a positive integer"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "--warmup must be a whole number of seconds"
[[ $FREQ =~ ^[1-9][0-9]*$ ]] || die "--freq must be a positive integer (Hz)"
[[ $TARGET =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--target wants a percentage"
[[ $PREFIX =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "--prefix: 1-10 chars [a-z0-9], starting with a letter"

if [[ -x $ROOT_DIR/node_modules/.bin/node ]]; then NODE=$ROOT_DIR/node_modules/.bin/node; else NODE=$(command -v node || true); fi
[[ -n $NODE ]] || die "node not found (npm ci in $ROOT_DIR)"

report_args=()
((FLAMEGRAPH)) || report_args+=(--no-flamegraph)
((STRICT)) && report_args+=(--strict)

if [[ -n $REPORT_ONLY ]]; then
  exec "$NODE" "$BENCH_DIR/lib/profile-report.mjs" --report "$REPORT_ONLY" "${report_args[@]}"
fi

[[ $(id -u) == 0 ]] || die "must run as root (network namespaces, TUN devices, perf on other processes)"

# shellcheck source=lib/topo.sh
source "$BENCH_DIR/lib/topo.sh"
# shellcheck source=lib/measure.sh
source "$BENCH_DIR/lib/measure.sh" # cpu_ticks, proc_snapshot, bg_usage, wait_listen

if ((CLEANUP_ONLY)); then
  topo_destroy "$PREFIX"
  echo "removed namespaces $PREFIX-a / $PREFIX-b (if they existed)" >&2
  exit 0
fi

# ------------------------------------------------------------ tools
if ! command -v perf >/dev/null || ! perf --version >/dev/null 2>&1; then
  plog "perf missing: apt-get install linux-perf"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null; } ||
    die "could not install linux-perf (scripts/install-system-deps.sh installs it too)"
fi
missing=()
for c in ip iperf3 curl ping timeout perf; do command -v "$c" >/dev/null || missing+=("$c"); done
[[ ${#missing[@]} -eq 0 ]] || die "missing tools: ${missing[*]} (scripts/install-system-deps.sh)"
[[ -c /dev/net/tun ]] || die "/dev/net/tun missing"
# the kernel must let us sample another process with call graphs (root normally can)
if ! perf record -e "$EVENT" -g -o /dev/null -- true >/dev/null 2>&1; then
  die "perf record -e $EVENT -g does not work here (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null))"
fi

CLI=$ROOT_DIR/dist/src/cli.js
ADDON=$ROOT_DIR/src/native/build/Release/udptun.node
if [[ ! -f $CLI ]] || [[ -n $(find "$ROOT_DIR/src" -newer "$CLI" -name '*.ts' -print -quit 2>/dev/null) ]]; then
  plog "dist/ missing or older than src/: npm run build"
  (cd "$ROOT_DIR" && PATH=$ROOT_DIR/node_modules/.bin:$PATH npm run build >&2) || die "npm run build failed"
fi
[[ -f $ADDON ]] || die "$ADDON missing: build the addon (make setup, or node-gyp rebuild --directory=src/native)"

# ------------------------------------------------------------ run directory
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR=$OUT_DIR/$STAMP-$PREFIX
mkdir -p "$RUN_DIR" || die "cannot create $RUN_DIR"
PASSES=(production)
((NOINLINE)) && PASSES+=(noinline)
((CPUPROF)) && PASSES+=(cpuprof)
SENDER=a
[[ " $IPERF_ARGS " == *" -R "* || " $IPERF_ARGS " == *" --reverse "* ]] && SENDER=b

# V8 perf maps (/tmp/perf-PID.map) of our udptun processes: perf script needs them in /tmp;
# afterwards they move into the pass directory. The trap removes any left behind.
MAP_PIDS=()
remove_maps() {
  local p
  for p in "${MAP_PIDS[@]}"; do rm -f "/tmp/perf-$p.map"; done
}
PERF_PID=
stop_perf() {
  if [[ -n $PERF_PID ]] && kill -0 "$PERF_PID" 2>/dev/null; then
    kill -INT "$PERF_PID" 2>/dev/null
    wait "$PERF_PID" 2>/dev/null
  fi
  PERF_PID=
}
# WireGuard's key files when udptun's transport is WireGuard (lib/udptun-config.mjs): a
# private temp folder, removed on exit
KEY_DIR=
topo_install_trap 'stop_perf; remove_maps; [[ -n $KEY_DIR ]] && rm -rf -- "$KEY_DIR"'

json_str() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

{
  printf '{\n'
  printf '  "started": %s,\n' "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
  printf '  "prefix": %s, "seconds": %s, "warmup": %s, "freq": %s, "event": %s,\n' "$(json_str "$PREFIX")" "$SECS" "$WARMUP" "$FREQ" "$(json_str "$EVENT")"
  printf '  "iperf_args": %s, "sender": "%s", "target_pct": %s,\n' "$(json_str "$IPERF_ARGS")" "$SENDER" "$TARGET"
  printf '  "udptun_config": %s,\n' "$(json_str "$UDPTUN_CONFIG")"
  printf '  "passes": [%s],\n' "$(printf '"%s",' "${PASSES[@]}" | sed 's/,$//')"
  printf '  "node": %s, "node_version": %s,\n' "$(json_str "$NODE")" "$(json_str "$("$NODE" --version)")"
  printf '  "perf_version": %s, "kernel": %s, "nproc": %s,\n' "$(json_str "$(perf --version 2>/dev/null)")" "$(json_str "$(uname -r)")" "$(nproc)"
  printf '  "cpu_model": %s,\n' "$(json_str "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)")"
  printf '  "git": %s\n' "$(json_str "$(git -C "$ROOT_DIR" describe --always --dirty 2>/dev/null || echo unknown)")"
  printf '}\n'
} >"$RUN_DIR/meta.json"

est=$(((WARMUP + SECS + 12) * ${#PASSES[@]}))
plog "passes: ${PASSES[*]}; ${SECS}s of samples each after ${WARMUP}s warm-up (about ${est}s); namespaces $PREFIX-a/$PREFIX-b"
plog "results: $RUN_DIR"

KEY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/udptun-profile-keys.XXXXXX") || die "cannot make a folder for the key files"
for side in a b; do
  "$NODE" "$BENCH_DIR/lib/udptun-config.mjs" "$side" "$UDPTUN_CONFIG" "$KEY_DIR" >"$RUN_DIR/$side.json" || die "cannot write the udptun config"
done
cfg() { "$NODE" -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(eval("c."+process.argv[2]))' "$RUN_DIR/$1.json" "$2"; }
METRICS_A=$(cfg a metrics.listen); METRICS_B=$(cfg b metrics.listen)
DST4=$(cfg b 'device.address.find(a=>!a.includes(":")).split("/")[0]')

topo_create "$PREFIX" || die "cannot create namespaces (leftover? bench/profile.sh --cleanup --prefix $PREFIX)"
NS_A=$TOPO_NS_A; NS_B=$TOPO_NS_B

# run_pass NAME: start both ends with the pass's Node flags, load, sample, stop, fold
run_pass() {
  local pass=$1 pd="$RUN_DIR/$1" flags desc perf=1
  mkdir -p "$pd"
  # perf map for names, native frames for interpreted functions, code log for inlining
  local logged="--perf-basic-prof --interpreted-frames-native-stack --log-code --log-source-position --no-logfile-per-isolate"
  case $pass in
    production)
      flags=$logged
      desc="V8's JIT as in production (only logging added); inlined functions resolved through the code log" ;;
    noinline)
      flags="$logged --no-turbo-inlining --no-maglev-inlining"
      desc="inlining off: every pool function is a real call (pays the calls inlining removes); for comparison" ;;
    cpuprof)
      flags="--cpu-prof --cpu-prof-dir=$pd --cpu-prof-interval 500"
      desc="V8 CPU profiler (.cpuprofile per end, open in Chrome DevTools > Performance); no perf"
      perf=0 ;;
  esac
  plog "== pass $pass: node $flags"

  local -A pid nsof=([a]=$NS_A [b]=$NS_B) metrics=([a]=$METRICS_A [b]=$METRICS_B)
  local side extra
  for side in a b; do
    extra=()
    if [[ $pass == cpuprof ]]; then extra=(--cpu-prof-name "$side.cpuprofile"); else extra=("--logfile=$pd/v8-$side.log"); fi
    # shellcheck disable=SC2086
    TOPO_BG_LOG="$pd/udptun-$side.log" topo_bg "${nsof[$side]}" "$NODE" $flags "${extra[@]}" "$CLI" run --config "$RUN_DIR/$side.json"
    pid[$side]=$TOPO_LAST_PID
    ((perf)) && MAP_PIDS+=("$TOPO_LAST_PID")
  done
  local deadline=$((SECONDS + 20)) ok
  for side in a b; do
    ok=0
    while ((SECONDS < deadline)); do
      kill -0 "${pid[$side]}" 2>/dev/null || { plog "udptun $side exited during start-up: $(tail -n 5 "$pd/udptun-$side.log")"; return 1; }
      if ip netns exec "${nsof[$side]}" curl -sf -m 1 -o /dev/null "http://${metrics[$side]}/healthz"; then ok=1; break; fi
      sleep 0.1
    done
    ((ok)) || { plog "udptun $side not healthy after 20s: $(tail -n 5 "$pd/udptun-$side.log")"; return 1; }
  done
  local i
  for ((i = 0; i < 20; i++)); do
    ip netns exec "$NS_A" ping -c 1 -W 1 -q "$DST4" >/dev/null 2>&1 && break
    sleep 0.1
  done
  ((i < 20)) || { plog "no answer from $DST4 through the tunnel"; return 1; }

  # iperf3: a one-off server in B, the client in A for warm-up + window + 1 s
  TOPO_BG_LOG="$pd/iperf-server.log" topo_bg "$NS_B" iperf3 -s -1 -p 5201
  local spid=$TOPO_LAST_PID
  wait_listen "$NS_B" 5201 || { plog "iperf3 server did not start"; return 1; }
  local ilen=$((WARMUP + SECS + 1))
  # shellcheck disable=SC2086
  ip netns exec "$NS_A" iperf3 -c "$DST4" -p 5201 -t "$ilen" --json --connect-timeout 3000 $IPERF_ARGS \
    </dev/null >"$pd/iperf.json" 2>"$pd/iperf.err" &
  local cpid=$!
  TOPO_PIDS+=("$cpid")
  sleep "$WARMUP"
  for side in a b; do kill -0 "${pid[$side]}" 2>/dev/null || { plog "udptun $side died during warm-up"; return 1; }; done
  kill -0 "$cpid" 2>/dev/null || { plog "iperf3 ended early: $(head -c 300 "$pd/iperf.err")"; return 1; }

  local snap0="$pd/.snap0" snap1="$pd/.snap1" ca0 cb0 ca1 cb1 t0 t1 prc=0 perf_pid=
  proc_snapshot >"$snap0"
  ca0=$(cpu_ticks "${pid[a]}"); cb0=$(cpu_ticks "${pid[b]}")
  t0=$(date +%s%N)
  if ((perf)); then
    perf record -e "$EVENT" -F "$FREQ" -g -p "${pid[a]},${pid[b]}" -o "$pd/perf.data" -- sleep "$SECS" \
      >"$pd/perf-record.log" 2>&1 &
    PERF_PID=$!
    perf_pid=$PERF_PID
    wait "$PERF_PID"
    prc=$?
    PERF_PID=
  else
    sleep "$SECS"
  fi
  t1=$(date +%s%N)
  ca1=$(cpu_ticks "${pid[a]}"); cb1=$(cpu_ticks "${pid[b]}")
  proc_snapshot >"$snap1"
  local ours bg
  # "other processes": everything but kernel threads, this harness, perf and our namespaces
  ours="$$ $BASHPID ${pid[a]} ${pid[b]} $spid $cpid $perf_pid $(ip netns pids "$NS_A" 2>/dev/null) $(ip netns pids "$NS_B" 2>/dev/null)"
  read -r -a bg <<<"$(bg_usage "$snap0" "$snap1" "$(echo $ours)")"
  rm -f "$snap0" "$snap1"
  local alive=true
  for side in a b; do kill -0 "${pid[$side]}" 2>/dev/null || alive=false; done

  # let iperf3 finish (bounded), then stop udptun (SIGTERM: clean stop, --cpu-prof writes)
  for ((i = 0; i < 100; i++)); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
  topo_kill "$cpid" 2
  topo_kill "$spid" 2
  topo_kill "${pid[a]}" 5
  topo_kill "${pid[b]}" 5

  {
    printf '{"name":"%s","description":%s,"node_flags":%s,"perf":%s,' "$pass" "$(json_str "$desc")" "$(json_str "$flags")" "$([[ $perf == 1 ]] && echo true || echo false)"
    printf '"pid_a":%s,"pid_b":%s,"cpu_ticks_a":%s,"cpu_ticks_b":%s,"clk_tck":%s,"wall_ns":%s,' \
      "${pid[a]}" "${pid[b]}" "$((ca1 - ca0))" "$((cb1 - cb0))" "$CLK_TCK" "$((t1 - t0))"
    printf '"bg_kernel_ticks":%s,"bg_foreign_ticks":%s,"bg_top":%s,"alive":%s,"perf_rc":%s}\n' \
      "${bg[0]:-0}" "${bg[1]:-0}" "$(json_str "${bg[2]:--}")" "$alive" "$prc"
  } >"$pd/pass.json"

  if ((perf)); then
    if [[ $prc != 0 || ! -s $pd/perf.data ]]; then
      plog "perf record failed ($prc): $(tail -n 3 "$pd/perf-record.log")"
      return 1
    fi
    plog "$(grep -o 'Captured and wrote.*' "$pd/perf-record.log" | head -n 1)"
    # JS names come from /tmp/perf-PID.map, which V8 leaves behind after exit
    perf script -i "$pd/perf.data" -F comm,pid,tid,ip,sym,dso 2>"$pd/perf-script.err" |
      "$NODE" "$BENCH_DIR/lib/profile-report.mjs" --fold "$pd" --pid "a=${pid[a]}" --pid "b=${pid[b]}" \
        --v8log "a=$pd/v8-a.log" --v8log "b=$pd/v8-b.log" --root "$ROOT_DIR" ||
      { plog "perf script / folding failed: $(tail -n 3 "$pd/perf-script.err")"; return 1; }
    mkdir -p "$pd/maps"
    for side in a b; do
      [[ -f /tmp/perf-${pid[$side]}.map ]] && mv "/tmp/perf-${pid[$side]}.map" "$pd/maps/"
    done
  else
    for side in a b; do
      [[ -s $pd/$side.cpuprofile ]] || plog "no $side.cpuprofile written"
    done
  fi
  [[ $alive == true ]] || { plog "a udptun process died during the pass"; return 1; }
  return 0
}

failed=()
for pass in "${PASSES[@]}"; do
  run_pass "$pass" || failed+=("$pass")
done
topo_destroy "$PREFIX"
[[ ${#failed[@]} -eq 0 ]] || plog "passes that failed: ${failed[*]}"

ln -sfn "$(basename "$RUN_DIR")" "$OUT_DIR/latest"
"$NODE" "$BENCH_DIR/lib/profile-report.mjs" --report "$RUN_DIR" "${report_args[@]}"
rc=$?
plog "raw data, folded stacks, flame graphs: $RUN_DIR (also $OUT_DIR/latest)"
# a failed production pass means no profile; a failed extra pass is reported, not fatal
[[ " ${failed[*]} " == *" production "* ]] && exit 1
exit "$rc"
