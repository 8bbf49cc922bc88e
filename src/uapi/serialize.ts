// The get reply, produced in chunks so that a device with 100k+ allowed IPs is streamed with
// back-pressure instead of being built as one string. Order and presence of keys follow
// wireguard-go: private_key and listen_port only when set, fwmark only when nonzero; per peer
// preshared_key always (zeros for none), endpoint only when known.
import { formatEndpoint, formatPrefix } from "../net/address.ts";
import { formatHexKey, KEY_BYTES } from "./protocol.ts";
import type { DeviceState, PeerState } from "./target.ts";

/** Chunks are cut at about this many characters (a line never straddles two chunks). */
export const CHUNK_CHARS = 16 * 1024;

const ZERO_KEY = new Uint8Array(KEY_BYTES);

function* peerLines(peer: PeerState): Generator<string> {
  yield `public_key=${formatHexKey(peer.publicKey)}\n`;
  yield `preshared_key=${formatHexKey(peer.presharedKey ?? ZERO_KEY)}\n`;
  yield "protocol_version=1\n";
  if (peer.endpoint) yield `endpoint=${formatEndpoint(peer.endpoint)}\n`;
  yield `last_handshake_time_sec=${peer.lastHandshake?.sec ?? 0}\n`;
  yield `last_handshake_time_nsec=${peer.lastHandshake?.nsec ?? 0}\n`;
  yield `tx_bytes=${peer.txBytes}\n`;
  yield `rx_bytes=${peer.rxBytes}\n`;
  yield `persistent_keepalive_interval=${peer.persistentKeepalive}\n`;
  for (const prefix of peer.allowedIps) yield `allowed_ip=${formatPrefix(prefix)}\n`;
}

function* lines(state: DeviceState): Generator<string> {
  if (state.privateKey) yield `private_key=${formatHexKey(state.privateKey)}\n`;
  if (state.listenPort !== 0) yield `listen_port=${state.listenPort}\n`;
  if (state.fwmark !== 0) yield `fwmark=${state.fwmark}\n`;
  for (const peer of state.peers) yield* peerLines(peer);
}

/** The reply's body without its closing `errno=0\n\n`, in chunks of about CHUNK_CHARS. */
export function* serializeGet(state: DeviceState, chunkChars = CHUNK_CHARS): Generator<string> {
  let chunk = "";
  for (const line of lines(state)) {
    chunk += line;
    if (chunk.length >= chunkChars) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk !== "") yield chunk;
}
