// Known answers and reference flows ported as data from wireguard-go (device/kdf_test.go,
// device/cookie_test.go, ratelimiter/ratelimiter_test.go), plus the wire sizes and TAI64N.
import t from "tap";
import { CookieChecker, CookieGenerator } from "../../src/wireguard/cookie.ts";
import { COOKIE_REFRESH_TIME, COOKIE_REPLY_SIZE, INITIATION_SIZE, RESPONSE_SIZE } from "../../src/wireguard/constants.ts";
import { hash, kdf1, kdf2, kdf3, mac, tai64n, timestampAfter } from "../../src/wireguard/crypto.ts";
import {
  decodeCookieReply, decodeInitiation, decodeResponse, encodeCookieReply, encodeInitiation, encodeResponse, handshakeType,
} from "../../src/wireguard/messages.ts";
import { RateLimiter } from "../../src/wireguard/ratelimiter.ts";
import { generatePrivateKey, publicKeyOf } from "../../src/wireguard/x25519.ts";
import { endpoint, seededRandom } from "./lib/wg-world.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

t.test("KDF1/2/3: wireguard-go's kdf_test.go vectors", (t) => {
  const vectors = [
    {
      key: "746573742d6b6579", input: "746573742d696e707574",
      t0: "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
      t1: "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
      t2: "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24",
    },
    {
      key: "776972656775617264", input: "776972656775617264",
      t0: "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
      t1: "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
      t2: "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160",
    },
    {
      key: "", input: "",
      t0: "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
      t1: "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
      t2: "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e",
    },
  ];
  for (const v of vectors) {
    const [a, b, c] = kdf3(hex(v.key), hex(v.input));
    t.same([toHex(a), toHex(b), toHex(c)], [v.t0, v.t1, v.t2], `KDF3 ${v.key}`);
    const [d, e] = kdf2(hex(v.key), hex(v.input));
    t.same([toHex(d), toHex(e)], [v.t0, v.t1], `KDF2 ${v.key}`);
    t.equal(toHex(kdf1(hex(v.key), hex(v.input))), v.t0, `KDF1 ${v.key}`);
  }
  t.end();
});

