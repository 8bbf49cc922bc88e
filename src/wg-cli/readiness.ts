// How a detached daemon tells the command that started it that it is up: one line on an
// inherited pipe (fd 3), "ready" or "error: WHY", then the pipe is closed. The parent exits
// 0 or 1 on that line, or 1 if the pipe closes without one (the daemon died first).
import { closeSync, writeSync } from "node:fs";

/** Set (to the fd) in the daemon's environment by the parent; the daemon removes it at once. */
export const READY_FD_ENV = "UDPTUN_WG_READY_FD";
export const READY = "ready";
export const ERROR_PREFIX = "error: ";

export interface Readiness {
  ready(): void;
  failed(why: string): void;
}

/** In the foreground: nobody waits; errors go to stderr as wireguard-go prints them. */
const FOREGROUND: Readiness = {
  ready: () => {},
  failed: (why) => console.error(`udptun-wg: ${why}`),
};

export function readinessFromEnv(env: NodeJS.ProcessEnv): Readiness {
  const raw = env[READY_FD_ENV];
  delete env[READY_FD_ENV];
  if (raw === undefined) return FOREGROUND;
  const fd = Number(raw);
  let open = true;
  const say = (line: string): void => {
    if (!open) return;
    open = false;
    try {
      writeSync(fd, line + "\n");
      closeSync(fd);
    } catch { /* the parent is gone: nobody left to tell */ }
  };
  return { ready: () => say(READY), failed: (why) => say(ERROR_PREFIX + why.replace(/\n/g, " ")) };
}
