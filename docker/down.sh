#!/usr/bin/env bash
# make docker-down: remove the compose stack's containers, network and volume (images stay
# as build cache). With --stop-daemon, also stop a dockerd that docker/prepare-base.sh
# started, and remove what it leaves behind (docker0, its iptables chains).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

if dockerd_running; then
  stack_down
fi
if [ "${1:-}" = --stop-daemon ]; then
  stop_dockerd
fi
