// The key fields of a config: a key inline (base64) or in a file, and wg's warning when a
// file holding a secret is readable by group or others. Errors name the field and, for a file,
// its path, but never echo what looked like a key: a private key pasted into the wrong field
// must not end up in a log.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { resolve } from "node:path";
import { decodeKey, KEY_FORMAT_ERROR } from "../wireguard/keys.ts";
import { ConfigError, show } from "./error.ts";

/** What key fields need from their surroundings: where relative paths start (the config
 * file's directory) and where warnings go (logged at start, printed by `check`). */
export interface KeyContext {
  readonly baseDir: string;
  readonly warnings: string[];
}

const HINT = "44 characters of base64, as `wg genkey` prints";
/** More than any key file holds with its whitespace; stops a mistaken path (/dev/zero) early. */
const KEY_FILE_MAX = 4096;

/** A warning if `mode` lets group or others read a file that holds a secret, else null. */
export function modeWarning(field: string, file: string, mode: number): string | null {
  if ((mode & 0o077) === 0) return null;
  return `${field}: ${show(file)} has mode 0${(mode & 0o777).toString(8)}: group or others can read the key in it (chmod 600 it)`;
}

function inlineKey(v: unknown, field: string): Uint8Array {
  const key = typeof v === "string" ? decodeKey(v.trim()) : null;
  if (!key) throw new ConfigError(field, `${KEY_FORMAT_ERROR} (expected ${HINT}; the value is not shown)`);
  return key;
}

/** Reads, trims and decodes a key file; `path` relative to ctx.baseDir. */
export function readKeyFile(path: unknown, field: string, ctx: KeyContext): Uint8Array {
  if (typeof path !== "string" || path.length === 0) throw new ConfigError(field, `expected a file path, got ${show(path)}`);
  const file = resolve(ctx.baseDir, path);
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    throw new ConfigError(field, `cannot read ${show(file)}: ${(err as Error).message}`);
  }
  const buf = Buffer.alloc(KEY_FILE_MAX);
  let n = 0;
  try {
    const warning = modeWarning(field, file, fstatSync(fd).mode);
    if (warning) ctx.warnings.push(warning);
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r;
  } catch (err) {
    throw new ConfigError(field, `cannot read ${show(file)}: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
  const key = n < buf.length ? decodeKey(buf.toString("utf8", 0, n).trim()) : null;
  buf.fill(0);
  if (!key) throw new ConfigError(field, `${show(file)}: ${KEY_FORMAT_ERROR} (expected ${HINT} and nothing else)`);
  return key;
}

/**
 * The key in o[name] (inline) or in the file o[name + "File"] when `fromFile`: exactly one of
 * them when `required`, at most one otherwise (null when neither). `at` is the field path of o.
 */
export function keyField(o: Record<string, unknown>, name: string, at: string, ctx: KeyContext, opts: { required: boolean; fromFile: boolean }): Uint8Array | null {
  const field = at ? `${at}.${name}` : name;
  const fileName = `${name}File`;
  const inline = o[name];
  const file = opts.fromFile ? o[fileName] : undefined;
  if (inline !== undefined && file !== undefined) throw new ConfigError(field, `give ${name} or ${fileName}, not both`);
  if (inline !== undefined) return inlineKey(inline, field);
  if (file !== undefined) return readKeyFile(file, at ? `${at}.${fileName}` : fileName, ctx);
  if (opts.required) throw new ConfigError(field, `missing (${opts.fromFile ? `give ${name} or ${fileName}: ` : ""}${HINT})`);
  return null;
}

/** The plain transport has no keys: a key field there is a mistake, not something to ignore. */
export function refuseKeys(o: Record<string, unknown>, at: string, names: readonly string[]): void {
  for (const name of names) {
    if (o[name] !== undefined) {
      throw new ConfigError(at ? `${at}.${name}` : name, `only with "transport": "wireguard" (the plain transport has no keys; the value is not shown)`);
    }
  }
}
