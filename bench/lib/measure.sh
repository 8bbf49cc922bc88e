# shellcheck shell=bash
# bench/lib/measure.sh -- run the iperf3 test matrix for one scenario and
# record raw results (one iperf3 JSON per test plus one line of records.ndjson).
#
# A scenario sets these globals before calling measure_matrix:
#   SC_LABEL       row name in the report (e.g. "wireguard-go", "udptun[gso]")
#   SC_KIND        scenario kind (veth, wireguard-go, udptun, ceiling-c, ...)
#   SC_NS_A/B      namespaces (client in A, server in B)
#   SC_DST4/6      server address inside B (inner address for tunnels)
#   SC_MTU         MTU of the path the packets take (UDP -l is derived from it)
#   SC_PID_A/B     forwarder pids (empty for veth: CPU left blank)
#   SC_DEV         forwarder's TUN device name in both namespaces (empty for veth)
#   SC_SPECS       test specs: tcp4+bbr tcp6+cubic udp4@500M udp4@0 (0 = flood) ...
# Globals from run.sh: RUNS TIME DIRS RUN_DIR NODE BENCH_DIR PROGRESS_DONE PROGRESS_TOTAL

CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)
IPERF_PORT=5201

mlog() { printf '%s\n' "$*" >&2; }

# forwarder CPU time in clock ticks (utime+stime of all threads)
cpu_ticks() {
  local pid=$1 s a
  [[ -n $pid && -r /proc/$pid/stat ]] || { echo ""; return; }
  s=$(<"/proc/$pid/stat") || { echo ""; return; }
  s=${s##*) }
  read -r -a a <<<"$s"
  echo $((a[11] + a[12]))
}

# counters inside a namespace: "rx tx tx_dropped" of the forwarder's device
# (tx = packets the forwarder read from the TUN, rx = packets it wrote,
# tx_dropped = packets the TUN dropped because the forwarder did not read in
# time), then "udp_rcvbuf_errors udp_sndbuf_errors" of the namespace (all its
# UDP sockets). Device fields are "- - -" when there is no device.
ns_counters() {
  local ns=$1 dev=${2:-}
  ip netns exec "$ns" sh -c '
    if [ -n "$0" ] && [ -d /sys/class/net/$0 ]; then
      d=/sys/class/net/$0/statistics
      printf "%s %s %s " $(cat $d/rx_packets) $(cat $d/tx_packets) $(cat $d/tx_dropped)
    else
      printf -- "- - - "
    fi
    awk "/^Udp:/ { if (!h) { for (i = 2; i <= NF; i++) k[\$i] = i; h = 1 } else { print \$k[\"RcvbufErrors\"], \$k[\"SndbufErrors\"] } }" /proc/net/snmp
  ' "$dev" 2>/dev/null
}

# d1 - d0 for field i of two ns_counters lines, or null
ctr_delta() {
  local i=$1 a b
  read -r -a a <<<"$2"; read -r -a b <<<"$3"
  if [[ ${a[i]:-} =~ ^[0-9]+$ && ${b[i]:-} =~ ^[0-9]+$ ]]; then echo $((b[i] - a[i])); else echo null; fi
}

# host-wide CPU ticks from /proc/stat: "user nice system idle iowait irq softirq steal"
# (recorded for reference only: on this VM kind the tick-sampled /proc/stat
# loses ticks; per-process times are exact, the rest of the harness uses those)
host_ticks() {
  local l
  read -r l </proc/stat
  set -- $l
  echo "$2 $3 $4 $5 $6 $7 $8 $9"
}

# per-process CPU snapshot of the whole machine: "pid ppid ticks comm" lines
proc_snapshot() {
  awk '{
    s = $0; i = index(s, "("); j = 0
    for (k = length(s); k > 0; k--) if (substr(s, k, 1) == ")") { j = k; break }
    comm = substr(s, i + 1, j - i - 1); gsub(/[ ,:"\\]/, "_", comm)
    split(substr(s, j + 2), f, " ")
    print $1, f[2], f[12] + f[13], comm
  }' /proc/[0-9]*/stat 2>/dev/null
}

# bg_usage START_SNAPSHOT END_SNAPSHOT OUR_PIDS -> "kernel_ticks foreign_ticks top"
# kernel = kernel threads (ksoftirqd, kworkers: pid 2 and its children);
# foreign = every other process that is not part of the test (not in our
# namespaces, not this harness). A process born during the test counts from 0.
bg_usage() {
  awk -v ours=" $3 " '
    FNR == NR { t0[$1] = $3; next }
    {
      d = $3 - ($1 in t0 ? t0[$1] : 0)
      if (d <= 0) next
      if ($1 == 2 || $2 == 2) { k += d; next }
      if (index(ours, " " $1 " ")) next
      f += d; by[$4] += d
    }
    END {
      top = ""
      for (n = 0; n < 3; n++) {
        best = ""; bv = 0
        for (c in by) if (by[c] > bv) { bv = by[c]; best = c }
        if (best == "") break
        top = top (top == "" ? "" : ",") best ":" bv; delete by[best]
      }
      printf "%d %d %s\n", k, f, (top == "" ? "-" : top)
    }' "$1" "$2"
}

# foreign_pct SECS: share (%) of the whole machine used over SECS seconds by
# processes other than kernel threads and this harness; "pct top"
foreign_pct() {
  local secs=${1:-2} s0 s1 bg t0 t1 cap f
  s0=$(mktemp); s1=$(mktemp)
  proc_snapshot >"$s0"; t0=$(date +%s%N)
  sleep "$secs"
  proc_snapshot >"$s1"; t1=$(date +%s%N)
  read -r -a bg <<<"$(bg_usage "$s0" "$s1" "$$ $BASHPID")"
  rm -f "$s0" "$s1"
  cap=$(((t1 - t0) * CLK_TCK * NPROC / 1000000000))
  ((cap > 0)) || cap=1
  f=$((100 * ${bg[1]:-0} / cap))
  echo "$f ${bg[2]:--}"
}

# wait until something listens on TCP port $2 inside namespace $1
wait_listen() {
  local ns=$1 port=$2 i
  for ((i = 0; i < 100; i++)); do
    [[ -n $(ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null) ]] && return 0
    sleep 0.02
  done
  return 1
}

# json helpers: value or null
jnum() { [[ -n $1 ]] && printf '%s' "$1" || printf 'null'; }

# measure_one spec dir run attempt: one iperf3 run; its record goes to
# $RUN_DIR/.record. Returns 0 ok, 1 iperf3 failed, 2 a forwarder died,
# 3 noisy (other processes used more than NOISY_PCT% of the machine).
measure_one() {
  local spec=$1 dir=$2 run=$3 attempt=${4:-0}
  local proto fam rate="" cc=""
  case $spec in
    tcp4 | tcp4+*) proto=tcp; fam=4 ;;
    tcp6 | tcp6+*) proto=tcp; fam=6 ;;
    udp4@*) proto=udp; fam=4; rate=${spec#udp4@} ;;
    udp6@*) proto=udp; fam=6; rate=${spec#udp6@} ;;
    *) mlog "unknown test spec $spec"; return 1 ;;
  esac
  local dst=$SC_DST4
  [[ $fam == 6 ]] && dst=$SC_DST6
  local args=(-c "$dst" -p "$IPERF_PORT" -t "$TIME" --json --connect-timeout 3000)
  local udp_len=""
  if [[ $proto == udp ]]; then
    if [[ $fam == 4 ]]; then udp_len=$((SC_MTU - 28)); else udp_len=$((SC_MTU - 48)); fi
    args+=(-u -b "$rate" -l "$udp_len")
    # --udp-window: both iperf3 sockets' buffers (the server's is the one that overflows)
    [[ ${UDP_WINDOW:-default} != default ]] && args+=(-w "$UDP_WINDOW")
  fi
  # tcp4+cubic: that congestion control as both namespaces' default, as on a host set up
  # that way. (iperf3 -C is not the same: a socket that starts as BBR keeps BBR's pacing
  # after it is switched, and measured 30% slower than a cubic default here.)
  if [[ $spec == *+* ]]; then
    cc=${spec#*+}
    local ns
    for ns in "$SC_NS_A" "$SC_NS_B"; do
      ip netns exec "$ns" sysctl -qw net.ipv4.tcp_congestion_control="$cc" ||
        { mlog "cannot set tcp_congestion_control=$cc in $ns"; return 1; }
    done
  fi
  [[ $dir == rev ]] && args+=(-R)
  # --pin-iperf: client on CPU PIN_CLIENT, server on CPU PIN_SERVER
  local sargs=()
  if [[ -n ${PIN_IPERF:-} ]]; then
    args+=(-A "${PIN_IPERF%,*}")
    sargs+=(-A "${PIN_IPERF#*,}")
  fi
  # --iperf-args: extra client arguments (e.g. "-w 4M")
  [[ -n ${IPERF_EXTRA:-} ]] && args+=($IPERF_EXTRA)

  local safe_label=${SC_LABEL//[^A-Za-z0-9_.-]/_}
  local name="${safe_label}.${spec//@/-}.${dir}.r${run}"
  ((attempt > 0)) && name+=".retry$attempt"
  local out="$RUN_DIR/iperf/$name.json" err="$RUN_DIR/iperf/$name.err"

  # one-off iperf3 server in B
  local spid
  ip netns exec "$SC_NS_B" iperf3 -s -1 -p "$IPERF_PORT" "${sargs[@]}" </dev/null >"$RUN_DIR/iperf/$name.server.log" 2>&1 &
  spid=$!
  TOPO_PIDS+=("$spid")
  if ! wait_listen "$SC_NS_B" "$IPERF_PORT"; then
    mlog "iperf3 server did not start in $SC_NS_B"
    topo_kill "$spid" 2
    return 1
  fi

  local ca0 cb0 da0 db0 ca1 cb1 da1 db1 t0 t1 rc
  ca0=$(cpu_ticks "$SC_PID_A"); cb0=$(cpu_ticks "$SC_PID_B")
  da0=$(ns_counters "$SC_NS_A" "$SC_DEV"); db0=$(ns_counters "$SC_NS_B" "$SC_DEV")
  local h0 h1 ours snap0="$RUN_DIR/.snap0" snap1="$RUN_DIR/.snap1"
  ours="$$ $BASHPID $spid $SC_PID_A $SC_PID_B $(ip netns pids "$SC_NS_A" 2>/dev/null) $(ip netns pids "$SC_NS_B" 2>/dev/null)"
  proc_snapshot >"$snap0"
  h0=$(host_ticks)
  t0=$(date +%s%N)
  timeout -k 3 $((TIME + 30)) ip netns exec "$SC_NS_A" iperf3 "${args[@]}" >"$out" 2>"$err"
  rc=$?
  t1=$(date +%s%N)
  h1=$(host_ticks)
  proc_snapshot >"$snap1"
  ours+=" $(ip netns pids "$SC_NS_A" 2>/dev/null) $(ip netns pids "$SC_NS_B" 2>/dev/null)"
  local bg
  read -r -a bg <<<"$(bg_usage "$snap0" "$snap1" "$(echo $ours)")"
  ca1=$(cpu_ticks "$SC_PID_A"); cb1=$(cpu_ticks "$SC_PID_B")
  da1=$(ns_counters "$SC_NS_A" "$SC_DEV"); db1=$(ns_counters "$SC_NS_B" "$SC_DEV")
  # the one-off server exits after the test; make sure it is gone
  local i
  for ((i = 0; i < 40; i++)); do kill -0 "$spid" 2>/dev/null || break; sleep 0.05; done
  topo_kill "$spid" 2

  # forwarders still alive?
  local alive=true
  if [[ -n $SC_PID_A ]] && ! kill -0 "$SC_PID_A" 2>/dev/null; then alive=false; fi
  if [[ -n $SC_PID_B ]] && ! kill -0 "$SC_PID_B" 2>/dev/null; then alive=false; fi

  local hv0 hv1 k host="" cap
  read -r -a hv0 <<<"$h0"; read -r -a hv1 <<<"$h1"
  for k in 0 1 2 3 4 5 6 7; do host+="${host:+,}$((hv1[k] - hv0[k]))"; done
  # machine capacity over the run, in clock ticks
  cap=$(((t1 - t0) * CLK_TCK * NPROC / 1000000000))
  ((cap > 0)) || cap=1
  local variant=${SC_VARIANT:-}
  variant=${variant//\\/\\\\}; variant=${variant//\"/\\\"}
  printf '{"label":"%s","kind":"%s","variant":"%s","spec":"%s","proto":"%s","family":%s,"rate":"%s","dir":"%s","run":%s,"time":%s,"udp_len":%s,"mtu":%s,"file":"%s","rc":%s,"wall_ns":%s,"clk_tck":%s,"nproc":%s,"cpu_ticks_a":%s,"cpu_ticks_b":%s,"dev_a":{"rx":%s,"tx":%s,"tx_dropped":%s},"dev_b":{"rx":%s,"tx":%s,"tx_dropped":%s},"udp_a":{"rcvbuf_errors":%s,"sndbuf_errors":%s},"udp_b":{"rcvbuf_errors":%s,"sndbuf_errors":%s},"forwarders_alive":%s,"host_ticks":[%s],"bg":{"kernel_ticks":%s,"foreign_ticks":%s,"foreign_top":"%s"}}\n' \
    "$SC_LABEL" "$SC_KIND" "$variant" "$spec" "$proto" "$fam" "$rate" "$dir" "$run" "$TIME" "$(jnum "$udp_len")" "$SC_MTU" \
    "iperf/$name.json" "$rc" "$((t1 - t0))" "$CLK_TCK" "$NPROC" \
    "$(jnum "$([[ -n $ca0 && -n $ca1 ]] && echo $((ca1 - ca0)))")" \
    "$(jnum "$([[ -n $cb0 && -n $cb1 ]] && echo $((cb1 - cb0)))")" \
    "$(ctr_delta 0 "$da0" "$da1")" "$(ctr_delta 1 "$da0" "$da1")" "$(ctr_delta 2 "$da0" "$da1")" \
    "$(ctr_delta 0 "$db0" "$db1")" "$(ctr_delta 1 "$db0" "$db1")" "$(ctr_delta 2 "$db0" "$db1")" \
    "$(ctr_delta 3 "$da0" "$da1")" "$(ctr_delta 4 "$da0" "$da1")" \
    "$(ctr_delta 3 "$db0" "$db1")" "$(ctr_delta 4 "$db0" "$db1")" \
    "$alive" "$host" "${bg[0]:-0}" "${bg[1]:-0}" "${bg[2]:--}" >"$RUN_DIR/.record"

  local summary tag
  summary=$("$NODE" "$BENCH_DIR/lib/report.mjs" --one "$RUN_DIR" "$(cat "$RUN_DIR/.record")" 2>&1)
  tag=$(printf '%3d/%d' "$((PROGRESS_DONE + 1))" "$PROGRESS_TOTAL")
  ((attempt > 0)) && tag+=" retry $attempt"
  mlog "$(printf '[%s] %-16s %-10s %-3s run %d/%d  %s' "$tag" "$SC_LABEL" "${spec/@0/@flood}" "$dir" "$run" "$RUNS" "$summary")"
  if [[ $rc != 0 ]]; then
    mlog "    iperf3 exit $rc: $(tr '\n' ' ' <"$err" | cut -c1-300)"
  fi
  if [[ $alive != true ]]; then
    mlog "    a forwarder process died"
    return 2
  fi
  [[ $rc != 0 ]] && return 1
  if ((${bg[1]:-0} * 100 > NOISY_PCT * cap)); then return 3; fi
  return 0
}

NOISY_PCT=${NOISY_PCT:-5}
RETRY_BUDGET_SPENT_LOGGED=0

# wait_quiet MAX_S: wait up to MAX_S seconds until other processes use less
# than NOISY_PCT% of the machine (2-second windows). 0 = quiet, 1 = gave up.
wait_quiet() {
  local max=${1:-60} start=$SECONDS fp
  while :; do
    read -r fp _ <<<"$(foreign_pct 2)"
    ((fp < NOISY_PCT)) && return 0
    ((SECONDS - start >= max)) && return 1
    sleep 3
  done
}

# measure_try spec dir run: measure_one, and while the run was noisy and
# RETRY_NOISY attempts remain, wait (bounded, QUIET_WAIT s) for a quiet
# machine and measure again. All retrying of a bench run together may spend at
# most RETRY_BUDGET seconds (waits and repeated runs); after that noisy runs
# are kept, flagged. The kept record goes to records.ndjson; noisy ones that
# were replaced go to records.noisy.ndjson.
RETRY_SPENT=0
measure_try() {
  local spec=$1 dir=$2 run=$3 attempt=0 rc t0 left
  while :; do
    t0=$SECONDS
    measure_one "$spec" "$dir" "$run" "$attempt"
    rc=$?
    ((attempt > 0)) && RETRY_SPENT=$((RETRY_SPENT + SECONDS - t0))
    left=$((${RETRY_BUDGET:-600} - RETRY_SPENT))
    if [[ $rc == 3 ]] && ((attempt < ${RETRY_NOISY:-0})); then
      if ((left <= TIME + 2)); then
        ((RETRY_BUDGET_SPENT_LOGGED++ == 0)) &&
          mlog "    retry budget (${RETRY_BUDGET:-600}s) used up: noisy runs are kept from now on, flagged"
        break
      fi
      cat "$RUN_DIR/.record" >>"$RUN_DIR/records.noisy.ndjson"
      attempt=$((attempt + 1))
      t0=$SECONDS
      local w=${QUIET_WAIT:-60}
      ((w > left - TIME - 2)) && w=$((left - TIME - 2))
      if ! wait_quiet "$w"; then
        mlog "    machine still busy after ${w}s; measuring again anyway"
      fi
      RETRY_SPENT=$((RETRY_SPENT + SECONDS - t0))
      continue
    fi
    break
  done
  cat "$RUN_DIR/.record" >>"$RUN_DIR/records.ndjson"
  PROGRESS_DONE=$((PROGRESS_DONE + 1))
  [[ $rc == 3 ]] && return 0
  return "$rc"
}

# measure_matrix: all specs x dirs x runs (runs outermost, so drift spreads
# across tests rather than piling onto one). Returns 1 if a forwarder died.
measure_matrix() {
  mkdir -p "$RUN_DIR/iperf"
  local run spec dir rc n=0 total
  total=$(matrix_size)
  for ((run = 1; run <= RUNS; run++)); do
    for spec in $SC_SPECS; do
      for dir in $DIRS; do
        measure_try "$spec" "$dir" "$run"
        rc=$?
        n=$((n + 1))
        if [[ $rc == 2 ]]; then
          mlog "    aborting scenario $SC_LABEL"
          PROGRESS_DONE=$((PROGRESS_DONE + total - n))
          return 1
        fi
      done
    done
  done
}

matrix_size() { local n s; n=$(wc -w <<<"$DIRS"); s=$(wc -w <<<"$SC_SPECS"); echo $((n * s * RUNS)); }
