#!/usr/bin/env bash
# make docker-build: local base images (docker/prepare-base.sh), then the udptun runtime
# image from the top-level Dockerfile with BuildKit (Debian's docker 20.10 client).
# The tag is $UDPTUN_IMAGE (default udptun:latest).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

"$UDPTUN_DOCKER_DIR/prepare-base.sh"
build_app_image
size="$(docker_cmd image inspect -f '{{.Size}}' "$UDPTUN_IMAGE")"
log "$UDPTUN_IMAGE: $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }')"
