# shellcheck shell=bash
# bench/lib/topo.sh -- sourceable helpers for the benchmark topology.
#
#   netns "${prefix}-a" (A)  veth0 198.18.0.1/24 fd18::1/64
#            |  veth pair
#   netns "${prefix}-b" (B)  veth0 198.18.0.2/24 fd18::2/64
#
# Every namespace and every background process started through these helpers
# is recorded, and topo_cleanup (installed as a trap by topo_install_trap)
# kills those processes by pid and deletes those namespaces, on normal exit,
# on failure and on Ctrl-C.
#
# Usage:
#   source bench/lib/topo.sh
#   topo_install_trap
#   topo_create ubench            # -> TOPO_NS_A=ubench-a TOPO_NS_B=ubench-b
#   topo_veth_tune ubench 1420 off
#   topo_bg ubench-a some-daemon --flag    # -> TOPO_LAST_PID
#   topo_destroy ubench

TOPO_UNDERLAY_A4=198.18.0.1
TOPO_UNDERLAY_B4=198.18.0.2
TOPO_UNDERLAY_A6=fd18::1
TOPO_UNDERLAY_B6=fd18::2
TOPO_DEV=veth0

# namespaces created by this shell, and pids started by topo_bg
declare -ga TOPO_CREATED_NS=()
declare -ga TOPO_PIDS=()
TOPO_CLEANING=0

topo_log() { printf '[topo] %s\n' "$*" >&2; }

topo_ns_a() { printf '%s-a' "${1:-ubench}"; }
topo_ns_b() { printf '%s-b' "${1:-ubench}"; }

topo_ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# topo_create [prefix]: create namespaces PREFIX-a / PREFIX-b joined by a veth
# pair (named veth0 in both) with the underlay addresses. Fails if either
# namespace already exists (another run with the same prefix, or a leftover:
# run topo_destroy PREFIX first).
topo_create() {
  local prefix=${1:-ubench}
  local a b
  a=$(topo_ns_a "$prefix"); b=$(topo_ns_b "$prefix")
  if topo_ns_exists "$a" || topo_ns_exists "$b"; then
    topo_log "namespace $a or $b already exists (leftover? run: bench/run.sh --cleanup --prefix $prefix)"
    return 1
  fi
  ip netns add "$a" || return 1
  TOPO_CREATED_NS+=("$a")
  ip netns add "$b" || return 1
  TOPO_CREATED_NS+=("$b")
  ip -n "$a" link set lo up
  ip -n "$b" link set lo up
  ip -n "$a" link add "$TOPO_DEV" type veth peer name "$TOPO_DEV" netns "$b" || return 1
  ip -n "$a" addr add "$TOPO_UNDERLAY_A4/24" dev "$TOPO_DEV"
  ip -n "$b" addr add "$TOPO_UNDERLAY_B4/24" dev "$TOPO_DEV"
  ip -n "$a" -6 addr add "$TOPO_UNDERLAY_A6/64" dev "$TOPO_DEV" nodad
  ip -n "$b" -6 addr add "$TOPO_UNDERLAY_B6/64" dev "$TOPO_DEV" nodad
  ip -n "$a" link set "$TOPO_DEV" up
  ip -n "$b" link set "$TOPO_DEV" up
  TOPO_NS_A=$a; TOPO_NS_B=$b
  export TOPO_NS_A TOPO_NS_B
}

# topo_veth_tune prefix mtu off|on : set the veth MTU on both ends and turn
# TSO/GSO/GRO off (or on) with ethtool.
topo_veth_tune() {
  local prefix=${1:-ubench} mtu=${2:-1420} state=${3:-off} ns
  for ns in "$(topo_ns_a "$prefix")" "$(topo_ns_b "$prefix")"; do
    ip -n "$ns" link set "$TOPO_DEV" mtu "$mtu" || return 1
    ip netns exec "$ns" ethtool -K "$TOPO_DEV" tso "$state" gso "$state" gro "$state" >/dev/null || {
      topo_log "ethtool -K $TOPO_DEV tso/gso/gro $state failed in $ns"
      return 1
    }
  done
}

