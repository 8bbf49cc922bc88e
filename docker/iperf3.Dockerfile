# iperf3 (Debian's package, 3.12) with iproute2 for looking at routes, on the locally
# imported debian:bookworm-slim. Built by docker/prepare-base.sh.
FROM debian:bookworm-slim
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends iperf3 iproute2; \
    rm -rf /var/lib/apt/lists/*
LABEL org.opencontainers.image.title="iperf3 (Debian package, for udptun's compose stack)"
ENTRYPOINT ["iperf3"]
