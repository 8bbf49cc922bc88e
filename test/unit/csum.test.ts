// The native checksum (src/native/csum.h) that every split segment and joined write relies
// on, checked against a plain RFC 1071 sum by a small C program, with and without the SSE2
// loop. Needs a C compiler (the addon build needs one too).
import t from "tap";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const source = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../native/csum_test.c");
const dir = mkdtempSync(path.join(tmpdir(), "udptun-csum-"));

for (const [label, flags] of [["SSE2 loop", []], ["portable loop", ["-U__SSE2__"]]] as const) {
  t.test(label, async (t) => {
    const exe = path.join(dir, label.replace(/\W/g, "-"));
    execFileSync("cc", ["-O2", "-Wall", "-Werror", ...flags, "-o", exe, source]);
    const out = execFileSync(exe, { encoding: "utf8" });
    t.match(out, /^csum ok: \d+ sums/, out.trim());
  });
}
