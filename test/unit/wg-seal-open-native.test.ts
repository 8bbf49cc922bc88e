// WireGuard sealing and opening in plain C (test/native/wg_seal_open_test.c) against the
// system's OpenSSL 3, which bench/ceiling/fwd-wg.c links: the same sources the addon
// runs on Node's OpenSSL must give the documented EVP path's bytes there too. Needs a C
// compiler and OpenSSL's headers (libssl-dev), as the encrypted C loop does.
import t from "tap";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { assertCases } from "./lib/native-program.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

t.test("seal and open with the system's OpenSSL: the reference's bytes, opened back", async (t) => {
  const exe = path.join(mkdtempSync(path.join(tmpdir(), "udptun-wg-seal-open-")), "wg_seal_open_test");
  const sources = ["wg-keypairs.c", "wg-replay.c", "wg-seal.c", "wg-open.c"].map((f) => path.join(root, "src/native", f));
  execFileSync("cc", [
    "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-std=gnu11", "-o", exe,
    path.join(root, "test/native/wg_seal_open_test.c"), ...sources, "-lcrypto",
  ]);
  assertCases(t, exe);
});
