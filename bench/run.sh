#!/usr/bin/env bash
# bench/run.sh -- measure udptun and its baselines in one sitting.
#
# Two network namespaces joined by a veth pair (bench/lib/topo.sh), iperf3
# client in A and server in B, both directions, TCP and UDP at several offered
# rates. Scenarios:
#   veth          direct over the veth, MTU 1420, TSO/GSO/GRO off (packet-level limit)
#   vxlan         the kernel's own UDP tunnel over the veth, inner MTU 1420 (no user space)
#   wireguard-go  Debian bookworm's wireguard-go 0.0.20220316 in each namespace (encrypts)
#   wireguard-go-2023  Debian trixie's 0.0.20231211 (UDP GSO/GRO, TUN offloads), fetched
#                 into .deps/trixie by scripts/fetch-wireguard-trixie.sh
#   ceiling-c     bench/ceiling/fwd.c: udptun's plain batched loop in C, no JS
#   ceiling-c-offload  bench/ceiling/fwd-offload.c: udptun's offload path (the addon's
#                 own split/send and join/write code) in a C loop, no JS
#   ceiling-c-wg  bench/ceiling/fwd-wg.c: the same loop sealing and opening WireGuard data
#                 messages with the addon's own code (the encrypted ceiling)
#   udptun        the project's forwarder (dist/src/cli.js), once per --udptun-variant:
#                 its default transport (WireGuard) as "udptun", "transport": "plain" as
#                 "udptun:plain"
#   veth-tso      (not in the default set) veth at MTU 1500 with offloads on
#
# Prints progress on stderr and a table on stdout; writes
# bench/results/latest.{json,svg,txt} and keeps the raw iperf3 JSON under
# bench/results/runs/<stamp>/. Needs root, iproute2, iperf3, ethtool, curl,
# iputils-ping, wireguard-go + wireguard-tools, a C compiler, OpenSSL 3's headers
# (libssl-dev), trixie's wireguard-go (--install-deps).
set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/.." && pwd)

