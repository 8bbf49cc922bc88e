// The three handshake messages on the wire (all integers little-endian; a u32 type first, so
// bytes 1-3 are zero). Decoders take exactly the message's size and return views into it.
import {
  COOKIE_LEN, COOKIE_REPLY_SIZE, INITIATION_SIZE, KEY_LEN, MAC_LEN, MSG_COOKIE_REPLY, MSG_INITIATION, MSG_RESPONSE,
  RESPONSE_SIZE, TAG_LEN, TIMESTAMP_LEN, XNONCE_LEN,
} from "./constants.ts";

export interface Initiation {
  sender: number;
  ephemeral: Uint8Array; // 32
  static: Uint8Array; // 32 + 16, sealed
  timestamp: Uint8Array; // 12 + 16, sealed
}

export interface Response {
  sender: number;
  receiver: number;
  ephemeral: Uint8Array; // 32
  empty: Uint8Array; // 0 + 16, sealed
}

export interface CookieReply {
  receiver: number;
  nonce: Uint8Array; // 24
  cookie: Uint8Array; // 16 + 16, sealed
}

// Field offsets, as sums of the fields before them.
const INIT_EPHEMERAL = 8;
const INIT_STATIC = INIT_EPHEMERAL + KEY_LEN;
const INIT_TIMESTAMP = INIT_STATIC + KEY_LEN + TAG_LEN;
const INIT_END = INIT_TIMESTAMP + TIMESTAMP_LEN + TAG_LEN;
const RESP_EPHEMERAL = 12;
const RESP_EMPTY = RESP_EPHEMERAL + KEY_LEN;
const RESP_END = RESP_EMPTY + TAG_LEN;
const COOKIE_NONCE = 8;
const COOKIE_SEALED = COOKIE_NONCE + XNONCE_LEN;

/** Offset of mac1 in a message of this size (mac1 and mac2 close every MAC'd message). */
export function mac1Offset(size: number): number {
  return size - 2 * MAC_LEN;
}

export function mac2Offset(size: number): number {
  return size - MAC_LEN;
}

/** The message type if `msg` is a well-formed handshake message of the right size, else 0. */
export function handshakeType(msg: Uint8Array): number {
  if (msg.length < 4 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return 0;
  const type = msg[0];
  const size = type === MSG_INITIATION ? INITIATION_SIZE : type === MSG_RESPONSE ? RESPONSE_SIZE : type === MSG_COOKIE_REPLY ? COOKIE_REPLY_SIZE : -1;
  return msg.length === size ? type : 0;
}

function u32(msg: Uint8Array, off: number): number {
  return (msg[off] | (msg[off + 1] << 8) | (msg[off + 2] << 16) | (msg[off + 3] << 24)) >>> 0;
}

function putU32(msg: Uint8Array, off: number, v: number): void {
  msg[off] = v & 0xff;
  msg[off + 1] = (v >>> 8) & 0xff;
  msg[off + 2] = (v >>> 16) & 0xff;
  msg[off + 3] = (v >>> 24) & 0xff;
}

function check(field: string, value: Uint8Array, len: number): void {
  if (value.length !== len) throw new RangeError(`${field}: ${value.length} bytes, expected ${len}`);
}

/** A 148-byte initiation with mac1 and mac2 zero (cookie.ts fills them). */
export function encodeInitiation(m: Initiation): Uint8Array {
  check("ephemeral", m.ephemeral, KEY_LEN);
  check("static", m.static, KEY_LEN + TAG_LEN);
  check("timestamp", m.timestamp, TIMESTAMP_LEN + TAG_LEN);
  const b = new Uint8Array(INITIATION_SIZE);
  putU32(b, 0, MSG_INITIATION);
  putU32(b, 4, m.sender);
  b.set(m.ephemeral, INIT_EPHEMERAL);
  b.set(m.static, INIT_STATIC);
  b.set(m.timestamp, INIT_TIMESTAMP);
  return b;
}

export function decodeInitiation(b: Uint8Array): Initiation | null {
  if (b.length !== INITIATION_SIZE || u32(b, 0) !== MSG_INITIATION) return null;
  return {
    sender: u32(b, 4),
    ephemeral: b.subarray(INIT_EPHEMERAL, INIT_STATIC),
    static: b.subarray(INIT_STATIC, INIT_TIMESTAMP),
    timestamp: b.subarray(INIT_TIMESTAMP, INIT_END),
  };
}

/** A 92-byte response with mac1 and mac2 zero. */
export function encodeResponse(m: Response): Uint8Array {
  check("ephemeral", m.ephemeral, KEY_LEN);
  check("empty", m.empty, TAG_LEN);
  const b = new Uint8Array(RESPONSE_SIZE);
  putU32(b, 0, MSG_RESPONSE);
  putU32(b, 4, m.sender);
  putU32(b, 8, m.receiver);
  b.set(m.ephemeral, RESP_EPHEMERAL);
  b.set(m.empty, RESP_EMPTY);
  return b;
}

export function decodeResponse(b: Uint8Array): Response | null {
  if (b.length !== RESPONSE_SIZE || u32(b, 0) !== MSG_RESPONSE) return null;
  return {
    sender: u32(b, 4),
    receiver: u32(b, 8),
    ephemeral: b.subarray(RESP_EPHEMERAL, RESP_EMPTY),
    empty: b.subarray(RESP_EMPTY, RESP_END),
  };
}

export function encodeCookieReply(m: CookieReply): Uint8Array {
  check("nonce", m.nonce, XNONCE_LEN);
  check("cookie", m.cookie, COOKIE_LEN + TAG_LEN);
  const b = new Uint8Array(COOKIE_REPLY_SIZE);
  putU32(b, 0, MSG_COOKIE_REPLY);
  putU32(b, 4, m.receiver);
  b.set(m.nonce, COOKIE_NONCE);
  b.set(m.cookie, COOKIE_SEALED);
  return b;
}

export function decodeCookieReply(b: Uint8Array): CookieReply | null {
  if (b.length !== COOKIE_REPLY_SIZE || u32(b, 0) !== MSG_COOKIE_REPLY) return null;
  return { receiver: u32(b, 4), nonce: b.subarray(COOKIE_NONCE, COOKIE_SEALED), cookie: b.subarray(COOKIE_SEALED) };
}

/** The sender index of an initiation or response (the receiver a cookie reply names). */
export function senderIndex(b: Uint8Array): number {
  return u32(b, 4);
}
