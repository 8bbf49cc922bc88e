# shellcheck shell=bash
# bench/lib/scenarios.sh -- one function per scenario. Each builds its own
# topology (fresh namespaces with prefix $PREFIX), starts its forwarders,
# runs measure_matrix, and tears everything down again.
#
# Globals from run.sh: PREFIX RUNS TIME DIRS RUN_DIR NODE BENCH_DIR ROOT_DIR
#   UDP_RATES FULL TESTS_FILTER UNDERLAY_OFFLOADS TCP_CC

INNER_MTU=1420
# udptun's default device.txQueueLen (src/config/schema.ts), for the C loops' devices
UDPTUN_TXQUEUELEN=$("$NODE" --no-warnings -e 'import(process.argv[1]).then((m) => console.log(m.DEFAULTS.txQueueLen))' \
  "$ROOT_DIR/src/config/schema.ts") || {
  UDPTUN_TXQUEUELEN=500
  printf 'bench: cannot read DEFAULTS.txQueueLen from src/config/schema.ts; the C loops get the TUN default, 500\n' >&2
}
UDPTUN_READY_TIMEOUT=${UDPTUN_READY_TIMEOUT:-20}
# Both wireguard-go releases and their wg, from the module the interop tests use
# (test/e2e/lib/wireguard-bins.ts): bookworm's system packages, trixie's in .deps/trixie
# (scripts/fetch-wireguard-trixie.sh).
WG_BOOKWORM_GO=; WG_BOOKWORM=; WG_TRIXIE_GO=; WG_TRIXIE=
if wg_bins=$("$NODE" --no-warnings -e 'import(process.argv[1]).then((m) =>
    console.log([m.BOOKWORM.wireguardGo, m.BOOKWORM.wg, m.TRIXIE.wireguardGo, m.TRIXIE.wg].join("\n")))' \
    "$ROOT_DIR/test/e2e/lib/wireguard-bins.ts"); then
  { read -r WG_BOOKWORM_GO; read -r WG_BOOKWORM; read -r WG_TRIXIE_GO; read -r WG_TRIXIE; } <<<"$wg_bins"
else
  printf 'bench: cannot read test/e2e/lib/wireguard-bins.ts; wireguard-go is taken from PATH, wireguard-go-2023 is unavailable\n' >&2
  WG_BOOKWORM_GO=$(command -v wireguard-go); WG_BOOKWORM=$(command -v wg)
fi

slog() { printf '%s\n' "$*" >&2; }

# scenario_specs kind -> test specs for that scenario
#   veth, vxlan, ceiling-c: tcp4 + UDP at every rate; tcp6 with --full.
#   wireguard-go, udptun: tcp4 tcp6 + UDP at every rate.
#   udptun-partial (the default set's one-offload-off variants): tcp4 + the last fixed
#   UDP rate and the flood.
scenario_specs() {
  local kind=$1 specs=() r
  local want_tcp6=0 rates=()
  case $kind in
    veth)
      ((FULL)) && want_tcp6=1
      rates=($UDP_RATES) ;; # the rates veth sustains set the UDP target
    veth-tso)
      ((FULL)) && want_tcp6=1
      rates=() ;;
    ceiling-c | vxlan)
      ((FULL)) && want_tcp6=1
      rates=($UDP_RATES) ;;
    wireguard-go | udptun)
      want_tcp6=1
      rates=($UDP_RATES) ;;
    udptun-partial)
      local top=""
      for r in $UDP_RATES; do [[ $r == 0 ]] || top=$r; done # the last fixed rate
      for r in $UDP_RATES; do [[ $r == 0 || $r == "$top" ]] && rates+=("$r"); done ;;
  esac
  # each TCP test once per congestion control (--tcp-cc): tcp4+bbr, tcp4+cubic, ...
  local cc
  for cc in "${TCP_CC[@]}"; do specs+=("tcp4+$cc"); done
  if ((want_tcp6)); then for cc in "${TCP_CC[@]}"; do specs+=("tcp6+$cc"); done; fi
  for r in "${rates[@]}"; do specs+=("udp4@$r"); done
  # --tests filter (tcp4,tcp6,udp4)
  if [[ -n ${TESTS_FILTER:-} ]]; then
    local keep=() s
    for s in "${specs[@]}"; do
      [[ ",$TESTS_FILTER," == *",${s%%[@+]*},"* ]] && keep+=("$s")
    done
    specs=("${keep[@]}")
  fi
  echo "${specs[*]}"
}

