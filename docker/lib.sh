# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source it
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

UDPTUN_IMAGE="${UDPTUN_IMAGE:-udptun:latest}"
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
  # (Kept from an earlier start that failed half-way: that one saw the original state.)
  if ! [ -f "$UDPTUN_STATE_DIR/ip_forward.before" ]; then
    sysctl -n net.ipv4.ip_forward >"$UDPTUN_STATE_DIR/ip_forward.before"
  fi
  if ! ip link show docker0 >/dev/null 2>&1; then
    touch "$UDPTUN_STATE_DIR/docker0.created"
  fi
  sysctl -q -w net.ipv4.ip_forward=1
  log "starting dockerd (log: $UDPTUN_STATE_DIR/dockerd.log)"
  rm -f "$UDPTUN_STATE_DIR/dockerd.pid"
  # setsid: its own session, so a Ctrl-C in the terminal that ran `make docker-up` does not
  # reach it; dockerd writes its own pidfile, which is the pid stop_dockerd signals.
  setsid /usr/sbin/dockerd --pidfile "$UDPTUN_STATE_DIR/dockerd.pid" \
    >"$UDPTUN_STATE_DIR/dockerd.log" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
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

# Build the udptun runtime image from the repo's Dockerfile (BuildKit, layer cache kept).
build_app_image() {
  local version revision created
  version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$UDPTUN_REPO_DIR/package.json" | head -n1)"
  revision="$(git -C "$UDPTUN_REPO_DIR" rev-parse HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git -C "$UDPTUN_REPO_DIR" status --porcelain 2>/dev/null | head -n1)" ]; then
    revision="$revision-dirty"
  fi
  # The commit's date, not now: an unchanged tree rebuilds to the same image.
  created="$(git -C "$UDPTUN_REPO_DIR" log -1 --format=%cI 2>/dev/null || echo unknown)"
  log "building $UDPTUN_IMAGE from $UDPTUN_REPO_DIR/Dockerfile"
  local out
  out="$(mktemp)"
  if ! docker_cmd build --progress=plain -t "$UDPTUN_IMAGE" \
      --build-arg "VERSION=${version:-0.0.0}" --build-arg "REVISION=$revision" \
      --build-arg "CREATED=$created" "$UDPTUN_REPO_DIR" >"$out" 2>&1; then
    tail -n 40 "$out" >&2
    rm -f "$out"
    return 1
  fi
  rm -f "$out"
}

# The peers' WireGuard keys and configs, made at set-up (keys by `udptun genkey|pubkey|genpsk`
# inside the image; kept if present) into $UDPTUN_KEYS_DIR (git-ignored): peer-X/ holds
# config.json (docker/peer-X.json with the other peer's public key), private.key and
# preshared.key, 0600 in a 0700 folder, mounted read-only at /etc/udptun in peer-X only.
UDPTUN_KEYS_DIR="$UDPTUN_DOCKER_DIR/keys"
make_peer_keys() {
  log "WireGuard keys and configs for peer-a and peer-b in $UDPTUN_KEYS_DIR"
  UDPTUN="$DOCKER run --rm -i --network none $UDPTUN_IMAGE" "$UDPTUN_REPO_DIR/scripts/make-keys.sh" \
    --out "$UDPTUN_KEYS_DIR" "$UDPTUN_DOCKER_DIR/peer-a.json" "$UDPTUN_DOCKER_DIR/peer-b.json" >/dev/null
}

container_of() { compose ps -q "$1" 2>/dev/null; }

health_of() {
  local id
  id="$(container_of "$1")"
  [ -n "$id" ] || { echo missing; return; }
  docker_cmd inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing
}

peers_healthy() { [ "$(health_of peer-a)" = healthy ] && [ "$(health_of peer-b)" = healthy ]; }

iperf3_server_listening() {
  local id
  id="$(container_of iperf3-server)"
  [ -n "$id" ] && [ "$(docker_cmd inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ] &&
    docker_cmd logs "$id" 2>&1 | grep -q 'Server listening'
}

# Bring the stack up (peers, iperf3 server, Prometheus) and wait until peers are healthy and
# the iperf3 server listens.
stack_up() {
  make_peer_keys || return 1
  log "docker-compose up -d"
  compose up -d --no-build >/dev/null
  if ! wait_for "${UDPTUN_WAIT_TIMEOUT:-90}" 0.5 "peer-a and peer-b healthy" peers_healthy; then
    log "peer-a: $(health_of peer-a), peer-b: $(health_of peer-b)"
    compose logs --tail=30 peer-a peer-b >&2 || true
    return 1
  fi
  log "peer-a and peer-b are healthy"
  if ! wait_for 30 0.5 "iperf3 server listening on 10.77.0.2" iperf3_server_listening; then
    compose logs --tail=30 iperf3-server >&2 || true
    return 1
  fi
}

# Prometheus HTTP API instant query; prints the JSON answer.
prom_query() {
  curl -fsS --max-time 5 "http://127.0.0.1:$UDPTUN_PROMETHEUS_PORT/api/v1/query" \
    --data-urlencode "query=$1"
}

# The number of series an instant query returns (0 when Prometheus does not answer).
prom_count() {
  prom_query "$1" 2>/dev/null | jq -r 'if .status == "success" then (.data.result | length) else 0 end' 2>/dev/null || echo 0
}

# The first series' value of an instant query ("0" when there is none or Prometheus does not answer).
prom_value() {
  prom_query "$1" 2>/dev/null | jq -r '.data.result[0].value[1] // "0"' 2>/dev/null || echo 0
}

# Compose down: containers, networks, volumes (images are kept as cache).
stack_down() {
  log "docker-compose down -v"
  compose --profile tools down -v --remove-orphans --timeout 10 >/dev/null 2>&1 ||
    compose down -v --remove-orphans --timeout 10 >/dev/null 2>&1 || true
}
