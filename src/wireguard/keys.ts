// WireGuard keys as text: 44 characters of base64 for 32 bytes, exactly as `wg genkey` prints
// them and as config files and `wg` accept them. Used by the config, the key commands and the
// protocol code; nothing here logs or echoes a key.
import { KEY_LEN } from "./x25519.ts";

/** 32 bytes in base64: 43 significant characters and one "=". */
export const KEY_BASE64_LEN = 44;

/** `wg`'s own words for a key it cannot read (pubkey, config files), so scripts see the same text. */
export const KEY_FORMAT_ERROR = "Key is not the correct length or format";

/** The 32-byte key, or null unless `text` is exactly a key as wg writes it: 44 characters of
 * the standard alphabet ending in "=", the unused low bits zero (wg refuses other spellings of
 * the same bytes, and base64url). No trimming: callers decide what whitespace they allow. */
export function decodeKey(text: string): Uint8Array | null {
  if (text.length !== KEY_BASE64_LEN || text[KEY_BASE64_LEN - 1] !== "=") return null;
  const bytes = Buffer.from(text, "base64");
  // Node's decoder skips characters outside the alphabet; the round trip catches them.
  if (bytes.length !== KEY_LEN || bytes.toString("base64") !== text) return null;
  return new Uint8Array(bytes);
}

export function encodeKey(key: Uint8Array): string {
  if (key.length !== KEY_LEN) throw new RangeError(`a WireGuard key is ${KEY_LEN} bytes, got ${key.length}`);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("base64");
}
