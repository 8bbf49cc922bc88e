// bench/lib/udptun-config.mjs SIDE FRAGMENT_JSON
// Prints the udptun config for side "a" or "b" of the benchmark topology,
// with FRAGMENT_JSON deep-merged in (objects merge recursively; arrays and
// scalars replace). A fragment may also hold per-side parts under the keys
// "@a" / "@b", merged after the common part.
const [side, fragmentText = '{}'] = process.argv.slice(2);
if (side !== 'a' && side !== 'b') {
  console.error('usage: udptun-config.mjs a|b [FRAGMENT_JSON]');
  process.exit(2);
}
const me = side === 'a' ? 1 : 2;
const peer = side === 'a' ? 2 : 1;
const base = {
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

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
function merge(dst, src) {
  for (const [k, v] of Object.entries(src)) {
    if (isObj(v) && isObj(dst[k])) merge(dst[k], v);
    else dst[k] = structuredClone(v);
  }
  return dst;
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
const { '@a': onlyA, '@b': onlyB, ...common } = fragment;
const cfg = merge(base, common);
const own = side === 'a' ? onlyA : onlyB;
if (own !== undefined) merge(cfg, own);
process.stdout.write(JSON.stringify(cfg, null, 2) + '\n');
