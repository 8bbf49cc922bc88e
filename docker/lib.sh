# shellcheck shell=bash
# Shared helpers for the docker/*.sh scripts. Source it; do not run it.
#
# Docker on these machines (see the project's notes): only Debian's docker.io 20.10
# client can use BuildKit, so every script calls /usr/bin/docker explicitly with
# DOCKER_BUILDKIT=1, and docker-compose 1.29 (Debian) drives the compose stack.

UDPTUN_DOCKER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
UDPTUN_REPO_DIR="$(cd "$UDPTUN_DOCKER_DIR/.." && pwd)"

# Where the debootstrap tarball, npm tarballs and dockerd state live (kept across runs).
UDPTUN_CACHE_DIR="${UDPTUN_CACHE_DIR:-/var/cache/udptun-docker}"
# Runtime state of a dockerd that these scripts started (pid, log, saved sysctl).
UDPTUN_STATE_DIR="${UDPTUN_STATE_DIR:-/run/udptun-docker}"

UDPTUN_IMAGE="${UDPTUN_IMAGE:-udptun:local}"
UDPTUN_NODE_VERSION="${UDPTUN_NODE_VERSION:-24.21.0}"
UDPTUN_NPM_VERSION="${UDPTUN_NPM_VERSION:-11.21.2}"
UDPTUN_DEBIAN_SUITE=bookworm
UDPTUN_DEBIAN_MIRROR="${UDPTUN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
UDPTUN_DEBIAN_SECURITY_MIRROR="${UDPTUN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

# Compose project name, so containers/networks are named predictably (udptun_peer-a_1 ...).
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-udptun}"
export COMPOSE_FILE="${COMPOSE_FILE:-$UDPTUN_DOCKER_DIR/docker-compose.yml}"
# Host port on 127.0.0.1 where Prometheus is published.
export UDPTUN_PROMETHEUS_PORT="${UDPTUN_PROMETHEUS_PORT:-9090}"
export DOCKER_BUILDKIT=1
# docker-compose 1.29 calls `docker` for builds only with this set; keep the Python builder
# out of it: the scripts build every image with the Debian CLI before `up`.
export COMPOSE_DOCKER_CLI_BUILD=0

DOCKER=/usr/bin/docker
COMPOSE=/usr/bin/docker-compose

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

docker_cmd() { "$DOCKER" "$@"; }
compose() { "$COMPOSE" "$@"; }

dockerd_running() { [ -x "$DOCKER" ] && "$DOCKER" info >/dev/null 2>&1; }

image_exists() { [ -x "$DOCKER" ] && "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# Poll CMD (a shell string) every INTERVAL seconds until it succeeds or TIMEOUT seconds pass.
wait_for() {
  local timeout="$1" interval="$2" what="$3"; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for: $what"
      return 1
    fi
    sleep "$interval"
  done
}

# Start dockerd in the background if none answers. Records what it changed so that
# stop_dockerd can undo exactly that (and nothing else).
start_dockerd() {
  if dockerd_running; then
    return 0
  fi
  mkdir -p "$UDPTUN_STATE_DIR"
  if [ -e /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    die "a dockerd (pid $(cat /var/run/docker.pid)) is running but does not answer"
  fi
  # dockerd sets the FORWARD policy to DROP when it finds ip_forward=0 and turns it on
  # itself; set it first so routing between namespaces elsewhere keeps working.
  local fwd
  fwd="$(sysctl -n net.ipv4.ip_forward)"
  echo "$fwd" >"$UDPTUN_STATE_DIR/ip_forward.before"
  if ! ip link show docker0 >/dev/null 2>&1; then
    touch "$UDPTUN_STATE_DIR/docker0.created"
  fi
  sysctl -q -w net.ipv4.ip_forward=1
  log "starting dockerd (log: $UDPTUN_STATE_DIR/dockerd.log)"
  rm -f "$UDPTUN_STATE_DIR/dockerd.pid"
  # setsid: its own session, so a Ctrl-C in the terminal that ran `make docker-up` does not
  # reach it; dockerd writes its own pidfile, which is the pid stop_dockerd signals.
  setsid /usr/sbin/dockerd --pidfile "$UDPTUN_STATE_DIR/dockerd.pid" \
    >"$UDPTUN_STATE_DIR/dockerd.log" 2>&1 </dev/null &
  local bg=$!
  # Up, or give up at once when the process has died.
  _dockerd_up_or_dead() { dockerd_running || ! kill -0 "$bg" 2>/dev/null; }
  if ! wait_for 60 0.2 "dockerd to answer" _dockerd_up_or_dead || ! dockerd_running; then
    tail -n 30 "$UDPTUN_STATE_DIR/dockerd.log" >&2 || true
    die "dockerd did not come up"
  fi
  cp "$UDPTUN_STATE_DIR/dockerd.pid" "$UDPTUN_STATE_DIR/dockerd.started"
  log "dockerd is up (pid $(cat "$UDPTUN_STATE_DIR/dockerd.started"))"
}

# True when the running dockerd was started by start_dockerd.
dockerd_started_by_us() {
  [ -f "$UDPTUN_STATE_DIR/dockerd.started" ] && kill -0 "$(cat "$UDPTUN_STATE_DIR/dockerd.started")" 2>/dev/null
}

# Remove the iptables rules and chains dockerd leaves behind when it exits.
remove_docker_iptables() {
  command -v iptables >/dev/null 2>&1 || return 0
  local table chain rule
  for table in filter nat; do
    for chain in FORWARD PREROUTING OUTPUT POSTROUTING; do
      iptables -t "$table" -S "$chain" 2>/dev/null | grep -E -- '-j DOCKER|docker0' |
        while read -r rule; do
          # shellcheck disable=SC2086 # the rule is iptables syntax to be re-split
          iptables -t "$table" ${rule/#-A /-D } 2>/dev/null || true
        done || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

# Stop a dockerd that start_dockerd started (never one that was already running), then
# remove what it leaves behind: docker0, its iptables chains, and restore ip_forward.
stop_dockerd() {
  if ! [ -f "$UDPTUN_STATE_DIR/dockerd.started" ]; then
    return 0
  fi
  local pid
  pid="$(cat "$UDPTUN_STATE_DIR/dockerd.started")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    if ! wait_for 30 0.2 "dockerd to exit" bash -c "! kill -0 $pid 2>/dev/null"; then
      log "dockerd did not exit on SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$UDPTUN_STATE_DIR/dockerd.started"
  if [ -f "$UDPTUN_STATE_DIR/docker0.created" ]; then
    ip link del docker0 2>/dev/null || true
    rm -f "$UDPTUN_STATE_DIR/docker0.created"
  fi
  remove_docker_iptables
  if [ -f "$UDPTUN_STATE_DIR/ip_forward.before" ]; then
    sysctl -q -w "net.ipv4.ip_forward=$(cat "$UDPTUN_STATE_DIR/ip_forward.before")" || true
    rm -f "$UDPTUN_STATE_DIR/ip_forward.before"
  fi
}
