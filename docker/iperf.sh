#!/usr/bin/env bash
# make docker-iperf: iperf3 from behind peer-a (client in peer-a's netns) to the iperf3
# server behind peer-b (bound to 10.77.0.2), so every byte crosses the udptun tunnel.
# Arguments go to iperf3 after `-c 10.77.0.2`; default `-t 10`. Examples:
#   docker/iperf.sh                 TCP a->b, 10 s
#   docker/iperf.sh -R -t 5         TCP b->a
#   docker/iperf.sh -u -b 300M -t 5 UDP at 300 Mbit/s
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dockerd_running || die "dockerd is not running: docker/up.sh first"
[ "$(health_of peer-a)" = healthy ] && [ "$(health_of peer-b)" = healthy ] ||
  die "the stack is not up (peer-a: $(health_of peer-a), peer-b: $(health_of peer-b)): docker/up.sh first"
(($#)) || set -- -t 10
exec "$COMPOSE" --profile tools run --rm --no-deps iperf3-client --client 10.77.0.2 "$@"
