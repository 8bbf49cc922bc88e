// The peer filter's BPF program (src/native/filter_program.h), run by a C program
// (test/native/peer_filter_test.c) on real loopback UDP sockets in a network namespace of its
// own: IPv4, IPv6-only and dual-stack receivers, probed from chosen addresses and ports.
// Plain mode: peers are admitted; strangers and near misses are refused. Wireguard mode: peers
// are admitted with any payload, strangers only with an exact handshake message; on a socket
// with UDP_GRO, two initiations in one skb are judged as one datagram (a stranger's dropped,
// a peer's admitted whole). Long programs
// (the jump past 300 IPv4 blocks, the 817/370 and 814/369 endpoint limits) attach and still
// judge the last peer and a stranger right. Then the binding (udpFilter through setPeerFilter)
// on a real socket: the modes the addon exports, the lengths and limits per mode, a bad mode
// refused. Needs root (the C program creates the namespace), as the end-to-end tests do.
import t from "tap";
import { assertCases, buildNative } from "./lib/native-program.ts";
import { addon, FILTER_PLAIN, FILTER_WIREGUARD } from "../../src/native/addon.ts";
import { closeUdp, openUdp, setPeerFilter } from "../../src/native/udp.ts";
import { encodeEndpoint, parseIp } from "../../src/net/address.ts";

assertCases(t, buildNative("peer_filter_test", []));

t.test("udpFilter's modes through setPeerFilter, on a real socket", (t) => {
  t.equal(typeof FILTER_PLAIN, "number", "FILTER_PLAIN exported by the addon");
  t.equal(typeof FILTER_WIREGUARD, "number", "FILTER_WIREGUARD exported by the addon");
  t.not(FILTER_PLAIN, FILTER_WIREGUARD, "two distinct modes");
  const sock = openUdp(parseIp("::")!, 0, 1 << 16, 1 << 16);
  t.teardown(() => closeUdp(sock));
  const v4 = (i: number): Uint8Array => encodeEndpoint(parseIp(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`)!, 1);
  const v6 = (i: number): Uint8Array => encodeEndpoint(parseIp(`fd00:9::${i.toString(16)}`)!, 1);
  const many = (n: number, f: (i: number) => Uint8Array): Uint8Array[] => Array.from({ length: n }, (_, i) => f(i));
  // Lengths of filter_program.h's layout: the wireguard shape is the plain one plus the
  // 12-instruction handshake check, or that check alone without endpoints.
  t.equal(setPeerFilter(sock, []), 1, "plain, no endpoints: one drop-all instruction");
  t.equal(setPeerFilter(sock, [], FILTER_WIREGUARD), 12, "wireguard, no endpoints: the handshake check alone");
  const one = setPeerFilter(sock, [v4(1), v6(1)], FILTER_PLAIN);
  t.equal(setPeerFilter(sock, [v4(1), v6(1)]), one, "the mode defaults to plain");
  t.equal(setPeerFilter(sock, [v4(1), v6(1)], FILTER_WIREGUARD), one + 12, "wireguard: the plain program plus the check");
  t.equal(setPeerFilter(sock, many(817, v4)), 4096, "plain: 817 IPv4 endpoints fill BPF_MAXINSNS");
  t.equal(setPeerFilter(sock, many(814, v4), FILTER_WIREGUARD), 4093, "wireguard: 814 IPv4 endpoints fit");
  t.throws(() => setPeerFilter(sock, many(815, v4), FILTER_WIREGUARD), { code: "E2BIG", message: /815 IPv4 .*\(wireguard\)/ },
    "wireguard: 815 IPv4 endpoints refused");
  t.equal(setPeerFilter(sock, many(369, v6), FILTER_WIREGUARD), 4089, "wireguard: 369 IPv6 endpoints fit");
  t.throws(() => setPeerFilter(sock, many(370, v6), FILTER_WIREGUARD), { code: "E2BIG" }, "wireguard: 370 IPv6 endpoints refused");
  t.equal(setPeerFilter(sock, many(370, v6)), 4088, "plain: 370 IPv6 endpoints still fit");
  const named = `mode (7) must be FILTER_PLAIN (${FILTER_PLAIN}) or FILTER_WIREGUARD (${FILTER_WIREGUARD})`;
  t.throws(() => setPeerFilter(sock, [v4(1)], 7), { code: "EINVAL", message: named }, "another mode refused, naming the value");
  t.throws(() => addon.udpFilter(sock.fd, sock.v6, new Uint8Array(20), 0), { code: "EINVAL", message: /mode \(missing\)/ },
    "a missing mode refused");
  t.end();
});
