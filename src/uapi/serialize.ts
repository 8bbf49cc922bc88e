// The get reply, produced in chunks so that a device with 100k+ allowed IPs is streamed with
// back-pressure instead of being built as one string. Order and presence of keys follow
// wireguard-go: private_key and listen_port only when set, fwmark only when nonzero; per peer
// preshared_key always (zeros for none), endpoint only when known.
import { formatEndpoint, formatPrefix } from "../net/address.ts";
import { formatHexKey, KEY_BYTES } from "./protocol.ts";
import type { Prefix } from "../net/address.ts";
import type { DeviceState, PeerState } from "./target.ts";

/** Chunks are cut at about this many characters. */
export const CHUNK_CHARS = 16 * 1024;

const ZERO_KEY = new Uint8Array(KEY_BYTES);

/** An IPv6 prefix as netip prints it (RFC 5952: lowercase, the longest run of two or more zero
 * groups as "::"), without formatIp's intermediate arrays; v4-mapped ones go to formatPrefix. */
function formatIpv6Prefix(p: Prefix): string {
  const b = p.bytes;
  if (b[10] === 0xff && b[11] === 0xff && b.subarray(0, 10).every((x) => x === 0)) return formatPrefix(p);
  let best = -1;
  let bestLen = 1;
  for (let i = 0, run = 0; i < 8; i++) {
    run = b[i * 2] === 0 && b[i * 2 + 1] === 0 ? run + 1 : 0;
    if (run > bestLen) [best, bestLen] = [i - run + 1, run];
  }
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      out += i === 0 ? "::" : ":";
      i += bestLen - 1;
      continue;
    }
    out += ((b[i * 2] << 8) | b[i * 2 + 1]).toString(16);
    if (i < 7) out += ":";
  }
  return `${out}/${p.length}`;
}

function peerHead(peer: PeerState): string {
  return (
    `public_key=${formatHexKey(peer.publicKey)}\n` +
    `preshared_key=${formatHexKey(peer.presharedKey ?? ZERO_KEY)}\n` +
    "protocol_version=1\n" +
    (peer.endpoint ? `endpoint=${formatEndpoint(peer.endpoint)}\n` : "") +
    `last_handshake_time_sec=${peer.lastHandshake?.sec ?? 0}\n` +
    `last_handshake_time_nsec=${peer.lastHandshake?.nsec ?? 0}\n` +
    `tx_bytes=${peer.txBytes}\n` +
    `rx_bytes=${peer.rxBytes}\n` +
    `persistent_keepalive_interval=${peer.persistentKeepalive}\n`
  );
}

function deviceHead(state: DeviceState): string {
  return (
    (state.privateKey ? `private_key=${formatHexKey(state.privateKey)}\n` : "") +
    (state.listenPort !== 0 ? `listen_port=${state.listenPort}\n` : "") +
    (state.fwmark !== 0 ? `fwmark=${state.fwmark}\n` : "")
  );
}

/** The reply's body without its closing `errno=0\n\n`, in chunks of about CHUNK_CHARS (a line
 * never straddles two chunks). */
export function* serializeGet(state: DeviceState, chunkChars = CHUNK_CHARS): Generator<string> {
  let chunk = deviceHead(state);
  for (const peer of state.peers) {
    chunk += peerHead(peer);
    for (const p of peer.allowedIps) {
      // IPv4 written directly: a large configuration is mostly IPv4 prefixes.
      const b = p.bytes;
      chunk += p.family === 4 ? `allowed_ip=${b[0]}.${b[1]}.${b[2]}.${b[3]}/${p.length}\n` : `allowed_ip=${formatIpv6Prefix(p)}\n`;
      if (chunk.length >= chunkChars) {
        yield chunk;
        chunk = "";
      }
    }
    if (chunk.length >= chunkChars) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk !== "") yield chunk;
}
