// The one place udptun-wg picks what the configuration API drives.
import type { Logger } from "pino";
import type { Forwarder } from "../tunnel/forwarder.ts";
import { LiveDevice } from "../uapi/live.ts";
import type { UapiDevice } from "../uapi/target.ts";

/** The running forwarder itself: `wg` changes what carries traffic. */
export function apiDevice(fwd: Forwarder, log: Logger): UapiDevice {
  return new LiveDevice(fwd, log);
}
