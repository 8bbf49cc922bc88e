// The WireGuard anti-replay window (src/native/wg-replay.c) and the send counter's limit
// (src/native/wg-protocol.h), driven by a small C program: wireguard-go's replay cases
// ported as data, then the window's edges. Needs a C compiler (the addon build needs one too).
import t from "tap";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dir = mkdtempSync(path.join(tmpdir(), "udptun-wg-replay-"));

t.test("replay window and send counter", async (t) => {
  const exe = path.join(dir, "wg_replay_test");
  execFileSync("cc", [
    "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11", "-o", exe,
    path.join(root, "test/native/wg_replay_test.c"), path.join(root, "src/native/wg-replay.c"),
  ]);
  const out = execFileSync(exe, { encoding: "utf8" });
  t.match(out, /^wg replay ok: \d+ checks/, out.trim());
});
