#!/usr/bin/env python3
"""Time of one single-key MIGRATE, for one or more Ember builds side by side.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/migrate-latency.py THREADS ROUNDS NAME=BINARY...

Starts a redis-server target and, for each round and each build in turn, a fresh
`ember --threads THREADS`, fills 600 100-byte strings, then moves them one MIGRATE at a time
and prints the median and 90th percentile of the round's MIGRATE times (microseconds).
"""
import socket
import subprocess
import sys
import time

import redis


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port):
    for _ in range(200):
        try:
            redis.Redis(port=port).ping()
            return
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answers on port {port}")


def one_round(binary, threads, target_port, keys=600):
    port = free_port()
    server = subprocess.Popen(
        [binary, "--threads", str(threads), "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port)
        redis.Redis(port=target_port).flushall()
        source = redis.Redis(port=port)
        for i in range(keys):
            source.set(f"k{i}", "x" * 100)
        times = []
        for i in range(keys):
            started = time.perf_counter()
            source.execute_command("MIGRATE", "127.0.0.1", target_port, f"k{i}", 0, 5000)
            times.append((time.perf_counter() - started) * 1e6)
        times.sort()
        return times[len(times) // 2], times[len(times) * 9 // 10]
    finally:
        server.kill()
        server.wait()


def main():
    threads, rounds = int(sys.argv[1]), int(sys.argv[2])
    builds = [arg.split("=", 1) for arg in sys.argv[3:]]
    target_port = free_port()
    target = subprocess.Popen(
        ["redis-server", "--port", str(target_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_ready(target_port)
        results = {name: [] for name, _ in builds}
        for _ in range(rounds):
            for name, binary in builds:
                results[name].append(one_round(binary, threads, target_port))
        for name, rows in results.items():
            medians = sorted(p50 for p50, _ in rows)
            shown = ", ".join(f"{p50:.0f}/{p90:.0f}" for p50, p90 in rows)
            print(f"{name}: p50/p90 us per MIGRATE by round [{shown}]; median p50 {medians[len(medians) // 2]:.0f} us")
    finally:
        target.kill()
        target.wait()


if __name__ == "__main__":
    main()