t.test("BLAKE2s: RFC 7693 appendix B, and the keyed 16-byte MAC is not a truncated hash", (t) => {
  t.equal(toHex(hash(new TextEncoder().encode("abc"))), "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  const key = new Uint8Array(32).fill(7);
  const m = mac(key, Uint8Array.of(1, 2, 3));
  t.equal(m.length, 16);
  t.not(toHex(m), toHex(hash(key, Uint8Array.of(1, 2, 3))).slice(0, 32));
  t.end();
});

// The messages of cookie_test.go, as data.
const MAC1_MESSAGES = [
  "99bba5fc99aa83bd7b00c59a4cb9cf624023f38ed8d062645db28013dacec69161d630f132b3a2f47b43b5a7e2b1f56c746bb0cd1f94867bc8fb92ed549b44f5c87db78eff49c4e8397c19e0601951f8e48e02f17f1dcc8eb007fff8af7f668283cc7cfa80db8153adf7d80c10e020fde80b3f9015cd93ad0bd50ccc8856e43f",
  "33e72a849fff576c2dc32de1f55c9756b893c27dd441dd7a4a593b50dd7a7a8c9b96af553ceb6d0b130b9798b340c3ccb85733456e8b092b812ed2b9660b9305",
  "9b96af553ceb6d0b130b9798b340c3ccb85733456e8b092b812ed2b9660b9305",
];
const COOKIE_REQUEST = "6dd7c32eb076d8df30657d623ef89ae8e73c64a37848daf5256128537932869fa0279569b6bad0a2f868eaa862f2fd1be0b480e56b3a169e35f6a8f24f9a7be9770bc2b4edbaf922c30397429f797427fef9066e973aa68fc9570a544c644ae24fa1ce959b23a92b859342b0a553edeb632af16d46cb2f618ce1e8fa6720806d";
const MAC2_MESSAGES = [
  "0331b99eb02a54a3c13fb49616b925153d3a82f95836863f132ffeb253208c3fbaebfb4b1b2202692c90bcdccfcf85eb62666fe8e1a6a84ca004231542acfa38",
  "0e2f0ea92903e1f3240175ad16a56685ca66e0bdc634d884099a5814fb05daf590f50c4e2210c9850fe37735e96bc2553246ae25e0e3377a4b71ccfc91dfd6cafeeece3f77a2fd598e730a8d5c2414ca3891b82c8ca2657bbc49bcb558fce3d702cff74c6091ed55e9f9fed1442c75f2b35d7b2756c0484fb0bae47dd0aacd3de350d2cfb9fa4b2dc6df3b329845e68f1c5ca2207d1c28c2d4a1e021528f1cd0629748bbf4a9cb35f207d350d8a9c59a0fbd37afe14519ee41f3f7e5e0303fbe3d3964007a1a515ee1700bb9775af0c48aa13a771ae0c20691d5e91cd3feab931a0a4cbbf0ffdcaa6173cb034b7168643d823141d78b227b7da1d5856df01baa",
];

t.test("MAC1, cookie reply and MAC2: cookie_test.go's flow", (t) => {
  const pk = publicKeyOf(generatePrivateKey());
  const generator = new CookieGenerator(pk);
  const checker = new CookieChecker(pk, seededRandom(3));
  const src = Uint8Array.of(192, 168, 13, 37, 10, 10, 10);
  let now = 5_000;

  for (const m of MAC1_MESSAGES) {
    const msg = hex(m);
    generator.addMacs(msg, now);
    t.ok(checker.checkMac1(msg), "mac1 verifies");
    t.notOk(checker.checkMac2(msg, src, now), "no cookie yet: mac2 does not");
    t.ok(msg.subarray(msg.length - 16).every((b) => b === 0), "mac2 left zero without a cookie");
  }

  const request = hex(COOKIE_REQUEST);
  generator.addMacs(request, now);
  const reply = checker.createReply(request, src, now);
  t.equal(reply.length, COOKIE_REPLY_SIZE);
  t.equal(decodeCookieReply(reply)!.receiver, Buffer.from(request).readUInt32LE(4), "the reply names the request's sender index");
  const tampered = Uint8Array.from(reply);
  tampered[40] ^= 1;
  t.notOk(generator.consumeReply(tampered, now), "a tampered reply does not open");
  t.ok(generator.consumeReply(reply, now), "the reply opens under the last mac1");

  for (const m of MAC2_MESSAGES) {
    const msg = hex(m);
    generator.addMacs(msg, now);
    t.ok(checker.checkMac1(msg));
    t.ok(checker.checkMac2(msg, src, now), "mac2 verifies with the cookie");
    msg[5] ^= 0x20;
    t.notOk(checker.checkMac1(msg), "a flipped bit breaks mac1");
    t.notOk(checker.checkMac2(msg, src, now), "and mac2");
    msg[5] ^= 0x20;
    t.notOk(checker.checkMac2(msg, Uint8Array.of(192, 168, 13, 37, 40, 1), now), "another port: no");
    t.notOk(checker.checkMac2(msg, Uint8Array.of(192, 168, 13, 38, 40, 1), now), "another address: no");
  }

  now += COOKIE_REFRESH_TIME + 1;
  const stale = hex(MAC2_MESSAGES[0]);
  generator.addMacs(stale, now);
  t.ok(stale.subarray(stale.length - 16).every((b) => b === 0), "a cookie over 120 s old is not used");
  t.end();
});

t.test("message encodings: exact sizes, fields round-trip, anything else refused", (t) => {
  const k = (n: number, len = 32) => new Uint8Array(len).fill(n);
  const init = encodeInitiation({ sender: 0xdeadbeef, ephemeral: k(1), static: k(2, 48), timestamp: k(3, 28) });
  t.equal(init.length, INITIATION_SIZE);
  t.equal(INITIATION_SIZE, 148);
  t.same(Array.from(init.subarray(0, 8)), [1, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
  const d = decodeInitiation(init)!;
  t.equal(d.sender, 0xdeadbeef);
  t.same([d.ephemeral, d.static, d.timestamp], [k(1), k(2, 48), k(3, 28)]);
  t.equal(handshakeType(init), 1);
  t.equal(decodeInitiation(init.subarray(0, 147)), null, "one byte short");
  t.equal(handshakeType(Uint8Array.from([...init, 0])), 0, "one byte long");
  const reserved = Uint8Array.from(init);
  reserved[2] = 1;
  t.equal(handshakeType(reserved), 0, "nonzero reserved byte");

  const resp = encodeResponse({ sender: 7, receiver: 9, ephemeral: k(4), empty: k(5, 16) });
  t.equal(resp.length, RESPONSE_SIZE);
  t.equal(RESPONSE_SIZE, 92);
  t.same(decodeResponse(resp), { sender: 7, receiver: 9, ephemeral: k(4), empty: k(5, 16) });
  t.equal(decodeResponse(init), null, "an initiation is not a response");

  const cookie = encodeCookieReply({ receiver: 11, nonce: k(6, 24), cookie: k(7, 32) });
  t.equal(cookie.length, COOKIE_REPLY_SIZE);
  t.equal(COOKIE_REPLY_SIZE, 64);
  t.same(decodeCookieReply(cookie), { receiver: 11, nonce: k(6, 24), cookie: k(7, 32) });
  t.throws(() => encodeInitiation({ sender: 1, ephemeral: k(1, 31), static: k(2, 48), timestamp: k(3, 28) }), /ephemeral: 31 bytes, expected 32/);
  t.end();
});

t.test("TAI64N: seconds + 2^62 + 10, whitened nanoseconds, ordered as bytes", (t) => {
  t.equal(toHex(tai64n(0n)), "400000000000000a00000000");
  const ts = tai64n(1_700_000_000_123_456_789n);
  const v = Buffer.from(ts);
  t.equal(v.readBigUInt64BE(0), (1n << 62n) + 10n + 1_700_000_000n);
  t.equal(v.readUInt32BE(8), 123_456_789 & ~0xffffff, "nanoseconds rounded down to 2^24");
  t.ok(timestampAfter(tai64n(1_700_000_001_000_000_000n), ts));
  t.notOk(timestampAfter(ts, ts), "equal is not after");
  t.notOk(timestampAfter(tai64n(1_700_000_000_123_000_000n), ts), "within the same 2^24 ns: not after");
  t.end();
});

t.test("ratelimiter: ratelimiter_test.go's schedule over 14 addresses", (t) => {
  const cost = 1000 / 20;
  const schedule = [
    ...Array.from({ length: 5 }, () => ({ allowed: true, wait: 0, text: "initial burst" })),
    { allowed: false, wait: 0, text: "after burst" },
    { allowed: true, wait: cost, text: "filling tokens for single packet" },
    { allowed: false, wait: 0, text: "not having refilled enough" },
    { allowed: true, wait: 2 * cost, text: "filling tokens for two packet burst" },
    { allowed: true, wait: 0, text: "second packet in 2 packet burst" },
    { allowed: false, wait: 0, text: "packet following 2 packet burst" },
  ];
  const ips = [
    "127.0.0.1", "192.168.1.1", "172.167.2.3", "97.231.252.215", "248.97.91.167", "188.208.233.47", "104.2.183.179",
    "72.129.46.120", "2001:db8:a0b:12f0::1", "f5c2:818f:c052:655a:9860:b136:6894:25f0", "b2d7:15ab:48a7:b07c:a541:f144:a9fe:54fc",
    "a47b:786e:1671:a22b:d6f9:4ab0:abc7:c918", "ea1e:d155:7f7a:98fb:2bf5:9483:80f6:5445", "3f0e:54a2:f5b4:cd19:a21d:58e1:3746:84c4",
  ];
  const rate = new RateLimiter();
  let now = 0;
  for (const [i, step] of schedule.entries()) {
    now += step.wait + 1e-6; // the Go test sleeps d + 1 ns
    for (const ip of ips) {
      // The port changes every time: the bucket is per address.
      t.equal(rate.allow(endpoint(ip, 1000 + i), now), step.allowed, `${i}: ${step.text}: ${ip}`);
    }
  }
  t.equal(rate.size, ips.length);
  rate.sweep(now + 1001);
  t.equal(rate.size, 0, "idle entries are swept after a second");
  t.end();
});
