// The parent's half of going to the background. Node cannot fork, so the parent starts the
// daemon afresh (this same entry, in a session of its own, stdin from /dev/null) and waits for
// its one readiness line (readiness.ts). wireguard-go instead creates the device and the socket
// in the parent and hands the fds over; here the daemon makes both itself, so the foreground
// and background paths are one code path and the parent never loads the addon. The contract
// wg-quick relies on is the same: exit 0 only once both exist, non-zero with the reason if not.
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { ERROR_PREFIX, READY, READY_FD_ENV } from "./readiness.ts";

/** The daemon normally answers within a second; past this something hangs, and the caller
 * (wg-quick) must not wait forever. */
const READY_TIMEOUT_MS = 30_000;

export interface DetachResult {
  code: number;
  /** Why not, when code is not 0. */
  error?: string;
}

/** Starts the daemon with `args` and resolves once it is ready or has failed. */
export function detach(args: readonly string[], keepOutput: boolean): Promise<DetachResult> {
  const out = keepOutput ? "inherit" : "ignore";
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], {
    detached: true,
    stdio: ["ignore", out, out, "pipe"],
    env: { ...process.env, [READY_FD_ENV]: "3" },
  });
  const pipe = child.stdio[3] as Readable;
  return new Promise((resolve) => {
    let text = "";
    let settled = false;
    const settle = (r: DetachResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      pipe.destroy();
      child.unref();
      resolve(r);
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      settle({ code: 1, error: `the daemon did not report within ${READY_TIMEOUT_MS / 1000} s; killed it` });
    }, READY_TIMEOUT_MS);
    pipe.setEncoding("utf8");
    pipe.on("data", (d: string) => (text += d));
    pipe.on("error", () => {});
    // The pipe closes when the daemon has spoken, or when it dies (the kernel closes its fd).
    pipe.on("close", () => {
      const line = text.split("\n")[0];
      if (line === READY) return settle({ code: 0 });
      if (line.startsWith(ERROR_PREFIX)) return settle({ code: 1, error: line.slice(ERROR_PREFIX.length) });
      const died = (): void => settle({ code: 1, error: `the daemon exited (${child.signalCode ?? `code ${child.exitCode}`}) before it was ready` });
      if (child.exitCode !== null || child.signalCode !== null) died();
      else child.once("exit", died);
    });
    child.on("error", (err) => settle({ code: 1, error: `cannot start the daemon: ${err.message}` }));
  });
}
