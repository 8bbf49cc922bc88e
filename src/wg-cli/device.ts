// The one place udptun-wg picks what the configuration API drives.
import type { Logger } from "pino";
import type { Forwarder } from "../tunnel/forwarder.ts";
import { ModelDevice } from "../uapi/model.ts";
import type { UapiDevice } from "../uapi/target.ts";

/** Stand-in until src/uapi/live.ts lands: the model answers `wg` but drives no traffic. */
export function apiDevice(_fwd: Forwarder, _log: Logger): UapiDevice {
  return new ModelDevice();
}
