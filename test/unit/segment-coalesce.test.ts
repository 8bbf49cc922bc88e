// The C of both offload paths, driven directly (test/native/segment_coalesce_test.c):
// send_segments splits crafted super-packets onto a loopback UDP socket, write_joined writes
// into a SOCK_SEQPACKET socketpair. Split -> join round trips of TCP and UDP over IPv4 and
// IPv6 come back byte for byte; every rule that must refuse a join is tried; checksums are
// judged by a plain RFC 1071 sum, not by csum.h.
import t from "tap";
import { assertCases, buildNative } from "./lib/native-program.ts";

const exe = buildNative("segment_coalesce_test", ["segment.c", "coalesce.c", "endpoint.c"]);
assertCases(t, exe);
