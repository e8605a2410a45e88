#!/usr/bin/env python3
"""A fresh connection's first command: connect, send PING, read PONG, close, TRIES times with
GAP_MS between tries; prints the median and 90th percentile in microseconds (the connect is
included, as an application without a connection pool pays it). Run it against ember and
redis-server in turn.

    python3 bench/scripts/first-command-latency.py PORT [TRIES] [GAP_MS]
"""
import socket
import statistics
import sys
import time


def main():
    port = int(sys.argv[1])
    tries = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    gap = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.002
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        client = socket.create_connection(("127.0.0.1", port))
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = client.recv(100)
        assert reply == b"+PONG\r\n", reply
        times.append(time.perf_counter() - started)
        client.close()
        time.sleep(gap)
    times.sort()
    print(f"port {port}: first PING median {statistics.median(times) * 1e6:.0f} us, "
          f"p90 {times[int(tries * 0.9)] * 1e6:.0f} us")


if __name__ == "__main__":
    main()