usage() {
  cat <<'EOF'
usage: bench/run.sh [options]
  --only LIST            scenarios, comma-separated (default: veth,vxlan,wireguard-go,
                         wireguard-go-2023,ceiling-c,ceiling-c-offload,ceiling-c-wg,udptun)
                         available: veth veth-tso vxlan wireguard-go wireguard-go-2023
                         ceiling-c ceiling-c-offload ceiling-c-wg udptun
  --runs N               runs per test (default 3)
  --time S               iperf3 -t seconds (default 5)
  --udp-rates LIST       UDP offered rates, 0 = flood (default 500M,1G,2G,4G,0)
  --udp-window SIZE      iperf3 -w for UDP tests, every scenario alike (default 2M; the
                         kernel doubles it, to rmem_max's 4 MiB here). "default" leaves
                         iperf3's own (212992 bytes here, net.core.rmem_default): too small
                         for a tunnel that hands datagrams over in bursts (see README)
  --tests LIST           restrict to test kinds: tcp4,tcp6,udp4
  --tcp-cc LIST          TCP congestion controls, each TCP test once per entry (set as
                         both namespaces' net.ipv4.tcp_congestion_control);
                         "default" is this machine's net.ipv4.tcp_congestion_control
                         (default: default,cubic -- BBR paces, and on these machines the
                         choice moves every TCP figure by 1.5-2x; see README). One the
                         host refuses inside a namespace is skipped, and the report says so
  --dirs LIST            fwd (A->B), rev (B->A, iperf3 -R); default fwd,rev
  --full                 also tcp6 on veth / vxlan / ceiling-c
  --udptun-config JSON   config fragment deep-merged into both udptun configs
  --udptun-variant NAME=JSON
                         run udptun once per variant (repeatable), as row
                         "udptun:NAME" with JSON merged into the config; e.g.
                         --udptun-variant off='{}' --udptun-variant gso='{"x":1}'
                         (default: every offload on as "udptun" with udptun's default
                         transport, "plain" with "transport": "plain", then each
                         offload off in turn, then all off: the optimisations on and off)
  --underlay-offloads default|off
                         veth offloads under the tunnels (default: kernel default)
  --pin-iperf C,S        pin the iperf3 client to CPU C and the server to CPU S
                         (iperf3 -A); forwarders stay unpinned. Default: unpinned
  --iperf-args "ARGS"    extra iperf3 client arguments (e.g. "-w 4M")
  --wait-quiet S         before starting, wait up to S seconds for the machine to be
                         quiet (other processes < 5% of the CPU); default 0 = only warn
  --retry-noisy N        re-measure a run up to N times when other processes used more
                         than 5% of the machine during it, after waiting (bounded) for
                         a quiet machine; default 2 (0 = keep noisy runs, flagged)
  --quiet-wait S         longest wait for a quiet machine before a retry (default 60)
  --retry-budget S       at most S seconds spent on retries (waits + repeated runs) in
                         the whole bench run (default 600); then noisy runs are kept
  --prefix P             namespace prefix (default ubench): P-a, P-b
  --out DIR              results directory (default bench/results)
  --report DIR           only rebuild table/JSON/SVG from a raw run directory
  --cleanup              remove namespaces left by a killed run with --prefix, then exit
  --install-deps         apt-get install the tools this needs, fetch trixie's
                         wireguard-go (scripts/fetch-wireguard-trixie.sh), then continue
  --dry-run              print the plan and exit
EOF
}

ONLY=veth,vxlan,wireguard-go,wireguard-go-2023,ceiling-c,ceiling-c-offload,ceiling-c-wg,udptun
RUNS=3
TIME=5
UDP_RATES="500M 1G 2G 4G 0"
UDP_WINDOW=2M
TESTS_FILTER=
TCP_CC_LIST=default,cubic
DIRS="fwd rev"
FULL=0
PREFIX=ubench
OUT_DIR="$BENCH_DIR/results"
UNDERLAY_OFFLOADS=default
UDPTUN_BASE_FRAGMENT='{}'
UDPTUN_VARIANTS=()
REPORT_ONLY=
PIN_IPERF=
WAIT_QUIET=0
RETRY_NOISY=2
QUIET_WAIT=60
RETRY_BUDGET=600
IPERF_EXTRA=
CLEANUP_ONLY=0
INSTALL_DEPS=0
DRY_RUN=0

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --only) need_arg "$@"; ONLY=$2; shift 2 ;;
    --runs) need_arg "$@"; RUNS=$2; shift 2 ;;
    --time) need_arg "$@"; TIME=$2; shift 2 ;;
    --udp-rates) need_arg "$@"; UDP_RATES=${2//,/ }; shift 2 ;;
    --udp-window) need_arg "$@"; UDP_WINDOW=$2; shift 2 ;;
    --tests) need_arg "$@"; TESTS_FILTER=$2; shift 2 ;;
    --tcp-cc) need_arg "$@"; TCP_CC_LIST=$2; shift 2 ;;
    --dirs) need_arg "$@"; DIRS=${2//,/ }; shift 2 ;;
    --full) FULL=1; shift ;;
    --udptun-config) need_arg "$@"; UDPTUN_BASE_FRAGMENT=$2; shift 2 ;;
    --udptun-variant) need_arg "$@"; UDPTUN_VARIANTS+=("$2"); shift 2 ;;
    --underlay-offloads) need_arg "$@"; UNDERLAY_OFFLOADS=$2; shift 2 ;;
    --pin-iperf) need_arg "$@"; PIN_IPERF=$2; shift 2 ;;
    --iperf-args) need_arg "$@"; IPERF_EXTRA=$2; shift 2 ;;
    --wait-quiet) need_arg "$@"; WAIT_QUIET=$2; shift 2 ;;
    --retry-noisy) need_arg "$@"; RETRY_NOISY=$2; shift 2 ;;
    --quiet-wait) need_arg "$@"; QUIET_WAIT=$2; shift 2 ;;
    --retry-budget) need_arg "$@"; RETRY_BUDGET=$2; shift 2 ;;
    --prefix) need_arg "$@"; PREFIX=$2; shift 2 ;;
    --out) need_arg "$@"; OUT_DIR=$2; shift 2 ;;
    --report) need_arg "$@"; REPORT_ONLY=$2; shift 2 ;;
    --cleanup) CLEANUP_ONLY=1; shift ;;
    --install-deps) INSTALL_DEPS=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $TIME =~ ^[1-9][0-9]*$ ]] || die "--time must be a positive integer (seconds)"