sc_reset() {
  SC_LABEL=; SC_KIND=; SC_VARIANT=; SC_NS_A=; SC_NS_B=; SC_DST4=; SC_DST6=
  SC_MTU=$INNER_MTU; SC_PID_A=; SC_PID_B=; SC_DEV=; SC_SPECS=; SC_KEYDIR=
}

# underlay for tunnel scenarios: MTU 1500 (the encapsulated 1420-byte inner
# packets fit), offloads left at the kernel default unless --underlay-offloads off
tunnel_underlay() {
  if [[ ${UNDERLAY_OFFLOADS:-default} == off ]]; then
    topo_veth_tune "$PREFIX" 1500 off
  fi
}

# Per side (a, b) of a tunnel scenario: its namespace, its underlay IPv4 address, the other side.
declare -gA TUN_NS=() TUN_UNDER=() TUN_OTHER=([a]=b [b]=a)

# tunnel_topology: fresh namespaces with the tunnel underlay; sets SC_NS_A/B, TUN_NS and
# TUN_UNDER. On failure the scenario is already finished.
tunnel_topology() {
  topo_create "$PREFIX" || return 1
  tunnel_underlay || { finish_scenario 1; return 1; }
  SC_NS_A=$TOPO_NS_A; SC_NS_B=$TOPO_NS_B
  TUN_NS=([a]=$SC_NS_A [b]=$SC_NS_B)
  TUN_UNDER=([a]=$TOPO_UNDERLAY_A4 [b]=$TOPO_UNDERLAY_B4)
}

# Inner addresses of a tunnel scenario on net N: 10.N.0.0/24 and fdN::/64, side a .1 / ::1,
# side b .2 / ::2. inner4/inner6 SIDE N print one side's address.
side_n() { [[ $1 == a ]] && echo 1 || echo 2; }
inner4() { echo "10.$2.0.$(side_n "$1")"; }
inner6() { echo "fd$2::$(side_n "$1")"; }

# tunnel_address SIDE DEV N [link set args...]: DEV gets SIDE's inner addresses on net N, the
# inner MTU, and goes up; side b's addresses become the test destinations.
tunnel_address() {
  local side=$1 dev=$2 net=$3 ns=${TUN_NS[$1]}
  shift 3
  ip -n "$ns" addr add "$(inner4 "$side" "$net")/24" dev "$dev" || return 1
  ip -n "$ns" -6 addr add "$(inner6 "$side" "$net")/64" dev "$dev" nodad || return 1
  ip -n "$ns" link set "$dev" mtu "$INNER_MTU" "$@" up || return 1
  if [[ $side == b ]]; then SC_DST4=$(inner4 b "$net"); SC_DST6=$(inner6 b "$net"); fi
}