# topo_bg ns cmd... : run cmd in the background inside namespace ns (ip netns
# exec execs the command, so the pid is the command's own pid when the command
# itself execs). Records the pid for cleanup. Sets TOPO_LAST_PID.
# Output goes to $TOPO_BG_LOG (default /dev/null).
topo_bg() {
  local ns=$1; shift
  ip netns exec "$ns" "$@" </dev/null >>"${TOPO_BG_LOG:-/dev/null}" 2>&1 &
  TOPO_LAST_PID=$!
  TOPO_PIDS+=("$TOPO_LAST_PID")
}

# topo_forget pid: drop a reaped pid from the cleanup list (so a later
# cleanup can never signal an unrelated process that reused the number)
topo_forget() {
  local keep=() p
  for p in "${TOPO_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  TOPO_PIDS=("${keep[@]}")
}

# topo_kill pid [timeout_s]: SIGTERM, wait up to timeout, then SIGKILL; reap
# it and forget it. Only for children of this shell (started with topo_bg).
topo_kill() {
  local pid=$1 t=${2:-5} i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; topo_forget "$pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < t * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    topo_log "pid $pid ignored SIGTERM for ${t}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  topo_forget "$pid"
  return 0
}

# topo_kill_ns_procs ns: kill every process still living in namespace ns.
# Only namespaces this harness created are passed here.
topo_kill_ns_procs() {
  local ns=$1 pids p
  pids=$(ip netns pids "$ns" 2>/dev/null) || return 0
  [[ -z $pids ]] && return 0
  for p in $pids; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.3
  pids=$(ip netns pids "$ns" 2>/dev/null)
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
}

# topo_destroy [prefix]: kill whatever runs in the two namespaces, delete them.
topo_destroy() {
  local prefix=${1:-ubench} ns
  for ns in "$(topo_ns_a "$prefix")" "$(topo_ns_b "$prefix")"; do
    if topo_ns_exists "$ns"; then
      topo_kill_ns_procs "$ns"
      ip netns del "$ns" 2>/dev/null || topo_log "could not delete namespace $ns"
    fi
  done
  local keep=() n
  for n in "${TOPO_CREATED_NS[@]}"; do
    [[ $n == "$(topo_ns_a "$prefix")" || $n == "$(topo_ns_b "$prefix")" ]] || keep+=("$n")
  done
  TOPO_CREATED_NS=("${keep[@]}")
}

# topo_cleanup: kill every pid started via topo_bg, delete every namespace
# created by topo_create in this shell. Idempotent.
topo_cleanup() {
  ((TOPO_CLEANING)) && return 0
  TOPO_CLEANING=1
  local pid ns
  for pid in "${TOPO_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
  done
  local pids=("${TOPO_PIDS[@]}")
  for pid in "${pids[@]}"; do topo_kill "$pid" 3; done
  TOPO_PIDS=()
  for ns in "${TOPO_CREATED_NS[@]}"; do
    if topo_ns_exists "$ns"; then
      topo_kill_ns_procs "$ns"
      ip netns del "$ns" 2>/dev/null || topo_log "could not delete namespace $ns"
    fi
  done
  TOPO_CREATED_NS=()
  TOPO_CLEANING=0
}

# topo_install_trap: run topo_cleanup on EXIT, and turn INT/TERM/HUP into an
# exit (which then runs the EXIT trap). An optional extra command runs first.
topo_install_trap() {
  TOPO_EXTRA_CLEANUP=${1:-}
  trap '_topo_on_exit' EXIT
  trap '_topo_on_signal 130' INT
  trap '_topo_on_signal 143' TERM
  trap '_topo_on_signal 129' HUP
}
_topo_on_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [[ -n ${TOPO_EXTRA_CLEANUP:-} ]] && eval "$TOPO_EXTRA_CLEANUP"
  topo_cleanup
  exit "$rc"
}
_topo_on_signal() {
  topo_log "interrupted, cleaning up"
  exit "$1"
}
