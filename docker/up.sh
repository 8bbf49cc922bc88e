#!/usr/bin/env bash
# make docker-up: base images, the udptun image, the peers' WireGuard keys (docker/keys/, made
# if missing), then the compose stack (two peers, iperf3 server behind peer-b, Prometheus on
# 127.0.0.1:9090). Leaves it running; docker/down.sh stops it.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

"$UDPTUN_DOCKER_DIR/build.sh"
stack_up
compose ps
cat <<MSG
udptun stack is up:
  tunnel      peer-a 10.77.0.1 <-> peer-b 10.77.0.2 (udptun0, MTU 1420), WireGuard over 172.30.77.0/24
  keys        docker/keys/peer-a, docker/keys/peer-b (made at set-up; rm -rf docker/keys for new ones)
  iperf3      docker/iperf.sh            (TCP, 10 s; extra args go to iperf3, e.g. -u -b 500M)
  Prometheus  http://127.0.0.1:$UDPTUN_PROMETHEUS_PORT  (e.g. udptun_packets_total)
  logs        docker-compose -f docker/docker-compose.yml -p $COMPOSE_PROJECT_NAME logs -f peer-a peer-b
  tear down   docker/down.sh             (add --stop-daemon to stop a dockerd these scripts started)
MSG
