// The errno values a UAPI reply carries (negated, as wireguard-go's ipc package sends them),
// taken from the OS so they are written nowhere else.
import { constants } from "node:os";

const { errno } = constants;

/** Reading the request failed: a line or a request over the limit (wireguard-go: EIO). */
export const ERRNO_IO = -errno.EIO;
/** A line without `=` (wireguard-go: EPROTO); here also a request cut short by EOF. */
export const ERRNO_PROTOCOL = -errno.EPROTO;
/** A key the section does not take, or a value that does not parse (wireguard-go: EINVAL). */
export const ERRNO_INVALID = -errno.EINVAL;
/** The listen port (or fwmark) could not be applied to the socket (wireguard-go: EADDRINUSE). */
export const ERRNO_PORT_IN_USE = -errno.EADDRINUSE;
/** Anything else the device threw (wireguard-go's IpcErrorUnknown is ENOANO, -55). */
export const ERRNO_UNKNOWN = -55;

/** A refused request: `errno` goes on the wire, the message (naming the field and the value)
 * goes to the log. */
export class UapiError extends Error {
  readonly errno: number;

  constructor(errno: number, message: string) {
    super(message);
    this.name = "UapiError";
    this.errno = errno;
  }
}
