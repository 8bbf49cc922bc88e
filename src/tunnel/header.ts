// udptun's wire header, in front of every datagram (4 bytes, so the inner IP header stays
// 4-byte aligned):
//
//   byte 0   version (high nibble) | message type (low nibble)
//   byte 1-3 reserved, zero (receivers drop datagrams where they are not)
//
// Types: 1 data (an inner IP packet follows), 2 keepalive (nothing follows). Types 3-15
// are free for a handshake and an encrypted transport, which will share the port.
export const HEADER_LEN = 4;
export const VERSION = 1;
export const TYPE_DATA = 1;
export const TYPE_KEEPALIVE = 2;

const DATA_BYTE0 = (VERSION << 4) | TYPE_DATA;

/** The data header as bytes, for the addon to put in front of every segment it splits. */
export const DATA_HEADER: Uint8Array = Uint8Array.of(DATA_BYTE0, 0, 0, 0);

export function writeDataHeader(b: Uint8Array, off: number): void {
  b[off] = DATA_BYTE0;
  b[off + 1] = 0;
  b[off + 2] = 0;
  b[off + 3] = 0;
}

export function writeKeepalive(b: Uint8Array, off: number): void {
  b[off] = (VERSION << 4) | TYPE_KEEPALIVE;
  b[off + 1] = 0;
  b[off + 2] = 0;
  b[off + 3] = 0;
}
