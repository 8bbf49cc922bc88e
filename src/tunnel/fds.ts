// A forwarder's file descriptors: the UDP socket, the TUN queue it reads, and the fd the
// network path writes the device through. Opened here (one forwarder), or opened already by
// the main thread (a worker's: workers.ts); either way the forwarder closes them on stop.
import type { Config } from "../config/schema.ts";
import { addon } from "../native/addon.ts";
import { closeTun, openTun } from "../native/tun.ts";
import type { TunDevice } from "../native/tun.ts";
import { closeUdp, openUdp } from "../native/udp.ts";
import type { UdpSocket } from "../native/udp.ts";

export interface ForwarderFds {
  readonly tun: TunDevice;
  /** Where the network path writes the device when not tun.fd (a worker's detached queue:
   * see tun.ts); -1 for tun.fd itself. */
  readonly tunWriteFd: number;
  /** Replaced when the listen port changes (Forwarder.rebind). */
  sock: UdpSocket;
}

/**
 * Opens the socket, then the device, so a taken port leaves no device behind. onSocket runs
 * in between (the peer filter goes on before the device exists); with fds given, it runs on
 * their socket and nothing is opened.
 */
export function openFds(config: Config, given: ForwarderFds | undefined, onSocket: (sock: UdpSocket) => void): ForwarderFds {
  if (given) {
    onSocket(given.sock);
    return given;
  }
  const { ip, port } = config.listen;
  const sock = openUdp(ip, port, config.socket.receiveBuffer, config.socket.sendBuffer);
  try {
    onSocket(sock);
    return { tun: openTun(config.device, config.offloads.tun), tunWriteFd: -1, sock };
  } catch (err) {
    closeUdp(sock);
    throw err;
  }
}

/** The device as the network path writes it. */
export function writableDevice(fds: ForwarderFds): TunDevice {
  return fds.tunWriteFd < 0 ? fds.tun : { ...fds.tun, fd: fds.tunWriteFd };
}

export function closeFds(fds: ForwarderFds): void {
  closeTun(fds.tun);
  if (fds.tunWriteFd >= 0) addon.close(fds.tunWriteFd);
  closeUdp(fds.sock);
}
