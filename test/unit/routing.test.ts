import t from "tap";
import { PrefixTable } from "../../src/tunnel/routing.ts";
import { parseIp, parsePrefix } from "../../src/net/address.ts";
import type { Prefix } from "../../src/net/address.ts";

function prefix(s: string): Prefix {
  const p = parsePrefix(s);
  if (!p) throw new Error(`bad test prefix ${s}`);
  return p;
}

function table(entries: [string, string][]): PrefixTable<string> {
  const tab = new PrefixTable<string>();
  for (const [p, v] of entries) tab.insert(prefix(p), v);
  return tab;
}

function look(tab: PrefixTable<string>, addr: string): string | null {
  const ip = parseIp(addr);
  if (!ip) throw new Error(`bad test address ${addr}`);
  return tab.lookup(ip.bytes, 0, ip.family);
}

t.test("longest prefix wins", (t) => {
  const entries: [string, string][] = [
    ["10.0.0.0/8", "eight"],
    ["10.1.0.0/16", "sixteen"],
    ["10.1.2.3/32", "host"],
  ];
  // Insertion order must not matter: try it forwards and backwards.
  for (const tab of [table(entries), table([...entries].reverse())]) {
    t.equal(look(tab, "10.1.2.3"), "host");
    t.equal(look(tab, "10.1.2.4"), "sixteen");
    t.equal(look(tab, "10.1.2.2"), "sixteen");
    t.equal(look(tab, "10.1.255.255"), "sixteen");
    t.equal(look(tab, "10.0.255.255"), "eight");
    t.equal(look(tab, "10.2.0.0"), "eight");
    t.equal(look(tab, "10.255.255.255"), "eight");
    t.equal(look(tab, "11.0.0.0"), null, "outside every prefix");
    t.equal(look(tab, "9.255.255.255"), null);
  }
  t.end();
});

t.test("prefix lengths that are not byte multiples", (t) => {
  const tab = table([
    ["192.168.1.128/25", "upper"],
    ["192.168.1.0/26", "lowest"],
    ["172.16.0.0/12", "rfc1918"],
  ]);
  t.equal(look(tab, "192.168.1.128"), "upper");
  t.equal(look(tab, "192.168.1.255"), "upper");
  t.equal(look(tab, "192.168.1.127"), null, "just below the /25, above the /26");
  t.equal(look(tab, "192.168.1.63"), "lowest");
  t.equal(look(tab, "192.168.1.64"), null);
  t.equal(look(tab, "172.31.255.255"), "rfc1918");
  t.equal(look(tab, "172.32.0.0"), null);
  t.equal(look(tab, "172.15.255.255"), null);
  t.end();
});

t.test("inserting the same prefix again replaces its value", (t) => {
  const tab = table([["10.0.0.0/8", "old"], ["10.0.0.0/8", "new"]]);
  t.equal(look(tab, "10.9.9.9"), "new");
  t.end();
});

t.test("IPv4 and IPv6 are separate tables", (t) => {
  const tab = table([
    ["fd77::/64", "v6-net"],
    ["fd77::2/128", "v6-host"],
    ["253.119.0.0/16", "v4"], // 253.119 = 0xfd 0x77: the same leading bits as fd77::
  ]);
  t.equal(look(tab, "fd77::2"), "v6-host");
  t.equal(look(tab, "fd77::3"), "v6-net");
  t.equal(look(tab, "fd77:0:0:1::2"), null, "outside the /64");
  t.equal(look(tab, "253.119.0.2"), "v4");

  const same = Uint8Array.from([0xfd, 0x77, ...new Array<number>(13).fill(0), 2]);
  t.equal(tab.lookup(same, 0, 4), "v4", "the first 4 bytes as IPv4 find the IPv4 entry only");
  t.equal(tab.lookup(same, 0, 6), "v6-host");

  const onlyV6 = table([["::/0", "v6-default"]]);
  t.equal(look(onlyV6, "10.0.0.1"), null, "an IPv6 default route does not catch IPv4");
  t.equal(look(onlyV6, "2001:db8::1"), "v6-default");
  const onlyV4 = table([["0.0.0.0/0", "v4-default"]]);
  t.equal(look(onlyV4, "::"), null, "an IPv4 default route does not catch IPv6");
  t.equal(look(onlyV4, "0.0.0.0"), "v4-default");
  t.end();
});

