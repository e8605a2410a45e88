#!/usr/bin/env python3
"""Expiry storm (issue 14, "p99 latency while 10 million keys expire in one second").

For each server (ember, then redis-server 7, each started fresh and alone on the machine):
  1. a few thousand probe keys without a TTL (16-byte names and values);
  2. KEYS keys of 16-byte names and values, all `SET ... PXAT T` to one instant T, loaded by
     `redis-cli --pipe` from a protocol stream this script generates (every key distinct);
  3. from the end of the load until the expired keys are gone (plus --after-s seconds), a
     latency probe: --clients connections, each sending GET or SET (1:1) of the probe keys one at
     a time, open loop at --rate requests a second in all, latency measured from the time each
     request was due (so a stalled server is charged for the requests it kept waiting);
     a monitor connection reads DBSIZE, INFO memory and expired_keys every second.
Printed: one row per second around T (p50/p99/max of the probe, keys left, used_memory, RSS),
the baseline (the seconds before T - --quiet-s, no expiry work due), and the storm (T to the
second the keys are gone). --json writes everything.

    python3 bench/scripts/expiry-storm.py --ember target/debug/ember [--keys 10000000]
        [--threads 2] [--servers ember,redis] [--margin-s 120] [--rate 2000] [--clients 4]
        [--after-s 10] [--json PATH] [-- EXTRA EMBER ARGS]

T is fixed before the load: --margin-s (the time the load may take) plus --lead-s from its
start. A load that ends less than --quiet-s + 2 seconds before T stops the run with an error.
"""
import argparse
import json
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time

PROBE_KEYS = 4096
VALUE = b"v" * 16


