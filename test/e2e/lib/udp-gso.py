#!/usr/bin/env python3
"""UDP datagrams sent with UDP_SEGMENT (one send, many datagrams) and checked on receipt.

  udp-gso.py recv ADDR PORT SIZE               prints READY, then one JSON line when idle 1 s
  udp-gso.py send ADDR PORT SIZE COUNT PER     sends COUNT datagrams, PER per send

Datagram i holds its index and a pattern derived from it; every fourth send's last
datagram is cut SHORT bytes shorter, so the receiver accepts exactly those two lengths.
"""
import hashlib
import json
import socket
import struct
import sys
import time

UDP_SEGMENT = 103
SHORT = 100


def payload(i, size):
    seed = hashlib.sha256(struct.pack("!I", i)).digest()
    body = (seed * (size // len(seed) + 1))[: size - 4]
    return struct.pack("!I", i) + body


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def recv(addr, port, size):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind((addr, port))
    print("READY", flush=True)
    seen, intact, corrupt, dup = set(), 0, 0, 0
    s.settimeout(10)  # the first datagram
    while True:
        try:
            data = s.recv(65535)
        except socket.timeout:
            break
        s.settimeout(1)
        if len(data) < 4:
            corrupt += 1
            continue
        (i,) = struct.unpack("!I", data[:4])
        want = payload(i, size)
        if len(data) not in (size, size - SHORT) or data != want[: len(data)]:
            corrupt += 1
        elif i in seen:
            dup += 1
        else:
            seen.add(i)
            intact += 1
    print(json.dumps({"intact": intact, "corrupt": corrupt, "duplicates": dup}), flush=True)


def send(addr, port, size, count, per):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_UDP, UDP_SEGMENT, size)
    s.connect((addr, port))
    i = sends = 0
    while i < count:
        n = min(per, count - i)
        parts = [payload(i + j, size) for j in range(n)]
        if sends % 4 == 3:
            parts[-1] = parts[-1][: size - SHORT]
        s.send(b"".join(parts))
        i += n
        sends += 1
        if sends % 8 == 0:
            time.sleep(0.002)  # pacing: a few hundred Mbit/s, well under what the tunnel carries
    print(json.dumps({"sent": count}), flush=True)


if __name__ == "__main__":
    mode, addr, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "recv":
        recv(addr, port, size)
    else:
        send(addr, port, size, int(sys.argv[5]), int(sys.argv[6]))