t.test("/0 default routes", (t) => {
  const tab = table([
    ["0.0.0.0/0", "default4"],
    ["10.0.0.0/8", "ten"],
    ["::/0", "default6"],
    ["2001:db8::/32", "doc"],
  ]);
  t.equal(look(tab, "10.0.0.1"), "ten");
  t.equal(look(tab, "11.0.0.1"), "default4");
  t.equal(look(tab, "255.255.255.255"), "default4");
  t.equal(look(tab, "0.0.0.0"), "default4");
  t.equal(look(tab, "2001:db8:1::1"), "doc");
  t.equal(look(tab, "2001:db9::1"), "default6");
  t.equal(look(tab, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "default6");
  t.end();
});

t.test("no match returns null, including on an empty table", (t) => {
  const empty = new PrefixTable<string>();
  t.equal(look(empty, "10.0.0.1"), null);
  t.equal(look(empty, "::1"), null);
  const tab = table([["10.77.0.2/32", "b"]]);
  t.equal(look(tab, "10.77.0.3"), null, "a /32 matches only itself");
  t.equal(look(tab, "10.77.0.2"), "b");
  t.end();
});

t.test("lookup at a non-zero offset inside a larger buffer", (t) => {
  const tab = table([
    ["10.0.0.0/8", "ten"],
    ["255.0.0.0/8", "ones"],
    ["fd77::/16", "fd77"],
    ["ffff::/16", "ffff"],
  ]);
  const buf = new Uint8Array(128).fill(0xff);
  t.equal(tab.lookup(buf, 0, 4), "ones", "the filler alone matches 255/8");
  buf.set([10, 1, 2, 3], 33); // odd offset
  t.equal(tab.lookup(buf, 33, 4), "ten");
  t.equal(tab.lookup(buf, 32, 4), "ones", "one byte earlier reads the filler");
  buf.set([0xfd, 0x77, ...new Array<number>(14).fill(0)], 81);
  t.equal(tab.lookup(buf, 81, 6), "fd77");
  t.equal(tab.lookup(buf, 79, 6), "ffff", "two bytes earlier reads ff ff");
  t.end();
});

t.test("agrees with a linear scan on random prefixes and addresses", (t) => {
  let seed = 0x1234567;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const u32 = (): number => Math.floor(rand() * 2 ** 32) >>> 0;
  const prefixes: { net: number; len: number; name: string }[] = [];
  const tab = new PrefixTable<string>();
  const seen = new Set<string>();
  // A handful of base addresses so that prefixes nest and overlap.
  const bases = Array.from({ length: 4 }, u32);
  while (prefixes.length < 60) {
    const len = Math.floor(rand() * 33);
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const net = (bases[Math.floor(rand() * bases.length)] & mask) >>> 0;
    const key = `${net}/${len}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const name = `p${prefixes.length}`;
    prefixes.push({ net, len, name });
    const bytes = Uint8Array.of(net >>> 24, (net >>> 16) & 0xff, (net >>> 8) & 0xff, net & 0xff);
    tab.insert({ family: 4, bytes, length: len }, name);
  }
  let wrong = 0;
  for (let n = 0; n < 3000; n++) {
    // Mostly near a base address (flip a few low bits), sometimes anywhere.
    const addr = rand() < 0.8 ? (bases[n % bases.length] ^ Math.floor(rand() * 2 ** Math.floor(rand() * 32))) >>> 0 : u32();
    let best: { len: number; name: string } | null = null;
    for (const p of prefixes) {
      const mask = p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0;
      if (((addr & mask) >>> 0) === p.net && (best === null || p.len > best.len)) best = p;
    }
    const bytes = Uint8Array.of(addr >>> 24, (addr >>> 16) & 0xff, (addr >>> 8) & 0xff, addr & 0xff);
    if (tab.lookup(bytes, 0, 4) !== (best?.name ?? null)) wrong++;
  }
  t.equal(wrong, 0, "3000 lookups");
  t.end();
});