# wait until $2 exists inside namespace $1
wait_dev() {
  local ns=$1 dev=$2 t=${3:-10} i
  for ((i = 0; i < t * 20; i++)); do
    ip -n "$ns" link show dev "$dev" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

# ping across the tunnel until it answers (bounded)
wait_path() {
  local ns=$1 dst=$2 i
  for ((i = 0; i < 20; i++)); do
    ip netns exec "$ns" ping -c 1 -W 1 -q "$dst" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  slog "  no answer from $dst through the tunnel"
  return 1
}

has_spec() { [[ " $SC_SPECS " == *" $1"* ]]; }

check_paths() {
  wait_path "$SC_NS_A" "$SC_DST4" || return 1
  if has_spec tcp6 || has_spec udp6; then wait_path "$SC_NS_A" "$SC_DST6" || return 1; fi
  return 0
}

# counters of both namespaces, for post-mortems (RUN_DIR/diag/)
diag_dump() {
  local side ns f
  mkdir -p "$RUN_DIR/diag"
  for side in a b; do
    ns=$SC_NS_A; [[ $side == b ]] && ns=$SC_NS_B
    [[ -n $ns ]] && topo_ns_exists "$ns" || continue
    f="$RUN_DIR/diag/${SC_LABEL//[^A-Za-z0-9_.-]/_}.$side.txt"
    {
      echo "# ip -s -s link"; ip -n "$ns" -s -s link
      echo "# /proc/net/snmp"; ip netns exec "$ns" cat /proc/net/snmp
      echo "# /proc/net/netstat"; ip netns exec "$ns" cat /proc/net/netstat
    } >"$f" 2>&1
  done
}

finish_scenario() {
  local rc=$1
  diag_dump
  [[ -n $SC_PID_A ]] && topo_kill "$SC_PID_A" 5
  [[ -n $SC_PID_B ]] && topo_kill "$SC_PID_B" 5
  topo_destroy "$PREFIX"
  [[ -n $SC_KEYDIR ]] && rm -rf -- "$SC_KEYDIR"
  SC_KEYDIR=
  return "$rc"
}

# ---------------------------------------------------------------- veth
# Direct over the veth pair: NAME MTU OFFLOADS(on|off) DESCRIPTION.
veth_scenario() {
  local name=$1 mtu=$2 offloads=$3 what=$4
  sc_reset
  SC_LABEL=$name; SC_KIND=$name; SC_SPECS=$(scenario_specs "$name"); SC_MTU=$mtu
  slog "== $name: direct over the veth pair, MTU $mtu, $what"
  topo_create "$PREFIX" || return 1
  topo_veth_tune "$PREFIX" "$mtu" "$offloads" || { finish_scenario 1; return 1; }
  SC_NS_A=$TOPO_NS_A; SC_NS_B=$TOPO_NS_B
  SC_DST4=$TOPO_UNDERLAY_B4; SC_DST6=$TOPO_UNDERLAY_B6
  check_paths || { finish_scenario 1; return 1; }
  measure_matrix
  finish_scenario $?
}

# The packet-level limit: TSO/GSO/GRO off at the tunnel MTU.
scenario_veth() { veth_scenario veth "$INNER_MTU" off "TSO/GSO/GRO off"; }

# Kernel-default offloads at MTU 1500: not in the default set; a reference for offload work.
scenario_veth_tso() { veth_scenario veth-tso 1500 on "offloads on"; }

# ---------------------------------------------------------------- wireguard-go
# scenario_wireguard_go LABEL WIREGUARD_GO WG: one release of wireguard-go (row LABEL) with
# the wg of the same release: wireguard-go is bookworm's 0.0.20220316, wireguard-go-2023
# trixie's 0.0.20231211 (UDP GSO/GRO and TUN offloads).
# Each wireguard-go runs in its namespace's private mount namespace (the one
# `ip netns exec` makes) with a tmpfs on /run/wireguard, so the two wg0.sock
# UAPI sockets (and those of parallel runs) do not collide; `wg` is run in
# the same mount+net namespaces through nsenter.
scenario_wireguard_go() {
  local label=$1 wggo=$2 wgtool=$3
  sc_reset
  SC_LABEL=$label; SC_KIND=wireguard-go; SC_SPECS=$(scenario_specs wireguard-go)
  SC_DEV=wg0
  if [[ ! -x $wggo || ! -x $wgtool ]]; then
    slog "== $label: ${wggo:-wireguard-go} or ${wgtool:-wg} missing (scripts/fetch-wireguard-trixie.sh, or --install-deps)"
    return 1
  fi
  slog "== $label ($("$wggo" --version 2>/dev/null | head -n 1), $wggo): wg0 MTU $INNER_MTU, 10.88.0.0/24, fd88::/64"
  tunnel_topology || return 1
  local kd="$RUN_DIR/wg/$label" side ns net=88
  mkdir -p "$kd"; chmod 700 "$RUN_DIR/wg" "$kd"
  mkdir -p /run/wireguard
  for side in a b; do
    (umask 077; "$wgtool" genkey >"$kd/$side.key")
    "$wgtool" pubkey <"$kd/$side.key" >"$kd/$side.pub"
  done
  local -A pid
  for side in a b; do
    ns=${TUN_NS[$side]}
    TOPO_BG_LOG="$RUN_DIR/$label.$side.log" topo_bg "$ns" env WG_PROCESS_FOREGROUND=1 LOG_LEVEL=error \
      sh -c 'mount -t tmpfs -o mode=0700 tmpfs /run/wireguard && exec "$0" wg0' "$wggo"
    pid[$side]=$TOPO_LAST_PID
  done
  SC_PID_A=${pid[a]}; SC_PID_B=${pid[b]}
  for side in a b; do
    ns=${TUN_NS[$side]}
    if ! wait_dev "$ns" wg0 10; then
      slog "  wireguard-go did not create wg0 in $ns: $(tail -n 5 "$RUN_DIR/$label.$side.log" 2>/dev/null)"
      finish_scenario 1; return 1
    fi
    # the UAPI socket appears right after the device
    local i
    for ((i = 0; i < 100; i++)); do
      nsenter -t "${pid[$side]}" -m -n test -S /run/wireguard/wg0.sock && break
      sleep 0.05
    done
    local o=${TUN_OTHER[$side]}
    nsenter -t "${pid[$side]}" -m -n "$wgtool" set wg0 private-key "$kd/$side.key" listen-port 51820 \
      peer "$(cat "$kd/$o.pub")" endpoint "${TUN_UNDER[$o]}:51820" \
      allowed-ips "$(inner4 "$o" $net)/32,$(inner6 "$o" $net)/128" ||
      { slog "  wg set failed in $ns"; finish_scenario 1; return 1; }
    tunnel_address "$side" wg0 $net || { finish_scenario 1; return 1; }
  done
  check_paths || { finish_scenario 1; return 1; }
  measure_matrix
  finish_scenario $?
}

# ---------------------------------------------------------------- vxlan
# The kernel's own UDP tunnel over the same veth and underlay as the other tunnels, at
# the same inner MTU: what a tunnel costs with no user space at all (no forwarder
# process, so no CPU columns; the work shows in kthreads% and softirq).
scenario_vxlan() {
  sc_reset
  SC_LABEL=vxlan; SC_KIND=vxlan; SC_SPECS=$(scenario_specs vxlan)
  slog "== vxlan: kernel VXLAN (VNI 42, UDP 4789) over the veth, vx0 MTU $INNER_MTU, 10.55.0.0/24, fd55::/64"
  tunnel_topology || return 1
  local side ns
  for side in a b; do
    ns=${TUN_NS[$side]}
    ip -n "$ns" link add vx0 type vxlan id 42 local "${TUN_UNDER[$side]}" remote "${TUN_UNDER[${TUN_OTHER[$side]}]}" \
      dstport 4789 dev "$TOPO_DEV" || { slog "  cannot create a vxlan device in $ns"; finish_scenario 1; return 1; }
    tunnel_address "$side" vx0 55 || { finish_scenario 1; return 1; }
  done
  check_paths || { finish_scenario 1; return 1; }
  measure_matrix
  finish_scenario $?
}

# ---------------------------------------------------------------- udptun
# udptun_spec_kind LABEL -> the scenario_specs kind of a udptun row. The default set's
# partial variants (one offload off) answer "what does this offload bring": tcp4 and the
# top UDP rates are enough for that (--full: everything).
udptun_spec_kind() {
  case $1 in
    udptun:no-coalesce | udptun:no-gso-gro | udptun:no-tun-offload) ((FULL)) && echo udptun || echo udptun-partial ;;
    *) echo udptun ;;
  esac
}

