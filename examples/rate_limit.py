#!/usr/bin/env python3
"""Rate limiting inside the cache, three ways, under concurrent clients:

- CL.THROTTLE (redis-cell's GCRA): 10 requests per minute with bursts of 5 more,
- CL.WINDOW (an exact sliding window): at most 20 per 10 seconds,
- INCREX (Redis 8.8's bounded counter): at most 30 per minute, a fixed window that starts
  with the first request (EX 60 ENX).

CLIENTS threads send REQUESTS requests each against each limiter; exactly the limit must be
let through, however the requests interleave. Exits non-zero when a figure is wrong.

    python3 examples/rate_limit.py --port 6379 [--clients 50] [--requests 20]
"""

import argparse
import sys
import threading

import redis


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    r = redis.Redis(host=args.host, port=args.port)
    r.delete("rl:gcra", "rl:window", "rl:increx")
    allowed = {"throttle": 0, "window": 0, "increx": 0}
    lock = threading.Lock()

    def client():
        con = redis.Redis(host=args.host, port=args.port)
        mine = {"throttle": 0, "window": 0, "increx": 0}
        for _ in range(args.requests):
            limited, limit, remaining, retry_after, reset_after = con.execute_command(
                "CL.THROTTLE", "rl:gcra", 5, 10, 60)
            mine["throttle"] += 1 - limited
            limited = con.execute_command("CL.WINDOW", "rl:window", 20, 10000)[0]
            mine["window"] += 1 - limited
            value, applied = con.execute_command(
                "INCREX", "rl:increx", "UBOUND", 30, "EX", 60, "ENX")
            mine["increx"] += applied
        with lock:
            for name in allowed:
                allowed[name] += mine[name]

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = args.clients * args.requests
    expected = {"throttle": min(total, 6), "window": min(total, 20), "increx": min(total, 30)}
    for name, count in allowed.items():
        print("%-8s %d clients x %d requests: %d allowed (limit %d)"
              % (name, args.clients, args.requests, count, expected[name]))
        if count != expected[name]:
            print("FAILED: %s let %d through, expected %d" % (name, count, expected[name]))
            sys.exit(1)
    ttl = r.ttl("rl:increx")
    if not 0 < ttl <= 60:
        print("FAILED: INCREX's window has TTL %d" % ttl)
        sys.exit(1)
    print("rate_limit: all limits exact")


if __name__ == "__main__":
    main()
