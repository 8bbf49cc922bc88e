{
  "targets": [
    {
      "target_name": "seal_open",
      "sources": ["seal-open.c", "../../src/native/wg-keypairs.c", "../../src/native/wg-replay.c",
                  "../../src/native/wg-seal.c", "../../src/native/wg-open.c"],
      "include_dirs": ["../../src/native"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
