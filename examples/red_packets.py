#!/usr/bin/env python3
"""Red packets: a sender pre-splits an amount into random packets pushed on a list; N concurrent
clients claim packets with LPOP until the list is empty. Checks that every packet is claimed
exactly once and the claimed amounts add up to the total.

    python3 examples/red_packets.py [--port 6379] [--clients 1000] [--packets 5000] [--total 100000]

Works against Ember and Redis alike (redis-py). Exit status 0 when every check holds.
"""
import argparse
import random
import threading

import redis


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--packets", type=int, default=5000)
    parser.add_argument("--total", type=int, default=100000)
    options = parser.parse_args()
    admin = redis.Redis(port=options.port)
    key = "packets:event-42"
    admin.delete(key)
    # Split the total into `packets` positive amounts (cents), each tagged with its number.
    rng = random.Random(42)
    cuts = sorted(rng.sample(range(1, options.total), options.packets - 1))
    amounts = [b - a for a, b in zip([0] + cuts, cuts + [options.total])]
    packets = [f"{index}:{amount}" for index, amount in enumerate(amounts)]
    for start in range(0, len(packets), 1000):
        admin.rpush(key, *packets[start:start + 1000])
    claimed = [[] for _ in range(options.clients)]
    barrier = threading.Barrier(options.clients)

    def claimer(index):
        connection = redis.Redis(port=options.port)
        barrier.wait()
        while True:
            packet = connection.lpop(key)
            if packet is None:
                break
            claimed[index].append(packet.decode())
        connection.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [packet for mine in claimed for packet in mine]
    once = len(every) == len(set(every)) == len(packets) and set(every) == set(packets)
    total = sum(int(packet.split(":")[1]) for packet in every)
    ok = once and total == options.total and admin.exists(key) == 0
    print(f"{options.clients} clients claimed {len(every)} of {len(packets)} packets, "
          f"{total} of {options.total} -> {'every packet exactly once' if ok else 'LOST OR DOUBLE'}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
