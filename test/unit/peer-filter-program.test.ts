// The peer filter's BPF program (src/native/filter_program.h), run by a C program
// (test/native/peer_filter_test.c) on real loopback UDP sockets in a network namespace of its
// own: IPv4, IPv6-only and dual-stack receivers, probed from chosen addresses and ports.
// Peers are admitted; strangers and near misses are refused; long programs (the jump past 300
// IPv4 blocks, the 817 and 370 endpoint limits) attach and still admit the last peer. Needs
// root (it creates the namespace), as the end-to-end tests do.
import t from "tap";
import { assertCases, buildNative } from "./lib/native-program.ts";

assertCases(t, buildNative("peer_filter_test", []));