def free_port():
    for _ in range(100):
        port = random.randint(20000, 29999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def encode(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class Conn:
    """A minimal blocking RESP client: enough for the probe and the monitor."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def send(self, *args):
        self.sock.sendall(encode(*args))

    def call(self, *args):
        self.send(*args)
        return self.reply()

    def close(self):
        self.sock.close()


def info_fields(conn, section):
    text = conn.call(b"INFO", section.encode()).decode()
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            name, value = line.split(":", 1)
            fields[name] = value.strip()
    return fields


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def start_server(kind, args, port):
    if kind == "ember":
        command = [args.ember, "--port", str(port), "--bind", "127.0.0.1",
                   "--threads", str(args.threads)] + args.ember_args
    else:
        command = [args.redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = Conn(port)
            if conn.call(b"PING") == b"PONG":
                return process, conn, command
        except (OSError, RuntimeError):
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} did not start: {' '.join(command)}")


def protocol(first, count, expire_at_ms):
    """SET exp:NNNNNNNNNNNN v*16 PXAT T for keys first..first+count, in chunks."""
    at = str(expire_at_ms).encode()
    head = b"*5\r\n$3\r\nSET\r\n$16\r\nexp:"
    tail = b"\r\n$16\r\n" + VALUE + b"\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n" % (len(at), at)
    step = 100_000
    for start in range(first, first + count, step):
        end = min(start + step, first + count)
        yield b"".join(head + b"%012d" % i + tail for i in range(start, end))


def load(port, first, count, expire_at_ms):
    """Pipes the SETs through redis-cli --pipe; returns the seconds it took."""
    started = time.time()
    pipe = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for chunk in protocol(first, count, expire_at_ms):
        pipe.stdin.write(chunk)
    pipe.stdin.close()
    output = pipe.stdout.read().decode()
    if pipe.wait() != 0 or "errors: 0" not in output:
        raise RuntimeError(f"redis-cli --pipe failed: {output}")
    return time.time() - started


def probe_client(port, rate, start, stop, samples, index, errors):
    """Open loop at `rate` requests a second: latency from each request's due time."""
    conn = Conn(port)
    rng = random.Random(index)
    interval = 1.0 / rate
    due = start + rng.random() * interval
    while not stop.is_set():
        now = time.time()
        if due > now:
            time.sleep(due - now)
        key = b"probe:%010d" % rng.randrange(PROBE_KEYS)
        sent = time.time()
        try:
            if rng.random() < 0.5:
                reply = conn.call(b"GET", key)
                if reply != VALUE:
                    errors.append(f"GET {key!r}: {reply!r}")
            else:
                reply = conn.call(b"SET", key, VALUE)
                if reply != b"OK":
                    errors.append(f"SET {key!r}: {reply!r}")
        except (OSError, RuntimeError) as error:
            errors.append(str(error))
            return
        done = time.time()
        samples.append((due, done - due, done - sent))
        due += interval
    conn.close()


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def summary(samples):
    """Latency from the due time (p50/p99/max), and service time (from the send, p99/max):
    a client that falls behind its schedule (a server slow to answer, or the probe itself
    starved of CPU) shows in the first; only the server's answer time in the second."""
    values = sorted(latency for _, latency, _ in samples)
    service = sorted(service for _, _, service in samples)
    return {
        "requests": len(values),
        "p50_ms": percentile(values, 0.50) * 1e3,
        "p99_ms": percentile(values, 0.99) * 1e3,
        "max_ms": (values[-1] if values else float("nan")) * 1e3,
        "service_p99_ms": percentile(service, 0.99) * 1e3,
        "service_max_ms": (service[-1] if service else float("nan")) * 1e3,
    }


def run_server(kind, args):
    port = free_port()
    process, conn, command = start_server(kind, args, port)
    result = {"server": kind, "command": " ".join(command), "keys": args.keys}
    try:
        pipe = b"".join(encode(b"SET", b"probe:%010d" % i, VALUE) for i in range(PROBE_KEYS))
        conn.sock.sendall(pipe)
        for _ in range(PROBE_KEYS):
            conn.reply()
        # When to expire: the load's end (at most --margin-s away) plus --lead-s.
        expire_at_ms = int((time.time() + args.margin_s + args.lead_s) * 1000)
        took = load(port, 0, args.keys, expire_at_ms)
        loaded_at = time.time()
        result["load_s"] = took
        result["expire_at_ms"] = expire_at_ms
        result["lead_s"] = expire_at_ms / 1000 - loaded_at
        size = conn.call(b"DBSIZE")
        if size != args.keys + PROBE_KEYS:
            raise RuntimeError(f"{kind}: DBSIZE {size} after the load, expected "
                               f"{args.keys + PROBE_KEYS}")
        if result["lead_s"] < args.quiet_s + 2:
            raise RuntimeError(f"{kind}: load ended {result['lead_s']:.1f} s before the expiry "
                               f"instant; raise --margin-s")
        print(f"{kind}: {args.keys} keys loaded in {took:.1f} s, expiring in "
              f"{result['lead_s']:.1f} s", file=sys.stderr)

        stop = threading.Event()
        samples = [[] for _ in range(args.clients)]
        errors = []
        start = time.time() + 0.2
        clients = [threading.Thread(target=probe_client,
                                    args=(port, args.rate / args.clients, start, stop,
                                          samples[i], i, errors))
                   for i in range(args.clients)]
        for client in clients:
            client.start()
        monitor = Conn(port)
        seconds = []
        gone_at = None
        t0 = expire_at_ms / 1000
        # Monitor ticks at T + whole seconds, so each row is one second of the storm.
        next_tick = t0 - math.floor(t0 - start)
        while True:
            time.sleep(max(0.0, next_tick - time.time()))
            now = time.time()
            memory = info_fields(monitor, "memory")
            stats = info_fields(monitor, "stats")
            keys_left = monitor.call(b"DBSIZE")
            seconds.append({
                "at": now,
                "keys": keys_left,
                "expired_keys": int(stats.get("expired_keys", 0)),
                "used_memory": int(memory.get("used_memory", 0)),
                "rss": rss_bytes(process.pid),
            })
            if keys_left <= PROBE_KEYS and gone_at is None and now * 1000 > expire_at_ms:
                gone_at = now
            if gone_at is not None and now - gone_at >= args.after_s:
                break
            if now * 1000 > expire_at_ms + args.limit_s * 1000:
                result["unfinished"] = True
                break
            if errors:
                break
            next_tick += 1.0
        stop.set()
        for client in clients:
            client.join()
        monitor.close()
        if errors:
            raise RuntimeError(f"{kind}: probe errors: {errors[:5]}")
        all_samples = [sample for client in samples for sample in client]
        rows = []
        for second in seconds:
            # The second ending at this monitor tick, relative to T.
            lo = second["at"] - 1.0
            in_second = [sample for sample in all_samples if lo <= sample[0] < second["at"]]
            row = summary(in_second)
            row.update({
                "second": round(second["at"] - 1.0 - t0),
                "keys_left": second["keys"] - PROBE_KEYS,
                "used_memory_mb": second["used_memory"] / 2**20,
                "rss_mb": second["rss"] / 2**20,
                "expired_keys": second["expired_keys"],
            })
            rows.append(row)
        result["seconds"] = rows
        result["baseline"] = summary(
            [sample for sample in all_samples if sample[0] < t0 - args.quiet_s])
        storm_end = gone_at if gone_at is not None else seconds[-1]["at"]
        result["storm"] = summary(
            [sample for sample in all_samples if t0 <= sample[0] < storm_end])
        result["storm_s"] = storm_end - t0
        result["after"] = summary([sample for sample in all_samples if sample[0] >= storm_end])
        result["memory_before_mb"] = next(
            (s["used_memory"] for s in seconds if s["at"] < t0), 0) / 2**20
        result["memory_after_mb"] = seconds[-1]["used_memory"] / 2**20
        result["rss_before_mb"] = next((s["rss"] for s in seconds if s["at"] < t0), 0) / 2**20
        result["rss_after_mb"] = seconds[-1]["rss"] / 2**20
        return result
    finally:
        conn.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def print_result(result):
    print(f"\n{result['server']}: `{result['command']}`, {result['keys']:,} keys loaded in "
          f"{result['load_s']:.1f} s; expiry instant {result['lead_s']:.1f} s after the load; "
          f"keys gone {result['storm_s']:.1f} s after it")
    print("\n| second from T | requests | p50 ms | p99 ms | max ms | service p99 ms "
          "| service max ms | keys left | used_memory MB | RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in result["seconds"]:
        print(f"| {row['second']:+d} | {row['requests']} | {row['p50_ms']:.2f} | "
              f"{row['p99_ms']:.2f} | {row['max_ms']:.2f} | {row['service_p99_ms']:.2f} | "
              f"{row['service_max_ms']:.2f} | {row['keys_left']:,} | "
              f"{row['used_memory_mb']:.0f} | {row['rss_mb']:.0f} |")
    for name in ("baseline", "storm", "after"):
        s = result[name]
        print(f"{name}: {s['requests']} requests, p50 {s['p50_ms']:.2f} ms, p99 "
              f"{s['p99_ms']:.2f} ms, max {s['max_ms']:.2f} ms; service p99 "
              f"{s['service_p99_ms']:.2f} ms, max {s['service_max_ms']:.2f} ms")
    print(f"used_memory {result['memory_before_mb']:.0f} MB -> {result['memory_after_mb']:.0f} "
          f"MB, RSS {result['rss_before_mb']:.0f} MB -> {result['rss_after_mb']:.0f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ember", default="target/debug/ember")
    parser.add_argument("--redis-server", default="redis-server")
    parser.add_argument("--servers", default="ember,redis")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--margin-s", type=float, default=120,
                        help="seconds the load may take")
    parser.add_argument("--lead-s", type=float, default=15,
                        help="seconds from the load's end to the expiry instant")
    parser.add_argument("--quiet-s", type=float, default=5,
                        help="the baseline ends this many seconds before the instant")
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--after-s", type=float, default=5)
    parser.add_argument("--limit-s", type=float, default=300)
    parser.add_argument("--json")
    parser.add_argument("ember_args", nargs="*")
    args = parser.parse_args()
    results = []
    for kind in args.servers.split(","):
        load_average = os.getloadavg()[0]
        result = run_server(kind, args)
        result["load_average_1m_before"] = load_average
        result["load_average_1m_after"] = os.getloadavg()[0]
        results.append(result)
        print_result(result)
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