# scenario_udptun LABEL FRAGMENT_JSON
#   FRAGMENT_JSON is deep-merged into both sides' config (objects merge,
#   arrays and scalars replace); use it for optimisation switches.
scenario_udptun() {
  local label=${1:-udptun} fragment=${2:-"{}"}
  sc_reset
  SC_LABEL=$label; SC_KIND=udptun; SC_VARIANT=$fragment; SC_SPECS=$(scenario_specs "$(udptun_spec_kind "$label")")
  local cli="$ROOT_DIR/dist/src/cli.js"
  local unode=$UDPTUN_NODE
  slog "== $label: udptun ($unode $cli) fragment $fragment"
  if [[ ! -f $cli ]]; then
    slog "  $cli missing: build first (cd $ROOT_DIR && npm ci && npm run build)"
    return 1
  fi
  topo_create "$PREFIX" || return 1
  tunnel_underlay || { finish_scenario 1; return 1; }
  SC_NS_A=$TOPO_NS_A; SC_NS_B=$TOPO_NS_B
  local cd="$RUN_DIR/udptun/${label//[^A-Za-z0-9_.-]/_}" side
  mkdir -p "$cd"
  # WireGuard's key files: made for this scenario in a private temp folder (never in the
  # repo, nor in the results), removed with the scenario
  SC_KEYDIR=$(mktemp -d "${TMPDIR:-/tmp}/udptun-bench-keys.XXXXXX") || { finish_scenario 1; return 1; }
  for side in a b; do
    "$NODE" "$BENCH_DIR/lib/udptun-config.mjs" "$side" "$fragment" "$SC_KEYDIR" >"$cd/$side.json" ||
      { slog "  cannot write the udptun configs (fragment $fragment)"; finish_scenario 1; return 1; }
  done
  SC_DEV=$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).device.name)' "$cd/a.json")
  local -A nsof=([a]=$SC_NS_A [b]=$SC_NS_B) pid metrics
  for side in a b; do
    metrics[$side]=$("$NODE" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).metrics.listen)' "$cd/$side.json")
    TOPO_BG_LOG="$cd/$side.log" topo_bg "${nsof[$side]}" "$unode" "$cli" run --config "$cd/$side.json"
    pid[$side]=$TOPO_LAST_PID
  done
  SC_PID_A=${pid[a]}; SC_PID_B=${pid[b]}
  # readiness: GET /healthz -> 200 on each side, bounded
  local deadline=$((SECONDS + UDPTUN_READY_TIMEOUT)) ok
  for side in a b; do
    ok=0
    while ((SECONDS < deadline)); do
      if ! kill -0 "${pid[$side]}" 2>/dev/null; then
        slog "  udptun ($side) exited during start-up: $(tail -n 20 "$cd/$side.log")"
        finish_scenario 1; return 1
      fi
      if ip netns exec "${nsof[$side]}" curl -sf -m 1 -o /dev/null "http://${metrics[$side]}/healthz"; then ok=1; break; fi
      sleep 0.1
    done
    if ((!ok)); then
      slog "  udptun ($side) not healthy after ${UDPTUN_READY_TIMEOUT}s: $(tail -n 20 "$cd/$side.log")"
      finish_scenario 1; return 1
    fi
  done
  SC_DST4=$("$NODE" -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(c.device.address.find(a=>!a.includes(":")).split("/")[0])' "$cd/b.json")
  SC_DST6=$("$NODE" -e 'const c=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const a=c.device.address.find(a=>a.includes(":"));console.log(a?a.split("/")[0]:"")' "$cd/b.json")
  check_paths || { finish_scenario 1; return 1; }
  measure_matrix
  local rc=$?
  # udptun must remove its TUN device on SIGTERM
  topo_kill "$SC_PID_A" 10; topo_kill "$SC_PID_B" 10
  for side in a b; do
    if ip -n "${nsof[$side]}" link show dev "$SC_DEV" >/dev/null 2>&1; then
      slog "  warning: $SC_DEV still present in ${nsof[$side]} after SIGTERM"
    fi
  done
  SC_PID_A=; SC_PID_B=
  finish_scenario $rc
}

