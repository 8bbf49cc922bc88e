// The forwarder's configuration for udptun-wg: what wireguard-go starts with. A device with
// MTU 1420, a dual-stack socket on a port the kernel picks, udptun's defaults for buffers,
// pools and offloads, no peers; the rest arrives through the configuration API.
import { DEFAULTS } from "../config/schema.ts";
import type { WireGuardConfig } from "../config/schema.ts";
import type { LogLevel } from "../config/schema.ts";
import { parseIp } from "../net/address.ts";
import { generatePrivateKey, publicKeyOf } from "../wireguard/x25519.ts";

/** wireguard-go's device.DefaultMTU; wg-quick sets the configured MTU after start. */
export const WG_MTU = 1420;

export function daemonConfig(name: string, level: LogLevel): WireGuardConfig {
  // Stand-in until the live device takes a config without keys: a key nobody knows, so no
  // handshake can succeed until `wg set private-key` replaces it.
  const privateKey = generatePrivateKey();
  return {
    transport: "wireguard",
    privateKey,
    publicKey: publicKeyOf(privateKey),
    device: { name, addresses: [], mtu: WG_MTU, txQueueLen: DEFAULTS.txQueueLen },
    listen: { host: "::", port: 0, ip: parseIp("::")! },
    // Unused: udptun-wg serves metrics only where UDPTUN_METRICS says.
    metrics: { host: "127.0.0.1", port: 0 },
    log: { level },
    socket: { receiveBuffer: DEFAULTS.receiveBuffer, sendBuffer: DEFAULTS.sendBuffer, peerFilter: DEFAULTS.peerFilter },
    pools: { deviceCapacity: DEFAULTS.poolCapacity, networkCapacity: DEFAULTS.poolCapacity },
    offloads: { udpGso: true, udpGro: true, tun: true, coalesce: true, coalesceUdp: false },
    workers: 1,
    peers: [],
    warnings: [],
  };
}
