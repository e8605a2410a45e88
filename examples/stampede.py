#!/usr/bin/env python3
"""Cache stampede control with leases: CLIENTS threads read one hot key through GETLEASE while
it is about to expire. Exactly one of them gets a lease and rebuilds the value (a slow
"database query"); the others keep getting the old value meanwhile, and everyone ends with
the new one. Then the same with the key missing: the others are told how long to wait.

    python3 examples/stampede.py --port 6379 [--clients 200]
"""

import argparse
import sys
import threading
import time

import redis


def storm(args, key, expiring):
    r = redis.Redis(host=args.host, port=args.port)
    r.delete(key)
    if expiring:
        r.set(key, "old", px=1200)
    rebuilds = []
    start = threading.Barrier(args.clients)

    def client():
        con = redis.Redis(host=args.host, port=args.port)
        start.wait()
        deadline = time.time() + 30
        while time.time() < deadline:
            value, token, wait_ms = con.execute_command("GETLEASE", key, 1000)
            if token:
                rebuilds.append(token)
                time.sleep(0.1)  # the database query
                con.execute_command("SETLEASE", key, token, "new", "EX", 300)
                continue
            if value == b"new":
                return
            time.sleep(min(max(wait_ms, 10), 50) / 1000)
        raise SystemExit("the value was never rebuilt")

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = "about to expire" if expiring else "missing"
    print("%s: %d clients, %d rebuild(s)" % (state, args.clients, len(rebuilds)))
    if len(rebuilds) != 1:
        print("FAILED: expected exactly one rebuild")
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--clients", type=int, default=200)
    args = parser.parse_args()
    storm(args, "stampede:hot", True)
    storm(args, "stampede:cold", False)
    print("stampede: one rebuild each time")


if __name__ == "__main__":
    main()
