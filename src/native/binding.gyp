{
  "targets": [
    {
      "target_name": "udptun",
      "sources": ["udptun.c", "poll.c", "tun.c", "udp.c", "filter.c", "segment.c", "coalesce.c", "offload.c", "endpoint.c",
                  "wg-keypairs.c", "wg-replay.c", "wg-seal.c", "wg-open.c", "wg-bindings.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
