#!/usr/bin/env python3
"""One client's GET round trip against Ember in its default configuration (one shard per core)
and redis-server, side by side: sequential GETs of random keys on one connection, with a pause
of 0, 1 and 5 ms before each (an application that is not a benchmark sends requests with gaps,
and the gap decides whether a shard is spinning, asleep in its ring or parked when a request
comes). Ember's keys are split by the shard that owns them (CRC16 slot, contiguous ranges): the
connection lives on one shard, so one group is served locally and the other crosses the mesh.

    python3 bench/scripts/remote-latency.py [--ember target/release/ember] [--requests 400]
        [--connections 3]

Prints the median and 90th percentile round trip in microseconds per case (over all
connections; each connection lands on a shard by the kernel's SO_REUSEPORT hash).
"""
import argparse
import random
import socket
import statistics
import time

# The servers are started as collection_memory.py starts them (this script's folder is first on
# Python's path when it runs).
from collection_memory import free_port, start

SLOTS = 16384


def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def round_trips(port, requests, gap, shards):
    """Round trips in microseconds by owner shard (one group for Redis)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    by_shard = {}
    for _ in range(requests):
        key = b"latency:%d" % random.randrange(10**12)
        owner = (crc16(key) % SLOTS) * shards // SLOTS
        if gap:
            time.sleep(gap)
        request = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
        started = time.perf_counter()
        sock.sendall(request)
        reply = sock.recv(64)
        elapsed = (time.perf_counter() - started) * 1e6
        if reply != b"$-1\r\n":
            raise RuntimeError(f"unexpected reply {reply!r}")
        by_shard.setdefault(owner, []).append(elapsed)
    sock.close()
    return by_shard


def summary(values):
    values = sorted(values)
    return statistics.median(values), values[int(len(values) * 0.9)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ember", default="target/release/ember")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--connections", type=int, default=3)
    options = parser.parse_args()
    ember_port, redis_port = free_port(), free_port()
    ember = start([options.ember, "--port", str(ember_port), "--bind", "127.0.0.1"], ember_port)
    redis = start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no"], redis_port)
    try:
        print("| gap | Ember p50 / p90 (us), each connection: local keys; keys of the other shard"
              " | Redis p50 / p90 (us) |")
        print("|---|---|---:|")
        for gap in (0, 0.001, 0.005):
            ember_cells, redis_all = [], []
            for _ in range(options.connections):
                groups = round_trips(ember_port, options.requests, gap, 2)
                # The faster group is the connection's own shard.
                ordered = sorted(groups.values(), key=statistics.median)
                ember_cells.append("; ".join("%.0f / %.0f" % summary(v) for v in ordered))
                redis_all += round_trips(redis_port, options.requests, gap, 1)[0]
            print("| %g ms | %s | %.0f / %.0f |" % (gap * 1000, " -- ".join(ember_cells),
                                                     *summary(redis_all)))
    finally:
        for process in (ember, redis):
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
