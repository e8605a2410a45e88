#!/usr/bin/env python3
"""RDB snapshots side by side: Ember (two shards, the default here) against redis-server 7.0.

For each server, alternating ROUNDS times: KEYS string keys (16-byte values) loaded by pipelined
SETs, then
  - SAVE: the command's time as the client sees it, and the file's size;
  - BGSAVE: the reply's time, the time until INFO says the save ended, and the longest GET a
    second client (a process of its own) saw in the 1.5 s around it (a GET every millisecond:
    the pause that clients notice; 1.5 s covers both servers' saves of a million keys);
    Redis's `latest_fork_usec` beside it;
  - the restart: from the process's start to its first PONG with every key loaded.
Prints each round, then the medians and Ember / Redis ratios.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/snapshot.py --ember target/release/ember
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command, port, keys):
    """Starts `command`; returns (process, seconds until it answers PING with `keys` keys)."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    while True:
        try:
            if client.ping() and client.dbsize() >= keys:
                return process, time.perf_counter() - began
        except redis.exceptions.ConnectionError:
            pass
        except redis.exceptions.BusyLoadingError:
            pass
        if process.poll() is not None:
            sys.exit(f"{command[0]} exited with {process.returncode}")
        time.sleep(0.002)


def info(client, field):
    for section in ("persistence", "stats"):
        value = client.info(section).get(field)
        if value is not None:
            return value
    return None


def fill(client, keys):
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        pipe.set(f"key:{i:010d}", f"value:{i:010d}")
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()


# A second client in a process of its own (a thread would wait for this one's GIL): a GET every
# millisecond for the given seconds, then the longest one, in seconds.
WATCHER = """
import sys, time, redis
client = redis.Redis(port=int(sys.argv[1]))
end = time.perf_counter() + float(sys.argv[2])
worst = 0.0
print("ready", flush=True)
while time.perf_counter() < end:
    began = time.perf_counter()
    client.get("key:0000000001")
    worst = max(worst, time.perf_counter() - began)
    time.sleep(0.001)
print(worst, flush=True)
"""


def watch_gets(port, seconds):
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, str(port), str(seconds)],
        stdout=subprocess.PIPE, text=True, env=os.environ,
    )
    assert watcher.stdout.readline().strip() == "ready"
    return watcher


def one_round(name, command, port, keys, directory):
    process, _ = start(command, port, 0)
    client = redis.Redis(port=port)
    fill(client, keys)
    assert client.dbsize() == keys, client.dbsize()
    began = time.perf_counter()
    client.save()
    save_s = time.perf_counter() - began
    size = os.path.getsize(os.path.join(directory, "dump.rdb"))
    watcher = watch_gets(port, 1.5)
    time.sleep(0.1)
    began = time.perf_counter()
    client.bgsave()
    reply_s = time.perf_counter() - began
    while info(client, "rdb_bgsave_in_progress"):
        time.sleep(0.001)
    done_s = time.perf_counter() - began
    worst = [float(watcher.stdout.readline())]
    watcher.wait()
    fork_us = info(client, "latest_fork_usec")
    status = info(client, "rdb_last_bgsave_status")
    process.kill()
    process.wait()
    process, load_s = start(command, port, keys)
    loaded = redis.Redis(port=port).dbsize()
    process.kill()
    process.wait()
    assert status == "ok" and loaded == keys, (status, loaded)
    figures = {
        "save_s": save_s,
        "bgsave_reply_s": reply_s,
        "bgsave_done_s": done_s,
        "worst_get_s": worst[0],
        "load_s": load_s,
        "file_bytes": size,
    }
    print(
        f"{name}: SAVE {save_s:.3f} s, file {size:,} bytes; BGSAVE reply {reply_s * 1e3:.1f} ms, "
        f"done {done_s:.3f} s, worst GET meanwhile {worst[0] * 1e3:.1f} ms"
        + (f", latest_fork_usec {fork_us}" if fork_us is not None else "")
        + f"; restart to all keys {load_s:.3f} s",
        flush=True,
    )
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ember", required=True)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    results = {"ember": [], "redis": []}
    for _ in range(args.rounds):
        for name in ("ember", "redis"):
            directory = tempfile.mkdtemp(prefix=f"snapshot-{name}-")
            port = free_port()
            if name == "ember":
                command = [args.ember, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory]
            else:
                command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--dir", directory]
            try:
                results[name].append(one_round(name, command, port, args.keys, directory))
            finally:
                shutil.rmtree(directory, ignore_errors=True)
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    print(f"\nmedians of {args.rounds} rounds, {args.keys:,} keys:")
    print("| figure | Ember | Redis | Ember / Redis |\n|---|---:|---:|---:|")
    for figure in results["ember"][0]:
        ours = statistics.median(r[figure] for r in results["ember"])
        theirs = statistics.median(r[figure] for r in results["redis"])
        unit = "" if figure == "file_bytes" else " s"
        print(f"| {figure} | {ours:,.3f}{unit} | {theirs:,.3f}{unit} | {ours / theirs:.2f}x |")


if __name__ == "__main__":
    main()