# ---------------------------------------------------------------- ceiling-c
# Built at bench time. ceiling-c: bench/ceiling/fwd.c, the plain batched loop in C.
# ceiling-c-offload (label ceiling-c:offloads): bench/ceiling/fwd-offload.c, udptun's offload
# path with no JS (it links the addon's own split/send and join/write code).
# ceiling-c-wg (label ceiling-c:wireguard): bench/ceiling/fwd-wg.c, the same offload path with
# every datagram sealed and opened by udptun's own WireGuard code (the system's OpenSSL);
# no handshake: both ends get one keypair, made up here, on the command line.
scenario_ceiling_c() {
  local variant=${1:-plain}
  sc_reset
  SC_KIND=ceiling-c; SC_SPECS=$(scenario_specs ceiling-c)
  SC_DEV=ctun0
  local bin src desc native=$ROOT_DIR/src/native
  local -A extra=([a]= [b]=)
  mkdir -p "$RUN_DIR/bin"
  case $variant in
    offload)
      SC_LABEL=ceiling-c:offloads; bin="$RUN_DIR/bin/fwd-offload"
      src=("$BENCH_DIR/ceiling/fwd-offload.c" "$native"/{segment,coalesce,endpoint}.c -I "$native")
      desc="C loop with udptun's offload code (TUN TSO/USO + split + UDP GSO; UDP GRO + join), no JS" ;;
    wg)
      SC_LABEL=ceiling-c:wireguard; bin="$RUN_DIR/bin/fwd-wg"
      src=("$BENCH_DIR/ceiling/fwd-wg.c" "$native"/{segment,coalesce,endpoint,wg-keypairs,wg-seal,wg-open,wg-replay}.c
        -I "$native" -lcrypto)
      desc="C offload loop sealing and opening with udptun's WireGuard code (ChaCha20-Poly1305, OpenSSL), no JS"
      # One keypair, as a handshake would leave it: a's sending key is b's receiving key.
      local k_ab k_ba i_a i_b
      k_ab=$(hex_bytes 32); k_ba=$(hex_bytes 32)
      i_a=$((0x$(hex_bytes 4))); i_b=$((0x$(hex_bytes 4)))
      extra[a]="--keys $k_ab:$k_ba --index $i_a:$i_b -m $INNER_MTU"
      extra[b]="--keys $k_ba:$k_ab --index $i_b:$i_a -m $INNER_MTU" ;;
    *)
      SC_LABEL=ceiling-c; bin="$RUN_DIR/bin/fwd"
      src=("$BENCH_DIR/ceiling/fwd.c")
      desc="C batched TUN<->UDP loop (read..EAGAIN + sendmmsg; recvmmsg + write)" ;;
  esac
  if ! cc -O2 -Wall -o "$bin" "${src[@]}" 2>"$RUN_DIR/bin/cc.log"; then
    slog "  cc failed: $(cat "$RUN_DIR/bin/cc.log")"; return 1
  fi
  slog "== $SC_LABEL: $desc, MTU $INNER_MTU"
  tunnel_topology || return 1
  local -A pid
  local side ns
  for side in a b; do
    ns=${TUN_NS[$side]}
    # shellcheck disable=SC2086 # extra[] holds whole options
    TOPO_BG_LOG="$RUN_DIR/$SC_LABEL.$side.log" topo_bg "$ns" "$bin" -i "$SC_DEV" \
      -l "${TUN_UNDER[$side]}:51820" -p "${TUN_UNDER[${TUN_OTHER[$side]}]}:51820" ${extra[$side]}
    pid[$side]=$TOPO_LAST_PID
  done
  SC_PID_A=${pid[a]}; SC_PID_B=${pid[b]}
  for side in a b; do
    ns=${TUN_NS[$side]}
    if ! wait_dev "$ns" "$SC_DEV" 10; then
      slog "  fwd did not create $SC_DEV in $ns: $(tail -n 5 "$RUN_DIR/$SC_LABEL.$side.log")"
      finish_scenario 1; return 1
    fi
    # the queue length udptun gives the devices it creates (device.txQueueLen): the C
    # loops stand for udptun's kernel calls, so they get its device too
    tunnel_address "$side" "$SC_DEV" 99 txqueuelen "$UDPTUN_TXQUEUELEN" || { finish_scenario 1; return 1; }
  done
  check_paths || { finish_scenario 1; return 1; }
  measure_matrix
  finish_scenario $?
}

# hex_bytes N: N random bytes as hex (keys and indexes made up for one run, kept nowhere)
hex_bytes() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
