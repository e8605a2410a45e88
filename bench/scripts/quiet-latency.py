#!/usr/bin/env python3
"""Latency of a request sent after a quiet spell: one raw TCP client (TCP_NODELAY) sleeps for
the gap, sends one request, and times its reply, 41 times; prints the median and p90.

    python3 bench/scripts/quiet-latency.py PORT GAP_SECONDS [VALUE_BYTES]

With VALUE_BYTES, the request is a SET of that many bytes sent in 6 KB pieces (as redis-py
sends large commands); without, a PING. Run it against ember and redis-server in turn.
"""
import socket
import sys
import time


def main():
    port, gap = int(sys.argv[1]), float(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    client = socket.create_connection(("127.0.0.1", port))
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if size:
        request = b"*3\r\n$3\r\nSET\r\n$2\r\ngk\r\n$%d\r\n%s\r\n" % (size, b"x" * size)
    else:
        request = b"*1\r\n$4\r\nPING\r\n"
    times = []
    for _ in range(41):
        time.sleep(gap)
        started = time.perf_counter()
        for at in range(0, len(request), 6000):
            client.sendall(request[at:at + 6000])
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += client.recv(100)
        times.append(time.perf_counter() - started)
    times.sort()
    print(f"port {port} gap {gap * 1e3:.1f} ms, {size or 'PING'}: "
          f"median {times[20] * 1e3:.3f} ms, p90 {times[36] * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
