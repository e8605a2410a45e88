#!/usr/bin/env python3
"""The append-only file side by side: Ember (two shards, the default here) against redis-server 7.0.

For each server, alternating ROUNDS times:
  - writes with the log: `redis-benchmark -t set,incr,lpush -P P -n N -c 50 -d 16 -r 100000`
    at pipeline 1 and 16, with `appendonly no`, and `yes` under `appendfsync everysec` and
    `always`: requests per second (what the log costs each server);
  - the replay: KEYS string keys (16-byte values) written by pipelined SETs with the log on, the
    server killed (SIGKILL: nothing saved at exit), restarted: the time from the process's start
    to its first PONG with every key back (the log replayed command by command);
  - the rewrite: BGREWRITEAOF's reply, the time until INFO says it ended, and the longest GET a
    second client (a process of its own, a GET every millisecond) saw meanwhile; then the
    restart from the new base.
Prints each round, then the medians and Ember / Redis ratios.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/aof.py --ember target/release/ember
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import redis

sys.path.insert(0, os.path.dirname(__file__))
from snapshot import fill, free_port, info, start, watch_gets  # noqa: E402


def benchmark(port, pipeline, requests):
    """redis-benchmark's requests per second for SET, INCR and LPUSH."""
    output = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set,incr,lpush", "-P", str(pipeline),
         "-n", str(requests), "-c", "50", "-d", "16", "-r", "100000", "--csv"],
        capture_output=True, text=True, check=True,
    ).stdout
    rates = {}
    for line in output.splitlines():
        fields = line.replace('"', "").split(",")
        if fields[0] in ("SET", "INCR", "LPUSH"):
            rates[fields[0]] = float(fields[1])
    return rates


def command_for(name, binary, port, directory, fsync):
    if name == "ember":
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory]
    else:
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--dir", directory]
    if fsync is None:
        return command + ["--appendonly", "no"]
    return command + ["--appendonly", "yes", "--appendfsync", fsync,
                      "--auto-aof-rewrite-percentage", "0"]


def throughput_round(name, binary, requests):
    figures = {}
    for fsync in (None, "everysec", "always"):
        directory = tempfile.mkdtemp(prefix=f"aof-{name}-")
        port = free_port()
        try:
            process, _ = start(command_for(name, binary, port, directory, fsync), port, 0)
            for pipeline in (16, 1):
                n = requests if pipeline == 16 else requests // 8
                for test, rate in benchmark(port, pipeline, n).items():
                    figures[f"{test} P{pipeline} {fsync or 'off'}"] = rate
            process.kill()
            process.wait()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"{name}: " + ", ".join(f"{k} {v:,.0f}" for k, v in figures.items()), flush=True)
    return figures


def log_round(name, binary, keys):
    directory = tempfile.mkdtemp(prefix=f"aof-{name}-")
    port = free_port()
    command = command_for(name, binary, port, directory, "everysec")
    try:
        process, _ = start(command, port, 0)
        client = redis.Redis(port=port)
        while info(client, "aof_rewrite_in_progress"):
            time.sleep(0.01)
        fill(client, keys)
        time.sleep(1.2)  # everysec: the last second synced
        process.kill()
        process.wait()
        process, replay_s = start(command, port, keys)
        client = redis.Redis(port=port)
        watcher = watch_gets(port, 1.5)
        time.sleep(0.1)
        began = time.perf_counter()
        client.bgrewriteaof()
        reply_s = time.perf_counter() - began
        while info(client, "aof_rewrite_in_progress") or info(client, "aof_rewrite_scheduled"):
            time.sleep(0.001)
        done_s = time.perf_counter() - began
        worst = float(watcher.stdout.readline())
        watcher.wait()
        status = info(client, "aof_last_bgrewrite_status")
        process.kill()
        process.wait()
        process, base_s = start(command, port, keys)
        loaded = redis.Redis(port=port).dbsize()
        process.kill()
        process.wait()
        assert status == "ok" and loaded == keys, (status, loaded)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    figures = {
        "replay_s": replay_s,
        "rewrite_reply_s": reply_s,
        "rewrite_done_s": done_s,
        "worst_get_s": worst,
        "restart_from_base_s": base_s,
    }
    print(
        f"{name}: replay of {keys:,} SETs {replay_s:.3f} s; BGREWRITEAOF reply {reply_s * 1e3:.1f} ms, "
        f"done {done_s:.3f} s, worst GET meanwhile {worst * 1e3:.1f} ms; restart from the base "
        f"{base_s:.3f} s",
        flush=True,
    )
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ember", required=True)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    results = {"ember": [], "redis": []}
    for _ in range(args.rounds):
        for name in ("ember", "redis"):
            figures = throughput_round(name, args.ember, args.requests)
            figures.update(log_round(name, args.ember, args.keys))
            results[name].append(figures)
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    print(f"\nmedians of {args.rounds} rounds ({args.keys:,} keys for the log's figures):")
    print("| figure | Ember | Redis | Ember / Redis (median of rounds) |\n|---|---:|---:|---:|")
    for figure in results["ember"][0]:
        ours = statistics.median(r[figure] for r in results["ember"])
        theirs = statistics.median(r[figure] for r in results["redis"])
        ratios = [e[figure] / r[figure] for e, r in zip(results["ember"], results["redis"])
                  if r[figure] > 0]
        unit = " s" if figure.endswith("_s") else " req/s"
        print(f"| {figure} | {ours:,.3f}{unit} | {theirs:,.3f}{unit} | "
              f"{statistics.median(ratios):.2f}x |")


if __name__ == "__main__":
    main()
