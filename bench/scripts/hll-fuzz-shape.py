#!/usr/bin/env python3
"""The shape of Redis's unit/hyperloglog fuzz test through redis-py: each round DEL, PFADD of
0-3,000 random elements, STRLEN and SETRANGE of a random byte up to five times, PFCOUNT.
Prints the whole run's time, PFADD's time as the client sees it, and the rest of a round.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/hll-fuzz-shape.py PORT [ROUNDS]
"""
import random
import sys
import time

import redis


def main():
    port = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    client = redis.Redis(port=port)
    random.seed(7)
    adding = other = 0.0
    elements = 0
    started = time.perf_counter()
    for _ in range(rounds):
        client.delete("hll")
        items = [str(random.random()) for _ in range(random.randrange(3000))]
        elements += len(items)
        at = time.perf_counter()
        if items:
            client.pfadd("hll", *items)
        adding += time.perf_counter() - at
        at = time.perf_counter()
        for _ in range(5):
            length = client.strlen("hll")
            if length:
                client.setrange("hll", random.randrange(length), bytes([random.randrange(256)]))
            if random.random() < 0.5:
                break
        try:
            client.pfcount("hll")
        except redis.ResponseError:
            pass
        other += time.perf_counter() - at
    total = time.perf_counter() - started
    print(f"port {port}: {rounds} rounds {total:.2f} s; PFADD {adding / rounds * 1e3:.3f} ms a call "
          f"({adding / max(elements, 1) * 1e9:.0f} ns an element); rest {other / rounds * 1e3:.3f} ms a round")


if __name__ == "__main__":
    main()
