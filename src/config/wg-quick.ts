// wg-quick files (wg0.conf) translated into the JSON shape validateConfig takes, remembering the
// line each value came from so every error names the line and the key. Read as wg-quick and
// `wg setconf` read them: keys case-insensitive, "#" starts a comment, lists split on commas,
// Address and AllowedIPs may repeat. Keys udptun does not apply (DNS, Table, PostUp...) are
// warned about, not fatal. A comment `# Name = x` inside a [Peer] names that peer (otherwise
// peer1, peer2, ... in file order).
import { basename } from "node:path";
import { ConfigError, show } from "./error.ts";

export interface WgQuickFile {
  /** What validateConfig takes (values still unchecked where validateConfig checks them). */
  readonly raw: Record<string, unknown>;
  /** JSON path ("peers[1].allowedIps[0]") -> where it was written ("wg0.conf:12: AllowedIPs"). */
  readonly origins: ReadonlyMap<string, string>;
  readonly warnings: string[];
  /** A private or preshared key is written in the file itself (its mode then matters). */
  readonly holdsSecret: boolean;
}

/** The keys udptun reads, by section, in wg's spelling (matched case-insensitively). */
const INTERFACE_KEYS = ["PrivateKey", "ListenPort", "Address", "MTU"] as const;
const PEER_KEYS = ["PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"] as const;
/** The single-valued [Peer] keys and their JSON names (AllowedIPs is a list, handled apart). */
const PEER_FIELDS: Record<string, string> = { PublicKey: "publicKey", PresharedKey: "presharedKey", Endpoint: "endpoint", PersistentKeepalive: "persistentKeepalive" };
/** wg-quick keys that act on the system around the tunnel (DNS, routes, hooks): not udptun's job. */
const IGNORED_KEYS = ["DNS", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig", "FwMark"];

const canonical = (keys: readonly string[], k: string): string | undefined => keys.find((c) => c.toLowerCase() === k.toLowerCase());

/** Text shaped like a key name or a section header is repeated in messages; anything else may
 * be a key pasted on a line of its own, so it is not. */
const NAME_LIKE = /^\[?[A-Za-z][A-Za-z0-9_ -]{0,31}\]?$/;

/** wg-quick's rule: the interface is the file's name without ".conf", 1-15 of [A-Za-z0-9_=+.-]. */
export function interfaceNameOf(file: string): string {
  const m = /^([A-Za-z0-9_=+.-]{1,15})\.conf$/.exec(basename(file));
  if (!m || m[1] === "." || m[1] === "..") {
    throw new ConfigError("--config", `${show(file)}: a wg-quick file is named for its interface: 1-15 of A-Z a-z 0-9 _ = + . - followed by .conf (e.g. wg0.conf)`);
  }
  return m[1];
}

interface Peer {
  readonly line: number;
  readonly o: Record<string, unknown>;
  readonly allowedIps: string[];
}

export function parseWgQuick(text: string, file: string): WgQuickFile {
  const origins = new Map<string, string>();
  const warnings: string[] = [];
  const at = (line: number, key: string) => `${file}:${line}: ${key}`;
  const fail = (line: number, key: string, message: string): never => {
    throw new ConfigError(at(line, key), message);
  };

  const top: Record<string, unknown> = { transport: "wireguard" };
  const device: Record<string, unknown> = { name: interfaceNameOf(file) };
  const addresses: string[] = [];
  const peers: Peer[] = [];
  let interfaceLine = 0;
  let section: "interface" | "peer" | null = null;
  let listenPort = 0;
  let holdsSecret = false;
  const seen = new Map<string, number>(); // "peer2.publickey" -> line, for repeated single values

  /** A single-valued key: a repeat replaces the earlier value, as wg does, with a warning. */
  const single = (path: string, line: number, key: string) => {
    const earlier = seen.get(path);
    if (earlier !== undefined) warnings.push(`${at(line, key)}: repeated; this value replaces line ${earlier}'s (as wg does)`);
    seen.set(path, line);
    origins.set(path, at(line, key));
  };
  const list = (value: string, line: number, key: string): string[] => {
    const items = value.split(",").map((s) => s.trim());
    if (items.some((s) => s === "")) fail(line, key, `${show(value)} has an empty entry (a comma-separated list)`);
    return items;
  };

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const full = lines[i];
    const hash = full.indexOf("#");
    if (section === "peer") {
      const name = /^\s*#\s*name\s*=\s*(.*?)\s*$/i.exec(full);
      if (name) {
        const p = peers.length - 1;
        single(`peers[${p}].name`, n, "Name");
        peers[p].o.name = name[1];
        continue;
      }
    }
    const content = (hash < 0 ? full : full.slice(0, hash)).trim();
    if (content === "") continue;

    if (content.startsWith("[")) {
      const header = content.replace(/\s+/g, "").toLowerCase();
      if (header === "[interface]") {
        section = "interface";
        if (!interfaceLine) interfaceLine = n;
      } else if (header === "[peer]") {
        section = "peer";
        peers.push({ line: n, o: {}, allowedIps: [] });
        origins.set(`peers[${peers.length - 1}]`, at(n, "[Peer]"));
      } else {
        if (NAME_LIKE.test(content)) fail(n, content, "unknown section (expected [Interface] or [Peer])");
        fail(n, "[?]", "unknown section (expected [Interface] or [Peer]; the line is not shown)");
      }
      continue;
    }

    const eq = content.indexOf("=");
    if (eq < 0) {
      if (NAME_LIKE.test(content)) fail(n, content, "line unrecognized (expected Key = Value)");
      throw new ConfigError(`${file}:${n}`, "line unrecognized (expected Key = Value; the line is not shown)");
    }
    const written = content.slice(0, eq).trim();
    const value = content.slice(eq + 1).trim();
    if (!NAME_LIKE.test(written)) {
      warnings.push(`${file}:${n}: not a key udptun knows (the line is not shown); ignored`);
      continue;
    }
    if (section === null) fail(n, written, "outside a section ([Interface] or [Peer] comes first)");
    const key = canonical(section === "interface" ? INTERFACE_KEYS : PEER_KEYS, written);
    if (key === undefined) {
      const known = section === "interface" ? canonical(IGNORED_KEYS, written) : undefined;
      const where = section === "interface" ? "[Interface]" : "[Peer]";
      warnings.push(known
        ? `${at(n, known)}: a wg-quick key udptun does not apply; ignored`
        : `${at(n, written)}: not a key udptun knows in ${where}; ignored`);
      continue;
    }
    if (value === "") fail(n, key, "no value");

    if (section === "interface") {
      if (key === "PrivateKey") {
        holdsSecret = true;
        single("privateKey", n, key);
        top.privateKey = value;
      } else if (key === "ListenPort") {
        if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) fail(n, key, `${show(value)} is not a port (0-65535)`);
        single("listen", n, key);
        listenPort = Number(value);
      } else if (key === "Address") {
        for (const a of list(value, n, key)) {
          origins.set(`device.address[${addresses.length}]`, at(n, key));
          addresses.push(a);
        }
      } else {
        if (!/^\d{1,9}$/.test(value)) fail(n, key, `${show(value)} is not a number`);
        single("device.mtu", n, key);
        device.mtu = Number(value);
      }
      continue;
    }

    const p = peers.length - 1;
    const peer = peers[p];
    const f = `peers[${p}]`;
    const field = PEER_FIELDS[key];
    if (field) {
      single(`${f}.${field}`, n, key);
      peer.o[field] = value;
      if (key === "PresharedKey") holdsSecret = true;
      if (key === "PersistentKeepalive") {
        const off = value.toLowerCase() === "off";
        if (!off && !/^\d{1,9}$/.test(value)) fail(n, key, `${show(value)} is neither 0/off nor 1-65535`);
        peer.o[field] = off ? 0 : Number(value);
      }
    } else {
      for (const a of list(value, n, key)) {
        origins.set(`${f}.allowedIps[${peer.allowedIps.length}]`, at(n, key));
        peer.allowedIps.push(a);
      }
    }
  }

  // What validateConfig would only call missing: said here, with the section's line.
  if (!interfaceLine) throw new ConfigError(file, "no [Interface] section");
  if (top.privateKey === undefined) fail(interfaceLine, "[Interface]", "PrivateKey missing");
  if (addresses.length === 0) fail(interfaceLine, "[Interface]", "Address missing (udptun gives the device its address)");
  if (peers.length === 0) throw new ConfigError(file, "no [Peer] section (udptun needs at least one peer)");
  for (const peer of peers) {
    if (peer.o.publicKey === undefined) fail(peer.line, "[Peer]", "PublicKey missing");
    if (peer.allowedIps.length === 0) fail(peer.line, "[Peer]", "AllowedIPs missing (udptun routes only what a peer's AllowedIPs cover)");
  }
  origins.set("device", at(interfaceLine, "[Interface]"));
  origins.set("device.address", at(interfaceLine, "Address"));
  if (!seen.has("listen")) origins.set("listen", at(interfaceLine, "[Interface]"));

  // All addresses, as wg does; dual stack ([::]) only where a peer needs IPv6, since a host
  // without IPv6 cannot bind it.
  const v6 = peers.some((p) => typeof p.o.endpoint === "string" && p.o.endpoint.startsWith("["));
  // ListenPort absent: 0, a random port, as wg-quick (the kernel picks; peers learn it by roaming).
  top.listen = `${v6 ? "[::]" : "0.0.0.0"}:${listenPort}`;
  top.device = { ...device, address: addresses };
  top.peers = peers.map((p, i) => {
    if (p.o.name === undefined) origins.set(`peers[${i}].name`, at(p.line, "[Peer]"));
    return { name: `peer${i + 1}`, ...p.o, allowedIps: p.allowedIps };
  });
  return { raw: top, origins, warnings, holdsSecret };
}

/** A ConfigError from validating a wg-quick file's raw form, restated at the line it came from
 * (the nearest recorded path: "peers[1].allowedIps" falls back to "peers[1]"). */
export function locate(err: ConfigError, origins: ReadonlyMap<string, string>, file: string): ConfigError {
  const message = err.message.slice(err.field.length + 2);
  let path = err.field;
  while (path) {
    const origin = origins.get(path);
    if (origin) return new ConfigError(origin, message);
    const up = path.replace(/(\[\d+\]|\.?[^.[]*)$/, "");
    if (up === path) break;
    path = up;
  }
  return new ConfigError(file, err.message);
}
