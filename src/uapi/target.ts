// The seam between the configuration API and a device: plain typed data both ways. The server
// (server.ts) parses and serializes; a UapiDevice holds the configuration and applies it.
// model.ts is the reference implementation, with wireguard-go's semantics.
import type { Prefix } from "../net/address.ts";

/** A set request, validated: device operations first, then one section per peer, each in the
 * order the client sent them (order matters: `replace_allowed_ips` clears what came before). */
export interface SetRequest {
  device: DeviceOperation[];
  peers: PeerSection[];
}

export type DeviceOperation =
  | { op: "private_key"; key: Uint8Array | null } // null: all zeros, the device has no key
  | { op: "listen_port"; port: number } // 0: any free port
  | { op: "fwmark"; mark: number } // 0: none
  | { op: "replace_peers" };

export interface PeerSection {
  publicKey: Uint8Array;
  operations: PeerOperation[];
}

export type PeerOperation =
  | { op: "remove" }
  | { op: "update_only" }
  | { op: "preshared_key"; key: Uint8Array | null } // null: all zeros, no preshared key
  | { op: "endpoint"; endpoint: Uint8Array } // the 20-byte form of src/net/address.ts
  | { op: "persistent_keepalive_interval"; seconds: number } // 0: off
  | { op: "replace_allowed_ips" }
  | { op: "allowed_ip"; prefix: Prefix; remove: boolean } // prefix masked to its network
  | { op: "protocol_version"; version: 1 };

/** What a get reports. Keys are 32 bytes; the server streams it, so `peers` and `allowedIps`
 * may be lazy, but they must not change under the reader once get() has returned (a slow
 * client is streamed outside the lock that serializes requests). */
export interface DeviceState {
  privateKey: Uint8Array | null;
  listenPort: number; // the bound port, 0 if none
  fwmark: number;
  peers: Iterable<PeerState>;
}

export interface PeerState {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  endpoint: Uint8Array | null;
  persistentKeepalive: number;
  allowedIps: Iterable<Prefix>;
  /** Wall-clock time of the latest completed handshake, null if none. */
  lastHandshake: { sec: number; nsec: number } | null;
  txBytes: number;
  rxBytes: number;
}

/** What a device implements for the server. Requests are serialized: the server never calls
 * apply() or get() while another apply() is running. */
export interface UapiDevice {
  get(): DeviceState;
  /** All or nothing: throw a UapiError (errors.ts) to refuse the request with its errno, and
   * the device must then be as it was. Any other exception is answered with ERRNO_UNKNOWN. */
  apply(request: SetRequest): void | Promise<void>;
}