[[ $PREFIX =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "--prefix: 1-10 chars [a-z0-9], starting with a letter"
# TCP congestion controls: names, "default" resolved, each once, each one the kernel has
TCP_CC=()
avail_cc=$(cat /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null)
IFS=, read -r -a want_cc <<<"$TCP_CC_LIST"
for cc in "${want_cc[@]}"; do
  [[ $cc == default ]] && cc=$(sysctl -n net.ipv4.tcp_congestion_control)
  [[ $cc =~ ^[a-z0-9_]+$ ]] || die "--tcp-cc: bad name $cc"
  [[ " ${TCP_CC[*]} " == *" $cc "* ]] && continue
  if [[ " $avail_cc " != *" $cc "* ]]; then
    modprobe "tcp_$cc" 2>/dev/null
    avail_cc=$(cat /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null)
    [[ " $avail_cc " == *" $cc "* ]] || die "--tcp-cc: $cc is not available (have: $avail_cc)"
  fi
  TCP_CC+=("$cc")
done
[[ ${#TCP_CC[@]} -gt 0 ]] || die "--tcp-cc: empty list"
[[ $UDP_WINDOW == default || $UDP_WINDOW =~ ^[0-9]+[KMG]?$ ]] || die "--udp-window: a size such as 2M, or default"
for r in $UDP_RATES; do [[ $r =~ ^[0-9.]+[kKmMgG]?$ ]] || die "bad UDP rate $r"; done
for d in $DIRS; do [[ $d == fwd || $d == rev ]] || die "bad direction $d"; done
[[ $WAIT_QUIET =~ ^[0-9]+$ ]] || die "--wait-quiet wants seconds"
[[ $RETRY_NOISY =~ ^[0-9]+$ ]] || die "--retry-noisy wants a count"
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || die "--quiet-wait wants seconds"
[[ $RETRY_BUDGET =~ ^[0-9]+$ ]] || die "--retry-budget wants seconds"
[[ -z $PIN_IPERF || $PIN_IPERF =~ ^[0-9]+,[0-9]+$ ]] || die "--pin-iperf wants C,S (CPU numbers)"
case $UNDERLAY_OFFLOADS in default | off) ;; *) die "--underlay-offloads: default or off" ;; esac

# Node: the repo's pinned Node 24 (node_modules/.bin/node) when installed, else PATH
if [[ -x $ROOT_DIR/node_modules/.bin/node ]]; then NODE=$ROOT_DIR/node_modules/.bin/node; else NODE=$(command -v node || true); fi
[[ -n $NODE ]] || die "node not found (run npm ci in $ROOT_DIR)"
UDPTUN_NODE=$NODE

if [[ -n $REPORT_ONLY ]]; then
  [[ -f $REPORT_ONLY/records.ndjson ]] || die "$REPORT_ONLY/records.ndjson not found"
  mkdir -p "$OUT_DIR"
  exec "$NODE" "$BENCH_DIR/lib/report.mjs" --report "$REPORT_ONLY" --json "$OUT_DIR/latest.json" \
    --svg "$OUT_DIR/latest.svg" --text "$OUT_DIR/latest.txt"
fi

[[ $(id -u) == 0 ]] || die "must run as root (network namespaces, TUN devices)"

# shellcheck source=lib/topo.sh
source "$BENCH_DIR/lib/topo.sh"
# shellcheck source=lib/measure.sh
source "$BENCH_DIR/lib/measure.sh"
# shellcheck source=lib/scenarios.sh
source "$BENCH_DIR/lib/scenarios.sh"
# shellcheck source=lib/tcp-cc.sh
source "$BENCH_DIR/lib/tcp-cc.sh"

if ((CLEANUP_ONLY)); then
  topo_destroy "$PREFIX"
  echo "removed namespaces $PREFIX-a / $PREFIX-b (if they existed)" >&2
  exit 0
fi

# ------------------------------------------------------------ scenarios
IFS=, read -r -a SCEN <<<"$ONLY"
for s in "${SCEN[@]}"; do
  case $s in veth | veth-tso | vxlan | wireguard-go | wireguard-go-2023 | ceiling-c | ceiling-c-offload | ceiling-c-wg | udptun) ;; *) die "unknown scenario $s" ;; esac
done
has_scen() { [[ ",$ONLY," == *",$1,"* ]]; }

# udptun variants: NAME=JSON; default one variant "udptun" with the base fragment
UDPTUN_LABELS=()
UDPTUN_FRAGS=()
if [[ ${#UDPTUN_VARIANTS[@]} -eq 0 ]]; then
  # The default transport (WireGuard) and plain; the optimisations on and off: all on,
  # each offload off in turn, all off.
  UDPTUN_LABELS=(udptun); UDPTUN_FRAGS=("$UDPTUN_BASE_FRAGMENT")
  UDPTUN_VARIANTS=(
    'plain={"transport":"plain"}'
    'no-coalesce={"offloads":{"coalesce":false}}'
    'no-gso-gro={"offloads":{"udpGso":false,"udpGro":false}}'
    'no-tun-offload={"offloads":{"tun":false}}'
    'no-offloads={"offloads":{"udpGso":false,"udpGro":false,"tun":false,"coalesce":false}}'
  )
fi
if [[ ${#UDPTUN_VARIANTS[@]} -gt 0 ]]; then
  for v in "${UDPTUN_VARIANTS[@]}"; do
    name=${v%%=*}; frag=${v#*=}
    [[ $v == *=* && $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "--udptun-variant wants NAME=JSON (NAME: [A-Za-z0-9_.-])"
    merged=$("$NODE" -e '
      const m=(d,s)=>{for(const[k,v]of Object.entries(s)){if(v&&typeof v==="object"&&!Array.isArray(v)&&d[k]&&typeof d[k]==="object"&&!Array.isArray(d[k]))m(d[k],v);else d[k]=v}return d};
      console.log(JSON.stringify(m(JSON.parse(process.argv[1]),JSON.parse(process.argv[2]))))' \
      "$UDPTUN_BASE_FRAGMENT" "$frag") || die "variant $name: fragment is not valid JSON: $frag"
    UDPTUN_LABELS+=("udptun:$name"); UDPTUN_FRAGS+=("$merged")
  done
fi

# ------------------------------------------------------------ dependencies
if ((INSTALL_DEPS)); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    iperf3 ethtool iputils-ping curl iproute2 util-linux wireguard-go wireguard-tools gcc libc6-dev libssl-dev >/dev/null ||
    die "apt-get install failed"
  "$ROOT_DIR/scripts/fetch-wireguard-trixie.sh" >&2 || die "could not fetch trixie's wireguard-go"
fi
missing=()
for c in ip iperf3 ethtool ping timeout nsenter; do command -v "$c" >/dev/null || missing+=("$c"); done
has_scen wireguard-go && for c in "$WG_BOOKWORM_GO" "$WG_BOOKWORM"; do [[ -n $c && -x $c ]] || missing+=("${c:-wireguard-go/wg}"); done
if has_scen wireguard-go-2023; then
  for c in "$WG_TRIXIE_GO" "$WG_TRIXIE"; do
    [[ -n $c && -x $c ]] || die "wireguard-go-2023: ${c:-the trixie wireguard-go} missing (run scripts/fetch-wireguard-trixie.sh, or use --install-deps)"
  done
fi
{ has_scen ceiling-c || has_scen ceiling-c-offload || has_scen ceiling-c-wg; } && { command -v cc >/dev/null || missing+=(cc); }
# the encrypted C loop links the system's OpenSSL 3 (its headers: libssl-dev)
has_scen ceiling-c-wg && { [[ -f /usr/include/openssl/evp.h ]] || missing+=("OpenSSL headers (libssl-dev)"); }
has_scen udptun && { command -v curl >/dev/null || missing+=(curl); }
if [[ ${#missing[@]} -gt 0 ]]; then
  die "missing tools: ${missing[*]} (apt-get install iperf3 ethtool iputils-ping curl wireguard-go wireguard-tools gcc libssl-dev, or use --install-deps)"
fi
[[ -c /dev/net/tun ]] || die "/dev/net/tun missing"

# Congestion controls a namespace may not use here are dropped, said once, and the report
# names them with the kernel's reason (rather than every tcp+CC test failing on its own).
TCP_CC_SKIPPED=
if [[ -z $TESTS_FILTER || ",$TESTS_FILTER," == *,tcp* ]]; then
  keep_cc=()
  for cc in "${TCP_CC[@]}"; do
    reason=$(tcp_cc_refusal "$PREFIX" "$cc") || die "$reason"
    if [[ -n $reason ]]; then
      echo "bench: net.ipv4.tcp_congestion_control=$cc cannot be set inside a network namespace on this host: $reason; the tcp+$cc tests are skipped" >&2
      TCP_CC_SKIPPED+="$cc"$'\t'"$reason"$'\n'
    else
      keep_cc+=("$cc")
    fi
  done
  TCP_CC=("${keep_cc[@]}")
  [[ ${#TCP_CC[@]} -gt 0 ]] || echo "bench: no congestion control of --tcp-cc $TCP_CC_LIST can be used here: no TCP tests" >&2
fi

# udptun: build when dist is missing or older than src
if has_scen udptun; then
  cli=$ROOT_DIR/dist/src/cli.js
  if [[ -d $ROOT_DIR/src ]] && { [[ ! -f $cli ]] || [[ -n $(find "$ROOT_DIR/src" -newer "$cli" -name '*.ts' -print -quit 2>/dev/null) ]]; }; then
    if ((DRY_RUN)); then
      echo "would build udptun (npm run build)" >&2
    else
      echo "building udptun: npm run build" >&2
      (cd "$ROOT_DIR" && npm run build >&2) || echo "bench: npm run build failed; udptun scenario will fail" >&2
    fi
  fi
fi

# ------------------------------------------------------------ plan
PROGRESS_DONE=0
PROGRESS_TOTAL=0
plan=()
n_dirs=$(wc -w <<<"$DIRS")
for s in "${SCEN[@]}"; do
  kinds=("$s")
  [[ $s == ceiling-c-offload || $s == ceiling-c-wg ]] && kinds=(ceiling-c)
  [[ $s == wireguard-go-2023 ]] && kinds=(wireguard-go)
  [[ $s == udptun ]] && { kinds=(); for l in "${UDPTUN_LABELS[@]}"; do kinds+=("$(udptun_spec_kind "$l")"); done; }
  for kind in $(printf '%s\n' "${kinds[@]}" | sort -u); do
    reps=$(printf '%s\n' "${kinds[@]}" | grep -cx "$kind")
    n_specs=$(wc -w <<<"$(scenario_specs "$kind")")
    PROGRESS_TOTAL=$((PROGRESS_TOTAL + n_specs * n_dirs * RUNS * reps))
    plan+=("$s: $(scenario_specs "$kind" | sed 's/@0/@flood/g') x {$DIRS} x $RUNS runs$([[ $reps -gt 1 ]] && echo " x $reps variants")")
  done
done
est=$(((PROGRESS_TOTAL * (TIME * 10 + 4) + 599) / 600))
{
  echo "bench plan: $PROGRESS_TOTAL iperf3 tests of ${TIME}s, about $est min (prefix $PREFIX)"
  for p in "${plan[@]}"; do echo "  $p"; done
  if has_scen udptun; then
    for i in "${!UDPTUN_LABELS[@]}"; do echo "  ${UDPTUN_LABELS[$i]}: fragment ${UDPTUN_FRAGS[$i]}"; done
  fi
} >&2
((DRY_RUN)) && exit 0

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$OUT_DIR/runs/$STAMP-$PREFIX"
mkdir -p "$RUN_DIR/iperf" || die "cannot create $RUN_DIR"
: >"$RUN_DIR/records.ndjson"
variant_args=()
for i in "${!UDPTUN_LABELS[@]}"; do variant_args+=("${UDPTUN_LABELS[$i]}" "${UDPTUN_FRAGS[$i]}"); done
has_scen udptun || variant_args=()
WG_PATHS="$WG_BOOKWORM_GO"$'\n'"$WG_BOOKWORM"$'\n'"$WG_TRIXIE_GO"$'\n'"$WG_TRIXIE" TCP_CC_SKIPPED=$TCP_CC_SKIPPED \
MACHINE_CC=$(sysctl -n net.ipv4.tcp_congestion_control) RETRY_NOISY=$RETRY_NOISY QUIET_WAIT=$QUIET_WAIT RETRY_BUDGET=$RETRY_BUDGET \
UDPTUN_CONFIG_MJS=$BENCH_DIR/lib/udptun-config.mjs "$UDPTUN_NODE" --input-type=module -e '
  const { transportOf, ceilingOf } = await import(process.env.UDPTUN_CONFIG_MJS);
  const [started, runs, time, rates, window, tcpcc, dirs, prefix, only, underlay, full, pin, extra, unode, ...v] = process.argv.slice(1);
  const variants = [];
  for (let i = 0; i < v.length; i += 2) {
    const fragment = JSON.parse(v[i + 1]);
    variants.push({ label: v[i], fragment, transport: await transportOf(fragment), ceiling: await ceilingOf(fragment) });
  }
  // Each udptun row against the C loop that makes its kernel calls: x_ceiling_c for plain
  // rows (ceiling-c:offloads, ceiling-c), x_ceiling_wg for WireGuard rows (ceiling-c:wireguard).
  const against = (wg) => Object.fromEntries(variants.filter((x) => x.ceiling && (x.transport === "wireguard") === wg).map((x) => [x.label, x.ceiling]));
  const comparisons = { x_wireguard_go_2023: "wireguard-go-2023", x_ceiling_c: against(false), x_ceiling_wg: against(true) };
  const meta = { started, runs: +runs, time: +time, udp_rates: rates.split(" "), udp_window: window, tcp_cc: tcpcc.split(" ").filter(Boolean),
    tcp_cc_machine_default: process.env.MACHINE_CC,
    tcp_cc_skipped: process.env.TCP_CC_SKIPPED.split("\n").filter(Boolean).map((l) => ({ cc: l.split("\t")[0], reason: l.split("\t")[1] })),
    dirs: dirs.split(" "),
    prefix, scenarios: only.split(","), underlay_offloads: underlay, full: full === "1",
    pin_iperf: pin || null, iperf_extra_args: extra || null,
    retry_noisy: +process.env.RETRY_NOISY, quiet_wait_s: +process.env.QUIET_WAIT,
    retry_budget_s: +process.env.RETRY_BUDGET,
    topology: { underlay_a: "198.18.0.1/24 fd18::1/64", underlay_b: "198.18.0.2/24 fd18::2/64",
      veth_scenario: "veth MTU 1420, TSO/GSO/GRO off",
      tunnel_underlay: "veth MTU 1500, offloads " + underlay, inner_mtu: 1420 },
    udptun_node: unode, udptun_node_version: process.version, udptun_variants: variants, comparisons };
  const [wgGo, wg, wgGo23, wg23] = process.env.WG_PATHS.split("\n");
  meta.wireguard_go = { "wireguard-go": { binary: wgGo || null, wg: wg || null }, "wireguard-go-2023": { binary: wgGo23 || null, wg: wg23 || null } };
  console.log(JSON.stringify(meta, null, 2));' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$RUNS" "$TIME" "$UDP_RATES" "$UDP_WINDOW" "${TCP_CC[*]}" "$DIRS" "$PREFIX" "$ONLY" "$UNDERLAY_OFFLOADS" \
  "$FULL" "$PIN_IPERF" "$IPERF_EXTRA" "$UDPTUN_NODE" "${variant_args[@]}" >"$RUN_DIR/meta.json" || die "cannot write meta.json"

# is anything else using the machine? (results on a shared 2-core box are only
# meaningful when it is quiet; every test also records this, see "other%")
quiet_deadline=$((SECONDS + WAIT_QUIET))
while :; do
  read -r fp ftop <<<"$(foreign_pct 2)"
  if ((fp < NOISY_PCT)); then
    echo "machine quiet: ${fp}% of the CPU used by other processes" >&2
    break
  fi
  if ((SECONDS >= quiet_deadline)); then
    echo "WARNING: ${fp}% of the CPU is used by other processes ($ftop): results will be disturbed" >&2
    break
  fi
  echo "waiting for a quiet machine: ${fp}% used by other processes ($ftop)" >&2
  sleep 5
done

topo_install_trap '[[ -n ${SC_KEYDIR:-} ]] && rm -rf -- "$SC_KEYDIR"'
SECONDS=0
failed=()
for s in "${SCEN[@]}"; do
  case $s in
    veth) scenario_veth || failed+=(veth) ;;
    veth-tso) scenario_veth_tso || failed+=(veth-tso) ;;
    vxlan) scenario_vxlan || failed+=(vxlan) ;;
    wireguard-go) scenario_wireguard_go wireguard-go "$WG_BOOKWORM_GO" "$WG_BOOKWORM" || failed+=(wireguard-go) ;;
    wireguard-go-2023) scenario_wireguard_go wireguard-go-2023 "$WG_TRIXIE_GO" "$WG_TRIXIE" || failed+=(wireguard-go-2023) ;;
    ceiling-c) scenario_ceiling_c || failed+=(ceiling-c) ;;
    ceiling-c-offload) scenario_ceiling_c offload || failed+=(ceiling-c:offloads) ;;
    ceiling-c-wg) scenario_ceiling_c wg || failed+=(ceiling-c:wireguard) ;;
    udptun)
      for i in "${!UDPTUN_LABELS[@]}"; do
        scenario_udptun "${UDPTUN_LABELS[$i]}" "${UDPTUN_FRAGS[$i]}" || failed+=("${UDPTUN_LABELS[$i]}")
      done ;;
  esac
done
echo "bench: measured in ${SECONDS}s; raw results in $RUN_DIR" >&2
if [[ -s $RUN_DIR/records.noisy.ndjson ]]; then
  echo "bench: $(wc -l <"$RUN_DIR/records.noisy.ndjson") noisy run(s) were measured again (records.noisy.ndjson)" >&2
fi
[[ ${#failed[@]} -gt 0 ]] && echo "bench: scenarios with failures: ${failed[*]}" >&2

"$NODE" "$BENCH_DIR/lib/report.mjs" --report "$RUN_DIR" --json "$RUN_DIR/results.json" \
  --svg "$RUN_DIR/results.svg" --text "$RUN_DIR/results.txt"
cp "$RUN_DIR/results.json" "$OUT_DIR/latest.json"
[[ -f $RUN_DIR/results.svg ]] && cp "$RUN_DIR/results.svg" "$OUT_DIR/latest.svg"
cp "$RUN_DIR/results.txt" "$OUT_DIR/latest.txt"
echo "bench: wrote $OUT_DIR/latest.json, latest.svg, latest.txt" >&2
[[ ${#failed[@]} -eq 0 ]]
