#!/usr/bin/env python3
"""Bytes of used_memory per collection, Ember against Redis in the same run (issue 12's goal: at
most 0.8x Redis). Starts `ember --threads 2` and `redis-server` (no persistence) on free loopback
ports, and for each case flushes both, writes the collections over raw RESP (pipelined), waits for
the figures to settle and divides the growth of INFO used_memory by the number of collections.
Cases: hashes, lists, sets and sorted sets of 10 and of 1,000 elements, and one stream of 100,000
entries. Members are 13-byte strings ("member:000042"), hash values and stream values 12 bytes.

    python3 bench/scripts/collection_memory.py [--ember target/release/ember] [--rounds 3]

Each case runs `--rounds` times on each server, alternating, and the median is reported.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

CASES = [
    # (name, keys, elements per key, builder of one key's commands)
    ("hash", 10_000, 10), ("hash", 100, 1000),
    ("list", 10_000, 10), ("list", 100, 1000),
    ("set", 10_000, 10), ("set", 100, 1000),
    ("zset", 10_000, 10), ("zset", 100, 1000),
    ("stream", 1, 100_000),
]
BATCH = 100  # elements per command


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buffer = b""

    def pipeline(self, commands):
        """Sends `commands` and reads one reply per command (replies of this script are lines:
        integers, statuses and bulk strings of short stream IDs)."""
        self.sock.sendall(b"".join(encode(c) for c in commands))
        for _ in commands:
            self._reply()

    def _line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        if line.startswith(b"-"):
            raise RuntimeError(line.decode())
        if line.startswith(b"$") and line != b"$-1":
            self._line()
        elif line.startswith(b"*"):
            for _ in range(int(line[1:])):
                self._reply()
        return line

    def info_field(self, section, field):
        self.sock.sendall(encode([b"INFO", section.encode()]))
        header = self._line()
        size = int(header[1:])
        while len(self.buffer) < size + 2:
            self.buffer += self.sock.recv(1 << 16)
        text, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        for line in text.decode().splitlines():
            if line.startswith(field + ":"):
                return int(line.split(":")[1])
        raise KeyError(field)


def commands_for(kind, key, elements):
    """The commands that build one collection of `elements` elements at `key`."""
    out = []
    for start in range(0, elements, BATCH):
        chunk = range(start, min(elements, start + BATCH))
        if kind == "hash":
            args = [b"HSET", key]
            for i in chunk:
                args += [b"member:%06d" % i, b"value:%06d" % i]
        elif kind == "list":
            args = [b"RPUSH", key] + [b"member:%06d" % i for i in chunk]
        elif kind == "set":
            args = [b"SADD", key] + [b"member:%06d" % i for i in chunk]
        elif kind == "zset":
            args = [b"ZADD", key]
            for i in chunk:
                args += [b"%d" % i, b"member:%06d" % i]
        elif kind == "stream":
            for i in chunk:
                out.append([b"XADD", key, b"%d-1" % (i + 1), b"field", b"value:%06d" % i])
            continue
        out.append(args)
    return out


def settle(client):
    """used_memory once it stops moving (Ember's figure is refreshed by its shards)."""
    previous = None
    for _ in range(20):
        time.sleep(0.2)
        used = client.info_field("memory", "used_memory")
        if used == previous:
            return used
        previous = used
    return previous


def measure(port, kind, keys, elements):
    client = Client(port)
    client.pipeline([[b"FLUSHALL"]])
    before = settle(client)
    pending = []
    for k in range(keys):
        pending += commands_for(kind, b"%s:%06d" % (kind.encode(), k), elements)
        if len(pending) >= 50:
            client.pipeline(pending)
            pending = []
    if pending:
        client.pipeline(pending)
    after = settle(client)
    client.pipeline([[b"FLUSHALL"]])
    return (after - before) / keys


def start(argv, port):
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{argv[0]} did not listen on {port}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ember", default="target/release/ember")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    ember_port, redis_port = free_port(), free_port()
    ember = start([options.ember, "--threads", "2", "--port", str(ember_port),
                   "--bind", "127.0.0.1"], ember_port)
    redis = start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no"], redis_port)
    try:
        print("| collection | elements | keys | Ember bytes/collection | Redis bytes/collection"
              " | Ember / Redis |")
        print("|---|---:|---:|---:|---:|---:|")
        for kind, keys, elements in CASES:
            ember_figures, redis_figures = [], []
            for _ in range(options.rounds):
                ember_figures.append(measure(ember_port, kind, keys, elements))
                redis_figures.append(measure(redis_port, kind, keys, elements))
            e, r = statistics.median(ember_figures), statistics.median(redis_figures)
            print(f"| {kind} | {elements:,} | {keys:,} | {e:,.0f} | {r:,.0f} | {e / r:.2f}x |")
            sys.stdout.flush()
    finally:
        for process in (ember, redis):
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
