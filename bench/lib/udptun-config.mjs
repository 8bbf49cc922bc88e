// bench/lib/udptun-config.mjs SIDE FRAGMENT_JSON [KEY_DIR]
// Prints the udptun config for side "a" or "b" of the benchmark topology,
// with FRAGMENT_JSON deep-merged in (objects merge recursively; arrays and
// scalars replace). A fragment may also hold per-side parts under the keys
// "@a" / "@b", merged after the common part.
//
// The transport is the fragment's "transport", else udptun's own default
// (DEFAULTS.transport in src/config/schema.ts; "plain" where the schema has none).
// With "wireguard" the config gets the key fields: "privateKeyFile" (KEY_DIR/SIDE.key)
// and the peer's "publicKey". KEY_DIR is a private folder (mode 0700) outside the repo;
// the first call makes both sides' keys there (X25519, mode 0600), the second reads them.
//
// Imported, it gives transportOf(fragment) and ceilingOf(fragment): the C loop
// (bench/ceiling) that makes the same kernel calls as udptun with that fragment, or null.
import { generateKeyPairSync, createPrivateKey, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCHEMA = fileURLToPath(new URL('../../src/config/schema.ts', import.meta.url));
const SIDES = ['a', 'b'];

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
function merge(dst, src) {
  for (const [k, v] of Object.entries(src)) {
    if (isObj(v) && isObj(dst[k])) merge(dst[k], v);
    else dst[k] = structuredClone(v);
  }
  return dst;
}

/** udptun's default transport, read from its schema (absent before it had a choice). */
export async function defaultTransport() {
  const { DEFAULTS } = await import(SCHEMA);
  return DEFAULTS.transport ?? 'plain';
}

/** The transport udptun runs with this fragment. */
export async function transportOf(fragment) {
  return fragment.transport ?? (await defaultTransport());
}

/** Row of the C loop with udptun's kernel calls for this fragment: every offload on (as
 * udptun's defaults) with ceiling-c:offloads (plain) or ceiling-c:wireguard; every one off
 * with ceiling-c (plain only); null for a partial set, which no C loop makes. */
export async function ceilingOf(fragment) {
  const o = fragment.offloads ?? {};
  const main = [o.udpGso, o.udpGro, o.tun, o.coalesce];
  const allOn = main.every((v) => v === undefined || v === true) && !o.coalesceUdp;
  const allOff = main.every((v) => v === false);
  const transport = await transportOf(fragment);
  if (transport === 'wireguard') return allOn ? 'ceiling-c:wireguard' : null;
  return allOn ? 'ceiling-c:offloads' : allOff ? 'ceiling-c' : null;
}

// A private key as wg genkey makes it (clamped) and its public key, both base64.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex'); // DER before the raw key
function keypair() {
  const d = Buffer.from(generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' }).d, 'base64url');
  d[0] &= 248;
  d[31] = (d[31] & 127) | 64;
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, d]), format: 'der', type: 'pkcs8' });
  const pub = Buffer.from(createPublicKey(priv).export({ format: 'jwk' }).x, 'base64url');
  return { private: d.toString('base64'), public: pub.toString('base64') };
}

// Both sides' keys in dir, made on first use; returns { a: {file, public}, b: ... }.
function keys(dir) {
  const st = fs.statSync(dir);
  if (!st.isDirectory() || (st.mode & 0o077) !== 0) {
    throw new Error(`KEY_DIR: ${dir} must be a directory only its owner can read (mode 0700)`);
  }
  const out = {};
  for (const side of SIDES) {
    const file = path.resolve(dir, `${side}.key`), pubFile = path.resolve(dir, `${side}.pub`);
    if (!fs.existsSync(file)) {
      const k = keypair();
      fs.writeFileSync(pubFile, k.public + '\n', { mode: 0o600, flag: 'wx' });
      fs.writeFileSync(file, k.private + '\n', { mode: 0o600, flag: 'wx' });
    }
    out[side] = { file, public: fs.readFileSync(pubFile, 'utf8').trim() };
  }
  return out;
}

export async function configFor(side, fragment, keyDir) {
  const me = side === 'a' ? 1 : 2;
  const peer = side === 'a' ? 2 : 1;
  let base = {
    device: { name: 'udptun0', address: [`10.77.0.${me}/24`, `fd77::${me}/64`], mtu: 1420 },
    listen: `198.18.0.${me}:51820`,
    peers: [
      {
        name: side === 'a' ? 'b' : 'a',
        endpoint: `198.18.0.${peer}:51820`,
        allowedIps: [`10.77.0.${peer}/32`, `fd77::${peer}/128`],
      },
    ],
    metrics: { listen: `198.18.0.${me}:9464` },
    log: { level: 'warn' },
  };
  if ((await transportOf(fragment)) === 'wireguard') {
    if (!keyDir) throw new Error('transport "wireguard" needs KEY_DIR (a private folder for the key files)');
    const k = keys(keyDir);
    base.peers[0].publicKey = k[SIDES[peer - 1]].public;
    base = { transport: 'wireguard', privateKeyFile: k[side].file, ...base };
  }
  const { '@a': onlyA, '@b': onlyB, ...common } = fragment;
  const cfg = merge(base, common);
  const own = side === 'a' ? onlyA : onlyB;
  if (own !== undefined) merge(cfg, own);
  return cfg;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [side, fragmentText = '{}', keyDir] = process.argv.slice(2);
  if (!SIDES.includes(side)) {
    console.error('usage: udptun-config.mjs a|b [FRAGMENT_JSON] [KEY_DIR]');
    process.exit(2);
  }
  let fragment;
  try {
    fragment = JSON.parse(fragmentText);
  } catch (e) {
    console.error(`udptun-config: fragment is not JSON: ${e.message}`);
    process.exit(2);
  }
  if (!isObj(fragment)) {
    console.error('udptun-config: fragment must be a JSON object');
    process.exit(2);
  }
  try {
    process.stdout.write(JSON.stringify(await configFor(side, fragment, keyDir), null, 2) + '\n');
  } catch (e) {
    console.error(`udptun-config: ${e.message}`);
    process.exit(2);
  }
}
