// udptun genkey | genpsk | pubkey: wg's key commands with wg's output, messages and exit codes
// (0, or 1 with the message on stderr), so scripts written for wg work unchanged.
import { randomBytes } from "node:crypto";
import { fstatSync, readFileSync, writeSync } from "node:fs";
import { decodeKey, encodeKey, KEY_BASE64_LEN, KEY_FORMAT_ERROR } from "../wireguard/keys.ts";
import { generatePrivateKey, KEY_LEN, publicKeyOf } from "../wireguard/x25519.ts";

export const KEY_COMMANDS = ["genkey", "genpsk", "pubkey"] as const;
export type KeyCommand = (typeof KEY_COMMANDS)[number];

export const isKeyCommand = (cmd: string): cmd is KeyCommand => (KEY_COMMANDS as readonly string[]).includes(cmd);

/** What may follow a key on pubkey's input: NUL and C's isspace(), as wg allows. */
const TRAILING_OK = /^[\0\t\n\v\f\r ]*$/;

/** wg's warning when a new secret goes to a file others can read; udptun says so for group too. */
function exposureWarning(): string | null {
  let st;
  try {
    st = fstatSync(1);
  } catch {
    return null;
  }
  if (!st.isFile()) return null;
  const who = st.mode & 0o007 ? "world" : st.mode & 0o070 ? "group" : null;
  return who && `Warning: writing to ${who} accessible file.\nConsider setting the umask to 077 and trying again.\n`;
}

/** The public key for the private key on stdin, read as `wg pubkey` reads it: exactly the
 * first 44 bytes, then only whitespace; the error text is wg's. */
function pubkey(input: Buffer): { out: string } | { err: string } {
  if (input.length < KEY_BASE64_LEN) return { err: KEY_FORMAT_ERROR };
  if (!TRAILING_OK.test(input.toString("latin1", KEY_BASE64_LEN))) return { err: "Trailing characters found after key" };
  const key = decodeKey(input.toString("latin1", 0, KEY_BASE64_LEN));
  input.fill(0);
  if (!key) return { err: KEY_FORMAT_ERROR };
  return { out: encodeKey(publicKeyOf(key)) };
}

/** Runs one key command; returns the exit code. Writes go straight to fds 1 and 2 (no buffering
 * left behind when the caller exits). */
export function runKeyCommand(cmd: KeyCommand, args: readonly string[]): number {
  const fail = (message: string) => {
    writeSync(2, `${message}\n`);
    return 1;
  };
  if (args.length > 0) return fail(`Usage: udptun ${cmd}`);
  let out: string;
  if (cmd === "pubkey") {
    let input: Buffer;
    try {
      input = readFileSync(0);
    } catch (err) {
      return fail(`udptun: cannot read stdin: ${(err as Error).message}`);
    }
    const res = pubkey(input);
    if ("err" in res) return fail(`udptun: ${res.err}`);
    out = res.out;
  } else {
    const warning = exposureWarning();
    if (warning) writeSync(2, warning);
    out = encodeKey(cmd === "genkey" ? generatePrivateKey() : new Uint8Array(randomBytes(KEY_LEN)));
  }
  writeSync(1, `${out}\n`);
  return 0;
}
