# Prometheus from Debian's package (2.42), on the locally imported debian:bookworm-slim
# (no registry is reachable here to pull prom/prometheus). Built by docker/prepare-base.sh.
FROM debian:bookworm-slim
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends prometheus; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /prometheus; \
    chown prometheus:prometheus /prometheus
LABEL org.opencontainers.image.title="prometheus (Debian package, for udptun's compose stack)"
USER prometheus
WORKDIR /prometheus
EXPOSE 9090
VOLUME ["/prometheus"]
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", \
     "--web.listen-address=0.0.0.0:9090"]
